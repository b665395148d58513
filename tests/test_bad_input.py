"""Bad input at every public entry point gets an error that names the argument.

The rows are in ``tests/api_table.py`` (one per entry point: a good call and the kind of each
argument); this file spoils them. For each argument and each way of spoiling it that applies to
its kind (size <= 0, wrong type, wrong dtype, wrong shape, NaN/inf; N = 0 for the arrays that
share the data axis), the call must raise TypeError (wrong type or dtype), ValueError (the rest)
or FloatingPointError (NaN/inf in an upstream gradient, which is what diverging parameters look
like from inside a backward pass), and the message must contain the argument's name. A good call
must return finite numbers of the expected shape. N = 0 is decided per function: an empty result
("ok") where the result has one entry per row, an error where it is a mean or a statistic over
the rows.

``test_every_public_name_has_a_row`` keeps the table complete: a new public function or class
without a row (or a reason in ``EXEMPT``) fails it. ``KNOWN_GAPS`` lists the spoiled calls that
do not yet give a named error, each with what happens instead; ``test_known_gaps_are_still_open``
fails when one of them starts passing, so that it is deleted from the list and checked as usual.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re

import numpy as np
import pytest

import scratchvae
from api_table import ENTRIES, F32, F64

pytestmark = pytest.mark.slow   # input checks and files, not maths: the maths lane is pytest -m "not slow"

# Subpackages without rows, and why. (Containers whose constructor only stores what a function
# computed, such as IsingResult or EstimatorStats, are listed in the ``covers`` of that function's
# row; so are kernels documented as unchecked building blocks behind a checked door.)
EXEMPT = {
    "scratchvae.cli": "the command line is covered by tests/test_cli.py",
    "scratchvae.viz": "the figures are covered by the demo and CLI tests",
}

# (entry, argument) -> (the spoiled calls, as in the test ids, that do not yet give a named error;
# what the first of them does instead). These are left out of the table's cases, and
# test_known_gaps_are_still_open fails as soon as one of them passes, so the list cannot go stale.
KNOWN_GAPS = {
}


# ------------------------------------------------------------------------------------ spoiling
def _other_float(a):
    return a.astype(F32 if a.dtype == F64 else F64)


def _wrong_shape(a):
    if a.ndim >= 1 and a.shape[-1] >= 2:
        return np.ascontiguousarray(a[..., :-1])
    return np.ascontiguousarray(a[..., None])


def _with(a, value, index=0):
    a = np.array(a, copy=True)
    a.flat[index] = value
    return a


def spoil(arg, value):
    """[(kind, bad value, accepted error types)] for one argument of a good call."""
    k, out = arg.kind, []
    if k == "array":
        out += [("type", value.tolist(), (TypeError,)), ("dtype", value.astype(np.int64), (TypeError,))]
        if arg.match:
            out.append(("dtype", _other_float(value), (TypeError,)))
        if arg.shape:
            out.append(("shape", _wrong_shape(value), (ValueError,)))
        if arg.finite and value.size:
            err = (FloatingPointError,) if arg.upstream else (ValueError,)
            out += [("nan", _with(value, np.nan), err), ("inf", _with(value, np.inf, -1), err)]
    elif k == "labels":
        out += [("type", value.tolist(), (TypeError,)), ("dtype", value.astype(F64), (TypeError,)),
                ("shape", value[..., None], (ValueError,))]
    elif k == "size":
        out += [("size", v, (ValueError,)) for v in (arg.bad or sorted({arg.minimum - 1, -1}))]
        out += [("type", v, (TypeError,)) for v in ("2", 2.5, True)]
    elif k == "real":
        out += [("type", "0.5", (TypeError,)), ("type", True, (TypeError,)), ("nan", np.nan, (ValueError,))]
        out += [("range", v, (ValueError,)) for v in arg.bad]
    elif k == "flag":
        out += [("type", "no", (TypeError,)), ("type", 1, (TypeError,))]
    elif k == "choice":
        out += [("value", "bogus", (ValueError,)), ("type", 3, (TypeError, ValueError))]
    elif k == "rng":
        out += [("type", 0, (TypeError,)), ("type", np.random.RandomState(0), (TypeError,))]
    elif k in ("func", "obj", "path"):
        out.append(("type", 3, (TypeError,)))
    elif k == "dtype":
        out += [("dtype", np.int32, (TypeError,)), ("type", "garbage", (TypeError,))]
    elif k == "ints":
        out += [("type", 5, (TypeError,)), ("type", ["1", "2"], (TypeError,)),
                ("value", [arg.minimum - 1], (ValueError,))]
    else:
        raise AssertionError(f"unknown argument kind {k!r}")
    return [m for m in out if m[0] in arg.only] if arg.only else out


def names(message: str, word: str) -> bool:
    """True when ``word`` occurs in ``message`` as a whole word (``x`` in 'x must', not in 'max')."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", message) is not None


