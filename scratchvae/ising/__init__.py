"""Mean-field variational inference for the Ising model, applied to image denoising.

Read in this order:

- :mod:`scratchvae.ising.model`: the model p(z, x) with spins z in {-1, +1}, its noise models
  and the result type;
- :mod:`scratchvae.ising.mean_field`: the damped update mu <- (1 - lam) mu + lam tanh(a) with
  a = J * (sum of the neighbours' means) + (l+ - l-)/2, and the exact ELBO per sweep
  (Murphy 2012, section 21.3.2);
- :mod:`scratchvae.ising.baselines`: thresholding, ICM and Gibbs sampling to compare against;
- :mod:`scratchvae.ising.exact`: exact enumeration for grids of up to 16 pixels (the oracle);
- :mod:`scratchvae.ising.reference`: the textbook pixel-by-pixel loop the vectorized sweep is
  tested against.

The names most users need are importable from here (``from scratchvae.ising import
mean_field, gaussian_model``).
"""
from .model import (IsingModel, IsingResult, add_gaussian_noise, check_image, check_mean,
                    check_model, error_rate, flip_log_lik, flip_model, flip_pixels,
                    gaussian_log_lik, gaussian_model, model_from_log_lik)
from .mean_field import (SCHEDULES, colour_masks, elbo, initial_mean, log_joint, mean_field,
                         mean_field_sweep, neighbour_sum)
from .baselines import METHODS, denoise, gibbs, icm, threshold

__all__ = ["IsingModel", "IsingResult", "add_gaussian_noise", "check_image", "check_mean",
           "check_model", "error_rate", "flip_log_lik", "flip_model", "flip_pixels",
           "gaussian_log_lik", "gaussian_model", "model_from_log_lik", "SCHEDULES",
           "colour_masks", "elbo", "initial_mean", "log_joint", "mean_field", "mean_field_sweep",
           "neighbour_sum", "METHODS", "denoise", "gibbs", "icm", "threshold"]
