"""Edge cases of nutrimeta.effects: each reporting route, each refusal and its reason, the
partial-report columns and the shared-control covariance, on tiny hand-built tables.

Expected numbers are written out from the textbook formulas (Cochrane Handbook 6.5.2;
metafor ``escalc`` MD/SMD/ROM/SMCR/ROMC; Wan et al. 2014, Luo et al. 2018 and Shi et al.
2020 for medians; Gleser & Olkin 2009 for a shared control arm) with scipy's quantiles, never
by calling nutrimeta.conversions.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nutrimeta.effects import (
    EFFECT_COLUMNS,
    REASON_P_ONLY,
    EffectSettings,
    apply_spread_reading,
    compute_effects,
    effects_fingerprint,
)
from test_effects import TT, F, frames, one, res, study

GLU = "fasting_glucose"
TPO = "tpo_ab"
NAN = float("nan")


def run(rows: list[dict], *studies: dict, **settings) -> pd.DataFrame:
    """Effect table of ``rows`` (studies default to one parallel trial per study_id)."""
    if not studies:
        studies = tuple(study(s) for s in dict.fromkeys(r["study_id"] for r in rows))
    return compute_effects(*frames(list(studies), rows), EffectSettings(**settings))


def row(rows: list[dict], outcome: str = TT, subgroup: str = "", **settings) -> pd.Series:
    """The single effect row of a one-study table."""
    return one(run(rows, **settings), rows[0]["study_id"], outcome, subgroup)


def j(m: float) -> float:
    """Hedges' exact small-sample correction J(m) (Hedges 1981)."""
    return math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))


def eta(n: float) -> float:
    """Wan 2014: expected IQR of n standard normal draws."""
    return 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))


def xi(n: float) -> float:
    """Wan 2014: expected range of n standard normal draws."""
    return 2 * stats.norm.ppf((n - 0.375) / (n + 0.25))


def finals(sid: str, i: tuple, c: tuple, **kw) -> list[dict]:
    """Final values (mean, sd, n) of both arms."""
    return [res(sid, "intervention", "follow_up", n=i[2], mean=i[0], sd=i[1], **kw),
            res(sid, "control", "follow_up", n=c[2], mean=c[0], sd=c[1], **kw)]


# ------------------------------------------------------------------ settings


def test_settings_bounds_and_defaults() -> None:
    for r in (-1.0, 1.0, 0.0):
        assert EffectSettings(prepost_correlation=r).prepost_correlation == r
    for r in (-1.01, 1.01):
        with pytest.raises(ValueError, match="prepost_correlation"):
            EffectSettings(prepost_correlation=r)
    with pytest.raises(ValueError, match="prefer must be 'change' or 'final', not 'baseline'"):
        EffectSettings(prefer="baseline")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="measure for 'tsh' must be MD, SMD or ROM, not 'OR'"):
        EffectSettings(measures={"tsh": "OR"})
    with pytest.raises(ValueError, match="timepoint must be 'last' or a week number"):
        EffectSettings(timepoint="first")  # type: ignore[arg-type]
    assert EffectSettings(timepoint=8).timepoint == 8
    assert EffectSettings(timepoint=8.5).timepoint == 8.5
    s = EffectSettings(measures={"tsh": "ROM", "ft4": "SMD"}, target_units={TT: "ng/dL"})
    assert (s.measure_for("tsh"), s.measure_for("ft4"), s.measure_for(TT)) == \
        ("ROM", "SMD", "MD")
    assert s.unit_for(TT) == "ng/dL" and s.unit_for(GLU) == "mmol/L"
    assert s.unit_for("not_an_outcome") == ""
    assert dict(EffectSettings().moderator_units) == {
        "zinc": "umol/L", "selenium": "ug/L", "magnesium": "mmol/L"}
    assert EffectSettings().prefer == "change" and EffectSettings().timepoint == "last"
    assert EffectSettings().prepost_correlation == 0.5


def test_target_unit_setting_converts_md() -> None:
    r = row(finals("t2000", (16.0, 4.0, 20), (15.0, 3.0, 20)), target_units={TT: "ng/dL"})
    assert r.yi == pytest.approx(1.0 / F, rel=1e-12)
    assert r.vi == pytest.approx((16 + 9) / 20 / F**2, rel=1e-12)
    assert r.effect_unit == "ng/dL"


# ------------------------------------------------------------- reading cells


def test_text_cells_read_like_numbers_and_padded_labels_are_stripped() -> None:
    rows = [res("t2001", " intervention ", " follow_up ", " value ", week="12", n="18", mean=" 16 ",
                sd="4", unit=" nmol/L "),
            res("t2001", "control", "follow_up", n=18.0, mean=15, sd=4.0)]
    r = row(rows)
    assert r.poolable
    assert r.yi == pytest.approx(1.0, rel=1e-12)
    assert r.vi == pytest.approx(16 / 18 + 16 / 18, rel=1e-12)
    assert "units" not in r.derivation


def test_unreadable_mean_is_missing() -> None:
    rows = [res("t2002", "intervention", "follow_up", n=18, mean="not reported", sd=4.0),
            res("t2002", "control", "follow_up", n=18, mean=15.0, sd=4.0)]
    r = row(rows)
    assert not r.poolable and math.isnan(r.yi)
    assert r.reason == "no mean reported (intervention follow-up)"
    assert r.derivation == "" and math.isnan(r.mean_intervention)


def test_lower_case_unit_spelling_needs_no_conversion() -> None:
    r = row(finals("t2003", (16.0, 4.0, 18), (15.0, 4.0, 18), unit="nmol/l"))
    assert r.yi == pytest.approx(1.0, rel=1e-12) and "units" not in r.derivation


# ---------------------------------------------------------- arm summaries


def test_sample_size_of_two_is_enough_and_one_is_not() -> None:
    r = row(finals("n2000", (16.0, 4.0, 2), (15.0, 3.0, 2)))
    assert r.poolable and r.vi == pytest.approx(16 / 2 + 9 / 2, rel=1e-12)
    r = row(finals("n2001", (16.0, 4.0, 1), (15.0, 3.0, 5)))
    assert not r.poolable
    assert r.reason == "sample size n not reported (intervention follow-up)"
    r = row(finals("n2002", (16.0, 4.0, 5), (15.0, 3.0, None)))
    assert r.reason == "sample size n not reported (control follow-up)"


def test_zero_sd_in_one_arm_is_kept_in_both_arms_is_refused() -> None:
    r = row(finals("z2000", (16.0, 0.0, 10), (15.0, 3.0, 10)))
    assert r.poolable and r.vi == pytest.approx(9 / 10, rel=1e-12)
    assert r.sd_intervention == 0.0
    r = row(finals("z2001", (16.0, 0.0, 10), (15.0, 0.0, 10)))
    assert not r.poolable and math.isnan(r.yi) and math.isnan(r.sei)
    assert r.reason == "effect could not be computed"
    assert r.derivation == "" and r.n_intervention == 10  # no arm summaries either
    assert np.isnan([r.mean_intervention, r.sd_intervention, r.mean_control,
                     r.sd_control]).all()


def test_negative_sd_is_invalid() -> None:
    r = row(finals("z2002", (16.0, -4.0, 10), (15.0, 3.0, 10)))
    assert not r.poolable
    assert r.reason == "invalid summary statistics (intervention follow-up)"


@pytest.mark.parametrize(("n", "level"), [(20, 0.95), (80, 0.95), (20, 0.90), (59, 0.99)])
def test_arm_sd_from_its_ci(n: int, level: float) -> None:
    """sd = sqrt(n) * width / (2 t[n-1]) below n = 60, z from n = 60 (Handbook 6.5.2.2)."""
    q = 1 - (1 - level) / 2
    crit = stats.t.ppf(q, n - 1) if n < 60 else stats.norm.ppf(q)
    rows = [res("c2000", "intervention", "follow_up", n=n, mean=16.0, ci_lower=14.0,
                ci_upper=18.0, ci_level=level if level != 0.95 else None),
            res("c2000", "control", "follow_up", n=n, mean=15.0, sd=3.0)]
    r = row(rows)
    sd = math.sqrt(n) * 4.0 / (2 * crit)
    assert r.sd_intervention == pytest.approx(sd, rel=1e-12)
    assert r.vi == pytest.approx(sd**2 / n + 9 / n, rel=1e-12)
    assert "intervention follow-up: SD from CI: SE from" in r.derivation
    assert "sd = se*sqrt(n)" in r.derivation


def test_reported_mean_with_median_spread_keeps_the_mean() -> None:
    """A mean without SD but with the median's IQR/range: only the SD comes from Wan/Shi."""
    n = 30
    base = dict(n=n, mean=18.0, median=17.0)
    iqr = dict(q1=14.0, q3=21.0)
    rng = dict(min=8.0, max=29.0)
    w = 1 / (1 + 0.07 * n**0.6)  # Shi 2020 eq 11
    expect = {"iqr": 7.0 / eta(n), "range": 21.0 / xi(n),
              "both": w * 21.0 / xi(n) + (1 - w) * 7.0 / eta(n)}
    for kind, extra in (("iqr", iqr), ("range", rng), ("both", {**iqr, **rng})):
        rows = [res("m2000", "intervention", "follow_up", **base, **extra),
                res("m2000", "control", "follow_up", n=n, mean=15.0, sd=4.0)]
        r = row(rows)
        assert r.mean_intervention == 18.0
        assert r.sd_intervention == pytest.approx(expect[kind], rel=1e-12), kind
        assert r.yi == pytest.approx(3.0, rel=1e-12)
        assert "; intervention follow-up: SD from median" in r.derivation
        assert "mean from" not in r.derivation
    # the spread of a median is read only with the median
    rows = [res("m2000", "intervention", "follow_up", n=n, mean=18.0, **iqr, **rng),
            res("m2000", "control", "follow_up", n=n, mean=15.0, sd=4.0)]
    assert row(rows).reason == "no dispersion reported (intervention follow-up)"


def test_median_only_arms() -> None:
    """Median with range (Luo eq 7 / Wan eq 7) and with IQR and range (Luo eq 15, Shi)."""
    n = 40
    rows = [res("m2001", "intervention", "follow_up", n=n, median=17.0, min=9.0, max=30.0),
            res("m2001", "control", "follow_up", n=n, median=15.0, q1=12.0, q3=19.0,
                min=6.0, max=27.0)]
    r = row(rows)
    w = 4 / (4 + n**0.75)
    m_i, sd_i = w * (9 + 30) / 2 + (1 - w) * 17, 21 / xi(n)
    w1, w2 = 2.2 / (2.2 + n**0.75), 0.7 - 0.72 / n**0.55
    m_c = w1 * (6 + 27) / 2 + w2 * (12 + 19) / 2 + (1 - w1 - w2) * 15
    ws = 1 / (1 + 0.07 * n**0.6)
    sd_c = ws * 21 / xi(n) + (1 - ws) * 7 / eta(n)
    assert r.yi == pytest.approx(m_i - m_c, rel=1e-12)
    assert r.vi == pytest.approx((sd_i**2 + sd_c**2) / n, rel=1e-12)
    assert (r.mean_intervention, r.mean_control) == pytest.approx((m_i, m_c), rel=1e-12)
    assert "intervention follow-up: mean from median and range (Luo 2018)" in r.derivation
    assert "control follow-up: SD from median, IQR and range (Shi 2020)" in r.derivation


