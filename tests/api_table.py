"""The public API as a table: for every entry point, a good call and the kind of each argument.

``tests/test_bad_input.py`` turns each row into bad calls, one argument spoiled at a time (and,
in the fuzz test, several at once), and asserts that each gives a named error:

    kind of argument    spoiled as                                  expected
    array               a list; int64; the other float dtype        TypeError
                        (when the dtype must match another's)
                        a wrong shape (when the shape is fixed)     ValueError
                        NaN, inf                                    ValueError (FloatingPointError
                                                                    for an upstream gradient)
    labels (integers)   a list; float64                             TypeError
                        one axis too many                           ValueError
    rows (N = 0)        every array of the row's ``rows`` [:0]      ValueError, or an empty result
                                                                    where the row says "ok"
    size                0 (or minimum - 1) and -1, or ``bad``       ValueError
                        "2", 2.5, True                              TypeError
    real                "0.5", True                                 TypeError
                        NaN and the row's out-of-range values       ValueError
    flag (bool)         "no", 1                                     TypeError
    choice              "bogus"                                     ValueError
                        3                                           TypeError or ValueError
    rng                 0, numpy.random.RandomState(0)              TypeError
    func, obj, path     3                                           TypeError
    ints (sequence)     5, ["1", "2"]                               TypeError
                        [minimum - 1]                               ValueError
    dtype               numpy.int32, "garbage"                      TypeError

and that the message names the argument (``label`` when the message uses another word). An
argument's ``only`` limits it to some of these. A good call must return finite numbers of the
shape the row's ``check`` expects. Rows are small (a 6-2 VAE with 5 hidden units, 3x4 Ising
grids, D = 3 flows) so the table runs in seconds. Methods are rows where a user calls them with
data (distributions, LinearGaussian, VAE, MLP, optimizers); the layers' and likelihoods' own
forward/backward are the inner loop behind those doors.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np

F32, F64 = np.float32, np.float64


# --------------------------------------------------------------------------------- arguments
@dataclass(frozen=True)
class Arg:
    kind: str
    shape: bool = True        # array: its shape is constrained, so a wrong one must be refused
    match: bool = False       # array: must have one particular float dtype (the model's, loc's)
    finite: bool = True       # array: NaN and inf are refused
    upstream: bool = False    # array: an upstream gradient (NaN/inf raise FloatingPointError)
    minimum: int = 1          # size, ints: the smallest valid value
    bad: tuple = ()           # real: out-of-range values
    label: str | None = None  # the word the message must contain (default: the argument's name)
    only: tuple = ()          # spoil this argument only in these ways (default: every way of its kind)


def arr(**kw):
    return Arg("array", **kw)


def data(**kw):                                      # an array of the model's (or loc's) dtype
    return Arg("array", match=True, **kw)


def grad(**kw):                                      # an upstream gradient
    return Arg("array", match=True, upstream=True, **kw)


def size(minimum=1, **kw):
    return Arg("size", minimum=minimum, **kw)


def real(*bad, **kw):
    return Arg("real", bad=bad, **kw)


FLAG, CHOICE, RNG, FUNC, OBJ, PATH, DTYPE = (Arg(k) for k in
                                             ("flag", "choice", "rng", "func", "obj", "path", "dtype"))


def ints(minimum=0):
    return Arg("ints", minimum=minimum)


# ------------------------------------------------------------------------------------- rows
@dataclass
class Entry:
    """One public entry point: ``call(**make(rng))`` is a good call; ``args`` says which kind each
    argument is (arguments not listed are not spoiled); ``rows`` names the arrays that share the
    N axis and ``empty`` whether N = 0 is an "error" or gives an "ok" (empty) result."""
    name: str
    call: Callable
    make: Callable
    args: dict
    check: Callable = lambda out, kw: True
    rows: tuple = ()
    empty: str | None = None
    covers: tuple = ()
    nonfinite_ok: bool = False   # a good call may return inf or NaN (file contents, timings)
    good: bool = True            # False: only bad calls are made (a good one needs the network or a file)


ENTRIES: list[Entry] = []


def entry(name, call, make, args, check=None, *, rows=(), empty=None, covers=(), nonfinite_ok=False, good=True):
    ENTRIES.append(Entry(name, call, make, args, check or (lambda out, kw: True), tuple(rows), empty,
                         (name, *covers), nonfinite_ok, good))


def shape_is(*dims):
    """check: the result is an ndarray of exactly this shape (ints, or argument names -> len)."""
    def check(out, kw):
        want = tuple(len(kw[d]) if isinstance(d, str) else d for d in dims)
        return isinstance(out, np.ndarray) and out.shape == want
    return check


def like(name):
    """check: the result has the shape of argument ``name``."""
    return lambda out, kw: isinstance(out, np.ndarray) and out.shape == kw[name].shape


def dt_of(rng):
    return (F32, F64)[int(rng.integers(2))]


def n_of(rng, low=1, high=4):
    return int(rng.integers(low, high + 1))


def normal(rng, shape, dt=F64, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dt)


def binary(rng, shape, dt=F64):
    return (rng.random(shape) < 0.5).astype(dt)


def tril(rng, lead, D, dt=F64):
    L = np.tril(normal(rng, lead + (D, D), dt, 0.3), -1)
    i = np.arange(D)
    L[..., i, i] = np.exp(normal(rng, lead + (D,), dt, 0.2))
    return L


# =========================================================================================
# stable, validate
# =========================================================================================
from scratchvae import stable  # noqa: E402
from scratchvae import validate as V  # noqa: E402

for _f in (stable.softplus, stable.softplus_neg_abs, stable.sigmoid):
    entry(f"stable.{_f.__name__}", lambda t, f=_f: f(t), lambda rng: {"t": normal(rng, (n_of(rng), 3), dt_of(rng))},
          {"t": arr(shape=False, finite=False)}, like("t"), rows=("t",), empty="ok")
entry("stable.expm1mx", lambda v: stable.expm1mx(v), lambda rng: {"v": normal(rng, (n_of(rng), 3), dt_of(rng))},
      {"v": arr(shape=False, finite=False)}, like("v"), rows=("v",), empty="ok")
entry("stable.flush_subnormals", lambda a: (stable.flush_subnormals(a), a)[1],
      lambda rng: {"a": normal(rng, (n_of(rng), 3), dt_of(rng))},
      {"a": arr(shape=False, finite=False)}, like("a"), rows=("a",), empty="ok")
for _f in (stable.logmeanexp, stable.logsumexp, stable.softmax):
    entry(f"stable.{_f.__name__}", lambda a, f=_f: f(a),
          lambda rng: {"a": normal(rng, (n_of(rng), 3), dt_of(rng))},
          {"a": arr(shape=False, finite=False)},
          (like("a") if _f is stable.softmax else (lambda out, kw: out.shape == kw["a"].shape[:-1])),
          rows=("a",), empty="ok")

entry("validate.check_float_array", lambda x: V.check_float_array("x", x, shape=(None, 3)),
      lambda rng: {"x": normal(rng, (2, 3))}, {"x": arr()}, like("x"))
entry("validate.check_same_shape", lambda a, b: V.check_same_shape("a", a, "b", b),
      lambda rng: {"a": normal(rng, (2, 3)), "b": normal(rng, (2, 3))}, {"b": arr(only=("type", "shape"))})
entry("validate.check_same_dtype", lambda a, b: V.check_same_dtype("a", a, "b", b),
      lambda rng: {"a": normal(rng, 2), "b": normal(rng, 2)}, {"b": data(only=("type", "dtype"))})
entry("validate.check_rng", lambda rng: V.check_rng("rng", rng),
      lambda rng: {"rng": np.random.default_rng(0)}, {"rng": RNG})
entry("validate.check_real", lambda v: V.check_real("v", v), lambda rng: {"v": 1.5}, {"v": real(np.inf)})
entry("validate.check_positive", lambda v: V.check_positive("v", v), lambda rng: {"v": 1.5},
      {"v": real(0.0, -1.0, np.inf)})
entry("validate.check_in_range", lambda v: V.check_in_range("v", v, 0, 1), lambda rng: {"v": 0.5},
      {"v": real(-0.1, 1.1)})
entry("validate.check_int", lambda v: V.check_int("v", v, minimum=1), lambda rng: {"v": 3}, {"v": size()})
entry("validate.check_int_sequence", lambda v: V.check_int_sequence("v", v, minimum=0),
      lambda rng: {"v": [1, 2]}, {"v": ints()})
entry("validate.check_bool", lambda v: V.check_bool("v", v), lambda rng: {"v": True}, {"v": FLAG})
entry("validate.check_choice", lambda v: V.check_choice("v", v, ("a", "b")), lambda rng: {"v": "a"},
      {"v": CHOICE})
entry("validate.check_callable", lambda f: V.check_callable("f", f), lambda rng: {"f": len}, {"f": FUNC})
entry("validate.check_str", lambda s: V.check_str("s", s), lambda rng: {"s": "x"}, {"s": OBJ})
entry("validate.check_path", lambda path: V.check_path("path", path), lambda rng: {"path": "a/b.npz"}, {"path": PATH})
entry("validate.check_mapping", lambda d: V.check_mapping("d", d, values=np.ndarray),
      lambda rng: {"d": {"W": normal(rng, 2)}}, {"d": OBJ})
entry("validate.check_dtype", lambda dtype: V.check_dtype("dtype", dtype), lambda rng: {"dtype": dt_of(rng)},
      {"dtype": DTYPE})
entry("validate.check_has_rows", lambda x: V.check_has_rows("x", x), lambda rng: {"x": normal(rng, (2, 3))},
      {}, rows=("x",), empty="error")
entry("validate.check_model", lambda m: V.check_model("m", m, ("shape",)),
      lambda rng: {"m": normal(rng, 2)}, {"m": OBJ})
entry("validate.check_cache", lambda cache: V.check_cache(cache, 2, "f"), lambda rng: {"cache": (1, 2)},
      {"cache": OBJ})
entry("validate.check_gradient", lambda g: V.check_gradient("g", g, shape=(2,), dtype=F64),
      lambda rng: {"g": normal(rng, 2)}, {"g": grad()}, like("g"))
entry("validate.check_one_hot", lambda y: V.check_one_hot("y", y, 2, 3),
      lambda rng: {"y": np.eye(3)[[0, 2]]}, {"y": arr()}, like("y"))

# =========================================================================================
# distributions, transforms
# =========================================================================================
from scratchvae import distributions as dist  # noqa: E402
from scratchvae import transforms as tf  # noqa: E402


def _normal_kw(rng, with_x="x"):
    dt, n = dt_of(rng), n_of(rng)
    kw = {"loc": normal(rng, (n, 3), dt), "log_scale": normal(rng, (n, 3), dt, 0.3)}
    if with_x:
        kw[with_x] = normal(rng, (n, 3), dt)
    return kw


_NORMAL = {"loc": data(), "log_scale": data()}
_NORMAL_ALONE = {"loc": data(shape=False), "log_scale": data()}   # loc sets the shape: no other array
entry("distributions.standard_normal_log_prob", lambda x: dist.standard_normal_log_prob(x),
      lambda rng: {"x": normal(rng, (n_of(rng), 3), dt_of(rng))}, {"x": arr(shape=False)}, like("x"),
      rows=("x",), empty="ok", covers=("distributions.standard_normal_log_prob_grad",))
entry("distributions.Normal", lambda loc, log_scale: dist.Normal(loc, log_scale),
      lambda rng: _normal_kw(rng, None), _NORMAL_ALONE, rows=("loc", "log_scale"), empty="ok")
for _m in ("log_prob", "log_prob_grads"):
    entry(f"distributions.Normal.{_m}", lambda loc, log_scale, x, m=_m: getattr(dist.Normal(loc, log_scale), m)(x),
          _normal_kw, {**_NORMAL, "x": data()},
          (like("x") if _m == "log_prob" else lambda out, kw: out["x"].shape == kw["x"].shape),
          rows=("loc", "log_scale", "x"), empty="ok")
entry("distributions.Normal.rsample", lambda loc, log_scale, eps: dist.Normal(loc, log_scale).rsample(eps),
      lambda rng: _normal_kw(rng, "eps"), {**_NORMAL, "eps": data()}, like("eps"),
      rows=("loc", "log_scale", "eps"), empty="ok")
entry("distributions.Normal.sample", lambda loc, log_scale, rng: dist.Normal(loc, log_scale).sample(rng),
      lambda rng: {**_normal_kw(rng, None), "rng": np.random.default_rng(1)}, {**_NORMAL, "rng": RNG}, like("loc"))
for _m in ("entropy", "entropy_grads", "kl_to_standard_normal", "kl_to_standard_normal_grads"):
    entry(f"distributions.Normal.{_m}", lambda loc, log_scale, m=_m: getattr(dist.Normal(loc, log_scale), m)(),
          lambda rng: _normal_kw(rng, None), _NORMAL_ALONE, rows=("loc", "log_scale"), empty="ok")
entry("distributions.gaussian_log_prob", lambda x, loc, log_scale: dist.gaussian_log_prob(x, loc, log_scale),
      _normal_kw, {**_NORMAL, "x": data()}, like("x"), rows=("loc", "log_scale", "x"), empty="ok")


def _mvn_kw(rng, with_x="x"):
    dt, n = dt_of(rng), n_of(rng)
    kw = {"loc": normal(rng, (n, 3), dt), "scale_tril": tril(rng, (n,), 3, dt)}
    if with_x:
        kw[with_x] = normal(rng, (n, 3), dt)
    return kw


_MVN = {"loc": data(), "scale_tril": data()}
entry("distributions.check_scale_tril", lambda L, loc: dist.check_scale_tril("L", L, loc),
      lambda rng: {"L": (k := _mvn_kw(rng, None))["scale_tril"], "loc": k["loc"]},
      {"L": data(), "loc": data()}, like("L"), rows=("L", "loc"), empty="ok")
entry("distributions.MultivariateNormal", lambda loc, scale_tril: dist.MultivariateNormal(loc, scale_tril),
      lambda rng: _mvn_kw(rng, None), _MVN, rows=("loc", "scale_tril"), empty="ok")
for _m in ("log_prob", "log_prob_grads"):
    entry(f"distributions.MultivariateNormal.{_m}",
          lambda loc, scale_tril, x, m=_m: getattr(dist.MultivariateNormal(loc, scale_tril), m)(x),
          _mvn_kw, {**_MVN, "x": data()},
          (shape_is("x") if _m == "log_prob" else lambda out, kw: out["x"].shape == kw["x"].shape),
          rows=("loc", "scale_tril", "x"), empty="ok")
entry("distributions.MultivariateNormal.rsample",
      lambda loc, scale_tril, eps: dist.MultivariateNormal(loc, scale_tril).rsample(eps),
      lambda rng: _mvn_kw(rng, "eps"), {**_MVN, "eps": data()}, like("eps"),
      rows=("loc", "scale_tril", "eps"), empty="ok")
entry("distributions.MultivariateNormal.sample",
      lambda loc, scale_tril, rng: dist.MultivariateNormal(loc, scale_tril).sample(rng),
      lambda rng: {**_mvn_kw(rng, None), "rng": np.random.default_rng(1)}, {**_MVN, "rng": RNG}, like("loc"))
for _m in ("entropy", "entropy_grads", "kl_to_standard_normal", "kl_to_standard_normal_grads"):
    entry(f"distributions.MultivariateNormal.{_m}",
          lambda loc, scale_tril, m=_m: getattr(dist.MultivariateNormal(loc, scale_tril), m)(),
          lambda rng: _mvn_kw(rng, None), _MVN, rows=("loc", "scale_tril"), empty="ok")


def _bern_kw(rng):
    dt, n = dt_of(rng), n_of(rng)
    return {"x": binary(rng, (n, 4), dt), "logits": normal(rng, (n, 4), dt, 3.0)}


entry("distributions.bernoulli_log_prob", lambda x, logits: dist.bernoulli_log_prob(x, logits), _bern_kw,
      {"x": data(), "logits": data()}, like("x"), rows=("x", "logits"), empty="ok",
      covers=("distributions.bernoulli_log_prob_grads",))
entry("distributions.Bernoulli", lambda logits: dist.Bernoulli(logits),
      lambda rng: {"logits": _bern_kw(rng)["logits"]}, {"logits": arr(shape=False)}, rows=("logits",), empty="ok")
for _m in ("log_prob", "log_prob_grads"):
    entry(f"distributions.Bernoulli.{_m}", lambda x, logits, m=_m: getattr(dist.Bernoulli(logits), m)(x),
          _bern_kw, {"x": data(), "logits": data()},
          (like("x") if _m == "log_prob" else lambda out, kw: out["x"].shape == kw["x"].shape),
          rows=("x", "logits"), empty="ok")
entry("distributions.Bernoulli.sample", lambda logits, rng: dist.Bernoulli(logits).sample(rng),
      lambda rng: {"logits": _bern_kw(rng)["logits"], "rng": np.random.default_rng(2)},
      {"logits": arr(shape=False), "rng": RNG}, like("logits"))
for _m in ("entropy", "entropy_grads"):
    entry(f"distributions.Bernoulli.{_m}", lambda logits, m=_m: getattr(dist.Bernoulli(logits), m)(),
          lambda rng: {"logits": _bern_kw(rng)["logits"]}, {"logits": arr(shape=False)})


def _aff_kw(rng):
    dt, n = dt_of(rng), n_of(rng)
    return {"eps": normal(rng, (n, 3), dt), "loc": normal(rng, (n, 3), dt), "log_scale": normal(rng, (n, 3), dt, .3)}


entry("transforms.diagonal_affine", lambda eps, loc, log_scale: tf.diagonal_affine(eps, loc, log_scale),
      _aff_kw, {"eps": data(), "loc": data(), "log_scale": data()},
      lambda out, kw: out[0].shape == kw["eps"].shape, rows=("eps", "loc", "log_scale"), empty="ok")
entry("transforms.diagonal_affine_backward", lambda dz, dlog_abs_det, cache: tf.diagonal_affine_backward(dz, dlog_abs_det, cache),
      lambda rng: {"cache": tf.diagonal_affine(**(k := _aff_kw(rng)))[2], "dz": normal(rng, k["eps"].shape, k["eps"].dtype),
                   "dlog_abs_det": normal(rng, k["eps"].shape[:1], k["eps"].dtype)},
      {"dz": grad(), "dlog_abs_det": grad(), "cache": OBJ}, lambda out, kw: out["eps"].shape == kw["dz"].shape)


def _tril_kw(rng):
    dt, n = dt_of(rng), n_of(rng)
    return {"eps": normal(rng, (n, 3), dt), "loc": normal(rng, (n, 3), dt), "scale_tril": tril(rng, (n,), 3, dt)}


entry("transforms.tril_affine", lambda eps, loc, scale_tril: tf.tril_affine(eps, loc, scale_tril), _tril_kw,
      {"eps": data(), "loc": data(), "scale_tril": data()}, lambda out, kw: out[0].shape == kw["eps"].shape,
      rows=("eps", "loc", "scale_tril"), empty="ok")
entry("transforms.tril_affine_backward", lambda dz, dlog_abs_det, cache: tf.tril_affine_backward(dz, dlog_abs_det, cache),
      lambda rng: {"cache": tf.tril_affine(**(k := _tril_kw(rng)))[2], "dz": normal(rng, k["eps"].shape, k["eps"].dtype),
                   "dlog_abs_det": normal(rng, k["eps"].shape[:1], k["eps"].dtype)},
      {"dz": grad(), "dlog_abs_det": grad(), "cache": OBJ}, lambda out, kw: out["scale_tril"].shape[-1] == 3)


def _tfp_kw(rng):
    dt, n = dt_of(rng), n_of(rng)
    return {"log_diag": normal(rng, (n, 3), dt, .3), "offdiag": normal(rng, (n, 3), dt, .3)}


entry("transforms.tril_from_params", lambda log_diag, offdiag: tf.tril_from_params(log_diag, offdiag), _tfp_kw,
      {"log_diag": data(), "offdiag": data()}, lambda out, kw: out[0].shape == kw["log_diag"].shape + (3,),
      rows=("log_diag", "offdiag"), empty="ok")
entry("transforms.tril_from_params_backward", lambda dL, cache: tf.tril_from_params_backward(dL, cache),
      lambda rng: {"cache": (c := tf.tril_from_params(**_tfp_kw(rng)))[1],
                   "dL": normal(rng, c[0].shape, c[0].dtype)},
      {"dL": grad(), "cache": OBJ}, lambda out, kw: out["offdiag"].shape == kw["dL"].shape[:1] + (3,))


def _lq_kw(rng):
    dt, n = dt_of(rng), n_of(rng)
    return {"eps": normal(rng, (n, 3), dt), "log_abs_det": normal(rng, (n,), dt)}


entry("transforms.log_q_via_jacobian", lambda eps, log_abs_det: tf.log_q_via_jacobian(eps, log_abs_det), _lq_kw,
      {"eps": arr(shape=False), "log_abs_det": data()}, shape_is("eps"), rows=("eps", "log_abs_det"), empty="ok")
entry("transforms.log_q_via_jacobian_backward", lambda dlog_q, eps: tf.log_q_via_jacobian_backward(dlog_q, eps),
      lambda rng: {"eps": (k := _lq_kw(rng))["eps"], "dlog_q": k["log_abs_det"]},
      {"dlog_q": grad(), "eps": arr(shape=False)}, lambda out, kw: out["eps"].shape == kw["eps"].shape,
      rows=("dlog_q", "eps"), empty="ok")

# =========================================================================================
# nn, likelihoods, posteriors, vae
# =========================================================================================
from scratchvae import likelihoods as lik  # noqa: E402
from scratchvae import nn  # noqa: E402
from scratchvae import posteriors as post  # noqa: E402
from scratchvae.vae import VAE  # noqa: E402

for _f in (nn.glorot_uniform, nn.he_normal):
    entry(f"nn.{_f.__name__}", lambda n_in, n_out, rng, dtype, f=_f: f(n_in, n_out, rng, dtype),
          lambda rng: {"n_in": 3, "n_out": 2, "rng": np.random.default_rng(0), "dtype": F32},
          {"n_in": size(), "n_out": size(), "rng": RNG, "dtype": DTYPE}, shape_is(3, 2))
entry("nn.Linear", lambda n_in, n_out, rng, init, dtype: nn.Linear(n_in, n_out, rng=rng, init=init, dtype=dtype),
      lambda rng: {"n_in": 3, "n_out": 2, "rng": np.random.default_rng(0), "init": "he", "dtype": F64},
      {"n_in": size(), "n_out": size(), "rng": RNG, "init": CHOICE, "dtype": DTYPE})
for _c in (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Softplus):
    entry(f"nn.{_c.__name__}", lambda c=_c: c(), lambda rng: {}, {})
entry("nn.LeakyReLU", lambda slope: nn.LeakyReLU(slope), lambda rng: {"slope": 0.1}, {"slope": real(-0.1, 1.0)})


def _mlp(dt=F64, **kw):
    return nn.MLP([4, 5, 3], "tanh", rng=np.random.default_rng(0), dtype=dt, **kw)


entry("nn.MLP", lambda sizes, activation, rng, out_activation, init, dtype:
      nn.MLP(sizes, activation, rng=rng, out_activation=out_activation, init=init, dtype=dtype),
      lambda rng: {"sizes": [4, 5, 3], "activation": "relu", "rng": np.random.default_rng(0),
                   "out_activation": "sigmoid", "init": "glorot", "dtype": F32},
      {"sizes": ints(minimum=1), "activation": CHOICE, "rng": RNG, "out_activation": CHOICE,
       "init": CHOICE, "dtype": DTYPE})
entry("nn.MLP.forward", lambda x, dtype: _mlp(dtype).forward(x)[0],
      lambda rng: {"dtype": (dt := dt_of(rng)), "x": normal(rng, (n_of(rng), 4), dt)},
      {"x": data(finite=False)}, shape_is("x", 3), rows=("x",), empty="ok")
entry("nn.MLP.backward", lambda dout, cache, need_dx, dtype: _mlp(dtype).backward(dout, cache, need_dx)[0],
      lambda rng: {"dtype": (dt := dt_of(rng)), "cache": (c := _mlp(dt).forward(normal(rng, (n := n_of(rng), 4), dt)))[1],
                   "dout": normal(rng, (n, 3), dt), "need_dx": True},
      {"dout": data(finite=False), "cache": OBJ, "need_dx": FLAG}, lambda out, kw: out.shape == (len(kw["dout"]), 4))

entry("likelihoods.GaussianLikelihood", lambda scale, min_scale: lik.GaussianLikelihood(scale, min_scale),
      lambda rng: {"scale": 0.2, "min_scale": 0.01}, {"scale": real(0.0, -1.0, np.inf), "min_scale": real(0.0, np.inf)},
      covers=("likelihoods.BernoulliLikelihood",))
entry("likelihoods.make_likelihood", lambda name, scale: lik.make_likelihood(name, scale),
      lambda rng: {"name": "gaussian", "scale": 0.3},
      {"name": Arg("choice", label="likelihood"), "scale": real(0.0)})
for _c in (post.DiagonalGaussian, post.FullGaussian):
    entry(f"posteriors.{_c.__name__}", lambda z_dim, c=_c: c(z_dim), lambda rng: {"z_dim": 2}, {"z_dim": size()})
entry("posteriors.make_posterior", lambda name, z_dim: post.make_posterior(name, z_dim),
      lambda rng: {"name": "full", "z_dim": 2}, {"name": Arg("choice", label="posterior"), "z_dim": size()})


def tiny_vae(dt=F64, **kw):
    return VAE(6, 2, rng=np.random.default_rng(0), hidden=(5,), dtype=dt, **kw)


entry("vae.VAE", lambda x_dim, z_dim, rng, hidden, activation, posterior, likelihood, obs_scale, n_classes, dtype:
      VAE(x_dim, z_dim, rng=rng, hidden=hidden, activation=activation, posterior=posterior,
          likelihood=likelihood, obs_scale=obs_scale, n_classes=n_classes, dtype=dtype),
      lambda rng: {"x_dim": 6, "z_dim": 2, "rng": np.random.default_rng(0), "hidden": (5,),
                   "activation": "tanh", "posterior": "full", "likelihood": "gaussian", "obs_scale": 0.2,
                   "n_classes": 3, "dtype": F32},
      {"x_dim": size(), "z_dim": size(), "rng": RNG, "hidden": ints(minimum=1), "activation": CHOICE,
       "posterior": CHOICE, "likelihood": CHOICE, "obs_scale": real(0.0), "n_classes": size(minimum=2),
       "dtype": DTYPE})


def _vae_kw(rng, S=None, eps=True):
    dt, n = dt_of(rng), n_of(rng)
    kw = {"dtype": dt, "x": binary(rng, (n, 6), dt)}
    if eps:
        kw["eps"] = normal(rng, (n, S or n_of(rng), 2), dt)
    return kw


entry("vae.VAE.forward", lambda x, eps, estimator, beta, dtype: tiny_vae(dtype).forward(x, eps, estimator, beta)[0],
      lambda rng: {**_vae_kw(rng), "estimator": "mc", "beta": 0.5},
      {"x": data(), "eps": data(), "estimator": CHOICE, "beta": real(-0.5, 1.5)}, shape_is("x"),
      rows=("x", "eps"), empty="ok", covers=("vae.VAE.loss_and_grads",))
entry("vae.VAE.backward", lambda dobjective, cache, dtype: tiny_vae(dtype).backward(dobjective, cache),
      lambda rng: {"dtype": (k := _vae_kw(rng))["dtype"], "cache": tiny_vae(k["dtype"]).forward(k["x"], k["eps"])[1],
                   "dobjective": normal(rng, len(k["x"]), k["dtype"])},
      {"dobjective": data(), "cache": OBJ})      # dobjective is the caller's (-1/B), not an upstream result
entry("vae.VAE.encode", lambda x, dtype: tiny_vae(dtype).encode(x)[0].loc, lambda rng: _vae_kw(rng, eps=False),
      {"x": data()}, shape_is("x", 2), rows=("x",), empty="ok")
entry("vae.VAE.decode", lambda z, dtype: tiny_vae(dtype).decode(z),
      lambda rng: {"dtype": (dt := dt_of(rng)), "z": normal(rng, (n_of(rng), 2), dt)},
      {"z": data()}, shape_is("z", 6), rows=("z",), empty="ok")
entry("vae.VAE.check_data", lambda x, dtype: tiny_vae(dtype).check_data("x", x), lambda rng: _vae_kw(rng, eps=False),
      {"x": data()}, covers=("vae.VAE.check_labels",))

# =========================================================================================
# evaluate, generate
# =========================================================================================
from scratchvae import evaluate as ev  # noqa: E402
from scratchvae import generate as gen  # noqa: E402


def _ev_kw(r, **extra):
    k = _vae_kw(r, eps=False)
    return {"vae": tiny_vae(k["dtype"]), "x": k["x"], **extra}


_VX = {"vae": OBJ, "x": data()}
entry("evaluate.elbo", lambda vae, x, rng, n_samples, estimator, batch_size:
      ev.elbo(vae, x, rng=rng, n_samples=n_samples, estimator=estimator, batch_size=batch_size)["elbo"],
      lambda rng: _ev_kw(rng, rng=np.random.default_rng(3), n_samples=3, estimator="iwae", batch_size=2),
      {**_VX, "rng": RNG, "n_samples": size(), "estimator": CHOICE, "batch_size": size()}, shape_is("x"),
      rows=("x",), empty="ok")
entry("evaluate.log_likelihood", lambda vae, x, rng, K, batch_size, k_chunk, progress:
      ev.log_likelihood(vae, x, rng=rng, K=K, batch_size=batch_size, k_chunk=k_chunk, progress=progress),
      lambda rng: _ev_kw(rng, rng=np.random.default_rng(3), K=5, batch_size=2, k_chunk=2, progress=lambda d, t: None),
      {**_VX, "rng": RNG, "K": size(), "batch_size": size(), "k_chunk": size(), "progress": FUNC}, shape_is("x"),
      rows=("x",), empty="ok")
entry("evaluate.bits_per_dim", lambda nats, x_dim: ev.bits_per_dim(nats, x_dim),
      lambda rng: {"nats": normal(rng, n_of(rng)) + 90, "x_dim": 784}, {"nats": arr(shape=False, finite=False), "x_dim": size()},
      like("nats"), rows=("nats",), empty="ok")
entry("evaluate.bits_per_dim_discrete", lambda nats, x_dim, levels: ev.bits_per_dim_discrete(nats, x_dim, levels),
      lambda rng: {"nats": 90.0, "x_dim": 784, "levels": 256}, {"nats": real(), "x_dim": size(), "levels": size(2)})
entry("evaluate.posterior_means", lambda vae, x, batch_size: ev.posterior_means(vae, x, batch_size),
      lambda rng: _ev_kw(rng, batch_size=2), {**_VX, "batch_size": size()}, shape_is("x", 2), rows=("x",), empty="ok")
entry("evaluate.kl_per_dimension", lambda vae, x, batch_size: ev.kl_per_dimension(vae, x, batch_size),
      lambda rng: _ev_kw(rng, batch_size=2), {**_VX, "batch_size": size()}, shape_is(2), rows=("x",), empty="error")
entry("evaluate.active_units", lambda vae, x, threshold: ev.active_units(vae, x, threshold)[1],
      lambda rng: _ev_kw(rng, threshold=0.01), {**_VX, "threshold": real(-1.0)}, shape_is(2), rows=("x",),
      empty="error")

entry("generate.encode", lambda vae, x, rng: gen.encode(vae, x, rng=rng),
      lambda rng: _ev_kw(rng, rng=np.random.default_rng(4)), {**_VX, "rng": RNG}, shape_is("x", 2),
      rows=("x",), empty="ok", covers=("generate.reconstruct",))
entry("generate.decode", lambda vae, z, rng: gen.decode(vae, z, rng=rng),
      lambda rng: {"vae": tiny_vae(dt := dt_of(rng)), "z": normal(rng, (n_of(rng), 2), dt), "rng": np.random.default_rng(4)},
      {"vae": OBJ, "z": data(), "rng": RNG}, shape_is("z", 6), rows=("z",), empty="ok")
entry("generate.sample_prior", lambda vae, n, rng, mean: gen.sample_prior(vae, n, rng=rng, mean=mean),
      lambda rng: {"vae": tiny_vae(dt_of(rng)), "n": n_of(rng), "rng": np.random.default_rng(4), "mean": False},
      {"vae": OBJ, "n": size(), "rng": RNG, "mean": FLAG}, lambda out, kw: out.shape == (kw["n"], 6))
entry("generate.interpolate", lambda vae, x_a, x_b, n_steps: gen.interpolate(vae, x_a, x_b, n_steps),
      lambda rng: {"vae": tiny_vae(dt := dt_of(rng)), "x_a": binary(rng, 6, dt), "x_b": binary(rng, 6, dt), "n_steps": 3},
      {"vae": OBJ, "x_a": data(), "x_b": data(), "n_steps": size(2)}, shape_is(3, 6))
entry("generate.latent_grid", lambda vae, n: gen.latent_grid(vae, n)[0],
      lambda rng: {"vae": tiny_vae(dt_of(rng)), "n": 3}, {"vae": OBJ, "n": size(2)}, shape_is(9, 6))

# =========================================================================================
# gradcheck
# =========================================================================================
from scratchvae import gradcheck as gc  # noqa: E402

entry("gradcheck.rel_error", lambda a, b: gc.rel_error(a, b),
      lambda rng: {"a": normal(rng, (n := n_of(rng), 2)), "b": normal(rng, (n, 2))},
      {"a": arr(finite=False), "b": arr(finite=False)}, like("a"), rows=("a", "b"), empty="ok")
entry("gradcheck.numerical_gradient", lambda f, x, dout, h, stencil: gc.numerical_gradient(f, x, dout, h, stencil),
      lambda rng: {"x": (x := normal(rng, 3)), "f": lambda: x ** 2, "dout": normal(rng, 3), "h": 1e-4, "stencil": 3},
      {"f": FUNC, "x": arr(shape=False), "dout": arr(finite=True, shape=False), "h": real(0.0, -1.0), "stencil": size(3)},
      like("x"))
entry("gradcheck.check_gradients", lambda forward, backward, inputs, rng, stencil:
      gc.check_gradients(forward, backward, inputs, rng=rng, stencil=stencil).overall,
      lambda rng: {"inputs": {"x": (x := normal(rng, 3))}, "forward": lambda: x ** 2,
                   "backward": lambda d: {"x": 2 * x * d}, "rng": np.random.default_rng(0), "stencil": 5},
      {"forward": FUNC, "backward": FUNC, "inputs": OBJ, "rng": RNG, "stencil": size(3)},
      covers=("gradcheck.GradCheckReport",))
entry("gradcheck.GradCheckReport.ok", lambda tol: gc.GradCheckReport({"x": 1e-9}, {"x": ((0,), 1.0, 1.0)}).ok(tol),
      lambda rng: {"tol": 1e-7}, {"tol": real(0.0, -1.0)})

# =========================================================================================
# lab
# =========================================================================================
from scratchvae.lab import estimators as est  # noqa: E402
from scratchvae.lab import estimators_vae as est_vae  # noqa: E402
from scratchvae.lab import mcmc  # noqa: E402
from scratchvae.lab import variations as var  # noqa: E402
from scratchvae.lab.linear_gaussian import LinearGaussian  # noqa: E402

_Q = est.Quadratic(np.array([1.0, 0.5, -0.5]))
_QF = {"f": _Q.f, "grad_f": _Q.grad_f}


def _q_kw(rng, S=None):
    return {"loc": normal(rng, 3), "log_scale": normal(rng, 3, scale=0.3),
            "eps": normal(rng, (n_of(rng), S or n_of(rng, 2, 4), 3))}


_QA = {"loc": data(), "log_scale": data(), "eps": data()}
entry("lab.estimators.Quadratic", lambda target: est.Quadratic(target), lambda rng: {"target": normal(rng, 3)},
      {"target": arr(shape=False)})
entry("lab.estimators.Sinusoid", lambda freq, phase: est.Sinusoid(freq, phase),
      lambda rng: {"freq": normal(rng, 3), "phase": normal(rng, 3)}, {"freq": arr(), "phase": data()})
for _m in ("f", "grad_f"):
    entry(f"lab.estimators.Quadratic.{_m}", lambda z, m=_m: getattr(_Q, m)(z),
          lambda rng: {"z": normal(rng, (n_of(rng), 3))}, {"z": data()},
          (shape_is("z") if _m == "f" else like("z")), rows=("z",), empty="ok",
          covers=(f"lab.estimators.Sinusoid.{_m}",))
for _m in ("expectation", "expectation_grads"):
    entry(f"lab.estimators.Quadratic.{_m}", lambda loc, log_scale, m=_m: getattr(_Q, m)(loc, log_scale),
          lambda rng: {"loc": normal(rng, 3), "log_scale": normal(rng, 3, scale=.3)},
          {"loc": data(), "log_scale": data()}, covers=(f"lab.estimators.Sinusoid.{_m}",))
entry("lab.estimators.check_baseline", lambda baseline: est.check_baseline(baseline, (2, 3), F64),
      lambda rng: {"baseline": normal(rng, (2, 3))}, {"baseline": data()})
entry("lab.estimators.baseline_values", lambda fz, baseline: est.baseline_values(fz, baseline),
      lambda rng: {"fz": normal(rng, (n_of(rng), 3)), "baseline": "loo"}, {"fz": arr(shape=False)}, like("fz"),
      rows=("fz",), empty="ok")
entry("lab.estimators.score_function_grad", lambda f, loc, log_scale, eps, baseline:
      est.score_function_grad(f, loc, log_scale, eps, baseline)["loc"],
      lambda rng: {"f": _Q.f, **(k := _q_kw(rng)), "baseline": normal(rng, k["eps"].shape[:-1])},
      {"f": FUNC, **_QA, "baseline": data()}, lambda out, kw: out.shape == kw["eps"].shape[:1] + (3,),
      rows=("eps", "baseline"), empty="ok")
entry("lab.estimators.reparam_grad", lambda grad_f, loc, log_scale, eps: est.reparam_grad(grad_f, loc, log_scale, eps)["loc"],
      lambda rng: {"grad_f": _Q.grad_f, **_q_kw(rng)}, {"grad_f": FUNC, **_QA},
      lambda out, kw: out.shape == kw["eps"].shape[:1] + (3,), rows=("eps",), empty="ok")
entry("lab.estimators.gradient_estimate", lambda fg, loc, log_scale, eps, method:
      est.gradient_estimate(fg, loc, log_scale, eps, method)["log_scale"],
      lambda rng: {"fg": (_Q.f, _Q.grad_f), **_q_kw(rng), "method": "score"}, {"fg": OBJ, **_QA, "method": CHOICE},
      lambda out, kw: out.shape == kw["eps"].shape[:1] + (3,))
entry("lab.estimators.gradient_statistics", lambda draw, exact, sample_sizes, n_rep, chunk:
      est.gradient_statistics(draw, exact, sample_sizes, n_rep, chunk).var,
      lambda rng: {"draw": lambda S, n: np.random.default_rng(S).standard_normal((n, 2)), "exact": np.zeros(2),
                   "sample_sizes": [1, 3], "n_rep": 5, "chunk": 2},
      {"draw": FUNC, "exact": arr(), "sample_sizes": ints(1), "n_rep": size(2), "chunk": size()}, shape_is(2, 2),
      covers=("lab.estimators.EstimatorStats",))
entry("lab.estimators.closed_form_statistics", lambda objective, loc, log_scale, method, sample_sizes, n_rep, rng:
      est.closed_form_statistics(objective, loc, log_scale, method, sample_sizes, n_rep, rng=rng).mean,
      lambda rng: {"objective": _Q, "loc": normal(rng, 3), "log_scale": normal(rng, 3, scale=.3), "method": "reparam",
                   "sample_sizes": [2], "n_rep": 4, "rng": np.random.default_rng(5)},
      {"objective": OBJ, "loc": data(), "log_scale": data(), "method": CHOICE, "sample_sizes": ints(1),
       "n_rep": size(2), "rng": RNG}, shape_is(1, 6))
_BAN = mcmc.BananaModel(np.array([0.5, 1.0]))
entry("lab.estimators.elbo_full_gaussian", lambda log_p, grad_log_p, loc, log_diag, offdiag, eps:
      est.elbo_full_gaussian(log_p, grad_log_p, loc, log_diag, offdiag, eps)[1]["offdiag"],
      lambda rng: {"log_p": _BAN.log_joint, "grad_log_p": _BAN.grad_log_joint, "loc": normal(rng, 2),
                   "log_diag": normal(rng, 2, scale=.3), "offdiag": normal(rng, 1, scale=.3),
                   "eps": normal(rng, (n_of(rng), 2))},
      {"log_p": FUNC, "grad_log_p": FUNC, "loc": arr(), "log_diag": data(), "offdiag": data(), "eps": data()},
      shape_is(1), rows=("eps",), empty="error")


def _vae_est_kw(rng, S=2):
    n = n_of(rng)
    return {"vae": tiny_vae(), "x": binary(rng, (n, 6)), "eps": normal(rng, (n, S, 2))}


_ENC = lambda out, kw: set(out) == set(kw["vae"].encoder.params)  # noqa: E731
entry("lab.estimators_vae.vae_log_joint", lambda vae, x, z: est_vae.vae_log_joint(vae, x, z),
      lambda rng: {"z": (k := _vae_est_kw(rng))["eps"], "vae": k["vae"], "x": k["x"]},
      {"vae": OBJ, "x": data(), "z": data()}, lambda out, kw: out.shape == kw["z"].shape[:2],
      rows=("x", "z"), empty="ok")
entry("lab.estimators_vae.vae_encoder_grads", lambda vae, x, eps, method, baseline:
      est_vae.vae_encoder_grads(vae, x, eps, method, baseline),
      lambda rng: {**_vae_est_kw(rng), "method": "score", "baseline": "loo"},
      {"vae": OBJ, "x": data(), "eps": data(), "method": CHOICE}, _ENC, rows=("x", "eps"), empty="error")
entry("lab.estimators_vae.vae_exact_encoder_grads", lambda vae, x, n_nodes:
      est_vae.vae_exact_encoder_grads(vae, x, n_nodes),
      lambda rng: {"vae": tiny_vae(), "x": binary(rng, (n_of(rng), 6)), "n_nodes": 4},
      {"vae": OBJ, "x": data(), "n_nodes": size()}, _ENC, rows=("x",), empty="error")
entry("lab.estimators_vae.flatten_grads", lambda grads, keys: est_vae.flatten_grads(grads, keys),
      lambda rng: {"grads": {"a": normal(rng, (2, 2)), "b": normal(rng, 3)}, "keys": ["b", "a"]},
      {"grads": OBJ, "keys": OBJ}, shape_is(7))
entry("lab.estimators_vae.vae_encoder_statistics", lambda vae, x, method, sample_sizes, n_rep, rng, exact:
      est_vae.vae_encoder_statistics(vae, x, method, sample_sizes, n_rep, rng=rng, exact=exact).mean,
      lambda rng: {"vae": (v := tiny_vae()), "x": binary(rng, (2, 6)), "method": "reparam", "sample_sizes": [1],
                   "n_rep": 3, "rng": np.random.default_rng(0),
                   "exact": normal(rng, sum(p.size for p in v.encoder.params.values()))},
      {"vae": OBJ, "x": data(), "method": CHOICE, "sample_sizes": ints(1), "n_rep": size(2), "rng": RNG,
       "exact": arr()}, rows=("x",), empty="error")


def _lg(dt=F64):
    r = np.random.default_rng(0)
    return LinearGaussian(normal(r, (4, 2), dt), normal(r, 4, dt), np.asarray(-0.5, dtype=dt))


def _lg_kw(rng, *names):
    n = n_of(rng)
    kw = {"x": normal(rng, (n, 4)), "loc": normal(rng, (n, 2)), "scale_tril": tril(rng, (n,), 2)}
    if "eps" in names:
        kw["eps"] = normal(rng, (n_of(rng), n, 2))
    return {k: kw[k] for k in names}


entry("lab.linear_gaussian.LinearGaussian", lambda W, b, log_noise_scale: LinearGaussian(W, b, log_noise_scale),
      lambda rng: {"W": normal(rng, (4, 2)), "b": normal(rng, 4), "log_noise_scale": np.asarray(-0.5)},
      {"W": arr(shape=False), "b": data(), "log_noise_scale": data()}, covers=("lab.linear_gaussian.LinearGaussian.posterior_precision",))
for _m in ("log_evidence", "posterior", "mean_field_optimum"):
    entry(f"lab.linear_gaussian.LinearGaussian.{_m}", lambda x, m=_m: getattr(_lg(), m)(x)[0],
          lambda rng: _lg_kw(rng, "x"), {"x": data()}, lambda out, kw: out.shape[0] == len(kw["x"]),
          rows=("x",), empty="ok")
for _m in ("kl_to_posterior", "log_weight_second_moment", "elbo", "expected_log_joint_terms"):
    entry(f"lab.linear_gaussian.LinearGaussian.{_m}", lambda x, loc, scale_tril, m=_m: getattr(_lg(), m)(x, loc, scale_tril),
          lambda rng: _lg_kw(rng, "x", "loc", "scale_tril"), {"x": data(), "loc": data(), "scale_tril": data()},
          rows=("x", "loc", "scale_tril"), empty="ok")
for _m in ("log_weight_terms", "iwae"):
    entry(f"lab.linear_gaussian.LinearGaussian.{_m}", lambda x, loc, scale_tril, eps, m=_m:
          getattr(_lg(), m)(x, loc, scale_tril, eps),
          lambda rng: _lg_kw(rng, "x", "loc", "scale_tril", "eps"),
          {"x": data(), "loc": data(), "scale_tril": data(), "eps": data()}, rows=("eps",), empty="error")
entry("lab.linear_gaussian.LinearGaussian.log_evidence_backward", lambda dout, cache: LinearGaussian.log_evidence_backward(dout, cache),
      lambda rng: {"cache": _lg().log_evidence((k := _lg_kw(rng, "x"))["x"])[1], "dout": normal(rng, len(k["x"]))},
      {"dout": data(), "cache": OBJ})
entry("lab.linear_gaussian.LinearGaussian.elbo_backward", lambda dout, cache: _lg().elbo_backward(dout, cache),
      lambda rng: {"cache": _lg().elbo(**(k := _lg_kw(rng, "x", "loc", "scale_tril")))[1], "dout": normal(rng, len(k["x"]))},
      {"dout": data(), "cache": OBJ})
entry("lab.linear_gaussian.LinearGaussian.sample", lambda n, rng: _lg().sample(n, rng)[0],
      lambda rng: {"n": n_of(rng), "rng": np.random.default_rng(0)}, {"n": size(), "rng": RNG},
      lambda out, kw: out.shape == (kw["n"], 4))
entry("lab.linear_gaussian.LinearGaussian.maximum_likelihood", lambda x, k: LinearGaussian.maximum_likelihood(x, k).params["W"],
      lambda rng: {"x": normal(rng, (n_of(rng, 4, 6), 4)), "k": 1}, {"x": arr(shape=False), "k": size()},
      lambda out, kw: out.shape == (kw["x"].shape[1], 1),
      rows=("x",), empty="error")

entry("lab.mcmc.metropolis_hastings", lambda log_prob, x0, n_steps, step_size, rng, burn_in:
      mcmc.metropolis_hastings(log_prob, x0, n_steps, step_size, rng=rng, burn_in=burn_in).samples,
      lambda rng: {"log_prob": _BAN.log_joint, "x0": normal(rng, 2), "n_steps": 5, "step_size": 0.5,
                   "rng": np.random.default_rng(0), "burn_in": 2},
      {"log_prob": FUNC, "x0": arr(shape=False), "n_steps": size(), "step_size": real(0.0, np.inf), "rng": RNG,
       "burn_in": size(0)}, shape_is(5, 2), covers=("lab.mcmc.MHResult",))
entry("lab.mcmc.autocorrelation", lambda x, max_lag: mcmc.autocorrelation(x, max_lag),
      lambda rng: {"x": normal(rng, (n_of(rng, 5, 9), 2)), "max_lag": 3}, {"x": arr(shape=False), "max_lag": size(0)},
      shape_is(4, 2), rows=("x",), empty="error")
for _f in (mcmc.integrated_autocorr_time, mcmc.effective_sample_size):
    entry(f"lab.mcmc.{_f.__name__}", lambda x, c, f=_f: f(x, c), lambda rng: {"x": normal(rng, n_of(rng, 5, 9)), "c": 5.0},
          {"x": arr(shape=False), "c": real(0.0)}, rows=("x",), empty="error")
entry("lab.mcmc.ar1_chain", lambda phi, n, rng: mcmc.ar1_chain(phi, n, rng=rng),
      lambda rng: {"phi": 0.5, "n": n_of(rng), "rng": np.random.default_rng(0)},
      {"phi": real(1.0, -1.0), "n": size(), "rng": RNG}, lambda out, kw: out.shape == (kw["n"],))
entry("lab.mcmc.BananaModel", lambda x, b, s1, s2: mcmc.BananaModel(x, b, s1, s2),
      lambda rng: {"x": normal(rng, 2), "b": 0.6, "s1": 1.0, "s2": 0.3},
      {"x": arr(), "b": real(), "s1": real(0.0), "s2": real(-1.0)})
for _m in ("log_joint", "grad_log_joint"):
    entry(f"lab.mcmc.BananaModel.{_m}", lambda z, m=_m: getattr(_BAN, m)(z), lambda rng: {"z": normal(rng, (n_of(rng), 2))},
          {"z": arr()}, lambda out, kw: out.shape[0] == len(kw["z"]), rows=("z",), empty="ok")
entry("lab.mcmc.BananaModel.posterior_grid", lambda lim1, lim2, n: _BAN.posterior_grid(lim1, lim2, n)[2],
      lambda rng: {"lim1": (-3, 3), "lim2": (-3.0, 4.0), "n": 5}, {"lim1": OBJ, "lim2": OBJ, "n": size(2)}, shape_is(5, 5))
entry("lab.mcmc.grid_moments", lambda z1, z2, density: mcmc.grid_moments(z1, z2, density)[1],
      lambda rng: {"z1": np.linspace(-1, 1, 4), "z2": np.linspace(0, 1, 3), "density": rng.random((3, 4))},
      {"z1": arr(shape=False), "z2": arr(shape=False), "density": arr()}, shape_is(2, 2))


def _curve(rng):
    n = n_of(rng, 3, 6)
    return {"x": np.cumsum(rng.random(n) + 0.1), "y": normal(rng, n)}


entry("lab.variations.arc_length", lambda x, y: var.arc_length(x, y)[0], _curve, {"x": arr(), "y": data()},
      rows=("x", "y"), empty="error", covers=("lab.variations.euler_lagrange_residual",))
entry("lab.variations.arc_length_backward", lambda dJ, cache: var.arc_length_backward(dJ, cache)["y"],
      lambda rng: {"cache": var.arc_length(**(k := _curve(rng)))[1], "dJ": 1.5}, {"dJ": real(), "cache": OBJ},
      lambda out, kw: out.shape == (len(kw["cache"][0]) + 1,))
entry("lab.variations.straight_line", lambda x, y_a, y_b: var.straight_line(x, y_a, y_b),
      lambda rng: {"x": _curve(rng)["x"], "y_a": 0.5, "y_b": -1.0}, {"x": arr(shape=False), "y_a": real(), "y_b": real()},
      like("x"), rows=("x",), empty="error")
entry("lab.variations.minimize_arc_length", lambda x, y0, n_iter, step, tol, record_every, snapshot_at:
      var.minimize_arc_length(x, y0, n_iter=n_iter, step=step, tol=tol, record_every=record_every,
                              snapshot_at=snapshot_at).y,
      lambda rng: {"x": (k := _curve(rng))["x"], "y0": k["y"], "n_iter": 5, "step": 0.01, "tol": 1e-8,
                   "record_every": 2, "snapshot_at": [0, 3]},
      {"x": arr(), "y0": data(), "n_iter": size(0), "step": real(0.0), "tol": real(-1.0), "record_every": size(),
       "snapshot_at": ints(0)}, like("x"), rows=("x", "y0"), empty="error", covers=("lab.variations.ShortestPathResult",))

# =========================================================================================
# ising
# =========================================================================================
from scratchvae.ising import baselines as isb  # noqa: E402
from scratchvae.ising import exact as isx  # noqa: E402
import importlib  # noqa: E402
mf = importlib.import_module("scratchvae.ising.mean_field")  # the package re-exports a function of this name
from scratchvae.ising import model as ism  # noqa: E402
from scratchvae.ising import reference as isr  # noqa: E402


def spins(rng, shape=(3, 4), dt=F64):
    return np.where(rng.random(shape) < 0.5, 1.0, -1.0).astype(dt)


NEIGHBOURS = Arg("size", bad=(5, 0, -1))           # 4 or 8


def ising_model(rng=None, shape=(3, 4)):
    rng = rng or np.random.default_rng(0)
    return ism.gaussian_model(spins(rng, shape) + normal(rng, shape, scale=0.5), 0.8, coupling=0.7)


_IM = {"model": OBJ}
entry("ising.model.check_image", lambda x, spins: ism.check_image("x", x, spins=spins),
      lambda rng: {"x": normal(rng, (n_of(rng), 4)), "spins": False}, {"x": arr(shape=False), "spins": FLAG}, like("x"),
      rows=("x",), empty="error")
entry("ising.model.check_model", lambda model: ism.check_model(model), lambda rng: {"model": ising_model(rng)}, _IM,
      covers=("ising.model.IsingModel", "ising.model.IsingResult"))
entry("ising.model.check_mean", lambda mu, model: ism.check_mean("mu", mu, model),
      lambda rng: {"model": ising_model(rng), "mu": np.tanh(normal(rng, (3, 4)))}, {"mu": arr(), **_IM}, like("mu"))
entry("ising.model.check_structure", lambda coupling, neighbours: ism.check_structure(coupling, neighbours),
      lambda rng: {"coupling": 0.5, "neighbours": 8}, {"coupling": real(np.inf), "neighbours": NEIGHBOURS})
entry("ising.model.check_neighbours", lambda neighbours: ism.check_neighbours(neighbours),
      lambda rng: {"neighbours": 4}, {"neighbours": NEIGHBOURS})
entry("ising.model.gaussian_log_lik", lambda x, sigma: ism.gaussian_log_lik(x, sigma)[0],
      lambda rng: {"x": normal(rng, (n_of(rng), 4)), "sigma": 0.5}, {"x": arr(shape=False), "sigma": real(0.0, -1.0)}, like("x"),
      rows=("x",), empty="error")
entry("ising.model.flip_log_lik", lambda x, p: ism.flip_log_lik(x, p)[0],
      lambda rng: {"x": spins(rng, (n_of(rng), 4)), "p": 0.2}, {"x": arr(shape=False), "p": real(0.0, 0.5, 1.0)}, like("x"),
      rows=("x",), empty="error")
entry("ising.model.model_from_log_lik", lambda log_lik_pos, log_lik_neg, coupling, neighbours:
      ism.model_from_log_lik(log_lik_pos, log_lik_neg, coupling=coupling, neighbours=neighbours).half_log_odds,
      lambda rng: {"log_lik_pos": normal(rng, (n := n_of(rng), 4)), "log_lik_neg": normal(rng, (n, 4)),
                   "coupling": 1.0, "neighbours": 4},
      {"log_lik_pos": arr(shape=False), "log_lik_neg": data(), "coupling": real(), "neighbours": NEIGHBOURS},
      like("log_lik_pos"), rows=("log_lik_pos", "log_lik_neg"), empty="error")
entry("ising.model.gaussian_model", lambda x, sigma, coupling, neighbours:
      ism.gaussian_model(x, sigma, coupling=coupling, neighbours=neighbours).half_log_odds,
      lambda rng: {"x": normal(rng, (n_of(rng), 4)), "sigma": 0.5, "coupling": 1.0, "neighbours": 8},
      {"x": arr(shape=False), "sigma": real(0.0), "coupling": real(), "neighbours": NEIGHBOURS}, like("x"), rows=("x",),
      empty="error")
entry("ising.model.flip_model", lambda x, p, coupling, neighbours:
      ism.flip_model(x, p, coupling=coupling, neighbours=neighbours).half_log_odds,
      lambda rng: {"x": spins(rng, (n_of(rng), 4)), "p": 0.1, "coupling": 1.0, "neighbours": 4},
      {"x": arr(shape=False), "p": real(0.6), "coupling": real(), "neighbours": NEIGHBOURS}, like("x"), rows=("x",),
      empty="error")
entry("ising.model.add_gaussian_noise", lambda clean, sigma, rng: ism.add_gaussian_noise(clean, sigma, rng),
      lambda rng: {"clean": spins(rng, (n_of(rng), 4)), "sigma": 0.5, "rng": np.random.default_rng(0)},
      {"clean": arr(shape=False), "sigma": real(0.0), "rng": RNG}, like("clean"), rows=("clean",), empty="error")
entry("ising.model.flip_pixels", lambda clean, p, rng: ism.flip_pixels(clean, p, rng),
      lambda rng: {"clean": spins(rng, (n_of(rng), 4)), "p": 0.2, "rng": np.random.default_rng(0)},
      {"clean": arr(shape=False), "p": real(0.5), "rng": RNG}, like("clean"), rows=("clean",), empty="error")
entry("ising.model.error_rate", lambda mean, clean: ism.error_rate(mean, clean),
      lambda rng: {"mean": normal(rng, (n := n_of(rng), 4)), "clean": spins(rng, (n, 4))},
      {"mean": arr(shape=False), "clean": arr()}, rows=("mean", "clean"), empty="error")
entry("ising.mean_field.neighbour_sum", lambda mu, neighbours: mf.neighbour_sum(mu, neighbours),
      lambda rng: {"mu": normal(rng, (n_of(rng), 4)), "neighbours": 8}, {"mu": arr(shape=False), "neighbours": NEIGHBOURS},
      like("mu"), rows=("mu",), empty="ok", covers=("ising.mean_field.colour_masks",))
entry("ising.mean_field.local_field", lambda model, mu: mf.local_field(model, mu),
      lambda rng: {"model": ising_model(rng), "mu": np.tanh(normal(rng, (3, 4)))}, {**_IM, "mu": arr()}, like("mu"))
entry("ising.mean_field.check_schedule", lambda schedule, damping: mf.check_schedule(schedule, damping),
      lambda rng: {"schedule": "checkerboard", "damping": 0.5}, {"schedule": CHOICE, "damping": real(0.0, 1.5)})
for _f in (mf.mean_field_sweep, isr.loop_sweep):
    entry(f"ising.{_f.__module__.split('.')[-1]}.{_f.__name__}", lambda model, mu, schedule, damping, f=_f:
          f(model, mu, schedule=schedule, damping=damping),
          lambda rng: {"model": ising_model(rng), "mu": np.tanh(normal(rng, (3, 4))), "schedule": "parallel",
                       "damping": 0.7},
          {**_IM, "mu": arr(), "schedule": CHOICE, "damping": real(0.0, 2.0)}, like("mu"))
entry("ising.mean_field.elbo", lambda model, mu: mf.elbo(model, mu),
      lambda rng: {"model": ising_model(rng), "mu": np.tanh(normal(rng, (3, 4)))}, {**_IM, "mu": arr()},
      covers=("ising.exact.brute_force_elbo",))
entry("ising.exact.brute_force_elbo", lambda model, mu: isx.brute_force_elbo(model, mu),
      lambda rng: {"model": ising_model(rng), "mu": np.tanh(normal(rng, (3, 4)))}, {**_IM, "mu": arr()})
entry("ising.mean_field.log_joint", lambda model, z: mf.log_joint(model, z),
      lambda rng: {"model": ising_model(rng), "z": spins(rng, (n_of(rng), 3, 4))}, {**_IM, "z": arr()},
      shape_is("z"), rows=("z",), empty="ok", covers=("ising.mean_field.log_joint_unchecked",))
entry("ising.mean_field.initial_mean", lambda model, init, x: mf.initial_mean(model, init, x),
      lambda rng: {"model": ising_model(rng), "init": "data", "x": normal(rng, (3, 4))},
      {**_IM, "init": CHOICE, "x": arr()}, shape_is(3, 4))
entry("ising.mean_field.mean_field", lambda model, schedule, damping, max_sweeps, tol, init, record, track_elbo:
      mf.mean_field(model, schedule=schedule, damping=damping, max_sweeps=max_sweeps, tol=tol, init=init,
                    record=record, track_elbo=track_elbo).mean,
      lambda rng: {"model": ising_model(rng), "schedule": "checkerboard", "damping": 0.5, "max_sweeps": 3,
                   "tol": 0.0, "init": "likelihood", "record": [1], "track_elbo": True},
      {**_IM, "schedule": CHOICE, "damping": real(0.0), "max_sweeps": size(0), "tol": real(-1.0),
       "init": CHOICE, "record": ints(0), "track_elbo": FLAG}, shape_is(3, 4))
entry("ising.baselines.threshold", lambda model: isb.threshold(model).mean, lambda rng: {"model": ising_model(rng)},
      _IM, shape_is(3, 4))
entry("ising.baselines.icm", lambda model, max_sweeps, init, record: isb.icm(model, max_sweeps=max_sweeps, init=init,
                                                                              record=record).mean,
      lambda rng: {"model": ising_model(rng), "max_sweeps": 3, "init": "likelihood", "record": [1]},
      {**_IM, "max_sweeps": size(0), "init": CHOICE, "record": ints(0)}, shape_is(3, 4))
entry("ising.baselines.gibbs", lambda model, rng, n_sweeps, burn_in, init, record:
      isb.gibbs(model, rng=rng, n_sweeps=n_sweeps, burn_in=burn_in, init=init, record=record).mean,
      lambda rng: {"model": ising_model(rng), "rng": np.random.default_rng(0), "n_sweeps": 4, "burn_in": 1,
                   "init": "random", "record": [2]},
      {**_IM, "rng": RNG, "n_sweeps": size(), "burn_in": size(0), "init": CHOICE, "record": ints(0)}, shape_is(3, 4))
entry("ising.baselines.denoise", lambda model, method: isb.denoise(model, method).mean,
      lambda rng: {"model": ising_model(rng), "method": "icm"}, {**_IM, "method": CHOICE}, shape_is(3, 4))
entry("ising.exact.all_states", lambda shape, dtype: isx.all_states(shape, dtype),
      lambda rng: {"shape": (2, 2), "dtype": F64}, {"shape": ints(1), "dtype": Arg("dtype", only=("type",))},
      shape_is(16, 2, 2))      # integer spins are fine
for _f in (isx.log_partition, isx.marginal_means):
    entry(f"ising.exact.{_f.__name__}", lambda model, f=_f: f(model), lambda rng: {"model": ising_model(rng)}, _IM)

# =========================================================================================
# flows
# =========================================================================================
from scratchvae.flows import householder as fh  # noqa: E402
from scratchvae.flows import iaf as fiaf  # noqa: E402
from scratchvae.flows import made as fmade  # noqa: E402
from scratchvae.flows import params as fp  # noqa: E402
from scratchvae.flows import planar as fpl  # noqa: E402
from scratchvae.flows import radial as fra  # noqa: E402
from scratchvae.flows import sylvester as fsy  # noqa: E402

_FLOW_PARAMS = {  # family -> (forward, backward, trailing shapes of the parameters for D = 3, n_params, unpack, pack)
    "planar": (fpl.planar_forward, fpl.planar_backward, {"u": (3,), "w": (3,), "b": ()},
               fpl.planar_n_params, fpl.planar_unpack, fpl.planar_pack_grads),
    "radial": (fra.radial_forward, fra.radial_backward, {"z_ref": (3,), "raw_alpha": (), "raw_beta": ()},
               fra.radial_n_params, fra.radial_unpack, fra.radial_pack_grads),
    "householder": (fh.householder_forward, fh.householder_backward, {"v": (3,)},
                    fh.householder_n_params, fh.householder_unpack, fh.householder_pack_grads),
    "triangular_sylvester": (fsy.triangular_sylvester_forward, fsy.triangular_sylvester_backward,
                             {"raw_r_diag": (3,), "r_offdiag": (3,), "raw_r_tilde_diag": (3,),
                              "r_tilde_offdiag": (3,), "b": (3,)},
                             fsy.triangular_sylvester_n_params, fsy.triangular_sylvester_unpack,
                             fsy.triangular_sylvester_pack_grads),
    "householder_sylvester": (fsy.householder_sylvester_forward, fsy.householder_sylvester_backward,
                              {"v": (2, 3), "raw_r_diag": (3,), "r_offdiag": (3,), "raw_r_tilde_diag": (3,),
                               "r_tilde_offdiag": (3,), "b": (3,)},
                              None, None, None),
}


def _flow_kw(rng, trailing):
    dt, n = dt_of(rng), n_of(rng)
    return {"z": normal(rng, (n, 3), dt), **{k: normal(rng, (n,) + t, dt, 0.5) for k, t in trailing.items()}}


def _flow_backward_kw(rng, forward, trailing, names):
    k = _flow_kw(rng, trailing)
    return {"cache": forward(*(k[n] for n in names))[2], "dz_new": normal(rng, k["z"].shape, k["z"].dtype),
            "dlog_abs_det": normal(rng, k["z"].shape[:1], k["z"].dtype)}


for _fam, (_fwd, _bwd, _tr, _np, _unp, _pack) in _FLOW_PARAMS.items():
    _names = ("z", *_tr)
    entry(f"flows.{_fwd.__module__.split('.')[-1]}.{_fwd.__name__}",
          lambda f=_fwd, names=_names, **kw: f(*(kw[k] for k in names))[0],
          lambda rng, tr=_tr: _flow_kw(rng, tr), {k: (arr() if k == "z" else data()) for k in _names},
          like("z"), rows=_names, empty="ok")
    entry(f"flows.{_bwd.__module__.split('.')[-1]}.{_bwd.__name__}",
          lambda dz_new, dlog_abs_det, cache, b=_bwd: b(dz_new, dlog_abs_det, cache)["z"],
          lambda rng, f=_fwd, tr=_tr, names=_names: _flow_backward_kw(rng, f, tr, names),
          {"dz_new": grad(), "dlog_abs_det": grad(), "cache": OBJ}, like("dz_new"))
    if _np is not None:
        entry(f"flows.{_np.__module__.split('.')[-1]}.{_np.__name__}", lambda D, f=_np: f(D), lambda rng: {"D": 3},
              {"D": size()})
        entry(f"flows.{_unp.__module__.split('.')[-1]}.{_unp.__name__}", lambda raw, f=_unp: f(raw),
              lambda rng, f=_np: {"raw": normal(rng, (n_of(rng), f(3)), dt_of(rng))}, {"raw": arr(shape=False)},
              rows=("raw",), empty="ok")
        entry(f"flows.{_pack.__module__.split('.')[-1]}.{_pack.__name__}", lambda grads, f=_pack: f(grads),
              lambda rng, u=_unp, f=_np: {"grads": dict(u(normal(rng, (2, f(3)))))}, {"grads": OBJ})
entry("flows.sylvester.householder_sylvester_n_params", lambda D, n_reflections: fsy.householder_sylvester_n_params(D, n_reflections),
      lambda rng: {"D": 3, "n_reflections": 2}, {"D": size(), "n_reflections": size()})
entry("flows.sylvester.householder_sylvester_unpack", lambda raw, n_reflections: fsy.householder_sylvester_unpack(raw, n_reflections),
      lambda rng: {"raw": normal(rng, (n_of(rng), fsy.householder_sylvester_n_params(3, 2))), "n_reflections": 2},
      {"raw": arr(), "n_reflections": size()}, rows=("raw",), empty="ok",
      covers=("flows.sylvester.householder_sylvester_pack_grads",))
entry("flows.planar.planar_constrain", lambda u, w: fpl.planar_constrain(u, w),
      lambda rng: {"u": normal(rng, (n := n_of(rng), 3)), "w": normal(rng, (n, 3))}, {"u": arr(), "w": data()},
      like("u"), rows=("u", "w"), empty="ok")
entry("flows.radial.radial_constrain", lambda raw_alpha, raw_beta: fra.radial_constrain(raw_alpha, raw_beta)[0],
      lambda rng: {"raw_alpha": normal(rng, n := n_of(rng)), "raw_beta": normal(rng, n)},
      {"raw_alpha": arr(), "raw_beta": data()}, like("raw_alpha"), rows=("raw_alpha", "raw_beta"), empty="ok")
entry("flows.made.hidden_degrees", lambda width, z_dim: fmade.hidden_degrees(width, z_dim),
      lambda rng: {"width": 5, "z_dim": 3}, {"width": size(), "z_dim": size()}, shape_is(5))
entry("flows.made.made_masks", lambda z_dim, hidden: fmade.made_masks(z_dim, hidden)[0],
      lambda rng: {"z_dim": 3, "hidden": [5]}, {"z_dim": size(), "hidden": ints(1)},
      covers=("flows.made.MaskedLinear", "flows.made.ELU", "flows.householder.reflect",
              "flows.householder.reflect_backward"))


def _made(dt=F64):
    return fmade.MADE(3, 2, [5], rng=np.random.default_rng(0), dtype=dt)


entry("flows.made.MADE", lambda z_dim, context_dim, hidden, rng, activation, dtype:
      fmade.MADE(z_dim, context_dim, hidden, rng=rng, activation=activation, dtype=dtype),
      lambda rng: {"z_dim": 3, "context_dim": 2, "hidden": [5], "rng": np.random.default_rng(0),
                   "activation": "elu", "dtype": F32},
      {"z_dim": size(), "context_dim": size(0), "hidden": ints(1), "rng": RNG, "activation": CHOICE,
       "dtype": DTYPE})
entry("flows.made.MADE.forward", lambda z, context, dtype: _made(dtype).forward(z, context)[0],
      lambda rng: {"dtype": (dt := dt_of(rng)), "z": normal(rng, (n := n_of(rng), 3), dt), "context": normal(rng, (n, 2), dt)},
      {"z": data(), "context": data()}, covers=("flows.made.MADE.check_inputs",), rows=("z", "context"), empty="ok")
entry("flows.iaf.IAFStep", lambda z_dim, context_dim, hidden, rng, forget_bias:
      fiaf.IAFStep(z_dim, context_dim, hidden, rng=rng, forget_bias=forget_bias),
      lambda rng: {"z_dim": 3, "context_dim": 2, "hidden": [5], "rng": np.random.default_rng(0), "forget_bias": 1.0},
      {"z_dim": size(), "context_dim": size(0), "hidden": ints(1), "rng": RNG, "forget_bias": real()})


def _iaf(dt=F64):
    return fiaf.IAF(3, 2, [5], 2, rng=np.random.default_rng(0), dtype=dt)


entry("flows.iaf.IAF", lambda z_dim, context_dim, hidden, n_steps, rng, dtype:
      fiaf.IAF(z_dim, context_dim, hidden, n_steps, rng=rng, dtype=dtype),
      lambda rng: {"z_dim": 3, "context_dim": 2, "hidden": [5], "n_steps": 2, "rng": np.random.default_rng(0), "dtype": F64},
      {"z_dim": size(), "context_dim": size(0), "hidden": ints(1), "n_steps": size(), "rng": RNG, "dtype": DTYPE})
entry("flows.iaf.IAF.forward", lambda z, context, dtype: _iaf(dtype).forward(z, context)[0],
      lambda rng: {"dtype": (dt := dt_of(rng)), "z": normal(rng, (n := n_of(rng), 3), dt), "context": normal(rng, (n, 2), dt)},
      {"z": data(), "context": data()}, like("z"), rows=("z", "context"), empty="ok", covers=("flows.iaf.IAFStep.forward",))
entry("flows.iaf.IAF.backward", lambda dz_new, dlog_abs_det, cache, dtype: _iaf(dtype).backward(dz_new, dlog_abs_det, cache),
      lambda rng: {"dtype": (dt := dt_of(rng)),
                   "cache": _iaf(dt).forward(normal(rng, (n := n_of(rng), 3), dt), normal(rng, (n, 2), dt))[2],
                   "dz_new": normal(rng, (n, 3), dt), "dlog_abs_det": normal(rng, n, dt)},
      {"dz_new": grad(), "dlog_abs_det": grad(), "cache": OBJ}, covers=("flows.iaf.IAFStep.backward",))
entry("flows.params.n_params", lambda layout: fp.n_params(layout), lambda rng: {"layout": (("u", 3), ("b", None))},
      {"layout": OBJ}, covers=("flows.params.layout_functions",))   # its products have rows
entry("flows.params.grad_size", lambda grads: fp.grad_size(grads, "u"), lambda rng: {"grads": {"u": normal(rng, (2, 3))}},
      {"grads": OBJ})
entry("flows.params.check_z", lambda z: fp.check_z(z), lambda rng: {"z": normal(rng, (2, 3))}, {"z": arr(shape=False)},
      covers=("flows.params.check_params", "flows.params.check_nonzero", "flows.params.check_upstream",
              "flows.params.unpack", "flows.params.pack"))


def _flow_posterior(name="planar"):
    return post.make_posterior(name, 2, flow_length=2, rng=np.random.default_rng(0), dtype=F64)


entry("flows.posterior.FlowPosterior", lambda name, z_dim, flow_length, rng:
      __import__("scratchvae.flows.posterior", fromlist=["FlowPosterior"]).FlowPosterior(name, z_dim, flow_length, rng=rng),
      lambda rng: {"name": "radial", "z_dim": 2, "flow_length": 2, "rng": np.random.default_rng(0)},
      {"name": CHOICE, "z_dim": size(), "flow_length": size(0), "rng": RNG}, covers=("flows.posterior.FlowQ",))

# =========================================================================================
# data
# =========================================================================================
import scratchvae.data as sdata  # noqa: E402
from scratchvae.data import digits as sdig  # noqa: E402
from scratchvae.data import download as sdl  # noqa: E402
from scratchvae.data import formats as sfmt  # noqa: E402
from scratchvae.data import images as simg  # noqa: E402
from scratchvae.data import sources as ssrc  # noqa: E402

_TMP = tempfile.mkdtemp(prefix="scratchvae-api-table-")
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


def tmp_file(name, write):
    """A file in the table's temporary folder, written once by ``write(path)``."""
    path = os.path.join(_TMP, name)
    if not os.path.exists(path):
        write(path)
    return path


