"""Optimizers: the update formulas, dtype preservation, subnormal flushing, seeding, state."""
import numpy as np
import pytest

from scratchvae.nn import MLP
from scratchvae import optim
from scratchvae.optim import OPTIMIZERS, SGD, Adagrad, Adam, _flush_constant, _flush_subnormals


def _params(dtype=np.float64):
    return {"w": np.array([1.0, -2.0, 0.5], dtype=dtype), "b": np.array([[0.3]], dtype=dtype)}


def test_adam_matches_textbook_algorithm():
    """Kingma & Ba (2015) Algorithm 1 written out naively for three steps."""
    params = _params()
    opt = Adam(params, lr=0.1, beta1=0.8, beta2=0.95, eps=1e-3)
    ref = {k: v.copy() for k, v in params.items()}
    m = {k: 0 * v for k, v in ref.items()}
    v = {k: 0 * x for k, x in ref.items()}
    rng = np.random.default_rng(0)
    for t in range(1, 4):
        grads = {k: rng.standard_normal(x.shape) for k, x in ref.items()}
        opt.step(grads)
        for k in ref:
            m[k] = 0.8 * m[k] + 0.2 * grads[k]
            v[k] = 0.95 * v[k] + 0.05 * grads[k] ** 2
            m_hat, v_hat = m[k] / (1 - 0.8**t), v[k] / (1 - 0.95**t)
            ref[k] = ref[k] - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-3)
    for k in ref:
        np.testing.assert_allclose(params[k], ref[k], rtol=1e-13, atol=1e-15)


def test_sgd_momentum_and_adagrad_formulas():
    p1, p2 = _params(), _params()
    sgd, ada = SGD(p1, lr=0.1, momentum=0.5), Adagrad(p2, lr=0.2, eps=1e-8)
    g1 = {k: np.full_like(v, 2.0) for k, v in p1.items()}
    g2 = {k: np.full_like(v, -1.0) for k, v in p1.items()}
    sgd.step(g1)
    sgd.step(g2)
    ada.step(g1)
    ada.step(g2)
    # SGD: v1 = -0.2, p += v1; v2 = 0.5 * -0.2 + 0.1 = -0.1 + 0.1 = 0.0
    np.testing.assert_allclose(p1["w"], _params()["w"] - 0.2 + 0.0)
    # Adagrad: s1 = 4 -> step -0.2*2/2 = -0.2; s2 = 5 -> step +0.2/sqrt(5)
    np.testing.assert_allclose(p2["w"], _params()["w"] - 0.2 + 0.2 / np.sqrt(5), rtol=1e-7)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_parameters_stay_float32(name):
    rng = np.random.default_rng(1)
    mlp = MLP([5, 4, 2], "relu", rng=rng, dtype=np.float32)
    opt = OPTIMIZERS[name](mlp.params, lr=1e-2)
    ids = {k: id(v) for k, v in mlp.params.items()}
    for _ in range(3):
        out, cache = mlp.forward(rng.standard_normal((8, 5)).astype(np.float32))
        _, grads = mlp.backward(out, cache)
        assert all(g.dtype == np.float32 for g in grads.values())
        opt.step(grads)
    for k, p in mlp.params.items():
        assert p.dtype == np.float32 and id(p) == ids[k]  # updated in place, same arrays
    for slots in opt.state.values():
        assert all(s.dtype == np.float32 for s in slots.values())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_same_seed_bit_identical_after_steps(name):
    def run():
        rng = np.random.default_rng(42)
        mlp = MLP([6, 5, 3], "tanh", rng=rng, dtype=np.float32)
        opt = OPTIMIZERS[name](mlp.params, lr=1e-2)
        for _ in range(5):
            out, cache = mlp.forward(rng.standard_normal((4, 6)).astype(np.float32))
            _, grads = mlp.backward(out - 1, cache)
            opt.step(grads)
        return mlp.params

    a, b = run(), run()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flush_constant_zeroes_subnormals_and_keeps_normals(dtype):
    info = np.finfo(dtype)
    c = _flush_constant(np.dtype(dtype))
    x = np.array([info.smallest_subnormal, -info.tiny / 3, info.tiny * 0.999, 1e-3, -7.5, 1e-20],
                 dtype=dtype)
    y = x.copy()
    _flush_subnormals(y, c)
    np.testing.assert_array_equal(y[:3], 0)
    assert y[3:].tobytes() == x[3:].tobytes()


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_decaying_state_never_stays_subnormal(name):
    """After a gradient stops (a dead pixel's weight), momentum decays geometrically; 3000 steps of
    0.9^t would reach 1e-140, far below float32's smallest normal 1.2e-38. Flushing every step
    (SGD always; Adam with flush_every=1), no state entry is ever subnormal after a step."""
    params = {"w": np.ones(1000, dtype=np.float32)}
    opt = Adam(params, lr=1e-3, flush_every=1) if name == "adam" else SGD(params, lr=1e-3)
    limit = 0
    rng = np.random.default_rng(2)
    opt.step({"w": rng.standard_normal(1000).astype(np.float32)})
    zero = {"w": np.zeros(1000, dtype=np.float32)}
    tiny = np.finfo(np.float32).tiny
    run, longest, ever = 0, 0, 0
    for _ in range(3000):
        opt.step(zero)
        sub = any(np.any((slot != 0) & (np.abs(slot) < tiny)) for slot in opt.state["w"].values())
        run = run + 1 if sub else 0
        longest, ever = max(longest, run), ever + sub
    assert longest <= limit, f"{name}: subnormal state for {longest} consecutive steps"
    first = "m" if name == "adam" else "velocity"
    # decayed: rounding to the flush grid leaves 0 or a few grid steps (~1e-37), never subnormal
    assert np.abs(opt.state["w"][first]).max() < 1e-36
    if name == "adam":
        assert ever == 0
        assert np.count_nonzero(opt.state["w"]["v"]) > 0    # v (beta2 = 0.999) still normal