def test_median_without_spread_has_no_dispersion() -> None:
    rows = [res("m2002", "intervention", "follow_up", n=20, median=17.0),
            res("m2002", "control", "follow_up", n=20, mean=15.0, sd=4.0)]
    assert row(rows).reason == "no dispersion reported (intervention follow-up)"


def _paired_rows(sid: str, p_i: float, qual: str = "=", comp: str = "within_arm",
                 vt: str = "change", mean_i: float = 2.0) -> list[dict]:
    return [res(sid, "intervention", "follow_up", vt, n=16, mean=mean_i, p_value=p_i,
                p_value_qualifier=qual, p_value_comparison=comp),
            res(sid, "control", "follow_up", vt, n=15, mean=0.5, sd=1.5)]


@pytest.mark.parametrize("qual", ["=", "<"])
def test_change_sd_from_within_arm_paired_p(qual: str) -> None:
    """Paired t: se = |mean| / t[1-p/2, n-1], sd = se sqrt(n) (Handbook 6.5.2.3)."""
    r = row(_paired_rows("w2000", 0.02, qual))
    sd = 2.0 / stats.t.isf(0.01, 15) * math.sqrt(16)
    assert r.poolable
    assert r.sd_intervention == pytest.approx(sd, rel=1e-12)
    assert r.vi == pytest.approx(sd**2 / 16 + 1.5**2 / 15, rel=1e-12)
    note = " (p<x taken as p=x: conservative)" if qual == "<" else ""
    assert (f"intervention change: SD of change from within-arm paired-t p-value{note}: "
            "SE from two-sided p") in r.derivation


def test_within_arm_p_of_a_unit_change_is_used() -> None:
    r = row(_paired_rows("w2001", 0.05, mean_i=1.0))
    sd = 1.0 / stats.t.isf(0.025, 15) * 4
    assert r.sd_intervention == pytest.approx(sd, rel=1e-12)


@pytest.mark.parametrize(("kw", "why"), [
    (dict(qual=">"), "qualifier '>' is not an equality"),
    (dict(comp="between_arms"), "a between-arm p says nothing about one arm's SD"),
    (dict(vt="value"), "only a change has a paired test"),
    (dict(p_i=1.0), "p = 1 gives no SE"),
    (dict(p_i=0.0), "p = 0 gives no SE"),
    (dict(mean_i=0.0), "a zero change gives no SE"),
])
def test_within_arm_p_route_refusals(kw: dict, why: str) -> None:
    args = dict(p_i=0.02) | kw
    r = row(_paired_rows("w2002", **args), prefer="change")
    assert not r.poolable, why
    label = "intervention change" if args.get("vt", "change") == "change" \
        else "intervention follow-up"
    assert f"no dispersion reported ({label})" in r.reason, why


def test_geometric_mean_arm_with_its_own_ci_level() -> None:
    """Log-normal arm: s = sqrt(n) (log U - log L)/(2 t[n-1]), mean = exp(mu + s^2/2)."""
    n = 25
    rows = [res("g2000", "intervention", "follow_up", n=n, geometric_mean=1.0, ci_lower=0.8,
                ci_upper=1.25, ci_level=0.9),
            res("g2000", "control", "follow_up", n=n, mean=0.9, sd=0.3)]
    r = row(rows)
    s = math.sqrt(n) * (math.log(1.25) - math.log(0.8)) / (2 * stats.t.ppf(0.95, n - 1))
    m = math.exp(s**2 / 2)
    sd = m * math.sqrt(math.exp(s**2) - 1)
    assert r.mean_intervention == pytest.approx(m, rel=1e-12)
    assert r.sd_intervention == pytest.approx(sd, rel=1e-12)
    assert r.yi == pytest.approx(m - 0.9, rel=1e-12)
    assert "sd = mean*sqrt(exp(s^2)-1) (log-normal)" in r.derivation


@pytest.mark.parametrize("ci", [(None, 1.25), (0.0, 1.25), (-0.5, 1.25), (0.8, 0.0),
                                (math.inf, 1.25), (0.8, math.inf)])
def test_geometric_mean_without_a_positive_ci_is_refused(ci: tuple) -> None:
    rows = [res("g2001", "intervention", "follow_up", n=20, geometric_mean=1.0,
                ci_lower=ci[0], ci_upper=ci[1]),
            res("g2001", "control", "follow_up", n=20, mean=0.9, sd=0.3)]
    assert row(rows).reason == \
        "no dispersion reported (intervention follow-up: geometric mean without CI)"


def test_non_positive_geometric_mean_is_refused() -> None:
    rows = [res("g2002", "intervention", "follow_up", n=20, geometric_mean=0.0,
                ci_lower=0.5, ci_upper=1.25),
            res("g2002", "control", "follow_up", n=20, mean=0.9, sd=0.3)]
    assert row(rows).reason == \
        "no dispersion reported (intervention follow-up: geometric mean without CI)"


def test_p_value_in_an_arm_without_mean_means_p_only() -> None:
    rows = [res("p2000", "intervention", "follow_up", n=20, p_value=0.04,
                p_value_qualifier="<"),
            res("p2000", "control", "follow_up", n=20, mean=15.0, sd=3.0)]
    r = row(rows)
    assert r.reason == REASON_P_ONLY and r.p_value == 0.04
    assert r.p_value_qualifier == "<"
    rows[0].update(p_value=None, direction="increase")
    r = row(rows)
    assert r.reason == REASON_P_ONLY and r.direction == "increase"
    rows[0].update(direction=None)
    assert row(rows).reason == "no mean reported (intervention follow-up)"


# ------------------------------------------------------------------- units


def test_missing_unit_refuses_md_but_not_a_unit_free_measure() -> None:
    rows = finals("u2000", (16.0, 4.0, 20), (15.0, 3.0, 22), unit=None)
    assert row(rows).reason == "unit not recorded"
    r = row(rows, measures={TT: "SMD"})
    m = 40
    sp = math.sqrt((19 * 16 + 21 * 9) / m)
    assert r.poolable and r.yi == pytest.approx(j(m) * 1.0 / sp, rel=1e-12)
    r = row(rows, measures={TT: "ROM"})
    assert r.poolable and r.yi == pytest.approx(math.log(16 / 15), rel=1e-12)
    mixed = [rows[0], {**rows[1], "unit": "nmol/L"}]
    assert row(mixed, measures={TT: "SMD"}).reason == "unit not recorded for some rows"


def test_unconvertible_unit_shared_by_both_arms_is_fine_for_ratios_only() -> None:
    rows = finals("u2001", (16.0, 4.0, 20), (15.0, 3.0, 20), unit="IU/mL")
    md = row(rows)
    assert not md.poolable and "IU/mL" in md.reason and "nmol/L" in md.reason
    rom = row(rows, measures={TT: "ROM"})
    assert rom.poolable
    assert rom.vi == pytest.approx(16 / (20 * 16**2) + 9 / (20 * 15**2), rel=1e-12)
    assert "units" not in rom.derivation
    mixed = [rows[0], {**rows[1], "unit": "ng/dL"}]
    bad = row(mixed, measures={TT: "ROM"})
    assert not bad.poolable and "IU/mL" in bad.reason


def test_one_conversion_step_per_unit() -> None:
    """Both arms in ng/dL: one step; an arm in a spelling variant of the target: none."""
    rows = finals("u2002", (520.0, 110.0, 22), (480.0, 100.0, 21), unit="ng/dL")
    r = row(rows)
    assert r.derivation.count("units ") == 1
    assert "units ng/dL->nmol/L (x0.0346717)" in r.derivation
    assert r.mean_intervention == pytest.approx(520 * F, rel=1e-12)
    assert r.sd_control == pytest.approx(100 * F, rel=1e-12)
    mixed = [rows[0], res("u2002", "control", "follow_up", n=21, mean=480 * F, sd=100 * F,
                          unit="nmol/l")]
    r = row(mixed)
    assert r.derivation.count("units ") == 1 and "ng/dL->nmol/L" in r.derivation
    assert r.yi == pytest.approx(40 * F, rel=1e-12)
    # change scores of both arms in ng/dL: each arm converts, the step is stated once
    chg = [res("u2003", arm, "follow_up", "change", n=20, mean=m, sd=50.0, unit="ng/dL")
           for arm, m in (("intervention", 60.0), ("control", 10.0))]
    r = row(chg)
    assert r.derivation.count("units ng/dL->nmol/L") == 1
    assert r.yi == pytest.approx(50 * F, rel=1e-12)
    assert r.vi == pytest.approx(2 * (50 * F) ** 2 / 20, rel=1e-12)


# ----------------------------------------------------------- pre/post correlation


def test_correlation_from_the_baseline_row_and_follow_up_before_baseline() -> None:
    def rows(r_final, r_base) -> list[dict]:
        return [res("r2000", "intervention", "baseline", n=12, mean=14.0, sd=4.0,
                    prepost_correlation=r_base),
                res("r2000", "intervention", "follow_up", n=12, mean=16.0, sd=5.0,
                    prepost_correlation=r_final),
                res("r2000", "control", "follow_up", "change", n=11, mean=0.2, sd=3.0)]

    def sd(r: float) -> float:
        return math.sqrt(16 + 25 - 2 * r * 20)

    a = row(rows(None, 0.3))
    assert a.prepost_correlation == pytest.approx(0.3)
    assert a.vi == pytest.approx(sd(0.3) ** 2 / 12 + 9 / 11, rel=1e-12)
    assert "r=0.3 from the results row" in a.derivation
    b = row(rows(0.7, 0.3))
    assert b.prepost_correlation == pytest.approx(0.7)
    assert b.sd_intervention == pytest.approx(sd(0.7), rel=1e-12)
    c = row(rows(None, None), prepost_correlation=0.25)
    assert c.prepost_correlation == pytest.approx(0.25)
    assert "r=0.25 (analysis default)" in c.derivation


def test_correlation_of_the_control_arm_when_the_intervention_reports_its_change() -> None:
    rows = [res("r2001", "intervention", "follow_up", "change", n=12, mean=2.0, sd=3.0),
            res("r2001", "control", "baseline", n=11, mean=15.0, sd=4.5,
                prepost_correlation=0.35),
            res("r2001", "control", "follow_up", n=11, mean=15.2, sd=4.0)]
    r = row(rows)
    sd_c = math.sqrt(4.5**2 + 16 - 2 * 0.35 * 4.5 * 4)
    assert r.prepost_correlation == pytest.approx(0.35)
    assert r.yi == pytest.approx(2.0 - 0.2, rel=1e-12)
    assert r.vi == pytest.approx(9 / 12 + sd_c**2 / 11, rel=1e-12)
    assert "intervention: change as reported" in r.derivation
    assert "control: change = follow-up - baseline" in r.derivation


