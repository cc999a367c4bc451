"""Published syntheses beside this analysis's estimate, in this analysis's units.

A published mean difference is converted to the outcome's effect unit with
:func:`nutrimeta.units.conversion_factor` (differences scale like the values themselves, every
supported conversion being multiplicative). Estimates that cannot be put on the same scale
(a standardised mean difference, a missing unit, a unit with no known conversion for the
analyte, or a different effect measure) are marked "not convertible" with the reason; a printed
unit that would rescale the estimate more than a thousand-fold is taken as a unit error in the
source and not converted.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from nutrimeta.report.fmt import fmt
from nutrimeta.units import UnitConversionError, conversion_factor

__all__ = ["harmonise", "harmonised_estimate"]

_MEAN_DIFFERENCES = ("MD", "WMD")


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def harmonised_estimate(row: dict[str, Any] | pd.Series, outcome: str
                        ) -> tuple[float, float, float, str]:
    """(estimate, lower, upper, note) of a published synthesis in this analysis's unit.

    The values are NaN, and the note says why, when the estimate is not convertible.
    """
    nan = (math.nan, math.nan, math.nan)
    measure = str(row.get("measure") or "").strip()
    ours = str(row.get("package_measure") or "")
    unit = "" if pd.isna(row.get("unit")) else str(row.get("unit") or "").strip()
    target = str(row.get("package_unit") or "")
    head = measure.split(" ")[0].upper()
    if head == "SMD":
        return (*nan, "not convertible: standardised mean difference (no unit)")
    if head not in _MEAN_DIFFERENCES or ours != "MD":
        return (*nan, f"not convertible: published {measure or 'measure not given'}, "
                      f"this analysis {ours}")
    if not unit:
        return (*nan, "not convertible: unit not reported")
    try:
        f = conversion_factor(unit, target, outcome)
    except UnitConversionError:
        return (*nan, f"not convertible: {unit} to {target}")
    if not 1e-3 <= f <= 1e3:
        return (*nan, f"not converted: {unit} is implausible for this outcome (it would "
                      f"scale the estimate by {f:.3g} into {target}); check the source")
    est, lo, hi = (_num(row.get(c)) * f for c in ("estimate", "ci_lower", "ci_upper"))
    note = "same unit" if f == 1.0 else f"converted from {unit} (× {f:.4g})"
    return est, lo, hi, note


def harmonise(frame: pd.DataFrame) -> pd.DataFrame:
    """The published-syntheses frame (:func:`nutrimeta.report.tables.published_syntheses`)
    with each estimate also in this analysis's unit, next to this analysis's estimate."""
    if frame.empty:
        return frame.assign(published_in_our_units=pd.Series(dtype=str),
                            this_analysis=pd.Series(dtype=str))
    ours, theirs = [], []
    for _, r in frame.iterrows():
        est, lo, hi, note = harmonised_estimate(r, str(r.get("outcome")))
        unit = str(r.get("package_unit") or "")
        theirs.append(note if math.isnan(est) else
                      f"{fmt(est)} ({fmt(lo)} to {fmt(hi)}) {unit}; {note}")
        m = _num(r.get("package_mean"))
        ours.append("no pooled estimate" if math.isnan(m) else
                    f"{fmt(m)} ({fmt(r.get('package_q025'))} to {fmt(r.get('package_q975'))}) "
                    f"{unit}; k = {r.get('package_k')}")
    return frame.assign(published_in_our_units=theirs, this_analysis=ours)
