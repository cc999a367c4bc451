"""Simulation studies on dask.distributed: worker-count independence, resume, failures,
and (slow) the calibration of the exact posterior on data simulated from its priors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nutrimeta.simstudy import (
    StudyError,
    calibration_task,
    coverage,
    run_study,
    task_seed,
)

TINY = [{"k": k, "tau_scale": 0.5, "mu_sd": 1.0, "level": 0.9} for k in (2, 3, 4, 5, 3, 2)]


def _draw(seed: int, params: dict[str, Any]) -> dict[str, Any]:
    """A cheap task: a few draws from the task's own generator."""
    if params.get("fail"):
        raise ValueError("planned failure")
    return {"draws": np.random.default_rng(seed).normal(size=3).tolist(), "n": params["n"]}


def test_task_seeds_are_spawned_children_independent_of_study_size() -> None:
    children = np.random.SeedSequence(7).spawn(5)
    for i, child in enumerate(children):
        assert task_seed(7, i) == int(child.generate_state(1, dtype=np.uint64)[0])
    assert len({task_seed(7, i) for i in range(100)}) == 100
    assert task_seed(8, 0) != task_seed(7, 0)


def test_same_results_with_one_and_two_workers(tmp_path: Path) -> None:
    one = run_study(calibration_task, TINY, seed=11, out_dir=tmp_path / "w1", n_workers=1,
                    progress=False)
    two = run_study(calibration_task, TINY, seed=11, out_dir=tmp_path / "w2", n_workers=2,
                    progress=False)
    assert one.results == two.results
    assert one.seeds == two.seeds
    assert sorted(one.computed) == list(range(len(TINY)))
    # the files hold the same records, one per task
    for i in range(len(TINY)):
        a = json.loads((tmp_path / "w1" / f"task-{i:06d}.json").read_text())
        b = json.loads((tmp_path / "w2" / f"task-{i:06d}.json").read_text())
        assert a == b and a["index"] == i and a["seed"] == one.seeds[i]
    # a different study seed gives different data
    other = run_study(calibration_task, TINY[:2], seed=12, out_dir=tmp_path / "s12",
                      processes=False, n_workers=1, progress=False)
    assert other.results[0]["mu"] != one.results[0]["mu"]


def test_resume_skips_finished_tasks(tmp_path: Path) -> None:
    params = [{"n": i} for i in range(6)]
    first = run_study(_draw, params, seed=3, out_dir=tmp_path, processes=False, n_workers=2,
                      progress=False)
    # interrupted study: tasks 1 and 4 missing; task 2's file marked to detect recomputation
    (tmp_path / "task-000001.json").unlink()
    (tmp_path / "task-000004.json").unlink()
    rec = json.loads((tmp_path / "task-000002.json").read_text())
    rec["result"]["draws"] = ["from disk"]
    (tmp_path / "task-000002.json").write_text(json.dumps(rec))
    again = run_study(_draw, params, seed=3, out_dir=tmp_path, processes=False, n_workers=1,
                      progress=False)
    assert sorted(again.computed) == [1, 4]
    assert again.skipped == [0, 2, 3, 5]
    assert again.results[2]["draws"] == ["from disk"]
    for i in (0, 1, 3, 4, 5):
        assert again.results[i] == first.results[i]
    # nothing left to do: no cluster is started
    done = run_study(_draw, params, seed=3, out_dir=tmp_path, progress=False)
    assert done.computed == [] and len(done.skipped) == 6


def test_failed_tasks_are_reported_and_the_rest_saved(tmp_path: Path) -> None:
    params = [{"n": 0}, {"n": 1, "fail": True}, {"n": 2}]
    with pytest.raises(StudyError, match=r"1 of 3 tasks failed \(task 1: ValueError"):
        run_study(_draw, params, seed=5, out_dir=tmp_path, processes=False, n_workers=1,
                  progress=False)
    assert sorted(p.name for p in tmp_path.glob("task-*.json")) == [
        "task-000000.json", "task-000002.json"]
    fixed = [{"n": 0}, {"n": 1}, {"n": 2}]
    res = run_study(_draw, fixed, seed=5, out_dir=tmp_path, processes=False, n_workers=1,
                    progress=False)
    assert res.computed == [1]


def test_another_study_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    run_study(_draw, [{"n": 0}], seed=1, out_dir=tmp_path, processes=False, n_workers=1,
              progress=False)
    with pytest.raises(StudyError, match="another study"):
        run_study(_draw, [{"n": 0}], seed=2, out_dir=tmp_path, processes=False, n_workers=1,
                  progress=False)
    with pytest.raises(StudyError, match="params differ"):
        run_study(_draw, [{"n": 9}], seed=1, out_dir=tmp_path, processes=False, n_workers=1,
                  progress=False)


def test_coverage_summary() -> None:
    c = coverage([{"x": True}] * 9 + [{"x": False}], "x")
    assert c["n"] == 10 and c["coverage"] == 0.9
    assert c["wilson_lower"] < 0.9 < c["wilson_upper"]


@pytest.mark.slow
def test_exact_posterior_is_calibrated_on_data_from_its_priors(tmp_path: Path) -> None:
    """Averaged over the prior, central 90% posterior intervals cover the truth 90% of the
    time (exact for a correct posterior); 400 studies: binomial sd 1.5 points, bounds +-3 sd."""
    params = [{"k": 4, "tau_scale": 0.5, "mu_sd": 1.0, "level": 0.9}] * 400
    res = run_study(calibration_task, params, seed=2026, out_dir=tmp_path, n_workers=2,
                    progress=False)
    for key in ("exact_mu_covered", "exact_tau_covered"):
        share = coverage(res.results, key)["coverage"]
        assert 0.855 <= share <= 0.945, (key, share)