def _npz(path):
    r = np.random.default_rng(0)
    np.savez(path, train=binary(r, (6, 4)).astype(np.uint8), valid=binary(r, (2, 4)).astype(np.uint8),
             test=binary(r, (2, 4)).astype(np.uint8))


def _unit(rng, dt=None):
    n = n_of(rng)
    return rng.random((n, 4)).astype(dt or dt_of(rng))


Arg_labels = Arg("labels")
entry("data.one_hot", lambda labels, n_classes, dtype: sdata.one_hot(labels, n_classes, dtype),
      lambda rng: {"labels": rng.integers(0, 3, n_of(rng)), "n_classes": 3, "dtype": F32},
      {"labels": Arg_labels, "n_classes": size(), "dtype": DTYPE}, shape_is("labels", 3), rows=("labels",), empty="ok")
entry("data.binarize", lambda x, rng: sdata.binarize(x, rng), lambda rng: {"x": _unit(rng), "rng": np.random.default_rng(0)},
      {"x": arr(shape=False), "rng": RNG}, like("x"), rows=("x",), empty="ok")
entry("data.binarize_static", lambda x, method, threshold, seed: sdata.binarize_static(x, method, threshold=threshold, seed=seed),
      lambda rng: {"x": _unit(rng), "method": "threshold", "threshold": 0.4, "seed": 1},
      {"x": arr(shape=False), "method": CHOICE, "threshold": real(-0.1, 1.1), "seed": size(0)}, like("x"),
      rows=("x",), empty="ok")