def test_change_mean_without_sd_takes_the_sd_from_baseline_and_follow_up() -> None:
    """Handbook 6.5.2.8: sd_change = sqrt(sdb^2 + sdf^2 - 2 r sdb sdf); the reported change
    mean is kept (it need not equal follow-up minus baseline, e.g. completers)."""
    def arm(name: str, chg_n, unit: str = "nmol/L") -> list[dict]:
        return [res("c2001", name, "baseline", n=14, mean=14.0, sd=4.0, unit=unit),
                res("c2001", name, "follow_up", n=13, mean=16.0, sd=5.0, unit=unit),
                res("c2001", name, "follow_up", "change", n=chg_n, mean=2.5, unit=unit)]

    ctrl = res("c2001", "control", "follow_up", "change", n=11, mean=0.5, sd=3.0)
    rows = [*arm("intervention", 12), ctrl]
    r = row(rows, prepost_correlation=0.6)
    sd = math.sqrt(16 + 25 - 2 * 0.6 * 20)
    assert r.yi == pytest.approx(2.0, rel=1e-12)
    assert r.sd_intervention == pytest.approx(sd, rel=1e-12)
    assert r.n_intervention == 12
    assert r.vi == pytest.approx(sd**2 / 12 + 9 / 11, rel=1e-12)
    assert r.prepost_correlation == pytest.approx(0.6)
    assert "intervention: change mean as reported, change SD from baseline/follow-up" \
        in r.derivation
    # no n on the change row: the follow-up n
    rows = [*arm("intervention", None), ctrl]
    r = row(rows, prepost_correlation=0.6)
    assert r.n_intervention == 13
    assert r.vi == pytest.approx(sd**2 / 13 + 9 / 11, rel=1e-12)
    # in ng/dL: mean and both SDs converted
    rows = [*arm("intervention", 12, "ng/dL"),
            {**ctrl, "mean": 0.5 / F, "sd": 3.0 / F, "unit": "ng/dL"}]
    r = row(rows, prepost_correlation=0.6)
    assert r.yi == pytest.approx(2.5 * F - 0.5, rel=1e-12)
    assert r.vi == pytest.approx((sd * F) ** 2 / 12 + 9 / 11, rel=1e-12)


def test_change_without_sd_and_without_baseline_is_refused() -> None:
    rows = [res("c2002", "intervention", "follow_up", "change", n=12, mean=2.5),
            res("c2002", "intervention", "follow_up", n=12, mean=16.0, sd=5.0),
            res("c2002", "control", "follow_up", "change", n=11, mean=0.5, sd=3.0),
            res("c2002", "control", "follow_up", n=11, mean=15.0, sd=4.0)]
    r = row(rows)  # the change path fails, the final values are used instead
    assert r.yi == pytest.approx(1.0, rel=1e-12)
    assert "MD of final values (change values not available for both arms)" in r.derivation
    r = row(rows, measures={TT: "SMD"})
    assert r.yi == pytest.approx(j(21) * 1.0 / math.sqrt((11 * 25 + 10 * 16) / 21),
                                 rel=1e-12)
    only = [rows[0], rows[2]]
    assert row(only).reason == ("no dispersion reported (intervention change); "
                                "no follow-up value reported (intervention)")


def test_change_sd_missing_and_no_mean_on_the_change_row() -> None:
    rows = [res("c2003", "intervention", "baseline", n=12, mean=14.0, sd=4.0),
            res("c2003", "intervention", "follow_up", n=12, mean=16.0, sd=5.0),
            res("c2003", "intervention", "follow_up", "change", n=12, median=2.0),
            res("c2003", "control", "follow_up", "change", n=11, mean=0.5, sd=3.0)]
    assert row(rows).reason == ("no dispersion reported (intervention change); "
                                "no follow-up value reported (control)")


# --------------------------------------------------------------------- weeks


def test_last_common_week_wins_over_a_later_week_of_one_arm() -> None:
    rows = [res("w2000", "intervention", "follow_up", week=6, n=20, mean=15.5, sd=4.0),
            res("w2000", "intervention", "follow_up", week=12, n=19, mean=17.0, sd=4.0),
            res("w2000", "control", "follow_up", week=6, n=20, mean=15.0, sd=4.0)]
    r = row(rows)
    assert r.week == 6 and r.yi == pytest.approx(0.5, rel=1e-12)


def test_no_common_week_uses_the_latest_and_says_which_arm_lacks_it() -> None:
    rows = [res("w2001", "intervention", "follow_up", week=12, n=20, mean=15.5, sd=4.0),
            res("w2001", "control", "follow_up", week=8, n=20, mean=15.0, sd=4.0)]
    r = row(rows)
    assert not r.poolable and r.reason == "no control arm follow-up data"
    r = row(rows, timepoint=8)
    assert r.reason == "no intervention arm follow-up data"
    r = row(rows, timepoint=10)
    assert r.reason == "no intervention arm follow-up data"


def test_missing_weeks_match_each_other() -> None:
    rows = finals("w2002", (16.0, 4.0, 18), (15.0, 4.0, 18), week=NAN)
    r = row(rows)
    assert r.poolable and math.isnan(r.week) and r.yi == pytest.approx(1.0)
    mixed = [rows[0], {**rows[1], "week": 12}]
    assert row(mixed).reason == "no intervention arm follow-up data"


def test_fractional_weeks() -> None:
    rows = finals("w2003", (16.0, 4.0, 18), (15.0, 4.0, 18), week=2.5)
    r = row(rows)
    assert r.poolable and r.week == 2.5
    assert row(rows, timepoint=2.5).poolable


def test_first_duplicate_row_is_used() -> None:
    rows = finals("w2004", (16.0, 4.0, 18), (15.0, 4.0, 18))
    rows.insert(1, res("w2004", "intervention", "follow_up", n=18, mean=30.0, sd=9.0))
    assert row(rows).yi == pytest.approx(1.0)


def test_baseline_change_row_is_not_a_baseline() -> None:
    rows = [res("w2005", "intervention", "baseline", "change", n=12, mean=14.0, sd=4.0),
            res("w2005", "intervention", "follow_up", n=12, mean=16.0, sd=5.0),
            res("w2005", "control", "baseline", n=11, mean=15.0, sd=4.5),
            res("w2005", "control", "follow_up", n=11, mean=15.2, sd=4.0)]
    r = row(rows)
    assert r.yi == pytest.approx(0.8, rel=1e-12)  # final values, not a change
    assert "MD of final values" in r.derivation


# ------------------------------------------------------------- percent change


def test_only_percent_change() -> None:
    rows = [res("q2000", arm, "follow_up", "percent_change", n=20, mean=m, sd=5.0)
            for arm, m in (("intervention", 12.0), ("control", 2.0))]
    r = row(rows)
    assert not r.poolable and r.reason == "only percent change reported (intervention)"
    assert row(rows, measures={TT: "SMD"}).reason == \
        "only percent change reported (intervention)"
    assert row(rows, measures={TT: "ROM"}).reason.startswith(
        "only percent change reported (intervention); ROM needs follow-up levels")
    single = [res("q2001", "single_arm", "follow_up", "percent_change", n=20, mean=12.0,
                  sd=5.0), res("q2001", "single_arm", "baseline", n=20, mean=12.0, sd=5.0)]
    assert row(single).reason == "only percent change reported (single arm)"


def test_percent_change_beside_a_change_without_sd() -> None:
    rows = [res("q2002", "intervention", "follow_up", "percent_change", n=20, mean=12.0,
                sd=5.0),
            res("q2002", "intervention", "follow_up", "change", n=20, mean=1.5),
            res("q2002", "control", "follow_up", "change", n=20, mean=0.5, sd=2.0)]
    r = row(rows, measures={TT: "SMD"})
    assert r.reason == ("no follow-up value reported (intervention); "
                        "no dispersion reported (intervention change)")


def test_md_change_path_refusal_is_dropped_when_final_values_explain() -> None:
    rows = [res("q2003", "intervention", "follow_up", n=20, mean=16.0, sd=4.0),
            res("q2003", "control", "follow_up", "change", n=20, mean=0.5, sd=2.0)]
    assert row(rows).reason == "no follow-up value reported (control)"
    assert row(rows, prefer="final").reason == "no follow-up value reported (control)"


# ------------------------------------------------------------- two-arm effects


def test_two_arm_outputs_and_wording() -> None:
    rows = finals("a2000", (16.0, 4.0, 18), (15.0, 3.0, 17))
    r = row(rows)
    assert r.derivation == ("MD of final values (change values not available for both "
                            "arms) (intervention minus control); MD = m1-m2, vi = sd1^2/n1 "
                            "+ sd2^2/n2")
    assert row(rows, prefer="final").derivation.startswith(
        "MD of final values (intervention minus control); MD = m1-m2")
    assert (r.mean_intervention, r.sd_intervention, r.mean_control, r.sd_control) == \
        (16.0, 4.0, 15.0, 3.0)
    assert (r.n_intervention, r.n_control) == (18, 17)
    assert r.sei == pytest.approx(math.sqrt(16 / 18 + 9 / 17), rel=1e-12)
    assert r.week == 12 and math.isnan(r.prepost_correlation)
    assert r.trial_id == "a2000" and r.design == "parallel_rct"
    assert r.first_author == "A" and r.year == 2000 and r.inclusion_status == "included"
    rom = row(rows, measures={TT: "ROM"})
    assert rom.derivation.startswith("ROM of final values (log intervention/control); ")
    assert rom.effect_unit == "log ratio"
    assert (rom.mean_intervention, rom.sd_control) == (16.0, 3.0)
    smd = row(rows, measures={TT: "SMD"})
    assert smd.derivation.startswith("SMD of final values (intervention minus control); ")


def test_smd_of_change_scores_is_flagged() -> None:
    rows = [res("a2001", arm, "follow_up", "change", n=20, mean=m, sd=2.0)
            for arm, m in (("intervention", 1.5), ("control", 0.5))]
    r = row(rows, measures={TT: "SMD"})
    assert r.derivation.startswith(
        "SMD of change scores (final values not available for both arms) [SMD of change "
        "scores: SD differs in kind from final-value SMDs] (intervention minus control)")
    md = row(rows, prefer="final")
    assert md.derivation.startswith(
        "MD of change scores (final values not available for both arms) (intervention "
        "minus control)")
    assert "[SMD" not in md.derivation


@pytest.mark.parametrize(("m_i", "m_c"), [(0.0, 15.0), (16.0, 0.0), (-1.0, 15.0),
                                          (16.0, -2.0)])
