"""Flow layers: backward vs finite differences (z_new, log|det| and both), negative controls,
log|det| vs slogdet of a finite-difference Jacobian, invertibility under adversarial raw
parameters, float32 vs float64, the flat raw-parameter layout, a whole chain of layers, the
1-D pushforward density integrating to 1, purity of backward and input validation."""
import numpy as np
import pytest

from scratchvae import flows as F
from scratchvae.gradcheck import check_gradients

TOL_GRAD = 1e-7           # per layer
TOL_CHAIN = 1e-6          # whole chain
BATCH, D = (2, 3), 3      # two leading axes, as z (B, L, D)


def _away(rng, shape, lo, hi):
    """Entries of magnitude in [lo, hi] with random signs: zeros hide wrong backward passes."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def _planar(rng, batch=BATCH, dim=D):
    return {"z": _away(rng, batch + (dim,), 0.2, 1.5), "u": _away(rng, batch + (dim,), 0.3, 1.2),
            "w": _away(rng, batch + (dim,), 0.3, 1.0), "b": _away(rng, batch, 0.1, 0.8)}


def _radial(rng, batch=BATCH, dim=D):
    z = _away(rng, batch + (dim,), 0.2, 1.5)
    return {"z": z, "z_ref": z + _away(rng, batch + (dim,), 0.3, 1.0),
            "raw_alpha": _away(rng, batch, 0.2, 1.0), "raw_beta": _away(rng, batch, 0.2, 1.0)}


def _householder(rng, batch=BATCH, dim=D):
    return {"z": _away(rng, batch + (dim,), 0.2, 1.5), "v": _away(rng, batch + (dim,), 0.3, 1.2)}


def _sylvester(rng, batch=BATCH, dim=D):
    m = dim * (dim - 1) // 2
    return {"z": _away(rng, batch + (dim,), 0.2, 1.0),
            "raw_r_diag": _away(rng, batch + (dim,), 0.2, 1.0),
            "r_offdiag": _away(rng, batch + (m,), 0.2, 0.8),
            "raw_r_tilde_diag": _away(rng, batch + (dim,), 0.2, 1.0),
            "r_tilde_offdiag": _away(rng, batch + (m,), 0.2, 0.8),
            "b": _away(rng, batch + (dim,), 0.1, 0.5)}


def _householder_sylvester(rng, batch=BATCH, dim=D, n_reflections=2):
    return {"v": _away(rng, batch + (n_reflections, dim), 0.3, 1.2), **_sylvester(rng, batch, dim)}


# name -> (forward, backward, fixture, keyword options)
FLOWS = {
    "planar": (F.planar_forward, F.planar_backward, _planar, {}),
    "radial": (F.radial_forward, F.radial_backward, _radial, {}),
    "householder": (F.householder_forward, F.householder_backward, _householder, {}),
    "sylvester_identity": (F.triangular_sylvester_forward, F.triangular_sylvester_backward,
                           _sylvester, {"reverse": False}),
    "sylvester_reversed": (F.triangular_sylvester_forward, F.triangular_sylvester_backward,
                           _sylvester, {"reverse": True}),
    "householder_sylvester": (F.householder_sylvester_forward, F.householder_sylvester_backward,
                              _householder_sylvester, {}),
}
WITH_LOG_DET = [name for name in FLOWS if name != "householder"]


def _flow_check(name, rng, part="both", backward=None, cache_options=None):
    """check_gradients of z_new, log_abs_det, or both concatenated (a random functional of both)."""
    forward, correct_backward, fixture, options = FLOWS[name]
    backward = backward or correct_backward
    inputs = fixture(rng)
    z = inputs["z"]
    _, _, cache = forward(**inputs, **(cache_options or options))

    def out():
        z_new, log_abs_det, _ = forward(**inputs, **options)
        return {"z_new": z_new, "log_abs_det": log_abs_det,
                "both": np.concatenate([z_new.ravel(), log_abs_det.ravel()])}[part]

    def back(dout):
        if part == "z_new":
            return backward(dout, None, cache)
        if part == "log_abs_det":
            return backward(np.zeros_like(z), dout, cache)
        return backward(dout[:z.size].reshape(z.shape), dout[z.size:].reshape(z.shape[:-1]), cache)

    return check_gradients(out, back, inputs, rng=rng)


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("part", ["z_new", "log_abs_det", "both"])
@pytest.mark.parametrize("name", list(FLOWS))
def test_backward_matches_central_differences(name, part):
    report = _flow_check(name, np.random.default_rng(0), part)
    assert report.ok(TOL_GRAD), f"{name}, {part}:\n{report}"


@pytest.mark.parametrize("name", WITH_LOG_DET)
def test_negative_control_backward_without_log_det_term_fails(name):
    def wrong(dz_new, dlog_abs_det, cache):
        return FLOWS[name][1](dz_new, None, cache)                  # forgets d log|det|
    report = _flow_check(name, np.random.default_rng(0), "both", wrong)
    assert report.overall > 1e-2, str(report)


def test_planar_negative_control_ignoring_u_hat_map_fails():
    rng = np.random.default_rng(0)
    p = _planar(np.random.default_rng(0))

    def wrong(dz_new, dlog_abs_det, cache):             # as if u_hat were u: du = tanh(w.z + b) dz_new
        grads = F.planar_backward(dz_new, dlog_abs_det, cache)
        return {**grads, "u": np.tanh((p["w"] * p["z"]).sum(-1) + p["b"])[..., None] * dz_new}
    report = _flow_check("planar", rng, "z_new", wrong)
    assert report.max_rel_error["u"] > 1e-2 and report.max_rel_error["z"] < TOL_GRAD, str(report)


def test_householder_negative_control_unreflected_gradient_fails():
    def wrong(dz_new, dlog_abs_det, cache):             # dz = dz_new instead of H dz_new
        return {**F.householder_backward(dz_new, dlog_abs_det, cache), "z": dz_new}
    report = _flow_check("householder", np.random.default_rng(0), "z_new", wrong)
    assert report.max_rel_error["z"] > 1e-2 and report.max_rel_error["v"] < TOL_GRAD, str(report)


def test_sylvester_negative_control_forgotten_reversal_fails():
    # the backward receives the cache of a Q = I layer while the forward reverses (Q = P)
    report = _flow_check("sylvester_reversed", np.random.default_rng(0), "both",
                         cache_options={"reverse": False})
    assert report.overall > 1e-2, str(report)


# --------------------------------------------------------------------------- log|det| oracle
def _fd_jacobian(fmap, z, h=1e-3):
    """(N, D, D) Jacobian of fmap: (N, D) -> (N, D), 5-point central differences per column."""
    cols = []
    for j in range(z.shape[-1]):
        e = np.zeros_like(z)
        e[:, j] = h
        cols.append((-fmap(z + 2 * e) + 8 * fmap(z + e) - 8 * fmap(z - e) + fmap(z - 2 * e)) / (12 * h))
    return np.stack(cols, axis=-1)                                  # (N, D, D)


def _jacobian_and_log_det(name, inputs):
    forward, _, _, options = FLOWS[name]
    params = {k: v for k, v in inputs.items() if k != "z"}
    _, log_abs_det, _ = forward(**inputs, **options)
    jac = _fd_jacobian(lambda zz: forward(zz, **params, **options)[0], inputs["z"])
    return np.linalg.slogdet(jac), log_abs_det


@pytest.mark.parametrize("dim", [1, 4])
@pytest.mark.parametrize("name", list(FLOWS))
def test_log_abs_det_matches_slogdet_of_finite_difference_jacobian(name, dim):
    (sign, logdet), log_abs_det = _jacobian_and_log_det(name, FLOWS[name][2](
        np.random.default_rng(1), (8,), dim))
    expected_sign = -1.0 if name == "householder" else 1.0           # a reflection has det -1
    assert np.all(sign == expected_sign), sign
    err = np.max(np.abs(logdet - log_abs_det))
    assert err < 1e-9, f"{name}: max |slogdet - log_abs_det| = {err:.2e}"     # measured <= 2.1e-12


# --------------------------------------------------------------------------- invertibility
def _adversarial_planar(rng, n=12, dim=D):
    """Raw u huge (up to 1e6) and anti-aligned with w: w.u -> -inf, so m(w.u) -> -1."""
    p = _planar(rng, (n,), dim)
    w_unit = p["w"] / np.linalg.norm(p["w"], axis=-1, keepdims=True)
    scale = np.repeat([1e1, 1e2, 1e6], n // 3)[:, None]
    p["u"] = -scale * w_unit + _away(rng, (n, dim), 0.1, 1.0)
    return p


def test_planar_constraint_holds_for_huge_anti_aligned_u():
    p = _adversarial_planar(np.random.default_rng(2))
    u_hat = F.planar_constrain(p["u"], p["w"])
    # w.u_hat = m(w.u) >= -1 exactly; evaluating the dot product rounds, so allow a few eps
    # (measured worst -1 - 2.2e-16; a single Gram-Schmidt pass gave -1 - 2.3e-10)
    assert np.all((p["w"] * u_hat).sum(-1) >= -1.0 - 1e-15)
    (sign, logdet), log_abs_det = _jacobian_and_log_det("planar", p)
    assert np.all(np.isfinite(log_abs_det)) and np.all(sign == 1.0), (sign, log_abs_det)
    assert np.max(np.abs(logdet - log_abs_det)) < 1e-8
    # along w, a = w.z + b maps to a + (w.u_hat) tanh(a) up to a constant: strictly increasing
    s = np.linspace(-3.0, 3.0, 601) + 1e-3                          # avoids a == 0 exactly
    for i in range(len(p["b"])):
        zs = s[:, None] * p["w"][i] + 0.0                           # (601, D)
        rep = {k: np.repeat(v[i:i + 1], len(s), axis=0) for k, v in p.items() if k != "z"}
        proj = F.planar_forward(zs, **rep)[0] @ p["w"][i]           # (601,)
        assert np.all(np.diff(proj) > 0), f"example {i}: w.f(z) not increasing along w"


def test_radial_constraint_holds_for_extreme_raw_parameters():
    rng = np.random.default_rng(3)
    p = _radial(rng, (12,))
    p["raw_alpha"] = np.repeat([-30.0, 0.5, 30.0], 4)
    p["raw_beta"] = np.tile([-800.0, -50.0, -5.0, 40.0], 3)        # beta = -alpha (+0, +2e-22, ...)
    alpha, beta = F.radial_constrain(p["raw_alpha"], p["raw_beta"])
    assert np.all(alpha > 0) and np.all(beta >= -alpha)
    (sign, logdet), log_abs_det = _jacobian_and_log_det("radial", p)
    assert np.all(np.isfinite(log_abs_det)) and np.all(sign == 1.0), (sign, log_abs_det)
    assert np.max(np.abs(logdet - log_abs_det)) < 1e-8
    # along a ray from z_ref, |z_new - z_ref| = r (r + softplus(raw_beta)) / (alpha + r) increases
    r = np.linspace(1e-3, 5.0, 500)
    for i in range(12):
        direction = rng.standard_normal(D)
        zs = p["z_ref"][i] + r[:, None] * direction / np.linalg.norm(direction)   # (500, D)
        rep = {k: np.repeat(v[i:i + 1], len(r), axis=0) for k, v in p.items() if k != "z"}
        radius = np.linalg.norm(F.radial_forward(zs, **rep)[0] - p["z_ref"][i], axis=-1)  # (500,)
        assert np.all(np.diff(radius) > 0), f"example {i}: radius not increasing"


def _adversarial_sylvester(rng, n=12, dim=D):
    """Raw diagonals of opposite signs up to |30|: r_ii r~_ii -> -1 (exactly -1 after rounding)."""
    p = _sylvester(rng, (n,), dim)
    big = np.repeat([3.0, 10.0, 30.0], n // 3)[:, None] * np.ones(dim)     # (n, D)
    p["raw_r_diag"], p["raw_r_tilde_diag"] = big, -big
    return p


def _invert_triangular_sylvester(z_new, p, reverse, iters=80):
    """Back-substitution, last coordinate first, each by bisection on a strictly increasing map."""
    n, dim = z_new.shape
    r_d, rt_d = np.tanh(p["raw_r_diag"]), np.tanh(p["raw_r_tilde_diag"])
    R, Rt = np.zeros((n, dim, dim)), np.zeros((n, dim, dim))
    rows, cols = np.triu_indices(dim, 1)
    R[:, rows, cols], Rt[:, rows, cols] = p["r_offdiag"], p["r_tilde_offdiag"]
    R[:, range(dim), range(dim)], Rt[:, range(dim), range(dim)] = r_d, rt_d
    target = z_new[:, ::-1] if reverse else z_new                  # Q^T z_new = y + R tanh(R~ y + b)
    y = np.zeros((n, dim))
    for i in reversed(range(dim)):
        c = (Rt[:, i, i + 1:] * y[:, i + 1:]).sum(-1) + p["b"][:, i]
        t_after = np.tanh((Rt[:, i + 1:, :] @ y[:, :, None])[..., 0] + p["b"][:, i + 1:])
        rhs = target[:, i] - (R[:, i, i + 1:] * t_after).sum(-1)
        lo, hi = rhs - 1.0, rhs + 1.0                               # |r_ii tanh| <= 1 brackets y_i
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            above = mid + R[:, i, i] * np.tanh(Rt[:, i, i] * mid + c) > rhs
            lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
        y[:, i] = 0.5 * (lo + hi)
    return y[:, ::-1] if reverse else y


@pytest.mark.parametrize("reverse", [False, True])
def test_triangular_sylvester_invertible_for_extreme_diagonals(reverse):
    p = _adversarial_sylvester(np.random.default_rng(4))
    rho = np.tanh(p["raw_r_diag"]) * np.tanh(p["raw_r_tilde_diag"])
    assert np.all(rho >= -1.0) and np.any(rho == -1.0)              # the extreme case is reached
    name = "sylvester_reversed" if reverse else "sylvester_identity"
    (sign, logdet), log_abs_det = _jacobian_and_log_det(name, p)
    assert np.all(np.isfinite(log_abs_det)) and np.all(sign == 1.0), (sign, log_abs_det)
    assert np.max(np.abs(logdet - log_abs_det)) < 1e-8
    z_new = F.triangular_sylvester_forward(**p, reverse=reverse)[0]
    z_back = _invert_triangular_sylvester(z_new, {k: v for k, v in p.items() if k != "z"}, reverse)
    assert np.max(np.abs(z_back - p["z"])) < 1e-10                  # measured <= 1e-13


def test_householder_is_an_involution_and_preserves_length():
    p = _householder(np.random.default_rng(5))
    z_new, log_abs_det, _ = F.householder_forward(**p)
    assert np.all(log_abs_det == 0.0)
    np.testing.assert_allclose(np.linalg.norm(z_new, axis=-1), np.linalg.norm(p["z"], axis=-1), rtol=1e-14)
    np.testing.assert_allclose(F.householder_forward(z_new, p["v"])[0], p["z"], rtol=1e-13, atol=1e-15)


def test_sylvester_matches_dense_matrix_formula():
    """Batched code vs z + Q R tanh(R~ Q^T z + b) with Q, R, R~ written out as dense matrices."""
    rng = np.random.default_rng(6)
    p = _householder_sylvester(rng, (5,), 4, n_reflections=3)
    tri = {k: v for k, v in p.items() if k != "v"}
    rows, cols = np.triu_indices(4, 1)
    for i in range(5):
        R, Rt = np.diag(np.tanh(p["raw_r_diag"][i])), np.diag(np.tanh(p["raw_r_tilde_diag"][i]))
        R[rows, cols], Rt[rows, cols] = p["r_offdiag"][i], p["r_tilde_offdiag"][i]
        Q = np.eye(4)
        for v in p["v"][i]:
            Q = Q @ (np.eye(4) - 2 * np.outer(v, v) / (v @ v))     # Q = H_1 H_2 H_3
        for Qi, got in [(np.eye(4), F.triangular_sylvester_forward(**tri)[0][i]),
                        (np.eye(4)[::-1], F.triangular_sylvester_forward(**tri, reverse=True)[0][i]),
                        (Q, F.householder_sylvester_forward(**p)[0][i])]:
            want = p["z"][i] + Qi @ R @ np.tanh(Rt @ Qi.T @ p["z"][i] + p["b"][i])
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


# --------------------------------------------------------------------------- float32
@pytest.mark.parametrize("name", list(FLOWS))
def test_float32_agrees_with_float64_and_keeps_its_dtype(name):
    forward, backward, fixture, options = FLOWS[name]
    p32 = {k: v.astype(np.float32) for k, v in fixture(np.random.default_rng(7)).items()}
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}       # same numbers, float64 arithmetic
    z32, lad32, cache = forward(**p32, **options)
    z64, lad64, _ = forward(**p64, **options)
    assert z32.dtype == lad32.dtype == np.float32
    # a few float32 roundings (eps 1.2e-7) per output: measured worst |err| / (1 + |x|) 2.1e-7
    np.testing.assert_allclose(z32, z64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lad32, lad64, rtol=1e-6, atol=1e-6)
    grads = backward(np.ones_like(z32), np.ones_like(lad32), cache)
    assert all(g.dtype == np.float32 for g in grads.values()), {k: g.dtype for k, g in grads.items()}


# --------------------------------------------------------------------------- flat raw layout
LAYOUTS = {   # name -> (n_params(D), unpack, pack_grads, n for D = 3, an n no D gives)
    "planar": (F.planar_n_params, F.planar_unpack, F.planar_pack_grads, 7, 6),        # 2D + 1
    "radial": (F.radial_n_params, F.radial_unpack, F.radial_pack_grads, 5, 2),        # D + 2
    "householder": (F.householder_n_params, F.householder_unpack, F.householder_pack_grads, 3, 0),
    "triangular_sylvester": (F.triangular_sylvester_n_params, F.triangular_sylvester_unpack,
                             F.triangular_sylvester_pack_grads, 15, 14),              # D^2 + 2D
    "householder_sylvester": (lambda d: F.householder_sylvester_n_params(d, 2),       # 2D + D^2 + 2D
                              lambda raw: F.householder_sylvester_unpack(raw, 2),
                              F.householder_sylvester_pack_grads, 21, 20),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_unpack_gives_views_and_pack_grads_inverts_it(name):
    n_params, unpack, pack_grads, n, invalid_n = LAYOUTS[name]
    assert n_params(3) == n
    raw = np.random.default_rng(8).standard_normal(BATCH + (n,))
    parts = unpack(raw)
    assert all(np.shares_memory(x, raw) for x in parts.values())
    assert all(x.shape[:2] == BATCH for x in parts.values())
    np.testing.assert_array_equal(pack_grads({**parts, "z": np.zeros(BATCH + (3,))}), raw)
    with pytest.raises(ValueError, match="n_params"):
        unpack(np.zeros(BATCH + (invalid_n,)))


# (flow, layout): the chain z_0 -> z_K an encoder would drive, one flat raw vector per layer
CHAIN = [("planar", "planar"), ("householder", "householder"), ("radial", "radial"),
         ("sylvester_reversed", "triangular_sylvester"),
         ("householder_sylvester", "householder_sylvester")]


def _chain_check(rng, n=4, dim=3):
    """Gradient report of (z_K, sum of log|det|) w.r.t. z_0 and each layer's raw vector, and
    max |slogdet(finite-difference Jacobian of z_0 -> z_K) - sum of log|det||."""
    raws = {flow: LAYOUTS[layout][2](FLOWS[flow][2](rng, (n,), dim)) for flow, layout in CHAIN}
    z0 = _away(rng, (n, dim), 0.2, 1.0)

    def chain(z):
        total, caches = np.zeros(n), []
        for flow, layout in CHAIN:
            forward, _, _, options = FLOWS[flow]
            z, log_abs_det, cache = forward(z, **LAYOUTS[layout][1](raws[flow]), **options)
            total, caches = total + log_abs_det, caches + [cache]
        return z, total, caches

    def backward(dout):
        dz, dlad = dout[:z0.size].reshape(z0.shape), dout[z0.size:]
        grads = {}
        for (flow, layout), cache in reversed(list(zip(CHAIN, chain(z0)[2]))):
            g = FLOWS[flow][1](dz, dlad, cache)
            dz, grads[flow] = g["z"], LAYOUTS[layout][2](g)
        return {"z0": dz, **grads}

    report = check_gradients(lambda: np.concatenate([chain(z0)[0].ravel(), chain(z0)[1]]),
                             backward, {"z0": z0, **raws}, rng=rng)
    sign, logdet = np.linalg.slogdet(_fd_jacobian(lambda zz: chain(zz)[0], z0))
    return report, sign, np.max(np.abs(logdet - chain(z0)[1]))


def test_chain_of_layers_from_flat_raw_parameters():
    report, sign, log_det_err = _chain_check(np.random.default_rng(9))
    assert report.ok(TOL_CHAIN), str(report)
    assert np.all(sign == -1.0)                                     # one reflection in the chain
    assert log_det_err < 1e-9, log_det_err


def _pushforward_mass(rng, flip_sign=False):
    """Integral over z_K of q_K(z_K) = N(z_0; 0, 1) exp(-sum log|det|) for a 1-D chain, by the
    trapezoid rule on the image of a z_0 grid (the chain is monotone, so the image is sorted)."""
    grid = np.linspace(-12.0, 12.0, 40001)                          # (N,)
    z, total = grid[:, None], np.zeros(grid.size)                   # (N, 1), (N,)
    for name in WITH_LOG_DET:
        forward, _, fixture, options = FLOWS[name]
        params = {k: np.repeat(v, grid.size, axis=0) for k, v in fixture(rng, (1,), 1).items() if k != "z"}
        z, log_abs_det, _ = forward(z, **params, **options)
        total += log_abs_det
    assert np.all(np.diff(z[:, 0]) > 0)                             # monotone: each layer invertible
    log_q0 = -0.5 * grid ** 2 - 0.5 * np.log(2 * np.pi)
    return np.trapezoid(np.exp(log_q0 + (1 if flip_sign else -1) * total), z[:, 0])


def test_pushforward_density_integrates_to_one_in_1d():
    """The end-to-end density check; with the log-det's sign flipped (a classic bug) the same
    integral is far from 1, so the check can fail."""
    mass = _pushforward_mass(np.random.default_rng(10))
    wrong = _pushforward_mass(np.random.default_rng(10), flip_sign=True)
    assert abs(mass - 1.0) < 1e-6 and abs(wrong - 1.0) > 1e-2, (mass, wrong)


# --------------------------------------------------------------------------- purity
@pytest.mark.parametrize("name", list(FLOWS))
def test_backward_is_pure_and_forwards_can_interleave(name):
    forward, backward, fixture, options = FLOWS[name]
    rng = np.random.default_rng(11)
    p1, p2 = fixture(rng), fixture(rng)
    up1 = (rng.standard_normal(p1["z"].shape), rng.standard_normal(BATCH))
    up2 = (rng.standard_normal(p2["z"].shape), rng.standard_normal(BATCH))
    alone = backward(*up1, forward(**p1, **options)[2])
    snapshot = {k: v.copy() for k, v in p1.items()}, [u.copy() for u in up1]
    c1, c2 = forward(**p1, **options)[2], forward(**p2, **options)[2]
    backward(*up2, c2)
    again = backward(*up1, c1)
    assert all(np.array_equal(alone[k], again[k]) for k in alone)
    assert all(np.array_equal(p1[k], snapshot[0][k]) for k in p1)
    assert all(np.array_equal(u, s) for u, s in zip(up1, snapshot[1]))
    assert set(alone) == set(p1) and all(alone[k].shape == p1[k].shape for k in p1)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("name", list(FLOWS))
def test_bad_input_is_refused_with_the_argument_named(name):
    forward, backward, fixture, options = FLOWS[name]
    p = fixture(np.random.default_rng(12))
    param = [k for k in p if k != "z"][-1]
    broadcastable = p[param][:1]                                    # (1, ...) would broadcast: refused
    with pytest.raises(ValueError, match=f"{param} must have shape"):
        forward(**{**p, param: broadcastable}, **options)
    with pytest.raises(TypeError, match=f"{param} and z must have the same dtype"):
        forward(**{**p, param: p[param].astype(np.float32)}, **options)
    bad = p["z"].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="z contains 1 NaN"):
        forward(**{**p, "z": bad}, **options)
    bad = p[param].copy()
    bad.flat[0] = np.inf
    with pytest.raises(ValueError, match=f"{param} contains 1 NaN or infinite"):
        forward(**{**p, param: bad}, **options)
    with pytest.raises(TypeError, match="z must have dtype float32 or float64"):
        forward(**{**p, "z": p["z"].astype(np.int64)}, **options)
    cache = forward(**p, **options)[2]
    with pytest.raises(ValueError, match="dz_new must have shape"):
        backward(p["z"][..., :-1], None, cache)
    with pytest.raises(ValueError, match="dlog_abs_det must have shape"):
        backward(p["z"], np.zeros(3), cache)


@pytest.mark.parametrize("name, key", [("planar", "w"), ("householder", "v"),
                                       ("householder_sylvester", "v")])
def test_zero_vector_is_refused(name, key):
    forward, _, fixture, options = FLOWS[name]
    p = fixture(np.random.default_rng(13))
    p[key][0, 1] = 0.0
    with pytest.raises(ValueError, match="must be nonzero"):
        forward(**p, **options)


def test_householder_sylvester_refuses_v_without_reflection_axis():
    p = _householder_sylvester(np.random.default_rng(14))
    with pytest.raises(ValueError, match=r"v must have shape \(2, 3\) \+ \(n_reflections"):
        F.householder_sylvester_forward(**{**p, "v": p["v"][..., 0, :]})
