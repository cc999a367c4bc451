"""Frequentist random-effects meta-analysis, meta-regression and Egger's test.

Implements the estimators of ``metafor::rma.uni`` that the pipeline reports next to the
Bayesian fits, following metafor's definitions so that numbers can be compared one-to-one:

* tau^2 estimators: DerSimonian-Laird (``"DL"``, with its meta-regression generalisation),
  restricted and full maximum likelihood (``"REML"``, ``"ML"``: Fisher scoring with step
  halving, as metafor, started from every local maximum of a coarse profile of the
  likelihood over tau^2 so that the global maximum is found when the likelihood has several
  peaks), Paule-Mandel (``"PM"``), Hedges' estimator (``"HE"``) and the equal-effects model
  (``"EE"``, tau^2 = 0);
* Wald-type (z) inference, or the Knapp-Hartung adjustment (``knha=True``: variance scaled by
  the weighted residual mean square, t distribution with k - p df; F test for the moderators);
* heterogeneity: Cochran's Q (equal-effects residual Q, QE for meta-regression), I^2 and H^2
  as in metafor (``s2 = (k - p) / tr(P)``, ``P = W - W X (X'WX)^-1 X'W``, ``W = diag(1/v)``,
  which reduces to Higgins & Thompson's typical variance without moderators; for the
  equal-effects model the Q-based ``I^2 = (Q - df) / Q``, ``H^2 = Q / df``), the standard
  error of tau^2 (metafor's formula for each estimator), the Q-profile confidence interval of
  tau^2 (Viechtbauer 2007; computed when first accessed), the prediction interval, and
  metafor's pseudo-R^2 for meta-regression (relative reduction of tau^2 against the model
  without moderators, truncated at 0);
* Egger's regression test for funnel-plot asymmetry.

Every quantity is computed from weighted sums over the k studies and p x p matrices
(p = number of coefficients): O(k p^2) work per evaluation and no k x k matrix.

References
----------
DerSimonian, R., & Laird, N. (1986). Meta-analysis in clinical trials. *Controlled Clinical
Trials*, 7(3), 177-188.

Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance estimators in the
random-effects model. *Journal of Educational and Behavioral Statistics*, 30(3), 261-293.

Viechtbauer, W. (2007). Confidence intervals for the amount of heterogeneity in meta-analysis.
*Statistics in Medicine*, 26(1), 37-52.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. *Journal of
Statistical Software*, 36(3), 1-48.

Knapp, G., & Hartung, J. (2003). Improved tests for a random effects meta-regression with a
single covariate. *Statistics in Medicine*, 22(17), 2693-2710.

Higgins, J. P. T., & Thompson, S. G. (2002). Quantifying heterogeneity in a meta-analysis.
*Statistics in Medicine*, 21(11), 1539-1558.

Egger, M., Davey Smith, G., Schneider, M., & Minder, C. (1997). Bias in meta-analysis detected
by a simple, graphical test. *BMJ*, 315(7109), 629-634.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property, lru_cache, partial
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

__all__ = [
    "EggerResult",
    "MetaResult",
    "egger_test",
    "rma",
]

FloatArray = NDArray[np.float64]
Method = Literal["REML", "ML", "DL", "PM", "HE", "EE"]

EGGER_CAVEAT_K = 10


def _plain(x: Any) -> Any:
    """Convert numpy scalars/arrays (possibly nested) to plain Python objects."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