entry("data.dequantize", lambda k, rng, dtype: sdata.dequantize(k, rng, dtype),
      lambda rng: {"k": rng.integers(0, 256, (n_of(rng), 4)).astype(np.uint8), "rng": np.random.default_rng(0), "dtype": F32},
      {"k": Arg("labels", only=("type", "dtype")), "rng": RNG, "dtype": DTYPE}, like("k"))
entry("data.check_data", lambda x, likelihood, binarize, width: sdata.check_data(x, likelihood, binarize, width=width),
      lambda rng: {"x": _unit(rng), "likelihood": "bernoulli", "binarize": "dynamic", "width": 4},
      {"x": arr(), "likelihood": CHOICE, "binarize": CHOICE, "width": size()}, like("x"), rows=("x",), empty="error")
entry("data.digits.render_digits", lambda n, rng, size, dtype: sdig.render_digits(n, rng, size=size, dtype=dtype)[0],
      lambda rng: {"n": 2, "rng": np.random.default_rng(0), "size": 8, "dtype": F32},
      {"n": size(), "rng": RNG, "size": size(8), "dtype": DTYPE}, shape_is(2, 64))
entry("data.sources.load_embedded_digits", lambda n_train, n_valid, n_test, seed, size:
      ssrc.load_embedded_digits(n_train, n_valid, n_test, seed, size=size).train.x,
      lambda rng: {"n_train": 2, "n_valid": 1, "n_test": 0, "seed": 3, "size": 8},
      {"n_train": size(), "n_valid": size(0), "n_test": size(0), "seed": size(0), "size": size(8)}, shape_is(2, 64))
