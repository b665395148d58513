"""``python -m scratchvae ising``: denoise a binary letter image with mean field, ICM and Gibbs.

Reproduces the textbook experiment of Murphy 2012 §21.3.2 by default (J = 1, sigma = 2,
damping 0.5, 15 parallel sweeps) and prints each method's pixel error rate against the clean
image; with ``--out`` it also writes a PNG of the panels.
"""
from __future__ import annotations

import argparse
import os


def register(subparsers) -> None:
    """Add the ``ising`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "ising", help="mean-field Ising denoising vs threshold, ICM and Gibbs",
        description="Add noise to a binary image (letters rendered with matplotlib's bundled "
                    "DejaVu font, +1 = letter, -1 = background), then denoise it with mean field "
                    "(Murphy 2012 sec. 21.3.2), thresholding, ICM and Gibbs sampling, and print "
                    "each method's pixel error rate. Randomness comes only from --seed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    img = p.add_argument_group("image and noise")
    img.add_argument("--text", default="VI", help="letters to render as the clean image")
    img.add_argument("--size", type=int, default=128, help="image side in pixels (square)")
    img.add_argument("--image", default=None, metavar="FILE",
                     help="use this clean image instead of --text/--size: a .npy file (2-D float "
                          "array of -1/+1), a .png/.jpg image (converted to 8-bit grey) or a "
                          ".csv grid of numbers; grey levels above half of full scale (k > 127 "
                          "of 0..255, x > 0.5 of [0, 1]) become +1, the others -1; a CSV of only "
                          "-1 and +1 is taken as it is, one of only 0 and 1 maps 1 to +1")
    img.add_argument("--noise", choices=("gaussian", "flip"), default="gaussian",
                     help="gaussian: x = z + sigma*n; flip: x = -z with probability p per pixel")
    img.add_argument("--sigma", type=float, default=2.0,
                     help="Gaussian noise scale, in [1e-100, 1e100] (sigma^2 and the noisy "
                          "pixels squared must stay finite in float64)")
    img.add_argument("--p", type=float, default=0.3, help="flip probability, in (0, 0.5)")
    img.add_argument("--seed", type=int, default=0, help="seed of numpy.random.default_rng for "
                     "the noise and the Gibbs sampler")
    mod = p.add_argument_group("model and mean field")
    mod.add_argument("--coupling", type=float, default=1.0, help="J, weight of every edge")
    mod.add_argument("--neighbours", type=int, choices=(4, 8), default=4,
                     help="grid neighbourhood of the Ising prior")
    mod.add_argument("--schedule", choices=("parallel", "checkerboard"), default="parallel",
                     help="parallel (Jacobi) or checkerboard (red/black) mean-field sweeps")
    mod.add_argument("--damping", type=float, default=0.5,
                     help="lambda in mu <- (1-lambda) mu + lambda tanh(a), in (0, 1]")
    mod.add_argument("--sweeps", type=int, default=15, help="maximum number of mean-field sweeps")
    mod.add_argument("--tol", type=float, default=0.0,
                     help="stop when max |mu_new - mu_old| < tol (0: run all --sweeps)")
    mod.add_argument("--init", choices=("likelihood", "data"), default="likelihood",
                     help="mean-field start: tanh(h) from the likelihood, or the data x clipped "
                          "to [-1, 1]")
    base = p.add_argument_group("baselines")
    base.add_argument("--icm-sweeps", type=int, default=50, help="maximum ICM sweeps")
    base.add_argument("--gibbs-sweeps", type=int, default=500,
                      help="Gibbs sweeps in total, burn-in included")
    base.add_argument("--burn-in", type=int, default=100,
                      help="Gibbs sweeps discarded before averaging the samples")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write ising_<noise>.png into DIR (default: print numbers only)")
    p.set_defaults(func=run)


def clean_image(path):
    """The --image file as an (H, W) float64 image of -1/+1 (rules in the --image help).

    A .npy file is returned as stored (the model's checks then name what is wrong with it).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        An unknown suffix, an unreadable file, or values that are neither spins nor grey levels;
        the message names --image.
    """
    import numpy as np

    from ..data import read_csv_table, read_image
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise FileNotFoundError(f"--image: no such file: {name}")
    suffix = os.path.splitext(name)[1].lower()
    if suffix == ".npy":
        try:
            return np.load(name, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"--image {name} is not a .npy file holding a numeric array "
                             f"({exc})") from None
    try:
        if suffix in (".png", ".jpg", ".jpeg"):
            return np.where(read_image(name) > 127, 1.0, -1.0)                    # (H, W)
        if suffix == ".csv":
            return _spins_from_table(read_csv_table(name).values, name)
    except ValueError as exc:
        raise ValueError(f"--image: {exc}") from None
    raise ValueError(f"--image must be a .npy, .png, .jpg/.jpeg or .csv file, got {name}")


def _spins_from_table(values, name):
    """-1/+1 as they are; 0/1 integers: 1 -> +1; integers 0..255 thresholded at 127.5; floats
    in [0, 1] at 0.5."""
    import numpy as np
    if np.all((values == 1) | (values == -1)):
        return values.astype(np.float64)
    if values.dtype.kind == "i" and np.all((values == 0) | (values == 1)):
        return np.where(values == 1, 1.0, -1.0)
    if values.dtype.kind == "i" and values.min() >= 0 and values.max() <= 255:
        return np.where(values > 127, 1.0, -1.0)
    if values.dtype.kind == "f" and np.all((values >= 0) & (values <= 1)):
        return np.where(values > 0.5, 1.0, -1.0)
    raise ValueError(f"{name} holds values in [{values.min()}, {values.max()}]; expected only -1 "
                     f"and +1, integer grey levels 0..255, or decimals in [0, 1]")


def run(args) -> int:
    """Run the experiment described by the parsed ``args``; returns the exit code 0."""
    import numpy as np

    from .. import ising
    from ..ising.baselines import denoise
    from ..viz.ising import denoising_figure, letter_image

    if args.noise == "gaussian" and (args.sigma > 1e100 or 0 < args.sigma < 1e-100):
        # (sigma <= 0 and NaN get the library's own message)
        raise ValueError(f"--sigma must lie in [1e-100, 1e100] (sigma^2 and the noisy pixels "
                         f"squared must stay finite in float64), got {args.sigma:g}")
    rng = np.random.default_rng(args.seed)
    clean = clean_image(args.image) if args.image else letter_image(args.text, args.size)
    if args.noise == "gaussian":
        noisy = ising.add_gaussian_noise(clean, args.sigma, rng)
        model = ising.gaussian_model(noisy, args.sigma, coupling=args.coupling,
                                     neighbours=args.neighbours)
        setting = f"Gaussian noise sigma={args.sigma:g}"
    else:
        noisy = ising.flip_pixels(clean, args.p, rng)
        model = ising.flip_model(noisy, args.p, coupling=args.coupling, neighbours=args.neighbours)
        setting = f"flipped pixels p={args.p:g}"
    mf = dict(schedule=args.schedule, damping=args.damping, max_sweeps=args.sweeps, tol=args.tol,
              init=args.init, x=noisy, record=(1, 3, 5))
    results = {"threshold": denoise(model, "threshold"),
               "mean field": denoise(model, "mean_field", **mf),
               "ICM": denoise(model, "icm", max_sweeps=args.icm_sweeps),
               "Gibbs": denoise(model, "gibbs", rng=rng, n_sweeps=args.gibbs_sweeps,
                                burn_in=args.burn_in)}
    print(f"{setting}, J={args.coupling:g}, {clean.shape[0]}x{clean.shape[1]} image, "
          f"seed {args.seed}")
    print(f"{'method':<12}{'error %':>9}{'correct %':>11}{'sweeps':>8}{'ms/sweep':>10}"
          "  final trace")
    for name, res in results.items():
        err = 100 * ising.error_rate(res.mean, clean)
        last = f"{res.trace_label} = {res.trace[-1]:.2f}" if res.trace.size else ""
        print(f"{name:<12}{err:>9.2f}{100 - err:>11.2f}{res.n_sweeps:>8}"
              f"{1e3 * res.seconds_per_sweep:>10.3f}  {last}")
    if args.out:
        errs = ", ".join(f"{k} {100 * ising.error_rate(r.mean, clean):.1f}%"
                         for k, r in results.items())
        path = denoising_figure(
            clean, noisy, {k: results[k] for k in ("mean field", "ICM", "Gibbs")},
            suptitle=f"Ising denoising, {setting}, J={args.coupling:g}, {args.schedule} sweeps, "
                     f"damping {args.damping:g}",
            caption=f"pixel error rates: {errs}",
            path=os.path.join(args.out, f"ising_{args.noise}.png"))
        print(f"wrote {path}")
    return 0