@dataclass
class MetaResult:
    """Result of :func:`rma`. Intervals are at ``level`` (e.g. 0.95).

    ``estimate``/``se``/``ci_*``/``z``/``p_value`` refer to the first coefficient (the pooled
    effect without moderators, the intercept with them); ``coefficients`` lists all. With
    ``knha=True`` the statistic is a t value (``df`` = k - p). ``tau2_ci`` (the Q-profile
    interval) is computed when first accessed (and by :meth:`to_dict`).
    """

    method: str
    k: int
    p: int
    level: float
    knha: bool
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    z: float
    p_value: float
    tau2: float
    tau: float
    tau2_se: float
    i2: float  # percent, metafor's definition
    h2: float
    Q: float
    Q_df: int
    Q_p: float
    pi_lower: float
    pi_upper: float
    coefficients: list[dict[str, float | str]] = field(default_factory=list)
    QM: float | None = None
    QM_df: int | None = None
    QM_p: float | None = None
    R2: float | None = None  # percent
    df: int | None = None
    converged: bool = True
    vcov: list[list[float]] = field(default_factory=list, repr=False)
    _tau2_ci_fn: Callable[[], tuple[float, float]] | None = field(
        default=None, repr=False, compare=False
    )

    @cached_property
    def tau2_ci(self) -> tuple[float, float]:
        """Q-profile confidence interval of tau^2 at ``level`` (NaN when not requested)."""
        return (math.nan, math.nan) if self._tau2_ci_fn is None else self._tau2_ci_fn()

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict (includes ``tau2_ci``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name.startswith("_"):
                continue
            out[f.name] = getattr(self, f.name)
            if f.name == "tau2_se":
                out["tau2_ci"] = self.tau2_ci
        return _plain(out)


@dataclass
class EggerResult:
    """Egger's regression test for funnel-plot asymmetry (see :func:`egger_test`)."""

    method: str
    k: int
    intercept: float  # the asymmetry coefficient
    se: float
    statistic: float
    df: int | None
    p_value: float
    slope: float
    slope_se: float
    caveat: str

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict."""
        return _plain(asdict(self))


# ------------------------------------------------------------------------------ helpers
# With W = diag(w), w = 1/(v + tau^2), A = X'WX and P = W - W X A^-1 X'W:
#   tr(P)  = sum(w)   - tr(A^-1 X'W^2 X)
#   tr(PP) = sum(w^2) - 2 tr(A^-1 X'W^3 X) + tr((A^-1 X'W^2 X)^2)
#   y'Py = sum(w r^2) and Py = w r, r = y - X b (b the weighted least-squares fit),
#   d(y'Py)/d(tau^2) = -sum(w^2 r^2) (envelope theorem: b minimises the weighted RSS).
# An intercept-only design (``icpt``) uses the scalar forms of the same sums.
class _Fit:
    """Weighted least squares at one tau^2: weights, coefficients, (X'WX)^-1, residuals."""

    __slots__ = ("_traces", "b", "cov", "icpt", "r", "rss", "w")

    def __init__(self, tau2: float, y: FloatArray, v: FloatArray, X: FloatArray, icpt: bool):
        w = 1.0 / (v + tau2)
        if icpt:
            sw = float(w.sum())
            b0 = float(w @ y) / sw
            self.b = np.array([b0])
            self.cov = np.array([[1.0 / sw]])
            r = y - b0
        else:
            self.cov = np.linalg.inv(X.T @ (w[:, None] * X))
            self.b = self.cov @ (X.T @ (w * y))
            r = y - X @ self.b
        self.icpt, self.w, self.r = icpt, w, r
        self.rss = float(w @ (r * r))  # the generalised Q statistic at tau^2
        self._traces: tuple[float, float] | None = None

    def traces(self, X: FloatArray) -> tuple[float, float]:
        """``(tr(P), tr(PP))`` (computed once per fit)."""
        if self._traces is None:
            self._traces = self._compute_traces(X)
        return self._traces

    def _compute_traces(self, X: FloatArray) -> tuple[float, float]:
        w = self.w
        w2 = w * w
        sw, sw2 = float(w.sum()), float(w2.sum())
        if self.icpt:
            sw3 = float(w2 @ w)
            return sw - sw2 / sw, sw2 - 2.0 * sw3 / sw + (sw2 / sw) ** 2
        m2 = self.cov @ (X.T @ (w2[:, None] * X))
        m3 = self.cov @ (X.T @ ((w2 * w)[:, None] * X))
        return (
            sw - float(np.trace(m2)),
            sw2 - 2.0 * float(np.trace(m3)) + float(np.sum(m2 * m2.T)),
        )

    def dq(self) -> float:
        """Derivative of the generalised Q (= ``rss``) with respect to tau^2."""
        wr = self.w * self.r
        return -float(wr @ wr)

    def score_terms(self) -> tuple[float, float, float]:
        """``(|Py|^2, sum(w), sum(w^2))``."""
        wr = self.w * self.r
        return float(wr @ wr), float(self.w.sum()), float(self.w @ self.w)


def _is_intercept(X: FloatArray) -> bool:
    return X.shape[1] == 1 and bool(np.all(X[:, 0] == 1.0))


def _q_gen(tau2: float, y: FloatArray, vi: FloatArray, X: FloatArray) -> float:
    """Generalised Q statistic at tau^2 (decreasing in tau^2)."""
    return _Fit(tau2, y, vi, X, _is_intercept(X)).rss


def _solve_q(
    target: float, y: FloatArray, vi: FloatArray, X: FloatArray,
    start: float = 0.0, fit0: _Fit | None = None,
) -> float:
    """The tau^2 at which the generalised Q statistic equals ``target`` (0 if it never does).

    Newton's method on Q(tau^2) (derivative by the envelope theorem) from ``start``,
    safeguarded by a bracket with bisection; converges to about 1e-13 absolute. ``fit0``: the
    fit at tau^2 = 0 if already computed.
    """
    icpt = _is_intercept(X)
    f = fit0 if fit0 is not None else _Fit(0.0, y, vi, X, icpt)
    if f.rss <= target:
        return 0.0
    lo, hi, t = 0.0, 1e300, 0.0
    if start > 0.0:
        t, f = start, _Fit(start, y, vi, X, icpt)
    for _ in range(500):
        gap = f.rss - target
        if gap > 0:
            lo = t
        elif gap < 0:
            hi = t
        else:
            return t
        dq = f.dq()
        new = t - gap / dq if dq < 0 else math.nan
        if not lo < new < hi:  # outside the bracket: bisect (or expand an open bracket)
            new = 0.5 * (lo + hi) if hi < 1e300 else 2.0 * max(lo, 1e-8, float(vi.mean()))
        if abs(new - t) <= 1e-13 + 4e-16 * new or hi - lo <= 1e-13 + 4e-16 * hi:
            return new
        t = new
        f = _Fit(t, y, vi, X, icpt)
    return t


@lru_cache(maxsize=256)
def _critical_value(level: float, df: int | None) -> float:
    """Two-sided critical value at ``level``: normal (``df=None``) or t with ``df``."""
    q = 0.5 + level / 2.0
    return float(special.ndtri(q)) if df is None else float(special.stdtrit(df, q))


def _chi2_ppf(q: float, df: float) -> float:
    return 2.0 * float(special.gammaincinv(0.5 * df, q))


def _tau2_qprofile_ci(
    y: FloatArray, vi: FloatArray, X: FloatArray, level: float
) -> tuple[float, float]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007)."""
    k, p = X.shape
    df = k - p
    if df < 1:
        return (math.nan, math.nan)
    a = 1.0 - level
    q_hi = _chi2_ppf(1.0 - a / 2.0, df)  # gives the lower bound
    q_lo = _chi2_ppf(a / 2.0, df)  # gives the upper bound
    return _solve_q(q_hi, y, vi, X), _solve_q(q_lo, y, vi, X)


def _loglik_profile(
    tau2: FloatArray, y: FloatArray, v: FloatArray, X: FloatArray, icpt: bool, reml: bool
) -> FloatArray:
    """(Restricted) log-likelihood, coefficients profiled out, at each of ``tau2`` (up to a
    constant): ``-0.5 [sum log(v + tau^2) + y'Py (+ log|X'WX| for REML)]``."""
    V = v[None, :] + tau2[:, None]
    w = 1.0 / V
    if icpt:
        sw = w.sum(axis=1)
        r = y[None, :] - ((w @ y) / sw)[:, None]
        logdet = np.log(sw)
    else:
        A = np.einsum("nk,ki,kj->nij", w, X, X)
        rhs = np.einsum("nk,ki,k->ni", w, X, y)
        b = np.linalg.solve(A, rhs[..., None])[..., 0]
        r = y[None, :] - b @ X.T
        logdet = np.linalg.slogdet(A)[1]
    ll = -0.5 * (np.log(V).sum(axis=1) + (w * r * r).sum(axis=1))
    return ll - 0.5 * logdet if reml else ll


def _tau2_grid(y: FloatArray, v: FloatArray) -> FloatArray:
    """0 and a log-spaced grid (8 points per decade) up to beyond any likelihood peak.

    The (restricted) likelihood decreases in tau^2 once tau^2 exceeds a few times the squared
    range of the estimates, so ``10 * ptp(y)^2`` bounds the search from above.
    """
    hi = 10.0 * float(np.ptp(y)) ** 2
    lo = 1e-4 * min(float(v.min()), hi)
    if not hi > 0 or not lo > 0:
        return np.zeros(1)
    n = max(math.ceil(8.0 * math.log10(hi / lo)), 2) + 1
    return np.concatenate([[0.0], np.geomspace(lo, hi, n)])


def _fisher_scoring(
    start: float, y: FloatArray, v: FloatArray, X: FloatArray, icpt: bool, reml: bool,
    tol: float = 1e-10,
) -> tuple[float, bool]:
    """Fisher scoring with step halving at the boundary (metafor's algorithm) from ``start``."""
    tau2 = max(start, 0.0)
    for _ in range(1000):
        f = _Fit(tau2, y, v, X, icpt)
        pyy, sw, sw2 = f.score_terms()
        if reml:
            trp, trpp = f.traces(X)
            step = (pyy - trp) / trpp
        else:
            step = (pyy - sw) / sw2
        new = tau2 + step
        while new < 0:
            step /= 2.0
            new = tau2 + step
            if abs(step) < tol:
                new = 0.0
                break
        if abs(new - tau2) < tol:
            return new, True
        tau2 = new
    return tau2, False


def _tau2_likelihood(
    y: FloatArray, v: FloatArray, X: FloatArray, icpt: bool, reml: bool, start: float
) -> tuple[float, bool]:
    """Global maximiser of the (restricted) likelihood over tau^2 >= 0.

    Fisher scoring from ``start`` (metafor's default: the DL estimate) can stop at a lower
    peak when the likelihood has several. The profile over a coarse grid locates every peak;
    Fisher scoring refines ``start`` and the (up to three) highest local maxima of the grid,
    and the refined point of highest likelihood is returned (the first on ties). Should Fisher
    scoring fail to converge from a grid peak, that peak is refined by bounded Brent search
    between its neighbouring grid points instead.
    """
    grid = _tau2_grid(y, v)
    if grid.size == 1:
        return 0.0, True
    ll = _loglik_profile(grid, y, v, X, icpt, reml)
    peak = np.r_[True, ll[1:] >= ll[:-1]] & np.r_[ll[:-1] >= ll[1:], True]
    cand = np.nonzero(peak)[0]
    cand = cand[np.argsort(-ll[cand], kind="stable")][:3]
    best: tuple[float, float, bool] | None = None
    found: list[float] = []
    for i in (-1, *cand):
        lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, grid.size - 1)])
        if i >= 0 and any(lo <= t <= hi for t in found):
            continue  # this grid peak's neighbourhood holds a refined maximum already
        t0 = start if i < 0 else float(grid[i])
        t, ok = _fisher_scoring(t0, y, v, X, icpt, reml)
        if not ok and i < 0:
            continue
        if not ok:
            t = float(optimize.minimize_scalar(
                lambda x: -float(_loglik_profile(np.array([x]), y, v, X, icpt, reml)[0]),
                bounds=(lo, hi), method="bounded", options={"xatol": 1e-12},
            ).x)
        found.append(t)
        llt = float(_loglik_profile(np.array([t]), y, v, X, icpt, reml)[0])
        if best is None or llt > best[1] + 1e-12 * abs(best[1]):
            best = (t, llt, ok)
    assert best is not None
    return best[0], best[2]


