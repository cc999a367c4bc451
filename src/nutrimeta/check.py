"""Consistency checks of reported trial statistics (``nutrimeta check``).

A statcheck-like pass over ``results.csv``: where a report prints both arms' means, a
dispersion, group sizes and a between-arm p-value, the p-value is recomputed and compared with
the printed one. For a bare "±" (``spread_as_printed`` = "± (unlabelled)") both readings are
tried, and the reading the printed p-value supports is named with its factor of agreement. Other
rules: order of summary statistics (mean within [min, max], median within [q1, q3]) and the
plausibility of a dispersion for a positive quantity (an SD far above the mean hints at an SE/SD
or unit confusion).

The comparison is made on the standard-error scale: the printed p (two-sided, Welch t with the
reading's Welch-Satterthwaite df) implies a standard error of the difference, ``|d| / t_{p/2}``,
which is set against the standard error under each reading. A ratio near 1 means agreement; a
ratio of 7 means the printed p needs a standard error seven times the reading's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from nutrimeta.io_utils import atomic_write_json, atomic_write_text

UNLABELLED = "± (unlabelled)"
#: Printed and recomputed p agree if the implied standard errors differ by less than this factor
#: (printed p-values are rounded, tests differ: Welch, Student, ANCOVA, Mann-Whitney).
AGREE_FACTOR = 1.3
#: A reading is "decided" by the printed p when its standard error is within this factor of
#: the one the p implies and the other reading's is not.
DECIDE_FACTOR = 2.0
#: Above this printed p the implied standard error is too sensitive to rounding to decide.
DECIDE_MAX_P = 0.5
#: Beyond this factor the disagreement is grave (severity "error").
GRAVE_FACTOR = 3.0
#: A positive quantity whose SD exceeds this multiple of its mean is flagged.
CV_LIMIT = 2.0
SEVERITIES = ("error", "warning", "info")
RULES = {
    "p_recompute": "printed between-arm p vs the p recomputed from means, dispersions and n",
    "unlabelled_reading": "which reading of a bare '±' (SD or SE) the printed p supports",
    "p_bound": "a printed p bound ('p < x', 'p > x') vs the recomputed p",
    "order": "mean within [min, max], median within [q1, q3] and [min, max]",
    "dispersion": "SD of a positive quantity far above its mean (SE/SD or unit confusion)",
}
FINDING_COLUMNS = ("evidence_base", "file", "row", "study_id", "outcome", "subgroup", "rule",
                   "severity", "message", "reading", "numbers")


@dataclass
class Finding:
    """One checker finding, located at a results row."""

    evidence_base: str
    file: str
    row: int
    study_id: str
    outcome: str
    subgroup: str
    rule: str
    severity: str
    message: str
    reading: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArmSummary:
    """Mean, dispersion and size of one arm."""

    mean: float
    spread: float
    n: float


def welch(a: ArmSummary, b: ArmSummary, spread: str = "sd") -> tuple[float, float, float]:
    """Welch t-test from summary statistics: (p two-sided, SE of the difference, df).

    ``spread`` says whether ``ArmSummary.spread`` is an SD or an SE of the mean.
    """
    v1 = a.spread**2 / a.n if spread == "sd" else a.spread**2
    v2 = b.spread**2 / b.n if spread == "sd" else b.spread**2
    se = math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / (a.n - 1) + v2**2 / (b.n - 1)) if v1 + v2 > 0 else math.inf
    if se == 0:
        return (0.0 if a.mean != b.mean else 1.0), se, df
    t = abs(a.mean - b.mean) / se
    return float(2 * stats.t.sf(t, df)), se, df


def se_implied_by_p(diff: float, p: float, df: float) -> float:
    """Standard error of a difference that a two-sided p-value (t with ``df``) implies."""
    if not (0 < p < 1) or diff == 0:
        return math.nan
    return abs(diff) / float(stats.t.isf(p / 2, df))


def _num(row: Mapping[str, Any], col: str) -> float:
    v = row.get(col)
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return x


def _str(row: Mapping[str, Any], col: str) -> str:
    v = row.get(col)
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA \
        else str(v).strip()


def _g(x: float) -> float:
    return float(f"{x:.4g}") if math.isfinite(x) else math.nan


def _arm_n(row: Mapping[str, Any], study: Mapping[str, Any]) -> tuple[float, str]:
    n = _num(row, "n")
    if math.isfinite(n):
        return n, "row"
    total = _num(study, "n_randomised")
    if math.isfinite(total):
        return total / 2, "equal split of n_randomised"
    return math.nan, ""


def _spread(row: Mapping[str, Any]) -> tuple[float, str]:
    """The row's dispersion and its kind: 'sd', 'se' or 'pm' (a bare '±', kept in ``sd``)."""
    sd, se = _num(row, "sd"), _num(row, "se")
    if math.isfinite(sd):
        return sd, "pm" if _str(row, "spread_as_printed").startswith(UNLABELLED) else "sd"
    if math.isfinite(se):
        return se, "se"
    return math.nan, ""


