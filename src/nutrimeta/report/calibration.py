"""Why the verdicts use the declared primary analysis, in the methods text: the calibration
study of the all-reports analysis (``benchmarks/calibration.json``, written by
``benchmarks/calibration.py``) read beside the report, its numbers never typed in."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["find_calibration", "primary_analysis_text"]


def find_calibration(start: Path) -> Path | None:
    """Nearest ``benchmarks/calibration.json`` in ``start`` or its parents, else in the
    working directory (the calibration study of the all-reports analysis)."""
    for folder in [start.resolve(), *start.resolve().parents, Path.cwd()]:
        cand = folder / "benchmarks" / "calibration.json"
        if cand.is_file():
            return cand
    return None


def primary_analysis_text(primary: str, calibration: Mapping[str, Any] | None) -> str:
    """Why the verdicts use the declared primary analysis, with the calibration study's
    coverage and bias of both analyses read from its results (never typed in)."""
    names = {"all_reports": "all-reports", "conventional": "conventional"}
    lead = (f"Primary analysis for the verdicts: {names.get(primary, primary)} (declared in "
            "the analysis spec, primary_analysis); claims about mu use its posterior and its "
            "trial count, both analyses are shown side by side per outcome.")
    if not calibration or not calibration.get("scenarios"):
        return lead + " No calibration study results were found beside this report."
    scen = calibration["scenarios"]

    def span(analysis: str, key: str) -> tuple[float, float]:
        vals = [float(v["summary"][analysis][key]) for v in scen.values()]
        return min(vals), max(vals)

    n = min(int(v["n_datasets"]) for v in scen.values())
    a90, a95, ab = span("all_reports", "cover90"), span("all_reports", "cover95"), \
        span("all_reports", "bias")
    c90, c95, cb = span("conventional", "cover90"), span("conventional", "cover95"), \
        span("conventional", "bias")
    worst = min(scen, key=lambda k: scen[k]["summary"]["conventional"]["cover90"])
    return (f"{lead} Calibration study (benchmarks/calibration.md: {len(scen)} scenarios "
            f"of simulated trials whose reports were degraded the way the literature reports "
            f"them, at least {n} data sets each; effects in outcome SD units): the all-reports "
            f"90% intervals of mu covered {a90[0]:.1f}–{a90[1]:.1f}% and its 95% intervals "
            f"{a95[0]:.1f}–{a95[1]:.1f}%, bias of the posterior mean {ab[0]:+.3f} to "
            f"{ab[1]:+.3f}; the conventional analysis (complete reports only) covered "
            f"{c90[0]:.1f}–{c90[1]:.1f}% and {c95[0]:.1f}–{c95[1]:.1f}% (lowest in the "
            f"{worst} scenario), bias {cb[0]:+.3f} to {cb[1]:+.3f}: dropping the reports "
            "without full numbers keeps the significant ones and biases the estimate "
            "away from zero.")
