"""The variational autoencoder in one file: forward, backward and Adam, top to bottom.

    OPENBLAS_NUM_THREADS=1 python demos/vae_one_file.py [--seed 0] [--epochs 20] [--objective mc]

Model (Kingma & Welling 2014, section 3 and appendix C; Bernoulli pixels, diagonal Gaussian q):
    p(z)   = N(0, I),  z in R^Z
    p(x|z) = prod_d Bernoulli(x_d; sigmoid(t_d)),   logits t = relu(z W2 + b2) W3 + b3    (D = 784)
    q(z|x) = N(mu, diag(sigma^2)),   [mu, log_scale] = relu(x W0 + b0) W1 + b1,  sigma = e^log_scale
Reparameterization (section 2.4): z = mu + sigma * eps, eps ~ N(0, I), so
    log|det dz/deps| = sum_j log sigma_j,    log q(z|x) = log N(eps; 0, I) - log|det dz/deps|.
Per example x, with L draws eps_l (stable form softplus(t) = max(t, 0) + log1p(e^-|t|)):
    log p(x|z) = sum_d x_d t_d - softplus(t_d)
    KL(q || p) = sum_j (sigma_j^2 + mu_j^2 - 1) / 2 - log sigma_j                      (appendix B)
    "analytic"  ELBO = (1/L) sum_l log p(x|z_l) - KL         (eq. 7; eq. 10 for this Gaussian q)
    "mc"        ELBO = (1/L) sum_l [log p(x|z_l) + log p(z_l) - log q(z_l|x)]          (eq. 6)
Training minimizes -mean_b ELBO_b with Adam (Kingma & Ba 2015, Algorithm 1).
Shapes: B examples, L draws each, D pixels, H hidden units, Z latents; W0..W3 are the
parameters "enc.0.W", "enc.1.W", "dec.0.W", "dec.1.W" (b likewise).

This is the plain edition of scratchvae.vae.VAE(posterior="diagonal", likelihood="bernoulli",
hidden=(H,)): same initialisation, same parameter names, and the same numbers;
tests/test_one_file.py binds the two (equal objectives and gradients to 1e-12 in float64).

Measured with the command above at --seed 0 (20 epochs of 20,000 images, H = 400, Z = 20, batch
100, Adam lr 1e-3): validation ELBO -664.5 at the start, -144.7 after epoch 1, -105.35 after
epoch 20; test ELBO -105.35 nats. 32 s of training, 35 s wall time in all, on a 2-core machine
(35 s and 38 s while another process kept one core busy).
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
def he_normal(n_in, n_out, rng, dtype):
    """W ~ N(0, 2 / n_in) (He et al. 2015), for the layers followed by a ReLU."""
    return (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)  # (n_in, n_out)


def glorot_uniform(n_in, n_out, rng, dtype):
    """W ~ U(-a, a), a = sqrt(6 / (n_in + n_out)) (Glorot & Bengio 2010), for the output layers."""
    a = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype)                     # (n_in, n_out)


def init_params(D, H, Z, rng, dtype=np.float32):
    """Encoder D-H-2Z, decoder Z-H-D; W is (n_in, n_out), out = x @ W + b, biases start at 0.

    Drawn in the order VAE(D, Z, rng=rng, hidden=(H,)) draws them: the same rng gives the same
    weights, under the same names.
    """
    p = {}
    p["enc.0.W"] = he_normal(D, H, rng, dtype)         # (D, H)
    p["enc.0.b"] = np.zeros(H, dtype)                  # (H,)
    p["enc.1.W"] = glorot_uniform(H, 2 * Z, rng, dtype)  # (H, 2Z)
    p["enc.1.b"] = np.zeros(2 * Z, dtype)              # (2Z,)
    p["dec.0.W"] = he_normal(Z, H, rng, dtype)         # (Z, H)
    p["dec.0.b"] = np.zeros(H, dtype)                  # (H,)
    p["dec.1.W"] = glorot_uniform(H, D, rng, dtype)    # (H, D)
    p["dec.1.b"] = np.zeros(D, dtype)                  # (D,)
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
    logits = (a2 @ p["dec.1.W"] + p["dec.1.b"]).reshape(B, L, -1)  # (B, L, D)  t in the docstring
    softplus = np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))  # (B, L, D)
    log_px = (x[:, None, :] * logits - softplus).sum(axis=2)      # (B, L)
    # 5. prior, analytic KL, and the chosen ELBO
    log_pz = (-0.5 * z * z - 0.5 * LOG_2PI).sum(axis=2)           # (B, L)
    kl = (0.5 * (sigma * sigma + mu * mu - 1) - log_scale).sum(axis=1)  # (B,)
    if objective == "analytic":
        elbo = log_px.mean(axis=1) - kl                           # (B,)
    elif objective == "mc":
        elbo = (log_px + log_pz - log_q).mean(axis=1)             # (B,)
    else:
        raise ValueError(f"objective must be 'analytic' or 'mc', got {objective!r}")
    cache = dict(x=x, eps=eps, h1=h1, a1=a1, mu=mu, log_scale=log_scale, sigma=sigma, z=z,
                 h2=h2, a2=a2, logits=logits, softplus=softplus, objective=objective)
    return elbo, cache


# 6. Backward: the forward in reverse, d<name> has the shape of <name> --------------------------
def backward(p, delbo, cache):
    """Gradients of sum_b delbo_b * ELBO_b; delbo = -1/B for the loss -mean_b ELBO_b."""
    x, eps, h1, a1 = cache["x"], cache["eps"], cache["h1"], cache["a1"]
    mu, log_scale, sigma, z = cache["mu"], cache["log_scale"], cache["sigma"], cache["z"]
    h2, a2, logits, softplus = cache["h2"], cache["a2"], cache["logits"], cache["softplus"]
    B, L, Z = eps.shape
    zf = z.reshape(B * L, Z)                                      # (BL, Z)
    g = {}
    # 5. the ELBO: which terms it used decides which upstream gradients are nonzero
    if cache["objective"] == "analytic":        # elbo = mean_l log_px - kl
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
    dlog_scale = np.repeat(-dkl[:, None], Z, axis=1)              # (B, Z)
    # log_pz = sum_j -z^2/2 - log(2 pi)/2
    dz = dlog_pz[:, :, None] * -z                                 # (B, L, Z)
    # log_px = sum_d x t - softplus(t);  softplus'(t) = sigmoid(t) = exp(t - softplus(t))
    dlogits = dlog_px[:, :, None] * (x[:, None, :] - np.exp(logits - softplus))  # (B, L, D)
    # logits = a2 @ W3 + b3;  a2 = relu(h2);  h2 = zf @ W2 + b2
    dlogits_f = dlogits.reshape(B * L, -1)                        # (BL, D)
    g["dec.1.W"] = a2.T @ dlogits_f                               # (H, D)
    g["dec.1.b"] = dlogits_f.sum(axis=0)                          # (D,)
    da2 = dlogits_f @ p["dec.1.W"].T                              # (BL, H)
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
    with m_hat = m / (1 - b1^step), v_hat = v / (1 - b2^step), step = 1, 2, ...

    The one writer of parameters. Plain on purpose: for the weight of a rarely inked pixel, m
    decays as 0.9^step into float32 subnormals, which are slow on many CPUs (measured here: this
    function's share of an epoch grew from 0.5 s to 0.8 s by epoch 8); scratchvae/optim.py
    explains it and flushes them.
    """
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
    return float(np.mean(np.concatenate([forward(p, x[i:i + batch], eps[i:i + batch])[0]  # (N,)
                                         for i in range(0, len(x), batch)])))