def test_rom_needs_positive_means(m_i: float, m_c: float) -> None:
    rows = finals("a2002", (m_i, 4.0, 18), (m_c, 3.0, 17))
    r = row(rows, measures={TT: "ROM"})
    assert not r.poolable and r.reason == "ROM needs positive means"


def test_rom_of_geometric_means_at_its_own_level_and_units() -> None:
    rows = [res("a2003", "intervention", "follow_up", geometric_mean=10.0, ci_lower=8.0,
                ci_upper=12.5, ci_level=0.9, unit="IU/mL", outcome=TPO),
            res("a2003", "control", "follow_up", geometric_mean=12.0, ci_lower=10.0,
                ci_upper=14.4, ci_level=0.9, unit="IU/mL", outcome=TPO)]
    r = row(rows, outcome=TPO, measures={TPO: "ROM"})
    z = stats.norm.ppf(0.95)
    v = ((math.log(12.5 / 8.0)) ** 2 + math.log(14.4 / 10.0) ** 2) / (2 * z) ** 2
    assert r.yi == pytest.approx(math.log(10 / 12), rel=1e-12)
    assert r.vi == pytest.approx(v, rel=1e-12)
    assert r.week == 12 and pd.isna(r.n_intervention) and pd.isna(r.n_control)
    assert r.derivation.startswith("ROM of final geometric means (log intervention/control); ")
    assert r.effect_unit == "log ratio"
    rows[1]["unit"] = "mIU/mL"
    r = row(rows, outcome=TPO, measures={TPO: "ROM"})
    assert r.reason == "geometric means of the two arms are in different units"


def test_rom_geometric_route_needs_both_arms_geometric() -> None:
    """One arm geometric, the other arithmetic: the arithmetic route (log-normal means)."""
    n = 30
    rows = [res("a2004", "intervention", "follow_up", n=n, geometric_mean=10.0, ci_lower=8.0,
                ci_upper=12.5),
            res("a2004", "control", "follow_up", n=n, mean=12.0, sd=3.0)]
    r = row(rows, measures={TT: "ROM"})
    s = math.sqrt(n) * math.log(12.5 / 8.0) / (2 * stats.t.ppf(0.975, n - 1))
    m = 10.0 * math.exp(s**2 / 2)
    sd = m * math.sqrt(math.exp(s**2) - 1)
    assert r.yi == pytest.approx(math.log(m / 12.0), rel=1e-12)
    assert r.vi == pytest.approx(sd**2 / (n * m**2) + 9 / (n * 144), rel=1e-12)
    assert r.n_intervention == n


def test_geometric_mean_outside_its_ci_cannot_be_computed() -> None:
    rows = [res("a2005", "intervention", "follow_up", geometric_mean=13.0, ci_lower=8.0,
                ci_upper=12.5),
            res("a2005", "control", "follow_up", geometric_mean=12.0, ci_lower=10.0,
                ci_upper=14.4)]
    r = row(rows, measures={TT: "ROM"})
    assert r.reason == "could not compute: a geometric mean lies outside its CI"


def test_no_usable_rows() -> None:
    rows = [res("a2006", "other", "follow_up", n=20, mean=16.0, sd=4.0)]
    assert row(rows).reason == ("no usable rows (need intervention and control arms, a "
                                "single arm, or a between-arm difference)")
    rows = [res("a2007", "contrast", "follow_up", "value", n=20, mean=1.0, se=0.5)]
    assert row(rows).reason == "no between-arm difference reported"


# ------------------------------------------------------------------ single arm


def sa(sid: str, tp: str, vt: str = "value", **kw) -> dict:
    return res(sid, "single_arm", tp, vt, **kw)


def test_single_arm_reported_change() -> None:
    r = one(run([sa("s2000", "follow_up", "change", n=20, mean=1.5, sd=2.0)],
                study("s2000", design="single_arm_prepost")), "s2000")
    assert r.poolable and r.yi == 1.5 and r.vi == pytest.approx(4 / 20, rel=1e-12)
    assert math.isnan(r.prepost_correlation) and r.n_intervention == 20
    assert pd.isna(r.n_control) and r.effect_unit == "nmol/L"
    assert r.derivation == ("within-arm change, follow-up minus baseline (single-arm "
                            "pre/post); single arm: change as reported; vi = sd_change^2/n")


def test_single_arm_path_follows_the_arm_not_only_the_design() -> None:
    rows = [sa("s2001", "baseline", n=20, mean=12.0, sd=3.0),
            sa("s2001", "follow_up", n=20, mean=14.0, sd=3.5)]
    sd2 = 9 + 12.25 - 2 * 0.5 * 3 * 3.5
    for design in ("single_arm_prepost", "parallel_rct"):
        r = one(run(rows, study("s2001", design=design)), "s2001")
        assert r.poolable and r.yi == pytest.approx(2.0)
        assert r.vi == pytest.approx(sd2 / 20, rel=1e-12)
    # a single-arm design whose rows are labelled as arms has no single arm
    arms = [{**x, "arm": "intervention"} for x in rows]
    r = one(run(arms, study("s2001", design="single_arm_prepost")), "s2001")
    assert r.reason == "no follow-up data (single arm)"


def test_single_arm_without_follow_up() -> None:
    r = row([sa("s2002", "baseline", n=20, mean=12.0, sd=3.0)])
    assert r.reason == "no follow-up data (single arm)"


def test_single_arm_smd_from_baseline_and_change() -> None:
    """metafor SMCR: J(n-1) d / sd_baseline, vi = 2(1-r)/n + yi^2/(2n); the change may be in
    another unit than the baseline (both are converted before standardising)."""
    rows = [sa("s2003", "baseline", n=22, mean=12.0, sd=3.0, prepost_correlation=0.4),
            sa("s2003", "follow_up", "change", n=20, mean=1.8 / F, sd=2.0 / F, unit="ng/dL")]
    r = row(rows, measures={TT: "SMD"})
    y = j(19) * 1.8 / 3.0
    assert r.yi == pytest.approx(y, rel=1e-12)
    assert r.vi == pytest.approx(2 * 0.6 / 20 + y**2 / 40, rel=1e-12)
    assert r.n_intervention == 20 and r.prepost_correlation == pytest.approx(0.4)
    assert r.effect_unit == ""
    assert r.derivation.endswith("r=0.4 from the results row")
    assert "within-arm SMD standardised by baseline SD" in r.derivation
    r = row(rows[1:], measures={TT: "SMD"})
    assert r.reason == "SMD for a single arm needs the baseline value"


def test_single_arm_smd_from_final_values_in_another_unit() -> None:
    rows = [sa("s2004", "baseline", n=20, mean=12.0 / F, sd=3.0 / F, unit="ng/dL"),
            sa("s2004", "follow_up", n=20, mean=14.0, sd=3.5)]
    r = row(rows, measures={TT: "SMD"})
    y = j(19) * 2.0 / 3.0
    assert r.yi == pytest.approx(y, rel=1e-12)
    assert r.vi == pytest.approx(2 * 0.5 / 20 + y**2 / 40, rel=1e-12)
    assert "r=0.5 (analysis default)" in r.derivation


def test_single_arm_rom() -> None:
    rows = [sa("s2005", "baseline", n=20, mean=12.0, sd=3.0),
            sa("s2005", "follow_up", n=20, mean=14.0, sd=3.5, prepost_correlation=0.7)]
    r = row(rows, measures={TT: "ROM"})
    assert r.yi == pytest.approx(math.log(14 / 12), rel=1e-12)
    assert r.vi == pytest.approx(3.5**2 / (20 * 196) + 9 / (20 * 144)
                                 - 2 * 0.7 * 3 * 3.5 / (20 * 12 * 14), rel=1e-12)
    assert r.prepost_correlation == pytest.approx(0.7) and r.effect_unit == "log ratio"
    no_final = [rows[0], sa("s2005", "follow_up", "change", n=20, mean=2.0, sd=1.0)]
    assert row(no_final, measures={TT: "ROM"}).reason == \
        "ROM for a single arm needs the follow-up value"
    assert row(rows[1:], measures={TT: "ROM"}).reason == \
        "ROM for a single arm needs the baseline value"


@pytest.mark.parametrize(("mb", "mf"), [(0.0, 14.0), (12.0, 0.0), (-1.0, 14.0),
                                        (12.0, -3.0)])
def test_single_arm_rom_needs_positive_means(mb: float, mf: float) -> None:
    rows = [sa("s2006", "baseline", n=20, mean=mb, sd=3.0),
            sa("s2006", "follow_up", n=20, mean=mf, sd=3.5)]
    assert row(rows, measures={TT: "ROM"}).reason == "ROM needs positive means"


# ------------------------------------------------------- reported differences


def diff(sid: str, week=None, **kw) -> dict:
    return res(sid, "contrast", "follow_up", "difference", week=week, **kw)


@pytest.mark.parametrize(("n", "t_df"), [(59, 57), (60, None), (100, None), (2, None),
                                         (3, 1), (None, None)])
def test_difference_se_from_ci_t_below_sixty(n, t_df) -> None:
    """t with n-2 df below n = 60 (and df > 0), z otherwise or when n is unknown."""
    r = row([diff("d2000", n=n, mean=1.2, ci_lower=0.2, ci_upper=2.2)])
    crit = stats.t.ppf(0.975, t_df) if t_df else stats.norm.ppf(0.975)
    assert r.poolable
    assert r.vi == pytest.approx((2.0 / (2 * crit)) ** 2, rel=1e-12)
    assert ("t[n1+n2-2 df]" in r.derivation) == bool(t_df)
    assert r.derivation.endswith("vi = se^2")


def test_difference_takes_arm_sizes_from_follow_up_rows() -> None:
    rows = [diff("d2001", ci_lower=0.2, ci_upper=2.2, mean=1.2, ci_level=0.9),
            res("d2001", "intervention", "baseline", n=40, mean=14.0, sd=4.0),
            res("d2001", "intervention", "follow_up", n=15, mean=16.0),
            res("d2001", "control", "follow_up", n=14, mean=15.0)]
    r = row(rows)
    se = 2.0 / (2 * stats.t.ppf(0.95, 27))
    assert r.poolable and r.vi == pytest.approx(se**2, rel=1e-12)
    assert (r.n_intervention, r.n_control) == (15, 14)
    assert "SE from 90% CI (se = width/(2*t[n1+n2-2 df]))" in r.derivation
    smd = row(rows, measures={TT: "SMD"})
    sd = se / math.sqrt(1 / 15 + 1 / 14)
    g = j(27) * 1.2 / sd
    assert smd.yi == pytest.approx(g, rel=1e-12)
    assert smd.vi == pytest.approx(1 / 15 + 1 / 14 + g**2 / 58, rel=1e-12)
    assert smd.derivation == (
        "reported between-arm difference (intervention minus control); SE from 90% CI "
        "(se = width/(2*t[n1+n2-2 df])); pooled SD back-calculated from SE of the "
        "difference (sd = se/sqrt(1/n1+1/n2)); Hedges g with exact J, "
        "vi = 1/n1+1/n2+g^2/(2(n1+n2))")
    assert smd.week == 12
    assert smd.reason == "" and (smd.n_intervention, smd.n_control) == (15, 14)


