"""The lab: the ideas around the VAE, each as a small tested module that a demo runs.

- :mod:`scratchvae.lab.estimators`: score-function (REINFORCE) and reparameterization
  gradient estimators of E_q[f(z)], with their variances measured;
- :mod:`scratchvae.lab.estimators_vae`: the same two estimators for a VAE's encoder;
- :mod:`scratchvae.lab.linear_gaussian`: an exact-evidence model (probabilistic PCA) where the
  ELBO gap equals KL(q || p(z|x)) in closed form;
- :mod:`scratchvae.lab.mcmc`: random-walk Metropolis-Hastings, the alternative to VI;
- :mod:`scratchvae.lab.variations`: calculus of variations (the shortest path), the idea behind
  "variational".
"""