entry("data.sources.load_dataset", lambda source, dtype, valid_fraction, seed:
      ssrc.load_dataset(source, dtype=dtype, valid_fraction=valid_fraction, seed=seed).train.x,
      lambda rng: {"source": tmp_file("d.npz", _npz), "dtype": F32, "valid_fraction": 0.2, "seed": 0},
      {"source": PATH, "dtype": DTYPE, "valid_fraction": real(-0.1, 1.5), "seed": size(0)},
      covers=("data.sources.read_source", "data.sources.grey_levels", "data.formats.read_npz", "data.formats.load_npz",
              "data.formats.check_stored", "data.formats.to_float_pixels", "data.formats.check_float_dtype"))
entry("data.sources.subset", lambda ds, n, rng: ssrc.subset(ds, n, rng).x,
      lambda rng: {"ds": sfmt.Dataset(np.ones((5, 4), F32), np.arange(5)), "n": 2,
                   "rng": np.random.default_rng(0)},
      {"ds": OBJ, "n": size(0), "rng": RNG}, shape_is(2, 4), covers=("data.sources.carve",))
for _f, _arg in ((sfmt.load_idx, "path"), (sfmt.load_amat, "path"), (sfmt.load_amat_splits, "path"),
                 (sfmt.load_mnist_idx, "directory"), (sfmt.load_npz, "path"), (sfmt.read_npz, "path"),
                 (simg.read_npy, "path"), (simg.read_idx_images, "path"), (simg.read_csv_table, "path"),
                 (simg.read_csv, "path"), (simg.read_image, "path"), (simg.read_image_folder, "folder"),
                 (ssrc.read_source, "path"), (ssrc.image_shape, "source"), (sdl.sha256_of, "path")):
    entry(f"data.{_f.__module__.split('.')[-1]}.{_f.__name__}", lambda f=_f, a=_arg, **kw: f(kw[a]),
          lambda rng, a=_arg: {a: tmp_file("d.npz", _npz)}, {_arg: PATH},
          covers=(("data.formats.Dataset", "data.formats.Splits", "data.images.CsvTable")
                  if _f is simg.read_csv_table else ()), good=_f in (sfmt.load_npz, sfmt.read_npz, ssrc.read_source,
                                                                     ssrc.image_shape, sdl.sha256_of),
          nonfinite_ok=True)
