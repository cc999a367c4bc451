"""The calibration study of the all-reports analysis (benchmarks/calibration.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration.py"
_spec = importlib.util.spec_from_file_location("calibration", _PATH)
calibration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calibration)


def test_run_one_is_reproducible_and_counts_routes() -> None:
    a = calibration.run_one(3, {"k": 6})
    b = calibration.run_one(3, {"k": 6})
    assert a == b
    assert sum(a["routes"].values()) + a["unusable"] == 6
    assert a["all_reports"]["k"] == sum(a["routes"].values())
    assert a["conventional"]["k"] == a["routes"]["full"]


def test_degraded_reports_follow_the_declared_shares() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    p = {**calibration.DEFAULT_PARAMS, "k": 4000, "p_omit_n": 0.0, "p_drop_sd": 0.0,
         "p_full_sig": 1.0, "p_full_ns": 0.0}
    cells = calibration.simulate(rng, p)
    full = sum(1 for c in cells if c.se > 0)
    sig = sum(1 for c in cells if c.p_qualifier == "<")
    ns = sum(1 for c in cells if c.p_qualifier == ">")
    assert full + sig + ns == 4000 and sig == 0  # every significant result printed in full
    assert 0 < ns < 4000


@pytest.mark.slow
def test_small_calibration_run_covers() -> None:
    """60 data sets of the base scenario: the all-reports 95% interval covers mu in at least
    85% of them and uses more trials than the conventional analysis."""
    rows = calibration.run_many(60, {}, workers=1)
    s = calibration.summarise(rows, {})
    assert s["all_reports"]["datasets"] == 60
    assert s["all_reports"]["cover95"] >= 85.0
    assert s["all_reports"]["mean_k"] > s["conventional"]["mean_k"]
