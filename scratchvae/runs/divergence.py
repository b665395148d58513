"""Loud divergence: stop a run whose numbers have left the range of sensible training.

NaN and inf are caught where they appear (:meth:`scratchvae.vae.VAE.loss_and_grads`, the
validation ELBO). This module catches the finite collapses, measured failures both:

- a learned-sigma Gaussian likelihood with a small floor (min_obs_scale = 1e-4) shrinks sigma on
  pixels that never have ink in the training images; a validation image with ink there costs
  (x / sigma)^2 / 2 = 5e7 nats per pixel, and the validation ELBO fell to -1e11 while the
  training objective kept improving;
- IWAE training with K = 50 reported a training bound of +1,530 nats while the one-sample
  validation ELBO fell to -638,871: the bound only needs one good sample in 50, and q(z|x)
  drifted far from the posterior.

Each epoch, with V_t the validation ELBO after epoch t, V_0 the untrained model's (same data,
same noise), best = max(V_0, ..., V_{t-1}), T_t the training objective (minus the epoch's mean
loss: the ELBO with warm-up's beta, or the IWAE bound) and D the data dimension:

    scale   = max(|V_0|,  best - V_0,  D ln 2)
    collapse:  V_t < best - factor * scale           (validation fell far below its best)
    parting:   T_t - V_t > factor * scale            (training and validation parted)

with ``factor`` = ``TrainConfig.divergence_factor`` (10 by default; None turns the checks off).

Why this scale: it is measured in the run's own units. |V_0| is how bad an untrained model is on
these data (a few hundred nats for Bernoulli digits, 1e4-1e5 for a Gaussian with a fixed small
sigma), best - V_0 is what training has gained so far, and D ln 2 nats, the code length of D
fair coin flips, keeps the scale away from 0 when V_0 happens to be near 0. Healthy runs stay
well inside: measured on 300 embedded digits, a learned-sigma model's validation ELBO wandered
by up to 450 nats around its best (scale 1,790), and an IWAE (K = 50) run on 300 digits kept
its training bound 1,470 nats above the validation ELBO (scale 850), 0.25 and 1.7 scales,
against a threshold of 10. The overfitting and warm-up gaps of Bernoulli models are tens of
nats against a scale of ~550. The two failures above cross 10 scales within a few dozen epochs
of a small run, long before they reach their final values.
"""
from __future__ import annotations

import numpy as np

from ..validate import check_int, check_mapping, check_positive, check_real, check_str


def check_divergence(history, initial: float, x_dim: int, factor, advice: str) -> None:
    """Raise FloatingPointError if the last row of ``history`` shows a collapse or parting.

    Parameters
    ----------
    history : list of dict
        The metrics rows so far, the current epoch last (``valid_elbo``, ``train_loss``, ``epoch``).
    initial : float
        V_0, the validation ELBO of the untrained model.
    x_dim : int
        D, the data dimension.
    factor : float or None
        The threshold in units of the scale; None: no check.
    advice : str
        What to try, appended to the message.

    Raises
    ------
    FloatingPointError
        A collapse or parting (the run has diverged).
    TypeError, ValueError
        A bad argument, named: ``history`` not a non-empty list of dicts (the last one holding
        ``epoch`` and ``train_loss`` beside ``valid_elbo``), ``initial`` not a finite real number,
        ``x_dim`` not an integer >= 1, ``factor`` neither None nor a real number > 0, ``advice``
        not a string.
    """
    _check_history(history)
    x_dim = check_int("x_dim", x_dim, minimum=1)
    factor = None if factor is None else check_positive("factor", factor)
    check_str("advice", advice)
    if factor is None or "valid_elbo" not in history[-1]:
        return
    initial = check_real("initial", initial)
    n = lambda v: f"{v:,.1f}" if abs(v) < 1e7 else f"{v:.3g}"               # noqa: E731
    row = history[-1]
    valid, train = row["valid_elbo"], -row["train_loss"]
    best = max([initial] + [h["valid_elbo"] for h in history[:-1]])
    scale = max(abs(initial), best - initial, x_dim * np.log(2.0))
    limit = factor * scale
    why = (f"{factor:g} x {scale:,.0f} nats, the run's scale: the largest of |the untrained "
           f"model's validation ELBO| ({abs(initial):,.0f}), the gain since "
           f"({best - initial:,.0f}) and D ln 2 ({x_dim * np.log(2.0):,.0f})")
    epoch = row["epoch"]
    if valid < best - limit:
        raise FloatingPointError(
            f"training diverged after epoch {epoch}: the validation ELBO collapsed to "
            f"{n(valid)} nats from its best {n(best)}, a fall of more than {why}. The training "
            f"objective is {n(train)}. {advice}")
    if train - valid > limit:
        raise FloatingPointError(
            f"training diverged after epoch {epoch}: the training objective ({n(train)} nats) "
            f"is {n(train - valid)} nats above the validation ELBO ({n(valid)}), more than "
            f"{why}; the model fits its training images but not held-out ones. {advice}")


def _check_history(history) -> None:
    """A non-empty list of dicts; when the last row has a ``valid_elbo``, it also needs ``epoch``
    and ``train_loss``, and every earlier row a ``valid_elbo`` (one pass over the epochs)."""
    if not isinstance(history, list):
        raise TypeError(f"history must be a list of metrics rows (dicts), got "
                        f"{type(history).__name__} {history!r:.80}")
    if not history:
        raise ValueError("history must hold at least the current epoch's row, got []")
    for i, row in enumerate(history):
        check_mapping(f"history[{i}]", row)
    if "valid_elbo" not in history[-1]:
        return
    missing = [f"history[-1][{k!r}]" for k in ("epoch", "train_loss") if k not in history[-1]]
    missing += [f"history[{i}]['valid_elbo']" for i, row in enumerate(history[:-1])
                if "valid_elbo" not in row]
    if missing:
        raise ValueError(f"history has no {', '.join(missing[:3])}: every row needs "
                         f"'valid_elbo', and the last one also 'epoch' and 'train_loss'")


def advice(model_config: dict, train_config) -> str:
    """What to try, from the model's and the run's settings (library argument names)."""
    tips = [f"a lower learning rate (lr={train_config.lr:g})"]
    if model_config.get("likelihood") == "gaussian" and model_config.get("obs_scale") is None:
        floor = model_config["min_obs_scale"]
        tips.append(f"a larger floor of the learned sigma (min_obs_scale={floor:g})")
    if train_config.estimator == "iwae" and train_config.n_samples > 1:
        tips.append(f"fewer IWAE samples (n_samples={train_config.n_samples}) or the analytic ELBO")
    return ("Try " + ", ".join(tips) + "; divergence_factor=None turns this check off "
            f"(divergence_factor={train_config.divergence_factor}).")
