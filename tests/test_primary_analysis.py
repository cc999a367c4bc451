"""The declared primary analysis drives the verdicts; the all-reports sensitivity analyses and
the rescued rows an answer hangs on; a single trial is never called pooled."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nutrimeta.all_reports import all_reports_sensitivity, fragile_rows
from nutrimeta.analyses import VERDICT_LEVELS, analyses_entry
from nutrimeta.analysis_results import AnalysisResult
from nutrimeta.effects import EffectSettings, compute_effects
from nutrimeta.models.fitting import save_posterior
from nutrimeta.report import summary as summ
from nutrimeta.report.calibration import primary_analysis_text
from nutrimeta.report.render import headline
from nutrimeta.report.tables import analyses_side_by_side, fragile_text
from nutrimeta.results import VERDICT_RULE, Bundle, ModelResult
from nutrimeta.spec import ClaimSpec, OutcomeSpec, TauPriorSpec, load_spec
from nutrimeta.synthesis import claim_entries
from test_all_reports import _row, _study  # helpers building curated rows

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_BUNDLE = ROOT / "tests" / "fixtures" / "report" / "zinc_testosterone.json"
GRID = {"unit_sd": 0.6, "learn_sd": False, "method": "grid"}


# --------------------------------------------------------------------------- verdicts


def _analysis(k: int, p_benefit: float, mean: float) -> AnalysisResult:
    return AnalysisResult.model_validate({
        "k_trials": k, "status": "ok",
        "mu": {"mean": mean, "q025": mean - 1.0, "q975": mean + 1.0,
               "p_benefit": {"quantity": "mu", "relation": ">", "threshold": 0.0,
                             "value": p_benefit}}})


def _conventional_model(tmp_path: Path, draws: np.ndarray, k: int) -> ModelResult:
    """A random-effects result whose posterior file holds ``draws`` of mu."""
    post = xr.Dataset({"mu": (("chain", "draw"), draws.reshape(1, -1))})
    path = save_posterior(xr.DataTree.from_dict({"posterior": post}), tmp_path / "re.nc")
    return ModelResult(model="random_effects", description="", status="ok", k=k,
                       posterior_file=str(path))


@pytest.mark.parametrize("primary", ["all_reports", "conventional"])
def test_verdict_follows_the_declared_primary_analysis(tmp_path: Path, primary: str) -> None:
    """Conventional: 2 trials, P(mu > 0) = 0.6 (uncertain); all reports: 6 trials, P(benefit)
    0.97 (supported). The claim about mu takes the primary analysis's probability and k."""
    rng = np.random.default_rng(1)
    draws = rng.normal(0.25, 1.0, 4000)  # P(mu > 0) about 0.6
    conv_p = float(np.mean(draws > 0))
    oc = SimpleNamespace(
        beneficial="increase",
        models={"random_effects": _conventional_model(tmp_path, draws, k=2)},
        analyses={"conventional": _analysis(2, conv_p, 0.25),
                  "all_reports": _analysis(6, 0.97, 0.8)}, k=2)
    claim = ClaimSpec(text="raises the outcome", outcome="x", quantity="mu",
                      model="random_effects", direction="increase")
    spec = SimpleNamespace(claims=(claim,), primary_analysis=primary)
    (res,) = claim_entries(spec, {"x": oc})  # type: ignore[arg-type]
    if primary == "all_reports":
        assert (res.model, res.k, res.probability, res.verdict) == ("all_reports", 6, 0.97,
                                                                      "supported")
        assert res.estimate is not None and res.estimate.mean == pytest.approx(0.8)
    else:
        assert (res.model, res.k, res.verdict) == ("random_effects", 2, "uncertain")
        assert res.probability == pytest.approx(conv_p, abs=1e-4)
    # the opposite direction is the complement of P(benefit)
    spec.claims = (dataclasses.replace(claim, direction="decrease"),)
    (opp,) = claim_entries(spec, {"x": oc})  # type: ignore[arg-type]
    if primary == "all_reports":
        assert opp.probability == pytest.approx(0.03) and opp.verdict == "not supported"
        # a verdict that hangs on one rescued row says so, and keeps the rule's verdict
        oc.analyses["all_reports"].fragile = ["rescued1"]
        spec.claims = (claim,)
        (frag,) = claim_entries(spec, {"x": oc})  # type: ignore[arg-type]
        assert frag.verdict == "supported" and "rescued1" in (frag.why or "")