def _tau2_he(y: FloatArray, v: FloatArray, X: FloatArray) -> tuple[float, float]:
    """Hedges' estimator from the ordinary least-squares residuals, and its SE (metafor)."""
    k, p = X.shape
    G = np.linalg.inv(X.T @ X)
    r = y - X @ (G @ (X.T @ y))
    h = np.einsum("ki,ij,kj->k", X, G, X)  # hat values
    tr_pv = float(v @ (1.0 - h))
    tau2 = max(0.0, (float(r @ r) - tr_pv) / (k - p))
    m = G @ (X.T @ (v[:, None] * X))
    tr_pvpv = float(v @ v) - 2.0 * float((h * v) @ v) + float(np.sum(m * m.T))
    se = math.sqrt(2.0 * tr_pvpv + 4.0 * tau2 * tr_pv + 2.0 * tau2**2 * (k - p)) / (k - p)
    return tau2, se


def _estimate_tau2(
    method: str, y: FloatArray, v: FloatArray, X: FloatArray, icpt: bool, fit0: _Fit
) -> tuple[float, float, bool]:
    """``(tau2, se(tau2), converged)`` for ``method``; ``fit0`` is the equal-effects fit."""
    k, p = X.shape
    df = k - p
    if method == "EE":
        return 0.0, math.nan, True
    if method == "DL":
        trp, trpp = fit0.traces(X)
        tau2 = max(0.0, (fit0.rss - df) / trp)
        se = math.sqrt(2.0 * df + 4.0 * tau2 * trp + 2.0 * tau2**2 * trpp) / trp
        return tau2, se, True
    if method == "PM":
        trp = fit0.traces(X)[0]
        dl = max(0.0, (fit0.rss - df) / trp)  # a close starting value
        tau2 = _solve_q(df, y, v, X, start=dl, fit0=fit0)
        # metafor's SE for PM: sqrt(2 k^2 / (k - p)) / sum(w), w = 1/(v + tau^2)
        return tau2, math.sqrt(2.0 * k * k / df) / float(np.sum(1.0 / (v + tau2))), True
    if method == "HE":
        return (*_tau2_he(y, v, X), True)
    if method in ("REML", "ML"):
        reml = method == "REML"
        trp = fit0.traces(X)[0]
        start = max(0.0, (fit0.rss - df) / trp)  # the DL estimate, as metafor
        tau2, converged = _tau2_likelihood(y, v, X, icpt, reml, start)
        f = _Fit(tau2, y, v, X, icpt)
        info = f.traces(X)[1] if reml else f.score_terms()[2]
        return tau2, math.sqrt(2.0 / info), converged
    raise ValueError(f"unknown method {method!r}")


