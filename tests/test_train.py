"""Training loop, checkpoints, evaluation and generation: end to end, exactness, refusals.

Training tests use tiny models on a few hundred embedded digits so the whole file runs in
seconds; the end-to-end test trains a small model on 2000 digits for a few seconds.
"""
import glob
import json
import os

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

from scratchvae import checkpoint as ckpt
from scratchvae.data import binarize, binarize_static, load_embedded_digits
from scratchvae.evaluate import (active_units, elbo, kl_per_dimension, log_likelihood,
                                 posterior_means)
from scratchvae.generate import (decode, encode, interpolate, latent_grid, reconstruct,
                                 sample_prior)
from scratchvae.optim import Adam
from scratchvae.train import TrainConfig, load_model, train
from scratchvae.vae import VAE

pytestmark = pytest.mark.slow   # end-to-end: the maths lane is pytest -m "not slow"


@pytest.fixture(scope="module")
def digits():
    """Grey embedded digits (float32 in [0, 1]) and a static binarization of them."""
    s = load_embedded_digits(n_train=2000, n_valid=300, n_test=200, seed=0)
    binary = {k: binarize_static(getattr(s, k).x, "bernoulli", seed=i)
              for i, k in enumerate(("train", "valid", "test"))}
    return s, binary


def _tiny(seed=0, hidden=(16,), z_dim=3, x_dim=784, **kw):
    return VAE(x_dim, z_dim, rng=np.random.default_rng(seed), hidden=hidden, **kw)


def _params_equal(a, b):
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k])
                                        for k in a)


# ------------------------------------------------------------------------ (a) end to end
def test_training_improves_validation_elbo(digits):
    s, xb = digits
    vae = _tiny(hidden=(64,), z_dim=8)
    cfg = TrainConfig(epochs=3, batch_size=100, lr=2e-3, dynamic_binarization=True, seed=0)
    # the validation set train() uses: one Bernoulli draw with default_rng([seed, 2])
    xv = binarize(s.valid.x, np.random.default_rng([0, 2]))
    before = elbo(vae, xv, rng=np.random.default_rng([0, 1]))["elbo"].mean()
    hist = train(vae, s.train.x, s.valid.x, cfg, log=None)
    after = hist[-1]["valid_elbo"]
    # measured: before -567.5; epochs 1-3: -247.7, -221.6, -207.4 (0.8-2.8 s per epoch, busy box)
    assert after - before > 250, f"validation ELBO {before:.1f} -> {after:.1f}: expected +250 nats"
    assert after - hist[0]["valid_elbo"] > 10, \
        f"validation ELBO epoch 1 {hist[0]['valid_elbo']:.1f} -> epoch 3 {after:.1f}: expected +10"


# ------------------------------------------------------------------------ (b) checkpoint round trip
def test_checkpoint_round_trip_is_exact(tmp_path, digits):
    _, xb = digits
    vae = _tiny()
    opt = Adam(vae.params, lr=1e-3)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = xb["train"][:50]
        _, grads, _ = vae.loss_and_grads(x, rng.standard_normal((50, 1, 3), dtype=np.float32))
        opt.step(grads)
    meta = {"model": vae.config, "note": "round trip", "history": [{"epoch": 1, "x": 0.1}]}
    path = ckpt.save_checkpoint(tmp_path / "c.npz", vae.params, opt.state_dict(), meta)
    loaded = ckpt.load_checkpoint(path)
    assert _params_equal(loaded["params"], vae.params)
    assert _params_equal(loaded["optimizer"], opt.state_dict())
    assert loaded["meta"]["note"] == "round trip" and loaded["meta"]["history"] == meta["history"]
    fresh = _tiny(seed=99)
    opt2 = Adam(fresh.params, lr=1e-3)
    ckpt.restore_params(fresh.params, loaded["params"])
    opt2.load_state_dict(loaded["optimizer"])
    assert _params_equal(fresh.params, vae.params) and opt2.t == opt.t == 3
    assert _params_equal(opt2.state_dict(), opt.state_dict())


