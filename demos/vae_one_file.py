"""The variational autoencoder in one file: forward, backward and Adam, top to bottom.

    OPENBLAS_NUM_THREADS=1 python demos/vae_one_file.py [--seed 0] [--epochs 12] [--objective analytic]

Model (Kingma & Welling 2014, section 3 and appendix C; Bernoulli pixels, diagonal Gaussian q):
    p(z)   = N(0, I),  z in R^Z
    p(x|z) = prod_d Bernoulli(x_d; sigmoid(t_d)),   logits t = relu(z W2 + b2) W3 + b3     (D = 784)
    q(z|x) = N(mu, diag(sigma^2)),   [mu, log_scale] = relu(x W0 + b0) W1 + b1,  sigma = e^log_scale
Reparameterization (section 2.4): z = mu + sigma * eps, eps ~ N(0, I), so
    log|det dz/deps| = sum_j log sigma_j,    log q(z|x) = log N(eps; 0, I) - log|det dz/deps|.
Per example x, with L draws eps_l (stable form softplus(t) = max(t, 0) + log1p(e^-|t|)):
    log p(x|z) = sum_d x_d t_d - softplus(t_d)
    KL(q || p) = sum_j (sigma_j^2 + mu_j^2 - 1) / 2 - log sigma_j                      (appendix B)
    "analytic"  ELBO = (1/L) sum_l log p(x|z_l) - KL         (eq. 7; eq. 10 for this Gaussian q)
    "mc"        ELBO = (1/L) sum_l [log p(x|z_l) + log p(z_l) - log q(z_l|x)]          (eq. 6)
Training minimizes -mean_b ELBO_b with Adam (Kingma & Ba 2015, Algorithm 1).

This is the plain edition of scratchvae.vae.VAE(posterior="diagonal", likelihood="bernoulli",
one hidden layer): same initialisation, same parameter names, and the same numbers.
tests/test_one_file.py binds the two: equal objectives and gradients to 1e-12 in float64.

Measured (OPENBLAS_NUM_THREADS=1 python demos/vae_one_file.py --seed 0, an otherwise idle
2-core machine): test ELBO -000.0 nats after 12 epochs, 00 s of training.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads: small matrices, busy cores
import numpy as np  # noqa: E402

try:
    from scratchvae.data import load_embedded_digits
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from scratchvae.data import load_embedded_digits

LOG_2PI = float(np.log(2 * np.pi))  # a Python float: it never upcasts a float32 array


# 1. Parameters: the library's names and initialisation (scratchvae.nn.MLP inside VAE) --------
def init_params(D, H, Z, rng, dtype=np.float32):
    """Encoder D-H-2Z, decoder Z-H-D; W is (n_in, n_out), out = x @ W + b, biases start at 0.

    Hidden layers: He normal, W ~ N(0, 2 / n_in). Output layers: Glorot uniform,
    W ~ U(-a, a) with a = sqrt(6 / (n_in + n_out)). Drawn in this order from ``rng``, as
    VAE(D, Z, rng=rng, hidden=(H,)) draws them, so the same rng gives the same weights.
    """
    he = lambda n_in, n_out: (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)
    glorot = lambda n_in, n_out: rng.uniform(-np.sqrt(6.0 / (n_in + n_out)), np.sqrt(6.0 / (n_in + n_out)),
                                             size=(n_in, n_out)).astype(dtype)
    p = {}
    p["enc.0.W"] = he(D, H)                       # (D, H)
    p["enc.0.b"] = np.zeros(H, dtype)             # (H,)
    p["enc.1.W"] = glorot(H, 2 * Z)               # (H, 2Z)
    p["enc.1.b"] = np.zeros(2 * Z, dtype)         # (2Z,)
    p["dec.0.W"] = he(Z, H)                       # (Z, H)
    p["dec.0.b"] = np.zeros(H, dtype)             # (H,)
    p["dec.1.W"] = glorot(H, D)                   # (H, D)
    p["dec.1.b"] = np.zeros(D, dtype)             # (D,)
    return p


# 2-5. Forward: encoder, reparameterization, decoder, likelihood, KL, ELBO ----------------------
def forward(p, x, eps, objective="analytic"):
    """Per-example ELBO (B,) and the cache for ``backward``. x (B, D) binary, eps (B, L, Z)."""
    B, L, Z = eps.shape
    # 2. encoder q(z|x): one ReLU hidden layer, linear output [mu, log_scale]
    h1 = x @ p["enc.0.W"] + p["enc.0.b"]                          # (B, H)
    a1 = np.maximum(h1, 0)                                        # (B, H)
    q = a1 @ p["enc.1.W"] + p["enc.1.b"]                          # (B, 2Z)
    mu, log_scale = q[:, :Z], q[:, Z:]                            # (B, Z), (B, Z)
    sigma = np.exp(log_scale)                                     # (B, Z)
    # 3. reparameterization z = mu + sigma * eps and the change of variables for log q(z|x)
    z = mu[:, None, :] + sigma[:, None, :] * eps                  # (B, L, Z)
    log_det = log_scale.sum(axis=1)                               # (B,)  log|det dz/deps|
    log_p_eps = (-0.5 * eps * eps - 0.5 * LOG_2PI).sum(axis=2)    # (B, L)
    log_q = log_p_eps - log_det[:, None]                          # (B, L)
    # 4. decoder p(x|z): logits t, Bernoulli log-likelihood with the stable softplus
    zf = z.reshape(B * L, Z)                                      # (BL, Z)
    h2 = zf @ p["dec.0.W"] + p["dec.0.b"]                         # (BL, H)
    a2 = np.maximum(h2, 0)                                        # (BL, H)
    t = (a2 @ p["dec.1.W"] + p["dec.1.b"]).reshape(B, L, -1)      # (B, L, D)
    softplus = np.maximum(t, 0) + np.log1p(np.exp(-np.abs(t)))    # (B, L, D)
    log_px = (x[:, None, :] * t - softplus).sum(axis=2)           # (B, L)
    # 5. prior, analytic KL, and the chosen ELBO
    log_pz = (-0.5 * z * z - 0.5 * LOG_2PI).sum(axis=2)           # (B, L)
    kl = (0.5 * (sigma * sigma + mu * mu - 1) - log_scale).sum(axis=1)  # (B,)
    if objective == "analytic":
        elbo = log_px.mean(axis=1) - kl                           # (B,)
    else:
        elbo = (log_px + log_pz - log_q).mean(axis=1)             # (B,)
    cache = (x, eps, h1, a1, mu, log_scale, sigma, z, zf, h2, a2, t, softplus, objective)
    return elbo, cache


# 6. Backward: the forward in reverse, d<name> has the shape of <name> --------------------------
def backward(p, delbo, cache):
    """Gradients of sum_b delbo_b * ELBO_b; delbo = -1/B for the loss -mean_b ELBO_b."""
    x, eps, h1, a1, mu, log_scale, sigma, z, zf, h2, a2, t, softplus, objective = cache
    B, L, Z = eps.shape
    g = {}
    # 5. the ELBO: which terms it used decides which upstream gradients are nonzero
    if objective == "analytic":                 # elbo = mean_l log_px - kl
        dlog_px = np.repeat(delbo[:, None] / L, L, axis=1)        # (B, L)
        dkl = -delbo                                              # (B,)
        dlog_pz = np.zeros_like(dlog_px)                          # (B, L)
        dlog_q = np.zeros_like(dlog_px)                           # (B, L)
    else:                                       # elbo = mean_l (log_px + log_pz - log_q)
        dlog_px = np.repeat(delbo[:, None] / L, L, axis=1)        # (B, L)
        dkl = np.zeros_like(delbo)                                # (B,)
        dlog_pz = dlog_px.copy()                                  # (B, L)
        dlog_q = -dlog_px                                         # (B, L)
    # kl = sum_j (sigma^2 + mu^2 - 1)/2 - log_scale
    dsigma = dkl[:, None] * sigma                                 # (B, Z)
    dmu = dkl[:, None] * mu                                       # (B, Z)
    dlog_scale = -dkl[:, None] * np.ones_like(log_scale)          # (B, Z)
    # log_pz = sum_j -z^2/2 - log(2 pi)/2
    dz = dlog_pz[:, :, None] * -z                                 # (B, L, Z)
    # log_px = sum_d x t - softplus(t);  softplus'(t) = sigmoid(t) = exp(t - softplus(t))
    dt = dlog_px[:, :, None] * (x[:, None, :] - np.exp(t - softplus))  # (B, L, D)
    # t = a2 @ W3 + b3;  a2 = relu(h2);  h2 = zf @ W2 + b2
    dtf = dt.reshape(B * L, -1)                                   # (BL, D)
    g["dec.1.W"] = a2.T @ dtf                                     # (H, D)
    g["dec.1.b"] = dtf.sum(axis=0)                                # (D,)
    da2 = dtf @ p["dec.1.W"].T                                    # (BL, H)
    dh2 = da2 * (h2 > 0)                                          # (BL, H)
    g["dec.0.W"] = zf.T @ dh2                                     # (Z, H)
    g["dec.0.b"] = dh2.sum(axis=0)                                # (H,)
    dzf = dh2 @ p["dec.0.W"].T                                    # (BL, Z)
    dz += dzf.reshape(B, L, Z)                                    # (B, L, Z)
    # log_q = log_p_eps - log_det (eps is fixed noise: log_p_eps has no parameters)
    dlog_det = -dlog_q.sum(axis=1)                                # (B,)
    # log_det = sum_j log_scale
    dlog_scale += dlog_det[:, None]                               # (B, Z)
    # z = mu + sigma * eps (summed over the L draws that share mu and sigma)
    dmu += dz.sum(axis=1)                                         # (B, Z)
    dsigma += (dz * eps).sum(axis=1)                              # (B, Z)
    # sigma = exp(log_scale)
    dlog_scale += dsigma * sigma                                  # (B, Z)
    # q = a1 @ W1 + b1 = [mu, log_scale];  a1 = relu(h1);  h1 = x @ W0 + b0
    dq = np.concatenate([dmu, dlog_scale], axis=1)                # (B, 2Z)
    g["enc.1.W"] = a1.T @ dq                                      # (H, 2Z)
    g["enc.1.b"] = dq.sum(axis=0)                                 # (2Z,)
    da1 = dq @ p["enc.1.W"].T                                     # (B, H)
    dh1 = da1 * (h1 > 0)                                          # (B, H)
    g["enc.0.W"] = x.T @ dh1                                      # (D, H)
    g["enc.0.b"] = dh1.sum(axis=0)                                # (H,)
    return g


# 7. Adam (Kingma & Ba 2015, Algorithm 1) ------------------------------------------------------
def adam_step(p, g, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr m_hat / (sqrt(v_hat) + eps),
    with m_hat = m / (1 - b1^step), v_hat = v / (1 - b2^step), step = 1, 2, ..."""
    for k in p:
        m[k] = beta1 * m[k] + (1 - beta1) * g[k]                  # shape of p[k]
        v[k] = beta2 * v[k] + (1 - beta2) * g[k] * g[k]           # shape of p[k]
        m_hat = m[k] / (1 - beta1 ** step)                        # shape of p[k]
        v_hat = v[k] / (1 - beta2 ** step)                        # shape of p[k]
        p[k] -= lr * m_hat / (np.sqrt(v_hat) + eps)


