"""Flow posteriors: a diagonal Gaussian pushed through K flow layers, as one posterior family.

    z_0 = mu + sigma * eps                        log|det dz_0/deps| = sum_i log sigma_i
    z_k = f_k(z_{k-1}; lambda_k)    k = 1..K      log|det df_k/dz_{k-1}|  (each layer's own)
    log q(z_K|x) = log p(eps) - sum_i log sigma_i - sum_k log|det df_k/dz_{k-1}|

(Rezende & Mohamed 2015, eq. 7). To the VAE this is one map eps -> z_K whose log-determinant is
the sum of the parts, so it plugs into :mod:`scratchvae.posteriors`' interface unchanged; the
VAE's "mc" and "iwae" objectives then use log q(z_K|x) exactly as for the affine families.
There is no closed-form KL(q || p), so the "analytic" ELBO is refused.

Where the flow's parameters come from:
- planar, radial, householder, sylvester (triangular, alternating Q = I and the reversal):
  amortized, as in Rezende & Mohamed (2015, sec. 4) and van den Berg et al. (2018, sec. 5): the
  encoder emits h = [mu, log sigma, raw_1, ..., raw_K] per example, raw_k the k-th layer's raw
  parameters (``<family>_n_params(D)`` numbers each).
- iaf (Kingma et al. 2016): the encoder emits h = [mu, log sigma, c] with c a context vector;
  the K autoregressive steps are MADE networks whose weights are global, not per example: they
  are this family's ``params`` (``"flow.<k>.<name>"`` in the VAE).
``flow_length=0`` is exactly the diagonal posterior (the same encoder outputs and numbers).
"""
from __future__ import annotations

import numpy as np

from ..distributions import Normal
from ..posteriors import DiagonalGaussian
from ..validate import check_int, check_rng
from . import householder, planar, radial, sylvester
from .iaf import IAF

# family -> (forward, backward, n_params(D), unpack(raw), pack_grads(grads))
AMORTIZED = {
    "planar": (planar.planar_forward, planar.planar_backward, planar.planar_n_params,
               planar.planar_unpack, planar.planar_pack_grads),
    "radial": (radial.radial_forward, radial.radial_backward, radial.radial_n_params,
               radial.radial_unpack, radial.radial_pack_grads),
    "householder": (householder.householder_forward, householder.householder_backward,
                    householder.householder_n_params, householder.householder_unpack,
                    householder.householder_pack_grads),
    "sylvester": (sylvester.triangular_sylvester_forward, sylvester.triangular_sylvester_backward,
                  sylvester.triangular_sylvester_n_params, sylvester.triangular_sylvester_unpack,
                  sylvester.triangular_sylvester_pack_grads),
}
FLOWS = (*AMORTIZED, "iaf")


class FlowQ:
    """q(z|x) of a flow family for a batch: the base Normal and each example's flow inputs.

    ``extra`` (B, n) is the raw layer parameters (amortized families) or the context c (IAF).
    ``loc`` is the image of the base mean under the flow (q's mean has no closed form; this is
    the point that eps = 0 maps to), ``sample(rng)`` one draw z ~ q(z|x), both (B, D).
    """

    def __init__(self, family, base: Normal, extra):
        self.family, self.base, self.extra = family, base, extra

    @property
    def loc(self):
        B, D = self.base.loc.shape
        return self.family.rsample(self, np.zeros((B, 1, D), self.base.loc.dtype))[0][:, 0]

    def sample(self, rng):
        B, D = self.base.loc.shape
        eps = rng.standard_normal((B, 1, D), dtype=self.base.loc.dtype)   # (B, 1, D)
        return self.family.rsample(self, eps)[0][:, 0]