# ------------------------------------------------------------------------ (c) resume
def test_resume_is_bit_identical(tmp_path, digits):
    _, xb = digits
    x_train, x_valid = xb["train"][:400], xb["valid"][:100]
    cfg = dict(batch_size=64, lr=3e-3, seed=5, warmup_epochs=1.5)
    straight = _tiny()
    h_straight = train(straight, x_train, x_valid, TrainConfig(epochs=4, **cfg),
                       out_dir=tmp_path / "a", log=None)
    first = _tiny()
    train(first, x_train, x_valid, TrainConfig(epochs=2, **cfg), out_dir=tmp_path / "b", log=None)
    resumed = _tiny(seed=123)            # different initial weights: all must come from the file
    h_resumed = train(resumed, x_train, x_valid, TrainConfig(epochs=4, **cfg),
                      out_dir=tmp_path / "b", resume=str(tmp_path / "b" / "checkpoint.npz"),
                      log=None)
    assert _params_equal(resumed.params, straight.params)
    drop = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert drop(h_resumed) == drop(h_straight)
    a = ckpt.load_checkpoint(tmp_path / "a" / "checkpoint.npz")
    b = ckpt.load_checkpoint(tmp_path / "b" / "checkpoint.npz")
    assert _params_equal(a["optimizer"], b["optimizer"])
    assert a["meta"]["rng_state"] == b["meta"]["rng_state"]


