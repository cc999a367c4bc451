"""The all-reports analysis of one outcome, from curated rows to routes and a posterior."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nutrimeta.all_reports import all_reports_for_outcome, all_reports_sensitivity
from nutrimeta.effects import EffectSettings, compute_effects
from nutrimeta.models.exact import TauPrior
from nutrimeta.models.multivariate import gls_reml, multivariate_exact
from nutrimeta.trials import outcome_covariance


def _study(sid: str, status: str = "not_poolable", design: str = "parallel_rct",
           n: float = math.nan) -> dict:
    return {"study_id": sid, "evidence_base": "selenium_thyroid", "design": design,
            "inclusion_status": status, "nutrient": "selenium", "n_randomised": n}


def _row(sid: str, arm: str, *, subgroup: str = "", label: str = "", n: float = math.nan,
         mean: float = math.nan, sd: float = math.nan, vt: str = "value",
         p: float = math.nan, q: str = "", comp: str = "", direction: str = "") -> dict:
    return {"study_id": sid, "outcome": "ft3", "subgroup": subgroup, "arm": arm,
            "arm_label": label or arm, "timepoint": "follow_up", "week": 12,
            "value_type": vt, "n": n, "mean": mean, "sd": sd, "unit": "pmol/L",
            "p_value": p, "p_value_qualifier": q, "p_value_comparison": comp,
            "direction": direction}


STUDIES = pd.DataFrame([
    _study("threearm", "included"), _study("nosd"), _study("ns", n=60),
    _study("sig"), _study("non"), _study("prepost", design="single_arm_prepost"),
])
RESULTS = pd.DataFrame([
    # two doses against one placebo group (entered once per dose)
    _row("threearm", "intervention", subgroup="low", label="d1", n=99, mean=5.15, sd=0.65),
    _row("threearm", "control", subgroup="low", label="placebo", n=90, mean=5.25, sd=0.61),
    _row("threearm", "intervention", subgroup="high", label="d2", n=95, mean=5.22, sd=0.55),
    _row("threearm", "control", subgroup="high", label="placebo", n=90, mean=5.25, sd=0.61),
    # means and n, no dispersion
    _row("nosd", "intervention", n=20, mean=5.6),
    _row("nosd", "control", n=21, mean=5.2),
    # "no significant difference", only the total n (study level)
    _row("ns", "contrast", vt="difference", p=0.05, q=">", comp="between_arms",
         direction="no_change"),
    # "p < 0.05", increase, per-arm n
    _row("sig", "intervention", n=30, p=0.05, q="<", comp="between_arms",
         direction="increase"),
    _row("sig", "control", n=28),
    # no n at all
    _row("non", "contrast", vt="difference", direction="increase"),
    # single arm
    _row("prepost", "single_arm", n=15, mean=0.3, sd=0.5, vt="change"),
])


@pytest.fixture(scope="module")
def effects() -> pd.DataFrame:
    return compute_effects(STUDIES, RESULTS, EffectSettings(prefer="final"))


def test_partial_columns(effects: pd.DataFrame) -> None:
    e = effects.set_index("study_id")
    assert e.loc["nosd", "estimate_partial"] == pytest.approx(0.4)
    assert e.loc["nosd", "n_intervention_reported"] == 20
    assert e.loc["ns", "n_total_reported"] == 60
    assert e.loc["sig", "p_value_qualifier"] == "<"
    assert e.loc["sig", "p_value_comparison"] == "between_arms"


def test_routes_counts_and_reasons(effects: pd.DataFrame) -> None:
    res = all_reports_for_outcome(effects, {"unit_sd": 0.6, "learn_sd": False,
                                            "method": "grid"})
    routes = {c["study_id"]: c["route"] for c in res["contributions"]}
    assert routes == {"threearm": "full", "nosd": "latent_sd", "ns": "censored_ns",
                      "sig": "censored_threshold"}
    assert res["k_trials"] == 4
    assert [c for c in res["contributions"] if c["study_id"] == "threearm"].__len__() == 2
    assumed = {c["study_id"]: c["assumptions"] for c in res["contributions"]}
    assert assumed["ns"] and "equal allocation" in assumed["ns"][0]
    assert res["n_randomised"] == (99 + 95 + 90) + (20 + 21) + 60 + (30 + 28)
    why = {d["study_id"]: d["reason"] for d in res["not_used"]}
    assert "no sample size" in why["non"]
    assert "not randomised" in why["prepost"]
    assert res["posterior"]["mu"]["sd"] > 0


def test_three_arm_enters_once_with_its_gls_estimate(effects: pd.DataFrame) -> None:
    three = effects[effects.study_id == "threearm"]
    res = all_reports_for_outcome(three, {"unit_sd": 0.6, "learn_sd": False,
                                          "method": "grid"})
    assert res["k_trials"] == 1 and res["single_trial"]
    cov = outcome_covariance(three, "ft3")
    assert gls_reml(cov).k_trials == 1
    # same priors (mu ~ N(0, 0.6), tau ~ HalfNormal(0.3)): the exact quadrature posterior of
    # the block-diagonal model agrees with the grid integration of the all-reports likelihood
    exact = multivariate_exact(cov, TauPrior.half_normal(0.3), (0.0, 0.6)).exact
    assert res["posterior"]["mu"]["mean"] == pytest.approx(exact.mu.mean, abs=2e-3)
    assert res["posterior"]["mu"]["sd"] == pytest.approx(exact.mu.sd, rel=2e-2)
    assert res["posterior"]["tau"]["mean"] == pytest.approx(exact.tau_mean, rel=2e-2)


def test_sensitivity_switches(effects: pd.DataFrame) -> None:
    base = {"unit_sd": 0.6, "learn_sd": False, "method": "grid"}
    no_cens = all_reports_for_outcome(effects, {
        **base, "exclude_routes": ("censored_threshold", "censored_ns", "sign")})
    assert no_cens["k_trials"] == 2
    no_assumed = all_reports_for_outcome(effects, {**base, "exclude_assumed_allocation": True})
    assert "ns" not in {c["study_id"] for c in no_assumed["contributions"]}
    loo = all_reports_for_outcome(effects, {**base, "leave_out": "threearm"})
    assert loo["k_trials"] == 3


def test_sensitivity_flags_an_answer_that_hangs_on_one_rescued_row() -> None:
    """One small, imprecise complete trial and one "p < 0.01, increase" report: without the
    censored report the probability of an increase falls below 0.9."""
    studies = pd.DataFrame([_study("small", "included"), _study("sig2")])
    results = pd.DataFrame([
        _row("small", "intervention", n=20, mean=5.35, sd=0.6),
        _row("small", "control", n=20, mean=5.25, sd=0.6),
        _row("sig2", "intervention", n=150, p=0.01, q="<", comp="between_arms",
             direction="increase"),
        _row("sig2", "control", n=150),
    ])
    eff = compute_effects(studies, results, EffectSettings(prefer="final"))
    sens = all_reports_sensitivity(eff, {"unit_sd": 0.6, "learn_sd": False,
                                         "method": "grid"})
    p_all = sens["main"]["posterior"]["P(mu > 0)"]
    p_wo = sens["leave_one_out"]["sig2"]["P(mu > 0)"]
    assert p_all > 0.9 > p_wo
    assert [h["study_id"] for h in sens["hangs_on_single_rescued_row"]] == ["sig2"]
    assert sens["variants"]["no_censored"]["k_trials"] == 1
    assert set(sens["variants"]) >= {"no_latent_sd", "no_assumed_allocation",
                                     "log_sd_spread_x0.5", "log_sd_spread_x2"}