# 8. Training on the embedded digits, binarized afresh at every visit ---------------------------
def binarize(x, rng):
    """x_d ~ Bernoulli(grey level x_d), float32 0/1."""
    return (rng.random(x.shape) < x).astype(np.float32)          # (N, D)


def evaluate(p, x, eps, batch=500):
    """Mean analytic ELBO over binary images x (N, D) with fixed noise eps (N, L, Z)."""
    return float(np.mean(np.concatenate([forward(p, x[i:i + batch], eps[i:i + batch])[0]
                                         for i in range(0, len(x), batch)])))


def train(seed=0, epochs=12, n_train=10000, H=256, Z=16, batch=100, lr=1e-3, L=1,
          objective="analytic"):
    """Train with Adam; print one line per epoch and the test ELBO; return the test ELBO."""
    data = load_embedded_digits(n_train=n_train, n_valid=1000, n_test=1000, seed=seed)
    rng = np.random.default_rng(seed)
    p = init_params(data.train.x.shape[1], H, Z, rng)
    m = {k: np.zeros_like(w) for k, w in p.items()}
    v = {k: np.zeros_like(w) for k, w in p.items()}
    held_out_rng = np.random.default_rng([seed, 1])  # one binarization and one eps per held-out set
    held_out = {name: (binarize(split.x, held_out_rng),                                # (N, D)
                       held_out_rng.standard_normal((len(split.x), 1, Z), dtype=np.float32))  # (N, 1, Z)
                for name, split in (("valid", data.valid), ("test", data.test))}
    step, start = 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n_train)                          # (N,)
        losses = []
        for i in range(0, n_train - batch + 1, batch):
            x = binarize(data.train.x[order[i:i + batch]], rng)   # (B, D)
            eps = rng.standard_normal((batch, L, Z), dtype=np.float32)  # (B, L, Z)
            elbo, cache = forward(p, x, eps, objective)           # (B,)
            g = backward(p, np.full(batch, -1.0 / batch, np.float32), cache)
            step += 1
            adam_step(p, g, m, v, step, lr)
            losses.append(-float(elbo.mean()))
        valid = evaluate(p, *held_out["valid"])
        print(f"epoch {epoch:3d}  train -ELBO {np.mean(losses):8.2f}  valid ELBO {valid:8.2f}  "
              f"{time.perf_counter() - start:5.1f} s", flush=True)
    test = evaluate(p, *held_out["test"])
    print(f"test ELBO {test:.2f} nats (analytic, L = 1), {time.perf_counter() - start:.1f} s")
    return test


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--objective", choices=("analytic", "mc"), default="analytic")
    args = parser.parse_args()
    train(seed=args.seed, epochs=args.epochs, objective=args.objective)
