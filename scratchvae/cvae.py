"""The conditional VAE: a label y enters both the encoder and the decoder.

Model (Kingma, Rezende, Mohamed & Welling 2014, "Semi-supervised learning with deep generative
models", model M2 with the label observed, eq. 6; Sohn, Lee & Yan 2015 call the general family
the conditional VAE), with y a one-hot vector of C classes:

    p(z) = N(0, I)                                    the prior does not depend on y
    p_theta(x | z, y)        decoder MLP on [z, y]    (Bernoulli or Gaussian pixels)
    q_phi(z | x, y) = N(mu, diag(sigma^2)),  [mu, log sigma] = encoder MLP on [x, y]
    z = mu + sigma * eps,  eps ~ N(0, I)              (the reparameterization, K&W 2014 sec. 2.4)

    ELBO(x, y) = (1/L) sum_l log p(x | z_l, y) - beta KL(q(z|x, y) || N(0, I))  <=  log p(x | y)

(for beta = 1; beta in [0, 1] is KL warm-up). Because y is given to the decoder for free, z
need not carry the class: it carries the style (slant, width, size) and, at generation time,
z ~ N(0, I) decoded with a chosen y draws a new example of that class.

Backward, with upstream gradient g_b for example b (for a loss of -mean ELBO, g_b = -1/B):
    w_bl = g_b / L                                    weight of each log p(x | z_l, y)
    log p(x|z,y) -> likelihood -> decoder MLP -> d[z, y]; the y columns are dropped (data)
    z = mu + sigma eps (transforms.diagonal_affine)   -> dmu, dlog sigma
    - beta KL                                         dmu -= beta g mu,
                                                      dlog sigma -= beta g (sigma^2 - 1)
    -> encoder MLP (the [x, y] input needs no gradient).
Derivation and tests: docs/lab_toy.md.
"""
from __future__ import annotations

import numpy as np

from .validate import check_float_array, check_in_range, check_int, check_positive, check_rng
from .distributions import Normal
from .likelihoods import make_likelihood
from .nn import MLP
from .optim import Adam
from .transforms import diagonal_affine, diagonal_affine_backward


def one_hot(labels, n_classes: int, dtype=np.float32) -> np.ndarray:
    """Rows e_{labels[b]} of the C x C identity: integer labels (N,) -> (N, n_classes) floats."""
    check_int("n_classes", n_classes, minimum=1)
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be an integer numpy.ndarray, got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-dimensional, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}], got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return np.eye(n_classes, dtype=dtype)[labels]