class FlowPosterior:
    """A posterior family (see :mod:`scratchvae.posteriors`): diagonal Gaussian + K flow layers.

    Parameters
    ----------
    name : one of :data:`FLOWS`
    z_dim : int
    flow_length : int >= 0
        K, the number of layers (IAF: autoregressive steps).
    rng : numpy.random.Generator
        Draws the IAF's MADE weights (unused by the amortized families).
    iaf_hidden : sequence of int
        Hidden widths of each IAF step's MADE.
    iaf_context_dim : int
        Width of the context vector c the encoder emits for the IAF.
    iaf_activation : {"relu", "elu"}
        The MADE's hidden activation.
    dtype : np.float32 or np.float64
    """

    has_analytic_kl = False

    def __init__(self, name: str, z_dim: int, flow_length: int, *, rng, iaf_hidden=(64,),
                 iaf_context_dim: int = 16, iaf_activation: str = "relu", dtype=np.float32):
        if not isinstance(name, str) or name not in FLOWS:
            raise ValueError(f"name must be one of {FLOWS}, got {name!r}")
        check_int("z_dim", z_dim, minimum=1)
        check_int("flow_length", flow_length, minimum=0)
        if rng is not None or (name == "iaf" and flow_length):
            check_rng("rng", rng)
        self.name, self.z_dim, self.flow_length = name, z_dim, flow_length
        self.base = DiagonalGaussian(z_dim)
        self.params, self.iaf = {}, None
        if name == "iaf":
            self.n_extra = iaf_context_dim if flow_length else 0
            if flow_length:
                self.iaf = IAF(z_dim, iaf_context_dim, list(iaf_hidden), flow_length, rng=rng,
                               activation=iaf_activation, dtype=dtype)
                self.params = self.iaf.params
        else:
            self.layer_size = AMORTIZED[name][2](z_dim)            # raw numbers per layer
            self.n_extra = flow_length * self.layer_size
        self.n_params = self.base.n_params + self.n_extra

    def initial_bias(self, dtype):
        """Start of the encoder's output bias, (n_params,): zeros, except every planar w and
        Householder v, which start at 1/sqrt(D) in each coordinate (|w| = 1). Those layers divide
        by |w|^2 (|v|^2); with zero biases an all-zero image (a blank input, or an example whose
        hidden units are all inactive) would give w = 0 exactly at the start of training."""
        bias = np.zeros(self.n_params, dtype=dtype)                       # (n_params,)
        if self.name in ("planar", "householder"):
            slot = "w" if self.name == "planar" else "v"
            raw = bias[None, self.base.n_params:]                          # (1, K n), a view
            n, unpack = self.layer_size, AMORTIZED[self.name][3]
            for k in range(self.flow_length):
                unpack(raw[:, k * n:(k + 1) * n])[slot][...] = 1 / np.sqrt(self.z_dim)
        return bias

    # ----------------------------------------------------------------------- h -> q
    def encode(self, h):
        """q from h (B, 2D + n_extra) = [mu, log sigma, extra]."""
        base, _ = self.base.encode(h[:, :self.base.n_params])
        return FlowQ(self, base, h[:, self.base.n_params:]), None

    def encode_backward(self, dq, cache):
        """dh (B, n_params) = [dloc, dlog_scale, dextra]."""
        return np.concatenate([dq["loc"], dq["log_scale"], dq["extra"]], axis=1)

    # ----------------------------------------------------------------------- eps -> z_K
    def rsample(self, q, eps):
        """z_K (B, S, D) and log|det dz_K/deps| (B, S) = sum log sigma + sum_k log|det df_k|."""
        z, log_det, base_cache = self.base.rsample(q.base, eps)            # z_0, (B, S)
        B, S, D = eps.shape
        if self.flow_length == 0:
            return z, log_det, (base_cache, None)
        if self.iaf is not None:
            context = np.repeat(q.extra, S, axis=0)                        # (B*S, C)
            z_flat, iaf_log_det, cache = self.iaf.forward(z.reshape(B * S, D), context)
            return (z_flat.reshape(B, S, D), log_det + iaf_log_det.reshape(B, S),
                    (base_cache, cache))
        forward, _, _, unpack, _ = AMORTIZED[self.name]
        raw = np.repeat(q.extra[:, None, :], S, axis=1)                   # (B, S, K n)
        caches, n = [], self.layer_size
        for k in range(self.flow_length):
            options = {"reverse": k % 2 == 1} if self.name == "sylvester" else {}
            z, layer_log_det, cache = forward(z, **unpack(raw[..., k * n:(k + 1) * n]), **options)
            log_det = log_det + layer_log_det                              # (B, S)
            caches.append(cache)
        return z, log_det, (base_cache, caches)

    def rsample_backward(self, dz, dlog_det, cache):
        """(dq, grads): dq keyed loc, log_scale, extra (B, ...); grads keyed like ``params``.

        Every layer's log-det enters log|det dz_K/deps| with weight 1, so each layer receives the
        same dlog_det; dz walks back through the layers, last first.
        """
        base_cache, flow_cache = cache
        B, S, D = dz.shape
        if dlog_det is None:
            dlog_det = np.zeros((B, S), dz.dtype)
        grads = {}
        if self.iaf is not None:
            d_in, grads = self.iaf.backward(dz.reshape(B * S, D), dlog_det.reshape(B * S),
                                            flow_cache)
            dz = d_in["z"].reshape(B, S, D)
            dextra = d_in["context"].reshape(B, S, -1).sum(axis=1)       # (B, C)
        elif self.flow_length and self.name != "iaf":
            _, backward, _, _, pack_grads = AMORTIZED[self.name]
            draws = [None] * self.flow_length
            for k in range(self.flow_length - 1, -1, -1):
                g = backward(dz, dlog_det, flow_cache[k])
                dz = g["z"]                                                # (B, S, D)
                draws[k] = pack_grads(g)                                   # (B, S, n)
            dextra = np.concatenate(draws, axis=-1).sum(axis=1)           # (B, K n)
        else:                                                              # flow_length = 0
            dextra = np.zeros((B, self.n_extra), dz.dtype)
        dq, _ = self.base.rsample_backward(dz, dlog_det, base_cache)
        return {**dq, "extra": dextra}, grads

    # ----------------------------------------------------------------------- no analytic KL
    def kl_to_prior(self, q):
        raise ValueError(f"the {self.name!r} flow posterior has no closed-form KL(q || p): use "
                         f"estimator='mc' or 'iwae' (the Monte Carlo ELBO and the IWAE bound)")

    kl_per_dimension = kl_to_prior

    def kl_to_prior_backward(self, dkl, q):
        return self.kl_to_prior(q)