def all_finite(out) -> bool:
    """Every float in ``out`` (arrays, numbers, tuples, lists, dicts, dataclasses) is finite."""
    if isinstance(out, np.ndarray):
        return out.dtype.kind != "f" or bool(np.all(np.isfinite(out)))
    if isinstance(out, (float, np.floating)):
        return bool(np.isfinite(out))
    if isinstance(out, (tuple, list)):
        return all(all_finite(o) for o in out)
    if isinstance(out, dict):
        return all(all_finite(o) for o in out.values())
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return all(all_finite(getattr(out, f.name)) for f in dataclasses.fields(out))
    return True


def gap(entry, arg, kind):
    """The recorded reason why ``arg`` of ``entry`` spoiled as ``kind`` ("type0") fails, or None."""
    kinds, reason = KNOWN_GAPS.get((entry.name, arg), ("", None))
    return reason if kind in kinds.split() else None


# -------------------------------------------------------------------------------- the table
def bad_call(e, name, j):
    """Call ``e`` with argument ``name`` spoiled in its j-th way: None if a named error of the right
    type results, else what happened instead."""
    kw = e.make(np.random.default_rng(0))
    kind, bad, errors = spoil(e.args[name], kw[name])[j]
    kw[name] = bad
    label = e.args[name].label or name
    with np.errstate(all="ignore"):
        try:
            e.call(**kw)
        except errors as exc:
            return None if names(str(exc), label) else f"{type(exc).__name__} does not name {label!r}: {exc}"
        except Exception as exc:                                    # noqa: BLE001
            return (f"{e.name}({name}={kind}) raised {type(exc).__name__}, expected "
                    f"{'/'.join(t.__name__ for t in errors)} naming {label!r}: {exc}")
    return f"{e.name} accepted {name} spoiled as {kind} ({bad!r:.80})"


def empty_rows(e, kw):
    return {**kw, **{r: kw[r][:0] for r in e.rows}}


def empty_call(e):
    """Call ``e`` with N = 0 rows: None if it behaves as its row says ("error" or "ok")."""
    kw = empty_rows(e, e.make(np.random.default_rng(0)))
    with np.errstate(all="ignore"):
        try:
            out = e.call(**kw)
        except ValueError as exc:
            if e.empty == "error" and any(names(str(exc), r) for r in e.rows):
                return None
            return f"N = 0 raised ValueError: {exc}"
        except Exception as exc:                                    # noqa: BLE001
            return f"N = 0 raised {type(exc).__name__}: {exc}"
    if e.empty == "error":
        return f"N = 0 accepted, gave {out!r:.100}"
    return None if e.check(out, kw) else f"N = 0 gave {out!r:.200}"


def _cases(gaps):
    """(entry index, argument, j) of every spoiled call; the known gaps or all the others."""
    for i, e in enumerate(ENTRIES):
        kw = e.make(np.random.default_rng(0))
        for name, arg in e.args.items():
            for j, (kind, _, _) in enumerate(spoil(arg, kw[name])):
                if bool(gap(e, name, f"{kind}{j}")) == gaps:
                    yield i, name, j, f"{e.name}-{name}-{kind}{j}"


@pytest.mark.parametrize("i, name, j", [c[:3] for c in _cases(False)], ids=[c[3] for c in _cases(False)])
def test_bad_argument_gives_a_named_error(i, name, j):
    problem = bad_call(ENTRIES[i], name, j)
    assert problem is None, problem


@pytest.mark.parametrize("i", [i for i, e in enumerate(ENTRIES) if e.rows and not gap(e, "rows", "empty")],
                         ids=[f"{e.name}-N=0-{e.empty}" for e in ENTRIES if e.rows and not gap(e, "rows", "empty")])
def test_no_rows_gives_an_empty_result_or_a_named_error(i):
    problem = empty_call(ENTRIES[i])
    assert problem is None, problem


def test_known_gaps_are_still_open():
    """Every call in KNOWN_GAPS still fails the named-error rule (so the list is not stale): one
    that now passes must be deleted from KNOWN_GAPS, and then the table checks it."""
    closed = [c[3] for c in _cases(True) if bad_call(ENTRIES[c[0]], c[1], c[2]) is None]
    closed += [f"{e.name}-N=0" for e in ENTRIES if e.rows and gap(e, "rows", "empty") and empty_call(e) is None]
    assert not closed, f"these now give named errors; delete them from KNOWN_GAPS: {closed}"


