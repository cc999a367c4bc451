"""Speed benchmarks, reported as ratios against a baseline measured in the same run.

Run with ``make bench``. Absolute seconds vary between machines; the ratios are what the
package's design promises:

1. exact quadrature posterior vs a brute-force 2-D grid for the same normal–normal model
   (the exact path must be orders of magnitude faster at equal accuracy);
2. a warm nutpie refit with swapped data (compiled once) vs compiling and sampling afresh
   (what leave-one-out and prior sensitivity would cost without the shared data containers);
3. nutpie vs PyMC's own NUTS with ``cores=2`` for the same model and draws;
4. per-fit time of the frequentist (REML, DL, PM) and exact paths beside PyMARE and
   statsmodels for k = 5, 10, 100, 1000 (``benchmarks/peers.py``);
5. the pipeline's wall-clock targets (``benchmarks/targets.py``): warm forced
   ``make clean analysis`` per stage (30 s), a fresh clone to finished reports with the
   README's first command (120 s, the installation timed apart) and ``make test`` (3 min).

Results are printed and written to ``benchmarks/results.json``; ``--only PART,...`` runs some
parts (exact, refit, peers, analysis, clone, test) and updates only their entries (and the
machine description) in that file, which is rewritten after each part. ``analysis`` deletes
``build/`` and ``reports/`` (it is ``make clean analysis``); ``clone`` and ``test`` take
minutes. ``--baseline REV`` adds the estimators of git revision REV to the peers part
(before/after speed-ups measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import peers
import targets

#: Parts of the benchmark, in the order they run.
PARTS = ("exact", "refit", "peers", "analysis", "clone", "test")
#: Libraries of the analysis itself, recorded beside the compared ones.
STACK = ("pymc", "pytensor", "nutpie", "arviz", "pandas", "dask", "distributed")

K = 15
REPEATS = 5


def _time(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    se = rng.uniform(0.5, 2.0, K)
    theta = 1.0 + 1.0 * rng.standard_normal(K)
    return theta + se * rng.standard_normal(K), se


def bench_exact() -> dict[str, float]:
    from scipy import stats

    from nutrimeta.models.exact import TauPrior, exact_posterior

    y, se = _data()

    def brute() -> float:
        mu = np.linspace(-10, 12, 1201)[:, None]
        tau = np.linspace(1e-4, 10, 1001)[None, :]
        logp = stats.halfnorm.logpdf(tau, scale=2.0).copy()
        for yi, si in zip(y, se, strict=True):
            logp = logp + stats.norm.logpdf(yi, mu, np.sqrt(si**2 + tau**2))
        p = np.exp(logp - logp.max())
        return float((p.sum(axis=1) * mu[:, 0]).sum() / p.sum())

    def exact() -> float:
        return exact_posterior(y, se, TauPrior.half_normal(2.0), mu_prior=(0.0, np.inf)).mu.mean

    agree = abs(brute() - exact())
    t_brute, t_exact = _time(brute), _time(exact, 50)
    return {"brute_force_grid_s": t_brute, "exact_quadrature_s": t_exact,
            "speedup": t_brute / t_exact, "abs_difference_mu_mean": agree}


def bench_refit() -> dict[str, float]:
    from nutrimeta.models.bayes import ModelData, Priors, build_model
    from nutrimeta.models.fitting import Refitter, SamplerSettings, fit

    y, se = _data()
    data = ModelData.from_arrays(y, se, labels=[f"s{i}" for i in range(K)])
    priors = Priors(mu_sd=10.0, tau_scale=2.0)
    sampler = SamplerSettings(chains=4, draws=1000, tune=1000, cores=2)
    start = time.perf_counter()
    refitter = Refitter(data, priors, "random_effects_marginal", sampler=sampler)
    compile_s = time.perf_counter() - start
    y2, se2 = _data(2)
    data2 = ModelData.from_arrays(y2, se2, labels=[f"s{i}" for i in range(K)])
    warm = _time(lambda: refitter.fit(data2, seed=3), 3)
    fresh = _time(lambda: fit(build_model(data2, priors, "random_effects_marginal"), sampler, 3),
                  2)
    pymc = _time(lambda: fit(build_model(data2, priors, "random_effects_marginal"),
                             SamplerSettings(backend="pymc", chains=4, draws=1000, tune=1000,
                                             cores=2), 3), 2)
    return {"compile_s": compile_s, "warm_refit_nutpie_s": warm,
            "fresh_compile_and_sample_nutpie_s": fresh, "pymc_nuts_cores2_s": pymc,
            "refit_speedup_vs_fresh": fresh / warm, "nutpie_warm_speedup_vs_pymc": pymc / warm}


def machine() -> dict[str, object]:
    """Where the numbers were measured: CPU, cores, Python, package versions and commit."""
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = peers.versions()
    for pkg in STACK:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = "not installed"
    git = subprocess.run(["git", "-C", str(targets.ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False).stdout.strip()
    return {"python": platform.python_version(), "processor": platform.machine(), "cpu": cpu,
            "cores": os.cpu_count(), "system": platform.system(), "commit": git or None,
            "versions": versions}


def _parts(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown)}; choose from "
                                         f"{', '.join(PARTS)}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=_parts, default=None, metavar="PART,...",
                        help=f"run only these parts ({', '.join(PARTS)}; default: all)")
    parser.add_argument("--peers-only", action="store_true", help="same as --only peers")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also time the estimators of git revision REV (before/after)")
    parser.add_argument("--analysis-runs", type=int, default=2, metavar="N",
                        help="forced analysis runs; the last is judged, the first warms up")
    parser.add_argument("--clone-from", default=str(targets.ROOT), metavar="REPO",
                        help="repository to clone for the fresh-clone part (default: this one)")
    parser.add_argument("--keep-clone", action="store_true",
                        help="keep the fresh clone's folder (printed) instead of deleting it")
    parser.add_argument("--make-arg", action="append", default=[], dest="make_args",
                        metavar="ARG", help="extra argument for make in the analysis and test "
                        "parts (repeatable), e.g. VENV=/path/to/venv")
    args = parser.parse_args()
    parts = ["peers"] if args.peers_only else args.only or list(PARTS)
    out = Path(__file__).with_name("results.json")
    results = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    results["machine"] = machine()
    pipeline = results.setdefault("pipeline", {})
    for part in (p for p in PARTS if p in parts):
        start = time.perf_counter()
        print(f"== {part}", file=sys.stderr, flush=True)
        if part == "exact":
            results["k"], results["exact"] = K, bench_exact()
        elif part == "refit":
            results["k"], results["refit"] = K, bench_refit()
        elif part == "peers":
            results["peers"] = peers.bench_peers(baseline=args.baseline)
        elif part == "analysis":
            pipeline["analysis"] = targets.bench_analysis(args.analysis_runs, args.make_args)
        elif part == "clone":
            pipeline["clone"] = targets.bench_clone(args.clone_from, args.keep_clone)
        elif part == "test":
            pipeline["test"] = targets.bench_test(args.make_args)
        pipeline["targets_s"] = targets.TARGETS_S
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"== {part} done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    shown = ["machine"] + [p for p in ("exact", "refit") if p in parts]
    print(json.dumps({k: results[k] for k in shown}, indent=2))
    if "peers" in parts:
        print(peers.table(results["peers"]))
    if {"analysis", "clone", "test"} & set(parts):
        print(targets.table(pipeline))


if __name__ == "__main__":
    main()
