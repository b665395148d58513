"""The checker itself: exact on known derivatives, restores its inputs, and can fail."""
import numpy as np
import pytest

from scratchvae.gradcheck import check_gradients, numerical_gradient, rel_error


@pytest.mark.parametrize("stencil,h,tol", [(3, 1e-6, 1e-8), (5, 1e-4, 1e-10)])
def test_numerical_gradient_of_known_function(stencil, h, tol):
    x = np.array([[0.3, -1.2], [2.0, 0.7]])
    g = numerical_gradient(lambda: np.sin(x) * x, x, 1.0, h=h, stencil=stencil)
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=tol)


def test_inputs_restored_bit_for_bit():
    x = np.random.default_rng(0).standard_normal(7)
    before = x.tobytes()
    numerical_gradient(lambda: np.exp(x), x, 1.0)
    assert x.tobytes() == before


def test_report_names_worst_entry_and_negative_control():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    good = check_gradients(lambda: a**3, lambda d: {"a": 3 * a**2 * d}, {"a": a}, rng=rng)
    assert good.ok(1e-9)

    def wrong(d):
        g = 3 * a**2 * d
        g[2, 1] *= 1.01          # one wrong entry
        return {"a": g}

    bad = check_gradients(lambda: a**3, wrong, {"a": a}, rng=rng)
    assert not bad.ok(1e-7)
    assert bad.worst["a"][0] == (2, 1)
    assert "(2, 1)" in str(bad)


def test_refuses_float32_and_missing_gradient():
    x32 = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match=r"inputs\['x'\] must be a float64"):
        check_gradients(lambda: x32, lambda d: {"x": d}, {"x": x32}, rng=np.random.default_rng())
    x = np.ones(3)
    with pytest.raises(KeyError, match="no gradient for input 'x'"):
        check_gradients(lambda: x * 2, lambda d: {}, {"x": x}, rng=np.random.default_rng())
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        check_gradients(lambda: x, lambda d: {"x": d}, {"x": x}, rng=None)


def test_rel_error_floor():
    assert rel_error(np.array(0.0), np.array(0.0)) == 0.0
    assert rel_error(np.array(1.0), np.array(1.1)) == pytest.approx(0.1 / 2.1)