entry("data.download.fetch", lambda url, dest_dir, sha256, timeout, filename:
      sdl.fetch(url, dest_dir, sha256, timeout=timeout, filename=filename),
      None, {"url": OBJ, "dest_dir": PATH, "sha256": OBJ, "timeout": real(0.0, -1.0), "filename": OBJ},
      covers=("data.download.fetch_known",))
ENTRIES[-1].make = lambda rng: {"url": "http://127.0.0.1:9/none.bin", "dest_dir": os.path.join(_TMP, "dl"),
                                "sha256": "0" * 64, "timeout": 1.0, "filename": "none.bin"}
ENTRIES[-1].good = False                           # a good call would go to the network

# =========================================================================================
# optim, train, checkpoint, runs, divergence, threads
# =========================================================================================
from scratchvae import checkpoint as ckpt  # noqa: E402
from scratchvae.runs import divergence as div  # noqa: E402
from scratchvae import optim  # noqa: E402
from scratchvae import runs  # noqa: E402
from scratchvae.runs import threads as thr  # noqa: E402
from scratchvae import train as trn  # noqa: E402


def _params(rng, dt=F64):
    return {"W": normal(rng, (3, 2), dt), "b": normal(rng, 2, dt)}


entry("optim.SGD", lambda params, lr, momentum: optim.SGD(params, lr, momentum),
      lambda rng: {"params": _params(rng), "lr": 0.1, "momentum": 0.5},
      {"params": OBJ, "lr": real(0.0, -1.0), "momentum": real(1.0, -0.1)}, covers=("optim.Optimizer",))