@pytest.mark.parametrize("flush_every", [8, None])
def test_adam_flush_every_k_bounds_how_long_an_entry_stays_subnormal(flush_every):
    """At most k - 1 consecutive steps with a subnormal entry (the default k is 10)."""
    params = {"w": np.ones(1000, dtype=np.float32)}
    opt = Adam(params, lr=1e-3) if flush_every is None else Adam(params, lr=1e-3, flush_every=flush_every)
    opt.step({"w": np.random.default_rng(3).standard_normal(1000).astype(np.float32)})
    tiny, run, longest = np.finfo(np.float32).tiny, 0, 0
    for _ in range(2000):
        opt.step({"w": np.zeros(1000, dtype=np.float32)})
        m = opt.state["w"]["m"]
        run = run + 1 if np.any((m != 0) & (np.abs(m) < tiny)) else 0
        longest = max(longest, run)
    assert 0 < longest <= opt.flush_every - 1


def test_without_flush_adam_state_goes_subnormal():
    """Negative control: flush_every=0 reproduces the problem the flush exists for."""
    params = {"w": np.ones(100, dtype=np.float32)}
    opt = Adam(params, lr=1e-3, flush_every=0)
    opt.step({"w": np.full(100, 0.5, dtype=np.float32)})
    for _ in range(1000):
        opt.step({"w": np.zeros(100, dtype=np.float32)})
    m = opt.state["w"]["m"]
    assert np.all((m != 0) & (np.abs(m) < np.finfo(np.float32).tiny))


def test_state_dict_round_trip_continues_bit_exactly():
    rng = np.random.default_rng(3)
    grads = [{k: rng.standard_normal(v.shape) for k, v in _params().items()} for _ in range(6)]
    p_ref = _params()
    ref = Adam(p_ref, lr=0.05)
    for g in grads:
        ref.step(g)
    p = _params()
    opt = Adam(p, lr=0.05)
    for g in grads[:3]:
        opt.step(g)
    saved_p, saved_s = {k: v.copy() for k, v in p.items()}, opt.state_dict()
    p2 = {k: v.copy() for k, v in saved_p.items()}
    opt2 = Adam(p2, lr=0.05)
    opt2.load_state_dict(saved_s)
    for g in grads[3:]:
        opt2.step(g)
    for k in p_ref:
        assert p2[k].tobytes() == p_ref[k].tobytes()


def test_bad_arguments():
    with pytest.raises(ValueError, match="lr must be > 0"):
        Adam(_params(), lr=0.0)
    with pytest.raises(ValueError, match=r"beta1 must lie in \[0.0, 1.0\)"):
        Adam(_params(), beta1=1.0)
    with pytest.raises(ValueError, match=r"momentum must lie in"):
        SGD(_params(), momentum=-0.1)
    with pytest.raises(TypeError, match="params must be a non-empty dict"):
        Adam({})
    with pytest.raises(TypeError, match=r"params\['w'\] must be a float32 or float64"):
        Adam({"w": np.arange(3)})
    opt = Adam(_params())
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        opt.step({"w": np.zeros(3)})
    with pytest.raises(ValueError, match=r"grads\['w'\] must have shape \(3,\) and dtype float64"):
        opt.step({"w": np.zeros(3, np.float32), "b": np.zeros((1, 1))})
    with pytest.raises(ValueError, match="optimizer state has keys"):
        opt.load_state_dict({"t": np.array(1)})


