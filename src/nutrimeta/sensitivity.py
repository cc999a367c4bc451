"""Sensitivity and sequential analyses on the exact (quadrature) random-effects posterior.

The normal–normal model's posterior is exact and takes milliseconds, so prior sensitivity,
leave-one-trial-out, the assumed pre/post correlation and the cumulative (by publication year)
evidence are all computed on it, never by refitting the sampler.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from nutrimeta.models.exact import ExactPosterior, exact_posterior
from nutrimeta.priors import exact_tau_prior
from nutrimeta.results import benefit_sign
from nutrimeta.spec import TauPriorSpec


def fit_exact(df: pd.DataFrame, prior: TauPriorSpec, mu_sd: float) -> ExactPosterior:
    """Exact random-effects posterior of the rows of an effect-size table."""
    return exact_posterior(df["yi"].to_numpy(float), df["sei"].to_numpy(float),
                           exact_tau_prior(prior), mu_prior=(0.0, mu_sd),
                           labels=list(df["study_id"].astype(str)))


def _row(post: ExactPosterior, mid: float, beneficial: str) -> dict[str, float]:
    mu = post.mu
    lo, hi = mu.interval(0.95)
    sign = benefit_sign(beneficial)
    p_benefit = mu.prob_gt(0.0) if sign > 0 else 1.0 - mu.prob_gt(0.0)
    p_mid = mu.prob_gt(mid) if sign > 0 else 1.0 - mu.prob_gt(-mid)
    return {"mean": float(mu.mean), "median": float(mu.median), "q025": float(lo),
            "q975": float(hi), "tau_median": float(post.tau_median),
            "p_benefit": float(p_benefit), "p_beyond_mid": float(p_mid)}


def prior_sensitivity(df: pd.DataFrame, priors: list[TauPriorSpec], mu_sd: float, mid: float,
                      beneficial: str) -> list[dict]:
    """The pooled effect under each alternative heterogeneity prior."""
    return [{"analysis": p.label, "kind": "prior", **_row(fit_exact(df, p, mu_sd), mid,
                                                           beneficial)} for p in priors]


def leave_one_out(df: pd.DataFrame, prior: TauPriorSpec, mu_sd: float, mid: float,
                  beneficial: str) -> list[dict]:
    """The pooled effect with each trial left out in turn (needs k >= 2)."""
    out: list[dict] = []
    if len(df) < 2:
        return out
    for i, sid in enumerate(df["study_id"].astype(str)):
        rest = df.drop(df.index[i])
        label = sid if "subgroup" not in df or pd.isna(df["subgroup"].iloc[i]) else \
            f"{sid} [{df['subgroup'].iloc[i]}]"
        out.append({"analysis": f"without {label}", "kind": "leave_one_out",
                    **_row(fit_exact(rest, prior, mu_sd), mid, beneficial)})
    return out


def variant_sensitivity(variants: list[tuple[str, pd.DataFrame]], prior: TauPriorSpec,
                        mu_sd: float, mid: float, beneficial: str, kind: str) -> list[dict]:
    """The pooled effect when the effect sizes are recomputed under other assumptions."""
    return [{"analysis": label, "kind": kind, "k": len(df),
             **_row(fit_exact(df, prior, mu_sd), mid, beneficial)}
            for label, df in variants if len(df)]


def correlation_sensitivity(effects_for_r: Callable[[float], pd.DataFrame],
                            correlations: list[float], prior: TauPriorSpec, mu_sd: float,
                            mid: float, beneficial: str) -> list[dict]:
    """The pooled effect when change-score SDs are imputed with other pre/post correlations."""
    out = []
    for r in correlations:
        df = effects_for_r(r)
        if len(df) == 0:
            continue
        out.append({"analysis": f"pre/post correlation r = {r:g}", "kind":
                    "prepost_correlation", **_row(fit_exact(df, prior, mu_sd), mid, beneficial)})
    return out


def cumulative(df: pd.DataFrame, prior: TauPriorSpec, mu_sd: float) -> list[dict]:
    """Pooled effect as trials accrue in order of publication year (then study id)."""
    ordered = df.sort_values(["year", "study_id"], kind="stable")
    out = []
    for k in range(1, len(ordered) + 1):
        post = fit_exact(ordered.iloc[:k], prior, mu_sd)
        lo, hi = post.mu.interval(0.95)
        last = ordered.iloc[k - 1]
        out.append({"year": int(last["year"]), "study_id": str(last["study_id"]), "k": k,
                    "mean": float(post.mu.mean), "q025": float(lo), "q975": float(hi),
                    "p_gt_0": float(post.mu.prob_gt(0.0))})
    return out


def tau_prior_posterior(post: ExactPosterior, prior: TauPriorSpec, n: int = 200) -> dict:
    """Prior and posterior densities of tau on a common grid, for the prior-vs-posterior plot."""
    upper = max(float(post.tau_quantile(0.995)), float(exact_tau_prior(prior).ppf(0.95)))
    grid = np.linspace(0.0, upper if math.isfinite(upper) else 1.0, n)
    return {"grid": grid.round(6).tolist(),
            "prior": np.asarray(exact_tau_prior(prior).pdf(grid)).round(6).tolist(),
            "posterior": np.asarray(post.tau_pdf(grid)).round(6).tolist(),
            "prior_label": prior.label}
