"""Effect sizes from curated results: this package's equivalent of metafor's ``escalc``.

:func:`compute_effects` turns the curated ``studies`` and ``results`` tables (numbers exactly as
reported) into the effect-size table described in ``docs/pipeline.md``: one row per
study x outcome x subgroup with ``yi``, ``vi``, ``sei``, whether the row is poolable and, for
every row, the derivation (or the reason it could not be derived).

Paths, in order of use for each study x outcome x subgroup:

(a) a reported between-arm difference (arm ``contrast``): used directly for MD, its SE taken
    from the SE, the CI or the p-value;
(b) two arms (intervention vs control): per-arm mean/SD from whatever was reported (SD, SE,
    CI, median/IQR/range, geometric mean with CI), then MD/SMD/ROM of change scores (reported,
    or computed from baseline and follow-up with a pre/post correlation) or of final values;
(c) single-arm pre/post designs: within-arm change, its SD from the pre/post correlation;
(d) crossover trials: analysed as if parallel arms (conservative), stated in the derivation.

References
----------
.. [1] Higgins JPT, Li T, Deeks JJ (eds). Chapter 6. Cochrane Handbook for Systematic Reviews
   of Interventions, version 6.4, 2023 (6.5.2, 10.5.2 on mixing change and final values).
.. [2] Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw.
   2010;36(3):1-48.
.. [3] Elbourne DR, Altman DG, Higgins JPT, et al. Meta-analyses involving cross-over trials:
   methodological issues. Int J Epidemiol. 2002;31(1):140-149.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd

from nutrimeta import conversions as cv
from nutrimeta.schema import OUTCOMES
from nutrimeta.units import UnitConversionError, conversion_factor, harmonise_unit_label

__all__ = [
    "DEFAULT_MODERATOR_UNITS",
    "EFFECT_COLUMNS",
    "EffectSettings",
    "compute_effects",
    "effects_fingerprint",
]

Measure = Literal["MD", "SMD", "ROM"]

#: Columns of the effect-size table, in order (docs/pipeline.md, "Effect-size table").
EFFECT_COLUMNS: tuple[str, ...] = (
    "evidence_base", "study_id", "outcome", "subgroup",
    "measure", "yi", "vi", "sei", "effect_unit",
    "n_intervention", "n_control",
    "design", "year", "first_author", "inclusion_status",
    "baseline_status_value_std", "baseline_status_category",
    "week", "prepost_correlation",
    "poolable", "reason", "derivation",
    "direction", "p_value",
    "trial_id", "shared_control_id", "cov_shared_control",
    "mean_intervention", "sd_intervention", "mean_control", "sd_control",
    "p_value_qualifier", "p_value_comparison", "estimate_partial",
    "n_intervention_reported", "n_control_reported", "n_total_reported",
)

#: Unit of the baseline-status moderator per nutrient.
DEFAULT_MODERATOR_UNITS: Mapping[str, str] = MappingProxyType(
    {"zinc": "umol/L", "selenium": "ug/L", "magnesium": "mmol/L"}
)

#: Specimens whose level is the serum/plasma moderator (others are not comparable).
_MODERATOR_SPECIMENS = frozenset({"serum", "plasma", ""})

REASON_P_ONLY = "only a p-value and direction reported"
REASON_NO_DISPERSION = "no dispersion reported"


@dataclass(frozen=True)
class EffectSettings:
    """How effect sizes are computed.

    Parameters
    ----------
    measures : Mapping[str, str]
        Effect measure per outcome (``'MD'``, ``'SMD'`` or ``'ROM'``); default ``'MD'``.
    target_units : Mapping[str, str]
        Unit for MD per outcome; default ``schema.OUTCOMES[outcome]['unit']``.
    prefer : {'change', 'final'}
        For MD, whether change-from-baseline or final values are used when both are
        available. ROM always uses final values; SMD uses final values unless only change
        scores are available (SDs of change and of final values must not be mixed).
    prepost_correlation : float
        Default correlation between baseline and follow-up used to derive change-score SDs;
        a results row's own ``prepost_correlation`` overrides it.
    moderator_units : Mapping[str, str]
        Unit of ``baseline_status_value_std`` per nutrient.
    timepoint : 'last' or float
        ``'last'`` uses the largest follow-up week available for every arm needed; a number
        selects that week.
    """

    measures: Mapping[str, str] = field(default_factory=dict)
    target_units: Mapping[str, str] = field(default_factory=dict)
    prefer: Literal["change", "final"] = "change"
    prepost_correlation: float = 0.5
    moderator_units: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_MODERATOR_UNITS))
    timepoint: Literal["last"] | float = "last"

    def __post_init__(self) -> None:
        if self.prefer not in ("change", "final"):
            raise ValueError(f"prefer must be 'change' or 'final', not {self.prefer!r}")
        if not -1.0 <= float(self.prepost_correlation) <= 1.0:
            raise ValueError("prepost_correlation must lie in [-1, 1]")
        for o, m in self.measures.items():
            if m not in ("MD", "SMD", "ROM"):
                raise ValueError(f"measure for {o!r} must be MD, SMD or ROM, not {m!r}")
        if self.timepoint != "last" and not isinstance(self.timepoint, int | float):
            raise ValueError("timepoint must be 'last' or a week number")

    def measure_for(self, outcome: str) -> str:
        """Effect measure used for ``outcome``."""
        return self.measures.get(outcome, "MD")

    def unit_for(self, outcome: str) -> str:
        """Target (pooling) unit for ``outcome``."""
        if outcome in self.target_units:
            return self.target_units[outcome]
        return OUTCOMES.get(outcome, {}).get("unit", "")


# ------------------------------------------------------------------------ small helpers


def _num(row: Mapping[str, Any], col: str) -> float:
    v = row.get(col)
    if v is None:
        return math.nan
    try:
        if pd.isna(v):
            return math.nan
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _str(row: Mapping[str, Any], col: str) -> str:
    v = row.get(col)
    if v is None:
        return ""
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    return str(v).strip()


def _fin(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


def _g(x: float) -> str:
    return f"{x:.4g}"


@dataclass
class _Stat:
    """Mean and SD of one arm (or change), in ``unit``, with the steps that produced them."""

    mean: float
    sd: float
    n: float
    unit: str
    steps: list[str] = field(default_factory=list)


@dataclass
class _Outcome:
    yi: float = math.nan
    vi: float = math.nan
    n1: float = math.nan
    n2: float = math.nan
    week: float = math.nan
    r: float = math.nan
    unit: str = ""
    derivation: str = ""
    reason: str = ""
    # arm summaries behind a two-arm effect (for shared-control covariances, combined arms)
    m1: float = math.nan
    sd1: float = math.nan
    m2: float = math.nan
    sd2: float = math.nan

    @property
    def ok(self) -> bool:
        return _fin(self.yi, self.vi) and self.vi > 0


class _Fail(Exception):
    """A path could not produce an effect; the message is the human reason."""


# -------------------------------------------------------------------- per-row summaries


def _ci_level(row: Mapping[str, Any]) -> float:
    lvl = _num(row, "ci_level")
    return lvl if math.isfinite(lvl) else 0.95


def _summarise(row: Mapping[str, Any], label: str) -> _Stat:
    """Mean and SD of one results row from whatever statistics were reported."""
    n = _num(row, "n")
    mean, sd, se = _num(row, "mean"), _num(row, "sd"), _num(row, "se")
    lo, hi = _num(row, "ci_lower"), _num(row, "ci_upper")
    med, q1, q3 = _num(row, "median"), _num(row, "q1"), _num(row, "q3")
    mn, mx, gm = _num(row, "min"), _num(row, "max"), _num(row, "geometric_mean")
    unit = _str(row, "unit")
    steps: list[str] = []
    has_iqr, has_rng = _fin(q1, q3), _fin(mn, mx)
    if not (math.isfinite(mean) or math.isfinite(med) or math.isfinite(gm)):
        if _str(row, "direction") or math.isfinite(_num(row, "p_value")):
            raise _Fail(REASON_P_ONLY)
        raise _Fail(f"no mean reported ({label})")
    if not math.isfinite(n) or n < 2:
        raise _Fail(f"sample size n not reported ({label})")
    if math.isfinite(mean):
        if math.isfinite(sd):
            pass
        elif math.isfinite(se):
            d = cv.sd_from_se(se, n)
            sd = float(d.value)
            steps.append(d.derivation)
        elif _fin(lo, hi):
            d = cv.se_from_ci(lo, hi, n, level=_ci_level(row))
            sd = float(d.value) * math.sqrt(n)
            steps.append(f"SD from CI: {d.derivation}, sd = se*sqrt(n)")
        elif math.isfinite(med) and (has_iqr or has_rng):
            _, sdd = cv.mean_sd_from_median(
                n, med, q1 if has_iqr else None, q3 if has_iqr else None,
                mn if has_rng else None, mx if has_rng else None)
            sd = float(sdd.value)
            steps.append(sdd.derivation)
        elif (
            _str(row, "value_type") == "change"
            and _str(row, "p_value_comparison") == "within_arm"
            and _str(row, "p_value_qualifier") in ("=", "<")
            and 0 < _num(row, "p_value") < 1
            and mean != 0
        ):
            d = cv.se_from_p(mean, _num(row, "p_value"), df=n - 1)
            sd = float(d.value) * math.sqrt(n)
            bound = " (p<x taken as p=x: conservative)" if \
                _str(row, "p_value_qualifier") == "<" else ""
            steps.append(f"SD of change from within-arm paired-t p-value{bound}: "
                         f"{d.derivation}, sd = se*sqrt(n)")
        else:
            raise _Fail(f"{REASON_NO_DISPERSION} ({label})")
    elif math.isfinite(med) and (has_iqr or has_rng):
        md, sdd = cv.mean_sd_from_median(
            n, med, q1 if has_iqr else None, q3 if has_iqr else None,
            mn if has_rng else None, mx if has_rng else None)
        mean, sd = float(md.value), float(sdd.value)
        steps += [md.derivation, sdd.derivation]
    elif math.isfinite(gm):
        if not (_fin(lo, hi) and lo > 0 and hi > 0 and gm > 0):
            raise _Fail(f"{REASON_NO_DISPERSION} ({label}: geometric mean without CI)")
        mu, s = cv.geometric_to_log_scale(gm, n, lo, hi, level=_ci_level(row))
        am, asd = cv.arithmetic_from_lognormal(mu.value, s.value)
        mean, sd = float(am.value), float(asd.value)
        steps.append(f"{s.derivation}; arithmetic {am.derivation}, {asd.derivation}")
    else:
        raise _Fail(f"{REASON_NO_DISPERSION} ({label})")
    if not (_fin(mean, sd) and sd >= 0):
        raise _Fail(f"invalid summary statistics ({label})")
    return _Stat(mean, sd, n, unit, [f"{label}: {s}" for s in steps])


def _to_unit(stats: list[_Stat], target: str, outcome: str, measure: str) -> list[str]:
    """Convert stats in place to ``target``; return derivation steps (one per distinct unit)."""
    steps: list[str] = []
    labels = {harmonise_unit_label(s.unit) if s.unit else "" for s in stats}
    tgt = harmonise_unit_label(target) if target else ""
    if labels == {tgt}:
        return steps
    if "" in labels:
        if measure == "MD":
            raise _Fail("unit not recorded")
        if len(labels) == 1:
            return steps  # SMD/ROM are unit-free when every statistic shares a unit
        raise _Fail("unit not recorded for some rows")
    done: set[str] = set()
    for s in stats:
        try:
            f = conversion_factor(s.unit, target, outcome)
        except UnitConversionError as exc:
            if measure != "MD" and len(labels) == 1:
                return []  # same (unconvertible) unit everywhere: ratios/SMDs unaffected
            raise _Fail(str(exc)) from exc
        if f != 1.0 and s.unit not in done:
            steps.append(f"units {s.unit}->{target} (x{f:.6g})")
            done.add(s.unit)
        s.mean *= f
        s.sd *= f
        s.unit = target
    return steps


def _r_for(rows: Sequence[Mapping[str, Any]], default: float) -> tuple[float, str]:
    for row in rows:
        r = _num(row, "prepost_correlation")
        if math.isfinite(r):
            return r, f"r={_g(r)} from the results row"
    return default, f"r={_g(default)} (analysis default)"


# ---------------------------------------------------------------------- arm assembly


@dataclass
class _ArmRows:
    baseline: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    change: dict[str, Any] | None = None
    percent: dict[str, Any] | None = None


def _pick_week(rows: list[dict[str, Any]], arms: tuple[str, ...], timepoint: Any) -> float:
    """Follow-up week to use: 'last' = largest week at which every arm has a follow-up row."""
    by_arm: dict[str, set[float]] = {a: set() for a in arms}
    for r in rows:
        if r["_arm"] in by_arm and r["_timepoint"] == "follow_up":
            w = _num(r, "week")
            by_arm[r["_arm"]].add(w if math.isfinite(w) else -1.0)
    all_weeks = set().union(*by_arm.values()) if by_arm else set()
    if timepoint != "last":
        return float(timepoint)
    common = set.intersection(*by_arm.values()) if by_arm else set()
    pool = common or all_weeks
    if not pool:
        return math.nan
    w = max(pool)
    return math.nan if w == -1.0 else w


def _same_week(row: Mapping[str, Any], week: float) -> bool:
    w = _num(row, "week")
    if not math.isfinite(week):
        return not math.isfinite(w)
    return math.isfinite(w) and abs(w - week) < 1e-9


def _arm_rows(rows: list[dict[str, Any]], arm: str, week: float) -> _ArmRows:
    out = _ArmRows()
    for r in rows:
        if r["_arm"] != arm:
            continue
        vt, tp = r["_value_type"], r["_timepoint"]
        if tp == "baseline" and vt == "value":
            out.baseline = out.baseline or r
        elif tp == "follow_up" and _same_week(r, week):
            if vt == "value":
                out.final = out.final or r
            elif vt == "change":
                out.change = out.change or r
            elif vt == "percent_change":
                out.percent = out.percent or r
    return out


def _final_stat(a: _ArmRows, label: str) -> _Stat:
    if a.final is None:
        if a.percent is not None and a.change is None:
            raise _Fail(f"only percent change reported ({label})")
        raise _Fail(f"no follow-up value reported ({label})")
    return _summarise(a.final, f"{label} follow-up")


def _change_stat(
    a: _ArmRows, label: str, target: str, outcome: str, measure: str, default_r: float
) -> tuple[_Stat, float, list[str]]:
    """Change from baseline for one arm: reported, or computed from baseline and follow-up.

    Returns the stat (converted to ``target``), the correlation used (nan if none) and
    unit-conversion steps.
    """
    r_rows = [x for x in (a.change, a.final, a.baseline) if x is not None]
    if a.change is not None:
        try:
            st = _summarise(a.change, f"{label} change")
            steps = _to_unit([st], target, outcome, measure)
            st.steps.insert(0, f"{label}: change as reported")
            return st, math.nan, steps
        except _Fail as exc:
            # A change mean without SD: take the SD from baseline/follow-up SDs and r.
            if not math.isfinite(_num(a.change, "mean")) or a.baseline is None \
                    or a.final is None:
                raise exc
            b = _summarise(a.baseline, f"{label} baseline")
            f = _summarise(a.final, f"{label} follow-up")
            n = _num(a.change, "n")
            chg = _Stat(_num(a.change, "mean"), 0.0, n if math.isfinite(n) else f.n,
                        _str(a.change, "unit"))
            steps = _to_unit([b, f, chg], target, outcome, measure)
            r, rsrc = _r_for(r_rows, default_r)
            d = cv.change_sd(b.sd, f.sd, r)
            chg.sd = float(d.value)
            chg.steps = [*b.steps, *f.steps,
                         f"{label}: change mean as reported, {d.derivation}; {rsrc}"]
            return chg, r, steps
    if a.baseline is None or a.final is None:
        if a.percent is not None:
            raise _Fail(f"only percent change reported ({label})")
        missing = "baseline" if a.baseline is None else "follow-up"
        raise _Fail(f"no change and no {missing} value reported ({label})")
    b = _summarise(a.baseline, f"{label} baseline")
    f = _summarise(a.final, f"{label} follow-up")
    steps = _to_unit([b, f], target, outcome, measure)
    r, rsrc = _r_for(r_rows, default_r)
    d = cv.change_sd(b.sd, f.sd, r)
    chg = _Stat(f.mean - b.mean, float(d.value), f.n, target,
                [*b.steps, *f.steps,
                 f"{label}: change = follow-up - baseline, {d.derivation}; {rsrc}"])
    return chg, r, steps


def _effect(measure: str, s1: _Stat, s2: _Stat) -> cv.Effect:
    if measure == "MD":
        return cv.mean_difference(s1.mean, s1.sd, s1.n, s2.mean, s2.sd, s2.n)
    if measure == "SMD":
        return cv.smd_hedges(s1.mean, s1.sd, s1.n, s2.mean, s2.sd, s2.n)
    if s1.mean <= 0 or s2.mean <= 0:
        raise _Fail("ROM needs positive means")
    return cv.ratio_of_means(s1.mean, s1.sd, s1.n, s2.mean, s2.sd, s2.n)


def _geometric_rom(ai: _ArmRows, ac: _ArmRows, week: float) -> _Outcome | None:
    """Log ratio of geometric means when both arms' follow-up rows give a geometric mean with
    its CI (no log-normal arithmetic means, no n needed); None when they do not."""
    rows = (ai.final, ac.final)
    if any(r is None for r in rows):
        return None
    vals = [(_num(r, "geometric_mean"), _num(r, "ci_lower"), _num(r, "ci_upper"))
            for r in rows if r is not None]
    if not all(_fin(*v) and min(v) > 0 for v in vals):
        return None
    if _str(rows[0], "unit") != _str(rows[1], "unit"):  # type: ignore[arg-type]
        raise _Fail("geometric means of the two arms are in different units")
    n1, n2 = (_num(r, "n") for r in rows if r is not None)
    eff = cv.ratio_of_geometric_means(*vals[0], *vals[1], level=_ci_level(rows[0] or {}),
                                      n1=n1, n2=n2)
    return _Outcome(yi=float(eff.yi), vi=float(eff.vi), n1=n1, n2=n2, week=week, r=math.nan,
                    unit="", derivation="ROM of final geometric means (log intervention/"
                    f"control); {eff.derivation}")


# -------------------------------------------------------------------------- the paths


def _two_arm(
    rows: list[dict[str, Any]], outcome: str, measure: str, target: str,
    settings: EffectSettings, design: str,
) -> _Outcome:
    week = _pick_week(rows, ("intervention", "control"), settings.timepoint)
    ai = _arm_rows(rows, "intervention", week)
    ac = _arm_rows(rows, "control", week)
    for lab, a in (("intervention", ai), ("control", ac)):
        if a.final is None and a.change is None and a.percent is None:
            raise _Fail(f"no {lab} arm follow-up data")
    head = ""
    if design == "crossover_rct":
        head = ("crossover analysed as parallel arms (conservative: within-person "
                "correlation ignored); ")
    errors: list[str] = []

    def finals() -> tuple[_Stat, _Stat, list[str]]:
        si, sc = _final_stat(ai, "intervention"), _final_stat(ac, "control")
        return si, sc, _to_unit([si, sc], target, outcome, measure)

    def changes() -> tuple[_Stat, _Stat, float, list[str]]:
        si, ri, ui = _change_stat(ai, "intervention", target, outcome, measure,
                                  settings.prepost_correlation)
        sc, rc, uc = _change_stat(ac, "control", target, outcome, measure,
                                  settings.prepost_correlation)
        r = ri if math.isfinite(ri) else rc
        return si, sc, r, list(dict.fromkeys(ui + uc))

    if measure == "ROM":
        geo = _geometric_rom(ai, ac, week)
        if geo is not None:
            return geo
        order = ["final"]
    elif measure == "SMD":
        order = ["final", "change"]
    else:
        order = ["change", "final"] if settings.prefer == "change" else ["final", "change"]
    for i, kind in enumerate(order):
        try:
            if kind == "final":
                si, sc, ustep = finals()
                r = math.nan
                what = f"{measure} of final values"
            else:
                si, sc, r, ustep = changes()
                what = f"{measure} of change scores"
        except _Fail as exc:
            errors.append(str(exc))
            continue
        eff = _effect(measure, si, sc)
        if i > 0:
            what += f" ({order[0]} values not available for both arms)"
            if measure == "SMD":
                what += " [SMD of change scores: SD differs in kind from final-value SMDs]"
        sense = " (log intervention/control)" if measure == "ROM" else \
            " (intervention minus control)"
        steps = [head + what + sense, *si.steps, *sc.steps,
                 *ustep, eff.derivation]
        return _Outcome(
            yi=float(eff.yi), vi=float(eff.vi), n1=si.n, n2=sc.n, week=week, r=r,
            unit=target if measure == "MD" else "",
            derivation="; ".join(s for s in steps if s),
            m1=si.mean, sd1=si.sd, m2=sc.mean, sd2=sc.sd,
        )
    if measure == "ROM" and not errors:
        errors.append("ROM needs follow-up means of both arms")
    # "no change and no baseline" only says the change path was unavailable; keep it only
    # when it is the sole explanation.
    informative = [e for e in errors if not e.startswith("no change and no ")]
    raise _Fail(_join_reasons(informative or errors))


def _single_arm(
    rows: list[dict[str, Any]], outcome: str, measure: str, target: str,
    settings: EffectSettings,
) -> _Outcome:
    week = _pick_week(rows, ("single_arm",), settings.timepoint)
    a = _arm_rows(rows, "single_arm", week)
    if a.final is None and a.change is None:
        if a.percent is not None:
            raise _Fail("only percent change reported (single arm)")
        raise _Fail("no follow-up data (single arm)")
    head = "within-arm change, follow-up minus baseline (single-arm pre/post)"
    r_rows = [x for x in (a.change, a.final, a.baseline) if x is not None]
    if measure == "MD":
        st, r, ustep = _change_stat(a, "single arm", target, outcome, measure,
                                    settings.prepost_correlation)
        vi = st.sd**2 / st.n
        return _Outcome(yi=st.mean, vi=vi, n1=st.n, week=week, r=r, unit=target,
                        derivation="; ".join([head, *st.steps, *ustep,
                                              "vi = sd_change^2/n"]))
    if a.baseline is None:
        raise _Fail(f"{measure} for a single arm needs the baseline value")
    b = _summarise(a.baseline, "single arm baseline")
    r, rsrc = _r_for(r_rows, settings.prepost_correlation)
    if measure == "SMD":
        if a.final is not None:
            f = _summarise(a.final, "single arm follow-up")
            ustep = _to_unit([b, f], target, outcome, measure)
            diff, n, extra = f.mean - b.mean, f.n, f.steps
        else:
            st, _, ustep = _change_stat(a, "single arm", target, outcome, measure,
                                        settings.prepost_correlation)
            ustep += _to_unit([b], target, outcome, measure)
            diff, n, extra = st.mean, st.n, st.steps
        eff = cv.single_arm_change(b.mean, b.sd, b.mean + diff, b.sd, n, r, "SMD")
    else:
        if a.final is None:
            raise _Fail("ROM for a single arm needs the follow-up value")
        f = _summarise(a.final, "single arm follow-up")
        ustep = _to_unit([b, f], target, outcome, measure)
        if b.mean <= 0 or f.mean <= 0:
            raise _Fail("ROM needs positive means")
        n, extra = f.n, f.steps
        eff = cv.single_arm_change(b.mean, b.sd, f.mean, f.sd, n, r, "ROM")
    return _Outcome(yi=float(eff.yi), vi=float(eff.vi), n1=n, week=week, r=r, unit="",
                    derivation="; ".join([head, *b.steps, *extra, *ustep,
                                          eff.derivation, rsrc]))


def _difference(
    rows: list[dict[str, Any]], outcome: str, measure: str, target: str,
    settings: EffectSettings,
) -> _Outcome:
    crow = [r for r in rows if r["_arm"] == "contrast" and r["_value_type"] == "difference"]
    if not crow:
        raise _Fail("no between-arm difference reported")
    week = _pick_week(crow, ("contrast",), settings.timepoint)
    cands = [r for r in crow if _same_week(r, week)]
    if not cands:  # an explicit week the contrast rows lack (never with 'last')
        raise _Fail(f"no between-arm difference reported at week {_g(week)}")
    row = cands[0]
    est = _num(row, "mean")
    if not math.isfinite(est):
        if _str(row, "direction") or math.isfinite(_num(row, "p_value")):
            raise _Fail(REASON_P_ONLY)
        raise _Fail("no estimate in the difference row")
    n_tot = _num(row, "n")
    n1, n2 = _arm_sizes(rows, week)
    steps = ["reported between-arm difference (intervention minus control)"]
    se = _num(row, "se")
    lo, hi = _num(row, "ci_lower"), _num(row, "ci_upper")
    p, qual = _num(row, "p_value"), _str(row, "p_value_qualifier")
    if _fin(n1, n2):
        df, n_for = n1 + n2 - 2, n1 + n2
    elif math.isfinite(n_tot):
        df, n_for = n_tot - 2, n_tot
    else:
        df, n_for = math.nan, math.nan
    if math.isfinite(se):
        steps.append("SE as reported")
    elif _fin(lo, hi):
        use_t = math.isfinite(df) and n_for < cv.T_THRESHOLD_N and df > 0
        d = cv.se_from_ci(lo, hi, None, level=_ci_level(row),
                          dist="t" if use_t else "z", df=df if use_t else None)
        se = float(d.value)
        steps.append(d.derivation.replace("n-1 df", "n1+n2-2 df").replace("given df",
                                                                           "n1+n2-2 df"))
    elif math.isfinite(p) and 0 < p < 1 and qual in ("=", "<", "") and est != 0 \
            and _str(row, "p_value_comparison") in ("", "between_arms", "between_arms_change"):
        d = cv.se_from_p(est, p, df=df if math.isfinite(df) and df > 0 else None)
        se = float(d.value)
        note = " (p<x taken as p=x: conservative, SE overestimated)" if qual == "<" else ""
        steps.append(d.derivation + note)
    else:
        raise _Fail(f"{REASON_NO_DISPERSION} (between-arm difference)")
    st = _Stat(est, se, n_for, _str(row, "unit"))
    if measure == "MD":
        ustep = _to_unit([st], target, outcome, measure)
        return _Outcome(yi=st.mean, vi=st.sd**2, n1=n1, n2=n2, week=week, unit=target,
                        derivation="; ".join([*steps, *ustep, "vi = se^2"]))
    if measure == "SMD":
        if _fin(n1, n2):
            split = ""
        elif math.isfinite(n_tot):
            n1 = n2 = n_tot / 2
            split = " (equal allocation assumed: n1 = n2 = n/2)"
        else:
            raise _Fail("SMD from a reported difference needs the group sizes")
        sd_p = se / math.sqrt(1 / n1 + 1 / n2)
        j = float(cv.hedges_correction(n1 + n2 - 2))
        g = j * est / sd_p
        vi = 1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2))
        steps.append(f"pooled SD back-calculated from SE of the difference "
                     f"(sd = se/sqrt(1/n1+1/n2)){split}; Hedges g with exact J, "
                     "vi = 1/n1+1/n2+g^2/(2(n1+n2))")
        return _Outcome(yi=g, vi=vi, n1=n1, n2=n2, week=week, derivation="; ".join(steps))
    raise _Fail("ROM needs arm means (only a between-arm difference reported)")


def _arm_sizes(rows: list[dict[str, Any]], week: float) -> tuple[float, float]:
    out = []
    for arm in ("intervention", "control"):
        ns = [_num(r, "n") for r in rows if r["_arm"] == arm and r["_timepoint"] == "follow_up"
              and _same_week(r, week)]
        ns = [x for x in ns if math.isfinite(x)]
        out.append(max(ns) if ns else math.nan)
    return out[0], out[1]


def _join_reasons(reasons: list[str]) -> str:
    uniq = list(dict.fromkeys(r for r in reasons if r))
    if REASON_P_ONLY in uniq:
        return REASON_P_ONLY
    return "; ".join(uniq)


# ----------------------------------------------------------------------- study level


def _status_reason(study: Mapping[str, Any]) -> str:
    status = _str(study, "inclusion_status")
    why = _str(study, "inclusion_reason") or "no reason recorded"
    if status == "included":
        return ""
    if status == "not_poolable":
        return f"study inclusion_status is not_poolable: {why}"
    if status == "separate":
        return f"separate population: {why}"
    if status == "excluded":
        return f"study excluded: {why}"
    return f"study inclusion_status is {status or 'missing'}"


def _baseline_std(study: Mapping[str, Any], settings: EffectSettings) -> float:
    value = _num(study, "baseline_status_value")
    unit = _str(study, "baseline_status_unit")
    nutrient = _str(study, "nutrient")
    specimen = _str(study, "baseline_status_specimen")
    target = settings.moderator_units.get(nutrient)
    if not math.isfinite(value) or not unit or not target or specimen not in _MODERATOR_SPECIMENS:
        return math.nan
    try:
        return value * conversion_factor(unit, target, nutrient)
    except UnitConversionError:
        return math.nan


def _reported(rows: list[dict[str, Any]]) -> tuple[str, float]:
    """Direction and p-value to show for a study x outcome (contrast rows first)."""
    order = sorted(rows, key=lambda r: {"contrast": 0, "intervention": 1, "single_arm": 1}
                   .get(r["_arm"], 2))
    direction, p = "", math.nan
    for r in order:
        if not direction and _str(r, "direction"):
            direction = _str(r, "direction")
        if not math.isfinite(p) and math.isfinite(_num(r, "p_value")):
            p = _num(r, "p_value")
    return direction, p


def _change_direction(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """Direction of the between-arm contrast from both arms' follow-up changes, for a ratio
    measure that cannot use them (a ratio of means needs levels): ``(direction, note)``.

    The arms' centres must be of one kind (both means or both medians, both changes or both
    % changes) at the latest common week. Randomised arms have the same expected baseline,
    so the sign of the difference in changes is the sign of the log ratio of follow-up
    levels; only the sign is used (the all-reports sign and censored routes), never a level.
    """
    for vt in ("change", "percent_change"):
        for col in ("mean", "median"):
            found: dict[str, tuple[float, float]] = {}
            for arm in ("intervention", "control"):
                cands = [(_num(r, "week"), _num(r, col)) for r in rows
                         if r["_arm"] == arm and r["_timepoint"] == "follow_up"
                         and r["_value_type"] == vt and math.isfinite(_num(r, col))]
                if cands:
                    found[arm] = max(cands, key=lambda wc: wc[0] if math.isfinite(wc[0])
                                     else -1.0)
            if len(found) < 2:
                continue
            (wi, ci), (wc, cc) = found["intervention"], found["control"]
            same_week = wi == wc or (math.isnan(wi) and math.isnan(wc))
            if not same_week or ci == cc:
                return "", ""
            direction = "decrease" if ci < cc else "increase"
            what = "% change" if vt == "percent_change" else "change"
            return direction, (
                f"ROM needs follow-up levels, only {what}s are reported; the direction of the "
                f"contrast ({direction}: {col} {what} {_g(ci)} vs {_g(cc)}) and the reported "
                "p-value enter the all-reports analysis (sign/censored routes)")
    return "", ""


def apply_spread_reading(results: pd.DataFrame) -> pd.DataFrame:
    """Apply the per-row reading of a bare '±' that a printed p-value decided
    (``spread_reading``, set with ``nutrimeta check``) over the analysis spec's default.

    A row read as ``se`` has its number moved to ``se``; a row read as ``sd`` whose number a
    policy moved to ``se`` gets it back. A policy that excludes unlabelled spreads (both cells
    empty) stays in force. The curated file is never edited.
    """
    if "spread_reading" not in results.columns:
        return results
    reading = results["spread_reading"].fillna("").astype(str).str.strip()
    if not reading.isin(("sd", "se")).any():
        return results
    out = results.copy()
    sd = pd.to_numeric(out["sd"], errors="coerce")
    se = pd.to_numeric(out["se"], errors="coerce")
    to_se = (reading == "se") & sd.notna()
    to_sd = (reading == "sd") & sd.isna() & se.notna()
    out["se"] = se.mask(to_se & se.isna(), sd).mask(to_sd, float("nan"))
    out["sd"] = sd.mask(to_se, float("nan")).mask(to_sd, se)
    return out


def compute_effects(
    studies: pd.DataFrame, results: pd.DataFrame, spec: EffectSettings | None = None
) -> pd.DataFrame:
    """Compute the effect-size table from curated studies and results.

    Parameters
    ----------
    studies : pandas.DataFrame
        Rows of ``studies.csv`` (one or several evidence bases).
    results : pandas.DataFrame
        Rows of ``results.csv``, numbers as reported.
    spec : EffectSettings, optional
        Measures, units, preference between change and final values, default pre/post
        correlation, moderator units and time point; defaults to ``EffectSettings()``.

    Returns
    -------
    pandas.DataFrame
        One row per study x outcome x subgroup with exactly :data:`EFFECT_COLUMNS`. Rows that
        cannot be pooled have ``poolable=False`` and a human ``reason``; their ``direction``
        and ``p_value`` are kept for reports.
    """
    settings = spec if spec is not None else EffectSettings()
    results = apply_spread_reading(results)
    study_map: dict[str, dict[str, Any]] = {}
    for rec in studies.to_dict("records"):
        study_map[_str(rec, "study_id")] = rec
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for rec in results.to_dict("records"):
        rec["_arm"] = _str(rec, "arm")
        rec["_timepoint"] = _str(rec, "timepoint")
        rec["_value_type"] = _str(rec, "value_type")
        key = (_str(rec, "study_id"), _str(rec, "outcome"), _str(rec, "subgroup"))
        groups.setdefault(key, []).append(rec)

    out: list[dict[str, Any]] = []
    for (sid, outcome, subgroup), rows in groups.items():
        study = study_map.get(sid, {})
        measure = settings.measure_for(outcome)
        target = settings.unit_for(outcome)
        design = _str(study, "design")
        res = _Outcome()
        try:
            res = _compute_one(rows, outcome, measure, target, settings, design)
        except _Fail as exc:
            res.reason = str(exc)
        except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
            res.reason = f"could not compute: {exc}"
        reasons = []
        if not study:
            reasons.append("study not in studies table")
        status_reason = _status_reason(study) if study else ""
        if status_reason:
            reasons.append(status_reason)
        if subgroup.startswith("alt-source:"):
            reasons.append(f"alternative source for the same trial ({subgroup}); not pooled")
        if not res.ok:
            res.yi = res.vi = math.nan
            if not res.reason:
                res.reason = "effect could not be computed"
            reasons.append(res.reason)
        direction, p = _reported(rows)
        if not res.ok and measure == "ROM" and not direction:
            direction, why = _change_direction(rows)
            if direction:
                reasons.append(why)
        poolable = res.ok and not reasons
        stratum_status = next((_str(r, "subgroup_status_category") for r in rows
                               if _str(r, "subgroup_status_category")), "")
        row_reading = next((_str(r, "spread_reading") for r in rows
                            if _str(r, "spread_reading")), "")
        if res.ok and row_reading:
            res.derivation += (f"; the bare '±' of this trial is read as {row_reading.upper()}, "
                               "as its printed p-value decides (data: spread_reading)")
        out.append({
            "evidence_base": _str(study, "evidence_base")
            or OUTCOMES.get(outcome, {}).get("base", ""),
            "study_id": sid,
            "outcome": outcome,
            "subgroup": subgroup,
            "measure": measure,
            "yi": res.yi,
            "vi": res.vi,
            "sei": math.sqrt(res.vi) if res.ok else math.nan,
            "effect_unit": {"MD": target, "SMD": "", "ROM": "log ratio"}[measure],
            "n_intervention": res.n1,
            "n_control": res.n2,
            "design": design,
            "year": _num(study, "year"),
            "first_author": _str(study, "first_author"),
            "inclusion_status": _str(study, "inclusion_status"),
            "baseline_status_value_std": _baseline_std(study, settings) if study else math.nan,
            "baseline_status_category": stratum_status
            or _str(study, "baseline_status_category") or "unknown",
            "week": res.week,
            "prepost_correlation": res.r,
            "poolable": bool(poolable),
            "reason": "" if poolable else "; ".join(dict.fromkeys(reasons)),
            "derivation": res.derivation if res.ok else "",
            "direction": direction,
            "p_value": p,
            "trial_id": sid,
            "shared_control_id": "",
            "cov_shared_control": math.nan,
            "mean_intervention": res.m1 if res.ok else math.nan,
            "sd_intervention": res.sd1 if res.ok else math.nan,
            "mean_control": res.m2 if res.ok else math.nan,
            "sd_control": res.sd2 if res.ok else math.nan,
            **_partial_report(rows, measure, target, outcome,
                              math.nan if subgroup else _num(study, "n_randomised")),
        })
    _mark_shared_controls(out, groups)
    return _frame(out)


def _compute_one(
    rows: list[dict[str, Any]], outcome: str, measure: str, target: str,
    settings: EffectSettings, design: str,
) -> _Outcome:
    arms = {r["_arm"] for r in rows}
    has_numbers = any(
        math.isfinite(_num(r, c)) for r in rows for c in ("mean", "median", "geometric_mean"))
    if not has_numbers and any(
            _str(r, "direction") or math.isfinite(_num(r, "p_value")) for r in rows):
        raise _Fail(REASON_P_ONLY)
    if design == "single_arm_prepost" or (arms <= {"single_arm"} and "single_arm" in arms):
        return _single_arm(rows, outcome, measure, target, settings)
    has_contrast = "contrast" in arms
    has_arms = bool(arms & {"intervention", "control"})
    reasons: list[str] = []
    paths = ["difference", "arms"] if measure == "MD" else ["arms", "difference"]
    for path in paths:
        if path == "difference" and not has_contrast:
            continue
        if path == "arms" and not has_arms:
            continue
        try:
            if path == "difference":
                return _difference(rows, outcome, measure, target, settings)
            return _two_arm(rows, outcome, measure, target, settings, design)
        except _Fail as exc:
            reasons.append(str(exc))
    if not reasons:
        reasons.append("no usable rows (need intervention and control arms, a single arm, "
                       "or a between-arm difference)")
    raise _Fail(_join_reasons(reasons))


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records, columns=list(EFFECT_COLUMNS))
    for c in ("yi", "vi", "sei", "baseline_status_value_std", "week",
              "prepost_correlation", "p_value", "cov_shared_control", "mean_intervention",
              "sd_intervention", "mean_control", "sd_control", "estimate_partial",
              "n_intervention_reported", "n_control_reported", "n_total_reported"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in ("n_intervention", "n_control", "year"):
        df[c] = pd.to_numeric(df[c], errors="coerce").round().astype("Int64")
    df["poolable"] = df["poolable"].astype(bool)
    for c in ("evidence_base", "study_id", "outcome", "subgroup", "measure", "effect_unit",
              "design", "first_author", "inclusion_status", "baseline_status_category",
              "reason", "derivation", "direction", "trial_id", "shared_control_id",
              "p_value_qualifier", "p_value_comparison"):
        df[c] = df[c].fillna("").astype(str)
    if len(df):
        df = df.sort_values(["evidence_base", "study_id", "outcome", "subgroup"],
                            kind="stable").reset_index(drop=True)
    return df


# ------------------------------------------------------------- partial reports


def _arm_mean(rows: list[dict[str, Any]], arm: str, value_type: str, target: str,
              outcome: str, measure: str) -> tuple[float, float]:
    """Latest follow-up mean of one arm (in ``target`` for MD) and its n; nan if none."""
    cands = [r for r in rows if r["_arm"] == arm and r["_timepoint"] == "follow_up"
             and r["_value_type"] == value_type and math.isfinite(_num(r, "mean"))]
    if not cands:
        return math.nan, math.nan
    r = max(cands, key=lambda x: _num(x, "week") if math.isfinite(_num(x, "week")) else -1)
    m = _num(r, "mean")
    if measure == "MD":
        try:
            m *= conversion_factor(_str(r, "unit"), target, outcome)
        except UnitConversionError:
            return math.nan, math.nan
    return m, _num(r, "n")


def _partial_report(rows: list[dict[str, Any]], measure: str, target: str, outcome: str,
                    n_randomised: float = math.nan) -> dict[str, Any]:
    """What a (possibly incomplete) report carries, for the all-reports routes.

    ``estimate_partial``: the contrast from a reported difference or from both arms' means
    (change scores first, then final values; MD in ``target``, ROM as a log ratio of final
    means), whether or not a dispersion was reported; ``nan`` for SMD (needs the SD) or
    when the means are missing. Arm and total sizes as reported (the total from a contrast
    row, else the study's ``n_randomised`` for a whole-trial row); the p-value's qualifier and
    comparison of the row :func:`_reported` takes the p-value from.
    """
    order = sorted(rows, key=lambda r: {"contrast": 0, "intervention": 1, "single_arm": 1}
                   .get(r["_arm"], 2))
    qual = comp = ""
    for r in order:
        if math.isfinite(_num(r, "p_value")):
            qual, comp = _str(r, "p_value_qualifier"), _str(r, "p_value_comparison")
            break
    est = math.nan
    diff = [r for r in rows if r["_arm"] == "contrast" and r["_value_type"] == "difference"
            and math.isfinite(_num(r, "mean"))]
    if diff and measure == "MD":
        try:
            est = _num(diff[0], "mean") * conversion_factor(_str(diff[0], "unit"), target,
                                                             outcome)
        except UnitConversionError:
            est = math.nan
    elif measure in ("MD", "ROM"):
        for vt in (("change", "value") if measure == "MD" else ("value",)):
            m1, _ = _arm_mean(rows, "intervention", vt, target, outcome, measure)
            m2, _ = _arm_mean(rows, "control", vt, target, outcome, measure)
            if _fin(m1, m2):
                if measure == "MD":
                    est = m1 - m2
                elif m1 > 0 and m2 > 0:
                    est = math.log(m1 / m2)
                break
    n_arm = {}
    for arm in ("intervention", "control"):
        ns = [_num(r, "n") for r in rows if r["_arm"] == arm]
        ns = [x for x in ns if math.isfinite(x)]
        n_arm[arm] = max(ns) if ns else math.nan
    tots = [_num(r, "n") for r in rows if r["_arm"] == "contrast"]
    tots = [x for x in tots if math.isfinite(x)]
    return {
        "p_value_qualifier": qual,
        "p_value_comparison": comp,
        "estimate_partial": est,
        "n_intervention_reported": n_arm["intervention"],
        "n_control_reported": n_arm["control"],
        "n_total_reported": max(tots) if tots else n_randomised,
    }


# ------------------------------------------------------------- shared control arms

_CONTROL_SIGNATURE_COLS = ("arm_label", "timepoint", "week", "value_type", "n", "mean", "sd",
                           "se", "ci_lower", "ci_upper", "median", "q1", "q3", "min", "max",
                           "geometric_mean")


def _control_signature(rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The control arm's rows of one study x outcome x subgroup, as a comparable tuple.

    Two subgroups whose control rows are identical (same label and the same reported
    numbers) describe one control group shared by several comparisons (dose arms against
    one placebo group, entered once per dose). Strata of different participants have
    different control numbers and so different signatures.
    """
    sig = []
    for r in rows:
        if r["_arm"] != "control":
            continue
        vals = []
        for c in _CONTROL_SIGNATURE_COLS:
            v = _num(r, c) if c not in ("arm_label", "timepoint", "value_type") else _str(r, c)
            vals.append("" if isinstance(v, float) and math.isnan(v) else v)
        sig.append(tuple(vals))
    return tuple(sorted(sig, key=repr))


def _shared_control_cov(rec: dict[str, Any]) -> float:
    """The part of a contrast's sampling variance that comes from its control arm.

    Two contrasts against one shared control group have this covariance (MD, ROM); for SMD
    the value stored is ``1/n_c`` and the pair term ``g_i g_j / (2 N)`` is added where the
    matrix is built (:func:`nutrimeta.trials.outcome_covariance`).

    - MD: ``sd_c^2 / n_c`` (the variance of the shared control mean);
    - ROM: ``sd_c^2 / (n_c m_c^2)`` (delta method for ``log m_c``);
    - SMD: ``1 / n_c`` (Gleser & Olkin 2009).

    References
    ----------
    Gleser LJ, Olkin I. Stochastically dependent effect sizes. In: Cooper H, Hedges LV,
    Valentine JC (eds). The Handbook of Research Synthesis and Meta-Analysis, 2nd ed.
    Russell Sage; 2009: 357-376. Viechtbauer W. metafor ``vcalc`` (multi-treatment studies).
    """
    n_c, sd_c, m_c = rec["n_control"], rec["sd_control"], rec["mean_control"]
    if not _fin(n_c, sd_c) or n_c <= 0:
        return math.nan
    if rec["measure"] == "MD":
        return sd_c**2 / n_c
    if rec["measure"] == "ROM":
        return sd_c**2 / (n_c * m_c**2) if _fin(m_c) and m_c > 0 else math.nan
    return 1.0 / n_c


def _mark_shared_controls(
    out: list[dict[str, Any]], groups: dict[tuple[str, str, str], list[dict[str, Any]]]
) -> None:
    """Fill ``shared_control_id`` and ``cov_shared_control`` for contrasts sharing a control."""
    by_key = {(r["study_id"], r["outcome"], r["subgroup"]): r for r in out}
    sigs: dict[tuple[str, str, tuple[Any, ...]], list[tuple[str, str, str]]] = {}
    for key, rows in groups.items():
        sig = _control_signature(rows)
        if sig and key[2]:
            sigs.setdefault((key[0], key[1], sig), []).append(key)
    for (sid, outcome, _), keys in sigs.items():
        if len(keys) < 2:
            continue
        label = next((_str(r, "arm_label") for r in groups[keys[0]] if r["_arm"] == "control"),
                     "")
        for key in keys:
            rec = by_key[key]
            rec["shared_control_id"] = f"{sid}:{outcome}:control:{label or 'shared'}"
            rec["cov_shared_control"] = _shared_control_cov(rec)


def effects_fingerprint(df: pd.DataFrame) -> str:
    """SHA-256 of the effect-size table's CSV text, for caching downstream stages."""
    text = df.to_csv(index=False, lineterminator="\n", float_format="%.12g")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

