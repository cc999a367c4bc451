"""Mutation testing of the statistical modules with mutmut (slow, manual job).

For each module, a scratch copy of the project gets a ``[tool.mutmut]`` section that mutates
only that module and runs only the test files that exercise it (fast, deterministic tests;
the sampled ones are too slow to run per mutant); ``mutmut run`` then applies every mutant
and the share killed by the tests is written to ``benchmarks/mutation.json`` (goal >= 90%).

    python benchmarks/mutation.py                   # every module below
    python benchmarks/mutation.py conversions       # one module

Needs ``pip install mutmut`` (the ``mutation`` extra); takes minutes per module.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "mutation.json"
GOAL = 0.90

#: module -> the test files that exercise it
MODULES: dict[str, list[str]] = {
    "conversions": ["tests/test_conversions.py", "tests/test_effects.py"],
    "units": ["tests/test_units.py", "tests/test_effects.py"],
    "diagnostics": ["tests/test_gate.py"],
    "effects": ["tests/test_effects.py"],
    "models/frequentist": ["tests/test_frequentist.py", "tests/test_reference_checks.py"],
    "models/exact": ["tests/test_exact.py", "tests/test_reference_checks.py"],
}

STATUS = re.compile(r"^\s*(\S+): (killed|survived|no tests|timeout|suspicious|"
                    r"skipped|segfault|caught by type check|check was interrupted by user|"
                    r"not checked)\s*$")


def _config(module: str) -> str:
    tests = ", ".join(json.dumps(t) for t in MODULES[module])
    return (f'\n[tool.mutmut]\nsource_paths = ["src/"]\n'
            f'only_mutate = ["src/nutrimeta/{module}.py"]\n'
            f'pytest_add_cli_args_test_selection = [{tests}]\n'
            f'also_copy = ["docs/", "data/", "analyses/", "releases/"]\n'
            f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q", '
            f'"-k", "not retry_ladder"]\n')


def run_module(module: str) -> dict[str, object]:
    """Mutate one module in a scratch copy; counts of each mutant status and the kill rate."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "project"
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "reports", "mutants", "__pycache__", ".hypothesis"))
        with open(work / "pyproject.toml", "a", encoding="utf-8") as fh:
            fh.write(_config(module))
        start = time.perf_counter()
        mutmut = [sys.executable, "-m", "mutmut"]
        subprocess.run([*mutmut, "run", "--max-children", "2"], cwd=work, check=False,
                       capture_output=True, text=True)
        res = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, check=False,
                             capture_output=True, text=True)
        counts: dict[str, int] = {}
        survivors = []
        for line in res.stdout.splitlines():
            m = STATUS.match(line)
            if m:
                counts[m.group(2)] = counts.get(m.group(2), 0) + 1
                if m.group(2) == "survived":
                    survivors.append(m.group(1))
        total = sum(n for s, n in counts.items() if s not in ("skipped", "not checked"))
        covered = total - counts.get("no tests", 0)
        killed = counts.get("killed", 0) + counts.get("timeout", 0) + counts.get(
            "caught by type check", 0)
        # a mutant no selected test reaches counts as surviving in the kill rate
        return {"counts": counts, "kill_rate": round(killed / total, 4) if total else None,
                "kill_rate_of_covered": round(killed / covered, 4) if covered else None,
                "meets_goal": bool(total) and killed / total >= GOAL,
                "tests": MODULES[module], "survivors": survivors,
                "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str]) -> None:
    modules = argv or list(MODULES)
    results = json.loads(OUT.read_text("utf-8")) if OUT.exists() else {}
    results.setdefault("modules", {})
    for module in modules:
        print(f"mutating {module} ...", flush=True)
        results["modules"][module] = run_module(module)
        print(f"  {module}: {results['modules'][module]['kill_rate']}", flush=True)
        results["goal"] = GOAL
        results["tool"] = f"mutmut {version('mutmut')}"
        results["machine"] = {"python": platform.python_version(), "arch": platform.machine(),
                              "cpus": os.cpu_count()}
        results["date"] = time.strftime("%Y-%m-%d")
        OUT.write_text(json.dumps(results, indent=2) + "\n", "utf-8")  # after each module


if __name__ == "__main__":
    main(sys.argv[1:])
