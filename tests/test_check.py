"""The reported-statistics checker: recomputed p-values against an independent reference
(scipy's t-test from summary statistics), the '±' reading rule on hand-built rows, and the
findings the shipped data must produce."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from nutrimeta.check import (
    ArmSummary,
    check_evidence,
    decided_readings,
    se_implied_by_p,
    welch,
)
from nutrimeta.cli import main
from nutrimeta.schema import RESULTS, STUDIES
from nutrimeta.validate import load_evidence

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped():
    ev = load_evidence(ROOT / "data")
    return ev, check_evidence(ev.studies, ev.results)


def _finding(findings, study_id, outcome, rule="unlabelled_reading"):
    hits = [f for f in findings if f.study_id == study_id and f.outcome == outcome
            and f.rule == rule]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.mark.parametrize("a,b", [
    ((10.0, 2.0, 25), (9.0, 2.0, 25)),
    ((3.8, 1.1, 32), (5.0, 1.3, 31)),
    ((-116.2, 68.4, 36), (262.8, 255.5, 35)),
    ((0.5, 0.1, 5), (0.2, 0.9, 40)),
])
def test_welch_matches_scipy(a, b) -> None:
    p, se, _df = welch(ArmSummary(*a), ArmSummary(*b))
    ref = stats.ttest_ind_from_stats(a[0], a[1], a[2], b[0], b[1], b[2], equal_var=False)
    assert p == pytest.approx(ref.pvalue, rel=1e-10)
    assert se == pytest.approx(math.sqrt(a[1] ** 2 / a[2] + b[1] ** 2 / b[2]), rel=1e-12)


def test_welch_hand_computed() -> None:
    # Equal SDs and n: Welch = Student, t = 1/sqrt(0.32) = 1.76777, df = 48.
    p, se, df = welch(ArmSummary(10.0, 2.0, 25), ArmSummary(9.0, 2.0, 25))
    assert se == pytest.approx(math.sqrt(0.32), rel=1e-12)
    assert df == pytest.approx(48.0, rel=1e-12)
    assert p == pytest.approx(0.083456, abs=1e-6)


def test_se_reading_divides_by_nothing() -> None:
    # Read as SEs, the SE of the difference is sqrt(se1^2 + se2^2).
    _, se, _ = welch(ArmSummary(1.0, 3.0, 10), ArmSummary(0.0, 4.0, 10), spread="se")
    assert se == pytest.approx(5.0)


def test_se_implied_by_p_round_trip() -> None:
    p, se, df = welch(ArmSummary(3.8, 1.1, 32), ArmSummary(5.0, 1.3, 31))
    assert se_implied_by_p(3.8 - 5.0, p, df) == pytest.approx(se, rel=1e-9)
    assert math.isnan(se_implied_by_p(1.0, 1.0, 10))


def _table(rows: list[dict], studies: list[dict] | None = None):
    st = studies or [{"study_id": "x2000", "n_randomised": None}]
    s = pd.DataFrame(st, columns=STUDIES.column_names)
    r = pd.DataFrame(rows, columns=RESULTS.column_names)
    r["_file"], r["_row"], r["_base"] = "x/results.csv", range(2, 2 + len(r)), "x"
    return s, r


def _pm(arm, mean, spread, n, **kw) -> dict:
    return dict(study_id="x2000", outcome="homa_ir", arm=arm, timepoint="follow_up", week=12,
                value_type="value", mean=mean, sd=spread, n=n,
                spread_as_printed="± (unlabelled)", **kw)


def test_printed_p_decides_se_reading() -> None:
    # True SEs 1.0 and 1.0 with n = 30: SE of the difference sqrt(2); p from that.
    p_true = 2 * stats.t.sf(2.0 / math.sqrt(2.0), 58)
    rows = [_pm("intervention", 12.0, 1.0, 30, p_value=round(p_true, 3), p_value_qualifier="=",
                p_value_comparison="between_arms"), _pm("control", 10.0, 1.0, 30)]
    f = check_evidence(*_table(rows))
    [u] = [x for x in f if x.rule == "unlabelled_reading"]
    assert u.reading == "se"
    assert u.numbers["ratio_se"] == pytest.approx(1.0, abs=0.05)
    assert u.numbers["ratio_sd"] == pytest.approx(math.sqrt(30), rel=0.05)
    assert u.severity == "error"  # the default SD reading is off by more than 3x


def test_printed_p_fitting_neither_reading_decides_nothing() -> None:
    rows = [_pm("intervention", 12.0, 1.0, 30, p_value=0.001, p_value_qualifier="=",
                p_value_comparison="between_arms"), _pm("control", 10.0, 1.0, 30)]
    [u] = [x for x in check_evidence(*_table(rows)) if x.rule == "unlabelled_reading"]
    assert u.reading == "" and "neither" in u.message


def test_labelled_sd_consistent_p_is_silent_and_inconsistent_is_flagged() -> None:
    p_ok = stats.ttest_ind_from_stats(12, 3, 30, 10, 3, 30, equal_var=False).pvalue
    base = dict(study_id="x2000", outcome="homa_ir", timepoint="follow_up", week=12,
                value_type="value", spread_as_printed="mean ± SD")
    ok = [dict(base, arm="intervention", mean=12, sd=3, n=30, p_value=round(p_ok, 4),
               p_value_qualifier="=", p_value_comparison="between_arms"),
          dict(base, arm="control", mean=10, sd=3, n=30)]
    assert check_evidence(*_table(ok)) == []
    bad = [dict(ok[0], p_value=0.6), ok[1]]
    [f] = check_evidence(*_table(bad))
    assert f.rule == "p_recompute" and f.severity == "error"  # significance flips


def test_order_and_dispersion_rules() -> None:
    rows = [dict(study_id="x2000", outcome="tsh", arm="intervention", timepoint="baseline",
                 value_type="value", median=5.0, q1=6.0, q3=8.0, n=10),
            dict(study_id="x2000", outcome="tsh", arm="control", timepoint="baseline",
                 value_type="value", mean=2.0, sd=9.0, n=10, spread_as_printed="mean ± SD")]
    rules = sorted(f.rule for f in check_evidence(*_table(rows)))
    assert rules == ["dispersion", "order"]


def test_equal_split_of_total_n_is_declared() -> None:
    rows = [_pm("intervention", 12.0, 1.0, None, p_value=0.01, p_value_qualifier="=",
                p_value_comparison="between_arms"), _pm("control", 10.0, 1.0, None)]
    f = check_evidence(*_table(rows, [{"study_id": "x2000", "n_randomised": 60}]))
    assert f and f[0].numbers["n_assumed"] == "equal split of n_randomised"


# ------------------------------------------------------------------ shipped data


def test_kyrgios2019_tpoab_reads_as_se(shipped) -> None:
    f = _finding(shipped[1], "kyrgios2019", "tpo_ab")
    assert f.reading == "se" and f.severity == "error"
    assert 6.0 < f.numbers["ratio_sd"] < 8.0  # printed p needs ~7x the SD reading's SE
    assert 0.8 < f.numbers["ratio_se"] < 1.3


def test_rodriguezmoran2003_p_more_conservative_than_sd_reading(shipped) -> None:
    for outcome in ("homa_ir", "fasting_glucose", "hba1c", "serum_magnesium"):
        f = _finding(shipped[1], "rodriguezmoran2003", outcome)
        assert 1.3 < f.numbers["ratio_sd"] < 1.8, outcome
        assert f.reading == "sd"


def test_guerreroromero2015_flagged(shipped) -> None:
    fpg = _finding(shipped[1], "guerreroromero2015", "fasting_glucose")
    assert 3.0 < fpg.numbers["ratio_sd"] < 3.5 and fpg.severity == "error"
    assert fpg.numbers["n_assumed"] == "equal split of n_randomised"
    homa = _finding(shipped[1], "guerreroromero2015", "homa_ir")
    assert 1.4 < homa.numbers["ratio_sd"] < 1.8


def test_data_records_every_decided_reading(shipped) -> None:
    """spread_reading in results.csv is set exactly where a printed p decides it."""
    ev, findings = shipped
    decided = decided_readings(findings)
    res = ev.results
    marked = res[res["spread_reading"].notna()]
    got = {(r.study_id, r.outcome, "" if pd.isna(r.subgroup) else r.subgroup): r.spread_reading
           for r in marked.itertuples()}
    assert got == decided
    assert decided[("kyrgios2019", "tpo_ab", "")] == "se"


def test_cli_writes_findings(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["check", "--data", str(ROOT / "data"),
                                    "--build", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "kyrgios2019" in out.output
    data = json.loads((tmp_path / "check" / "findings.json").read_text())
    assert {"rules", "findings"} <= set(data)
    table = pd.read_csv(tmp_path / "check" / "findings.csv")
    assert len(table) == len(data["findings"]) > 0
    strict = CliRunner().invoke(main, ["check", "--strict", "--data", str(ROOT / "data"),
                                       "--build", str(tmp_path)])
    assert strict.exit_code == 1


def test_larsen2024_printed_p_smaller_than_its_cis_imply(shipped) -> None:
    f = _finding(shipped[1], "larsen2024", "tpo_ab", rule="p_recompute")
    assert f.severity == "error"  # p = 0.016 printed, about 0.36 from the CIs
    assert 0.3 < f.numbers["ratio"] < 0.45
    z = stats.norm.ppf(0.975)
    se = math.hypot((math.log(2512) - math.log(1512)) / (2 * z),
                    (math.log(2951) - math.log(1862)) / (2 * z))
    assert f.numbers["se_from_cis"] == pytest.approx(se, rel=1e-3)


def test_printed_bound_can_decide_the_reading() -> None:
    # SD reading: p ~ 1e-9 (< 0.001 holds); SE reading: p ~ 0.2 (does not).
    rows = [_pm("intervention", 12.0, 5.0, 35, p_value=0.001, p_value_qualifier="<",
                p_value_comparison="between_arms"), _pm("control", 4.0, 5.0, 35)]
    [u] = check_evidence(*_table(rows))
    assert u.rule == "unlabelled_reading" and u.reading == "sd" and u.severity == "info"


def test_findings_as_validation_warnings(shipped) -> None:
    from nutrimeta.check import as_problems

    problems = as_problems(shipped[1])
    assert problems and all(p.severity == "warning" for p in problems)
    assert len(problems) == sum(f.severity != "info" for f in shipped[1])
    assert any("kyrgios2019" in str(p) and "results.csv row" in str(p) for p in problems)