def _where(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"evidence_base": _str(row, "_base"), "file": _str(row, "_file"),
            "row": int(_num(row, "_row")) if math.isfinite(_num(row, "_row")) else 0,
            "study_id": _str(row, "study_id"), "outcome": _str(row, "outcome"),
            "subgroup": _str(row, "subgroup")}


def _severity(ratio: float) -> str:
    f = max(ratio, 1 / ratio) if ratio > 0 else math.inf
    if f >= GRAVE_FACTOR:
        return "error"
    return "warning" if f >= AGREE_FACTOR else "info"


def _pair_findings(ri: Mapping[str, Any], rc: Mapping[str, Any], prow: Mapping[str, Any],
                   study: Mapping[str, Any]) -> list[Finding]:
    """Recompute the between-arm p of one intervention/control pair and compare."""
    si, ki = _spread(ri)
    sc, kc = _spread(rc)
    ni, srci = _arm_n(ri, study)
    nc, srcc = _arm_n(rc, study)
    mi, mc = _num(ri, "mean"), _num(rc, "mean")
    if not all(math.isfinite(x) for x in (si, sc, ni, nc, mi, mc)) or min(ni, nc) < 2:
        return []
    p = _num(prow, "p_value")
    qual = _str(prow, "p_value_qualifier") or "="
    diff = mi - mc
    kinds = {ki, kc}
    n_note = "; ".join(sorted({s for s in (srci, srcc) if s != "row"}))
    base = {"mean_intervention": mi, "mean_control": mc, "spread_intervention": si,
            "spread_control": sc, "n_intervention": ni, "n_control": nc, "p_printed": p,
            "p_qualifier": qual}
    if n_note:
        base["n_assumed"] = n_note
    where = _where(prow)
    out: list[Finding] = []
    readings: tuple[str, ...]
    if kinds == {"pm"}:
        readings = ("sd", "se")
    elif "pm" in kinds or len(kinds) > 1:
        return []  # mixed labels within a pair: nothing clean to test
    else:
        readings = (ki,)
    res = {}
    for rd in readings:
        p_r, se_r, df_r = welch(ArmSummary(mi, si, ni), ArmSummary(mc, sc, nc), rd)
        res[rd] = (p_r, se_r, df_r)
    if qual != "=":
        ok = [rd for rd, (p_r, _, _) in res.items()
              if (qual == "<" and p_r < p) or (qual == ">" and p_r > p)]
        nums = {**base, **{f"p_{rd}_reading": _g(v[0]) for rd, v in res.items()}}
        shown = "; ".join(f"{rd.upper()} reading: p = {v[0]:.3g}" for rd, v in res.items())
        if readings == ("sd", "se") and len(ok) == 1:
            out.append(Finding(**where, rule="unlabelled_reading",
                               severity="info" if ok[0] == "sd" else "error",
                               message=f"printed p {qual} {p:g} holds only with '±' read as "
                               f"{ok[0].upper()} ({shown})", reading=ok[0], numbers=nums))
        elif not ok:
            out.append(Finding(**where, rule="p_bound", severity="warning",
                               message=f"printed p {qual} {p:g} holds under no reading of the "
                               f"spread ({shown})", numbers=nums))
        return out
    if not (0 < p < 1) or diff == 0:
        return out
    ratios = {}
    for rd, (_, se_r, df_r) in res.items():
        ratios[rd] = se_implied_by_p(diff, p, df_r) / se_r if se_r > 0 else math.nan
    nums = dict(base)
    for rd, (p_r, se_r, _) in res.items():
        nums[f"p_{rd}_reading"] = _g(p_r)
        nums[f"se_diff_{rd}_reading"] = _g(se_r)
        nums[f"ratio_{rd}"] = _g(ratios[rd])
    nums["se_diff_implied_by_p"] = _g(se_implied_by_p(diff, p, res[readings[0]][2]))
    if readings == ("sd", "se"):
        fits = [rd for rd in readings if math.isfinite(ratios[rd])
                and 1 / DECIDE_FACTOR <= ratios[rd] <= DECIDE_FACTOR]
        decided = fits[0] if len(fits) == 1 and p <= DECIDE_MAX_P else ""
        parts = [f"{rd.upper()} reading: p = {res[rd][0]:.3g}, printed p needs "
                 f"{ratios[rd]:.2f}x its SE" for rd in readings]
        if decided:
            msg = (f"printed p = {p:g} supports reading '±' as {decided.upper()} ("
                   + "; ".join(parts) + ")")
            sev = _severity(ratios["sd"])  # the SD reading is the default policy
        elif len(fits) == 1:
            msg = (f"printed p = {p:g} is too large to decide the reading of '±' ("
                   + "; ".join(parts) + ")")
            sev = "info"
        else:
            msg = f"printed p = {p:g} fits neither reading of '±' (" + "; ".join(parts) + ")"
            sev = _severity(ratios["sd"])
        out.append(Finding(**where, rule="unlabelled_reading", severity=sev, message=msg,
                           reading=decided, numbers=nums))
        return out
    rd = readings[0]
    ratio = ratios[rd]
    sev = _severity(ratio)
    p_r = res[rd][0]
    if (p < 0.05) != (p_r < 0.05):
        sev = "error"
    if sev != "info":
        out.append(Finding(**where, rule="p_recompute", severity=sev,
                           message=f"printed p = {p:g}, recomputed p = {p_r:.3g} ({rd.upper()} "
                           f"as labelled): the printed p needs {ratio:.2f}x the SE",
                           reading=rd, numbers=nums))
    return out


