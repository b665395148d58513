"""Loud divergence (scratchvae.runs.divergence): the two measured failures reproduced on small data,
healthy curves left alone, and the rule itself on hand-made histories."""
import numpy as np
import pytest

from scratchvae import checkpoint as ckpt
from scratchvae.data import load_embedded_digits
from scratchvae.runs.divergence import check_divergence
from scratchvae.train import TrainConfig, train
from scratchvae.vae import VAE


@pytest.fixture(scope="module")
def digits():
    """50 training and 100 validation digits, grey levels in [0, 1] (float32)."""
    return load_embedded_digits(n_train=50, n_valid=100, n_test=1, seed=0)


def _rows(valid, train_objective):
    return [{"epoch": i + 1, "valid_elbo": v, "train_loss": -t}
            for i, (v, t) in enumerate(zip(valid, train_objective))]


# ------------------------------------------------------------------------ the rule
def test_healthy_curves_pass():
    """Shapes measured on healthy runs: a learned-sigma model whose validation ELBO wanders by
    450 nats around its best (scale 1,790), an IWAE run whose bound stays 1,470 nats above the
    validation ELBO (scale 850), a Bernoulli model that overfits by 40 nats."""
    cases = [(-875.0, [-358, 97, 416, 916, 461, 806], [-569, 0, 434, 1100, 1320, 1353]),
             (-851.0, [-195, -2, -63, -428, -368], [-216, 162, 483, 1003, 1103]),
             (-545.0, [-250, -207, -200, -215, -240], [-245, -200, -185, -170, -160])]
    for initial, valid, train_objective in cases:
        rows = _rows(valid, train_objective)
        for t in range(1, len(rows) + 1):
            check_divergence(rows[:t], initial, 784, 10.0, "advice")


def test_collapse_and_parting_are_reported_with_numbers_and_advice():
    # V_0 = -500: scale = max(500, 400 - (-500) = 900, 784 ln 2 = 543) = 900; limit 9,000 nats
    check_divergence(_rows([-300.0, 400.0, -8_500.0], [-310.0, 420.0, 450.0]), -500.0, 784,
                     10.0, "")                            # just inside: 8,900 below, 8,950 apart
    with pytest.raises(FloatingPointError, match=r"after epoch 3: the validation ELBO collapsed "
                                                 r"to -8,700.0 nats from its best 400.0.*10 x 900 "
                                                 r"nats.*Try X\."):
        check_divergence(_rows([-300.0, 400.0, -8_700.0], [-310.0, 420.0, 450.0]), -500.0, 784,
                         10.0, "Try X.")
    with pytest.raises(FloatingPointError, match=r"training objective \(1,000.0 nats\) is "
                                                 r"9,100.0 nats above the validation ELBO"):
        check_divergence(_rows([-300.0, 400.0, -8_100.0], [-310.0, 420.0, 1_000.0]), -500.0,
                         784, 10.0, "Try X.")
    check_divergence(_rows([-300.0, -1e11], [0.0, 1e3]), -500.0, 784, None, "")   # off


def test_the_scale_has_a_floor_when_the_untrained_elbo_is_near_zero():
    """V_0 = -0.5 and no gain yet: the scale is D ln 2 (13.9 nats for D = 20), not 0.5, so a
    fall of 100 nats passes and one of 200 does not."""
    check_divergence(_rows([-100.5], [-90.0]), -0.5, 20, 10.0, "")
    with pytest.raises(FloatingPointError, match="collapsed"):
        check_divergence(_rows([-200.5], [-190.0]), -0.5, 20, 10.0, "")


# ------------------------------------------------------------------------ the measured failures
def test_learned_sigma_with_a_tiny_floor_stops_loudly(digits):
    """A learned-sigma Gaussian with min_obs_scale = 1e-4 on 50 digits: sigma shrinks on pixels
    that are blank in every training image, and the validation ELBO falls to -1e4 and below
    (on longer runs, to -1e11). Measured: stopped after epoch 51, valid -15,061 against a best
    of +144 (scale 1,019); the training objective was +836."""
    s = digits
    vae = VAE(784, 8, rng=np.random.default_rng(0), hidden=(64,), likelihood="gaussian",
              obs_scale=None, min_obs_scale=1e-4)
    cfg = TrainConfig(epochs=300, batch_size=50, lr=3e-3)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
        train(vae, s.train.x, s.valid.x, cfg, log=None)
    msg = str(info.value)
    assert "validation ELBO collapsed" in msg or "above the validation ELBO" in msg, msg
    assert "min_obs_scale=0.0001" in msg and "lr=0.003" in msg, msg
    assert int(msg.split("after epoch ")[1].split(":")[0]) < 150, msg


