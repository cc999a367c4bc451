"""Forest plot rows, synthesis without meta-analysis (vote count, sign test, albatross plot) and
the reference list."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from nutrimeta.report import forest
from nutrimeta.report import references as refs
from nutrimeta.report import synthesis_without_ma as swim
from nutrimeta.report.figures import figure_style
from nutrimeta.results import OutcomeResult, load_bundle

FIXTURES = Path(__file__).parent / "fixtures" / "report"


@pytest.fixture()
def outcome() -> OutcomeResult:
    return load_bundle(FIXTURES / "zinc_testosterone.json").outcomes["total_testosterone"]


# --------------------------------------------------------------------------- sign test


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (9, 10), (3, 10), (5, 10), (12, 13),
                                      (0, 7), (20, 31)])
def test_sign_test_agrees_with_scipy_binomtest(k: int, n: int) -> None:
    ours = swim.sign_test(k, n)
    ref = stats.binomtest(k, n, 0.5, alternative="two-sided")
    ci = ref.proportion_ci(confidence_level=0.95, method="exact")
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-14)
    assert ours.ci_lower == pytest.approx(ci.low, abs=1e-10)
    assert ours.ci_upper == pytest.approx(ci.high, abs=1e-10)
    assert ours.proportion == k / n


def test_sign_test_hand_value() -> None:
    # 9 of 10: P(X <= 1) = 11/1024 per tail, two-sided 22/1024.
    assert swim.sign_test(9, 10).p_value == pytest.approx(22 / 1024, rel=1e-12)
    assert math.isnan(swim.sign_test(0, 0).p_value)
    with pytest.raises(ValueError, match="outside"):
        swim.sign_test(4, 3)


# --------------------------------------------------------------------------- vote count


def _effects(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = {"outcome": "total_testosterone", "subgroup": "", "design": "parallel_rct",
            "yi": math.nan, "sei": math.nan, "direction": None, "p_value": math.nan,
            "p_value_qualifier": None, "p_value_comparison": None, "n_intervention": math.nan,
            "n_control": math.nan, "n_total_reported": math.nan, "trial_id": None}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_votes_are_per_trial_and_oriented(outcome: OutcomeResult) -> None:
    eff = _effects([
        {"study_id": "alder1996", "trial_id": "alder1996", "yi": 3.1, "sei": 1.0,
         "n_intervention": 20, "n_control": 20},
        # A two-arm trial whose arms agree votes once.
        {"study_id": "birch2001", "trial_id": "birch2001", "subgroup": "a", "yi": 1.0,
         "sei": 1.0},
        {"study_id": "birch2001", "trial_id": "birch2001", "subgroup": "b", "yi": 2.0,
         "sei": 1.0},
        # Arms that disagree: mixed, no vote.
        {"study_id": "cedar2005", "trial_id": "cedar2005", "subgroup": "a", "yi": 1.0,
         "sei": 1.0},
        {"study_id": "cedar2005", "trial_id": "cedar2005", "subgroup": "b", "yi": -1.0,
         "sei": 1.0},
        {"study_id": "dogwood2008", "trial_id": "dogwood2008", "direction": "decrease",
         "p_value": 0.03, "p_value_qualifier": "<", "p_value_comparison": "between_arms",
         "n_total_reported": 40},
        # A direction for one arm only is not a direction of effect.
        {"study_id": "elm2012", "trial_id": "elm2012", "direction": "increase",
         "p_value": 0.01, "p_value_comparison": "within_arm"},
        {"study_id": "fir2016", "trial_id": "fir2016", "direction": "no_change"},
        # Not considered by the outcome's analyses: ignored.
        {"study_id": "zzz_other", "trial_id": "zzz_other", "yi": 5.0, "sei": 1.0},
    ])
    comps = swim.comparisons(outcome, "total_testosterone", eff)
    assert "zzz_other" not in set(comps["study_id"])
    v = swim.vote_count(comps)
    assert (v.favours_supplement, v.favours_control, v.mixed, v.no_direction,
            v.not_counted) == (2, 1, 1, 1, 1)
    assert v.test.p_value == pytest.approx(stats.binomtest(2, 3).pvalue)
    row = comps.set_index("study_id").loc["alder1996"]
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(3.1))
    assert row["n"] == 40
    dog = comps.set_index("study_id").loc["dogwood2008"]
    assert bool(dog["p_censored"]) and dog["n"] == 40
    # The same effects on an outcome where lower is better flip every vote.
    flipped = swim.vote_count(swim.comparisons(
        outcome.model_copy(update={"beneficial": "decrease"}), "total_testosterone", eff))
    assert (flipped.favours_supplement, flipped.favours_control) == (1, 2)
    with figure_style():
        fig = swim.albatross(comps, "Total testosterone")
    assert fig is not None
    assert "2 of 6 comparisons with a direction" in swim.caption(comps, "x")


def test_albatross_none_without_p_values(outcome: OutcomeResult) -> None:
    eff = _effects([{"study_id": "fir2016", "trial_id": "fir2016", "direction": "no_change"}])
    assert swim.albatross(swim.comparisons(outcome, "total_testosterone", eff), "x") is None


# --------------------------------------------------------------------------- forest


def test_author_year_and_favours() -> None:
    assert forest.author_year("Rayman", 2008) == "Rayman 2008"
    assert forest.author_year("Rayman", None) == "Rayman n.d."
    assert forest.author_year("unknown (not shown)", "2009") == "Anonymous 2009"
    assert forest.favours_labels("increase") == ("favours control", "favours supplement")
    assert forest.favours_labels("decrease") == ("favours supplement", "favours control")


def test_heterogeneity_line_from_reml(outcome: OutcomeResult) -> None:
    line = forest.heterogeneity_line(outcome)
    assert line.startswith("Heterogeneity (REML)")
    assert "tau² = 0.56" in line and "I² = 44%" in line and "Q = 10.70 (df = 6)" in line
    assert "p = 0.098" in line
    empty = outcome.model_copy(update={"frequentist": {}})
    assert "not estimable" in forest.heterogeneity_line(empty)


def test_multi_arm_trial_is_one_trial_with_its_arms(outcome: OutcomeResult) -> None:
    arm = outcome.studies[0]
    arms = [arm.model_copy(update={"subgroup": "low dose", "n_intervention": 99,
                                   "n_control": 90}),
            arm.model_copy(update={"subgroup": "high dose", "n_intervention": 95,
                                   "n_control": 90})]
    two_arm = outcome.model_copy(update={"studies": arms})
    eff = _effects([{"study_id": arm.study_id, "subgroup": s, "mean_intervention": m,
                     "sd_intervention": 0.6, "mean_control": 0.0, "sd_control": 0.59}
                    for s, m in (("low dose", 0.01), ("high dose", 0.08))])
    rows = forest.forest_rows(two_arm, "total_testosterone", eff)
    assert [r.trial_label for r in rows] == ["Alder 1996", "Alder 1996"]
    assert rows[0].arms == {"int": "0.01 (0.60), 99", "ctl": "0.00 (0.59), 90"}
    # The shared control arm is shown (and counted) once.
    assert rows[1].arms["ctl"] == "(shared control, above)"
    groups = forest._grouped(rows)
    assert len(groups) == 1 and len(groups[0][1]) == 1 and len(groups[0][1][0]) == 2
    with figure_style():
        assert forest.forest_plot(two_arm, "total_testosterone", eff, "TT") is not None
    assert forest.forest_plot(outcome.model_copy(update={"studies": []}),
                              "total_testosterone", eff, "TT") is None


# --------------------------------------------------------------------------- references


def test_reference_list_joins_bib_and_studies(tmp_path: Path) -> None:
    bib = tmp_path / "references.bib"
    bib.write_text(
        "@article{smith2010,\n  author = {Smith, Ann and M{\\\"u}ller, Jo and others},\n"
        "  title = {Zinc and {T}estosterone in Fran{\\c{c}}ois's cohort},\n"
        "  journal = {J Test},\n  year = {2010},\n"
        "  volume = {3},\n  pages = {1--9},\n  doi = {10.1000/xyz}\n}\n", encoding="utf-8")
    studies = pd.DataFrame([
        {"study_id": "smith2010", "citation_key": "smith2010", "pmid": "12345",
         "doi": None, "first_author": "Smith", "year": 2010},
        {"study_id": "smith2010b", "citation_key": "smith2010", "pmid": None, "doi": None,
         "first_author": "Smith", "year": 2010},
        {"study_id": "doe_nd", "citation_key": None, "pmid": None, "doi": None,
         "first_author": "Doe", "year": None}])
    out = refs.reference_list(studies, refs.read_bib(bib))
    assert [r.key for r in out] == ["doe_nd", "smith2010"]
    smith = out[1]
    assert smith.study_ids == ("smith2010", "smith2010b")
    assert smith.pmid == "12345" and smith.doi == "10.1000/xyz"
    assert smith.text == ("Smith, Müller et al. (2010). Zinc and Testosterone in François's "
                          "cohort. J Test 3:1–9.")
    assert out[0].text == "Doe (n.d.)." and out[0].pmid == out[0].doi == ""
    assert refs.read_bib(tmp_path / "missing.bib") == {}


# --------------------------------------------------------------------------- published syntheses


@pytest.mark.parametrize(("row", "outcome", "expected", "note"), [
    # 18.0156 g/mol glucose: 1 mg/dL = 1/18.0156 mmol/L.
    ({"measure": "WMD", "unit": "mg/dl", "estimate": -18.0156, "ci_lower": -36.0312,
      "ci_upper": 0.0}, "fasting_glucose", (-1.0, -2.0, 0.0), "converted from mg/dl"),
    ({"measure": "WMD", "unit": "mM", "estimate": -0.2, "ci_lower": -0.3, "ci_upper": -0.1},
     "fasting_glucose", (-0.2, -0.3, -0.1), "same unit"),
    ({"measure": "SMD", "unit": None, "estimate": -0.4}, "fasting_glucose", None,
     "standardised mean difference"),
    ({"measure": "WMD", "unit": None, "estimate": -0.4}, "fasting_glucose", None,
     "unit not reported"),
    ({"measure": "WMD", "unit": "mmol/L", "estimate": 0.02}, "hba1c", None,
     "not convertible: mmol/L to %"),
    # Insulin printed in mmol/L: a billion-fold rescaling is a unit error, not a conversion.
    ({"measure": "WMD", "unit": "mmol/L", "estimate": -2.2}, "fasting_insulin", None,
     "implausible"),
])
def test_published_syntheses_in_our_units(row: dict[str, object], outcome: str,
                                          expected: tuple[float, float, float] | None,
                                          note: str) -> None:
    from nutrimeta.report.syntheses import harmonised_estimate

    target = {"fasting_glucose": "mmol/L", "hba1c": "%", "fasting_insulin": "pmol/L"}[outcome]
    est, lo, hi, why = harmonised_estimate({**row, "package_measure": "MD",
                                            "package_unit": target}, outcome)
    assert note in why
    if expected is None:
        assert math.isnan(est) and math.isnan(lo) and math.isnan(hi)
    else:
        assert (est, lo, hi) == pytest.approx(expected, rel=1e-4, abs=1e-9)
