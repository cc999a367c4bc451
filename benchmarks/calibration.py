"""Calibration of the all-reports analysis against the conventional one, by simulation.

Each simulated data set is a meta-analysis of ``k`` two-arm trials with known ``mu``, ``tau``
and a baseline-status slope (true effects ``theta_i = mu + slope x_i + u_i``, ``x_i ~ N(0,1)``,
``u_i ~ N(0, tau^2)``; the analyses are intercept-only, so the slope acts as heterogeneity
around ``mu``). Each trial draws its arm sizes and its outcome SD, then its report is degraded
the way the literature does:

- outcome-reporting: a significant result (two-sided t test, p < 0.05) is printed with its
  numbers with probability ``p_full_sig``, a non-significant one with ``p_full_ns``; the rest
  print only "p < 0.05" with the direction or "no significant difference";
- of the printed numbers, a share ``p_drop_sd`` lacks the dispersion (means and n only),
  half of those (``p_exact_p``) with the exact p-value of the t test;
- a share ``p_omit_n`` omits the arm sizes: half of those still give the total n (equal split,
  a declared assumption), the other half no n at all (unusable).

Analyses (same priors on the outcome's scale, ``mu ~ N(0, 1)``, ``tau ~ HalfNormal(0.5)``,
in units of the outcome SD):

- ``all_reports``: every usable report by its route (:func:`nutrimeta.models.partial.
  assign_route`), posterior by brute-force integration of the all-reports likelihood
  (:func:`nutrimeta.models.partial_grid.grid_posterior`: the same likelihood the PyMC model
  samples; the log-SD prior centred on the mean log SD of the trials that report one, spread
  ``log_sd_spread``);
- ``conventional``: complete reports only, the exact normal-normal posterior
  (:func:`nutrimeta.models.exact.exact_posterior`).

``run_one(seed, params)`` does one data set; ``main`` runs ``--n`` of them per scenario as a
simulation study on dask.distributed (:func:`nutrimeta.simstudy.run_study`): a LocalCluster of
``--workers`` processes by default, or the cluster at ``--scheduler ADDRESS``; a progress bar
on standard error; each data set's result written to its own file under ``--tasks-dir`` as it
finishes, so an interrupted study resumes where it stopped; seeds per data set derived from
the study seed and the data set's index, so the results do not depend on the number of
workers. It writes ``benchmarks/calibration.json`` and ``benchmarks/calibration.md``.

Usage: ``python benchmarks/calibration.py [--n 400] [--workers 2] [--scheduler ADDRESS]``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from nutrimeta.models.exact import TauPrior, exact_posterior
from nutrimeta.models.partial import (
    CellReport,
    Contribution,
    PartialPriors,
    assign_route,
)
from nutrimeta.models.partial_grid import grid_posterior
from nutrimeta.simstudy import StudyResult, run_study

HERE = Path(__file__).resolve().parent
#: Study seed of the calibration; each scenario's study seed is derived from it and its name.
SEED = 2026
#: Default folder of the per-data-set result files (resumable).
TASKS_DIR = HERE.parent / "build" / "calibration-all-reports"

DEFAULT_PARAMS: dict[str, Any] = {
    "k": 10,
    "mu": 0.3,
    "tau": 0.15,
    "slope": 0.1,
    "n_per_arm": [12, 60],
    "sd_true_log_spread": 0.3,
    "p_full_sig": 0.85,
    "p_full_ns": 0.4,
    "p_drop_sd": 0.3,
    "p_exact_p": 0.5,
    "p_omit_n": 0.15,
    "mu_sd": 1.0,
    "tau_scale": 0.5,
    "log_sd_spread": 0.5,
    "levels": [0.9, 0.95],
}


#: Scenarios run by ``main`` (overrides of :data:`DEFAULT_PARAMS`).
SCENARIOS: dict[str, dict[str, Any]] = {
    "base": {},
    "heterogeneous": {"tau": 0.3, "slope": 0.2},
    "null_effect": {"mu": 0.0},
}


def simulate(rng: np.random.Generator, p: Mapping[str, Any]) -> list[CellReport]:
    """One meta-analysis of degraded trial reports (outcome SD 1 = the unit)."""
    cells = []
    lo, hi = p["n_per_arm"]
    for i in range(int(p["k"])):
        n1, n2 = (int(v) for v in rng.integers(lo, hi + 1, 2))
        theta = p["mu"] + p["slope"] * rng.standard_normal() + p["tau"] * rng.standard_normal()
        sigma = math.exp(p["sd_true_log_spread"] * rng.standard_normal())
        m1 = theta + sigma / math.sqrt(n1) * rng.standard_normal()
        m2 = sigma / math.sqrt(n2) * rng.standard_normal()
        df = n1 + n2 - 2
        s = sigma * math.sqrt(rng.chisquare(df) / df)  # pooled sample SD
        se = s * math.sqrt(1 / n1 + 1 / n2)
        est = m1 - m2
        pval = float(2 * stats.t.sf(abs(est / se), df))
        sig = pval < 0.05
        full = rng.uniform() < (p["p_full_sig"] if sig else p["p_full_ns"])
        kw: dict[str, Any] = {"trial_id": f"t{i}", "n1": n1, "n2": n2}
        if rng.uniform() < p["p_omit_n"]:
            kw["n1"] = kw["n2"] = math.nan
            if rng.uniform() < 0.5:
                kw["n_total"] = n1 + n2
        if full:
            if rng.uniform() < p["p_drop_sd"]:
                if rng.uniform() < p["p_exact_p"]:  # means with the exact p of the t test
                    cells.append(CellReport(estimate=est, p_value=pval, p_qualifier="=",
                                            p_comparison="between_arms", **kw))
                else:
                    cells.append(CellReport(estimate=est, **kw))
            elif math.isfinite(kw["n1"]):
                cells.append(CellReport(estimate=est, se=se, sd=s, **kw))
            else:  # mean difference with its SE but no n: still complete
                cells.append(CellReport(estimate=est, se=se, **kw))
        elif sig:
            cells.append(CellReport(p_value=0.05, p_qualifier="<", p_comparison="between_arms",
                                    direction="increase" if est > 0 else "decrease", **kw))
        else:
            cells.append(CellReport(p_value=0.05, p_qualifier=">", p_comparison="between_arms",
                                    direction="no_change", **kw))
    return cells


def _interval_hits(lo_hi: tuple[float, float], truth: float) -> bool:
    return lo_hi[0] <= truth <= lo_hi[1]


def run_one(seed: int, params: dict) -> dict:
    """Simulate one data set and fit both analyses; coverage indicators and estimates."""
    p = {**DEFAULT_PARAMS, **params}
    rng = np.random.default_rng(seed)
    cells = simulate(rng, p)
    decisions = [assign_route(c) for c in cells]
    contribs: list[Contribution] = [d.contribution for d in decisions if d.contribution]
    routes = {r: sum(1 for c in contribs if c.route == r) for r in
              ("full", "se_from_p", "latent_sd", "censored_threshold", "censored_ns", "sign")}
    out: dict[str, Any] = {"seed": seed, "routes": routes,
                           "unusable": sum(1 for d in decisions if not d.usable)}
    reported_sd = [c.sd for c in contribs if c.sd > 0]
    center = float(np.mean(np.log(reported_sd))) if reported_sd else 0.0
    priors = PartialPriors(unit_sd=1.0, mu_sd=p["mu_sd"], tau_scale=p["tau_scale"],
                           log_sd_spread=p["log_sd_spread"], learn_sd=False,
                           log_sd_center=center)
    g = grid_posterior(contribs, priors, n_mu=481, n_tau=160, n_sd=20, mu_range=(-3.0, 3.0),
                       tau_max=2.0)
    out["all_reports"] = {"k": len(contribs), "mean": g.summary()["mu"]["mean"]}
    for lev in p["levels"]:
        out["all_reports"][f"cover{int(lev * 100)}"] = _interval_hits(g.interval("mu", lev),
                                                                     p["mu"])
    full = [c for c in contribs if c.route == "full"]
    conv: dict[str, Any] = {"k": len(full)}
    if full:
        post = exact_posterior([c.estimate for c in full], [c.se for c in full],
                               TauPrior.half_normal(p["tau_scale"]), (0.0, p["mu_sd"]))
        conv["mean"] = post.mu.mean
        for lev in p["levels"]:
            conv[f"cover{int(lev * 100)}"] = _interval_hits(post.mu.interval(lev), p["mu"])
    out["conventional"] = conv
    return out


def summarise(rows: list[dict], params: Mapping[str, Any]) -> dict[str, Any]:
    """Coverage (percent) with its binomial MC error, bias and RMSE per analysis."""
    p = {**DEFAULT_PARAMS, **params}
    res: dict[str, Any] = {}
    for a in ("all_reports", "conventional"):
        fitted = [r[a] for r in rows if "mean" in r[a]]
        means = np.array([f["mean"] for f in fitted])
        d: dict[str, Any] = {"datasets": len(fitted), "mean_k": float(np.mean(
            [f["k"] for f in fitted])) if fitted else math.nan}
        for lev in p["levels"]:
            key = f"cover{int(lev * 100)}"
            hits = np.array([f[key] for f in fitted], dtype=float)
            d[key] = 100 * float(hits.mean())
            d[f"{key}_mcse"] = 100 * math.sqrt(lev * (1 - lev) / max(len(hits), 1))
        d["bias"] = float(means.mean() - p["mu"])
        d["bias_mcse"] = float(means.std(ddof=1) / math.sqrt(len(means)))
        d["rmse"] = float(math.sqrt(np.mean((means - p["mu"]) ** 2)))
        res[a] = d
    res["routes_mean"] = {r: float(np.mean([row["routes"][r] for row in rows]))
                          for r in rows[0]["routes"]}
    res["unusable_mean"] = float(np.mean([row["unusable"] for row in rows]))
    return res


def markdown(results: Mapping[str, Any]) -> str:
    """The calibration tables in Markdown, one row per scenario and analysis."""
    lines = [
        "# Calibration of the all-reports analysis",
        "",
        "Simulated meta-analyses of two-arm trials with reports degraded as described in "
        "`benchmarks/calibration.py` (outcome SD units). Coverage of the central posterior "
        "intervals of mu in percent and bias of its posterior mean, Monte Carlo SE in "
        "brackets. `conventional` uses the complete reports only (a data set with none is "
        "not counted for it).",
        "",
        "| scenario | analysis | data sets | mean k used | 90% coverage | 95% coverage | "
        "bias | RMSE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        pr, sm = r["params"], r["summary"]
        label = f"{name} (k={pr['k']}, mu={pr['mu']}, tau={pr['tau']}, slope={pr['slope']})"
        for a in ("all_reports", "conventional"):
            d = sm[a]
            lines.append(
                f"| {label} | {a} | {d['datasets']} | {d['mean_k']:.1f} | {d['cover90']:.1f} "
                f"({d['cover90_mcse']:.1f}) | {d['cover95']:.1f} ({d['cover95_mcse']:.1f}) | "
                f"{d['bias']:+.3f} ({d['bias_mcse']:.3f}) | {d['rmse']:.3f} |")
    lines.append("")
    for name, r in results.items():
        sm = r["summary"]
        lines.append(f"- {name}: mean contributions per data set by route: " + ", ".join(
            f"{k} {v:.1f}" for k, v in sm["routes_mean"].items())
            + f"; unusable (no n) {sm['unusable_mean']:.1f}.")
    lines.append("")
    return "\n".join(lines)


def scenario_seed(seed: int, name: str) -> int:
    """The study seed of scenario ``name``: stable whatever scenarios are selected."""
    state = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)
    return int(state[0])


def _ship_by_value() -> None:
    """Worker processes cannot import this script by name: send its functions by value."""
    import cloudpickle

    module = sys.modules.get(__name__)
    if module is not None and __name__ != "__main__":
        cloudpickle.register_pickle_by_value(module)


def run_many(n: int, params: dict, out_dir: Path, *, seed: int = SEED, workers: int | None = 1,
             scheduler: str | None = None, progress: bool = True) -> StudyResult:
    """Run ``n`` data sets as a resumable dask study (one result file each in ``out_dir``);
    ``.results`` holds the rows in data-set order.

    Data set ``i`` gets :func:`nutrimeta.simstudy.task_seed` ``(seed, i)``, so the rows do not
    depend on ``workers`` nor on the scheduler."""
    _ship_by_value()
    return run_study(run_one, [params] * n, seed=seed, out_dir=out_dir,
                     scheduler_address=scheduler, n_workers=workers, progress=progress)


def main(argv: list[str] | None = None) -> None:
    """Run the scenarios and write ``calibration.json`` and ``calibration.md``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400, help="simulated data sets per scenario")
    ap.add_argument("--workers", type=int, default=None,
                    help="worker processes of the local cluster (default: one per core)")
    ap.add_argument("--scheduler", metavar="ADDRESS", default=None,
                    help="address of a running dask scheduler (default: a local cluster)")
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                    help="scenario(s) to run (default: all)")
    ap.add_argument("--seed", type=int, default=SEED, help="study seed")
    ap.add_argument("--tasks-dir", type=Path, default=TASKS_DIR,
                    help="folder of the per-data-set results (a rerun resumes from it)")
    ap.add_argument("--restart", action="store_true",
                    help="discard the saved per-data-set results first")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    if args.restart and args.tasks_dir.exists():
        shutil.rmtree(args.tasks_dir)
    names = args.scenario or list(SCENARIOS)
    results: dict[str, Any] = {}
    cluster = None
    scheduler = args.scheduler
    if scheduler is None:
        from distributed import LocalCluster

        # one local cluster for every scenario (each study connects to it)
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        scheduler = cluster.scheduler_address
    try:
        for name in names:
            params = {**DEFAULT_PARAMS, **SCENARIOS[name]}
            seed = scenario_seed(args.seed, name)
            print(f"scenario {name}: {args.n} data sets", file=sys.stderr)
            study = run_many(args.n, params, args.tasks_dir / name, seed=seed,
                             scheduler=scheduler)
            results[name] = {"params": params, "n_datasets": args.n, "study_seed": seed,
                             "summary": summarise(study.results, params),
                             "seconds": study.elapsed_s}
    finally:
        if cluster is not None:
            cluster.close()
    payload = {"scenarios": results, "machine": platform.platform(),
               "method": "all_reports: grid_posterior (brute-force integration of the "
                         "all-reports likelihood); conventional: exact_posterior; data sets "
                         "run with nutrimeta.simstudy (dask.distributed), seeds per data set "
                         "from the scenario's study seed"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps(payload, indent=2) + "\n",
                                               encoding="utf-8")
    (args.out / "calibration.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