entry("optim.Adagrad", lambda params, lr, eps: optim.Adagrad(params, lr, eps),
      lambda rng: {"params": _params(rng), "lr": 0.1, "eps": 1e-8}, {"params": OBJ, "lr": real(0.0), "eps": real(0.0)})
entry("optim.Adam", lambda params, lr, beta1, beta2, eps, flush_every: optim.Adam(params, lr, beta1, beta2, eps, flush_every),
      lambda rng: {"params": _params(rng), "lr": 1e-3, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8, "flush_every": 2},
      {"params": OBJ, "lr": real(0.0), "beta1": real(1.0), "beta2": real(-0.5), "eps": real(0.0), "flush_every": size(0)})
entry("optim.Adam.step", lambda grads, dtype: optim.Adam(_params(np.random.default_rng(0), dtype)).step(grads),
      lambda rng: {"dtype": (dt := dt_of(rng)), "grads": _params(rng, dt)}, {"grads": OBJ},
      covers=("optim.Optimizer.step",))
entry("optim.Optimizer.load_state_dict", lambda state: optim.SGD(_params(np.random.default_rng(0))).load_state_dict(state),
      lambda rng: {"state": optim.SGD(_params(rng)).state_dict()}, {"state": OBJ}, covers=("optim.Optimizer.state_dict",))

