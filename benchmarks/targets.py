"""Wall-clock targets of the whole pipeline, measured by running the project's own commands.

Three targets, each timed as a user meets it (``make bench``; ``benchmarks/run.py --only``):

- ``analysis``: warm, forced ``make clean analysis`` in the project (every model of the shipped
  specs refitted; "warm": the environment is installed and any persistent cache populated, so
  with ``runs > 1`` the first run is a warm-up and the last one is judged). Stages are read
  from the time each line of the command's output arrives: make's own recipe before the CLI
  starts, start-up and validation (up to ``validated:``), effect sizes (up to the first
  evidence base's fit), the fit of each evidence base (as the pipeline reports it), the
  cross-nutrient synthesis, the reports and the exit.
- ``clone``: ``git clone`` of the repository into a temporary folder, then the README's first
  command there (with whatever uv cache the machine has); the environment's installation is
  the time before make starts the CLI.
- ``test``: ``make test``.

Each result holds the command, the wall time, the target, whether it is met, the exit status
and the load average before the run (other work on the machine slows every number down).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Targets in seconds (issue "Speed and scale": 30 s, 120 s, 3 min on 2 cores).
TARGETS_S: dict[str, float] = {"analysis": 30.0, "clone": 120.0, "test": 180.0}

#: Variables that would make a fresh clone use this checkout's code or environment.
_LEAKY_ENV = ("PYTHONPATH", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")

_FITTED = re.compile(r"^(?P<base>[\w.-]+): fitted in (?P<s>[0-9.]+) s")
_UNCHANGED = re.compile(r"^(?P<base>[\w.-]+): unchanged")
_FINISHED = re.compile(r"^analysis finished in (?P<s>[0-9.]+) s")
_FITS = re.compile(r"^(?P<n>\d+) fits: (?P<fitted>\d+) fitted, (?P<skipped>\d+) skipped, "
                   r"(?P<failed>\d+) failed")
_PYTEST = re.compile(r"=+ (?P<summary>.*\d+ passed.*) in (?P<s>[0-9.]+)s")


@dataclass
class Run:
    """A finished command: wall time and each standard-output line with its arrival time."""

    command: list[str]
    returncode: int
    seconds: float
    lines: list[tuple[float, str]]
    stderr_tail: list[str]

    def first(self, pattern: str | re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        """Arrival time and match of the first line matching ``pattern`` (from its start)."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        for t, line in self.lines:
            m = rx.match(line)
            if m:
                return t, m
        return None

    def all(self, pattern: re.Pattern[str]) -> list[tuple[float, re.Match[str]]]:
        return [(t, m) for t, line in self.lines if (m := pattern.match(line))]


def run_timed(command: list[str], cwd: Path, env: dict[str, str] | None = None,
              echo: bool = True) -> Run:
    """Run ``command``, time-stamping each line of its standard output (echoed to stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdout is not None and proc.stderr is not None
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr or ()), daemon=True)
    reader.start()
    lines = []
    for raw in proc.stdout:
        t = time.perf_counter() - start
        line = raw.rstrip("\n")
        lines.append((t, line))
        if echo:
            print(f"  [{t:7.1f} s] {line}", file=sys.stderr, flush=True)
    code = proc.wait()
    reader.join()
    seconds = time.perf_counter() - start
    tail = [ln.rstrip("\n").split("\r")[-1] for ln in err[-15:]]
    if code != 0 and echo:
        print("\n".join(tail), file=sys.stderr)
    return Run(command, code, seconds, lines, tail)


def stages(run: Run, cli: str = "nutrimeta analysis") -> dict[str, Any]:
    """Seconds per stage of one ``nutrimeta analysis`` run, from its output's timing.

    A stage whose marker line is missing (an output format this parser does not know) is left
    out and named in ``unparsed``."""
    out: dict[str, Any] = {}
    unparsed = []
    started = run.first(r".*\b" + re.escape(cli) + r"\s*$")  # make echoes the recipe line
    t_cli = started[0] if started else 0.0
    if started:
        out["before_cli"] = t_cli
    validated = run.first(r"^validated:")
    fitted = run.all(_FITTED)
    cross = run.first(r"^cross_nutrient:")
    wrote = run.all(re.compile(r"^wrote "))
    if validated:
        out["startup_and_validate"] = validated[0] - t_cli
    else:
        unparsed.append("validate")
    if validated and fitted:
        out["effects"] = fitted[0][0] - float(fitted[0][1]["s"]) - validated[0]
    else:
        unparsed.append("effects")
    out["fit"] = {m["base"]: float(m["s"]) for _, m in fitted}
    out["fit_total"] = sum(out["fit"].values())
    t_fits_done = fitted[-1][0] if fitted else None
    # the evidence-base reports are written while the cross-nutrient models fit in worker
    # processes; the index after them
    early = [t for t, _ in wrote if cross and t < cross[0]]
    t_waiting = early[-1] if early else t_fits_done
    if cross and t_waiting is not None:
        out["cross_nutrient_wait"] = cross[0] - t_waiting
    else:
        unparsed.append("cross_nutrient")
    t_before_report = cross[0] if cross else t_fits_done
    if wrote and t_before_report is not None and t_fits_done is not None:
        out["report"] = (wrote[-1][0] - t_before_report) + (
            early[-1] - t_fits_done if early else 0.0)
        out["exit"] = run.seconds - wrote[-1][0]
    else:
        unparsed.append("report")
    finished = run.first(_FINISHED)
    if finished:
        out["in_process"] = float(finished[1]["s"])
    fits = run.first(_FITS)
    if fits:
        out["fits"] = {k: int(v) for k, v in fits[1].groupdict().items()}
    out["unchanged"] = [m["base"] for _, m in run.all(_UNCHANGED)]
    out["reports_written"] = len(wrote)
    if unparsed:
        out["unparsed"] = unparsed
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def _verdict(name: str, seconds: float, ok: bool) -> dict[str, Any]:
    target = TARGETS_S[name]
    return {"seconds": round(seconds, 2), "target_s": target,
            "pass": bool(ok and seconds <= target)}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _make(make_args: list[str], *targets: str) -> list[str]:
    return [os.environ.get("MAKE", "make"), *make_args, *targets]


def bench_analysis(runs: int = 2, make_args: list[str] | None = None,
                   root: Path = ROOT) -> dict[str, Any]:
    """Forced ``make clean analysis`` ``runs`` times; the last run is judged (warm)."""
    cmd = _make(make_args or [], "clean", "analysis")
    records = []
    for i in range(runs):
        print(f"analysis run {i + 1}/{runs}: {shlex.join(cmd)}", file=sys.stderr)
        load = _load()
        run = run_timed(cmd, root)
        st = stages(run)
        records.append({"seconds": round(run.seconds, 2), "returncode": run.returncode,
                        "load_before": load})
    last = records[-1]
    forced = not st["unchanged"] and bool(st["fit"])
    return {"command": shlex.join(cmd), **_verdict(
        "analysis", last["seconds"], last["returncode"] == 0 and forced),
        "returncode": last["returncode"], "all_refitted": forced, "stages": st,
        "load_before": last["load_before"], "runs": records,
        "note": "seconds and stages: the last run (the earlier ones warm up)"}


def readme_first_command(readme: Path) -> str:
    """The first command of the README's first shell block (its comment removed)."""
    text = readme.read_text(encoding="utf-8")
    block = re.search(r"```(?:bash|sh|shell|console)\n(.*?)```", text, re.S)
    if block is None:
        raise ValueError(f"{readme}: no shell block")
    first = next(ln for ln in block.group(1).splitlines() if ln.strip())
    return first.split("#", 1)[0].strip().removeprefix("$ ")