# ------------------------------------------------------------------------ (d) refused checkpoints
def test_truncated_and_mismatched_checkpoints_are_refused(tmp_path, digits):
    _, xb = digits
    x_train, x_valid = xb["train"][:100], xb["valid"][:50]
    train(_tiny(), x_train, x_valid, TrainConfig(epochs=1, batch_size=50), out_dir=tmp_path,
          log=None)
    good = tmp_path / "checkpoint.npz"
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        ckpt.load_checkpoint(tmp_path / "trunc.npz")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(tmp_path / "trunc.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "missing.npz")
    other = _tiny(hidden=(32,))          # a different architecture
    with pytest.raises(ValueError, match="different model"):
        train(other, x_train, x_valid, TrainConfig(epochs=2, batch_size=50), resume=str(good),
              log=None)
    with pytest.raises(ValueError, match=r"parameter 'enc.*shape"):
        ckpt.restore_params(other.params, ckpt.load_checkpoint(good)["params"])
    with pytest.raises(ValueError, match="other settings"):
        train(_tiny(), x_train, x_valid, TrainConfig(epochs=2, batch_size=10), resume=str(good),
              log=None)


# ------------------------------------------------------------------------ (e) atomic saves
def test_failed_save_leaves_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    vae = _tiny()
    path = tmp_path / "checkpoint.npz"
    ckpt.save_checkpoint(path, vae.params, {}, {"version": 1})
    old = {k: v.copy() for k, v in vae.params.items()}
    for p in vae.params.values():
        p += 1.0

    def savez_that_dies(file, **arrays):          # writes part of a zip, then fails (disk full)
        file.write(b"PK\x03\x04" + b"\0" * 1000)
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(np, "savez", savez_that_dies)
    with pytest.raises(OSError, match="simulated"):
        ckpt.save_checkpoint(path, vae.params, {}, {"version": 2})
    monkeypatch.undo()
    loaded = ckpt.load_checkpoint(path)
    assert loaded["meta"]["version"] == 1 and _params_equal(loaded["params"], old)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz"], "a temporary file was left behind"


# ------------------------------------------------------------------------ (f) early stopping
def test_early_stopping_keeps_the_best_epoch(tmp_path, digits, monkeypatch):
    _, xb = digits
    # the first value is V_0, the untrained model's (the reference of the divergence checks)
    script = iter([-150.0, -100.0, -90.0, -95.0, -96.0, -80.0, -70.0])   # best at epoch 2

    def scripted_elbo(vae, x, **kw):
        v = next(script)
        return {k: np.full(len(x), v if k == "elbo" else 1.0) for k in ("elbo", "rec", "kl")}

    monkeypatch.setattr("scratchvae.train.elbo", scripted_elbo)
    lines = []
    hist = train(_tiny(), xb["train"][:100], xb["valid"][:50],
                 TrainConfig(epochs=6, batch_size=50, patience=2), out_dir=tmp_path,
                 log=lines.append)
    assert [h["valid_elbo"] for h in hist] == [-100.0, -90.0, -95.0, -96.0], \
        "patience 2 must stop after the two epochs without improvement that follow epoch 2"
    assert "early stopping" in lines[-1]
    assert ckpt.load_checkpoint(tmp_path / "best.npz")["meta"]["epoch"] == 2
    assert ckpt.load_checkpoint(tmp_path / "checkpoint.npz")["meta"]["epoch"] == 4


def test_an_iwae_run_is_judged_by_its_validation_iwae_bound(tmp_path, digits, monkeypatch):
    _, xb = digits
    # V_0 first; per epoch the ELBO (falling after epoch 1) then L_K (rising until epoch 3)
    elbos = iter([-150.0, -100.0, -101.0, -102.0, -103.0, -104.0, -105.0])
    bounds = iter([-140.0, -95.0, -94.0, -93.0, -93.5, -94.0, -92.0])

    def scripted_elbo(vae, x, **kw):
        v = next(bounds if kw.get("estimator") == "iwae" else elbos)
        return {k: np.full(len(x), v if k == "elbo" else 1.0) for k in ("elbo", "rec", "kl")}

    monkeypatch.setattr("scratchvae.train.elbo", scripted_elbo)
    lines = []
    hist = train(_tiny(), xb["train"][:100], xb["valid"][:50],
                 TrainConfig(epochs=6, batch_size=50, patience=2, estimator="iwae", n_samples=3),
                 out_dir=tmp_path, log=lines.append)
    assert [h["valid_iwae"] for h in hist] == [-95.0, -94.0, -93.0, -93.5, -94.0], \
        "L_K, not the ELBO (best at epoch 1), decides: best at epoch 3, then 2 epochs of patience"
    assert "valid L_3   -93.000" in lines[2] and "early stopping" in lines[-1]
    assert ckpt.load_checkpoint(tmp_path / "best.npz")["meta"]["epoch"] == 3


def test_the_validation_iwae_bound_is_l_k_with_the_training_k(digits):
    _, xb = digits
    vae = _tiny()
    hist = train(vae, xb["train"][:200], xb["valid"][:100],
                 TrainConfig(epochs=2, batch_size=50, estimator="iwae", n_samples=3, seed=5))
    again = elbo(vae, xb["valid"][:100], rng=np.random.default_rng([5, 3]), n_samples=3,
                 estimator="iwae")["elbo"].mean()
    assert hist[-1]["valid_iwae"] == float(again)
    assert all(h["valid_iwae"] > h["valid_elbo"] for h in hist), "L_3 >= ELBO, on average"
    mc = train(_tiny(), xb["train"][:200], xb["valid"][:100], TrainConfig(epochs=1, batch_size=50,
                                                                          estimator="mc"))
    assert "valid_iwae" not in mc[0]


# ------------------------------------------------------------------------ (g) KL warm-up
def test_kl_warmup_rises_linearly_to_one(digits, monkeypatch):
    _, xb = digits
    vae, betas = _tiny(), []
    original = vae.loss_and_grads

    def recording(x, eps, estimator, beta, **kw):
        betas.append(beta)
        return original(x, eps, estimator, beta, **kw)

    monkeypatch.setattr(vae, "loss_and_grads", recording)
    hist = train(vae, xb["train"][:200], xb["valid"][:50],
                 TrainConfig(epochs=4, batch_size=50, warmup_epochs=2.5), log=None)
    steps = np.arange(16)                                   # 4 steps per epoch, 4 epochs
    np.testing.assert_allclose(betas, np.minimum(1.0, steps / 10.0), rtol=0, atol=1e-15)
    assert betas[0] == 0.0 and betas[-1] == 1.0 and max(betas) == 1.0
    assert [h["beta"] for h in hist] == [0.3, 0.7, 1.0, 1.0]


# ------------------------------------------------------------------------ (h) dynamic binarization
def test_dynamic_binarization_is_fresh_per_epoch_and_seeded(digits, monkeypatch):
    s, _ = digits
    x_grey = s.train.x[:100]

    def run(seed):
        vae, seen = _tiny(), []
        original = vae.loss_and_grads
        monkeypatch.setattr(vae, "loss_and_grads",
                            lambda x, *a, **k: (seen.append(x.copy()), original(x, *a, **k))[1])
        train(vae, x_grey, s.valid.x[:50],
              TrainConfig(epochs=2, batch_size=100, dynamic_binarization=True, seed=seed), log=None)
        return vae, seen

    vae_a, seen_a = run(0)
    vae_b, seen_b = run(0)
    vae_c, _ = run(1)
    assert all(np.array_equal(a, b) for a, b in zip(seen_a, seen_b))
    assert _params_equal(vae_a.params, vae_b.params), "same seed must give the same run"
    assert not _params_equal(vae_a.params, vae_c.params), "another seed must give another run"
    x1, x2 = seen_a                          # epoch 1 and 2, one batch each (permuted rows)
    assert set(np.unique(x1)) <= {0.0, 1.0} and x1.dtype == np.float32
    assert not np.array_equal(np.sort(x1.sum(1)), np.sort(x2.sum(1))), "no fresh draw per epoch"
    # E[x_b] = x: 78,400 Bernoulli draws, std of the mean < 0.0018; tolerance 0.01
    assert abs(x1.mean() - x_grey.mean()) < 0.01


# ------------------------------------------------------------------------ (i) bad data
@pytest.mark.parametrize("case,match", [("nan", "NaN"), ("width", "shape"), ("grey", "binary"),
                                        ("range", r"\[0, 1\]"), ("dtype", "dtype")])
def test_bad_data_is_refused(digits, case, match):
    s, xb = digits
    x = xb["train"][:60].copy()
    cfg = TrainConfig(epochs=1, batch_size=30)
    if case == "nan":
        x[3, 5] = np.nan
    elif case == "width":
        x = x[:, :780]
    elif case == "grey":
        x = s.train.x[:60]
    elif case == "range":
        x = s.train.x[:60] * 2
        cfg.dynamic_binarization = True
    else:
        x = x.astype(np.float64)
    with pytest.raises((ValueError, TypeError), match=match):
        train(_tiny(), x, xb["valid"][:30], cfg, log=None)


# ------------------------------------------------------------------------ evaluate.py
def _small_model(seed=0, posterior="diagonal", x_dim=12, z_dim=2):
    """float64 model with spread-out random weights: a large ELBO-to-log p(x) gap to measure."""
    rng = np.random.default_rng(seed)
    vae = VAE(x_dim, z_dim, rng=rng, hidden=(10,), activation="tanh", posterior=posterior,
              dtype=np.float64)
    for p in vae.params.values():
        p[...] = rng.standard_normal(p.shape) * 0.8
    W, b = vae.encoder.params["1.W"], vae.encoder.params["1.b"]           # (10, n_q), (n_q,)
    W[:, z_dim:2 * z_dim] *= 0.1      # broad, input-independent-ish scales: a safe proposal, so
    b[z_dim:2 * z_dim] = 0.5          # that importance sampling converges at moderate K
    x = (rng.random((40, x_dim)) < 0.4).astype(np.float64)
    return vae, x


def _log_px_by_quadrature(vae, x, half_width=7.0, n=301):
    """Independent oracle for z_dim = 2: log of the integral of p(x|z) p(z) on a dense grid."""
    g = np.linspace(-half_width, half_width, n)
    z = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)                 # (n*n, 2)
    logits = vae.decode(z)                                              # (n*n, D)
    log_px_z = x @ logits.T - np.logaddexp(0, logits).sum(1)            # (N, n*n)
    log_pz = norm.logpdf(z).sum(1)
    return logsumexp(log_px_z + log_pz, axis=1) + 2 * np.log(g[1] - g[0])