def test_difference_se_as_reported_in_another_unit() -> None:
    r = row([diff("d2002", n=40, mean=30.0, se=10.0, unit="ng/dL")])
    assert r.yi == pytest.approx(30 * F, rel=1e-12)
    assert r.vi == pytest.approx((10 * F) ** 2, rel=1e-12)
    assert r.derivation == ("reported between-arm difference (intervention minus control); "
                            "SE as reported; units ng/dL->nmol/L (x0.0346717); vi = se^2")


@pytest.mark.parametrize(("qual", "comp", "n"), [
    ("=", "between_arms", 40), ("", "", 40), ("<", "between_arms_change", 40),
    ("=", "between_arms", None), ("=", "between_arms", 2), ("=", "between_arms", 3)])
def test_difference_se_from_p(qual: str, comp: str, n) -> None:
    """t with n-2 df when n > 2 (Handbook 6.5.2.3), z when no df is left or n is unknown."""
    r = row([diff("d2003", n=n, mean=-2.0, p_value=0.01, p_value_qualifier=qual,
                  p_value_comparison=comp)])
    q = stats.t.isf(0.005, n - 2) if n and n > 2 else stats.norm.isf(0.005)
    assert r.poolable and r.yi == -2.0
    assert r.vi == pytest.approx((2.0 / q) ** 2, rel=1e-12)
    note = " (p<x taken as p=x: conservative, SE overestimated)" if qual == "<" else ""
    dist = "t[1-p/2, df]" if n and n > 2 else "z[1-p/2]"
    assert r.derivation.endswith(f"(se = |est|/{dist}){note}; vi = se^2")


@pytest.mark.parametrize("kw", [dict(p_value_qualifier=">"),
                                dict(p_value_comparison="within_arm"),
                                dict(mean=0.0), dict(p_value=1.0), dict(p_value=0.0)])
def test_difference_p_route_refusals(kw: dict) -> None:
    base = dict(n=40, mean=2.0, p_value=0.01, p_value_qualifier="=",
                p_value_comparison="between_arms")
    r = row([diff("d2004", **(base | kw))])
    assert not r.poolable
    assert r.reason == "no dispersion reported (between-arm difference)"


def test_difference_without_an_estimate() -> None:
    rows = [diff("d2005", n=40, p_value=0.03, direction="increase"),
            res("d2005", "intervention", "follow_up", n=20, mean=16.0),
            res("d2005", "control", "follow_up", n=20, mean=15.0)]
    r = row(rows)
    assert r.reason == REASON_P_ONLY and r.direction == "increase" and r.p_value == 0.03
    rows[0].update(p_value=None, direction=None)
    assert row(rows).reason == ("no estimate in the difference row; no dispersion "
                                "reported (intervention follow-up)")


def test_difference_smd_needs_group_sizes_and_rom_needs_arms() -> None:
    rows = [diff("d2006", mean=1.2, se=0.5)]
    assert row(rows, measures={TT: "SMD"}).reason == \
        "SMD from a reported difference needs the group sizes"
    assert row(rows, measures={TT: "ROM"}).reason == \
        "ROM needs arm means (only a between-arm difference reported)"


def test_difference_at_the_last_or_chosen_week() -> None:
    rows = [diff("d2007", week=6, n=40, mean=0.5, se=0.4),
            diff("d2007", week=12, n=40, mean=1.5, se=0.6)]
    r = row(rows)
    assert (r.week, r.yi, r.vi) == (12, 1.5, pytest.approx(0.36))
    r = row(rows, timepoint=6)
    assert (r.week, r.yi, r.vi) == (6, 0.5, pytest.approx(0.16))
    # a week no difference row has is refused, not filled from another week
    r = row(rows, timepoint=9)
    assert not r.poolable and math.isnan(r.yi)
    assert r.reason == "no between-arm difference reported at week 9"


def test_arm_path_is_second_for_md_and_first_for_smd() -> None:
    rows = [diff("d2008", n=40, mean=1.0, se=0.5),
            *finals("d2008", (17.0, 4.0, 20), (15.0, 4.0, 20))]
    assert row(rows).yi == 1.0
    smd = row(rows, measures={TT: "SMD"})
    assert smd.yi == pytest.approx(j(38) * 2.0 / 4.0, rel=1e-12)
    only_diff_ok = [rows[0], *finals("d2008", (17.0, None, 20), (15.0, None, 20))]
    smd = row(only_diff_ok, measures={TT: "SMD"})
    g = j(38) * 1.0 / (0.5 / math.sqrt(0.1))
    assert smd.yi == pytest.approx(g, rel=1e-12)


# ---------------------------------------------------------------- study level


@pytest.mark.parametrize(("status", "why", "reason"), [
    ("excluded", "duplicate report", "study excluded: duplicate report"),
    ("excluded", None, "study excluded: no reason recorded"),
    ("not_poolable", None, "study inclusion_status is not_poolable: no reason recorded"),
    ("separate", "children", "separate population: children"),
    ("pending", None, "study inclusion_status is pending"),
    (None, None, "study inclusion_status is missing"),
])
def test_status_reasons(status, why, reason) -> None:
    rows = finals("x2000", (16.0, 4.0, 18), (15.0, 4.0, 18))
    r = one(run(rows, study("x2000", status=status, inclusion_reason=why)), "x2000")
    assert not r.poolable and r.reason == reason
    assert r.yi == pytest.approx(1.0)  # computed for sensitivity analyses all the same
    assert r.derivation.startswith("MD of final values")


def test_study_missing_from_the_studies_table() -> None:
    rows = finals("x2001", (16.0, 4.0, 18), (15.0, 4.0, 18))
    df = run(rows, study("other2000"))
    r = one(df, "x2001")
    assert not r.poolable and r.reason == "study not in studies table"
    assert r.evidence_base == "zinc_testosterone"  # from the outcome
    assert r.baseline_status_category == "unknown" and math.isnan(r.baseline_status_value_std)
    assert r.design == "" and pd.isna(r.year) and r.first_author == ""
    assert len(df) == 1


def test_reasons_are_joined_once_each() -> None:
    rows = finals("x2002", (16.0, None, 18), (15.0, None, 18), subgroup="alt-source:x")
    df = run(rows, study("x2002", status="excluded", inclusion_reason="abstract only"))
    r = one(df, "x2002", subgroup="alt-source:x")
    assert r.reason == ("study excluded: abstract only; alternative source for the same "
                        "trial (alt-source:x); not pooled; no dispersion reported "
                        "(intervention follow-up)")


def test_baseline_status_moderator_refusals() -> None:
    base = dict(baseline_status_value=70.0, baseline_status_unit="ug/dL",
                baseline_status_specimen="serum")
    cases = {"ok": base, "no_unit": base | dict(baseline_status_unit=None),
             "no_value": base | dict(baseline_status_value=None),
             "bad_unit": base | dict(baseline_status_unit="IU/mL"),
             "urine": base | dict(baseline_status_specimen="urine"),
             "nutrient": base | dict(nutrient="iron")}
    studies = [study(f"b{2000 + i}", **kw) for i, kw in enumerate(cases.values())]
    rows = [diff(s["study_id"], n=20, mean=1.0, se=0.5) for s in studies]
    df = run(rows, *studies)
    got = dict(zip(cases, (one(df, s["study_id"]).baseline_status_value_std
                           for s in studies), strict=True))
    assert got["ok"] == pytest.approx(700 / 65.38, rel=1e-4)  # zinc 65.38 g/mol
    assert all(math.isnan(v) for k, v in got.items() if k != "ok"), got
    moved = run(rows[:1], studies[0], moderator_units={"zinc": "ug/dL"})
    assert one(moved, "b2000").baseline_status_value_std == pytest.approx(70.0, rel=1e-12)


def test_reported_direction_and_p_prefer_the_contrast_then_the_intervention() -> None:
    rows = [res("y2000", "control", "follow_up", n=20, mean=15.0, p_value=0.2,
                direction="decrease", p_value_qualifier=">", p_value_comparison="within_arm"),
            res("y2000", "intervention", "follow_up", n=20, mean=16.0, p_value=0.3,
                p_value_qualifier="=", p_value_comparison="within_arm")]
    r = row(rows)
    assert (r.direction, r.p_value) == ("decrease", 0.3)
    assert (r.p_value_qualifier, r.p_value_comparison) == ("=", "within_arm")
    rows.append(diff("y2000", n=40, p_value=0.04, direction="increase",
                     p_value_qualifier="<", p_value_comparison="between_arms"))
    r = row(rows)
    assert (r.direction, r.p_value) == ("increase", 0.04)
    assert (r.p_value_qualifier, r.p_value_comparison) == ("<", "between_arms")
    rows[-1].update(direction=None)
    r = row(rows)
    assert (r.direction, r.p_value) == ("decrease", 0.04)


def test_rom_direction_from_percent_changes_and_latest_weeks() -> None:
    def rows(ci: float, cc: float, wk_c: float = 12) -> list[dict]:
        return [res("y2001", "intervention", "follow_up", "percent_change", week=6, n=20,
                    mean=99.0),
                res("y2001", "intervention", "follow_up", "percent_change", week=12, n=20,
                    mean=ci),
                res("y2001", "control", "follow_up", "percent_change", week=wk_c, n=20,
                    mean=cc)]

    rom = {"measures": {TT: "ROM"}}
    r = row(rows(-12.0, 3.0), **rom)
    assert r.direction == "decrease" and not r.poolable
    assert r.reason == (
        "only percent change reported (intervention); ROM needs follow-up levels, only "
        "% changes are reported; the direction of the contrast (decrease: mean % change "
        "-12 vs 3) and the reported p-value enter the all-reports analysis "
        "(sign/censored routes)")
    assert row(rows(3.0, -12.0), **rom).direction == "increase"
    assert row(rows(3.0, -12.0, wk_c=6), **rom).direction == ""
    assert row(rows(3.0, -12.0)).direction == ""  # MD: no inferred direction
    nan_weeks = [{**x, "week": NAN} for x in rows(-12.0, 3.0)[1:]]
    assert row(nan_weeks, **rom).direction == "decrease"
    one_arm = rows(-12.0, 3.0)[:2]
    assert row(one_arm, **rom).direction == ""


def test_rom_direction_keeps_a_reported_direction() -> None:
    rows = [res("y2002", "intervention", "follow_up", "change", n=20, mean=-12.0,
                direction="increase"),
            res("y2002", "control", "follow_up", "change", n=20, mean=3.0)]
    r = row(rows, measures={TT: "ROM"})
    assert r.direction == "increase" and "ROM needs follow-up levels" not in r.reason


