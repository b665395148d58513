"""MADE and the inverse autoregressive flow: the autoregressive property measured on a
finite-difference Jacobian (with broken masks as negative controls), triangular IAF Jacobians,
log|det| against slogdet of a finite-difference Jacobian, gradient checks with negative controls,
float32 vs float64, the stable log-sigmoid, purity of backward and input validation."""
import numpy as np
import pytest

from scratchvae.flows.iaf import IAF, IAFStep
from scratchvae.flows.made import MADE, MaskedLinear, made_masks
from scratchvae.gradcheck import check_gradients
from scratchvae.nn import glorot_uniform
from scratchvae.stable import softplus

TOL_GRAD = 1e-7     # max relative error of a hand-written backward vs central differences
TOL_LOGDET = 1e-7   # |log_abs_det - slogdet(finite-difference Jacobian)|
# Step of the 5-point central difference. Some gradient entries here are ~5e-6 while F = sum(out *
# dout) is ~10, so the round-off O(eps |F| / h) of the default h = 1e-4 (~3e-12 absolute, measured)
# is a relative error of ~3e-7 on them; at h = 1e-3 the round-off is 10x smaller and the truncation
# O(h^4) is ~1e-12, and every check below lands under 2e-8.
H_FD = 1e-3
N, D, C, HIDDEN = 5, 4, 3, (9, 8)


def _away_from_zero(rng, shape, lo, hi):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def _randomize(params, rng):
    """Every entry non-zero, masked weights included: a mask must work whatever W holds there."""
    for p in params.values():
        p[...] = _away_from_zero(rng, p.shape, 0.1, 0.8)


def _inputs(rng, dtype=np.float64):
    z = _away_from_zero(rng, (N, D), 0.2, 1.5).astype(dtype)
    context = _away_from_zero(rng, (N, C), 0.2, 1.5).astype(dtype)
    return z, context


def _jacobian(f, x, h=1e-4):
    """J[n, i, j] = d f(x)[n, i] / d x[n, j] by the 5-point central difference (rows independent).

    Differences are formed before weighting, so an output that ignores x[:, j] gives exactly 0.
    """
    J = np.zeros((x.shape[0], f(x).shape[1], x.shape[1]))                # (N, out, in)
    for j in range(x.shape[1]):
        e = np.zeros_like(x)
        e[:, j] = h
        J[:, :, j] = (8 * (f(x + e) - f(x - e)) - (f(x + 2 * e) - f(x - 2 * e))) / (12 * h)
    return J


def _upper(J, k):
    """|J| on and above diagonal k (k=0 includes the diagonal), maximized over the batch."""
    return np.abs(np.triu(J, k)).max()


def _by_hand(flow, z, context):
    """The stack written out: [(step, input of step k)], z_K and the summed log-dets.

    Step k reads the variables reversed when k is odd and its output is reversed back.
    """
    steps = flow.steps if isinstance(flow, IAF) else [flow]
    x, total, seen = z, 0.0, []
    for k, step in enumerate(steps):
        x_in = np.ascontiguousarray(x[:, ::-1]) if k % 2 else x             # (N, D)
        y, lad, _ = step.forward(x_in, context)
        seen.append((step, x_in))
        x, total = (y[:, ::-1] if k % 2 else y), total + lad
    return seen, x, total


def _min_abs_preactivation(made, z, context):
    """min |a| over every hidden pre-activation, recomputed from params and masks."""
    x, margin = z, np.inf
    for l in range(len(made.hidden)):
        a = x @ (made.params[f"{l}.W"] * made.masks[f"{l}.W"]) + made.params[f"{l}.b"]  # (N, H_l)
        if l == 0:
            a = a + context @ made.params["context.W"]                   # (N, H_0)
        margin, x = min(margin, np.abs(a).min()), np.maximum(a, 0)
    return margin


def _assert_off_relu_kinks(flow, z, context, h):
    """A finite difference across a ReLU kink is wrong by O(1); the stencil moves an entry by at
    most 2h, so the fixture keeps every pre-activation at least 4h from 0 (else: another seed)."""
    if isinstance(flow, MADE):
        seen = [(flow, z)]
    else:
        seen = [(step.made, x) for step, x in _by_hand(flow, z, context)[0]]
    margin = min(_min_abs_preactivation(made, x, context) for made, x in seen)
    assert margin > 4 * h, f"fixture within {margin:.1e} of a ReLU kink; choose another seed"