_TC = {"epochs": size(), "batch_size": size(), "optimizer": CHOICE, "lr": real(0.0), "estimator": CHOICE,
       "n_samples": size(), "warmup_epochs": real(-1.0), "patience": size(), "dynamic_binarization": FLAG,
       "seed": size(0), "divergence_factor": real(0.0)}
entry("train.TrainConfig", lambda **kw: trn.TrainConfig(**kw).validate(),
      lambda rng: {"epochs": 2, "batch_size": 4, "optimizer": "sgd", "lr": 0.01, "estimator": "mc", "n_samples": 2,
                   "warmup_epochs": 1.0, "patience": 3, "dynamic_binarization": True, "seed": 1,
                   "divergence_factor": 5.0}, _TC, covers=("train.TrainConfig.validate",))
entry("train.train", lambda model, x_train, x_valid, config, threads, log:
      trn.train(model, x_train, x_valid, config, threads=threads, log=log)[-1]["train_loss"],
      lambda rng: {"model": tiny_vae(dt := dt_of(rng)), "x_train": binary(rng, (n_of(rng, 2, 4), 6), dt),
                   "x_valid": binary(rng, (2, 6), dt), "config": trn.TrainConfig(epochs=1, batch_size=2),
                   "threads": 1, "log": None},
      {"model": OBJ, "x_train": data(), "x_valid": data(), "config": OBJ, "threads": size(0), "log": FUNC},
      rows=("x_train",), empty="error")
