"""The all-reports posterior by brute-force integration (no sampling).

Grid over ``mu`` and ``tau``, each trial's true effect integrated analytically and each latent
log SD by Gauss-Hermite quadrature: the posterior of the model of
:mod:`nutrimeta.models.partial`, the primary analysis's fast path, the oracle of its tests and
of the calibration study.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from nutrimeta.models.partial import _ESTIMATE_ROUTES, Contribution, PartialPriors


@dataclass(frozen=True)
class GridPosterior:
    """Posterior of ``(mu, tau)`` on a grid: marginals and their summaries."""

    mu_grid: np.ndarray
    tau_grid: np.ndarray
    mu_pmf: np.ndarray
    tau_pmf: np.ndarray

    @staticmethod
    def _summ(x: np.ndarray, p: np.ndarray, probs: Sequence[float]) -> dict[str, float]:
        m = float(p @ x)
        d = {"mean": m, "sd": math.sqrt(float(p @ (x - m) ** 2))}
        cdf = np.cumsum(p) - 0.5 * p  # midpoint rule: cell i holds mass p_i around x_i
        for q in probs:
            d[f"q{q * 1000:03.0f}"] = float(np.interp(q, cdf, x))
        return d

    def summary(self, probs: Sequence[float] = (0.025, 0.5, 0.975)) -> dict[str, Any]:
        """Mean, SD and quantiles of ``mu`` and ``tau``."""
        return {"mu": self._summ(self.mu_grid, self.mu_pmf, probs),
                "tau": self._summ(self.tau_grid, self.tau_pmf, probs),
                "P(mu > 0)": float(self.mu_pmf[self.mu_grid > 0].sum())}

    def interval(self, name: str, level: float) -> tuple[float, float]:
        """Central interval of ``mu`` or ``tau``."""
        a = 0.5 * (1 - level)
        d = self._summ(getattr(self, f"{name}_grid"), getattr(self, f"{name}_pmf"),
                       (a, 1 - a))
        return d[f"q{a * 1000:03.0f}"], d[f"q{(1 - a) * 1000:03.0f}"]


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_terms(c: Contribution, mu: np.ndarray, tau: np.ndarray, se: np.ndarray
               ) -> np.ndarray:
    """Log-likelihood of one contribution on broadcast ``mu``, ``tau``, ``se``.

    The normal log density is written out (``s`` does not depend on ``mu``, so its log and
    reciprocal are taken on the small ``se x tau`` array before broadcasting over ``mu``).
    """
    s = np.sqrt(se**2 + tau**2)
    if c.route in _ESTIMATE_ROUTES:
        return -0.5 * ((c.estimate - mu) * (1.0 / s)) ** 2 - (np.log(s) + _HALF_LOG_2PI)
    if c.route == "censored_threshold":
        return special.log_ndtr((c.direction * mu - c.crit * se) / s)
    if c.route == "censored_ns":
        hi = c.crit * se
        return np.log(np.clip(special.ndtr((hi - mu) / s) - special.ndtr((-hi - mu) / s),
                              1e-300, None))
    return special.log_ndtr(c.direction * mu / s)


def _logsumexp0(t: np.ndarray) -> np.ndarray:
    """``log(sum(exp(t), axis=0))``, stable (the largest term factored out)."""
    m = t.max(axis=0)
    return m + np.log(np.exp(t - m).sum(axis=0))


def _latent_term(c: Contribution, mu: np.ndarray, tau: np.ndarray, se: np.ndarray,
                 logw: np.ndarray) -> np.ndarray:
    """``_logsumexp0(_log_terms(c, mu, tau, se) + logw)``: the log-likelihood of a
    contribution with a latent SE (``se`` over the quadrature nodes on axis 0, ``logw``
    their log weights), computed in one node x grid scratch array.

    The same operations in the same order as :func:`_log_terms` and :func:`_logsumexp0`, so
    the result is bit-identical; working in place saves the allocation (and page faults) of
    a fresh node x grid array per operation.
    """
    s = np.sqrt(se**2 + tau**2)
    if c.route in _ESTIMATE_ROUTES:
        log_norm = np.log(s) + _HALF_LOG_2PI
        buf = np.multiply(c.estimate - mu, 1.0 / s)
        np.square(buf, out=buf)
        np.multiply(-0.5, buf, out=buf)
        np.subtract(buf, log_norm, out=buf)
    elif c.route == "censored_threshold":
        buf = np.divide(c.direction * mu - c.crit * se, s)
        special.log_ndtr(buf, out=buf)
    elif c.route == "censored_ns":
        hi = c.crit * se
        buf = np.divide(hi - mu, s)
        special.ndtr(buf, out=buf)
        low = np.divide(-hi - mu, s)
        special.ndtr(low, out=low)
        np.subtract(buf, low, out=buf)
        np.maximum(buf, 1e-300, out=buf)  # = np.clip(buf, 1e-300, None), nan included
        np.log(buf, out=buf)
    else:
        buf = np.divide(c.direction * mu, s)
        special.log_ndtr(buf, out=buf)
    np.add(buf, logw, out=buf)
    m = buf.max(axis=0)
    np.subtract(buf, m, out=buf)
    np.exp(buf, out=buf)
    total = buf.sum(axis=0)
    np.log(total, out=total)
    return np.add(m, total, out=total)


#: Log-likelihood of one contribution on one grid, by (contribution, grid): the sensitivity
#: analyses (routes left out, each trial left out) rerun the grid with mostly the same
#: contributions on the same first-pass grid, so each term is computed once.
_TERMS: OrderedDict[str, np.ndarray] = OrderedDict()
_TERMS_MAX = 128  # about 50 MB at the fit stage's grid


def _remember(key: str, term: np.ndarray) -> None:
    term.flags.writeable = False
    _TERMS[key] = term
    while len(_TERMS) > _TERMS_MAX:
        _TERMS.popitem(last=False)


#: Grid posteriors by (contributions, priors, grid): the sensitivity analyses of one outcome
#: often rerun an identical contribution set (a variant that leaves out a route or an
#: assumption nobody used; the main analysis for every reading of a bare "±" that changes
#: nothing), and the grid is deterministic.
_GRIDS: OrderedDict[str, GridPosterior] = OrderedDict()
_GRIDS_MAX = 256  # a few kB each
_GRIDS_LOCK = threading.Lock()  # a simulation study may run grids in threads


def grid_posterior(
    contribs: Sequence[Contribution],
    priors: PartialPriors,
    *,
    n_mu: int = 401,
    n_tau: int = 300,
    n_sd: int = 32,
    mu_range: tuple[float, float] | None = None,
    tau_max: float | None = None,
) -> GridPosterior:
    """Brute-force posterior of the all-reports model on a ``(mu, tau)`` grid.

    Each trial's true effect is integrated analytically; each latent log SD by
    ``n_sd``-point Gauss-Hermite quadrature under its prior. The log-SD hyperparameters must
    be fixed (``priors.learn_sd = False``). The grid spans ``mu`` within 8 prior SDs (or
    ``mu_range``) and ``tau`` up to 6 prior scales (or ``tau_max``); without an explicit
    range a second pass re-grids the region holding all but ``1e-12`` of the mass of the
    first.
    """
    if priors.learn_sd and any(c.needs_latent_sd for c in contribs):
        raise ValueError("the grid posterior needs fixed log-SD hyperparameters "
                         "(learn_sd=False)")
    # repr, not hash: a nan field of a Contribution never equals itself
    result_key = repr((tuple(contribs), priors, n_mu, n_tau, n_sd, mu_range, tau_max))
    with _GRIDS_LOCK:
        done = _GRIDS.get(result_key)
        if done is not None:
            _GRIDS.move_to_end(result_key)
            return done
    out = _grid_posterior(contribs, priors, n_mu=n_mu, n_tau=n_tau, n_sd=n_sd,
                          mu_range=mu_range, tau_max=tau_max)
    for a in (out.mu_grid, out.tau_grid, out.mu_pmf, out.tau_pmf):
        a.flags.writeable = False
    with _GRIDS_LOCK:
        _GRIDS[result_key] = out
        while len(_GRIDS) > _GRIDS_MAX:
            _GRIDS.popitem(last=False)
    return out


def _grid_posterior(
    contribs: Sequence[Contribution],
    priors: PartialPriors,
    *,
    n_mu: int,
    n_tau: int,
    n_sd: int,
    mu_range: tuple[float, float] | None,
    tau_max: float | None,
) -> GridPosterior:
    """:func:`grid_posterior` without its cache of results."""
    u = priors.unit_sd
    lo, hi = mu_range or (-8 * priors.mu_sd * u, 8 * priors.mu_sd * u)
    mu = np.linspace(lo, hi, n_mu)[:, None]
    tmax = tau_max or 6 * priors.tau_scale * u
    tau = (np.arange(n_tau) + 0.5) * (tmax / n_tau)  # midpoints
    tau = tau[None, :]
    logp = stats.norm.logpdf(mu, 0, priors.mu_sd * u) + stats.halfnorm.logpdf(
        tau, scale=priors.tau_scale * u)
    x, w = special.roots_hermitenorm(n_sd)
    logw = np.log(w / w.sum())
    eta, omega = priors.log_sd_mean, priors.log_sd_spread
    grid_key = repr((lo, hi, n_mu, tmax, n_tau, n_sd, eta, omega))
    for c in contribs:
        key = repr(c) + grid_key
        term = _TERMS.get(key)
        if term is None:
            if c.needs_latent_sd:
                se = np.exp(eta + omega * x)[:, None, None] * c.se_factor
                term = _latent_term(c, mu[None], tau[None], se, logw[:, None, None])
            else:
                term = _log_terms(c, mu, tau, np.asarray(c.se))
            _remember(key, term)
        else:
            _TERMS.move_to_end(key)
        logp = logp + term
    p = np.exp(logp - logp.max())
    p /= p.sum()
    out = GridPosterior(mu.ravel(), tau.ravel(), p.sum(axis=1), p.sum(axis=0))
    if mu_range is None and tau_max is None:
        keep_mu = np.flatnonzero(out.mu_pmf > 1e-12 * out.mu_pmf.max())
        keep_tau = np.flatnonzero(out.tau_pmf > 1e-12 * out.tau_pmf.max())
        m, t = out.mu_grid, out.tau_grid
        step = m[1] - m[0]
        new_mu = (m[keep_mu[0]] - 2 * step, m[keep_mu[-1]] + 2 * step)
        new_tau = min(float(t[min(keep_tau[-1] + 2, t.size - 1)]) + tmax / n_tau, tmax)
        return grid_posterior(contribs, priors, n_mu=n_mu, n_tau=n_tau, n_sd=n_sd,
                              mu_range=new_mu, tau_max=new_tau)
    return out
