"""The calibration study of the all-reports analysis (benchmarks/calibration.py)."""

from __future__ import annotations

import importlib.util
import json
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


@pytest.mark.slow  # two local clusters: about 18 s on 2 busy cores
def test_tiny_calibration_is_identical_on_one_and_two_workers(tmp_path: Path) -> None:
    """The study on dask: same rows with 1 and 2 worker processes (seeds per data set), one
    result file per data set, and a rerun reads them back instead of recomputing."""
    params = {**calibration.DEFAULT_PARAMS, "k": 4}
    one = calibration.run_many(3, params, tmp_path / "w1", seed=5, workers=1, progress=False)
    two = calibration.run_many(3, params, tmp_path / "w2", seed=5, workers=2, progress=False)
    assert one.results == two.results
    assert len({r["seed"] for r in one.results}) == 3
    assert [r["seed"] for r in one.results] == one.seeds
    assert sorted(p.name for p in (tmp_path / "w2").glob("task-*.json")) == [
        f"task-{i:06d}.json" for i in range(3)]
    # a data set's row is what run_one gives for its seed, wherever it ran
    assert two.results[2] == json.loads(json.dumps(calibration.run_one(two.seeds[2], params)))
    again = calibration.run_many(3, params, tmp_path / "w2", seed=5, progress=False)
    assert again.computed == [] and again.results == two.results


def test_scenario_seeds_differ_and_do_not_depend_on_the_selection() -> None:
    seeds = {name: calibration.scenario_seed(2026, name) for name in calibration.SCENARIOS}
    assert len(set(seeds.values())) == len(seeds)
    assert calibration.scenario_seed(2026, "base") == seeds["base"]
    assert calibration.scenario_seed(2027, "base") != seeds["base"]


@pytest.mark.slow
def test_main_writes_the_tables(tmp_path: Path) -> None:
    """A tiny run of the command: calibration.json and .md in their usual form."""
    calibration.main(["--n", "4", "--workers", "1", "--scenario", "null_effect",
                      "--tasks-dir", str(tmp_path / "tasks"), "--out", str(tmp_path)])
    payload = json.loads((tmp_path / "calibration.json").read_text())
    sc = payload["scenarios"]["null_effect"]
    assert sc["n_datasets"] == 4 and sc["params"]["mu"] == 0.0
    assert sc["summary"]["all_reports"]["datasets"] == 4
    assert len(list((tmp_path / "tasks" / "null_effect").glob("task-*.json"))) == 4
    assert "| null_effect (k=10" in (tmp_path / "calibration.md").read_text()


@pytest.mark.slow
def test_small_calibration_run_covers(tmp_path: Path) -> None:
    """60 data sets of the base scenario: the all-reports 95% interval covers mu in at least
    85% of them and uses more trials than the conventional analysis."""
    rows = calibration.run_many(60, {}, tmp_path, workers=2, progress=False).results
    s = calibration.summarise(rows, {})
    assert s["all_reports"]["datasets"] == 60
    assert s["all_reports"]["cover95"] >= 85.0
    assert s["all_reports"]["mean_k"] > s["conventional"]["mean_k"]
