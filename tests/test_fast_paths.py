"""The fast forms on the training path agree with the plain ones they replace.

- The trainer's minibatch gather (from a C-contiguous copy, uint8 for 0/1 data) gives the same
  parameters, bit for bit, as the plain loop of the ``scratchvae.train`` docstring with
  ``xb = x_train[idx]``, for C- and Fortran-ordered data, with and without dynamic binarization.
- The IWAE backward flushes subnormal entries of the decoder-output gradient: that zeroes them,
  leaves normal entries alone, and moves the gradients by far less than float32 rounding.
"""
import numpy as np
import pytest

from scratchvae import vae as vae_module
from scratchvae.data import binarize
from scratchvae.optim import Adam
from scratchvae.train import TrainConfig, train
from scratchvae.vae import VAE


def _model(seed=0):
    return VAE(30, 3, rng=np.random.default_rng(seed), hidden=(16,))


def _plain_loop(model, x, config, gather=lambda x, idx: x[idx]):
    """The epoch loop as the trainer's docstring states it, with the plain gather x[idx]."""
    rng = np.random.default_rng(config.seed)
    opt = Adam(model.params, lr=config.lr)
    N, B = len(x), config.batch_size
    for _ in range(config.epochs):
        perm = rng.permutation(N)
        for i in range(-(-N // B)):
            idx = perm[i * B:(i + 1) * B]
            xb = gather(x, idx)
            if config.dynamic_binarization:
                xb = binarize(xb, rng)
            eps = rng.standard_normal((len(idx), config.n_samples, model.z_dim), dtype=model.dtype)
            _, grads, _ = model.loss_and_grads(xb, eps, config.estimator, 1.0, check=False)
            opt.step(grads)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_trainer_gather_is_bit_identical_to_the_plain_gather(dynamic, order):
    rng = np.random.default_rng(3)
    x = rng.random((203, 30)).astype(np.float32)              # 203 rows: the last batch is short
    if not dynamic:
        x = (x < 0.3).astype(np.float32)
    x = np.asarray(x, order=order)                            # np.load may give Fortran order
    config = TrainConfig(epochs=2, batch_size=50, lr=3e-3, seed=7, dynamic_binarization=dynamic)
    trained, plain = _model(), _model()
    train(trained, x, None, config, log=None, threads=1)
    _plain_loop(plain, x, config)
    for k in plain.params:
        assert trained.params[k].tobytes() == plain.params[k].tobytes(), k
    # negative control: the same rows in another order within each batch change the bits
    reordered = _model()
    _plain_loop(reordered, x, config, gather=lambda x, idx: x[np.sort(idx)])
    assert any(reordered.params[k].tobytes() != plain.params[k].tobytes() for k in plain.params)


def test_flush_subnormals_zeroes_them_and_keeps_normal_numbers():
    tiny = np.finfo(np.float32).tiny
    a = np.array([tiny / 2, -tiny / 1e6, tiny, 1e-20, -3.5, 0.0, tiny * 1e10], dtype=np.float32)
    out = a.copy()
    vae_module.flush_subnormals(out)
    np.testing.assert_array_equal(out[:2], 0)
    assert out[3:6].tobytes() == a[3:6].tobytes()             # |a| > 7e-24: exactly unchanged
    assert abs(out[2] - a[2]) <= 3e-38 and abs(out[6] - a[6]) <= 3e-38


def test_iwae_flush_moves_gradients_by_less_than_rounding(monkeypatch):
    """Far-apart samples (eps of size 8) make importance weights of e^-100 and less, hence
    subnormal decoder-output gradients in float32; the flushed and the unflushed gradients agree
    to float32 rounding."""
    model = VAE(30, 3, rng=np.random.default_rng(1), hidden=(16,))
    rng = np.random.default_rng(2)
    x = (rng.random((8, 30)) < 0.4).astype(np.float32)
    eps = (8 * rng.standard_normal((8, 40, 3))).astype(np.float32)
    seen = {}
    flush = vae_module.flush_subnormals

    def spy(a):
        seen["subnormal"] = int(np.count_nonzero((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)))
        flush(a)
        seen["after"] = int(np.count_nonzero((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)))

    monkeypatch.setattr(vae_module, "flush_subnormals", spy)
    _, flushed, _ = model.loss_and_grads(x, eps, "iwae")
    assert seen["subnormal"] > 0 and seen["after"] == 0, seen
    monkeypatch.setattr(vae_module, "flush_subnormals", lambda a: None)
    _, plain, _ = model.loss_and_grads(x, eps, "iwae")
    for k in plain:
        np.testing.assert_allclose(flushed[k], plain[k], rtol=1e-6, atol=1e-30, err_msg=k)
