"""Risk of bias by domain (RoB 2 traffic lights) and the GRADE suggestions: graded on the
primary analysis, the optimal-information-size rule with trials of unknown n, ratio-of-means
details in % change."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from nutrimeta.report import grade, render_evidence_base
from nutrimeta.report import risk_of_bias as rob
from nutrimeta.report import tables as tbl
from nutrimeta.results import Bundle

FIXTURES = Path(__file__).parent / "fixtures"
ROB = FIXTURES / "risk_of_bias" / "risk_of_bias.csv"
REPORT = FIXTURES / "report"


# --------------------------------------------------------------------------- risk of bias


def test_fixture_file_loads_and_gives_the_overall_judgements() -> None:
    df = rob.load(ROB)
    assert df is not None and len(df) == 9
    assert rob.overall(df) == {"alder1996": "some concerns", "birch2001": "high",
                               "cedar2005": "low"}
    assert rob.load(ROB.with_name("absent.csv")) is None
    assert rob.overall(None) is None


def test_traffic_lights_one_row_per_trial_symbol_and_words() -> None:
    lights = rob.traffic_lights(rob.load(ROB), pd.DataFrame(), {"alder1996": "Alder 1996"})
    assert lights.tool == "RoB 2" and lights.domains == list(rob.DOMAINS)
    assert [r["label"] for r in lights.rows] == ["Alder 1996", "birch2001", "cedar2005"]
    alder = {d: c for d, c in zip(lights.domains, lights.rows[0]["cells"], strict=True)}
    assert (alder["D1 randomisation process"]["symbol"], alder["overall"]["judgement"]) == \
        ("+", "some concerns")
    assert alder["D5 selection of the reported result"]["symbol"] == "?"
    assert "No registered protocol" in alder["D5 selection of the reported result"]["title"]
    birch = dict(zip(lights.domains, lights.rows[1]["cells"], strict=True))
    assert birch["D1 randomisation process"]["css"] == "rob-high"
    assert birch["D3 missing outcome data"]["judgement"] == "not recorded"
    flat = rob.frame(lights)
    assert list(flat.columns) == ["study", *rob.DOMAINS]
    assert flat.loc[2, "overall"] == "low"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("D3 missing outcome data", "D3 attrition", 1),
     r"row 4, column domain: 'D3 attrition'"),
    (lambda t: t.replace(",high,D1", ",serious,D1", 1), r"row 9, column judgement: 'serious'"),
    (lambda t: t.replace("cedar2005,RoB 2", "cedar2005,ROBINS-I", 1), r"column tool: one tool"),
    (lambda t: t + "cedar2005,RoB 2,overall,high,again,cedar2005,\n",
     r"row 11, column domain: 'overall' already given for cedar2005"),
    (lambda t: t.replace("source_locator", "locator", 1), r"missing column\(s\) source_locator"),
])
def test_malformed_file_names_file_row_and_column(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "risk_of_bias.csv"
    path.write_text(edit(ROB.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        rob.load(path)
    assert str(path) in str(err.value)


def test_without_a_file_the_overall_column_is_shown() -> None:
    studies = pd.DataFrame({"study_id": ["a", "b", "c"],
                            "risk_of_bias": ["unclear", "some_concerns", ""]})
    lights = rob.traffic_lights(None, studies, {"a": "A 2001"})
    assert not lights.by_domain and lights.domains == ["overall"]
    assert [(r["label"], r["cells"][0]["judgement"]) for r in lights.rows] == \
        [("A 2001", "unclear"), ("b", "some concerns")]
    assert "not recorded" in lights.note and "mixes tools" in lights.note


def test_report_shows_the_traffic_lights_and_grade_uses_them(tmp_path: Path) -> None:
    effects, studies, syntheses = (pd.read_csv(REPORT / f"{n}.csv")
                                   for n in ("effects", "studies", "syntheses"))
    page = render_evidence_base(REPORT / "zinc_testosterone.json", effects, studies, syntheses,
                                tmp_path / "zinc_testosterone", risk_of_bias_csv=ROB)
    text = page.read_text(encoding="utf-8")
    section = text[text.index('<section id="risk-of-bias">'):]
    section = section[:section.index("</section>")]
    assert "Risk of bias by domain (RoB 2)" in section
    assert section.count("<tr><td>") == 3
    assert 'class="rob-dot rob-high"' in section and ">high</span>" in section
    md = (tmp_path / "zinc_testosterone" / "report.md").read_text(encoding="utf-8")
    assert "| Alder 1996 | low | some concerns | low | low | no information | some concerns |" \
        in md
    assert (tmp_path / "zinc_testosterone" / "tables" / "risk_of_bias.csv").is_file()
    # without the file: the overall column of studies.csv
    page2 = render_evidence_base(REPORT / "zinc_testosterone.json", effects, studies,
                                 syntheses, tmp_path / "other")
    assert "Risk of bias by domain is not recorded" in page2.read_text(encoding="utf-8")


def test_rob2_overall_feeds_grade_risk_of_bias() -> None:
    bundle = Bundle.model_validate_json((REPORT / "zinc_testosterone.json").read_text("utf-8"))
    studies = pd.read_csv(REPORT / "studies.csv")
    o = bundle.outcomes["total_testosterone"]
    w = {s.study_id: s.weight for s in o.studies}
    # every trial without a judgement counts as unclear; with the file, alder (some
    # concerns) and cedar (low) are not flagged, birch (high) is
    risk = {"alder1996": "some concerns", "birch2001": "high", "cedar2005": "low"}
    sof = tbl.summary_of_findings(bundle, studies, risk=risk)
    rob_domain = next(d for d in next(s for s in sof if s["outcome"] == "total_testosterone")
                      ["domains"] if d["domain"] == "risk of bias")
    flagged = sum(v for k, v in w.items() if k not in ("alder1996", "cedar2005"))
    assert f"{100 * flagged / sum(w.values()):.0f}% of the weight" in rob_domain["detail"]


# --------------------------------------------------------------------------- GRADE rules


@pytest.mark.parametrize(("n", "unknown", "down", "says"), [
    (399, 0, 1, "n < 400"),
    (420, 2, 0, "OIS met by the trials of known n alone"),
    (300, 1, 0, "OIS not assessable (trials with unknown n): judged on the interval alone"),
    (None, 3, 0, "n = 0 in the trials of known n; 3 trials with unknown n"),
])
def test_imprecision_never_counts_unknown_n_as_zero(n: float | None, unknown: int, down: int,
                                                    says: str) -> None:
    s = grade.imprecision({"q025": 0.2, "q975": 1.5}, 1.0, n, unknown)
    assert s.downgrade == down and says in s.detail
    # the interval still decides when the OIS cannot be assessed
    assert grade.imprecision({"q025": -0.2, "q975": 1.5}, 1.0, 300, 1).downgrade == 1
    assert "unknown n" in grade.RULE_IMPRECISION


def test_ratio_of_means_detail_in_percent_change() -> None:
    pct = lambda v: 100 * math.expm1(v)  # noqa: E731
    s = grade.imprecision({"q025": math.log(0.5), "q975": math.log(1.25)}, math.log(0.8),
                          500, 0, pct, "%")
    assert "95% interval -50.00% to 25.00%; MID -20.00%" in s.detail
    assert s.downgrade == 1  # includes no change and the MID (judged on the log scale)


def test_rob2_wording_of_judgements() -> None:
    assert grade.risk_of_bias([1, 1], ["no information", "low"]).detail.startswith("50%")
    assert grade.risk_of_bias([1, 1], ["some concerns", "low"]).detail.startswith("0%")


def test_grade_comes_from_the_primary_analysis() -> None:
    """With primary_analysis = all_reports the certainty, k, n and interval are those of the
    all-reports analysis, and the source is stated."""
    data = json.loads((REPORT / "zinc_testosterone.json").read_text("utf-8"))
    bundle = Bundle.model_validate(data)
    o = bundle.outcomes["total_testosterone"]
    conv = tbl.summary_of_findings(bundle, pd.DataFrame({"study_id": []}))
    row = next(s for s in conv if s["outcome"] == "total_testosterone")
    assert row["source"].startswith("Graded on the conventional analysis")
    from nutrimeta.analysis_results import AnalysisResult

    ar = AnalysisResult.model_validate({
        "k_trials": 3, "n_randomised": None,
        "mu": {"mean": 0.5, "q025": -0.4, "q975": 1.4,
               "p_benefit": {"quantity": "mu", "relation": ">", "threshold": 0.0,
                             "value": 0.8}},
        "contributions": [{"study_id": s, "route": r} for s, r in
                          (("alder1996", "full"), ("birch2001", "censored_ns"),
                           ("zzz2020", "sign"))]})
    o.analyses = {"all_reports": ar}
    effects = pd.DataFrame({"outcome": ["total_testosterone"] * 2,
                            "study_id": ["alder1996", "birch2001"], "subgroup": ["", ""],
                            "n_intervention": [30, 40], "n_control": [30, math.nan],
                            "n_total_reported": [math.nan, 90],
                            "design": ["parallel_rct"] * 2,
                            "baseline_status_category": ["deficient", "unknown"]})
    sof = tbl.summary_of_findings(bundle, pd.DataFrame({"study_id": []}), effects)
    row = next(s for s in sof if s["outcome"] == "total_testosterone")
    assert row["source"].startswith("Graded on the all-reports analysis (the primary")
    assert (row["k"], row["n_participants"], row["n_unknown_trials"]) == (3, 150.0, 1)
    imp = next(d for d in row["domains"] if d["domain"] == "imprecision")
    assert "95% interval -0.40 to 1.40" in imp["detail"]
    assert "OIS not assessable" in imp["detail"]
    assert "of the trials (each counted once)" in row["domains"][0]["detail"]
    inc = next(d for d in row["domains"] if d["domain"] == "inconsistency")
    assert "[I² and prediction interval from the conventional model, k = 7;" in inc["detail"]
    # one conventional trial: no I² or prediction interval is borrowed for inconsistency
    o.k = 1
    sof = tbl.summary_of_findings(bundle, pd.DataFrame({"study_id": []}), effects)
    row = next(s for s in sof if s["outcome"] == "total_testosterone")
    inc = next(d for d in row["domains"] if d["domain"] == "inconsistency")
    assert inc["suggestion"].startswith("not assessable")