def test_spec_declares_primary_analysis(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "analyses" / "selenium_thyroid.toml")
    assert spec.primary_analysis == "all_reports"
    text = (ROOT / "analyses" / "selenium_thyroid.toml").read_text(encoding="utf-8")
    bad = tmp_path / "selenium_thyroid.toml"
    bad.write_text(text.replace('primary_analysis = "all_reports"',
                                'primary_analysis = "pooled"'), encoding="utf-8")
    with pytest.raises(ValueError, match="primary_analysis 'pooled' is not one of"):
        load_spec(bad)


def test_methods_text_states_why_with_the_calibration_numbers() -> None:
    cal = json.loads((ROOT / "benchmarks" / "calibration.json").read_text(encoding="utf-8"))
    text = primary_analysis_text("all_reports", cal)
    scen = cal["scenarios"].values()
    lo90 = min(s["summary"]["all_reports"]["cover90"] for s in scen)
    hi_bias = max(s["summary"]["conventional"]["bias"] for s in scen)
    assert f"{lo90:.1f}" in text and f"{hi_bias:+.3f}" in text
    assert text.startswith("Primary analysis for the verdicts: all-reports")
    # the numbers come from the file: other numbers give another sentence
    for s in cal["scenarios"].values():
        s["summary"]["all_reports"]["cover90"] = 77.7
    assert "covered 77.7–77.7%" in primary_analysis_text("all_reports", cal)
    assert "No calibration study results" in primary_analysis_text("conventional", None)


def test_side_by_side_marks_the_primary_analysis() -> None:
    oc = SimpleNamespace(analyses={"conventional": _analysis(2, 0.6, 0.2),
                                   "all_reports": _analysis(6, 0.97, 0.8)})
    df = analyses_side_by_side(oc, "all_reports")  # type: ignore[arg-type]
    marked = df[df["analysis"].str.contains("primary")]
    assert list(marked["k_trials"]) == [6]


def test_bottom_line_follows_the_primary_analysis() -> None:
    raw = json.loads(FIXTURE_BUNDLE.read_text(encoding="utf-8"))
    o = raw["outcomes"]["free_testosterone"]
    o["analyses"] = {
        "conventional": {"k_trials": 3, "status": "ok"},
        "all_reports": {"k_trials": 5, "status": "ok", "n_randomised": 300.0,
                        "mu": {"mean": 0.5, "q025": 0.1, "q975": 0.9,
                               "p_benefit": {"quantity": "mu", "relation": ">",
                                             "threshold": 0.0, "value": 0.99}}}}
    b = Bundle.model_validate(raw)
    text = summ.outcome_sentence(b, "free_testosterone", "low")
    assert text.startswith("Zinc may raise free testosterone: difference 0.5")
    assert "5 randomised trials counting partial reports (300 participants)" in text
    b.outcomes["free_testosterone"].analyses["all_reports"].fragile = ["rescued1"]
    b.outcomes["free_testosterone"].analyses["all_reports"].n_randomised = None
    text = summ.outcome_sentence(b, "free_testosterone", "low")
    assert "participants not known for every trial" in text
    assert "hangs on one rescued row (rescued1)" in text
    b.spec.primary_analysis = "conventional"
    assert "counting partial reports" not in summ.outcome_sentence(b, "free_testosterone",
                                                                   "low")


# --------------------------------------------------------------------------- sensitivity


