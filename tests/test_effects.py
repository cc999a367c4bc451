"""Tests for nutrimeta.effects.compute_effects on small hand-built tables.

Every expected yi/vi is computed here from the textbook formula (Cochrane Handbook ch. 6;
metafor escalc definitions; Wan 2014 / Luo 2018), not by calling nutrimeta.conversions.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nutrimeta.effects import (
    EFFECT_COLUMNS,
    REASON_P_ONLY,
    EffectSettings,
    compute_effects,
    effects_fingerprint,
)
from nutrimeta.schema import RESULTS, STUDIES

TT = "total_testosterone"
F = 10 / 288.42  # ng/dL -> nmol/L for testosterone (molar mass 288.42 g/mol)
ROOT = Path(__file__).resolve().parents[1]


def study(sid: str, design: str = "parallel_rct", status: str = "included", **kw) -> dict:
    rec = {c: None for c in STUDIES.column_names}
    rec.update(study_id=sid, evidence_base="zinc_testosterone", citation_key=sid,
               first_author=sid[:-4].title(), year=int(sid[-4:]), design=design,
               intervention_direction="supplementation", population="men",
               nutrient="zinc", inclusion_status=status,
               baseline_status_category="unknown", baseline_status_justification="n/a")
    rec.update(kw)
    return rec


def res(sid: str, arm: str, timepoint: str, value_type: str = "value", week=None,
        outcome: str = TT, unit: str = "nmol/L", **kw) -> dict:
    rec = {c: None for c in RESULTS.column_names}
    if timepoint == "follow_up" and week is None:
        week = 12
    rec.update(study_id=sid, outcome=outcome, arm=arm, timepoint=timepoint,
               value_type=value_type, week=week, unit=unit, source_id="1",
               source_url="https://example.org", locator="table 2", source_type="primary")
    rec.update(kw)
    return rec


def frames(studies: list[dict], results: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.DataFrame(studies, columns=STUDIES.column_names),
            pd.DataFrame(results, columns=RESULTS.column_names))


def one(df: pd.DataFrame, sid: str, outcome: str = TT, subgroup: str = "") -> pd.Series:
    sel = df[(df.study_id == sid) & (df.outcome == outcome) & (df.subgroup == subgroup)]
    assert len(sel) == 1, sel
    return sel.iloc[0]


# ------------------------------------------------------------------------------ fixture

STUDIES_ROWS = [
    study("diff2000"),
    study("chg2001"),
    study("fin2002"),
    study("bf2003"),
    study("sa2004", design="single_arm_prepost"),
    study("med2005"),
    study("se2006"),
    study("p2007"),
    study("np2008", status="not_poolable", inclusion_reason="completer-only analysis"),
    study("sep2009", status="separate", inclusion_reason="women with PCOS"),
    study("co2010", design="crossover_rct"),
    study("gm2011"),
    study("pd2012"),
    study("nd2013"),
    study("wk2014"),
]

RESULTS_ROWS = [
    # (a) reported between-arm difference with a 95% CI, n = 40 in total.
    res("diff2000", "contrast", "follow_up", "difference", n=40, mean=1.2, ci_lower=0.2,
        ci_upper=2.2, ci_level=0.95),
    # (b) two arms with reported change scores.
    res("chg2001", "intervention", "follow_up", "change", n=15, mean=2.0, sd=1.5),
    res("chg2001", "control", "follow_up", "change", n=14, mean=0.5, sd=1.2),
    # (b) two arms, final values only, printed in ng/dL.
    res("fin2002", "intervention", "follow_up", n=22, mean=520, sd=110, unit="ng/dL"),
    res("fin2002", "control", "follow_up", n=21, mean=480, sd=100, unit="ng/dL"),
    # (b) baseline and follow-up values; intervention row carries its own r = 0.8.
    res("bf2003", "intervention", "baseline", n=12, mean=14, sd=4),
    res("bf2003", "intervention", "follow_up", n=12, mean=16, sd=5, prepost_correlation=0.8),
    res("bf2003", "control", "baseline", n=11, mean=15, sd=4.5),
    res("bf2003", "control", "follow_up", n=11, mean=15.2, sd=4),
    # (c) single-arm pre/post.
    res("sa2004", "single_arm", "baseline", n=20, mean=12, sd=3),
    res("sa2004", "single_arm", "follow_up", n=20, mean=14, sd=3.5),
    # median/IQR control arm.
    res("med2005", "intervention", "follow_up", n=30, mean=18, sd=5),
    res("med2005", "control", "follow_up", n=30, median=15, q1=12, q3=19),
    # SE-only arms.
    res("se2006", "intervention", "follow_up", n=16, mean=17, se=1.0),
    res("se2006", "control", "follow_up", n=16, mean=15, se=0.9),
    # only a p-value and a direction.
    res("p2007", "intervention", "follow_up", "change", n=10, p_value=0.03,
        p_value_qualifier="=", p_value_comparison="within_arm", direction="increase"),
    # computable but not included.
    res("np2008", "intervention", "follow_up", "change", n=10, mean=1.0, sd=1.0),
    res("np2008", "control", "follow_up", "change", n=10, mean=0.0, sd=1.0),
    res("sep2009", "intervention", "follow_up", "change", n=10, mean=1.0, sd=1.0),
    res("sep2009", "control", "follow_up", "change", n=10, mean=0.0, sd=1.0),
    # crossover.
    res("co2010", "intervention", "follow_up", n=18, mean=16, sd=4),
    res("co2010", "control", "follow_up", n=18, mean=15, sd=4),
    # geometric mean with CI in one arm.
    res("gm2011", "intervention", "follow_up", n=25, geometric_mean=16.0, ci_lower=14.0,
        ci_upper=18.3, ci_level=0.95),
    res("gm2011", "control", "follow_up", n=25, mean=15.0, sd=4.0),
    # (a) difference with an exact p-value only, n = 50.
    res("pd2012", "contrast", "follow_up", "difference", n=50, mean=2.0, p_value=0.01,
        p_value_qualifier="=", p_value_comparison="between_arms"),
    # means without any dispersion.
    res("nd2013", "intervention", "follow_up", n=10, mean=16),
    res("nd2013", "control", "follow_up", n=10, mean=15),
    # two follow-up weeks.
    res("wk2014", "intervention", "follow_up", week=6, n=20, mean=15.5, sd=4),
    res("wk2014", "control", "follow_up", week=6, n=20, mean=15.0, sd=4),
    res("wk2014", "intervention", "follow_up", week=12, n=19, mean=17.0, sd=4),
    res("wk2014", "control", "follow_up", week=12, n=20, mean=15.0, sd=4),
]


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return frames(STUDIES_ROWS, RESULTS_ROWS)


@pytest.fixture(scope="module")
def md(tables) -> pd.DataFrame:
    return compute_effects(*tables, EffectSettings())


# ------------------------------------------------------------------------ table shape


def test_columns_match_pipeline_doc(md: pd.DataFrame) -> None:
    text = (ROOT / "docs" / "pipeline.md").read_text(encoding="utf-8")
    section = text.split("## Effect-size table")[1].split("\n## ")[0]
    documented: list[str] = []
    for line in section.splitlines():
        m = re.match(r"^\|\s*([a-z_, ]+?)\s*\|", line)
        if m and m.group(1) != "column":
            documented += [c.strip() for c in m.group(1).split(",")]
    assert documented == list(EFFECT_COLUMNS)
    assert list(md.columns) == list(EFFECT_COLUMNS)
    assert len(md) == len({(r["study_id"], r["outcome"]) for r in RESULTS_ROWS})


def test_every_poolable_row_has_derivation_and_finite_effect(md: pd.DataFrame) -> None:
    pool = md[md.poolable]
    assert len(pool) > 0
    assert (pool.derivation.str.len() > 0).all()
    assert np.isfinite(pool.yi).all() and (pool.vi > 0).all()
    np.testing.assert_allclose(pool.sei, np.sqrt(pool.vi))
    assert (pool.reason == "").all()
    nonpool = md[~md.poolable]
    assert (nonpool.reason.str.len() > 0).all()


# --------------------------------------------------------------------------- paths


def test_difference_row_with_ci(md: pd.DataFrame) -> None:
    r = one(md, "diff2000")
    se = (2.2 - 0.2) / (2 * stats.t.ppf(0.975, 38))  # t with n-2 df (n = 40 < 60)
    assert r.poolable
    assert r.yi == pytest.approx(1.2)
    assert r.vi == pytest.approx(se**2)
    assert "between-arm difference" in r.derivation


def test_difference_row_with_p_value(md: pd.DataFrame) -> None:
    r = one(md, "pd2012")
    se = 2.0 / stats.t.isf(0.005, 48)  # Cochrane Handbook 6.5.2.3
    assert r.yi == pytest.approx(2.0)
    assert r.vi == pytest.approx(se**2)


def test_two_arm_reported_change(md: pd.DataFrame) -> None:
    r = one(md, "chg2001")
    assert r.yi == pytest.approx(1.5)
    assert r.vi == pytest.approx(1.5**2 / 15 + 1.2**2 / 14)
    assert "change scores" in r.derivation
    assert (r.n_intervention, r.n_control) == (15, 14)
    assert r.effect_unit == "nmol/L"


def test_two_arm_final_with_unit_conversion(md: pd.DataFrame) -> None:
    r = one(md, "fin2002")
    assert r.yi == pytest.approx(40 * F)
    assert r.vi == pytest.approx((110 * F) ** 2 / 22 + (100 * F) ** 2 / 21)
    assert "final values" in r.derivation and "ng/dL->nmol/L" in r.derivation
    assert math.isnan(r.prepost_correlation)


def test_baseline_and_final_with_r(md: pd.DataFrame) -> None:
    r = one(md, "bf2003")
    sd_i = math.sqrt(4**2 + 5**2 - 2 * 0.8 * 4 * 5)  # row's own r = 0.8
    sd_c = math.sqrt(4.5**2 + 4**2 - 2 * 0.5 * 4.5 * 4)  # default r = 0.5
    assert r.yi == pytest.approx((16 - 14) - (15.2 - 15))
    assert r.vi == pytest.approx(sd_i**2 / 12 + sd_c**2 / 11)
    assert r.prepost_correlation == pytest.approx(0.8)
    assert "r=0.8" in r.derivation and "r=0.5" in r.derivation


def test_prefer_final(tables) -> None:
    df = compute_effects(*tables, EffectSettings(prefer="final"))
    r = one(df, "bf2003")
    assert r.yi == pytest.approx(16 - 15.2)
    assert r.vi == pytest.approx(25 / 12 + 16 / 11)


def test_default_correlation_is_used(tables) -> None:
    df = compute_effects(*tables, EffectSettings(prepost_correlation=0.2))
    r = one(df, "sa2004")
    assert r.vi == pytest.approx((9 + 12.25 - 2 * 0.2 * 3 * 3.5) / 20)
    assert r.prepost_correlation == pytest.approx(0.2)


def test_single_arm(md: pd.DataFrame) -> None:
    r = one(md, "sa2004")
    assert r.poolable
    assert r.yi == pytest.approx(2.0)
    assert r.vi == pytest.approx((9 + 12.25 - 2 * 0.5 * 3 * 3.5) / 20)
    assert pd.isna(r.n_control) and r.n_intervention == 20
    assert "single-arm" in r.derivation


def test_median_iqr_arm(md: pd.DataFrame) -> None:
    r = one(md, "med2005")
    n = 30
    w = 0.7 + 0.39 / n  # Luo et al. 2018, median + IQR
    mean_c = w * (12 + 19) / 2 + (1 - w) * 15
    sd_c = (19 - 12) / (2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25)))  # Wan 2014
    assert r.yi == pytest.approx(18 - mean_c)
    assert r.vi == pytest.approx(25 / 30 + sd_c**2 / 30)
    assert "Luo 2018" in r.derivation and "Wan 2014" in r.derivation


def test_se_only_arms(md: pd.DataFrame) -> None:
    r = one(md, "se2006")
    assert r.yi == pytest.approx(2.0)
    # sd = se*sqrt(n), so vi = se1^2 + se2^2.
    assert r.vi == pytest.approx(1.0**2 + 0.9**2)
    assert "SD from SE" in r.derivation


def test_geometric_mean_arm(md: pd.DataFrame) -> None:
    r = one(md, "gm2011")
    n = 25
    s = (math.log(18.3) - math.log(14.0)) / (2 * stats.t.ppf(0.975, n - 1)) * math.sqrt(n)
    mean_i = math.exp(math.log(16.0) + s**2 / 2)
    sd_i = mean_i * math.sqrt(math.exp(s**2) - 1)
    assert r.yi == pytest.approx(mean_i - 15.0)
    assert r.vi == pytest.approx(sd_i**2 / n + 16 / n)


def test_p_value_only_not_poolable(md: pd.DataFrame) -> None:
    r = one(md, "p2007")
    assert not r.poolable
    assert r.reason == REASON_P_ONLY
    assert r.direction == "increase"
    assert r.p_value == pytest.approx(0.03)
    assert math.isnan(r.yi) and r.derivation == ""


def test_no_dispersion(md: pd.DataFrame) -> None:
    r = one(md, "nd2013")
    assert not r.poolable
    assert "no dispersion reported" in r.reason


def test_not_included_studies_never_poolable(md: pd.DataFrame) -> None:
    r = one(md, "np2008")
    assert not r.poolable
    assert r.reason.startswith("study inclusion_status is not_poolable: completer-only")
    assert r.yi == pytest.approx(1.0)  # still computed for sensitivity analyses
    r = one(md, "sep2009")
    assert not r.poolable
    assert r.reason.startswith("separate population: women with PCOS")


def test_crossover_stated(md: pd.DataFrame) -> None:
    r = one(md, "co2010")
    assert r.poolable
    assert r.yi == pytest.approx(1.0)
    assert r.vi == pytest.approx(16 / 18 + 16 / 18)
    assert "crossover analysed as parallel arms" in r.derivation


def test_last_week_and_explicit_week(md: pd.DataFrame, tables) -> None:
    r = one(md, "wk2014")
    assert r.week == 12
    assert r.yi == pytest.approx(2.0)
    assert r.vi == pytest.approx(16 / 19 + 16 / 20)
    df6 = compute_effects(*tables, EffectSettings(timepoint=6))
    r6 = one(df6, "wk2014")
    assert r6.week == 6 and r6.yi == pytest.approx(0.5)


# ----------------------------------------------------------------- SMD and ROM


def _g(m1, s1, n1, m2, s2, n2):
    # metafor escalc(measure="SMD"), exact J, vtype="LS".
    m = n1 + n2 - 2
    j = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
    sp = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / m)
    g = j * (m1 - m2) / sp
    return g, 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))


def test_smd_uses_final_values_when_available(tables) -> None:
    df = compute_effects(*tables, EffectSettings(measures={TT: "SMD"}))
    r = one(df, "bf2003")
    g, v = _g(16, 5, 12, 15.2, 4, 11)
    assert r.yi == pytest.approx(g) and r.vi == pytest.approx(v)
    assert r.effect_unit == "" and "final values" in r.derivation
    # Only change scores available: SMD of change, and the derivation says so.
    r = one(df, "chg2001")
    g, v = _g(2.0, 1.5, 15, 0.5, 1.2, 14)
    assert r.yi == pytest.approx(g) and r.vi == pytest.approx(v)
    assert "change scores" in r.derivation and "not available" in r.derivation
    # Units cancel in the SMD.
    r = one(df, "fin2002")
    g, v = _g(520, 110, 22, 480, 100, 21)
    assert r.yi == pytest.approx(g) and r.vi == pytest.approx(v)


def test_smd_from_difference_row(tables) -> None:
    df = compute_effects(*tables, EffectSettings(measures={TT: "SMD"}))
    r = one(df, "diff2000")
    se = (2.2 - 0.2) / (2 * stats.t.ppf(0.975, 38))
    sd = se / math.sqrt(1 / 20 + 1 / 20)  # equal allocation of n = 40 assumed
    m = 38
    j = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
    g = j * 1.2 / sd
    assert r.yi == pytest.approx(g)
    assert r.vi == pytest.approx(0.1 + g**2 / 80)
    assert "equal allocation" in r.derivation


def test_rom(tables) -> None:
    df = compute_effects(*tables, EffectSettings(measures={TT: "ROM"}))
    r = one(df, "fin2002")
    assert r.yi == pytest.approx(math.log(520 / 480))
    assert r.vi == pytest.approx(110**2 / (22 * 520**2) + 100**2 / (21 * 480**2))
    assert r.effect_unit == "log ratio"
    # ROM always uses final values, even when change scores would be preferred.
    r = one(df, "bf2003")
    assert r.yi == pytest.approx(math.log(16 / 15.2))
    # ROM cannot come from a reported difference or from change scores alone.
    assert not one(df, "diff2000").poolable
    assert not one(df, "chg2001").poolable


def test_single_arm_rom_and_smd(tables) -> None:
    df = compute_effects(*tables, EffectSettings(measures={TT: "ROM"}))
    r = one(df, "sa2004")
    # metafor ROMC: log(m2/m1), vi = sd2^2/(n m2^2) + sd1^2/(n m1^2) - 2 r sd1 sd2/(n m1 m2)
    assert r.yi == pytest.approx(math.log(14 / 12))
    assert r.vi == pytest.approx(
        3.5**2 / (20 * 14**2) + 3**2 / (20 * 12**2) - 2 * 0.5 * 3 * 3.5 / (20 * 12 * 14))
    df = compute_effects(*tables, EffectSettings(measures={TT: "SMD"}))
    r = one(df, "sa2004")
    # metafor SMCR: J(n-1) (m2 - m1)/sd1, vi = 2(1-r)/n + yi^2/(2n).
    m = 19
    j = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
    y = j * 2 / 3
    assert r.yi == pytest.approx(y)
    assert r.vi == pytest.approx(2 * 0.5 / 20 + y**2 / 40)


# ------------------------------------------------------------ invariances (property)


def _swap(rows: list[dict]) -> list[dict]:
    sw = {"intervention": "control", "control": "intervention"}
    return [{**r, "arm": sw.get(r["arm"], r["arm"])} for r in rows]


@pytest.mark.parametrize("measure", ["MD", "SMD", "ROM"])
def test_swapping_arms_flips_sign(tables, measure: str) -> None:
    two_arm = [r for r in RESULTS_ROWS if r["arm"] in ("intervention", "control")]
    s = EffectSettings(measures={TT: measure})
    a = compute_effects(tables[0], frames(STUDIES_ROWS, two_arm)[1], s)
    b = compute_effects(tables[0], frames(STUDIES_ROWS, _swap(two_arm))[1], s)
    ok = a.poolable | a.yi.notna()
    assert ok.sum() >= 5
    np.testing.assert_allclose(a.yi[ok], -b.yi[ok], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.vi[ok], b.vi[ok], rtol=1e-10)


arm_stats = st.tuples(st.floats(100, 1500), st.floats(5, 400), st.integers(3, 200))


@settings(max_examples=25, deadline=None)
@given(i=arm_stats, c=arm_stats, unit=st.sampled_from(["ng/dL", "ng/mL", "pg/mL"]))
def test_md_invariant_to_unit_harmonisation(i, c, unit) -> None:
    # The same trial recorded in ng/dL (or another mass unit) and in nmol/L (converted by
    # hand) gives the same MD in nmol/L.
    f = {"ng/dL": F, "ng/mL": 100 * F, "pg/mL": 0.1 * F}[unit]
    rows = [
        res("u2000", "intervention", "follow_up", n=i[2], mean=i[0], sd=i[1], unit=unit),
        res("u2000", "control", "follow_up", n=c[2], mean=c[0], sd=c[1], unit=unit),
        res("v2000", "intervention", "follow_up", n=i[2], mean=i[0] * f, sd=i[1] * f),
        res("v2000", "control", "follow_up", n=c[2], mean=c[0] * f, sd=c[1] * f),
    ]
    df = compute_effects(*frames([study("u2000"), study("v2000")], rows))
    u, v = one(df, "u2000"), one(df, "v2000")
    assert u.yi == pytest.approx(v.yi, rel=1e-9, abs=1e-12)
    assert u.vi == pytest.approx(v.vi, rel=1e-9)
    assert u.yi == pytest.approx((i[0] - c[0]) * f, rel=1e-9, abs=1e-12)


# ----------------------------------------------------------- other study-level output


def test_baseline_status_standardised() -> None:
    studies = [
        study("z2000", baseline_status_value=70.0, baseline_status_unit="ug/dL",
              baseline_status_specimen="serum"),
        study("s2000", nutrient="selenium", evidence_base="selenium_thyroid",
              baseline_status_value=1.0, baseline_status_unit="umol/L",
              baseline_status_specimen="plasma"),
        study("m2000", nutrient="magnesium", evidence_base="magnesium_insulin",
              baseline_status_value=2.0, baseline_status_unit="mg/dL"),
        study("h2000", baseline_status_value=150.0, baseline_status_unit="ug/g",
              baseline_status_specimen="hair"),
    ]
    rows = [res(s["study_id"], "contrast", "follow_up", "difference", n=20, mean=1.0, se=0.5)
            for s in studies]
    df = compute_effects(*frames(studies, rows))
    assert one(df, "z2000").baseline_status_value_std == pytest.approx(700 / 65.38)
    assert one(df, "s2000").baseline_status_value_std == pytest.approx(78.971)
    assert one(df, "m2000").baseline_status_value_std == pytest.approx(20 / 24.305)
    assert math.isnan(one(df, "h2000").baseline_status_value_std)


def test_alt_source_subgroup_not_poolable() -> None:
    rows = [
        res("a2000", "contrast", "follow_up", "difference", n=20, mean=1.0, se=0.5),
        res("a2000", "contrast", "follow_up", "difference", n=20, mean=1.1, se=0.5,
            subgroup="alt-source:smith2020"),
    ]
    df = compute_effects(*frames([study("a2000")], rows))
    assert one(df, "a2000").poolable
    alt = one(df, "a2000", subgroup="alt-source:smith2020")
    assert not alt.poolable and "alternative source" in alt.reason


def test_unconvertible_unit_reason() -> None:
    rows = [res("a2000", "contrast", "follow_up", "difference", n=20, mean=1.0, se=0.5,
                unit="IU/mL")]
    r = one(compute_effects(*frames([study("a2000")], rows)), "a2000")
    assert not r.poolable and "IU/mL" in r.reason and "nmol/L" in r.reason


def test_fingerprint(md: pd.DataFrame, tables) -> None:
    again = compute_effects(*tables, EffectSettings())
    assert effects_fingerprint(md) == effects_fingerprint(again)
    assert re.fullmatch(r"[0-9a-f]{64}", effects_fingerprint(md))
    changed = md.copy()
    changed.loc[0, "yi"] = changed.loc[0, "yi"] + 1e-6
    assert effects_fingerprint(changed) != effects_fingerprint(md)


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        EffectSettings(prefer="baseline")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EffectSettings(measures={TT: "OR"})
    with pytest.raises(ValueError):
        EffectSettings(prepost_correlation=1.5)
    s = EffectSettings()
    assert s.measure_for(TT) == "MD" and s.unit_for("tpo_ab") == "IU/mL"


def test_rom_of_geometric_means_from_ci_without_n() -> None:
    """larsen2024-style rows: geometric means with 95% CIs, no n. The log ratio and its
    variance come from the CIs on the log scale (z), with no log-normal back-transformation."""
    rows = [
        res("g2000", "intervention", "follow_up", geometric_mean=1995.0, ci_lower=1512.0,
            ci_upper=2512.0, ci_level=0.95, unit="IU/mL", outcome="tpo_ab"),
        res("g2000", "control", "follow_up", geometric_mean=2344.0, ci_lower=1862.0,
            ci_upper=2951.0, ci_level=0.95, unit="IU/mL", outcome="tpo_ab"),
    ]
    df = compute_effects(*frames([study("g2000")], rows),
                         EffectSettings(measures={"tpo_ab": "ROM"}))
    r = one(df, "g2000", outcome="tpo_ab")
    z = stats.norm.ppf(0.975)
    v1 = ((math.log(2512) - math.log(1512)) / (2 * z)) ** 2
    v2 = ((math.log(2951) - math.log(1862)) / (2 * z)) ** 2
    assert r.poolable
    assert r.yi == pytest.approx(math.log(1995 / 2344), rel=1e-12)
    assert r.vi == pytest.approx(v1 + v2, rel=1e-12)
    assert "geometric" in r.derivation and "log-normal" not in r.derivation


def test_geometric_rom_uses_t_for_small_known_n() -> None:
    rows = [
        res("g2001", "intervention", "follow_up", n=20, geometric_mean=10.0, ci_lower=8.0,
            ci_upper=12.5, unit="IU/mL", outcome="tpo_ab"),
        res("g2001", "control", "follow_up", n=25, geometric_mean=12.0, ci_lower=10.0,
            ci_upper=14.4, unit="IU/mL", outcome="tpo_ab"),
    ]
    r = one(compute_effects(*frames([study("g2001")], rows),
                            EffectSettings(measures={"tpo_ab": "ROM"})), "g2001",
            outcome="tpo_ab")
    t1, t2 = stats.t.ppf(0.975, 19), stats.t.ppf(0.975, 24)
    expected = ((math.log(12.5) - math.log(8.0)) / (2 * t1)) ** 2 + \
        ((math.log(14.4) - math.log(10.0)) / (2 * t2)) ** 2
    assert r.vi == pytest.approx(expected, rel=1e-12)


def test_row_spread_reading_overrides_policy() -> None:
    """A bare '±' decided as an SE for a row is read as an SE whatever the default."""
    base = dict(spread_as_printed="± (unlabelled)")
    rows = [
        res("p2000", "intervention", "follow_up", n=25, mean=10.0, sd=1.0, spread_reading="se",
            **base),
        res("p2000", "control", "follow_up", n=25, mean=9.0, sd=1.0, spread_reading="se",
            **base),
    ]
    r = one(compute_effects(*frames([study("p2000")], rows),
                            EffectSettings(prefer="final")), "p2000")
    # SE read: sd = se*sqrt(n) -> vi = 2 * (1*sqrt(25))^2 / 25 = 2
    assert r.vi == pytest.approx(2.0)
    rows_sd = [dict(r_, spread_reading="sd", se=r_["sd"], sd=None) for r_ in rows]
    r = one(compute_effects(*frames([study("p2000")], rows_sd),
                            EffectSettings(prefer="final")), "p2000")
    assert r.vi == pytest.approx(2 * 1.0 / 25)


def test_stratum_status_overrides_study_category() -> None:
    rows = [res("h2001", "contrast", "follow_up", "difference", n=20, mean=1.0, se=0.5,
                subgroup="low Se", subgroup_status_category="deficient"),
            res("h2001", "contrast", "follow_up", "difference", n=20, mean=1.0, se=0.5,
                subgroup="high Se")]
    df = compute_effects(*frames([study("h2001", baseline_status_category="unknown")], rows))
    assert one(df, "h2001", subgroup="low Se").baseline_status_category == "deficient"
    assert one(df, "h2001", subgroup="high Se").baseline_status_category == "unknown"


def test_shipped_larsen2024_enters_by_geometric_means() -> None:
    from nutrimeta.validate import load_evidence

    ev = load_evidence(ROOT / "data")
    st_ = ev.studies[ev.studies["study_id"] == "larsen2024"]
    rs = ev.results[ev.results["study_id"] == "larsen2024"]
    df = compute_effects(st_, rs, EffectSettings(measures={"tpo_ab": "ROM"}))
    r = one(df, "larsen2024", outcome="tpo_ab")
    assert r.poolable
    assert r.yi == pytest.approx(math.log(1995 / 2344), rel=1e-9)
    assert math.sqrt(r.vi) == pytest.approx(0.1748, abs=5e-4)


def test_ionized_magnesium_baseline_not_used_as_moderator() -> None:
    from nutrimeta.validate import load_evidence

    ev = load_evidence(ROOT / "data")
    st_ = ev.studies[ev.studies["study_id"] == "barbagallo2010"]
    assert st_.iloc[0]["baseline_status_specimen"] == "other"
    rows = [res("barbagallo2010", "contrast", "follow_up", "difference", n=20, mean=1.0, se=0.5,
                outcome="fasting_glucose", unit="mmol/L")]
    df = compute_effects(st_.drop(columns=["_file", "_row", "_base"]), pd.DataFrame(
        rows, columns=RESULTS.column_names))
    assert math.isnan(one(df, "barbagallo2010", outcome="fasting_glucose")
                      .baseline_status_value_std)


def test_row_reading_is_stated_in_the_derivation() -> None:
    rows = [res("p2001", arm, "follow_up", n=25, mean=m, sd=1.0, spread_reading="sd",
                spread_as_printed="± (unlabelled)") for arm, m in (("intervention", 10.0),
                                                                    ("control", 9.0))]
    r = one(compute_effects(*frames([study("p2001")], rows), EffectSettings(prefer="final")),
            "p2001")
    assert "read as SD, as its printed p-value decides" in r.derivation


def test_rom_from_change_scores_keeps_the_contrast_direction() -> None:
    """A ratio of means needs levels: median changes alone give no ROM, but their sign (and
    the reported between-arm p) enter the all-reports analysis; swapping arms flips it."""
    from nutrimeta.all_reports import cell_from_effect_row
    from nutrimeta.models.partial import assign_route

    def rows(ci: float, cc: float) -> list[dict]:
        return [res("c2001", "intervention", "follow_up", "change", n=25, median=ci, q1=ci - 5,
                    q3=ci + 5, outcome="tpo_ab", unit="IU/mL", p_value=0.001,
                    p_value_qualifier="=", p_value_comparison="between_arms_change"),
                res("c2001", "control", "follow_up", "change", n=24, median=cc, q1=cc - 5,
                    q3=cc + 5, outcome="tpo_ab", unit="IU/mL")]

    rom = EffectSettings(measures={"tpo_ab": "ROM"})
    down = one(compute_effects(*frames([study("c2001")], rows(-37.1, 2.9)), rom), "c2001",
               outcome="tpo_ab")
    assert not down.poolable and math.isnan(down.yi)
    assert down.direction == "decrease" and "ROM needs follow-up levels" in down.reason
    d = assign_route(cell_from_effect_row(down.to_dict()))
    assert d.route == "censored_threshold" and d.contribution.direction == -1
    assert (d.contribution.n1, d.contribution.n2) == (25, 24)
    up = one(compute_effects(*frames([study("c2001")], rows(2.9, -37.1)), rom), "c2001",
             outcome="tpo_ab")
    assert up.direction == "increase"
    # no direction from arms measured at different weeks, or from equal changes
    mixed = rows(-37.1, 2.9)
    mixed[1]["week"] = 8
    assert one(compute_effects(*frames([study("c2001")], mixed), rom), "c2001",
               outcome="tpo_ab").direction == ""
    assert one(compute_effects(*frames([study("c2001")], rows(1.0, 1.0)), rom), "c2001",
               outcome="tpo_ab").direction == ""
    # under MD the change scores give an estimate; no direction is inferred
    md_row = one(compute_effects(*frames([study("c2001")], rows(-37.1, 2.9))), "c2001",
                 outcome="tpo_ab")
    assert md_row.poolable and md_row.direction == ""