def test_iwae_bound_grows_with_k_and_approaches_quadrature():
    vae, x = _small_model()
    exact = _log_px_by_quadrature(vae, x)
    means = {}
    for K in (1, 10, 100, 2000):
        runs = [log_likelihood(vae, x, rng=np.random.default_rng([K, r]), K=K, k_chunk=500)
                for r in range(4)]
        means[K] = np.mean(runs, axis=0)                                   # (N,)
    el = elbo(vae, x, rng=np.random.default_rng(7), n_samples=200)["elbo"]
    # measured means: ELBO -15.45, L_1 -15.52, L_10 -10.64, L_100 -9.69, L_2000 -9.65, exact -9.64
    assert el.mean() <= means[10].mean(), "ELBO must not exceed L_10 on average"
    for k1, k2 in ((1, 10), (10, 100), (100, 2000)):
        diff = means[k2] - means[k1]
        sem = diff.std() / np.sqrt(len(diff))
        assert diff.mean() > -3 * sem, \
            f"L_{k2} < L_{k1} by {-diff.mean():.4f} nats (tolerance 3 s.e.m. = {3 * sem:.4f})"
    assert means[10].mean() - el.mean() > 2.0, "the bound must tighten visibly from K = 1 to 10"
    # L_K <= log p(x) in expectation and -> log p(x): tolerance 0.05 nats per example on average
    assert abs(means[2000].mean() - exact.mean()) < 0.05, (means[2000].mean(), exact.mean())
    assert means[100].mean() <= exact.mean() + 0.01


