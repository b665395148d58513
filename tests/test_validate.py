"""The boundary validators: each error names the argument and what was expected."""
import numpy as np
import pytest

from scratchvae.validate import (check_float_array, check_in_range, check_int, check_positive,
                                  check_rng)

pytestmark = pytest.mark.slow   # input checks and files, not maths: the maths lane is pytest -m "not slow"


def test_scalar_validators_refuse_bools_and_strings():
    with pytest.raises(TypeError, match="sigma must be a real number, got str '2'"):
        check_positive("sigma", "2")
    with pytest.raises(TypeError, match="damping must be a real number, got bool"):
        check_in_range("damping", True, 0, 1)
    assert check_positive("sigma", np.float32(2.0)) == 2.0
    assert check_in_range("p", 0.25, 0, 0.5, low_open=True, high_open=True) == 0.25


def test_array_and_misc_validators():
    with pytest.raises(TypeError, match="x must be a numpy.ndarray of float32 or float64, got list"):
        check_float_array("x", [1.0])
    with pytest.raises(ValueError, match=r"x contains 2 NaN or infinite value\(s\)"):
        check_float_array("x", np.array([np.nan, np.inf, 1.0]))
    with pytest.raises(ValueError, match=r"x must have shape \(3, \?\), got \(2, 2\)"):
        check_float_array("x", np.zeros((2, 2)), shape=(3, None))
    with pytest.raises(TypeError, match="n must be an integer, got bool"):
        check_int("n", True)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        check_rng("rng", np.random.RandomState(0))