@pytest.mark.parametrize("i", range(len(ENTRIES)), ids=[e.name for e in ENTRIES])
def test_good_call_returns_finite_numbers_of_the_expected_shape(i):
    e = ENTRIES[i]
    if not e.good:
        pytest.skip("a good call needs the network or a file of this format")
    for seed in range(3):
        kw = e.make(np.random.default_rng(seed))
        out = e.call(**kw)
        assert e.check(out, kw), f"{e.name}: unexpected result {out!r:.200}"
        assert e.nonfinite_ok or all_finite(out), f"{e.name}: non-finite result {out!r:.200}"


def _public_names():
    """module.name for every public function and class defined in a scratchvae module."""
    for info in pkgutil.walk_packages(scratchvae.__path__, "scratchvae."):
        if any(info.name == p or info.name.startswith(p + ".") for p in EXEMPT):
            continue
        module = importlib.import_module(info.name)
        for key, value in vars(module).items():
            if key.startswith("_") or getattr(value, "__module__", None) != info.name:
                continue
            if inspect.isfunction(value) or inspect.isclass(value):
                yield f"{info.name.removeprefix('scratchvae.')}.{key}"


def _owner(name):
    """"distributions.Normal.log_prob" -> "distributions.Normal" (a method's class); else ``name``."""
    *head, last = name.split(".")
    return ".".join(head) if head and head[-1][:1].isupper() else name


def test_every_public_name_has_a_row():
    covered = {_owner(name) for e in ENTRIES for name in e.covers}
    missing = sorted(set(_public_names()) - covered)
    assert not missing, f"public names without a row in tests/api_table.py: {missing}"


# ------------------------------------------------------------------------------------- fuzzing
def _fuzz_call(e, rng):
    """One random call: each argument spoiled with probability 1/4 (by a kind that is not a known
    gap), the rows emptied with probability 1/20. Returns (outcome, failure message or None),
    outcome "error" (a named error was raised) or "result".

    At most one argument gets a wrong dtype and at most one a wrong shape: two arguments spoiled
    alike can make a valid call (loc and log_scale both float32, a and b both (3, 1))."""
    kw = e.make(rng)
    spoiled = {}
    for name, arg in e.args.items():
        if rng.random() < 0.25:
            taken = {kind for kind, _ in spoiled.values()} & {"dtype", "shape"}
            options = [m for j, m in enumerate(spoil(arg, kw[name]))
                       if not gap(e, name, f"{m[0]}{j}") and m[0] not in taken]
            if options:
                kind, kw[name], errors = options[rng.integers(len(options))]
                spoiled[e.args[name].label or name] = (kind, errors)
    if not spoiled and not e.good:
        return "skipped", None
    empty = bool(e.rows) and rng.random() < 0.05 and not gap(e, "rows", "empty") and not spoiled
    if empty:
        kw = empty_rows(e, kw)
    with np.errstate(all="ignore"):
        try:
            out = e.call(**kw)
        except (TypeError, ValueError, FloatingPointError) as exc:
            if empty and e.empty == "error" and isinstance(exc, ValueError):
                return "error", None if any(names(str(exc), r) for r in e.rows) else f"N = 0 unnamed: {exc}"
            if not spoiled:
                return "error", f"good call raised {type(exc).__name__}: {exc}"
            if not any(names(str(exc), n) and isinstance(exc, errs) for n, (_, errs) in spoiled.items()):
                return "error", f"{type(exc).__name__} naming none of {sorted(spoiled)} as expected: {exc}"
            return "error", None
        except Exception as exc:                                    # noqa: BLE001
            return "error", f"{type(exc).__name__} (not a named error) with {sorted(spoiled)} spoiled: {exc}"
    if spoiled:
        return "result", f"accepted {', '.join(f'{n} ({k})' for n, (k, _) in spoiled.items())}"
    if empty and e.empty == "error":
        return "result", "accepted N = 0"
    if not e.check(out, kw) or not (e.nonfinite_ok or all_finite(out)):
        return "result", f"good call gave {out!r:.200}"
    return "result", None


@pytest.mark.slow
def test_fuzz_5000_random_calls():
    """5,000 calls with random good or bad arguments: each gives a named error or a finite result
    of the expected shape (seeded, so a failure reproduces)."""
    rng = np.random.default_rng(2024)
    failures, outcomes = [], {"error": 0, "result": 0, "skipped": 0}
    for _ in range(5000):
        e = ENTRIES[rng.integers(len(ENTRIES))]
        outcome, problem = _fuzz_call(e, rng)
        outcomes[outcome] += 1
        if problem:
            failures.append(f"{e.name}: {problem}")
    assert not failures, f"{len(failures)} of 5000 calls failed:\n" + "\n".join(sorted(set(failures))[:60])
    # not vacuous: both outcomes occur often (measured: 2,269 named errors, 2,595 good results)
    assert outcomes["error"] > 1500 and outcomes["result"] > 1500, outcomes
