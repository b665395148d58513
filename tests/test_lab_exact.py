"""Each exact-evidence demo's claim, asserted on the numbers its main() returns (small settings,
fixed seeds). Identities to <= 1e-10 relative; statistical claims with the tolerance in the message."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _demo(name):
    spec = importlib.util.spec_from_file_location(f"demo_{name}", ROOT / "demos" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    out = tmp_path_factory.mktemp("exact_evidence")
    return _demo("exact_evidence").main(out, seed=0, n_random_q=200, steps=1500,
                                        Ks=(1, 4, 16, 64, 256), reps=400, plot=True)


@pytest.fixture(scope="module")
def joint(tmp_path_factory):
    return _demo("joint_likelihood").main(tmp_path_factory.mktemp("joint"), seed=0, n_mc=50_000,
                                          n_grid=301, plot=True)


@pytest.fixture(scope="module")
def alternating(tmp_path_factory):
    return _demo("alternating_vs_joint").main(tmp_path_factory.mktemp("alt"), seed=0, n=100, steps=600,
                                              plot=True)


# ------------------------------------------------------------------------------ exact evidence
def test_gap_equals_posterior_kl_to_machine_precision(evidence):
    assert evidence["identity_max_rel_dev"] <= 1e-10
    assert Path(evidence["figure"]).stat().st_size > 10_000


def test_full_covariance_q_recovers_the_exact_posterior(evidence):
    assert abs(evidence["full_gap"]) <= 1e-10 * abs(evidence["log_px"])
    assert evidence["full_loc_err"] < 1e-8 and evidence["full_cov_err"] < 1e-8


def test_diagonal_q_stops_at_the_mean_field_gap(evidence):
    assert abs(evidence["rho"] + 0.9) < 1e-10                       # the posterior is as built
    assert abs(evidence["mf_gap_closed_form"] - evidence["mf_gap_rho"]) <= 1e-10
    assert abs(evidence["diag_gap"] - evidence["mf_gap_closed_form"]) <= 1e-10 * abs(evidence["log_px"])
    assert evidence["diag_gap"] > 0.8                                # -log(1 - 0.81)/2 = 0.830
    assert evidence["diag_loc_err"] < 1e-8 and evidence["diag_scale_err"] < 1e-8


def test_iwae_gap_shrinks_with_k(evidence):
    """K = 1 is the ELBO (gap = KL within 4 s.e.); the mean gap falls with K (each step down,
    within 3 combined s.e.) and by at least 3x (mean field) / 100x (prior) from K = 1 to 256."""
    for name, res in evidence["iwae"].items():
        gap, se = res["gap"], res["se"]
        assert abs(gap[0] - res["kl"]) < 4 * se[0], \
            f"{name}: K=1 gap {gap[0]:.4f} vs KL {res['kl']:.4f}, tolerance 4 se = {4 * se[0]:.4f}"
        assert np.all(np.diff(gap) < 3 * np.hypot(se[1:], se[:-1])), f"{name}: {gap}"
    mf, prior = evidence["iwae"]["mean-field q"], evidence["iwae"]["prior p(z) as q"]
    assert mf["gap"][-1] < mf["gap"][0] / 3 and mf["chi2"] == np.inf
    assert prior["gap"][-1] < prior["gap"][0] / 100 and np.isfinite(prior["chi2"])


# ---------------------------------------------------------------------------- joint likelihood
@pytest.mark.parametrize("q", ["diagonal q", "full q"])
def test_expected_log_joint_over_x_eps_is_elbo_minus_entropy_of_eps(joint, q):
    r = joint["q"][q]
    assert r["rel_dev"] <= 1e-10
    assert abs(r["mc_z"]) < 4, f"MC off by {r['mc_z']:.2f} s.e. (tolerance 4)"
    assert abs(r["mc_elbo_z"]) < 4, f"MC ELBO off by {r['mc_elbo_z']:.2f} s.e. (tolerance 4)"
    assert r["closed"]["log_abs_det"] != 0                           # the log-det term is really there
    assert abs(r["mc"]["log_abs_det"] - r["closed"]["log_abs_det"]) < 1e-12
    log_px = joint["log_px"]
    assert abs(r["quad_with_det"] - log_px) <= 1e-10 * abs(log_px)   # p(x, eps) is a density with marginal p(x)
    assert abs(r["quad_without_det"] - (log_px - r["closed"]["log_abs_det"])) <= 1e-10 * abs(log_px)
    assert abs(joint["entropy_eps"] - (1 + np.log(2 * np.pi))) < 1e-14   # k = 2


# ------------------------------------------------------------------------- alternating vs joint
def test_phi_steps_tighten_the_bound_while_log_evidence_stalls(alternating):
    alt, jnt = alternating["alternating"], alternating["joint"]
    assert alt["phi_only_steps"] > 0 and alt["max_phi_step_dlogpx"] == 0.0   # log p(x) ignores phi
    assert alt["stall_steps"] >= alt["phi_only_steps"]
    assert alt["loosening"] > 3 * jnt["loosening"] and alt["tightening"] > alt["initial_gap"] + 0.5
    for method in ("joint", "alternating", "EM"):
        r = alternating[method]
        assert r["elbo_decreases"] == 0, method                       # small steps: ascent on the ELBO
        assert r["gap"] >= -1e-12 and r["log_px"] <= alternating["log_px_ml"] + 1e-9, method
        assert r["steps_to_ml"] is not None, f"{method} did not reach ML within 0.01 nats"
    assert alternating["EM"]["log_px_decreases"] == 0                 # EM never lowers log p(x)
    assert alternating["EM"]["steps_to_ml"] < alt["steps_to_ml"] and jnt["steps_to_ml"] < alt["steps_to_ml"]
