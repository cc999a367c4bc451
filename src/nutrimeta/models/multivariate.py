"""Random-effects models with the trial as the unit: several contrasts per trial.

Model (trial ``i``, its contrasts ``j = 1..m_i``)::

    y_i | theta_i ~ N_{m_i}(theta_i 1, V_i)     (V_i known: block of the sampling covariance)
    theta_i | mu, tau ~ N(mu, tau^2)            (one trial-level random effect)

Contrasts of one trial share the trial's true effect; their sampling errors are correlated
when they share a control group (``V_i`` off-diagonal, see :mod:`nutrimeta.trials`), and
independent when they are strata of different participants.

Because the random effect is common to all contrasts of a trial, the trial's GLS estimate
``y*_i = 1'V_i^-1 y_i / a_i`` with ``a_i = 1'V_i^-1 1`` is sufficient for ``theta_i``: the
likelihood factorises into ``N(y*_i; theta_i, 1/a_i)`` times a term free of ``theta_i``,
``mu`` and ``tau`` (Sherman-Morrison: ``1'(V + tau^2 11')^-1 1 = a / (1 + tau^2 a)``). So

- the exact Bayesian posterior of ``(mu, tau)`` is the normal-normal posterior of the
  collapsed ``(y*_i, 1/sqrt(a_i))``, computed by quadrature over ``tau`` with
  :func:`nutrimeta.models.exact.exact_posterior`;
- the restricted likelihood of the multilevel model (metafor ``rma.mv(yi, V, random = ~ 1 |
  trial)``) differs from that of the collapsed data by a constant. :func:`gls_reml` maximises
  it on the full block matrices (no collapsing), which the tests compare with both.

Combining the arms of a multi-arm trial into one group (Cochrane Handbook 23.3.4) is the
declared alternative: :func:`combine_groups` and :func:`combine_arms_effect`.

References
----------
Gleser LJ, Olkin I. Stochastically dependent effect sizes. In: The Handbook of Research
Synthesis and Meta-Analysis, 2nd ed. Russell Sage; 2009: 357-376.

Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw.
2010;36(3):1-48 (``rma.mv``).

Higgins JPT, Eldridge S, Li T (eds). Chapter 23: Including variants on randomized trials,
section 23.3.4. Cochrane Handbook for Systematic Reviews of Interventions, version 6.4, 2023.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

from nutrimeta import conversions as cv
from nutrimeta.models.exact import ExactPosterior, TauPrior, exact_posterior
from nutrimeta.trials import OutcomeCovariance

__all__ = [
    "CollapsedTrials",
    "GLSResult",
    "MultivariatePosterior",
    "collapse_trials",
    "combine_arms_effect",
    "combine_groups",
    "gls_reml",
    "multivariate_exact",
]


@dataclass(frozen=True)
class CollapsedTrials:
    """One GLS estimate per trial (sufficient for the trial's true effect)."""

    y: np.ndarray
    se: np.ndarray
    trial_ids: tuple[str, ...]
    arms: tuple[tuple[str, ...], ...]

    @property
    def k(self) -> int:
        """Number of trials."""
        return len(self.trial_ids)


def collapse_trials(cov: OutcomeCovariance) -> CollapsedTrials:
    """Each trial's GLS combination of its contrasts, ``y* = 1'V^-1 y / 1'V^-1 1``.

    Its variance ``1 / 1'V^-1 1`` accounts for a shared control group: two dose arms against
    one placebo group carry less information than two independent trials.
    """
    ys, ses, arms = [], [], []
    for t, _ in enumerate(cov.trial_ids):
        y, V = cov.block(t)
        w = np.linalg.solve(V, np.ones_like(y))
        a = float(w.sum())
        if not a > 0:
            raise ValueError(f"trial {cov.trial_ids[t]!r}: covariance block not positive")
        ys.append(float(w @ y) / a)
        ses.append(1.0 / math.sqrt(a))
        sel = np.flatnonzero(cov.trial_idx == t)
        arms.append(tuple(cov.labels[i] for i in sel))
    return CollapsedTrials(np.array(ys), np.array(ses), cov.trial_ids, tuple(arms))


# --------------------------------------------------------------------- exact Bayesian
@dataclass
class MultivariatePosterior:
    """Exact posterior of ``mu`` and ``tau`` with the trial as the unit.

    ``pooled`` is false for a single trial: its result is the trial's (dose-arm) estimate
    shown as one trial with its arms, not a pooled answer.
    """

    exact: ExactPosterior
    trials: CollapsedTrials
    n_contrasts: int
    pooled: bool = field(init=False)

    def __post_init__(self) -> None:
        self.pooled = self.trials.k > 1

    @property
    def k_trials(self) -> int:
        """Number of trials."""
        return self.trials.k

    def summary(self) -> dict[str, Any]:
        """Posterior summaries of ``mu`` and ``tau`` with the trials and their arms."""
        out = self.exact.summary()
        out["model"] = "exact_multilevel"
        out["k_trials"] = self.k_trials
        out["n_contrasts"] = self.n_contrasts
        out["pooled"] = self.pooled
        out["trials"] = [
            {"trial_id": t, "arms": list(a), "estimate": float(y), "se": float(s)}
            for t, a, y, s in zip(self.trials.trial_ids, self.trials.arms, self.trials.y,
                                  self.trials.se, strict=True)
        ]
        return out


def multivariate_exact(
    cov: OutcomeCovariance,
    tau_prior: TauPrior,
    mu_prior: tuple[float, float] = (0.0, math.inf),
    *,
    grid: tuple[int, int] = (96, 8),
) -> MultivariatePosterior:
    """Exact posterior of the normal-normal model with block-diagonal within-trial covariance.

    Integrates over ``tau`` by the quadrature of :func:`~nutrimeta.models.exact.exact_posterior`
    applied to the trials' GLS estimates (exact, see the module docstring).
    """
    trials = collapse_trials(cov)
    post = exact_posterior(trials.y, trials.se, tau_prior, mu_prior,
                           labels=list(trials.trial_ids), grid=grid)
    return MultivariatePosterior(post, trials, cov.n_contrasts)


# ----------------------------------------------------------------- frequentist REML
@dataclass(frozen=True)
class GLSResult:
    """Multilevel REML fit (trial random effect, known block covariance)."""

    mu: float
    se: float
    tau2: float
    ci: tuple[float, float]
    k_trials: int
    n_contrasts: int
    loglik_reml: float
    converged: bool

    @property
    def z(self) -> float:
        """Wald statistic ``mu / se``."""
        return self.mu / self.se

    @property
    def p(self) -> float:
        """Two-sided Wald p-value."""
        return float(2.0 * stats.norm.sf(abs(self.z)))

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return {"mu": self.mu, "se": self.se, "tau2": self.tau2, "ci": list(self.ci),
                "k_trials": self.k_trials, "n_contrasts": self.n_contrasts,
                "loglik_reml": self.loglik_reml, "converged": self.converged, "p": self.p}


def _gls(y: np.ndarray, S: np.ndarray) -> tuple[float, float, float, float]:
    """GLS mean, its variance, ``log|S|`` and the residual quadratic form."""
    chol = np.linalg.cholesky(S)
    one = np.ones_like(y)
    ly = np.linalg.solve(chol, y)
    l1 = np.linalg.solve(chol, one)
    a = float(l1 @ l1)
    mu = float(l1 @ ly) / a
    r = ly - mu * l1
    return mu, 1.0 / a, 2.0 * float(np.log(np.diag(chol)).sum()), float(r @ r)


def _reml_loglik(tau2: float, y: np.ndarray, V: np.ndarray, Z: np.ndarray) -> float:
    S = V + tau2 * (Z @ Z.T)
    _, var_mu, logdet, quad = _gls(y, S)
    return -0.5 * (logdet + math.log(1.0 / var_mu) + quad)


def gls_reml(cov: OutcomeCovariance, level: float = 0.95) -> GLSResult:
    """GLS with a trial-level random effect, ``tau^2`` by REML (as ``rma.mv``).

    ``Sigma = V + tau^2 Z Z'`` with ``Z`` the contrast-to-trial incidence matrix; ``mu`` and
    its SE are the GLS estimate and ``(1' Sigma^-1 1)^-1/2`` at the REML ``tau^2``. The
    maximum is found on a coarse profile over ``log(tau^2)`` and refined by a bounded search,
    so a second peak of the restricted likelihood cannot trap the optimiser. With one trial
    ``tau^2`` is not identified and is fixed at 0.
    """
    y, V = cov.yi, cov.V
    Z = np.zeros((y.size, cov.k_trials))
    Z[np.arange(y.size), cov.trial_idx] = 1.0
    converged = True
    if cov.k_trials < 2:
        tau2 = 0.0
    else:
        scale = float(np.var(y)) + float(np.mean(np.diag(V)))
        grid = np.concatenate([[0.0], scale * np.logspace(-6, 3, 91)])
        ll = np.array([_reml_loglik(t, y, V, Z) for t in grid])
        j = int(np.argmax(ll))
        lo = grid[max(j - 1, 0)]
        hi = grid[min(j + 1, grid.size - 1)]
        res = optimize.minimize_scalar(lambda t: -_reml_loglik(t, y, V, Z), bounds=(lo, hi),
                                       method="bounded", options={"xatol": 1e-12 * scale})
        converged = bool(res.success)
        tau2 = float(res.x) if -res.fun >= ll[j] else float(grid[j])
        if tau2 < 1e-10 * scale and _reml_loglik(0.0, y, V, Z) >= -res.fun:
            tau2 = 0.0
    S = V + tau2 * (Z @ Z.T)
    mu, var_mu, _, _ = _gls(y, S)
    se = math.sqrt(var_mu)
    crit = float(stats.norm.ppf(0.5 + 0.5 * level))
    return GLSResult(mu=mu, se=se, tau2=tau2, ci=(mu - crit * se, mu + crit * se),
                     k_trials=cov.k_trials, n_contrasts=cov.n_contrasts,
                     loglik_reml=_reml_loglik(tau2, y, V, Z), converged=converged)


# ------------------------------------------------------------------- combined arms
def combine_groups(n: ArrayLike, mean: ArrayLike, sd: ArrayLike) -> tuple[float, float, float]:
    """Combine several groups into one: ``(n, mean, sd)`` (Cochrane Handbook table 6.5.a).

    ``N = n1 + n2``, ``M = (n1 m1 + n2 m2) / N``,
    ``SD = sqrt(((n1-1) s1^2 + (n2-1) s2^2 + n1 n2 / N (m1 - m2)^2) / (N - 1))``,
    applied pairwise for more than two groups (exact: the result is the SD of the pooled
    sample).
    """
    ns, ms, ss = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (n, mean, sd))
    if not (ns.size == ms.size == ss.size) or ns.size == 0:
        raise ValueError("n, mean and sd must be non-empty and of equal length")
    if np.any(ns < 2) or not np.all(np.isfinite(np.concatenate([ns, ms, ss]))):
        raise ValueError("each group needs n >= 2 and finite mean and sd")
    n1, m1, s1 = float(ns[0]), float(ms[0]), float(ss[0])
    for n2, m2, s2 in zip(ns[1:], ms[1:], ss[1:], strict=True):
        N = n1 + n2
        ssq = ((n1 - 1) * s1**2 + (n2 - 1) * s2**2 + n1 * n2 / N * (m1 - m2) ** 2) / (N - 1)
        m1 = (n1 * m1 + n2 * m2) / N
        n1, s1 = N, math.sqrt(ssq)
    return n1, m1, s1


def combine_arms_effect(
    measure: str,
    n_arms: Sequence[float],
    mean_arms: Sequence[float],
    sd_arms: Sequence[float],
    n_control: float,
    mean_control: float,
    sd_control: float,
) -> cv.Effect:
    """One contrast for a multi-arm trial: all intervention arms combined vs the control.

    The sensitivity alternative to the multilevel model (Cochrane Handbook 23.3.4): the
    intervention arms are merged by :func:`combine_groups` and compared with the control by
    the same effect measure (``MD``, ``SMD`` or ``ROM``) as the main analysis.
    """
    n1, m1, s1 = combine_groups(n_arms, mean_arms, sd_arms)
    if measure == "MD":
        return cv.mean_difference(m1, s1, n1, mean_control, sd_control, n_control)
    if measure == "SMD":
        return cv.smd_hedges(m1, s1, n1, mean_control, sd_control, n_control)
    if measure == "ROM":
        return cv.ratio_of_means(m1, s1, n1, mean_control, sd_control, n_control)
    raise ValueError(f"unknown measure {measure!r}")