# ------------------------------------------------------------ spread reading


def test_spread_reading_moves_numbers_between_sd_and_se() -> None:
    df = pd.DataFrame({"sd": [1.0, 2.0, None, 4.0, 5.0, None],
                       "se": [None, 0.5, 3.0, None, None, None],
                       "spread_reading": ["se", " se ", "sd", "", None, "sd"]})
    out = apply_spread_reading(df)
    np.testing.assert_array_equal(out["sd"].to_numpy(), [NAN, NAN, 3.0, 4.0, 5.0, NAN])
    np.testing.assert_array_equal(out["se"].to_numpy(), [1.0, 0.5, NAN, NAN, NAN, NAN])
    assert df["sd"].tolist()[:2] == [1.0, 2.0]  # the input is not edited
    unread = df.assign(spread_reading=["", None, "x", "", "", ""])
    assert apply_spread_reading(unread) is unread
    bare = df.drop(columns="spread_reading")
    assert apply_spread_reading(bare) is bare


# ----------------------------------------------------------------- the table


def test_table_types_order_and_empty_input() -> None:
    rows = (finals("k2002", (16.0, 4.0, 18), (15.0, 4.0, 18))
            + finals("k2001", (16.0, 4.0, 18), (15.0, 4.0, 18))
            + [diff("k2001", n=20, mean=1.0, se=0.5, outcome=GLU, unit="mmol/L")]
            + [diff("k2000", n=20, mean=1.0, se=0.5, outcome="tsh", unit="mIU/L")])
    studies = [study("k2002"), study("k2001"), study("k2000", evidence_base="selenium_thyroid",
                                                     nutrient="selenium")]
    df = run(rows, *studies)
    assert list(zip(df.evidence_base, df.study_id, df.outcome, strict=True)) == [
        ("selenium_thyroid", "k2000", "tsh"), ("zinc_testosterone", "k2001", GLU),
        ("zinc_testosterone", "k2001", TT), ("zinc_testosterone", "k2002", TT)]
    assert list(df.index) == [0, 1, 2, 3]
    assert str(df["n_intervention"].dtype) == "Int64" and str(df["year"].dtype) == "Int64"
    for c in ("yi", "vi", "sei", "week", "estimate_partial", "cov_shared_control"):
        assert df[c].dtype == np.float64, c
    assert df["poolable"].dtype == bool and df["poolable"].all()
    assert (df["shared_control_id"] == "").all() and df["cov_shared_control"].isna().all()
    empty = compute_effects(pd.DataFrame(columns=["study_id"]),
                            frames([], [])[1])
    assert list(empty.columns) == list(EFFECT_COLUMNS) and len(empty) == 0


# ---------------------------------------------------------- partial reports


def test_partial_estimate_from_a_difference_row_in_another_unit() -> None:
    r = row([diff("e2000", n=40, mean=30.0, unit="ng/dL")])
    assert not r.poolable
    assert r.estimate_partial == pytest.approx(30 * F, rel=1e-12)
    assert r.n_total_reported == 40
    r = row([diff("e2001", n=40, mean=30.0, unit="IU/mL")])
    assert math.isnan(r.estimate_partial)
    assert math.isnan(row([diff("e2002", n=40, mean=1.0)], measures={TT: "SMD"})
                      .estimate_partial)


def test_partial_estimate_from_arm_means() -> None:
    """Change means first, then final values; the latest week of each arm; MD in the target
    unit, ROM as the log ratio of final means, nothing for SMD."""
    rows = [res("e2003", "intervention", "follow_up", "change", week=6, n=20, mean=5.0),
            res("e2003", "intervention", "follow_up", "change", week=12, n=19, mean=2.0),
            res("e2003", "control", "follow_up", "change", week=NAN, n=21, mean=0.5),
            res("e2003", "intervention", "follow_up", n=18, mean=16.0),
            res("e2003", "control", "follow_up", n=21, mean=15.0)]
    r = one(run(rows, study("e2003", n_randomised=60)), "e2003")
    assert not r.poolable and r.estimate_partial == pytest.approx(1.5, rel=1e-12)
    assert (r.n_intervention_reported, r.n_control_reported) == (20, 21)
    assert r.n_total_reported == pytest.approx(60)  # n_randomised of the study
    assert row(rows, measures={TT: "ROM"}).estimate_partial == \
        pytest.approx(math.log(16 / 15), rel=1e-12)
    assert math.isnan(row(rows, measures={TT: "SMD"}).estimate_partial)
    finals_only = [x for x in rows if x["value_type"] == "value"]
    assert row(finals_only).estimate_partial == pytest.approx(1.0, rel=1e-12)
    ngdl = [{**x, "unit": "ng/dL"} for x in finals_only]
    assert row(ngdl).estimate_partial == pytest.approx(F, rel=1e-12)
    bad = [{**x, "unit": "IU/mL"} for x in finals_only]
    assert math.isnan(row(bad).estimate_partial)
    neg = [finals_only[0], {**finals_only[1], "mean": -1.0}]
    assert math.isnan(row(neg, measures={TT: "ROM"}).estimate_partial)
    assert math.isnan(row(finals_only[:1]).estimate_partial)


def test_reported_sizes_of_a_subgroup_row() -> None:
    rows = [res("e2004", arm, "follow_up", n=n, mean=m, subgroup="men")
            for arm, n, m in (("intervention", 20, 16.0), ("control", 21, 15.0))]
    r = one(run(rows, study("e2004", n_randomised=60)), "e2004", subgroup="men")
    assert (r.n_intervention_reported, r.n_control_reported) == (20, 21)
    assert math.isnan(r.n_total_reported)
    rows = [diff("e2005", n=38, mean=1.0), diff("e2005", week=6, n=41, mean=1.0)]
    r = one(run(rows, study("e2005", n_randomised=60)), "e2005")
    assert r.n_total_reported == 41
    assert math.isnan(r.n_intervention_reported) and math.isnan(r.n_control_reported)


# -------------------------------------------------------- shared control arms


def dose_arms(measure: str = "MD", c_mean: float = 15.0, c2: dict | None = None,
              label: str | None = "placebo", c_sd: float | None = 3.0,
              i_sd: float = 4.0) -> pd.DataFrame:
    """Two doses against one placebo group, entered once per dose (subgroups)."""
    rows = []
    for sub, m in (("low", 16.0), ("high", 17.5)):
        ctrl = dict(n=25, mean=c_mean, sd=c_sd, arm_label=label) | (
            c2 or {} if sub == "high" else {})
        rows += [res("h2000", "intervention", "follow_up", n=24, mean=m, sd=i_sd,
                     subgroup=sub, arm_label=sub),
                 res("h2000", "control", "follow_up", subgroup=sub, **ctrl)]
    return run(rows, study("h2000"), measures={TT: measure})


def test_shared_control_covariance_md_rom_smd() -> None:
    """MD: var of the control mean sd^2/n; ROM: sd^2/(n m^2); SMD: 1/n (Gleser & Olkin)."""
    for measure, cov in (("MD", 9 / 25), ("ROM", 9 / (25 * 225)), ("SMD", 1 / 25)):
        df = dose_arms(measure)
        assert len(df) == 2 and df.poolable.all()
        assert (df.shared_control_id == "h2000:total_testosterone:control:placebo").all()
        np.testing.assert_allclose(df.cov_shared_control, [cov, cov], rtol=1e-12)
        # the covariance is the control arm's share of each contrast's variance (MD)
        if measure == "MD":
            np.testing.assert_allclose(df.vi - df.cov_shared_control, [16 / 24] * 2,
                                       rtol=1e-12)
    df = dose_arms(label=None)
    assert (df.shared_control_id == "h2000:total_testosterone:control:shared").all()


def test_different_control_numbers_are_not_shared() -> None:
    df = dose_arms(c2=dict(mean=15.1))
    assert (df.shared_control_id == "").all() and df.cov_shared_control.isna().all()
    df = dose_arms(c2=dict(arm_label="placebo B"))
    assert (df.shared_control_id == "").all()


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_shared_control_without_usable_control_numbers() -> None:
    df = dose_arms("ROM", c_mean=0.0)
    assert (df.shared_control_id != "").all()
    assert df.cov_shared_control.isna().all()  # no ROM with a zero control mean
    df = dose_arms("MD", c_sd=None)
    assert (df.shared_control_id != "").all() and df.cov_shared_control.isna().all()
    df = dose_arms("SMD", c_sd=0.0, i_sd=0.0)  # no SMD without spread: no covariance
    assert not df.poolable.any() and df.cov_shared_control.isna().all()
    rows = [res("h2001", "contrast", "follow_up", "difference", n=40, mean=1.0, se=0.5,
                subgroup=s) for s in ("low", "high")]
    assert (run(rows, study("h2001")).shared_control_id == "").all()


def test_whole_trial_rows_never_share_a_control() -> None:
    rows = finals("h2002", (16.0, 4.0, 24), (15.0, 3.0, 25))
    rows += [res("h2002", "intervention", "follow_up", n=24, mean=17.0, sd=4.0,
                 outcome=GLU, unit="mmol/L"),
             res("h2002", "control", "follow_up", n=25, mean=15.0, sd=3.0, outcome=GLU,
                 unit="mmol/L")]
    df = run(rows, study("h2002"))
    assert (df.shared_control_id == "").all()


def test_fingerprint_is_the_hash_of_the_plain_csv_text() -> None:
    """No index column, '\n' line ends, 12 significant digits, UTF-8: the same table gives
    the same key on every platform, and float noise below 12 digits does not change it."""
    df = pd.DataFrame({"yi": [1.0, 0.1 + 0.2, 1.5e-20], "reason": ["", "µ", ""]},
                      index=[7, 3, 5])
    text = "yi,reason\n1,\n0.3,µ\n1.5e-20,\n"
    assert effects_fingerprint(df) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_change_derivation_reads_what_then_how() -> None:
    rows = [res("o2000", arm, "follow_up", "change", n=16, mean=m, se=0.5)
            for arm, m in (("intervention", 2.0), ("control", 0.5))]
    r = row(rows)
    assert r.vi == pytest.approx(0.5, rel=1e-12)  # sd = se sqrt(n): vi = se1^2 + se2^2
    assert r.derivation == (
        "MD of change scores (intervention minus control); intervention: change as "
        "reported; intervention change: SD from SE (sd = se*sqrt(n)); control: change as "
        "reported; control change: SD from SE (sd = se*sqrt(n)); MD = m1-m2, vi = "
        "sd1^2/n1 + sd2^2/n2")


