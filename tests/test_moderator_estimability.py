"""One estimability rule everywhere: a case with no trial above the deficiency cut-off is "not
estimable" in the typed result, the claims, the headline and the summary of findings, and
none of its moderator numbers appears in the rendered report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from nutrimeta.estimability import EstimabilityRule
from nutrimeta.priors import sampled_priors
from nutrimeta.report import render_evidence_base
from nutrimeta.report import summary as summ
from nutrimeta.report.render import headline
from nutrimeta.report.tables import claims as claim_rows
from nutrimeta.results import Bundle, ModelResult, load_bundle
from nutrimeta.spec import ClaimSpec, SpecError, load_spec
from nutrimeta.synthesis import claim_entries, moderator_estimability, outcome_moderator

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "report"
SPEC = ROOT / "analyses" / "zinc_testosterone.toml"
OUTCOME = "total_testosterone"


def _posterior(sds: dict[str, float], means: dict[str, float], seed: int = 1) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return xr.Dataset({q: (("chain", "draw"), rng.normal(means[q], sds[q], size=(4, 1000)))
                       for q in sds})


def _one_sided_case() -> tuple[dict, pd.DataFrame]:
    """Moderator estimability of the fixture's continuous meta-regression with every trial
    below the cut-off (the replete trials removed) and a well-contracted posterior: the
    support half of the rule alone must reject it."""
    spec = load_spec(SPEC)
    o = spec.outcome(OUTCOME)
    bundle = json.loads((FIXTURES / "zinc_testosterone.json").read_text(encoding="utf-8"))
    studies = [s for s in bundle["outcomes"][OUTCOME]["studies"]
               if s["baseline_status_category"] != "replete"]
    df = pd.DataFrame(studies)
    assert (df["baseline_status_value_std"].dropna() < spec.moderator.cutoff).all()
    priors = sampled_priors(spec, o)
    # posterior SDs at 10% of each prior SD: information alone would pass the rule
    post = _posterior({"slope": 0.1 * priors.slope_sd, "effect_deficient": 0.5,
                       "effect_replete": 0.5, "deficient_minus_replete": 0.5, },
                      {"slope": -0.62, "effect_deficient": 2.45, "effect_replete": 0.07,
                       "deficient_minus_replete": 2.38})
    return moderator_estimability(post, priors, df, spec), df


def test_rule_declared_in_spec(tmp_path: Path) -> None:
    assert load_spec(SPEC).moderator.estimability == EstimabilityRule()
    text = SPEC.read_text(encoding="utf-8").replace(
        "[moderator.latent]",
        "[moderator.estimability]\nmax_contraction = 0.8\nmin_trials_each_side = 1\n\n"
        "[moderator.latent]")
    (tmp_path / "a.toml").write_text(text, encoding="utf-8")
    assert load_spec(tmp_path / "a.toml").moderator.estimability == EstimabilityRule(0.8, 1)
    (tmp_path / "b.toml").write_text(text.replace("= 0.8", "= 1.5"), encoding="utf-8")
    with pytest.raises(SpecError, match=r"\[moderator\]\.estimability\.max_contraction: "
                       "max_contraction must lie"):
        load_spec(tmp_path / "b.toml")


def test_one_sided_case_is_not_estimable_in_typed_result() -> None:
    mod, df = _one_sided_case()
    assert set(mod) == {"slope", "effect_deficient", "effect_replete",
                        "deficient_minus_replete"}
    spec = load_spec(SPEC)
    priors = sampled_priors(spec, spec.outcome(OUTCOME))
    for q in mod.values():
        assert q["estimable"] is False
        assert "no trial above the cut-off" in q["reason"]
        # alder 8.9, birch 9.6, elm 9.2 and dogwood 11.1 umol/L all lie under the 11.32
        # cut-off; hazel has neither a level nor a category
        assert (q["n_above"], q["n_below"], q["n_measured"], q["n_category_only"]) \
            == (0, 4, 4, 0)
    # prior SD of the slope is the declared slope prior; the difference's is |x_d - x_r| sd
    assert mod["slope"]["prior_sd"] == pytest.approx(priors.slope_sd, rel=1e-12)
    assert mod["deficient_minus_replete"]["prior_sd"] == pytest.approx(
        abs(priors.x_deficient - priors.x_replete) * priors.slope_sd, rel=1e-12)
    # posterior SD from the draws: within 5% of the simulated 10% of the prior
    assert mod["slope"]["contraction"] == pytest.approx(0.1, rel=0.05)
    assert len(df) == 5


def _bundle_with_case(folder: Path) -> Path:
    """The report fixture with the one-sided case written into its continuous
    meta-regression, the outcome's moderator verdict and the deficiency claims."""
    mod, _ = _one_sided_case()
    raw = json.loads((FIXTURES / "zinc_testosterone.json").read_text(encoding="utf-8"))
    oc = raw["outcomes"][OUTCOME]
    oc["models"].pop("meta_regression_category")
    m = oc["models"]["meta_regression_continuous"]
    # distinctive numbers that appear nowhere else in the fixture report
    m["parameters"].update({
        "slope": {"mean": -7.77, "median": -7.77, "sd": 1.13, "q025": -9.91, "q975": -5.53},
        "effect_deficient": {"mean": 6.66, "median": 6.66, "sd": 1.13, "q025": 4.44,
                             "q975": 8.88},
        "effect_replete": {"mean": -3.33, "median": -3.33, "sd": 0.29, "q025": -4.46,
                           "q975": -2.28}})
    m["moderator"] = mod
    models = {k: ModelResult.model_validate(v) for k, v in oc["models"].items()}
    oc["moderator"] = outcome_moderator(models).model_dump()
    spec = load_spec(SPEC)
    claims = tuple(ClaimSpec(text=f"claim on {q}", outcome=OUTCOME, quantity=q,
                             model="meta_regression_continuous", threshold=0.0,
                             direction="increase")
                   for q in ("slope", "effect_deficient", "deficient_minus_replete"))
    typed = Bundle.model_validate(raw)
    raw["claims"] = [c.model_dump() for c in
                     claim_entries(dataclasses.replace(spec, claims=claims), typed.outcomes)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "zinc_testosterone.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_not_estimable_everywhere(tmp_path: Path) -> None:
    path = _bundle_with_case(tmp_path / "results")
    bundle = load_bundle(path)
    o = bundle.outcomes[OUTCOME]
    assert o.moderator is not None and o.moderator.estimable is False
    assert o.moderator.model == "meta_regression_continuous"
    assert "no trial above the cut-off" in o.moderator.reason
    # claims: verdict, no probability, no estimate
    assert {c.verdict for c in bundle.claims} == {"not estimable"}
    assert all(c.probability is None and c.estimate is None for c in bundle.claims)
    assert all(r["evidence"].startswith("Not estimable: no trial above the cut-off")
               for r in claim_rows(bundle))
    # headline and summary of findings
    head = headline(bundle, OUTCOME)["text"]
    assert "not estimable: no trial above the cut-off" in head
    assert "prior SD" in head and "posterior SD" in head
    rows = {r["outcome"]: r for r in summ.summary_rows(bundle, [])}
    assert "not estimable" in rows[OUTCOME]["comments"]
    assert "cannot be estimated" in summ.deficiency_sentence(bundle)
    # the rendered report shows none of the moderator numbers
    effects = pd.read_csv(FIXTURES / "effects.csv")
    studies = pd.read_csv(FIXTURES / "studies.csv")
    syntheses = pd.read_csv(FIXTURES / "syntheses.csv")
    page = render_evidence_base(path, effects, studies, syntheses,
                                tmp_path / "reports" / "zinc_testosterone").read_text(
        encoding="utf-8")
    assert "not estimable: no trial above the cut-off" in page
    for number in ("7.77", "9.91", "5.53", "6.66", "4.44", "8.88", "3.33", "4.46", "2.28"):
        assert number not in page, number


# --------------------------------------------------------------------------- priors on scale


def test_priors_as_multiples_of_unit_sd(tmp_path: Path) -> None:
    text = (ROOT / "analyses" / "magnesium_insulin.toml").read_text(encoding="utf-8")
    spec = load_spec(ROOT / "analyses" / "magnesium_insulin.toml")
    insulin = spec.outcome("fasting_insulin")
    alts = [insulin.resolve(p) for p in spec.sensitivity.tau_priors]
    # fasting insulin's alternatives are on its scale (unit SD 48.3 pmol/L), not 0.5/2/1 pmol/L
    assert [p.scale for p in alts] == pytest.approx([0.25 * 48.3, 48.3, 0.5 * 48.3], rel=1e-12)
    assert alts[1].label == "tau ~ HalfNormal(1 × unit SD = 48.3 pmol/L)"
    # the outcome's own priors as multiples resolve to multiple * unit_sd
    old = ('mu_prior_sd_multiple = 1.0\n'
           'tau_prior = { family = "half_normal", scale_multiple = 0.5 }\n'
           'slope_prior_sd_multiple = 4.0\nunit_sd = 48.3')
    assert old in text
    new = ('mu_prior_sd_multiple = 2.0\n'
           'tau_prior = { family = "half_normal", scale_multiple = 0.25 }\n'
           'slope_prior_sd_multiple = 3.0\nunit_sd = 48.3')
    (tmp_path / "m.toml").write_text(text.replace(old, new), encoding="utf-8")
    o = load_spec(tmp_path / "m.toml").outcome("fasting_insulin")
    assert (o.mu_prior_sd, o.tau_prior.scale, o.slope_prior_sd) == pytest.approx(
        (2 * 48.3, 0.25 * 48.3, 3 * 48.3), rel=1e-12)
    assert o.tau_prior.label == "tau ~ HalfNormal(0.25 × unit SD = 12.1 pmol/L)"
    # both forms, or a multiple without unit_sd, are errors naming the key
    both = text.replace(old, old.replace("mu_prior_sd_multiple = 1.0",
                                         "mu_prior_sd = 60.0\nmu_prior_sd_multiple = 2.0"))
    (tmp_path / "b.toml").write_text(both, encoding="utf-8")
    with pytest.raises(SpecError, match="exactly one of mu_prior_sd and mu_prior_sd_multiple"):
        load_spec(tmp_path / "b.toml")
    no_sd = text.replace(old, new).replace("unit_sd = 48.3\n", "")
    (tmp_path / "c.toml").write_text(no_sd, encoding="utf-8")
    with pytest.raises(SpecError, match="need unit_sd"):
        load_spec(tmp_path / "c.toml")


# --------------------------------------------------------------------------- cross-nutrient


def test_index_shows_multivariate_slope_only_when_estimable(tmp_path: Path) -> None:
    from nutrimeta.report import render_index
    from nutrimeta.results import load_cross

    cross = json.loads((FIXTURES / "cross_nutrient.json").read_text(encoding="utf-8"))

    def q(estimable: bool, post_sd: float) -> dict:
        return {"estimable": estimable, "reason": "posterior SD is 91% of the prior SD: the "
                "data barely inform it" if not estimable else "fine", "prior_sd": 1.0,
                "posterior_sd": post_sd, "contraction": post_sd, "n_measured": 5,
                "n_category_only": 9, "n_below": 6, "n_above": 4}

    cross["multivariate"] = [
        {"rho": 0.5, "primary": True, "status": "ok", "moderator": {"slope_global": q(True, 0.3)},
         "pooled_slope": {"mean": -7.77, "q025": -9.91, "q975": -5.53, "p_lt_0": 0.999}},
        {"rho": 0.8, "primary": False, "status": "ok",
         "moderator": {"slope_global": q(False, 0.91)}}]
    path = tmp_path / "cross_nutrient.json"
    path.write_text(json.dumps(cross), encoding="utf-8")
    typed = load_cross(path)
    assert typed.multivariate is not None and typed.multivariate[1].pooled_slope is None
    page = render_index([FIXTURES / "zinc_testosterone.json"], tmp_path / "reports",
                        path).read_text(encoding="utf-8")
    answer = page[page.index('id="deficiency-answer"'):]
    # the package's main answer to the deficiency question comes before the per-base cards
    assert page.index('id="deficiency-answer"') < page.index('id="base-')
    assert "rho = 0.5 (primary): pooled slope -7.77" in answer.replace("−", "-")
    assert ("rho = 0.8 (sensitivity): pooled slope not estimable: posterior SD is 91% of the "
            "prior SD") in answer


def test_index_hides_a_rejected_univariate_pooled_slope(tmp_path: Path) -> None:
    from nutrimeta.report import render_index

    cross = json.loads((FIXTURES / "cross_nutrient.json").read_text(encoding="utf-8"))
    assert cross["status"] == "ok"
    cross["pooled_slope"] = {"mean": -7.77, "q025": -9.91, "q975": -5.53, "p_lt_0": 0.999}
    cross["pooled_moderator"] = {
        "estimable": False, "reason": "no trial above the cut-off", "prior_sd": 2.0,
        "posterior_sd": 1.9, "contraction": 0.95, "n_measured": 0, "n_category_only": 3,
        "n_below": 3, "n_above": 0}
    path = tmp_path / "cross_nutrient.json"
    path.write_text(json.dumps(cross), encoding="utf-8")
    page = render_index([FIXTURES / "zinc_testosterone.json"], tmp_path / "reports",
                        path).read_text(encoding="utf-8")
    section = page[page.index('id="cross-nutrient"'):]
    assert "pooled slope of the effect on baseline status not estimable: no trial above" \
        in section
    for number in ("7.77", "9.91", "5.53"):
        assert number not in section, number
    assert "<img" not in section  # no slope figure either
