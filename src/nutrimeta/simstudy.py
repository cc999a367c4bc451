"""Simulation studies on dask.distributed: resumable, and reproducible for any worker count.

A study is a list of tasks ``task(seed, params) -> dict``, one per entry of ``params``, run
through dask.distributed: a :class:`distributed.LocalCluster` on this machine by default, or
an existing cluster given by its scheduler address (``scheduler_address="tcp://host:8786"``),
unchanged. The design choices:

* **Seeds per task.** Task ``i`` receives the integer seed drawn from
  ``numpy.random.SeedSequence(study_seed, spawn_key=(i,))``, the ``i``-th child that
  ``SeedSequence(study_seed).spawn(n)`` would give: it depends on the study seed and the
  task's index only, never on the number of workers, the order of completion or how many
  tasks the study has, so results are identical on 1 or 100 workers and a study can be
  extended with more tasks.
* **One file per task.** Each result is written atomically, as soon as it arrives, to
  ``out_dir/task-000123.json`` (index, seed, params, result). A rerun skips every task whose
  file exists, so an interrupted study resumes where it stopped; ``out_dir/study.json`` holds
  the study's identity (task function, seed, number of tasks, a hash of the params) and a
  rerun with a different study in the same folder is refused.
* **Failures.** A task that raises does not stop the others; their results are written and a
  :class:`StudyError` naming the failed indices is raised at the end (rerun to retry them).
* **Progress** is shown on standard error (done / total, skipped, failed, elapsed).

``calibration_task`` is the study this package runs on its own estimators: data simulated
from the normal-normal model with parameters drawn from the priors, so that the exact
posterior's central intervals must cover the truth at their nominal rate (over the prior),
next to the coverage of the REML Wald interval. ``python -m nutrimeta.simstudy --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nutrimeta.io_utils import atomic_write_text

__all__ = [
    "StudyError",
    "StudyResult",
    "calibration_task",
    "run_study",
    "task_seed",
]

Task = Callable[[int, Any], dict[str, Any]]


class StudyError(RuntimeError):
    """Some tasks of a study failed (the others' results are on disk)."""


@dataclass
class StudyResult:
    """Results in task order, and which tasks were computed in this run or found on disk."""

    results: list[dict[str, Any]]
    seeds: list[int]
    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0


def task_seed(study_seed: int, index: int) -> int:
    """The integer seed of task ``index``: ``SeedSequence(study_seed).spawn(n)[index]``'s state
    (64 bits), independent of ``n`` and of the workers."""
    child = np.random.SeedSequence(study_seed, spawn_key=(index,))
    return int(child.generate_state(1, dtype=np.uint64)[0])


def _task_name(task: Task) -> str:
    return f"{getattr(task, '__module__', '?')}.{getattr(task, '__qualname__', repr(task))}"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=_jsonable)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def _manifest(task: Task, params: Sequence[Any], seed: int) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps(list(params), default=_jsonable).encode()).hexdigest()
    return {"task": _task_name(task), "seed": seed, "n_tasks": len(params), "params_sha256": digest}


def _task_path(out_dir: Path, index: int) -> Path:
    return out_dir / f"task-{index:06d}.json"


def _load_done(path: Path, index: int, seed: int) -> dict[str, Any] | None:
    """A finished task's record, or None when the file is absent."""
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StudyError(f"{path}: not a valid task record ({exc}); delete it to rerun") from exc
    if rec.get("index") != index or rec.get("seed") != seed:
        raise StudyError(f"{path}: index/seed do not match this study; delete it to rerun")
    return rec