def _uv_cache() -> dict[str, Any]:
    """Whether uv is on PATH (else the Makefile installs it into the new venv) and whether
    its package cache holds anything (a warm cache)."""
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        return {"uv_on_path": False, "cache_warm": None}
    found = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=False)
    cache = Path(found.stdout.strip())
    return {"uv_on_path": shutil.which("uv") is not None,
            "cache_warm": cache.is_dir() and any(cache.iterdir())}


def bench_clone(source: str | Path = ROOT, keep: bool = False) -> dict[str, Any]:
    """``git clone`` into a temporary folder, then the README's first command, timed."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    tmp = Path(tempfile.mkdtemp(prefix="nutrimeta-clone-"))
    dest = tmp / "nutrimeta"
    try:
        start = time.perf_counter()
        subprocess.run(["git", "clone", "--quiet", "--no-local", str(source), str(dest)],
                       check=True, env=env)
        clone_s = time.perf_counter() - start
        commit = subprocess.run(["git", "-C", str(dest), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        command = readme_first_command(dest / "README.md")
        print(f"fresh clone of {commit[:12]}: {command}", file=sys.stderr)
        load = _load()
        run = run_timed(shlex.split(command), dest, env)
        st = stages(run)
        index = dest / "reports" / "index.html"
        installer = run.first(r"^installing \S+ with (?P<tool>\w+)")
        finished = run.returncode == 0 and index.exists()
        return {"command": command, **_verdict("clone", run.seconds, finished),
                "returncode": run.returncode, "reports_finished": finished,
                "install_s": round(st.get("before_cli", float("nan")), 2),
                "analysis_s": round(run.seconds - st.get("before_cli", 0.0), 2),
                "installer": installer[1]["tool"] if installer else None,
                "git_clone_s": round(clone_s, 2), "commit": commit, "uv_cache": _uv_cache(),
                "stages": st, "load_before": load,
                "note": "seconds: the README command in the fresh clone, git clone excluded"}
    finally:
        if keep:
            print(f"clone kept in {dest}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def bench_test(make_args: list[str] | None = None, root: Path = ROOT) -> dict[str, Any]:
    """``make test`` wall time and pytest's summary."""
    cmd = _make(make_args or [], "test")
    print(shlex.join(cmd), file=sys.stderr)
    load = _load()
    run = run_timed(cmd, root, echo=False)
    summary = next(((t, m) for t, line in reversed(run.lines) if (m := _PYTEST.search(line))),
                   None)
    return {"command": shlex.join(cmd), **_verdict("test", run.seconds, run.returncode == 0),
            "returncode": run.returncode,
            "pytest_summary": summary[1]["summary"] if summary else None,
            "pytest_s": float(summary[1]["s"]) if summary else None, "load_before": load}


def table(pipeline: dict[str, Any]) -> str:
    """One line per measured target."""
    rows = ["target       seconds  target  pass  command"]
    for name in TARGETS_S:
        r = pipeline.get(name)
        if r:
            rows.append(f"{name:<12} {r['seconds']:7.1f} {r['target_s']:7.0f}  "
                        f"{'yes' if r['pass'] else 'NO':<4}  {r['command']}")
    return "\n".join(rows)