def _fragile_case() -> pd.DataFrame:
    """Two small complete trials and one "p < 0.01, increase" report (n = 150 per arm):
    P(mu > 0) about 0.97 with all three, about 0.88 without the censored report."""
    studies = pd.DataFrame([_study("small", "included"), _study("small2", "included"),
                            _study("sig2")])
    results = pd.DataFrame([
        _row("small", "intervention", n=25, mean=5.55, sd=0.6),
        _row("small", "control", n=25, mean=5.25, sd=0.6),
        _row("small2", "intervention", n=25, mean=5.40, sd=0.6),
        _row("small2", "control", n=25, mean=5.25, sd=0.6),
        _row("sig2", "intervention", n=150, p=0.01, q="<", comp="between_arms",
             direction="increase"),
        _row("sig2", "control", n=150),
    ])
    return compute_effects(studies, results, EffectSettings(prefer="final"))


@pytest.fixture(scope="module")
def fragile_sens() -> dict[str, Any]:
    return all_reports_sensitivity(_fragile_case(), GRID)


def test_fragile_row_flips_p_benefit_across_the_verdict_level(
        fragile_sens: dict[str, Any]) -> None:
    p_all = fragile_sens["main"]["posterior"]["P(mu > 0)"]
    loo = {t: r["P(mu > 0)"] for t, r in fragile_sens["leave_one_out"].items()}
    assert p_all >= VERDICT_RULE.supported_at > loo["sig2"]
    # "small" also crosses 0.95 when left out, but it is a complete report, not rescued
    assert loo["small"] < VERDICT_RULE.supported_at
    assert fragile_rows(fragile_sens, VERDICT_LEVELS, +1) == ["sig2"]
    # read as a claim of a decrease, P(benefit) = 1 - P(mu > 0): no level is crossed
    # between about 0.03 and 0.12
    assert fragile_rows(fragile_sens, VERDICT_LEVELS, -1) == []


def _outcome_spec(unit_sd: float | None) -> OutcomeSpec:
    # priors as the shipped specs state them: mu 1 and tau 0.5 unit SD (both analyses)
    u = unit_sd or 1.0
    return OutcomeSpec(id="ft3", measure="MD", unit="pmol/L", mid=0.5, mid_source="declared",
                       beneficial="increase", mu_prior_sd=u, mu_prior_sd_multiple=1.0,
                       tau_prior=TauPriorSpec("half_normal", 0.5 * u, scale_multiple=0.5),
                       slope_prior_sd=0.1, unit_sd=unit_sd,
                       unit_sd_source="declared" if unit_sd else "")


def test_analyses_entry_carries_sensitivity_rows_and_fragile() -> None:
    eff = _fragile_case()
    entry = {"studies": [], "k_trials": 0, "n_randomised": None,
             "models": {"exact": ModelResult(model="exact", description="",
                                             status="skipped", k=0)}}
    res = analyses_entry(entry, _outcome_spec(0.6), eff, eff.iloc[:0], 1,
                         {"se": eff.assign(yi=math.nan)})
    ar = AnalysisResult.model_validate(res["all_reports"])
    assert ar.fragile == ["sig2"]
    kinds = [v.kind for v in ar.sensitivity]
    assert kinds.count("leave_one_out") == ar.k_trials == 3
    assert {"route", "assumption", "prior", "unlabelled_spread"} <= set(kinds)
    without = {v.label: v for v in ar.sensitivity}
    assert without["without sig2"].mu is not None
    assert without["without sig2"].mu.p_benefit.value == pytest.approx(
        fragile_sens_p(eff, "sig2"), abs=1e-4)
    assert "hangs on one rescued row: sig2" in (fragile_text(
        SimpleNamespace(analyses={"all_reports": ar})) or "")  # type: ignore[arg-type]


def fragile_sens_p(eff: pd.DataFrame, trial: str) -> float:
    from nutrimeta.all_reports import all_reports_for_outcome

    return all_reports_for_outcome(eff, {**GRID, "leave_out": trial})["posterior"]["P(mu > 0)"]


# --------------------------------------------------------------------------- one trial


