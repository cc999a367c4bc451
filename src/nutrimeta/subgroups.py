"""Subgroup subtotals by baseline nutrient status and the test for subgroup differences, as
RevMan shows them under a forest plot (fit stage; deterministic, no sampling).

Per status group with at least two trials: the exact random-effects posterior of the pooled
effect on that group's trials (the model of the conventional analysis, with the outcome's
priors) for the subtotal diamond, and the REML random-effects fit for the group's
heterogeneity (tau², I², Q). A group with one trial has no subtotal.

Test for subgroup differences (RevMan's random-effects test, Cochrane Handbook 10.11.3.1):
each group is pooled separately (REML, its own tau²; a one-trial group by that trial), and
``Q_between = sum_j (theta_j - theta_bar)² / SE_j²`` with the inverse-variance mean
``theta_bar`` is referred to a chi² distribution with (groups - 1) degrees of freedom.
Groups of unknown status take part as a group of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from nutrimeta.results import SubgroupAnalysis, SubgroupTest, SubgroupTotal, Summary

STATUS_ORDER = ("deficient", "marginal", "replete", "unknown")
MIN_TRIALS_SUBTOTAL = 2


def _status(df: pd.DataFrame) -> pd.Series:
    return df["baseline_status_category"].astype("string").fillna("unknown").replace(
        "", "unknown")


def subgroup_analysis(contrasts: pd.DataFrame, tau_prior: Any, mu_prior_sd: float,
                      trial_rows: Callable[[pd.DataFrame], pd.DataFrame]
                      ) -> SubgroupAnalysis | None:
    """Subtotals and the test from an outcome's poolable randomised contrasts (one row per
    contrast, as the forest plot draws them); None without any trial.

    Contrasts of one trial in one group (dose arms with a shared control) are combined into
    one trial row first by ``trial_rows`` (:func:`nutrimeta.synthesis.trial_rows`), so k
    counts trials."""
    from nutrimeta import sensitivity
    from nutrimeta.models import frequentist
    from nutrimeta.trials import trial_counts

    if len(contrasts) == 0:
        return None
    status = _status(contrasts)
    order = [*STATUS_ORDER, *sorted(set(status) - set(STATUS_ORDER))]
    groups = []
    for s in order:
        rows = contrasts[status == s]
        if rows.empty:
            continue
        trials = trial_rows(rows)
        counts = trial_counts(rows.assign(poolable=True))
        n = counts.attrs.get("n_total")
        y, se = trials["yi"].to_numpy(float), trials["sei"].to_numpy(float)
        entry: dict[str, Any] = {"status": s, "k_trials": len(trials),
                                 "n_participants": None if n is None or pd.isna(n)
                                 else float(n)}
        if len(trials) >= MIN_TRIALS_SUBTOTAL:
            fit = frequentist.rma(y, se**2, method="REML", tau2_ci=False)
            post = sensitivity.fit_exact(trials, tau_prior, mu_prior_sd)
            lo, hi = post.mu.interval(0.95)
            entry |= {"mu": Summary(mean=round(float(post.mu.mean), 6),
                                    median=round(float(post.mu.median), 6),
                                    q025=round(float(lo), 6), q975=round(float(hi), 6)),
                      "estimate": round(fit.estimate, 6), "se": round(fit.se, 6),
                      "tau2": round(fit.tau2, 6), "i2": round(fit.i2, 4),
                      "q": round(fit.Q, 6), "q_df": int(fit.Q_df), "q_p": round(fit.Q_p, 6)}
        else:
            entry |= {"estimate": round(float(y[0]), 6), "se": round(float(se[0]), 6)}
        groups.append(SubgroupTotal.model_validate(entry))
    return SubgroupAnalysis(groups=groups, test=between_test(
        [g.estimate for g in groups], [g.se for g in groups]))


def between_test(estimates: list[float], ses: list[float]) -> SubgroupTest | None:
    """The chi² test for differences between subgroup estimates (None with < 2 groups)."""
    if len(estimates) < 2:
        return None
    theta, w = np.asarray(estimates, float), 1.0 / np.asarray(ses, float) ** 2
    mean = float(np.sum(w * theta) / np.sum(w))
    q = float(np.sum(w * (theta - mean) ** 2))
    df = len(theta) - 1
    return SubgroupTest(q_between=round(q, 6), df=df, p=round(float(stats.chi2.sf(q, df)), 6))