def test_the_diverged_epoch_is_not_saved(tmp_path, monkeypatch):
    """Scripted validation ELBOs (V_0 = -500, then -300, -200, -1e6): epoch 3 collapses; the
    run folder keeps epoch 2 as its checkpoint and its best."""
    script = iter([-500.0, -300.0, -200.0, -1e6])
    monkeypatch.setattr("scratchvae.train.elbo", lambda vae, x, **kw: {
        k: np.full(len(x), next(script) if k == "elbo" else 1.0) for k in ("elbo", "rec", "kl")})
    x = (np.random.default_rng(0).random((40, 20)) < 0.3).astype(np.float32)
    vae = VAE(20, 2, rng=np.random.default_rng(0), hidden=(8,))
    with pytest.raises(FloatingPointError, match="after epoch 3: the validation ELBO collapsed"):
        train(vae, x, x[:10], TrainConfig(epochs=5, batch_size=20), out_dir=tmp_path, log=None)
    for name in ("checkpoint.npz", "best.npz"):
        assert ckpt.load_checkpoint(tmp_path / name)["meta"]["epoch"] == 2, name


@pytest.mark.slow
def test_iwae_bound_parting_from_the_validation_elbo_stops_loudly(digits):
    """IWAE with K = 50 and a learned sigma (floor 1e-4) on 50 digits pooled to 14 x 14: the
    bound keeps rising while the one-sample validation ELBO sinks. Measured: stopped after epoch
    77, training bound +253 nats against a validation ELBO of -3,439 (scale 357); about 5 s.
    With the default floor (1e-2) the same run ends its 300 epochs 5 scales apart, unflagged."""
    s = digits
    pool = lambda x: x.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(-1, 196)  # noqa: E731
    vae = VAE(196, 4, rng=np.random.default_rng(0), hidden=(32,), likelihood="gaussian",
              obs_scale=None, min_obs_scale=1e-4)
    cfg = TrainConfig(epochs=300, batch_size=50, lr=3e-3, estimator="iwae", n_samples=50)
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError) as info:
        train(vae, pool(s.train.x), pool(s.valid.x), cfg, log=None)
    msg = str(info.value)
    assert "above the validation ELBO" in msg, msg
    assert "fewer IWAE samples (n_samples=50)" in msg and "min_obs_scale=0.0001" in msg, msg


def test_the_checks_can_be_turned_off(monkeypatch):
    """divergence_factor=None: the same scripted collapse trains on to the last epoch."""
    script = iter([-500.0, -300.0, -200.0, -1e6, -2e6])
    monkeypatch.setattr("scratchvae.train.elbo", lambda vae, x, **kw: {
        k: np.full(len(x), next(script) if k == "elbo" else 1.0) for k in ("elbo", "rec", "kl")})
    x = (np.random.default_rng(0).random((40, 20)) < 0.3).astype(np.float32)
    vae = VAE(20, 2, rng=np.random.default_rng(0), hidden=(8,))
    hist = train(vae, x, x[:10], TrainConfig(epochs=4, batch_size=20, divergence_factor=None),
                 log=None)
    assert [h["valid_elbo"] for h in hist] == [-300.0, -200.0, -1e6, -2e6]


def test_a_healthy_small_run_is_not_stopped(digits):
    s = digits
    x = (s.train.x > 0.5).astype(np.float32)
    xv = (s.valid.x > 0.5).astype(np.float32)
    vae = VAE(784, 4, rng=np.random.default_rng(0), hidden=(32,))
    hist = train(vae, x, xv, TrainConfig(epochs=15, batch_size=50, lr=3e-3), log=None)
    assert len(hist) == 15