# ------------------------------------------------------------------------------- rma
def rma(
    y: ArrayLike,
    v: ArrayLike,
    X: ArrayLike | None = None,
    *,
    method: Method = "REML",
    knha: bool = False,
    level: float = 0.95,
    coef_names: Sequence[str] | None = None,
    tau2_ci: bool = True,
) -> MetaResult:
    """Random-effects meta-analysis or mixed-effects meta-regression (as ``metafor::rma``).

    Parameters
    ----------
    y, v
        Estimates and their sampling variances.
    X
        Optional ``(k, p)`` moderator matrix *without* the intercept column (an intercept is
        always added, as metafor's default ``intercept=TRUE``).
    method
        ``"REML"`` (default), ``"ML"``, ``"DL"``, ``"PM"``, ``"HE"`` or ``"EE"`` (equal
        effects, tau^2 = 0).
    knha
        Knapp-Hartung adjustment (t / F tests with k - p df).
    level
        Confidence level of all intervals.
    coef_names
        Names for the moderator columns (the intercept is named ``"intrcpt"``).
    tau2_ci
        Make the Q-profile confidence interval of tau^2 available (computed on first access
        of ``result.tau2_ci``; NaN when False).

    Returns
    -------
    MetaResult
    """
    y_a = np.asarray(y, dtype=float).ravel()
    v_a = np.asarray(v, dtype=float).ravel()
    k = y_a.size
    if v_a.size != k or k == 0:
        raise ValueError("y and v must be non-empty and of equal length")
    if not (np.isfinite(y_a).all() and np.isfinite(v_a).all() and (v_a > 0).all()):
        raise ValueError("y must be finite and v finite and positive")
    if X is None:
        Xd = np.ones((k, 1))
    else:
        mods = np.asarray(X, dtype=float)
        mods = mods[:, None] if mods.ndim == 1 else mods
        Xd = np.column_stack([np.ones(k), mods])
    p = Xd.shape[1]
    icpt = p == 1
    if k < p + (method != "EE") or (not icpt and np.linalg.matrix_rank(Xd) < p):
        raise ValueError("design matrix is rank deficient or has more columns than studies")
    if method not in ("REML", "ML", "DL", "PM", "HE", "EE"):
        raise ValueError(f"unknown method {method!r}")
    names = ["intrcpt"] + (
        list(coef_names) if coef_names is not None else [f"mod{j + 1}" for j in range(p - 1)]
    )

    fit0 = _Fit(0.0, y_a, v_a, Xd, icpt)  # equal-effects fit: QE and metafor's I^2 / H^2
    tau2, tau2_se, converged = _estimate_tau2(method, y_a, v_a, Xd, icpt, fit0)
    fit = fit0 if tau2 == 0.0 else _Fit(tau2, y_a, v_a, Xd, icpt)
    df_res = k - p
    vb = fit.cov * (fit.rss / df_res if df_res > 0 else math.nan) if knha else fit.cov
    crit = _critical_value(level, df_res if knha else None)
    coefs: list[dict[str, float | str]] = []
    for j, bj in enumerate(fit.b.tolist()):
        sej = math.sqrt(float(vb[j, j]))
        stat = bj / sej
        pval = 2.0 * float(
            special.stdtr(df_res, -abs(stat)) if knha else special.ndtr(-abs(stat))
        )
        coefs.append({
            "name": names[j],
            "estimate": bj,
            "se": sej,
            "statistic": stat,
            "p_value": pval,
            "ci_lower": bj - crit * sej,
            "ci_upper": bj + crit * sej,
        })
    first = coefs[0]
    b0, se0 = float(first["estimate"]), float(first["se"])

    qe = fit0.rss
    if df_res > 0:
        q_p = float(special.chdtrc(df_res, qe))
        if method == "EE":  # metafor: the Q-based definitions for the equal-effects model
            i2 = max(0.0, 100.0 * (qe - df_res) / qe) if qe > 0 else 0.0
            h2 = qe / df_res
        else:
            s2_typ = df_res / fit0.traces(Xd)[0]
            i2 = 100.0 * tau2 / (s2_typ + tau2)
            h2 = (tau2 + s2_typ) / s2_typ
    else:
        q_p = i2 = h2 = math.nan

    # prediction interval for the first coefficient's setting (metafor: z or t crit)
    pi_se = math.sqrt(se0 * se0 + tau2)
    # a partial of a module-level function (not a closure): results stay picklable
    ci_fn = partial(_tau2_qprofile_ci, y_a, v_a, Xd, level) if tau2_ci and method != "EE" else None
    res = MetaResult(
        method=method,
        k=k,
        p=p,
        level=level,
        knha=knha,
        estimate=b0,
        se=se0,
        ci_lower=float(first["ci_lower"]),
        ci_upper=float(first["ci_upper"]),
        z=float(first["statistic"]),
        p_value=float(first["p_value"]),
        tau2=float(tau2),
        tau=math.sqrt(tau2),
        tau2_se=tau2_se,
        i2=i2,
        h2=h2,
        Q=float(qe),
        Q_df=df_res,
        Q_p=q_p,
        pi_lower=b0 - crit * pi_se,
        pi_upper=b0 + crit * pi_se,
        coefficients=coefs,
        df=df_res if knha else None,
        converged=converged,
        vcov=vb.tolist(),
        _tau2_ci_fn=ci_fn,
    )

    if p > 1:
        idx = np.arange(1, p)
        bm = fit.b[idx]
        qm = float(bm @ np.linalg.solve(vb[np.ix_(idx, idx)], bm))
        m = p - 1
        if knha:
            res.QM = qm / m
            res.QM_p = float(special.fdtrc(m, df_res, qm / m))
        else:
            res.QM = qm
            res.QM_p = float(special.chdtrc(m, qm))
        res.QM_df = m
        if method != "EE":
            ones = Xd[:, :1]
            base = _estimate_tau2(method, y_a, v_a, ones, True, _Fit(0.0, y_a, v_a, ones, True))
            res.R2 = max(0.0, 100.0 * (base[0] - tau2) / base[0]) if base[0] > 0 else 0.0
    return res