def _geometric_pair_findings(ri: Mapping[str, Any], rc: Mapping[str, Any],
                             prow: Mapping[str, Any]) -> list[Finding]:
    """Geometric means with per-arm CIs: the log ratio's SE from the two CIs (z) against the
    SE the printed p implies (a p from a baseline-adjusted or repeated-measures model can be
    far smaller than the CIs of the unadjusted arm means imply)."""
    vals = [(_num(r, "geometric_mean"), _num(r, "ci_lower"), _num(r, "ci_upper"))
            for r in (ri, rc)]
    if not all(all(math.isfinite(x) and x > 0 for x in v) for v in vals):
        return []
    p = _num(prow, "p_value")
    if _str(prow, "p_value_qualifier") not in ("", "=") or not 0 < p < 1:
        return []
    z = float(stats.norm.ppf(0.5 + (_num(ri, "ci_level") if math.isfinite(
        _num(ri, "ci_level")) else 0.95) / 2))
    se = math.sqrt(sum(((math.log(hi) - math.log(lo)) / (2 * z)) ** 2 for _, lo, hi in vals))
    diff = math.log(vals[0][0] / vals[1][0])
    implied = abs(diff) / float(stats.norm.isf(p / 2)) if diff else math.nan
    ratio = implied / se if se > 0 else math.nan
    p_r = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else math.nan
    sev = _severity(ratio) if math.isfinite(ratio) else "info"
    if (p < 0.05) != (p_r < 0.05):
        sev = "error"
    if sev == "info":
        return []
    return [Finding(**_where(prow), rule="p_recompute", severity=sev,
                    message=f"printed p = {p:g}; the per-arm CIs of the geometric means give "
                    f"p = {p_r:.3g} for the log ratio (the printed p needs {ratio:.2f}x their "
                    "SE: an adjusted or repeated-measures test?)", reading="",
                    numbers={"log_ratio": _g(diff), "se_from_cis": _g(se),
                             "se_implied_by_p": _g(implied), "ratio": _g(ratio),
                             "p_printed": p, "p_recomputed": _g(p_r)})]