def test_log_likelihood_chunking_is_exact_when_the_noise_stream_lines_up():
    """With batch_size=1 each example's K draws are consecutive in the stream whatever k_chunk
    is, so chunked and unchunked runs see the same eps and must agree to rounding."""
    vae, x = _small_model(seed=3)
    x = x[:5]
    ref = log_likelihood(vae, x, rng=np.random.default_rng(0), K=120, k_chunk=120, batch_size=1)
    for k_chunk in (1, 7, 30, 119):
        got = log_likelihood(vae, x, rng=np.random.default_rng(0), K=120, k_chunk=k_chunk,
                             batch_size=1)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    # with batch_size > 1 the same draws land on other (example, sample) pairs: agreement is
    # statistical only; both must be near the quadrature value. Measured over 20 seeds: the
    # per-example std of L_2000 is 0.03-0.20 nats, so the std of the mean over these 5 examples is
    # ~0.05; tolerance 0.15 (3 sd). (One estimate may exceed log p(x): L_K <= log p(x) holds in
    # expectation only.)
    exact = _log_px_by_quadrature(vae, x)
    for chunk, batch in ((2000, 1), (300, 5)):
        est = log_likelihood(vae, x, rng=np.random.default_rng(1), K=2000, k_chunk=chunk,
                             batch_size=batch)
        assert abs(np.mean(est - exact)) < 0.15, (chunk, batch, est, exact)


def test_kl_per_dimension_adds_up_to_the_analytic_kl():
    vae, x = _small_model(seed=1, z_dim=3)
    kl_dim = kl_per_dimension(vae, x, batch_size=7)                    # several batches
    _, _, stats = vae.forward(x, np.zeros((len(x), 1, 3)))
    np.testing.assert_allclose(kl_dim.sum(), stats["kl"].mean(), rtol=1e-12)
    assert kl_dim.shape == (3,) and np.all(kl_dim > 0)
    full, xf = _small_model(seed=1, z_dim=3, posterior="full")
    _, _, stats_full = full.forward(xf, np.zeros((len(xf), 1, 3)))
    assert kl_per_dimension(full, xf).sum() <= stats_full["kl"].mean() + 1e-12, \
        "sum of marginal KLs must not exceed the full KL (the gap is q's total correlation)"


def test_active_units_counts_dimensions_whose_mean_varies():
    vae, x = _small_model(seed=2, z_dim=3)
    W, b = vae.encoder.params["1.W"], vae.encoder.params["1.b"]        # last layer: (H, 2*Dz)
    W[:, 1] = 0.0
    b[1] = 0.4                                                         # mu_2 = 0.4 for every x
    W[:, 2] *= 0.01                                                    # mu_3 barely moves
    n, var = active_units(vae, x)
    assert n == 1 and var[1] < 1e-20 and var[2] < 0.01 < var[0], var
    np.testing.assert_allclose(var, posterior_means(vae, x).var(axis=0))


