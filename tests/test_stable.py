"""softplus and sigmoid: exact against logaddexp in float64, no overflow, dtype kept."""
import numpy as np
import pytest
from scipy.special import expit

from scratchvae.stable import sigmoid, softplus


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-15), (np.float32, 1e-6)])
def test_against_logaddexp_over_a_wide_range(dtype, rtol):
    t = np.concatenate([np.linspace(-800, 800, 4001), np.linspace(-5, 5, 1001)]).astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        sp, s = softplus(t), sigmoid(t)
    assert sp.dtype == s.dtype == dtype
    atol = 1e-300 if dtype == np.float64 else 1e-38      # float32 underflows below ~1e-38
    np.testing.assert_allclose(sp, np.logaddexp(0, t.astype(np.float64)), rtol=rtol, atol=atol)
    np.testing.assert_allclose(s, expit(t.astype(np.float64)), rtol=10 * rtol, atol=atol)
    assert np.all((s >= 0) & (s <= 1))
