"""A conditional VAE on the embedded digits: draw new examples of each requested class.

    python demos/conditional_vae.py [--out out/] [--seed 0] [--classes 0,1,...,9]

Model (scratchvae.cvae.CVAE): q(z | x, y) and p(x | z, y) with y one-hot over the 10 digits,
z_dim = 4, one ReLU hidden layer of 256 units in each network, Bernoulli pixels. Data: digits
rendered by scratchvae.data.digits (28 x 28), binarized once with a fixed seed (one Bernoulli draw per
pixel). After training, each requested class y gets new images E[x | z, y] with z ~ N(0, I).
A small latent matters: with z_dim = 8 (10 epochs, 128 hidden units) the encoder also put the
class into z, the decoder leaned on z rather than y, and only 48% of the generated images were
recognized as their class; z_dim = 4 leaves z room for the style but not for both.

Are the images of the requested class? A softmax regression (a linear classifier, trained here
on the real grey-level training digits with scratchvae.nn.Linear and scratchvae.optim.Adam) is
first scored on held-out real digits, then on the generated images: the fraction classified as
the class they were generated for, against chance = 1 / 10.

Writes cvae_digits.png: one row per requested class, with the row's recognition rate.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads: small matrices; 2 spinning BLAS threads
                                      # on a busy 2-core machine made training ~6x slower
import numpy as np  # noqa: E402

try:
    import scratchvae  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchvae.data import one_hot
from scratchvae.evaluate import elbo
from scratchvae.generate import sample_prior
from scratchvae.train import TrainConfig, train
from scratchvae.vae import VAE
from scratchvae.data.digits import render_digits
from scratchvae.nn import Linear
from scratchvae.optim import Adam
from scratchvae.viz.lab_toy import class_grid

N_CLASSES = 10


def softmax_regression(x, labels, *, rng, steps=150, lr=0.05, l2=1e-4):
    """Fit p(y|x) = softmax(x W + b) by full-batch Adam on the mean cross-entropy + l2 |W|^2 / 2.

    The gradient of the mean cross-entropy with respect to the logits is (softmax - onehot) / N.
    Returns a function images (M, D) -> predicted labels (M,).
    """
    layer = Linear(x.shape[1], N_CLASSES, rng=rng, dtype=x.dtype)
    opt, target = Adam(layer.params, lr=lr), one_hot(labels, N_CLASSES, x.dtype)
    for _ in range(steps):
        logits, cache = layer.forward(x)                                    # (N, 10)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        _, grads = layer.backward((p - target) / x.dtype.type(len(x)), cache, need_dx=False)
        grads["W"] += x.dtype.type(l2) * layer.params["W"]
        opt.step(grads)
    return lambda images: np.argmax(layer.forward(images)[0], axis=1)


def parse_classes(text: str) -> list:
    try:
        classes = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise SystemExit(f"--classes must be a comma-separated list of digits 0-9, got {text!r}") from None
    if not classes or any(not 0 <= c < N_CLASSES for c in classes):
        raise SystemExit(f"--classes must list digits in 0..9, got {text!r}")
    return classes


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="out", help="folder for the PNG")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9", help="rows of the figure")
    parser.add_argument("--n-train", type=int, default=6000, help="training digits")
    parser.add_argument("--n-test", type=int, default=1000, help="held-out real digits")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--z-dim", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--n-show", type=int, default=12, help="images per row in the figure")
    parser.add_argument("--n-check", type=int, default=100, help="generated images per class scored")
    args = parser.parse_args(argv)
    classes, t0 = parse_classes(args.classes), time.perf_counter()

    x_train, y_train = render_digits(args.n_train, np.random.default_rng([args.seed, 0]))
    x_test, y_test = render_digits(args.n_test, np.random.default_rng([args.seed, 1]))
    xb_train = (np.random.default_rng([args.seed, 2]).random(x_train.shape, dtype=np.float32)
                < x_train).astype(np.float32)                  # one fixed Bernoulli draw per pixel
    xb_test = (np.random.default_rng([args.seed, 3]).random(x_test.shape, dtype=np.float32)
               < x_test).astype(np.float32)
    t_data = time.perf_counter() - t0

    cvae = VAE(784, args.z_dim, n_classes=N_CLASSES, rng=np.random.default_rng([args.seed, 4]),
               hidden=(args.hidden,))                          # the VAE with a label input y
    t1 = time.perf_counter()
    hist = train(cvae, xb_train, None, TrainConfig(epochs=args.epochs, batch_size=100, lr=1e-3,
                                                   seed=[args.seed, 5]),
                 y_train=one_hot(y_train, N_CLASSES), log=None)
    t_train = time.perf_counter() - t1
    ev = elbo(cvae, xb_test, y=one_hot(y_test, N_CLASSES), rng=np.random.default_rng([args.seed, 6]))
    print(f"CVAE z_dim={args.z_dim}, hidden {args.hidden}, {args.epochs} epochs on {args.n_train} "
          f"binarized digits ({t_train:.1f} s): train -ELBO {hist[-1]['train_loss']:.2f}; held-out ELBO "
          f"{ev['elbo'].mean():.2f} nats (rec {ev['rec'].mean():.2f}, KL {ev['kl'].mean():.2f})")

    classify = softmax_regression(x_train, y_train, rng=np.random.default_rng([args.seed, 7]))
    acc_real = float(np.mean(classify(x_test) == y_test))
    print(f"softmax-regression classifier, trained on the real grey-level training digits: "
          f"held-out real accuracy {100 * acc_real:.1f}%")

    rng = np.random.default_rng([args.seed, 8])
    per_class, shown = {}, []
    for c in classes:
        images = sample_prior(cvae, args.n_check, rng=rng,
                              y=one_hot(np.full(args.n_check, c), N_CLASSES))      # (n, 784)
        per_class[c] = float(np.mean(classify(images) == c))
        shown.append(images[:args.n_show])
    acc_gen = float(np.mean(list(per_class.values())))
    print("generated E[x | z, y], z ~ N(0, I), classified as their class y: "
          + ", ".join(f"{c}: {100 * a:.0f}%" for c, a in per_class.items()))
    print(f"  overall {100 * acc_gen:.1f}% of {args.n_check * len(classes)} images "
          f"(chance {100 / N_CLASSES:.0f}%)")
    path = class_grid(
        np.stack(shown), classes, row_notes=[f"({100 * per_class[c]:.0f}%)" for c in classes],
        suptitle="Conditional VAE: new digits E[x | z, y] for z ~ N(0, I), one row per class y",
        caption=(f"recognized as their class by a linear classifier: {100 * acc_gen:.1f}% of "
                 f"{args.n_check} images per class (chance 10%; the classifier scores "
                 f"{100 * acc_real:.1f}% on held-out real digits). Held-out ELBO "
                 f"{ev['elbo'].mean():.1f} nats; z_dim {args.z_dim}, {args.epochs} epochs, "
                 f"{args.n_train} binarized training digits, seed {args.seed}."),
        path=os.path.join(args.out, "cvae_digits.png"))
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s (data {t_data:.1f} s, training "
          f"{t_train:.1f} s)")
    return {"per_class": per_class, "accuracy_generated": acc_gen, "accuracy_real": acc_real,
            "elbo_test": float(ev["elbo"].mean()), "history": hist}


if __name__ == "__main__":
    main()