# ------------------------------------------------------------------------------------- MADE
def test_made_masks_golden_small_case():
    # D = 3, one hidden layer of 4 units: hidden degrees cycle k mod 3 = 0, 1, 2, 0.
    # Into hidden unit k from input j (degree j+1): keep iff deg(k) >= j+1.
    #   z_1: degrees 0,1,2,0 >= 1 -> 0 1 1 0;  z_2: >= 2 -> 0 0 1 0;  z_3: >= 3 -> 0 0 0 0.
    # Into output d (degree d+1) from unit k: keep iff d+1 > deg(k).
    #   deg 0 -> 1 1 1;  deg 1 -> 0 1 1;  deg 2 -> 0 0 1;  deg 0 -> 1 1 1.
    into_hidden, into_output = made_masks(3, (4,))
    np.testing.assert_array_equal(into_hidden, [[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(into_output, [[1, 1, 1], [0, 1, 1], [0, 0, 1], [1, 1, 1]])


def _made(activation="relu", seed=0):
    rng = np.random.default_rng(seed)
    made = MADE(D, C, HIDDEN, rng=rng, activation=activation, dtype=np.float64)
    _randomize(made.params, rng)
    z, context = _inputs(rng)
    return made, z, context, rng


def _made_jacobians(made, z, context):
    """d m / d z, d s / d z (N, D, D) and d (m, s) / d context (N, 2D, C)."""
    def ms(z_, context_):
        return np.concatenate(made.forward(z_, context_)[0], axis=1)     # (N, 2D)
    J_z = _jacobian(lambda x: ms(x, context), z)                         # (N, 2D, D)
    J_context = _jacobian(lambda x: ms(z, x), context)                   # (N, 2D, C)
    return J_z[:, :D], J_z[:, D:], J_context


@pytest.mark.parametrize("activation", ["relu", "elu"])
def test_made_is_autoregressive(activation):
    made, z, context, _ = _made(activation)
    J_m, J_s, J_context = _made_jacobians(made, z, context)
    for J in (J_m, J_s):
        assert _upper(J, 0) == 0.0, "output i must not depend on z_j for j >= i"
        lower = np.abs(J).max(axis=0)[np.tril_indices(D, -1)]
        assert lower.min() > 1e-3, f"every allowed dependence is present (not vacuous): {lower}"
    # The context reaches every output, m_1 and s_1 included (through the degree-0 units).
    assert np.abs(J_context).max(axis=(0, 2)).min() > 1e-3


@pytest.mark.parametrize("broken", ["0.W", "1.W", "m.W", "s.W"])
def test_made_negative_control_broken_mask_is_detected(broken):
    made, z, context, _ = _made()
    made.masks[broken][...] = 1.0                 # in place: the layer's own mask
    J_m, J_s, _ = _made_jacobians(made, z, context)
    violation = max(_upper(J_m, 0), _upper(J_s, 0))
    assert violation > 1e-3, f"opening mask {broken} must let some output see z_j, j >= i"


def test_masked_linear_gradients_and_negative_control_unmasked_dW():
    rng = np.random.default_rng(1)
    layer = MaskedLinear(made_masks(D, (6,))[0], rng=rng, init=glorot_uniform, dtype=np.float64)
    _randomize(layer.params, rng)
    x = _away_from_zero(rng, (N, D), 0.2, 1.5)
    _, cache = layer.forward(x)

    def backward(dout):
        dx, grads = layer.backward(dout, cache)
        return {"x": dx, **grads}

    def backward_unmasked(dout):                  # forgets "* mask" on dW
        dx, grads = layer.backward(dout, cache)
        return {"x": dx, "W": x.T @ dout, "b": grads["b"]}

    inputs = {"x": x, **layer.params}
    report = check_gradients(lambda: layer.forward(x)[0], backward, inputs, rng=rng, h=H_FD)
    assert report.ok(TOL_GRAD), str(report)
    wrong = check_gradients(lambda: layer.forward(x)[0], backward_unmasked, inputs, rng=rng, h=H_FD)
    assert wrong.max_rel_error["W"] == 1.0, str(wrong)   # analytic != 0 where the truth is exactly 0


@pytest.mark.parametrize("activation", ["relu", "elu"])
def test_made_gradients(activation):
    made, z, context, rng = _made(activation, seed=4)
    if activation == "relu":
        _assert_off_relu_kinks(made, z, context, H_FD)
    _, cache = made.forward(z, context)

    def backward(dout):
        dout = dout.reshape(N, 2 * D)
        d_inputs, grads = made.backward((dout[:, :D], dout[:, D:]), cache)
        return {**d_inputs, **grads}

    report = check_gradients(lambda: np.concatenate(made.forward(z, context)[0], axis=1), backward,
                             {"z": z, "context": context, **made.params}, rng=rng, h=H_FD)
    assert report.ok(TOL_GRAD), str(report)
    assert set(report.max_rel_error) == {"z", "context", "context.W", "0.W", "0.b", "1.W", "1.b",
                                         "m.W", "m.b", "s.W", "s.b"}


def test_made_without_context():
    rng = np.random.default_rng(3)
    made = MADE(D, 0, (6,), rng=rng, dtype=np.float64)
    z, context = _away_from_zero(rng, (N, D), 0.2, 1.5), np.zeros((N, 0))
    (m, s), cache = made.forward(z, context)
    d_inputs, grads = made.backward((np.ones_like(m), np.ones_like(s)), cache)
    assert m.shape == s.shape == (N, D) and d_inputs["context"].shape == (N, 0)
    assert grads["context.W"].shape == (0, 6) and _upper(_made_jacobians(made, z, context)[0], 0) == 0


# -------------------------------------------------------------------------------------- IAF
def _flow(kind, activation="relu", seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    if kind == "step":
        flow = IAFStep(D, C, HIDDEN, rng=rng, activation=activation, dtype=dtype)
    else:
        flow = IAF(D, C, HIDDEN, 3, rng=rng, activation=activation, dtype=dtype)
    _randomize(flow.params, rng)
    z, context = _inputs(rng)
    return flow, z, context, rng


def _sigma(step, z, context):
    """sigmoid(s + forget_bias) recomputed from the MADE: the expected diagonal of dz'/dz."""
    s = step.made.forward(z, context)[0][1]
    return 1.0 / (1.0 + np.exp(-(s + step.forget_bias)))


def _jacobian_and_log_det(kind, activation):
    """(flow, z, context, z_new, log_abs_det, J) with J = dz'/dz (N, D, D) by finite differences."""
    flow, z, context, _ = _flow(kind, activation)
    if activation == "relu":
        _assert_off_relu_kinks(flow, z, context, 1e-4)
    z_new, log_abs_det, _ = flow.forward(z, context)
    return flow, z, context, z_new, log_abs_det, _jacobian(lambda x: flow.forward(x, context)[0], z)


@pytest.mark.parametrize("activation", ["relu", "elu"])
def test_iaf_step_jacobian_is_lower_triangular_and_log_det_is_slogdet(activation):
    step, z, context, _, log_abs_det, J = _jacobian_and_log_det("step", activation)
    assert _upper(J, 1) == 0.0, "dz'_i/dz_j must be exactly 0 for j > i"
    np.testing.assert_allclose(np.diagonal(J, axis1=1, axis2=2), _sigma(step, z, context), atol=1e-9)
    sign, logdet = np.linalg.slogdet(J)
    assert np.all(sign > 0)
    np.testing.assert_allclose(log_abs_det, logdet, rtol=0, atol=TOL_LOGDET)


@pytest.mark.parametrize("activation", ["relu", "elu"])
def test_iaf_stack_log_det_is_slogdet_and_reversals_compose(activation):
    flow, z, context, z_new, log_abs_det, J = _jacobian_and_log_det("stack", activation)
    sign, logdet = np.linalg.slogdet(J)
    assert np.all(sign > 0)
    np.testing.assert_allclose(log_abs_det, logdet, rtol=0, atol=TOL_LOGDET)
    assert _upper(J, 1) > 1e-3, "with a reversed step in the stack, z'_1 depends on later z_j"
    # The stack by hand: step, reverse, step, reverse back, step (z_new keeps z's coordinates).
    _, x, total = _by_hand(flow, z, context)
    np.testing.assert_array_equal(z_new, x)
    np.testing.assert_array_equal(log_abs_det, total)


def _pack(z_new, log_abs_det):
    return np.concatenate([z_new.reshape(-1), log_abs_det])


def _flow_check(flow, z, context, rng, target, backward=None):
    """Gradient check of z_new, log_abs_det or both (packed) w.r.t. z, context, every parameter."""
    backward = backward or flow.backward
    _, _, cache = flow.forward(z, context)

    def forward():
        z_new, log_abs_det, _ = flow.forward(z, context)
        return {"z_new": z_new, "log_abs_det": log_abs_det, "both": _pack(z_new, log_abs_det)}[target]

    def analytic(dout):
        if target == "z_new":
            dz_new, dlog_abs_det = dout, None
        elif target == "log_abs_det":
            dz_new, dlog_abs_det = np.zeros_like(z), dout
        else:
            dz_new, dlog_abs_det = dout[:N * D].reshape(N, D), dout[N * D:]
        d_inputs, grads = backward(dz_new, dlog_abs_det, cache)
        return {**d_inputs, **grads}

    inputs = {"z": z, "context": context, **flow.params}
    return check_gradients(forward, analytic, inputs, rng=rng, h=H_FD)


@pytest.mark.parametrize("kind", ["step", "stack"])
@pytest.mark.parametrize("target", ["z_new", "log_abs_det", "both"])
@pytest.mark.parametrize("activation", ["relu", "elu"])
def test_iaf_gradients(kind, target, activation):
    flow, z, context, rng = _flow(kind, activation, seed=4)
    if activation == "relu":
        _assert_off_relu_kinks(flow, z, context, H_FD)
    report = _flow_check(flow, z, context, rng, target)
    assert report.ok(TOL_GRAD), str(report)
    assert len(report.max_rel_error) == 2 + len(flow.params)


@pytest.mark.parametrize("kind", ["step", "stack"])
def test_iaf_negative_control_dropped_log_det_term_fails(kind):
    flow, z, context, rng = _flow(kind, seed=4)

    def wrong(dz_new, dlog_abs_det, cache):
        return flow.backward(dz_new, None, cache)     # forgets d log|det| / d s
    report = _flow_check(flow, z, context, rng, "both", backward=wrong)
    s_bias = "s.b" if kind == "step" else "0.s.b"
    assert not report.ok(TOL_GRAD) and report.max_rel_error[s_bias] > 0.1, str(report)


def test_float32_agrees_with_float64():
    f64, z, context, rng = _flow("stack", seed=5)
    f32 = IAF(D, C, HIDDEN, 3, rng=np.random.default_rng(5), dtype=np.float32)
    for name, p in f64.params.items():
        f32.params[name][...] = p.astype(np.float32)
    dz_new = rng.standard_normal((N, D))
    dlog_abs_det = rng.standard_normal(N)
    results = []
    for flow, dtype in ((f64, np.float64), (f32, np.float32)):
        z_new, lad, cache = flow.forward(z.astype(dtype), context.astype(dtype))
        d_inputs, grads = flow.backward(dz_new.astype(dtype), dlog_abs_det.astype(dtype), cache)
        results.append({"z_new": z_new, "log_abs_det": lad, **d_inputs, **grads})
    worst = 0.0
    for name, ref in results[0].items():
        got = results[1][name]
        assert got.dtype == np.float32, f"{name} left float32: {got.dtype}"
        worst = max(worst, np.abs(got - ref).max() / np.abs(ref).max())
    assert worst < 1e-5, f"float32 vs float64: worst error relative to each array's scale {worst:.2e}"


def test_saturated_gates_stay_finite_and_keep_the_gradient_through_m():
    rng = np.random.default_rng(6)
    step = IAFStep(D, C, HIDDEN, rng=rng, dtype=np.float32)
    z, context = _inputs(rng, np.float32)
    step.params["s.b"][...] = -200.0              # sigmoid(t) ~ e^-198 underflows float32 to 0
    s = step.made.forward(z, context)[0][1]
    _, lad, _ = step.forward(z, context)
    expected = -softplus(-(s.astype(np.float64) + 2.0)).sum(axis=1)      # ~ sum_i t_i
    assert np.all(np.isfinite(lad)), f"log sigma must not be -inf: {lad}"
    np.testing.assert_allclose(lad, expected, rtol=1e-6)
    # t = +40: in float64 1 - sigmoid(40) rounds to 0 but sigmoid(-40) = 4.2e-18 does not.
    step64 = IAFStep(D, C, HIDDEN, rng=np.random.default_rng(6), dtype=np.float64)
    step64.params["s.b"][...] = 40.0
    z64, context64 = z.astype(np.float64), context.astype(np.float64)
    t = step64.made.forward(z64, context64)[0][1] + 2.0
    _, _, cache = step64.forward(z64, context64)
    _, grads = step64.backward(np.ones((N, D)), None, cache)
    np.testing.assert_allclose(grads["m.b"], np.exp(-t).sum(axis=0), rtol=1e-12)


def test_dlog_abs_det_none_means_zeros():
    flow, z, context, rng = _flow("stack", seed=7)
    _, _, cache = flow.forward(z, context)
    dz_new = rng.standard_normal((N, D))
    a = flow.backward(dz_new, None, cache)
    b = flow.backward(dz_new, np.zeros(N), cache)
    for x, y in ((a[0], b[0]), (a[1], b[1])):
        for name in x:
            np.testing.assert_array_equal(x[name], y[name])


def test_backward_is_pure_and_caches_are_independent():
    flow, z, context, rng = _flow("stack", seed=8)
    snapshot = {name: p.copy() for name, p in flow.params.items()}
    z_before, context_before = z.copy(), context.copy()
    dz_new, dlog_abs_det = rng.standard_normal((N, D)), rng.standard_normal(N)
    upstream = (dz_new.copy(), dlog_abs_det.copy())
    _, _, cache_a = flow.forward(z, context)
    _, _, cache_b = flow.forward(z[::-1].copy(), context)    # a second forward before backward
    first = flow.backward(dz_new, dlog_abs_det, cache_a)
    flow.backward(dz_new, dlog_abs_det, cache_b)
    again = flow.backward(dz_new, dlog_abs_det, cache_a)
    for x, y in ((first[0], again[0]), (first[1], again[1])):
        for name in x:
            np.testing.assert_array_equal(x[name], y[name])
    for name, p in flow.params.items():
        np.testing.assert_array_equal(p, snapshot[name])
    for now, before in ((z, z_before), (context, context_before), (dz_new, upstream[0]),
                        (dlog_abs_det, upstream[1])):
        np.testing.assert_array_equal(now, before)


def test_params_are_named_shared_and_seeded():
    rng = np.random.default_rng(9)
    flow = IAF(D, C, HIDDEN, 2, rng=rng, dtype=np.float64)
    assert flow.params["1.s.b"] is flow.steps[1].params["s.b"] is flow.steps[1].made.params["s.b"]
    assert flow.params["0.0.W"].shape == (D, HIDDEN[0]) and flow.params["0.context.W"].shape == (C, HIDDEN[0])
    assert flow.params["0.m.W"].shape == (HIDDEN[1], D)
    for name, mask in flow.steps[0].made.masks.items():
        assert np.all(flow.steps[0].params[name][mask == 0] == 0), f"{name}: masked entries start at 0"
    again = IAF(D, C, HIDDEN, 2, rng=np.random.default_rng(9), dtype=np.float64)
    for name, p in flow.params.items():
        np.testing.assert_array_equal(p, again.params[name])


# ------------------------------------------------------------------------------- validation
def _entry_points():
    rng = np.random.default_rng(10)
    made = MADE(D, C, HIDDEN, rng=rng, dtype=np.float64)
    step = IAFStep(D, C, HIDDEN, rng=rng, dtype=np.float64)
    flow = IAF(D, C, HIDDEN, 2, rng=rng, dtype=np.float64)
    return [made.forward, lambda z, context: step.forward(z, context)[:2],
            lambda z, context: flow.forward(z, context)[:2]]


GOOD_Z, GOOD_CONTEXT = np.ones((N, D)), np.ones((N, C))
NAN_Z = GOOD_Z.copy()
NAN_Z[1, 2] = np.nan
NAN_CONTEXT = GOOD_CONTEXT.copy()
NAN_CONTEXT[0, 0] = np.inf
BAD_INPUTS = [
    (np.ones((N, D, 1)), GOOD_CONTEXT, ValueError, r"z must be 2-dimensional, got shape \(5, 4, 1\)"),
    (np.ones((N, D + 1)), GOOD_CONTEXT, ValueError, r"z must have shape \(\?, 4\), got \(5, 5\)"),
    (GOOD_Z, np.ones((N, C + 1)), ValueError, r"context must have shape \(5, 3\), got \(5, 4\)"),
    (GOOD_Z, np.ones((N - 1, C)), ValueError, r"context must have shape \(5, 3\), got \(4, 3\)"),
    (GOOD_Z.astype(np.float32), GOOD_CONTEXT, TypeError, "z must have dtype float64"),
    (GOOD_Z, GOOD_CONTEXT.astype(np.float32), TypeError, "context must have dtype float64"),
    (np.ones((N, D), dtype=int), GOOD_CONTEXT, TypeError, "z must have dtype float32 or float64"),
    (NAN_Z, GOOD_CONTEXT, ValueError, "z contains 1 NaN or infinite"),
    (GOOD_Z, NAN_CONTEXT, ValueError, "context contains 1 NaN or infinite"),
]


@pytest.mark.parametrize("z, context, error, message", BAD_INPUTS)
def test_bad_inputs_get_named_errors(z, context, error, message):
    for forward in _entry_points():
        with pytest.raises(error, match=message):
            forward(z, context)


@pytest.mark.parametrize("kind", ["step", "stack"])
def test_bad_upstream_gradients_get_named_errors(kind):
    flow, z, context, _ = _flow(kind)
    _, _, cache = flow.forward(z, context)
    with pytest.raises(ValueError, match=r"dz_new must have shape \(5, 4\), got \(4, 4\)"):
        flow.backward(np.ones((N - 1, D)), None, cache)
    with pytest.raises(ValueError, match=r"dlog_abs_det must have shape \(5,\), got \(5, 1\)"):
        flow.backward(np.ones((N, D)), np.ones((N, 1)), cache)
    with pytest.raises(TypeError, match="dz_new must have dtype float64"):
        flow.backward(np.ones((N, D), dtype=np.float32), None, cache)


def test_made_backward_checks_its_upstream_gradients():
    made, z, context, _ = _made()
    (m, s), cache = made.forward(z, context)
    with pytest.raises(ValueError, match=r"ds must have shape \(5, 4\), got \(5, 3\)"):
        made.backward((m, s[:, :3]), cache)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"z_dim": 0}, ValueError, "z_dim must be >= 1"),
    ({"context_dim": -1}, ValueError, "context_dim must be >= 0"),
    ({"hidden": ()}, ValueError, "hidden must list at least one"),
    ({"hidden": (8, 0)}, ValueError, r"hidden\[1\] must be >= 1"),
    ({"n_steps": 0}, ValueError, "n_steps must be >= 1"),
    ({"rng": 0}, TypeError, "rng must be a numpy.random.Generator"),
    ({"activation": "tanh"}, ValueError, "activation must be one of"),
    ({"dtype": np.int64}, TypeError, "dtype must be float32 or float64"),
    ({"forget_bias": float("nan")}, ValueError, "forget_bias must lie in"),
])
def test_bad_constructor_arguments_get_named_errors(kwargs, error, message):
    args = {"z_dim": D, "context_dim": C, "hidden": HIDDEN, "n_steps": 2,
            "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(error, match=message):
        IAF(args.pop("z_dim"), args.pop("context_dim"), args.pop("hidden"), args.pop("n_steps"),
            **args)