def _row_findings(row: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    where = _where(row)
    mean, med = _num(row, "mean"), _num(row, "median")
    lo, hi, q1, q3 = (_num(row, c) for c in ("min", "max", "q1", "q3"))
    checks = [("mean", mean, lo, hi, "[min, max]"), ("median", med, q1, q3, "[q1, q3]"),
              ("median", med, lo, hi, "[min, max]")]
    for name, x, a, b, label in checks:
        if math.isfinite(x) and math.isfinite(a) and math.isfinite(b) and not a <= x <= b:
            out.append(Finding(**where, rule="order", severity="error",
                               message=f"{name} {x:g} outside {label} = [{a:g}, {b:g}]",
                               numbers={name: x, "lower": a, "upper": b}))
    sd, kind = _spread(row)
    n = _num(row, "n")
    if _str(row, "value_type") == "value" and math.isfinite(mean) and mean > 0 \
            and math.isfinite(sd):
        sd_as_sd = sd * math.sqrt(n) if kind == "se" and math.isfinite(n) else sd
        if kind in ("sd", "pm", "se") and sd_as_sd > CV_LIMIT * mean:
            out.append(Finding(**where, rule="dispersion", severity="warning",
                               message=f"SD {sd_as_sd:.4g} is {sd_as_sd / mean:.1f}x the mean "
                               f"{mean:g} of a positive quantity: skewed data, or an SE/SD or "
                               "unit confusion", reading=kind,
                               numbers={"mean": mean, "sd": _g(sd_as_sd), "n": n}))
    return out


def check_evidence(studies: pd.DataFrame, results: pd.DataFrame) -> list[Finding]:
    """Every finding of every rule over the results rows (with ``_file``/``_row``/``_base``)."""
    study_by_id = {_str(s, "study_id"): s for s in studies.to_dict("records")}
    recs = results.to_dict("records")
    findings: list[Finding] = []
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in recs:
        findings += _row_findings(r)
        week = _num(r, "week")
        key: tuple[str, ...] = (_str(r, "study_id"), _str(r, "outcome"), _str(r, "subgroup"),
               _str(r, "timepoint"), f"{week:g}" if math.isfinite(week) else "",
               _str(r, "value_type"))
        groups.setdefault(key, []).append(r)
    for key, rows in groups.items():
        ints = [r for r in rows if _str(r, "arm") == "intervention"]
        ctrs = [r for r in rows if _str(r, "arm") == "control"]
        prows = [r for r in rows if _str(r, "p_value_comparison").startswith("between_arms")
                 and math.isfinite(_num(r, "p_value"))]
        if len(ints) != 1 or len(ctrs) != 1 or not prows:
            continue
        findings += _pair_findings(ints[0], ctrs[0], prows[0], study_by_id.get(key[0], {}))
        findings += _geometric_pair_findings(ints[0], ctrs[0], prows[0])
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: (order[f.severity], f.evidence_base, f.study_id, f.row))
    return findings


def decided_readings(findings: Iterable[Finding]) -> dict[tuple[str, str, str], str]:
    """(study_id, outcome, subgroup) -> the '±' reading a printed p decides ('sd' or 'se')."""
    return {(f.study_id, f.outcome, f.subgroup): f.reading for f in findings
            if f.rule == "unlabelled_reading" and f.reading}


def findings_frame(findings: Iterable[Finding]) -> pd.DataFrame:
    """Findings as a table; ``numbers`` as compact JSON text."""
    rows = []
    for f in findings:
        d = asdict(f)
        d["numbers"] = json.dumps(d["numbers"], ensure_ascii=False, allow_nan=False,
                                  default=str) if f.numbers else ""
        rows.append(d)
    return pd.DataFrame(rows, columns=list(FINDING_COLUMNS))


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def write_findings(findings: list[Finding], build_dir: Path) -> tuple[Path, Path]:
    """Write ``build/check/findings.csv`` and ``findings.json`` atomically."""
    out = Path(build_dir) / "check"
    csv_path, json_path = out / "findings.csv", out / "findings.json"
    atomic_write_text(csv_path, findings_frame(findings).to_csv(index=False,
                                                               lineterminator="\n"))
    atomic_write_json(json_path, {"rules": RULES,
                                  "findings": [_clean(asdict(f)) for f in findings]})
    return csv_path, json_path


def render_table(findings: list[Finding], width: int = 100) -> str:
    """A plain-text table of the findings for the terminal."""
    if not findings:
        return "no findings"
    lines = []
    for f in findings:
        head = f"{f.severity:<7} {f.file} row {f.row} {f.study_id} {f.outcome}" + (
            f" [{f.subgroup}]" if f.subgroup else "") + f"  {f.rule}"
        lines.append(head)
        msg = f.message
        while msg:
            lines.append("        " + msg[: width - 8])
            msg = msg[width - 8:]
    return "\n".join(lines)


def as_problems(findings: Iterable[Finding]) -> list[Any]:
    """Findings of severity warning or error as validation warnings (file, row, message), so
    ``validate`` can show them; a checker finding never fails validation by itself."""
    from nutrimeta.problems import Problem

    return [Problem(f.file, f.row, None, f"{f.study_id} {f.outcome}: {f.rule}: {f.message}",
                    "warning") for f in findings if f.severity in ("warning", "error")]