# ------------------------------------------------------------------ Adam piece by piece
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_in_pieces_is_bit_identical_to_one_piece(monkeypatch, dtype):
    """The update of each entry does not depend on how the arrays are cut: 7-entry pieces (sizes
    not multiples of 7, a 0-d parameter) give the same bits as whole arrays, flushes included."""
    rng = np.random.default_rng(4)
    shapes = {"W": (5, 9), "b": (9,), "s": ()}
    grads = [{k: np.asarray(rng.standard_normal(s) * 10.0 ** rng.integers(-30, 2, s), dtype=dtype)
              for k, s in shapes.items()} for _ in range(12)]

    def run(piece_bytes):
        monkeypatch.setattr(optim, "_PIECE_BYTES", piece_bytes)
        params = {k: np.asarray(np.random.default_rng(5).standard_normal(s), dtype=dtype)
                  for k, s in shapes.items()}
        opt = Adam(params, lr=0.05, flush_every=3)
        for g in grads:
            opt.step(g)
        return params, opt.state

    (p1, s1), (p2, s2) = run(7 * np.dtype(dtype).itemsize), run(1 << 20)
    for k in shapes:
        assert p1[k].tobytes() == p2[k].tobytes()
        assert s1[k]["m"].tobytes() == s2[k]["m"].tobytes()
        assert s1[k]["v"].tobytes() == s2[k]["v"].tobytes()


# ------------------------------------------------------------------ refusing bad input
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_is_refused_before_anything_changes(name, bad):
    params = _params()
    opt = OPTIMIZERS[name](params, lr=0.1)
    opt.step({k: np.full_like(v, 0.5) for k, v in params.items()})
    before = {k: v.copy() for k, v in params.items()}, opt.state_dict()
    grads = {"w": np.array([0.1, 0.2, 0.3]), "b": np.array([[bad]])}    # the last array is bad
    with pytest.raises(FloatingPointError, match=r"grads\['b'\] has 1 NaN or inf entries of 1"):
        opt.step(grads)
    for k, v in params.items():
        assert v.tobytes() == before[0][k].tobytes()
    after = opt.state_dict()
    assert after.keys() == before[1].keys()
    assert all(after[k].tobytes() == before[1][k].tobytes() for k in after)   # t and every slot


def test_huge_finite_gradient_is_accepted():
    """g.g = 4e38 overflows float32 (max 3.4e38), but every entry is finite: the step goes ahead."""
    params = {"w": np.ones(4, dtype=np.float32)}
    opt = Adam(params, lr=0.1)
    opt.step({"w": np.full(4, 1e19, dtype=np.float32)})
    assert np.all(np.isfinite(params["w"])) and np.all(params["w"] < 1)


def test_load_state_dict_refuses_a_bad_step_count_or_slot_and_restores_nothing():
    opt = Adam(_params(), lr=0.05)
    opt.step({k: np.full_like(v, 0.5) for k, v in _params().items()})
    good = opt.state_dict()
    fresh = Adam(_params(), lr=0.05)
    for t, err, msg in [(np.array(-1), ValueError, r"'t' \(the step count\) must be >= 0, got -1"),
                        (-3, ValueError, "must be >= 0, got -3"),
                        (np.array(2.0), TypeError, "must be an integer scalar"),
                        (np.array([1, 2]), TypeError, "must be an integer scalar"),
                        (True, TypeError, "must be an integer scalar")]:
        with pytest.raises(err, match=msg):
            fresh.load_state_dict({**good, "t": t})
    with pytest.raises(ValueError, match="optimizer state b/v has NaN or inf entries"):
        fresh.load_state_dict({**good, "b/v": np.full((1, 1), np.nan)})
    assert fresh.t == 0 and all(not np.any(a) for slots in fresh.state.values() for a in slots.values())
    fresh.load_state_dict({**good, "t": 1})     # a plain int is fine
    assert fresh.t == 1


def test_params_must_be_writeable_and_contiguous():
    with pytest.raises(ValueError, match=r"params\['w'\] must be a writeable C-contiguous array"):
        Adam({"w": np.ones((3, 4)).T})
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\['w'\] must be a writeable C-contiguous"):
        SGD({"w": frozen})
    with pytest.raises(TypeError, match="grads must be a dict"):
        Adam(_params()).step([np.zeros(3)])
    with pytest.raises(TypeError, match=r"grads\['w'\] must be an ndarray"):
        Adam(_params()).step({"w": [0.0, 0.0, 0.0], "b": np.zeros((1, 1))})
