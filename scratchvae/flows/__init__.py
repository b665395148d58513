"""Normalizing flows for the VAE posterior, each layer with a hand-written backward.

A flow pushes the reparameterized sample z_0 ~ q(z_0 | x) through invertible maps,
z_K = f_K o ... o f_1(z_0), and by the change of variables (Rezende & Mohamed 2015, sec. 3)

    log q(z_K | x) = log q(z_0 | x) - sum_k log|det df_k / dz_{k-1}|.

Families: planar and radial (Rezende & Mohamed 2015), Householder (Tomczak & Welling 2016),
triangular and Householder Sylvester (van den Berg et al. 2018); derivations in docs/flows.md.

The contract every layer follows
--------------------------------
Layers are amortized and stateless: the encoder emits each example's flow parameters, and a layer
is a pair of functions.

``<name>_forward(z, **params) -> (z_new, log_abs_det, cache)``
    ``z`` is (..., D); every parameter has z's leading axes exactly (z (B, L, D) with u (B, L, D)
    and b (B, L)): no broadcasting, no hidden reductions. ``z_new`` is (..., D) and
    ``log_abs_det = log|det dz_new/dz|`` is (...,). Parameters are the *raw* numbers an encoder
    emits; each layer maps them to values that keep it invertible (planar u -> u_hat, radial
    alpha > 0 and beta >= -alpha, Sylvester diagonals through tanh). Options that are not
    learned (Sylvester's ``reverse``) are keyword-only.
``<name>_backward(dz_new, dlog_abs_det, cache) -> dict``
    The gradients of sum(z_new * dz_new) + sum(log_abs_det * dlog_abs_det), keyed by the
    forward's argument names (``"z"`` and each parameter's), each the shape of that argument,
    with respect to the raw parameters. ``dlog_abs_det`` may be None (zeros). Pure: it never
    writes its inputs, and any number of forwards may run before their backwards.
``<name>_n_params(D) -> int``, ``<name>_unpack(raw) -> dict``, ``<name>_pack_grads(grads)``
    The raw parameters of one layer per example as one flat vector ``raw (..., n)`` (so an
    encoder can emit them all at once), split into named views and joined back for the
    gradients; the layout helpers live in :mod:`scratchvae.flows.params`. (Householder-Sylvester's
    ``n_params`` and ``unpack`` also take the number of reflections K, which n alone does not fix.)

dtype in = dtype out, float32 or float64; every argument must share z's dtype (no upcast).
Bad input (shapes, dtypes, NaN or inf) is refused at each forward with an error naming the
argument and what was expected; so are sizes (``D``), a ``cache`` that is not the forward's and
``grads`` that are not a dict of arrays. A backward refuses a malformed upstream gradient the same
way (TypeError / ValueError), but NaN or inf in it raises FloatingPointError: inside training
that is what diverging parameters look like, and the trainer reports it as a divergence.
"""
from .householder import (householder_backward, householder_forward, householder_n_params,
                          householder_pack_grads, householder_unpack)
from .planar import (planar_backward, planar_constrain, planar_forward, planar_n_params,
                     planar_pack_grads, planar_unpack)
from .radial import (radial_backward, radial_constrain, radial_forward, radial_n_params,
                     radial_pack_grads, radial_unpack)
from .sylvester import (householder_sylvester_backward, householder_sylvester_forward,
                        householder_sylvester_n_params, householder_sylvester_pack_grads,
                        householder_sylvester_unpack, triangular_sylvester_backward,
                        triangular_sylvester_forward, triangular_sylvester_n_params,
                        triangular_sylvester_pack_grads, triangular_sylvester_unpack)

__all__ = [
    "householder_backward", "householder_forward", "householder_n_params",
    "householder_pack_grads", "householder_unpack",
    "planar_backward", "planar_constrain", "planar_forward", "planar_n_params",
    "planar_pack_grads", "planar_unpack",
    "radial_backward", "radial_constrain", "radial_forward", "radial_n_params",
    "radial_pack_grads", "radial_unpack",
    "householder_sylvester_backward", "householder_sylvester_forward",
    "householder_sylvester_n_params", "householder_sylvester_pack_grads",
    "householder_sylvester_unpack", "triangular_sylvester_backward",
    "triangular_sylvester_forward", "triangular_sylvester_n_params",
    "triangular_sylvester_pack_grads", "triangular_sylvester_unpack",
]