def test_single_trial_headline_is_not_called_pooled() -> None:
    raw = json.loads(FIXTURE_BUNDLE.read_text(encoding="utf-8"))
    o = raw["outcomes"]["free_testosterone"]
    arms = [dict(o["studies"][0], subgroup=f"dose {i}") for i in (1, 2)]
    o.update(k=1, k_trials=1, studies=arms)
    text = headline(Bundle.model_validate(raw), "free_testosterone")["text"]
    trial = arms[0]["study_id"]
    assert text.startswith(f"one trial ({trial}, 2 arms against its control)")
    assert "not a pooled result" in text and "pooled MD" not in text
    # the trial's own estimate across its arms, not a random-effects posterior over one trial
    o["analyses"] = {"conventional": {
        "k_trials": 1, "single_trial": True,
        "mu": {"mean": 0.047, "q025": -0.102, "q975": 0.196,
               "p_benefit": {"quantity": "mu", "relation": ">", "threshold": 0.0,
                             "value": 0.731}}}}
    text = headline(Bundle.model_validate(raw), "free_testosterone")["text"]
    assert "0.05 (-0.10 to 0.20)" in text and "P(mu > 0) = 0.73" in text
    o.update(k=3)
    assert "pooled" in headline(Bundle.model_validate(raw), "free_testosterone")["text"]


@pytest.mark.slow  # about 70 s: the all-reports analysis and its variations for every outcome
def test_shipped_outcomes_carry_all_reports_sensitivity() -> None:
    from nutrimeta.effect_table import effects_for_spec
    from nutrimeta.spec import load_specs
    from nutrimeta.validate import load_evidence

    ev = load_evidence(ROOT / "data")
    ok = 0
    for spec in load_specs(ROOT / "analyses"):
        effects = effects_for_spec(ev, spec)
        other = {p: effects_for_spec(ev, spec, unlabelled=p)
                 for p in spec.sensitivity.unlabelled_spread if p != spec.unlabelled_spread}
        for o in spec.outcomes:
            entry = {"studies": [], "k_trials": 0, "n_randomised": None,
                     "models": {"exact": ModelResult(model="exact", description="",
                                                     status="skipped", k=0)}}
            ar = AnalysisResult.model_validate(
                analyses_entry(entry, o, effects, effects.iloc[:0], spec.seed,
                               other)["all_reports"])
            if ar.status != "ok" or ar.mu is None:
                assert not ar.sensitivity, o.id
                continue
            ok += 1
            trials = {c.study_id for c in ar.contributions}
            loo = [v for v in ar.sensitivity if v.kind == "leave_one_out"]
            assert {v.label.removeprefix("without ") for v in loo} == trials, o.id
            assert all(v.k_trials == ar.k_trials - 1 for v in loo), o.id
            kinds = {v.kind for v in ar.sensitivity}
            assert {"route", "assumption", "prior"} <= kinds, o.id
            assert ("unlabelled_spread" in kinds) == bool(other), o.id
            assert set(ar.fragile) <= {c.study_id for c in ar.contributions
                                       if c.route != "full"}, o.id
    assert ok >= 8


def test_precise_null_reads_as_little_or_no_difference() -> None:
    """GRADE plain language: a high- or moderate-certainty interval inside (-MID, MID) is
    "little or no difference", not "uncertain"; wider intervals or lower certainty stay
    uncertain."""
    raw = json.loads(FIXTURE_BUNDLE.read_text(encoding="utf-8"))
    o = raw["outcomes"]["free_testosterone"]
    mid = abs(o["mid"])
    o["analyses"] = {"all_reports": {
        "k_trials": 5, "status": "ok", "n_randomised": 300.0,
        "mu": {"mean": 0.1 * mid, "q025": -0.5 * mid, "q975": 0.7 * mid,
               "p_benefit": {"quantity": "mu", "relation": ">", "threshold": 0.0,
                             "value": 0.7}}}}
    b = Bundle.model_validate(raw)
    assert summ.outcome_sentence(b, "free_testosterone", "high").startswith(
        "Zinc makes little or no difference to free testosterone")
    assert summ.outcome_sentence(b, "free_testosterone", "moderate").startswith(
        "Zinc probably makes little or no difference to free testosterone")
    assert summ.outcome_sentence(b, "free_testosterone", "low").startswith(
        "It is uncertain whether zinc raises")
    b.outcomes["free_testosterone"].analyses["all_reports"].mu.q975 = 1.2 * mid
    assert summ.outcome_sentence(b, "free_testosterone", "high").startswith(
        "It is uncertain whether zinc raises")