class CVAE:
    """Encoder q(z|x, y), decoder p(x|z, y), prior N(0, I); diagonal posterior, analytic KL.

    Parameters
    ----------
    x_dim, z_dim, n_classes : int
        Data, latent and label dimensions (y is one-hot of width ``n_classes``).
    rng : numpy.random.Generator
        Draws the initial weights (encoder first, then decoder).
    hidden : sequence of int
        Hidden widths of the encoder; the decoder mirrors them.
    activation : str
        Hidden activation of both networks.
    likelihood : {"bernoulli", "gaussian"}
    obs_scale, min_obs_scale : float
        Gaussian likelihood only, as in :class:`scratchvae.vae.VAE`.
    dtype : np.float32 (speed) or np.float64 (checks)
    """

    def __init__(self, x_dim: int, z_dim: int, n_classes: int, *, rng: np.random.Generator,
                 hidden=(256,), activation: str = "relu", likelihood: str = "bernoulli",
                 obs_scale: float | None = 0.1, min_obs_scale: float = 1e-2, dtype=np.float32):
        check_int("x_dim", x_dim, minimum=1)
        check_int("z_dim", z_dim, minimum=1)
        check_int("n_classes", n_classes, minimum=2)
        check_rng("rng", rng)
        hidden = [check_int("hidden[i]", h, minimum=1) for h in hidden]
        self.x_dim, self.z_dim, self.n_classes = x_dim, z_dim, n_classes
        self.likelihood = make_likelihood(likelihood, obs_scale, min_obs_scale)
        self.encoder = MLP([x_dim + n_classes, *hidden, 2 * z_dim], activation, rng=rng, dtype=dtype)
        self.decoder = MLP([z_dim + n_classes, *hidden[::-1], self.likelihood.out_dim(x_dim)],
                           activation, rng=rng, dtype=dtype)
        self.dtype = self.encoder.dtype
        self.params = {**{"enc." + k: v for k, v in self.encoder.params.items()},
                       **{"dec." + k: v for k, v in self.decoder.params.items()}}
        self.config = dict(x_dim=x_dim, z_dim=z_dim, n_classes=n_classes, hidden=hidden,
                           activation=activation, likelihood=likelihood, obs_scale=obs_scale,
                           min_obs_scale=min_obs_scale, dtype=self.dtype.name)

    # ---------------------------------------------------------------------------------------
    def encode(self, x, y):
        """q(z|x, y) as a ``Normal`` with loc and log_scale of shape (B, z_dim), and a cache."""
        h, cache = self.encoder.forward(np.concatenate([x, y], axis=1))   # (B, 2 Dz)
        return Normal(h[:, :self.z_dim], h[:, self.z_dim:]), cache

    def decode(self, z, y):
        """Decoder output (the likelihood's parameters) for z (N, z_dim) and one-hot y (N, C)."""
        check_float_array("z", z, ndim=2, shape=(None, self.z_dim), dtype=self.dtype)
        self._check_y(y, len(z))
        return self.decoder.forward(np.concatenate([z, y], axis=1))[0]

    def forward(self, x, y, eps, beta: float = 1.0, check: bool = True):
        """Per-example ELBO and a cache for :meth:`backward`.

        Parameters
        ----------
        x : ndarray (B, x_dim), the model's dtype (0/1 for the Bernoulli likelihood)
        y : ndarray (B, n_classes), the model's dtype, one-hot rows (see :func:`one_hot`)
        eps : ndarray (B, L, z_dim), the model's dtype; standard normal noise
        beta : float in [0, 1]
            KL warm-up weight.
        check : bool
            Validate the inputs (a training loop checks its data once and passes False).

        Returns
        -------
        objective : ndarray (B,)
        cache : tuple
        stats : dict of (B,) arrays ``rec`` (mean log p(x|z, y)) and ``kl``.

        Notes
        -----
        [mu, log sigma] = enc([x, y]);  z_l = mu + sigma eps_l;  out_l = dec([z_l, y]);
        rec = (1/L) sum_l log p(x | out_l);  KL = sum_j (sigma_j^2 + mu_j^2 - 1)/2 - log sigma_j;
        objective = rec - beta KL.  Backward (:meth:`backward`) runs these lines in reverse.
        """
        if check:
            self._check_inputs(x, y, eps, beta)
        B, L, Dz = eps.shape
        q, enc_cache = self.encode(x, y)
        loc_r = np.repeat(q.loc[:, None, :], L, axis=1)                          # (B, L, Dz)
        log_scale_r = np.repeat(q.log_scale[:, None, :], L, axis=1)              # (B, L, Dz)
        z, _, t_cache = diagonal_affine(eps, loc_r, log_scale_r)                 # (B, L, Dz)
        y_r = np.repeat(y[:, None, :], L, axis=1)                                # (B, L, C)
        zy = np.concatenate([z, y_r], axis=2).reshape(B * L, Dz + self.n_classes)
        out, dec_cache = self.decoder.forward(zy)                                # (B*L, P)
        log_px, lik_cache = self.likelihood.log_prob(x, out.reshape(B, L, -1))  # (B, L)
        kl = q.kl_to_standard_normal().sum(-1)                                   # (B,)
        rec = log_px.mean(axis=1)                                                # (B,)
        objective = rec - x.dtype.type(beta) * kl                                # (B,)
        cache = (beta, q, enc_cache, t_cache, dec_cache, lik_cache, L)
        return objective, cache, {"rec": rec, "kl": kl}

    def backward(self, dobjective, cache):
        """Gradients of sum_b objective_b * dobjective_b for every parameter (keys of params).

        Notes
        -----
        w_bl = g_b / L;  d out_bl = w_bl d log p / d out;  d[z, y] = dec backward (y columns
        dropped);  d mu = sum_l dz - beta g mu;  d log sigma = sum_l dz sigma eps - beta g
        (sigma^2 - 1);  enc backward from [d mu, d log sigma].
        """
        beta, q, enc_cache, t_cache, dec_cache, lik_cache, L = cache
        B, Dz, dt = q.loc.shape[0], self.z_dim, q.loc.dtype.type
        w = np.repeat(dobjective[:, None] / dt(L), L, axis=1)                    # (B, L)
        dout = self.likelihood.backward(w, lik_cache)                            # (B, L, P)
        dzy, dec_grads = self.decoder.backward(dout.reshape(B * L, -1), dec_cache)
        dz = np.ascontiguousarray(dzy[:, :Dz]).reshape(B, L, Dz)                 # y: no gradient
        g = diagonal_affine_backward(dz, None, t_cache)
        gkl = q.kl_to_standard_normal_grads()
        coef = (-dt(beta) * dobjective)[:, None]                                 # (B, 1)
        dloc = g["loc"].sum(axis=1) + coef * gkl["loc"]                          # (B, Dz)
        dlog_scale = g["log_scale"].sum(axis=1) + coef * gkl["log_scale"]        # (B, Dz)
        _, enc_grads = self.encoder.backward(np.concatenate([dloc, dlog_scale], axis=1),
                                             enc_cache, need_dx=False)
        return {**{"enc." + k: v for k, v in enc_grads.items()},
                **{"dec." + k: v for k, v in dec_grads.items()}}

    def loss_and_grads(self, x, y, eps, beta: float = 1.0, check: bool = True):
        """Loss = -mean_b ELBO_b, its gradients, and batch-mean statistics (floats)."""
        objective, cache, stats = self.forward(x, y, eps, beta, check)
        grads = self.backward(np.full(len(x), -1.0 / len(x), dtype=self.dtype), cache)
        means = {k: float(v.mean()) for k, v in stats.items()}
        means["objective"] = float(objective.mean())
        return -means["objective"], grads, means

    def generate(self, y, rng, *, mean: bool = True):
        """New examples of the classes in y (N, C): z ~ N(0, I), then E[x|z, y] (``mean``) or a
        draw x ~ p(x|z, y). Returns (N, x_dim)."""
        check_rng("rng", rng)
        self._check_y(y, None)
        z = rng.standard_normal((len(y), self.z_dim), dtype=self.dtype)          # (N, Dz)
        out = self.decode(z, y)
        return self.likelihood.mean(out) if mean else self.likelihood.sample(out, rng)

    # ---------------------------------------------------------------------------------------
    def _check_y(self, y, n):
        check_float_array("y", y, ndim=2, shape=(n, self.n_classes), dtype=self.dtype)
        bad = ~(np.all((y == 0) | (y == 1), axis=1) & (y.sum(axis=1) == 1))
        if np.any(bad):
            b = int(np.argmax(bad))
            raise ValueError(f"y must be one-hot (one 1 and zeros elsewhere in each row); row {b} "
                             f"is {np.array2string(y[b], precision=3)}. Build y with "
                             f"scratchvae.cvae.one_hot(labels, {self.n_classes})")

    def _check_inputs(self, x, y, eps, beta):
        check_in_range("beta", beta, 0.0, 1.0)
        check_float_array("x", x, ndim=2, shape=(None, self.x_dim), dtype=self.dtype)
        self._check_y(y, x.shape[0])
        check_float_array("eps", eps, ndim=3, shape=(x.shape[0], None, self.z_dim), dtype=self.dtype)
        if eps.shape[1] < 1:
            raise ValueError(f"eps must hold at least one sample per example, got shape {eps.shape}")
        if self.likelihood.name == "bernoulli" and not np.all((x == 0) | (x == 1)):
            raise ValueError("x must be binary (0/1) for a Bernoulli likelihood; binarize it first "
                             "or use likelihood='gaussian'")