entry("train.load_model", lambda path: trn.load_model(path), None, {"path": PATH},
      covers=("checkpoint.load_checkpoint", "runs.checkpoint_path", "runs.restore_best"))
ENTRIES[-1].make = lambda rng: {"path": _saved_checkpoint()}
ENTRIES[-1].nonfinite_ok = True


def _saved_checkpoint():
    def write(path):
        vae = tiny_vae()
        ckpt.save_checkpoint(path, vae.params, {}, {"model": vae.config})
    return tmp_file("ck.npz", write)


entry("checkpoint.save_checkpoint", lambda path, params, optimizer_state, meta:
      ckpt.save_checkpoint(path, params, optimizer_state, meta),
      lambda rng: {"path": os.path.join(_TMP, "save.npz"), "params": _params(rng), "optimizer_state": {},
                   "meta": {"epoch": 1}},
      {"path": PATH, "params": OBJ, "optimizer_state": OBJ, "meta": OBJ}, nonfinite_ok=True)
entry("checkpoint.write_text_atomic", lambda path, text: ckpt.write_text_atomic(path, text),
      lambda rng: {"path": os.path.join(_TMP, "t.txt"), "text": "x"}, {"path": PATH, "text": OBJ})
entry("checkpoint.remove_stale_temp_files", lambda folder: ckpt.remove_stale_temp_files(folder),
      lambda rng: {"folder": _TMP}, {"folder": PATH}, nonfinite_ok=True, covers=("runs.contents",))
entry("checkpoint.restore_params", lambda params, saved: ckpt.restore_params(params, saved),
      lambda rng: {"params": _params(rng), "saved": _params(rng)}, {"params": OBJ, "saved": OBJ})
entry("runs.check_out_dir", lambda out_dir, overwrite: runs.check_out_dir(out_dir, overwrite=overwrite),
      lambda rng: {"out_dir": os.path.join(_TMP, "run"), "overwrite": False}, {"out_dir": PATH, "overwrite": FLAG},
      nonfinite_ok=True, covers=("runs.write_outputs",))
entry("runs.validation_scores", lambda history: np.array(runs.validation_scores(history)),
      lambda rng: {"history": [{"valid_elbo": -100.0, "valid_iwae": -99.0}, {"valid_elbo": -98.0}]},
      {"history": OBJ}, shape_is(2), covers=("runs.validation_key",))
entry("runs.divergence.check_divergence", lambda history, initial, x_dim, factor, advice:
      div.check_divergence(history, initial, x_dim, factor, advice),
      lambda rng: {"history": [{"epoch": 1, "valid_elbo": -100.0, "train_loss": 99.0}], "initial": -200.0,
                   "x_dim": 6, "factor": 10.0, "advice": "try again"},
      {"history": OBJ, "initial": real(), "x_dim": size(), "factor": real(0.0, -1.0), "advice": OBJ},
      covers=("runs.divergence.advice",))
entry("runs.threads.blas_threads", lambda threads: thr.blas_threads(threads).__enter__() and None,
      lambda rng: {"threads": 0}, {"threads": size(0)})

# lab.flow_targets: the unnormalized 2-D densities of Rezende & Mohamed (2015), figure 3
from scratchvae.lab import flow_targets as ft  # noqa: E402

for _f in (ft.log_p_tilde_1, ft.log_p_tilde_2, ft.log_p_tilde_3, ft.log_p_tilde_4):
    entry(f"lab.flow_targets.{_f.__name__}", lambda z, f=_f: f(z)[0], lambda rng: {"z": normal(rng, (n_of(rng), 2))},
          {"z": arr()}, shape_is("z"), rows=("z",), empty="ok")
entry("lab.flow_targets.log_normalizer_closed_form", lambda name: ft.log_normalizer_closed_form(name),
      lambda rng: {"name": "U2"}, {"name": CHOICE})
entry("lab.flow_targets.grid", lambda half_width, step: ft.grid(half_width, step)[2],
      lambda rng: {"half_width": 1.0, "step": 0.5}, {"half_width": real(0.0, -1.0), "step": real(0.0, -0.5)},
      shape_is(5, 5, 2))
entry("lab.flow_targets.log_normalizer", lambda log_p_tilde, half_width, step: ft.log_normalizer(log_p_tilde, half_width, step),
      lambda rng: {"log_p_tilde": ft.log_p_tilde_2, "half_width": 2.0, "step": 0.5},
      {"log_p_tilde": FUNC, "half_width": real(0.0), "step": real(0.0)})
entry("data.formats.check_path", lambda path: sfmt.check_path("path", path), lambda rng: {"path": _TMP}, {"path": PATH})
