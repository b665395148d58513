"""Finite-difference checks of every layer and of whole MLPs, plus dtype and safety properties."""
import numpy as np
import pytest

from scratchvae.gradcheck import check_gradients
from scratchvae.nn import ACTIVATIONS, MLP, Linear, LeakyReLU

TOL_LAYER = 1e-7   # per layer (tighter than the whole model's 1e-6)
TOL_MODEL = 1e-6   # whole model


def _check_layer(layer, x, rng, need_params=True):
    """Gradient of sum(layer(x) * dout) w.r.t. x and every parameter, analytic vs numerical."""
    out, cache = layer.forward(x)
    inputs = {"x": x, **(layer.params if need_params else {})}

    def backward(dout):
        dx, grads = layer.backward(dout, cache)
        return {"x": dx, **grads}

    return check_gradients(lambda: layer.forward(x)[0], backward, inputs, rng=rng)


def test_linear_gradients():
    rng = np.random.default_rng(0)
    layer = Linear(5, 4, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(4)   # non-zero bias: zeros hide bugs
    x = rng.standard_normal((3, 5))
    report = _check_layer(layer, x, rng)
    assert report.ok(TOL_LAYER), str(report)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradients(name):
    rng = np.random.default_rng(1)
    act = ACTIVATIONS[name]() if name != "leaky_relu" else LeakyReLU(0.1)
    x = rng.standard_normal((4, 6))
    x[np.abs(x) < 1e-3] = 0.5   # keep away from the ReLU kink, where finite differences straddle it
    report = _check_layer(act, x, rng, need_params=False)
    assert report.ok(TOL_LAYER), str(report)


@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus"])
def test_mlp_whole_model_gradients(activation):
    rng = np.random.default_rng(2)
    mlp = MLP([6, 8, 7, 3], activation, rng=rng, out_activation="sigmoid", dtype=np.float64)
    for k in mlp.params:
        if k.endswith(".b"):
            mlp.params[k][:] = 0.1 * rng.standard_normal(mlp.params[k].shape)
    x = rng.standard_normal((5, 6))   # 5 samples, as in scikit-learn's whole-model test
    out, cache = mlp.forward(x)

    def backward(dout):
        dx, grads = mlp.backward(dout, cache)
        return {"x": dx, **grads}

    report = check_gradients(lambda: mlp.forward(x)[0], backward, {"x": x, **mlp.params}, rng=rng)
    assert report.ok(TOL_MODEL), str(report)
    assert set(report.max_rel_error) == {"x", "0.W", "0.b", "1.W", "1.b", "2.W", "2.b"}


def test_negative_control_wrong_gradient_fails():
    """A Linear backward that forgets the transpose-free bias sum (db = dout[0]) must be caught."""
    rng = np.random.default_rng(3)
    layer = Linear(4, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((5, 4))
    _, cache = layer.forward(x)

    def wrong_backward(dout):
        dx, grads = layer.backward(dout, cache)
        grads["b"] = dout[0]            # the bug: only the first row's contribution
        return {"x": dx, **grads}

    report = check_gradients(lambda: layer.forward(x)[0], wrong_backward,
                             {"x": x, **layer.params}, rng=rng)
    assert not report.ok(TOL_LAYER)
    assert report.max_rel_error["b"] > 1e-2 and report.max_rel_error["W"] < TOL_LAYER
    assert "b" in str(report)


def test_negative_control_slightly_wrong_activation_fails():
    """Even a 0.1% error in a derivative (tanh' scaled by 1.001) fails the 1e-7 check."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4))
    out = np.tanh(x)
    report = check_gradients(lambda: np.tanh(x), lambda d: {"x": d * (1 - out**2) * 1.001},
                             {"x": x}, rng=rng)
    assert not report.ok(TOL_LAYER)
    assert report.max_rel_error["x"] == pytest.approx(0.0005, rel=0.01)


def test_forward_twice_before_backward_is_safe():
    rng = np.random.default_rng(5)
    mlp = MLP([4, 5, 2], "tanh", rng=rng, dtype=np.float64)
    x1, x2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 2))
    _, c1 = mlp.forward(x1)
    ref_dx, ref_g = mlp.backward(dout, c1)
    _, c1 = mlp.forward(x1)
    _, c2 = mlp.forward(x2)          # a second forward must not disturb the first cache
    dx, g = mlp.backward(dout, c1)
    np.testing.assert_array_equal(dx, ref_dx)
    for k in ref_g:
        np.testing.assert_array_equal(g[k], ref_g[k])


def test_backward_does_not_write_parameters():
    rng = np.random.default_rng(6)
    mlp = MLP([4, 5, 2], "relu", rng=rng, dtype=np.float64)
    before = {k: v.copy() for k, v in mlp.params.items()}
    out, cache = mlp.forward(rng.standard_normal((3, 4)))
    mlp.backward(rng.standard_normal(out.shape), cache)
    for k in before:
        np.testing.assert_array_equal(mlp.params[k], before[k])


def test_need_dx_false_skips_input_gradient():
    rng = np.random.default_rng(7)
    mlp = MLP([4, 5, 2], "relu", rng=rng, dtype=np.float64)
    out, cache = mlp.forward(rng.standard_normal((3, 4)))
    dout = rng.standard_normal(out.shape)
    dx, g = mlp.backward(dout, cache, need_dx=False)
    _, g_ref = mlp.backward(dout, cache)
    assert dx is None
    for k in g:
        np.testing.assert_array_equal(g[k], g_ref[k])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_float32_stays_float32(activation):
    rng = np.random.default_rng(8)
    mlp = MLP([6, 5, 3], activation, rng=rng, out_activation="softplus", dtype=np.float32)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    out, cache = mlp.forward(x)
    dx, grads = mlp.backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == np.float32
    assert all(p.dtype == np.float32 for p in mlp.params.values())
    assert all(g.dtype == np.float32 for g in grads.values())


def test_initializers_are_seeded_and_scaled():
    a = MLP([100, 200, 3], "relu", rng=np.random.default_rng(9), dtype=np.float64)
    b = MLP([100, 200, 3], "relu", rng=np.random.default_rng(9), dtype=np.float64)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    # He: std sqrt(2 / n_in); Glorot uniform: std sqrt(2 / (n_in + n_out))
    assert a.params["0.W"].std() == pytest.approx(np.sqrt(2 / 100), rel=0.05)
    assert a.params["1.W"].std() == pytest.approx(np.sqrt(2 / 203), rel=0.1)


def test_mlp_bad_inputs():
    rng = np.random.default_rng(10)
    mlp = MLP([4, 3], "relu", rng=rng, dtype=np.float32)
    with pytest.raises(ValueError, match=r"x must have shape \(\?, 4\), got \(2, 5\)"):
        mlp.forward(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match="x must have dtype float32.*got float64"):
        mlp.forward(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        mlp.forward(np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP([4, 3], "gelu", rng=rng)
    with pytest.raises(ValueError, match="sizes must list at least"):
        MLP([4], "relu", rng=rng)
    with pytest.raises(ValueError, match=r"sizes\[1\] must be >= 1, got 0"):
        MLP([4, 0], "relu", rng=rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        MLP([4, 3], "relu", rng=0)
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got float16"):
        MLP([4, 3], "relu", rng=rng, dtype=np.float16)


def test_sigmoid_softplus_do_not_overflow():
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s, _ = ACTIVATIONS["sigmoid"]().forward(x)
        sp, _ = ACTIVATIONS["softplus"]().forward(x)
    np.testing.assert_allclose(s, [[0, 1.9287499e-22, 0.5, 1, 1]], rtol=1e-6, atol=0)
    np.testing.assert_allclose(sp, [[0, 1.9287499e-22, np.log(2), 50, 1000]], rtol=1e-6)