def train(seed=0, epochs=20, n_train=20000, n_held_out=1000, H=400, Z=20, batch=100, lr=1e-3,
          L=1, objective="analytic"):
    """Train with Adam, printing one line per epoch; return (validation ELBOs, test ELBO).

    The validation ELBOs start with epoch 0 (the initial weights). Held-out ELBOs are analytic
    with L = 1, on one fixed binarization and one fixed eps per image, so epochs compare.
    """
    data = load_embedded_digits(n_train=n_train, n_valid=n_held_out, n_test=n_held_out, seed=seed)
    rng = np.random.default_rng(seed)
    p = init_params(data.train.x.shape[1], H, Z, rng)
    m = {k: np.zeros_like(w) for k, w in p.items()}                 # Adam's moments: each like p[k]
    v = {k: np.zeros_like(w) for k, w in p.items()}                 # (same shapes)
    held_out_rng = np.random.default_rng([seed, 1])
    x_valid = binarize(data.valid.x, held_out_rng)                                  # (N, D)
    eps_valid = held_out_rng.standard_normal((n_held_out, 1, Z), dtype=np.float32)  # (N, 1, Z)
    x_test = binarize(data.test.x, held_out_rng)                                    # (N, D)
    eps_test = held_out_rng.standard_normal((n_held_out, 1, Z), dtype=np.float32)   # (N, 1, Z)
    valid = [evaluate(p, x_valid, eps_valid)]
    print(f"epoch   0  {'':20s}  valid ELBO {valid[0]:8.2f}")
    step, start = 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n_train)                          # (N,)
        losses = []
        for i in range(0, n_train - batch + 1, batch):            # a last partial batch is dropped
            x = binarize(data.train.x[order[i:i + batch]], rng)   # (B, D)
            eps = rng.standard_normal((batch, L, Z), dtype=np.float32)  # (B, L, Z)
            elbo, cache = forward(p, x, eps, objective)           # (B,)
            g = backward(p, np.full(batch, -1.0 / batch, np.float32), cache)  # each like p[k]
            step += 1
            adam_step(p, g, m, v, step, lr)
            losses.append(-float(elbo.mean()))
        valid.append(evaluate(p, x_valid, eps_valid))
        print(f"epoch {epoch:3d}  train -ELBO {np.mean(losses):8.2f}  valid ELBO {valid[-1]:8.2f}  "
              f"{time.perf_counter() - start:5.1f} s", flush=True)
    test = evaluate(p, x_test, eps_test)
    seconds = time.perf_counter() - start
    print(f"test ELBO {test:.2f} nats (analytic, L = 1); {seconds:.1f} s training")
    return valid, test


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="data, initialisation and noise")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--objective", choices=("analytic", "mc"), default="analytic")
    args = parser.parse_args()
    train(seed=args.seed, epochs=args.epochs, objective=args.objective)