def test_single_arm_md_needs_a_unit_and_states_the_conversion() -> None:
    rows = [sa("s2007", "baseline", n=20, mean=12.0, sd=3.0, unit=None),
            sa("s2007", "follow_up", n=20, mean=14.0, sd=3.5, unit=None)]
    assert row(rows).reason == "unit not recorded"
    rows = [sa("s2008", "baseline", n=22, mean=12.0, sd=3.0),
            sa("s2008", "follow_up", "change", n=20, mean=1.8 / F, sd=2.0 / F, unit="ng/dL")]
    r = row(rows, measures={TT: "SMD"})
    assert "units ng/dL->nmol/L" in r.derivation
    r = row(rows[1:])
    assert r.yi == pytest.approx(1.8, rel=1e-12) and r.vi == pytest.approx(4 / 20, rel=1e-12)
    assert "units ng/dL->nmol/L" in r.derivation


def test_shared_control_rom_cov_with_a_control_mean_below_one() -> None:
    df = dose_arms("ROM", c_mean=0.5)
    np.testing.assert_allclose(df.cov_shared_control, [9 / (25 * 0.25)] * 2, rtol=1e-12)


def test_rom_direction_needs_both_arms_at_one_known_week() -> None:
    def rows(wk_i: float, wk_c: float) -> list[dict]:
        return [res("y2003", "intervention", "follow_up", "change", week=NAN, n=20,
                    mean=-12.0),
                res("y2003", "intervention", "follow_up", "change", week=wk_i, n=20,
                    mean=3.0),
                res("y2003", "control", "follow_up", "change", week=wk_c, n=20, mean=1.0)]

    rom = {"measures": {TT: "ROM"}}
    assert row(rows(0.5, 0.5), **rom).direction == "increase"  # week 0.5 beats a missing week
    assert row(rows(NAN, 12), **rom).direction == ""


def test_control_signature_compares_every_reported_number_within_one_trial_outcome() -> None:
    """Control rows equal in every reported column and label are one shared group; a
    difference in any one column (or another trial or outcome) means different people."""
    ctrl = dict(arm_label="placebo", n=25, mean=15.0, sd=3.0, se=0.6, ci_lower=13.8,
                ci_upper=16.2, median=15.0, q1=13.0, q3=17.0, min=9.0, max=21.0,
                geometric_mean=14.7)

    def trial(sid: str, sub: str, outcome: str = TT, **change) -> list[dict]:
        c = ctrl | change
        tp = c.pop("timepoint", "follow_up")
        vt = c.pop("value_type", "value")
        return [res(sid, "intervention", "follow_up", n=24, mean=17.0, sd=4.0, subgroup=sub,
                    outcome=outcome),
                res(sid, "control", tp, vt, subgroup=sub, outcome=outcome, **c)]

    rows = trial("h2003", "base") + trial("h2004", "base") + trial("h2003", "base", GLU)
    variants = {c: {c: v + 1.0} for c, v in ctrl.items() if c != "arm_label"}
    variants |= {"arm_label": {"arm_label": "usual care"}, "week": {"week": 13},
                 "timepoint": {"timepoint": "baseline", "week": 12},
                 "value_type": {"value_type": "change"}}
    for col, change in variants.items():
        rows += trial("h2003", col, **change)
    df = run(rows, study("h2003"), study("h2004"))
    assert len(df) == 3 + len(variants)
    assert (df.shared_control_id == "").all(), df[df.shared_control_id != ""].subgroup


def test_shared_control_rows_in_any_order_and_three_doses() -> None:
    def arm(sub: str, m: float, order: int) -> list[dict]:
        ctrl = [res("h2005", "control", "baseline", n=25, mean=14.0, sd=3.0, subgroup=sub),
                res("h2005", "control", "follow_up", n=25, mean=15.0, sd=3.0, subgroup=sub)]
        return [res("h2005", "intervention", "follow_up", n=24, mean=m, sd=4.0,
                    subgroup=sub), *ctrl[::order]]

    rows = arm("low", 16.0, 1) + arm("mid", 17.0, -1) + arm("high", 18.0, 1)
    df = run(rows, study("h2005"), prefer="final")
    assert (df.shared_control_id == "h2005:total_testosterone:control:shared").all()
    np.testing.assert_allclose(df.cov_shared_control, [9 / 25] * 3, rtol=1e-12)


def test_single_arm_labels_weeks_and_units_of_every_route() -> None:
    """Refusals name the single arm's row; each route records its week; every row is
    converted (with the outcome's molar mass) before a ratio or a standardised change."""
    base = sa("s2009", "baseline", n=20, mean=12.0, sd=3.0)
    fu = sa("s2009", "follow_up", week=10, n=20, mean=14.0, sd=3.5)
    chg = sa("s2009", "follow_up", "change", week=10, n=20, mean=2.0, sd=2.0)
    for measure in ("SMD", "ROM"):
        assert row([{**base, "sd": None}, fu], measures={TT: measure}).reason == \
            "no dispersion reported (single arm baseline)"
        assert row([base, {**fu, "sd": None}], measures={TT: measure}).reason == \
            "no dispersion reported (single arm follow-up)"
        r = row([base, {**fu, "sd": None, "se": 3.5 / math.sqrt(20)}], measures={TT: measure})
        assert r.week == 10 and "single arm follow-up: SD from SE" in r.derivation
        assert r.derivation.startswith("within-arm change, follow-up minus baseline "
                                       "(single-arm pre/post); ")
    assert row([base, fu]).week == 10
    r = row([base, chg], measures={TT: "SMD"})
    assert r.week == 10 and "; single arm: change as reported; " in r.derivation
    # baseline in ng/dL, change in nmol/L: SMD = J(n-1) * change / sd_baseline
    r = row([{**base, "mean": 12.0 / F, "sd": 3.0 / F, "unit": "ng/dL"}, chg],
            measures={TT: "SMD"})
    assert r.yi == pytest.approx(j(19) * 2.0 / 3.0, rel=1e-12)
    # follow-up in ng/dL: ROM of the converted means
    r = row([base, {**fu, "mean": 14.0 / F, "sd": 3.5 / F, "unit": "ng/dL"}],
            measures={TT: "ROM"})
    assert r.yi == pytest.approx(math.log(14 / 12), rel=1e-12)
    assert "units ng/dL->nmol/L" in r.derivation


def test_single_arm_rom_of_means_below_one() -> None:
    rows = [sa("s2010", "baseline", n=20, mean=0.8, sd=0.2),
            sa("s2010", "follow_up", n=20, mean=0.9, sd=0.25)]
    r = row(rows, measures={TT: "ROM"})
    assert r.poolable and r.yi == pytest.approx(math.log(0.9 / 0.8), rel=1e-12)
    assert r.vi == pytest.approx(0.0625 / (20 * 0.81) + 0.04 / (20 * 0.64)
                                 - 2 * 0.5 * 0.2 * 0.25 / (20 * 0.72), rel=1e-12)


def test_two_arm_ratios_of_means_below_one() -> None:
    rom = {"measures": {TT: "ROM"}}
    r = row(finals("a2008", (0.9, 0.3, 20), (0.6, 0.2, 21)), **rom)
    assert r.yi == pytest.approx(math.log(1.5), rel=1e-12)
    assert r.vi == pytest.approx(0.09 / (20 * 0.81) + 0.04 / (21 * 0.36), rel=1e-12)
    assert r.estimate_partial == pytest.approx(math.log(1.5), rel=1e-12)
    nosd = row(finals("a2009", (0.9, None, 20), (0.6, None, 21)), **rom)
    assert not nosd.poolable and nosd.estimate_partial == pytest.approx(math.log(1.5))
    geo = [res("a2010", "intervention", "follow_up", geometric_mean=0.5, ci_lower=0.4,
               ci_upper=0.625),
           res("a2010", "control", "follow_up", geometric_mean=0.4, ci_lower=0.3,
               ci_upper=0.5)]
    r = row(geo, **rom)
    z = stats.norm.ppf(0.975)
    assert r.yi == pytest.approx(math.log(1.25), rel=1e-12)
    assert r.vi == pytest.approx((math.log(0.625 / 0.4) ** 2 + math.log(0.5 / 0.3) ** 2)
                                 / (2 * z) ** 2, rel=1e-12)


def test_difference_without_estimate_but_a_p_value_or_a_direction() -> None:
    arms = [res("d2009", "intervention", "follow_up", n=20, mean=16.0),
            res("d2009", "control", "follow_up", n=20, mean=15.0)]
    for only in (dict(p_value=0.03), dict(direction="increase")):
        r = row([diff("d2009", n=40, **only), *arms])
        assert r.reason == REASON_P_ONLY, only


def test_difference_df_needs_both_arm_sizes() -> None:
    """One arm's n alone does not give n1 + n2 - 2: the trial's total n does (t, 38 df);
    arms of 40 and 30 make n = 70 >= 60: z."""
    ci = dict(mean=1.2, ci_lower=0.2, ci_upper=2.2)
    for arm in ("intervention", "control"):
        rows = [diff("d2010", n=40, **ci), res("d2010", arm, "follow_up", n=15, mean=16.0)]
        assert row(rows).vi == pytest.approx((1.0 / stats.t.ppf(0.975, 38)) ** 2,
                                             rel=1e-12), arm
    rows = [diff("d2011", **ci), res("d2011", "intervention", "follow_up", n=40, mean=16.0),
            res("d2011", "control", "follow_up", n=30, mean=15.0)]
    r = row(rows)
    assert r.vi == pytest.approx((1.0 / stats.norm.ppf(0.975)) ** 2, rel=1e-12)
    assert "se = width/(2*z)" in r.derivation


def test_difference_with_one_ci_bound_uses_the_p_value() -> None:
    for bound in (dict(ci_lower=0.5), dict(ci_upper=3.5)):
        r = row([diff("d2012", n=40, mean=2.0, p_value=0.01, p_value_qualifier="=",
                      **bound)])
        assert r.poolable, bound
        assert r.vi == pytest.approx((2.0 / stats.t.isf(0.005, 38)) ** 2, rel=1e-12)
    r = row([diff("d2013", n=40, mean=2.0, ci_upper=3.5)])
    assert r.reason == "no dispersion reported (between-arm difference)"


def test_rom_direction_note_from_mean_changes() -> None:
    rows = [res("y2004", "intervention", "follow_up", "change", n=20, mean=-12.0),
            res("y2004", "control", "follow_up", "change", n=20, mean=3.0)]
    r = row(rows, measures={TT: "ROM"})
    assert r.direction == "decrease"
    assert r.reason.endswith(
        "ROM needs follow-up levels, only changes are reported; the direction of the "
        "contrast (decrease: mean change -12 vs 3) and the reported p-value enter the "
        "all-reports analysis (sign/censored routes)")