# ------------------------------------------------------------------------ generate.py
def test_latent_grid_shapes_order_and_refusal():
    vae, _ = _small_model()
    images, z = latent_grid(vae, 5)
    assert images.shape == (25, 12) and z.shape == (25, 2) and np.all((images > 0) & (images < 1))
    zz = z.reshape(5, 5, 2)
    assert np.all(np.diff(zz[..., 0], axis=1) > 0), "z_1 must increase along each row"
    assert np.all(np.diff(zz[..., 1], axis=0) < 0), "z_2 must decrease down the rows"
    np.testing.assert_allclose(zz[0, 0], [norm.ppf(0.05), norm.ppf(0.95)])
    with pytest.raises(ValueError, match="2-D latent"):
        latent_grid(_small_model(z_dim=3)[0], 5)


def test_sampling_reconstruction_interpolation():
    vae, x = _small_model()
    a = sample_prior(vae, 7, rng=np.random.default_rng(4))
    b = sample_prior(vae, 7, rng=np.random.default_rng(4))
    assert a.shape == (7, 12) and np.array_equal(a, b) and np.all((a > 0) & (a < 1))
    pixels = sample_prior(vae, 7, rng=np.random.default_rng(4), mean=False)
    assert set(np.unique(pixels)) <= {0.0, 1.0}
    assert reconstruct(vae, x).shape == x.shape
    path = interpolate(vae, x[0], x[1], n_steps=4)
    ends = decode(vae, encode(vae, x[:2]))
    np.testing.assert_allclose(path[[0, -1]], ends, rtol=1e-12)


def test_load_model_rebuilds_the_trained_model(tmp_path, digits):
    _, xb = digits
    vae = _tiny(posterior="full")
    train(vae, xb["train"][:100], xb["valid"][:50], TrainConfig(epochs=1, batch_size=50),
          out_dir=tmp_path, log=None)
    again, meta = load_model(tmp_path / "checkpoint.npz")
    assert _params_equal(again.params, vae.params) and again.config == vae.config
    assert meta["epoch"] == 1
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert len(rows) == 1 and (tmp_path / "metrics.csv").read_text().startswith("epoch,")
    assert not glob.glob(str(tmp_path / ".tmp-*"))


def test_divergence_is_reported_with_context_not_a_traceback_from_inside():
    """SGD with lr 0.01 on an untrained 784-32-20 model blows up within two epochs (found by the
    CLI): the trainer must say where, and what to do."""
    s = load_embedded_digits(300, 100, 1)
    x = binarize_static(s.train.x, "bernoulli", seed=0)
    xv = binarize_static(s.valid.x, "bernoulli", seed=1)
    vae = VAE(784, 20, rng=np.random.default_rng([0, 3]), hidden=(32,))
    # numpy's overflow warnings are the divergence itself; the trainer's error is what we assert
    with np.errstate(all="ignore"), pytest.raises(
            # the validation ELBO collapses to about -4e12 after epoch 1: the divergence checks
            # (scratchvae.runs.divergence) report that before the NaN of epoch 2 would
            FloatingPointError, match=r"training diverged (at|after) epoch \d+.*lower.*learning rate \(lr=0.01\)"):
        train(vae, x, xv, TrainConfig(epochs=2, batch_size=50, optimizer="sgd", lr=0.01), log=None)


def test_nan_validation_elbo_stops_training_before_a_checkpoint(tmp_path):
    s = load_embedded_digits(100, 50, 1)
    vae = VAE(784, 20, rng=np.random.default_rng([0, 3]), hidden=(16,))
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="diverged"):
        train(vae, s.train.x, s.valid.x, TrainConfig(epochs=1, optimizer="sgd", lr=10,
                                                     dynamic_binarization=True),
              out_dir=tmp_path, log=None)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_divergence_with_the_full_posterior_is_reported_too():
    """NaN parameters first show up in the encoder's output (L of the full posterior); that must
    give the same clear FloatingPointError, not a complaint about scale_tril."""
    s = load_embedded_digits(200, 50, 1)
    x = binarize_static(s.train.x, "bernoulli", seed=0)
    xv = binarize_static(s.valid.x, "bernoulli", seed=1)
    vae = VAE(784, 4, rng=np.random.default_rng(0), hidden=(16,), posterior="full")
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="training diverged"):
        train(vae, x, xv, TrainConfig(epochs=3, batch_size=50, optimizer="sgd", lr=1e3), log=None)
