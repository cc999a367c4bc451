"""Per-fit time of nutrimeta's frequentist and exact paths beside the Python peers.

Peers (bench-only dependencies, ``pip install -e .[bench]``): PyMARE's REML
(``VarianceBasedLikelihoodEstimator(method="REML")``) and DerSimonian-Laird estimators, and
statsmodels' ``combine_effects`` (``method_re="chi2"``: DerSimonian-Laird, ``"iterated"``:
Paule-Mandel). PyMARE is timed on ``fit`` alone with array inputs and Wald inference (no
``Dataset``, no ``summary()``), the least work it can be asked to do; nutrimeta's ``rma``
returns the complete result (coefficients, SEs, CIs, p-values, Q, I^2, H^2, SE(tau^2),
prediction interval). The exact path is the posterior under a half-normal prior on tau.

All callables are timed in interleaved rounds on the same data so that load on the machine
affects them alike; the median per-call time over the rounds is reported, and ratios
``nutrimeta / peer`` (below 1: nutrimeta is faster). With a baseline revision
(``--baseline REV``), that revision's ``models/frequentist.py`` and ``models/exact.py``
(which import only numpy and scipy) are loaded from git and timed in the same rounds, giving
before/after speed-ups.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

KS = (5, 10, 100, 1000)
ROUNDS = 15
TARGET_ROUND_S = 0.02  # calls per round chosen so that a round of one callable takes ~20 ms


def _data(k: int, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, k])
    v = rng.uniform(0.02, 0.5, k)
    y = 0.3 + rng.normal(0.0, 0.3, k) + rng.normal(0.0, np.sqrt(v))
    return y, v


def _calls_per_round(fn: Callable[[], object]) -> int:
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, min(2000, int(TARGET_ROUND_S / once)))


def _time_interleaved(fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median seconds per call of each callable over interleaved rounds."""
    reps = {name: _calls_per_round(fn) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            n = reps[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(ts) for name, ts in samples.items()}


def load_baseline(rev: str) -> dict[str, ModuleType]:
    """``models/frequentist.py`` and ``models/exact.py`` as of git revision ``rev``."""
    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="nutrimeta-baseline-"))
    mods = {}
    for name in ("frequentist", "exact"):
        src = subprocess.run(
            ["git", "show", f"{rev}:src/nutrimeta/models/{name}.py"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout
        path = tmp / f"baseline_{name}.py"
        path.write_text(src, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"baseline_{name}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses resolve their module by name
        spec.loader.exec_module(mod)
        mods[name] = mod
    return mods


def _baseline_callables(
    y: np.ndarray, v: np.ndarray, base: dict[str, ModuleType]
) -> dict[str, Callable[[], object]]:
    rma, ex = base["frequentist"].rma, base["exact"]
    se, prior = np.sqrt(v), ex.TauPrior.half_normal(0.5)
    return {
        "baseline_reml": lambda: rma(y, v, method="REML"),
        "baseline_dl": lambda: rma(y, v, method="DL"),
        "baseline_pm": lambda: rma(y, v, method="PM"),
        "baseline_exact": lambda: ex.exact_posterior(y, se, prior),
    }


SPEEDUPS = {
    "reml": ("baseline_reml", "nutrimeta_reml"),
    "dl": ("baseline_dl", "nutrimeta_dl"),
    "pm": ("baseline_pm", "nutrimeta_pm"),
    "exact": ("baseline_exact", "nutrimeta_exact"),
}


def _callables(y: np.ndarray, v: np.ndarray) -> dict[str, Callable[[], object]]:
    from pymare.estimators import DerSimonianLaird, VarianceBasedLikelihoodEstimator
    from statsmodels.stats.meta_analysis import combine_effects

    from nutrimeta.models.exact import TauPrior, exact_posterior
    from nutrimeta.models.frequentist import rma

    se = np.sqrt(v)
    y2, v2, X = y[:, None], v[:, None], np.ones((y.size, 1))
    prior = TauPrior.half_normal(0.5)
    return {
        "nutrimeta_reml": lambda: rma(y, v, method="REML"),
        "nutrimeta_dl": lambda: rma(y, v, method="DL"),
        "nutrimeta_pm": lambda: rma(y, v, method="PM"),
        "nutrimeta_exact": lambda: exact_posterior(y, se, prior),
        "pymare_reml": lambda: VarianceBasedLikelihoodEstimator(
            method="REML", small_sample_correction="wald"
        ).fit(y2, v2, X),
        "pymare_dl": lambda: DerSimonianLaird(small_sample_correction="wald").fit(y2, v2, X),
        "statsmodels_dl": lambda: combine_effects(y, v, method_re="chi2"),
        "statsmodels_pm": lambda: combine_effects(y, v, method_re="iterated"),
    }


RATIOS = {
    "reml_vs_pymare_reml": ("nutrimeta_reml", "pymare_reml"),
    "dl_vs_pymare_dl": ("nutrimeta_dl", "pymare_dl"),
    "dl_vs_statsmodels_dl": ("nutrimeta_dl", "statsmodels_dl"),
    "pm_vs_statsmodels_pm": ("nutrimeta_pm", "statsmodels_pm"),
    "exact_vs_pymare_reml": ("nutrimeta_exact", "pymare_reml"),
}


def _agreement(y: np.ndarray, v: np.ndarray) -> dict[str, float]:
    """Absolute differences of the tau^2 estimates from the peers' (same data)."""
    from pymare.estimators import DerSimonianLaird, VarianceBasedLikelihoodEstimator
    from statsmodels.stats.meta_analysis import combine_effects

    from nutrimeta.models.frequentist import rma

    X = np.ones((y.size, 1))
    pm_reml = VarianceBasedLikelihoodEstimator(method="REML").fit(y[:, None], v[:, None], X)
    pm_dl = DerSimonianLaird().fit(y[:, None], v[:, None], X)
    sm_pm = combine_effects(y, v, method_re="iterated")
    return {
        "reml_tau2_abs_diff_pymare": abs(
            rma(y, v).tau2 - float(np.ravel(pm_reml.params_["tau2"])[0])
        ),
        "dl_tau2_abs_diff_pymare": abs(
            rma(y, v, method="DL").tau2 - float(np.ravel(pm_dl.params_["tau2"])[0])
        ),
        "pm_tau2_abs_diff_statsmodels": abs(rma(y, v, method="PM").tau2 - float(sm_pm.tau2)),
    }


def versions() -> dict[str, str]:
    """Versions of the packages whose speed is compared."""
    out = {}
    for pkg in ("nutrimeta", "numpy", "scipy", "pymare", "statsmodels"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def bench_peers(ks: tuple[int, ...] = KS, baseline: str | None = None) -> dict[str, Any]:
    """Seconds per fit for every path and k, the ratios and the estimates' agreement; with
    ``baseline`` (a git revision) also that revision's times and the speed-ups over it."""
    try:
        import pymare  # noqa: F401
    except ImportError:
        return {"skipped": "PyMARE is not installed (pip install -e .[bench])"}
    base = load_baseline(baseline) if baseline else None
    per_k: dict[str, Any] = {}
    for k in ks:
        y, v = _data(k)
        fns = _callables(y, v)
        if base is not None:
            fns.update(_baseline_callables(y, v, base))
        seconds = _time_interleaved(fns)
        per_k[str(k)] = {
            "seconds_per_fit": seconds,
            "ratios": {name: seconds[a] / seconds[b] for name, (a, b) in RATIOS.items()},
            "agreement": _agreement(y, v),
        }
        if base is not None:
            per_k[str(k)]["speedup_over_baseline"] = {
                name: seconds[a] / seconds[b] for name, (a, b) in SPEEDUPS.items()
            }
    worst = {name: max(per_k[str(k)]["ratios"][name] for k in ks) for name in RATIOS}
    out = {
        "ks": list(ks),
        "rounds": ROUNDS,
        "method": "median over interleaved rounds; ratio = nutrimeta / peer (< 1: faster)",
        "versions": versions(),
        "per_k": per_k,
        "worst_ratio_over_k": worst,
        "goal_met": all(r <= 1.0 for r in worst.values()),
    }
    if baseline:
        out["baseline"] = baseline
    return out


def table(result: dict[str, Any]) -> str:
    """Plain-text table of milliseconds per fit and ratios."""
    if "per_k" not in result:
        return str(result)
    names = list(next(iter(result["per_k"].values()))["seconds_per_fit"])
    lines = ["k      " + "  ".join(f"{n:>16}" for n in names)]
    for k, row in result["per_k"].items():
        ms = row["seconds_per_fit"]
        lines.append(f"{k:<6} " + "  ".join(f"{1e3 * ms[n]:>13.3f} ms" for n in names))
    lines.append("")
    lines.append("k      " + "  ".join(f"{n:>22}" for n in RATIOS))
    for k, row in result["per_k"].items():
        lines.append(f"{k:<6} " + "  ".join(f"{row['ratios'][n]:>22.3f}" for n in RATIOS))
    if "baseline" in result:
        lines += ["", f"speed-up over {result['baseline']}", "k      " + "  ".join(
            f"{n:>8}" for n in SPEEDUPS)]
        for k, row in result["per_k"].items():
            up = row["speedup_over_baseline"]
            lines.append(f"{k:<6} " + "  ".join(f"{up[n]:>7.1f}x" for n in SPEEDUPS))
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(bench_peers(baseline=sys.argv[1] if len(sys.argv) > 1 else None)))