class _Progress:
    def __init__(self, total: int, skipped: int, enabled: bool) -> None:
        self.total, self.skipped, self.enabled = total, skipped, enabled
        self.done = self.failed = 0
        self.start = time.perf_counter()

    def update(self, *, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        self.show()

    def show(self, end: str = "") -> None:
        if not self.enabled:
            return
        n = self.done + self.skipped
        width = 30
        bar = "#" * (width * n // max(self.total, 1))
        msg = (f"\rsimulation [{bar:<{width}}] {n}/{self.total} "
               f"({self.skipped} from disk, {self.failed} failed) "
               f"{time.perf_counter() - self.start:.1f} s")
        print(msg, end=end, file=sys.stderr, flush=True)


def run_study(
    task: Task,
    params: Sequence[Any],
    *,
    seed: int,
    out_dir: Path | str,
    scheduler_address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    progress: bool = True,
) -> StudyResult:
    """Run ``task(task_seed(seed, i), params[i])`` for every ``i`` on dask.distributed.

    Parameters
    ----------
    task
        A picklable function (defined at module level) returning a JSON-serialisable dict.
    params
        One JSON-serialisable parameter object per task.
    seed
        The study seed; task seeds are derived from it and the task index (:func:`task_seed`).
    out_dir
        Folder for ``study.json`` and one ``task-NNNNNN.json`` per finished task.
    scheduler_address
        Address of a running dask scheduler; default: start a :class:`LocalCluster`.
    n_workers, threads_per_worker, processes
        Shape of the local cluster (ignored with ``scheduler_address``).
    progress
        Show progress on standard error.

    Returns
    -------
    StudyResult
        ``results[i]`` is task ``i``'s dict, whether computed now or read from disk.
    """
    from distributed import Client, LocalCluster, as_completed

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(task, params, seed)
    man_path = out / "study.json"
    if man_path.exists():
        old = json.loads(man_path.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in ("task", "seed")} != {k: manifest[k] for k in ("task", "seed")}:
            raise StudyError(
                f"{out} holds results of another study ({old.get('task')}, seed "
                f"{old.get('seed')}); use another folder"
            )
    atomic_write_text(man_path, json.dumps(manifest, indent=1) + "\n")

    seeds = [task_seed(seed, i) for i in range(len(params))]
    records: dict[int, dict[str, Any]] = {}
    for i, s in enumerate(seeds):
        rec = _load_done(_task_path(out, i), i, s)
        if rec is not None:
            if rec.get("params") != json.loads(json.dumps(params[i], default=_jsonable)):
                raise StudyError(f"{_task_path(out, i)}: params differ from this study's")
            records[i] = rec
    skipped = sorted(records)
    todo = [i for i in range(len(params)) if i not in records]
    bar = _Progress(len(params), len(skipped), progress)
    start = time.perf_counter()
    failures: dict[int, str] = {}
    if todo:
        cluster = None
        if scheduler_address is None:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                   processes=processes, dashboard_address=None)
        try:
            with Client(scheduler_address or cluster) as client:
                name = manifest["task"]
                futures = {
                    client.submit(task, seeds[i], params[i], key=f"{name}-{i}-{seeds[i]}"): i
                    for i in todo
                }
                bar.show()
                for fut in as_completed(list(futures)):
                    i = futures[fut]
                    if fut.status == "error":
                        failures[i] = repr(fut.exception())
                        bar.update(failed=True)
                        continue
                    rec = {"index": i, "seed": seeds[i], "params": params[i],
                           "result": fut.result()}
                    text = _dumps(rec)
                    atomic_write_text(_task_path(out, i), text + "\n")
                    records[i] = json.loads(text)
                    bar.update()
        finally:
            if cluster is not None:
                cluster.close()
    bar.show(end="\n")
    if failures:
        lines = "; ".join(f"task {i}: {msg}" for i, msg in sorted(failures.items()))
        raise StudyError(f"{len(failures)} of {len(params)} tasks failed ({lines}); "
                         f"finished tasks are saved in {out}, rerun to retry the failed ones")
    return StudyResult(
        results=[records[i]["result"] for i in range(len(params))],
        seeds=seeds,
        computed=todo,
        skipped=skipped,
        elapsed_s=time.perf_counter() - start,
    )


# ------------------------------------------------------------------ calibration study
def calibration_task(seed: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """One simulated meta-analysis from the priors, analysed with the exact posterior and REML.

    ``params``: ``k`` (trials), ``tau_scale`` (half-normal prior scale of tau), ``mu_sd``
    (normal prior sd of mu), ``se_range`` (uniform range of the standard errors), ``level``
    (interval level, e.g. 0.9). Returns the truth, the intervals and coverage indicators.
    """
    from nutrimeta.models.exact import TauPrior, exact_posterior
    from nutrimeta.models.frequentist import rma

    rng = np.random.default_rng(seed)
    k = int(params["k"])
    tau_scale, mu_sd = float(params["tau_scale"]), float(params["mu_sd"])
    level = float(params.get("level", 0.9))
    lo_se, hi_se = params.get("se_range", (0.1, 0.5))
    tau = abs(float(rng.normal(0.0, tau_scale)))
    mu = float(rng.normal(0.0, mu_sd))
    se = rng.uniform(lo_se, hi_se, k)
    y = mu + tau * rng.standard_normal(k) + se * rng.standard_normal(k)
    post = exact_posterior(y, se, TauPrior.half_normal(tau_scale), mu_prior=(0.0, mu_sd))
    a = 0.5 * (1.0 - level)
    q_lo, q_hi = np.atleast_1d(post.mu.ppf([a, 1.0 - a]))
    t_lo, t_hi = np.atleast_1d(post.tau_quantile([a, 1.0 - a]))
    out: dict[str, Any] = {
        "mu": mu, "tau": tau,
        "exact_mu_lower": float(q_lo), "exact_mu_upper": float(q_hi),
        "exact_mu_covered": bool(q_lo < mu < q_hi),
        "exact_tau_covered": bool(t_lo < tau < t_hi),
    }
    if k >= 2:
        fit = rma(y, se**2, method="REML", level=level, tau2_ci=False)
        out.update({
            "reml_mu_lower": fit.ci_lower, "reml_mu_upper": fit.ci_upper,
            "reml_mu_covered": bool(fit.ci_lower < mu < fit.ci_upper),
            "reml_tau2": fit.tau2,
        })
    return out


def coverage(results: Sequence[Mapping[str, Any]], key: str) -> dict[str, float]:
    """Share of ``True`` in ``key`` with its Wilson 95% interval."""
    hits = [bool(r[key]) for r in results if key in r]
    n = len(hits)
    p = sum(hits) / n if n else math.nan
    z = 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n) if n else math.nan
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n) if n else 0.0
    return {"n": n, "coverage": p, "wilson_lower": centre - half, "wilson_upper": centre + half}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the calibration study from the command line."""
    ap = argparse.ArgumentParser(description="Calibration study of the exact posterior and "
                                 "REML on data simulated from the priors (dask.distributed).")
    ap.add_argument("--out", required=True, help="folder for the per-task result files")
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--tau-scale", type=float, default=0.5)
    ap.add_argument("--mu-sd", type=float, default=1.0)
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--workers", type=int, default=None, help="local workers (default: cores)")
    ap.add_argument("--scheduler", default=None, help="address of a running dask scheduler")
    args = ap.parse_args(argv)
    params = [{"k": args.k, "tau_scale": args.tau_scale, "mu_sd": args.mu_sd,
               "level": args.level}] * args.tasks
    res = run_study(calibration_task, params, seed=args.seed, out_dir=args.out,
                    scheduler_address=args.scheduler, n_workers=args.workers)
    summary = {key: coverage(res.results, key) for key in
               ("exact_mu_covered", "exact_tau_covered", "reml_mu_covered")}
    print(json.dumps({"level": args.level, **summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