# ------------------------------------------------------------------------------ Egger
def egger_test(
    y: ArrayLike,
    se: ArrayLike,
    *,
    method: Literal["classical", "rma"] = "classical",
) -> EggerResult:
    """Egger's regression test for funnel-plot asymmetry.

    ``method="classical"`` (default, Egger et al. 1997): ordinary least squares of the
    standardised effect ``y/se`` on the precision ``1/se``; the *intercept* measures asymmetry
    and is tested with a t test on k - 2 df. This equals metafor's
    ``regtest(model="lm", predictor="sei")`` (weighted regression of ``y`` on ``se``).

    ``method="rma"``: metafor's default ``regtest``: a REML mixed-effects meta-regression of
    ``y`` on ``se`` with a z test of the ``se`` coefficient (reported as ``intercept``; the
    model's intercept is reported as ``slope``, the limit effect as ``se -> 0``).

    A caveat is attached when k < 10, where the test has low power (Sterne et al. 2011,
    BMJ 343:d4002).
    """
    y_a = np.asarray(y, dtype=float).ravel()
    s_a = np.asarray(se, dtype=float).ravel()
    k = y_a.size
    if k < 3:
        raise ValueError("Egger's test needs at least 3 studies")
    caveat = (
        f"Only {k} studies: Egger's test has low power for k < {EGGER_CAVEAT_K} and "
        "asymmetry can arise from heterogeneity rather than small-study bias; interpret "
        "with caution."
        if k < EGGER_CAVEAT_K
        else ""
    )
    if method == "classical":
        Z = y_a / s_a
        prec = 1.0 / s_a
        A = np.column_stack([np.ones(k), prec])
        coef, *_ = np.linalg.lstsq(A, Z, rcond=None)
        resid = Z - A @ coef
        df = k - 2
        sigma2 = float(resid @ resid) / df
        cov = sigma2 * np.linalg.inv(A.T @ A)
        ses = np.sqrt(np.diag(cov))
        t = float(coef[0] / ses[0])
        return EggerResult(
            method="classical (OLS of y/se on 1/se; t test of the intercept)",
            k=k,
            intercept=float(coef[0]),
            se=float(ses[0]),
            statistic=t,
            df=df,
            p_value=float(2.0 * special.stdtr(df, -abs(t))),
            slope=float(coef[1]),
            slope_se=float(ses[1]),
            caveat=caveat,
        )
    if method == "rma":
        fit = rma(y_a, s_a**2, s_a, method="REML", tau2_ci=False)
        c_se, c_int = fit.coefficients[1], fit.coefficients[0]
        return EggerResult(
            method="rma (REML meta-regression on se; z test of the se coefficient)",
            k=k,
            intercept=float(c_se["estimate"]),
            se=float(c_se["se"]),
            statistic=float(c_se["statistic"]),
            df=None,
            p_value=float(c_se["p_value"]),
            slope=float(c_int["estimate"]),
            slope_se=float(c_int["se"]),
            caveat=caveat,
        )
    raise ValueError(f"unknown method {method!r}")