def elbo(cvae: CVAE, x, y, *, rng, batch_size: int = 500):
    """Per-example ELBO with one noise draw each, and its parts: dict of (N,) arrays."""
    check_rng("rng", rng)
    parts = {"elbo": [], "rec": [], "kl": []}
    for s in range(0, len(x), batch_size):
        xb, yb = x[s:s + batch_size], y[s:s + batch_size]
        eps = rng.standard_normal((len(xb), 1, cvae.z_dim), dtype=cvae.dtype)
        obj, _, stats = cvae.forward(xb, yb, eps)
        parts["elbo"].append(obj)
        parts["rec"].append(stats["rec"])
        parts["kl"].append(stats["kl"])
    return {k: np.concatenate(v) for k, v in parts.items()}


def fit(cvae: CVAE, x, y, *, rng, epochs: int = 10, batch_size: int = 100, lr: float = 1e-3,
        warmup_epochs: float = 0.0, log=print):
    """Train ``cvae`` in place with Adam on -mean ELBO; return one dict per epoch.

    The loop of :func:`scratchvae.train.train` without its validation, checkpoints and early
    stopping: per epoch a permutation from ``rng``, then per minibatch eps ~ N(0, I) from ``rng``,
    beta = min(1, step / (warmup_epochs * steps_per_epoch)), one Adam step.
    """
    check_rng("rng", rng)
    check_int("epochs", epochs, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_positive("warmup_epochs", warmup_epochs, strict=False)
    cvae._check_inputs(x, y, np.zeros((len(x), 1, cvae.z_dim), dtype=cvae.dtype), 1.0)
    opt = Adam(cvae.params, lr=lr)
    n, history = len(x), []
    steps = -(-n // batch_size)
    for epoch in range(epochs):
        perm, sums = rng.permutation(n), {"loss": 0.0, "rec": 0.0, "kl": 0.0}
        for i in range(steps):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            eps = rng.standard_normal((len(idx), 1, cvae.z_dim), dtype=cvae.dtype)
            step = epoch * steps + i
            beta = min(1.0, step / (warmup_epochs * steps)) if warmup_epochs else 1.0
            loss, grads, stats = cvae.loss_and_grads(x[idx], y[idx], eps, beta, check=False)
            if not np.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}, step {i}; "
                                         f"lower the learning rate (lr={lr})")
            opt.step(grads)
            for k, v in (("loss", loss), ("rec", stats["rec"]), ("kl", stats["kl"])):
                sums[k] += v * len(idx)
        history.append({"epoch": epoch + 1, "beta": beta, **{k: v / n for k, v in sums.items()}})
        if log:
            h = history[-1]
            log(f"epoch {epoch + 1:3d}/{epochs}  -ELBO {h['loss']:9.3f}  (rec {h['rec']:9.3f}, "
                f"KL {h['kl']:7.3f})  beta {beta:.2f}")
    return history
