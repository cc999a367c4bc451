"""The pipeline-target benchmark (benchmarks/targets.py): stage times read from the output."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "targets.py"
_spec = importlib.util.spec_from_file_location("bench_targets", _PATH)
targets = importlib.util.module_from_spec(_spec)
sys.modules["bench_targets"] = targets  # dataclasses resolve annotations through it
_spec.loader.exec_module(targets)

TRANSCRIPT = [
    (0.05, "rm -rf build reports/*/ reports/index.html"),
    (0.10, ".venv/bin/nutrimeta analysis"),
    (3.10, "validated: 40 studies, 300 result rows"),
    (10.6, "magnesium_insulin: fitted in 6.5 s -> build/results/magnesium_insulin.json"),
    (14.6, "selenium_thyroid: fitted in 4.0 s -> build/results/selenium_thyroid.json"),
    (16.6, "zinc_testosterone: fitted in 2.0 s -> build/results/zinc_testosterone.json"),
    # the evidence-base reports are written while the cross-nutrient models fit
    (18.5, "wrote reports/magnesium_insulin/report.html"),
    (19.6, "cross_nutrient: fitted -> build/results/cross_nutrient.json"),
    (20.1, "wrote reports/index.html"),
    (20.2, "analysis finished in 20.0 s"),
    (20.3, "60 fits: 58 fitted, 0 skipped, 2 failed"),
]


def _run(lines: list[tuple[float, str]], seconds: float = 20.5) -> object:
    return targets.Run(["make", "clean", "analysis"], 0, seconds, lines, [])


def test_stages_are_read_from_the_arrival_times_of_the_output() -> None:
    st = targets.stages(_run(TRANSCRIPT))
    assert st["before_cli"] == pytest.approx(0.10)
    assert st["startup_and_validate"] == pytest.approx(3.0)
    # effects: from validation to the start of the first fit (10.6 - 6.5)
    assert st["effects"] == pytest.approx(1.0)
    assert st["fit"] == {"magnesium_insulin": 6.5, "selenium_thyroid": 4.0,
                         "zinc_testosterone": 2.0}
    assert st["fit_total"] == pytest.approx(12.5)
    # waiting for the cross-nutrient fits: from the last base report to the cross line
    assert st["cross_nutrient_wait"] == pytest.approx(1.1)
    # base reports (16.6 -> 18.5) and the index (19.6 -> 20.1)
    assert st["report"] == pytest.approx(2.4)
    assert st["exit"] == pytest.approx(0.4)
    assert st["in_process"] == 20.0
    assert st["fits"] == {"n": 60, "fitted": 58, "skipped": 0, "failed": 2}
    assert st["unchanged"] == [] and st["reports_written"] == 2
    assert "unparsed" not in st
    # the stages add up to the wall time
    total = (st["before_cli"] + st["startup_and_validate"] + st["effects"] + st["fit_total"]
             + st["cross_nutrient_wait"] + st["report"] + st["exit"])
    assert total == pytest.approx(20.5)


def test_missing_markers_are_named_and_cached_bases_reported() -> None:
    lines = [(0.1, ".venv/bin/nutrimeta analysis"), (2.0, "validated: 1 studies, 2 result rows"),
             (2.5, "zinc_testosterone: unchanged (cache key abc), not refitted")]
    st = targets.stages(_run(lines, 3.0))
    assert st["unchanged"] == ["zinc_testosterone"]
    assert st["fit"] == {} and set(st["unparsed"]) == {"effects", "cross_nutrient", "report"}


def test_readme_first_command_is_the_one_the_clone_runs(tmp_path: Path) -> None:
    assert targets.readme_first_command(_PATH.parents[1] / "README.md") == "make analysis"
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n```python\nprint()\n```\n\n```bash\n\n$ make go   # does it\n```\n")
    assert targets.readme_first_command(readme) == "make go"


def test_run_timed_stamps_each_line() -> None:
    code = "import time; print('a', flush=True); time.sleep(0.3); print('b', flush=True)"
    run = targets.run_timed([sys.executable, "-c", code], Path.cwd(), echo=False)
    assert run.returncode == 0 and [ln for _, ln in run.lines] == ["a", "b"]
    assert run.lines[1][0] - run.lines[0][0] >= 0.25
    assert run.seconds >= run.lines[1][0]