def test_difference_smd_splits_the_total_unless_both_arm_sizes_are_known() -> None:
    """n1 = n2 = n/2 when the arms' sizes are not both reported (one arm's n is not enough)."""
    m = 38
    se = 0.5
    g = j(m) * 1.0 / (se / math.sqrt(0.1))
    for arm in ("intervention", "control"):
        rows = [diff("d2014", week=8, n=40, mean=1.0, se=se),
                res("d2014", arm, "follow_up", week=8, n=15, mean=16.0)]
        r = row(rows, measures={TT: "SMD"})
        assert r.yi == pytest.approx(g, rel=1e-12), arm
        assert r.vi == pytest.approx(0.1 + g**2 / 80, rel=1e-12)
        assert (r.n_intervention, r.n_control, r.week) == (20, 20, 8)
        assert "(sd = se/sqrt(1/n1+1/n2)) (equal allocation assumed: n1 = n2 = n/2); " \
            "Hedges g" in r.derivation


@pytest.mark.parametrize("bounds", [dict(ci_lower=None), dict(ci_lower=0.0),
                                    dict(geometric_mean=None, mean=None)])
def test_geometric_rom_needs_complete_positive_intervals(bounds: dict) -> None:
    rows = [res("a2011", "intervention", "follow_up", n=20, geometric_mean=1.0, ci_lower=0.8,
                ci_upper=1.25) | bounds,
            res("a2011", "control", "follow_up", n=25, geometric_mean=1.2, ci_lower=1.0,
                ci_upper=1.44)]
    r = row(rows, measures={TT: "ROM"})
    assert not r.poolable
    if "geometric_mean" in bounds:
        assert r.reason == "no mean reported (intervention follow-up)"
    else:
        assert r.reason == \
            "no dispersion reported (intervention follow-up: geometric mean without CI)"


def test_geometric_rom_reports_the_arm_sizes() -> None:
    rows = [res("a2012", "intervention", "follow_up", n=20, geometric_mean=10.0, ci_lower=8.0,
                ci_upper=12.5),
            res("a2012", "control", "follow_up", n=25, geometric_mean=12.0, ci_lower=10.0,
                ci_upper=14.4)]
    r = row(rows, measures={TT: "ROM"})
    assert (r.n_intervention, r.n_control) == (20, 25)
    assert math.isnan(r.prepost_correlation) and math.isnan(r.mean_intervention)


def test_change_rows_need_a_unit_for_md() -> None:
    rows = [res("c2004", arm, "follow_up", "change", n=20, mean=m, sd=2.0, unit=None)
            for arm, m in (("intervention", 1.5), ("control", 0.5))]
    assert row(rows).reason == "unit not recorded; no follow-up value reported (intervention)"
    assert row(rows, measures={TT: "SMD"}).poolable


def test_change_sd_fallback_names_the_row_it_lacks() -> None:
    def rows(base: dict, fu: dict) -> list[dict]:
        return [res("c2005", "intervention", "baseline", n=12, mean=14.0, **base),
                res("c2005", "intervention", "follow_up", n=12, mean=16.0, **fu),
                res("c2005", "intervention", "follow_up", "change", n=12, mean=2.5),
                res("c2005", "control", "follow_up", "change", n=11, mean=0.5, sd=3.0)]

    assert row(rows({}, dict(sd=5.0))).reason == (
        "no dispersion reported (intervention baseline); no follow-up value reported "
        "(control)")
    # the final-value route fails on the same row
    assert row(rows(dict(sd=4.0), {})).reason == \
        "no dispersion reported (intervention follow-up)"
    r = row(rows(dict(se=1.0), dict(sd=5.0)))
    sd_b = 1.0 * math.sqrt(12)
    sd = math.sqrt(sd_b**2 + 25 - 2 * 0.5 * sd_b * 5)
    assert r.vi == pytest.approx(sd**2 / 12 + 9 / 11, rel=1e-12)
    assert "intervention baseline: SD from SE (sd = se*sqrt(n)); intervention: change " \
        "mean as reported" in r.derivation


def test_rom_refusal_gives_only_the_arm_reason() -> None:
    rows = finals("a2013", (16.0, None, 20), (15.0, None, 20))
    assert row(rows, measures={TT: "ROM"}).reason == \
        "no dispersion reported (intervention follow-up)"


@pytest.mark.parametrize("part", [dict(q1=12.0), dict(q3=19.0), dict(min=6.0),
                                  dict(max=27.0), dict(q1=12.0, max=27.0)])
def test_half_an_iqr_or_range_is_no_spread(part: dict) -> None:
    for centre in (dict(median=15.0), dict(median=15.0, mean=15.5)):
        rows = [res("m2003", "intervention", "follow_up", n=20, mean=16.0, sd=3.0),
                res("m2003", "control", "follow_up", n=20, **centre, **part)]
        assert row(rows).reason == "no dispersion reported (control follow-up)", centre


def test_single_arm_md_from_baseline_and_follow_up_names_what_is_missing() -> None:
    base = sa("s2011", "baseline", n=20, mean=12.0, sd=3.0)
    fu = sa("s2011", "follow_up", n=20, mean=14.0, sd=3.5)
    assert row([fu]).reason == "no change and no baseline value reported (single arm)"
    assert row([{**base, "sd": None}, fu]).reason == \
        "no dispersion reported (single arm baseline)"
    assert row([base, {**fu, "sd": None}]).reason == \
        "no dispersion reported (single arm follow-up)"
    # both rows in ng/dL: converted with testosterone's molar mass
    r = row([{**base, "mean": 12.0 / F, "sd": 3.0 / F, "unit": "ng/dL"},
             {**fu, "mean": 14.0 / F, "sd": 3.5 / F, "unit": "ng/dL"}])
    assert r.yi == pytest.approx(2.0, rel=1e-12)
    assert r.vi == pytest.approx((9 + 12.25 - 2 * 0.5 * 3 * 3.5) / 20, rel=1e-12)


def test_change_sd_fallback_needs_units() -> None:
    rows = [res("c2006", "intervention", "baseline", n=12, mean=14.0, sd=4.0, unit=None),
            res("c2006", "intervention", "follow_up", n=12, mean=16.0, sd=5.0, unit=None),
            res("c2006", "intervention", "follow_up", "change", n=12, mean=2.5, unit=None),
            res("c2006", "control", "follow_up", "change", n=11, mean=0.5, sd=3.0)]
    assert row(rows).reason.startswith("unit not recorded")


@pytest.mark.parametrize("bound", [dict(ci_lower=14.0), dict(ci_upper=18.0)])
def test_arm_with_one_ci_bound_has_no_spread(bound: dict) -> None:
    rows = [res("c2007", "intervention", "follow_up", n=20, mean=16.0, **bound),
            res("c2007", "control", "follow_up", n=20, mean=15.0, sd=3.0)]
    assert row(rows).reason == "no dispersion reported (intervention follow-up)"


def test_partial_estimate_prefers_a_dated_follow_up_over_an_undated_one() -> None:
    for week in (6, 0.5):
        rows = [res("e2006", "intervention", "follow_up", "change", week=NAN, n=20, mean=5.0),
                res("e2006", "intervention", "follow_up", "change", week=week, n=20,
                    mean=2.0),
                res("e2006", "control", "follow_up", "change", week=week, n=20, mean=0.5)]
        assert row(rows).estimate_partial == pytest.approx(1.5, rel=1e-12), week


def test_weeks_half_a_week_apart_are_different_weeks() -> None:
    rows = [res("w2006", "intervention", "follow_up", week=12.5, n=20, mean=16.0, sd=4.0),
            res("w2006", "control", "follow_up", week=12, n=20, mean=15.0, sd=4.0)]
    assert row(rows).reason == "no control arm follow-up data"


def test_single_arm_rows_beside_an_intervention_arm_are_not_a_single_arm_design() -> None:
    rows = [sa("s2012", "baseline", n=20, mean=12.0, sd=3.0),
            sa("s2012", "follow_up", n=20, mean=14.0, sd=3.5),
            res("s2012", "intervention", "follow_up", n=20, mean=14.0, sd=3.5)]
    assert row(rows).reason == "no control arm follow-up data"


def test_geometric_mean_arm_below_one() -> None:
    n = 30
    rows = [res("g2003", "intervention", "follow_up", n=n, geometric_mean=0.5, ci_lower=0.4,
                ci_upper=0.625),
            res("g2003", "control", "follow_up", n=n, mean=0.45, sd=0.1)]
    s = math.sqrt(n) * math.log(0.625 / 0.4) / (2 * stats.t.ppf(0.975, n - 1))
    m = 0.5 * math.exp(s**2 / 2)
    assert row(rows).yi == pytest.approx(m - 0.45, rel=1e-12)


def test_outcome_without_a_pooling_unit_takes_unitless_rows_as_they_are() -> None:
    rows = finals("o2001", (16.0, 4.0, 20), (15.0, 3.0, 20), unit=None, outcome="score")
    r = row(rows, outcome="score")
    assert r.poolable and r.yi == 1.0 and r.effect_unit == ""


def test_each_arms_change_needs_its_unit_for_md() -> None:
    for no_unit in ("intervention", "control"):
        rows = [res("c2008", arm, "follow_up", "change", n=20, mean=m, sd=2.0,
                    unit=None if arm == no_unit else "nmol/L")
                for arm, m in (("intervention", 1.5), ("control", 0.5))]
        assert row(rows).reason.startswith("unit not recorded"), no_unit


def test_crossover_is_analysed_as_parallel_arms_and_says_so() -> None:
    rows = finals("x2010", (16.0, 4.0, 18), (15.0, 4.0, 18))
    r = one(run(rows, study("x2010", design="crossover_rct")), "x2010")
    assert r.poolable and r.vi == pytest.approx(16 / 18 + 16 / 18, rel=1e-12)
    assert r.derivation.startswith(
        "crossover analysed as parallel arms (conservative: within-person correlation "
        "ignored); MD of final values")


def test_study_level_fields_of_an_unlisted_outcome_and_a_study_category() -> None:
    rows = finals("x2011", (16.0, 4.0, 18), (15.0, 4.0, 18), outcome="score", unit=None)
    r = one(run(rows, study("other2001")), "x2011", outcome="score")
    assert r.evidence_base == "" and r.reason == "study not in studies table"
    rows = finals("x2012", (16.0, 4.0, 18), (15.0, 4.0, 18), spread_reading="sd")
    r = one(run(rows, study("x2012", baseline_status_category="replete")), "x2012")
    assert r.baseline_status_category == "replete"
    assert r.derivation.startswith("MD of final values")
    assert r.derivation.endswith("read as SD, as its printed p-value decides "
                                 "(data: spread_reading)")


def test_one_arm_alone_is_named_and_a_bare_p_value_is_p_only() -> None:
    for arm, other in (("intervention", "control"), ("control", "intervention")):
        r = row([res("x2013", arm, "follow_up", n=20, mean=16.0, sd=4.0)])
        assert r.reason == f"no {other} arm follow-up data", arm
    for only in (dict(p_value=0.03), dict(direction="increase")):
        r = row([res("x2014", "intervention", "follow_up", "change", n=20, **only)])
        assert r.reason == REASON_P_ONLY, only
