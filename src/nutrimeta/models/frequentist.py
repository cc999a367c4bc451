"""Frequentist random-effects meta-analysis, meta-regression and Egger's test.

Implements the estimators of ``metafor::rma.uni`` that the pipeline reports next to the
Bayesian fits, following metafor's definitions so that numbers can be compared one-to-one:

* tau^2 estimators: DerSimonian-Laird (``"DL"``, with its meta-regression generalisation),
  restricted maximum likelihood (``"REML"``, Fisher scoring with step halving, as metafor),
  Paule-Mandel (``"PM"``) and the equal-effects model (``"EE"``, tau^2 = 0);
* Wald-type (z) inference, or the Knapp-Hartung adjustment (``knha=True``: variance scaled by
  the weighted residual mean square, t distribution with k - p df; F test for the moderators);
* heterogeneity: Cochran's Q (equal-effects residual Q, QE for meta-regression), I^2 and H^2
  as in metafor (``s2 = (k - p) / tr(P)``, ``P = W - W X (X'WX)^-1 X'W``, ``W = diag(1/v)``,
  which reduces to Higgins & Thompson's typical variance without moderators), the Q-profile
  confidence interval of tau^2 (Viechtbauer 2007), the prediction interval, and metafor's
  pseudo-R^2 for meta-regression (relative reduction of tau^2 against the model without
  moderators, truncated at 0);
* Egger's regression test for funnel-plot asymmetry.

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

__all__ = [
    "EggerResult",
    "MetaResult",
    "egger_test",
    "rma",
]

FloatArray = NDArray[np.float64]
Method = Literal["REML", "DL", "PM", "EE"]

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
    ``knha=True`` the statistic is a t value (``df`` = k - p).
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
    tau2_ci: tuple[float, float]
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

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict."""
        return _plain(asdict(self))


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
def _wls(y: FloatArray, v: FloatArray, X: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """Weighted least squares with weights 1/v: (b, (X'WX)^-1, weighted RSS)."""
    w = 1.0 / v
    xtwx = X.T @ (w[:, None] * X)
    cov = np.linalg.inv(xtwx)
    b = cov @ (X.T @ (w * y))
    rss = float(np.sum(w * (y - X @ b) ** 2))
    return b, cov, rss


def _p_matrix(v: FloatArray, X: FloatArray) -> FloatArray:
    """``P = W - W X (X'WX)^-1 X' W`` with ``W = diag(1/v)``."""
    w = 1.0 / v
    wx = w[:, None] * X
    return np.diag(w) - wx @ np.linalg.solve(X.T @ wx, wx.T)


def _tau2_dl(y: FloatArray, vi: FloatArray, X: FloatArray) -> float:
    k, p = X.shape
    _, _, qe = _wls(y, vi, X)
    tr = float(np.trace(_p_matrix(vi, X)))
    return max(0.0, (qe - (k - p)) / tr)


def _tau2_reml(
    y: FloatArray, vi: FloatArray, X: FloatArray, start: float, tol: float = 1e-10
) -> tuple[float, bool]:
    """REML by Fisher scoring with step halving (metafor's algorithm), truncated at 0."""
    tau2 = max(start, 0.0)
    for _ in range(1000):
        P = _p_matrix(vi + tau2, X)
        Py = P @ y
        score = float(Py @ Py - np.trace(P))
        info = float(np.sum(P * P.T))
        step = score / info
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
    # fall back on direct maximisation of the restricted log-likelihood
    return _tau2_reml_optimise(y, vi, X), False


def _restricted_loglik(tau2: float, y: FloatArray, vi: FloatArray, X: FloatArray) -> float:
    v = vi + tau2
    _, cov, rss = _wls(y, v, X)
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * float(np.sum(np.log(v))) + 0.5 * logdet - 0.5 * rss


def _tau2_reml_optimise(y: FloatArray, vi: FloatArray, X: FloatArray) -> float:
    upper = 100.0 * max(float(np.var(y)), float(np.max(vi)))
    res = optimize.minimize_scalar(
        lambda t2: -_restricted_loglik(t2, y, vi, X),
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(res.x)


def _q_gen(tau2: float, y: FloatArray, vi: FloatArray, X: FloatArray) -> float:
    """Generalised Q statistic at tau^2 (decreasing in tau^2)."""
    return _wls(y, vi + tau2, X)[2]


def _solve_q(target: float, y: FloatArray, vi: FloatArray, X: FloatArray) -> float:
    """The tau^2 at which the generalised Q statistic equals ``target`` (0 if it never does)."""
    if _q_gen(0.0, y, vi, X) <= target:
        return 0.0
    hi = max(1.0, float(np.var(y)))
    while _q_gen(hi, y, vi, X) > target:
        hi *= 2.0
    return float(optimize.brentq(lambda t: _q_gen(t, y, vi, X) - target, 0.0, hi, xtol=1e-12))


def _tau2_pm(y: FloatArray, vi: FloatArray, X: FloatArray) -> float:
    k, p = X.shape
    return _solve_q(k - p, y, vi, X)


def _tau2_qprofile_ci(
    y: FloatArray, vi: FloatArray, X: FloatArray, level: float
) -> tuple[float, float]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007)."""
    k, p = X.shape
    df = k - p
    if df < 1:
        return (math.nan, math.nan)
    a = 1.0 - level
    q_hi = stats.chi2.ppf(1.0 - a / 2.0, df)  # gives the lower bound
    q_lo = stats.chi2.ppf(a / 2.0, df)  # gives the upper bound

    return _solve_q(q_hi, y, vi, X), _solve_q(q_lo, y, vi, X)


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
        ``"REML"`` (default), ``"DL"``, ``"PM"`` or ``"EE"`` (equal effects, tau^2 = 0).
    knha
        Knapp-Hartung adjustment (t / F tests with k - p df).
    level
        Confidence level of all intervals.
    coef_names
        Names for the moderator columns (the intercept is named ``"intrcpt"``).
    tau2_ci
        Compute the Q-profile confidence interval of tau^2.

    Returns
    -------
    MetaResult
    """
    y_a = np.asarray(y, dtype=float).ravel()
    v_a = np.asarray(v, dtype=float).ravel()
    k = y_a.size
    if v_a.size != k or k == 0:
        raise ValueError("y and v must be non-empty and of equal length")
    if not (np.all(np.isfinite(y_a)) and np.all(np.isfinite(v_a)) and np.all(v_a > 0)):
        raise ValueError("y must be finite and v finite and positive")
    if X is None:
        mods = np.zeros((k, 0))
    else:
        mods = np.asarray(X, dtype=float)
        mods = mods[:, None] if mods.ndim == 1 else mods
    Xd = np.column_stack([np.ones(k), mods])
    p = Xd.shape[1]
    if k < p + (method != "EE") or np.linalg.matrix_rank(Xd) < p:
        raise ValueError("design matrix is rank deficient or has more columns than studies")
    names = ["intrcpt"] + (
        list(coef_names) if coef_names is not None else [f"mod{j + 1}" for j in range(p - 1)]
    )

    converged = True
    if method == "EE":
        tau2 = 0.0
    elif method == "DL":
        tau2 = _tau2_dl(y_a, v_a, Xd)
    elif method == "PM":
        tau2 = _tau2_pm(y_a, v_a, Xd)
    elif method == "REML":
        tau2, converged = _tau2_reml(y_a, v_a, Xd, start=_tau2_dl(y_a, v_a, Xd))
    else:
        raise ValueError(f"unknown method {method!r}")

    b, vb, rss = _wls(y_a, v_a + tau2, Xd)
    df_res = k - p
    if knha:
        s2 = rss / df_res if df_res > 0 else math.nan
        vb = vb * s2
        dist: Any = stats.t(df_res)
    else:
        dist = stats.norm()
    se = np.sqrt(np.diag(vb))
    stat = b / se
    pval = 2.0 * dist.sf(np.abs(stat))
    crit = float(dist.ppf(0.5 + level / 2.0))
    coefs = [
        {
            "name": names[j],
            "estimate": float(b[j]),
            "se": float(se[j]),
            "statistic": float(stat[j]),
            "p_value": float(pval[j]),
            "ci_lower": float(b[j] - crit * se[j]),
            "ci_upper": float(b[j] + crit * se[j]),
        }
        for j in range(p)
    ]

    # heterogeneity: QE from the equal-effects fit, metafor's I^2 / H^2
    _, _, qe = _wls(y_a, v_a, Xd)
    q_p = float(stats.chi2.sf(qe, df_res)) if df_res > 0 else math.nan
    P0 = _p_matrix(v_a, Xd)
    s2_typ = df_res / float(np.trace(P0)) if df_res > 0 else math.nan
    i2 = 100.0 * tau2 / (s2_typ + tau2) if df_res > 0 else math.nan
    h2 = (tau2 + s2_typ) / s2_typ if df_res > 0 else math.nan

    # SE of tau^2 (inverse Fisher information of the (restricted) likelihood), as metafor
    if method == "REML":
        Pt = _p_matrix(v_a + tau2, Xd)
        tau2_se = math.sqrt(2.0 / float(np.sum(Pt * Pt.T)))
    elif method == "DL":
        Pw = _p_matrix(v_a, Xd)
        trp = float(np.trace(Pw))
        ptp = Pw @ np.diag(v_a + tau2)
        tau2_se = math.sqrt(2.0 * float(np.trace(ptp @ ptp))) / trp if trp > 0 else math.nan
    else:
        tau2_se = math.nan

    ci_t2 = (
        _tau2_qprofile_ci(y_a, v_a, Xd, level)
        if (tau2_ci and method != "EE")
        else (math.nan, math.nan)
    )

    # prediction interval for the first coefficient's setting (metafor: z or t crit)
    pi_se = math.sqrt(float(vb[0, 0]) + tau2)
    pi = (float(b[0] - crit * pi_se), float(b[0] + crit * pi_se))

    res = MetaResult(
        method=method,
        k=k,
        p=p,
        level=level,
        knha=knha,
        estimate=float(b[0]),
        se=float(se[0]),
        ci_lower=coefs[0]["ci_lower"],
        ci_upper=coefs[0]["ci_upper"],  # type: ignore[arg-type]
        z=float(stat[0]),
        p_value=float(pval[0]),
        tau2=float(tau2),
        tau=math.sqrt(tau2),
        tau2_se=tau2_se,
        tau2_ci=ci_t2,
        i2=i2,
        h2=h2,
        Q=float(qe),
        Q_df=df_res,
        Q_p=q_p,
        pi_lower=pi[0],
        pi_upper=pi[1],
        coefficients=coefs,
        df=df_res if knha else None,
        converged=converged,
        vcov=vb.tolist(),
    )

    if p > 1:
        idx = np.arange(1, p)
        bm = b[idx]
        qm = float(bm @ np.linalg.solve(vb[np.ix_(idx, idx)], bm))
        m = p - 1
        if knha:
            res.QM = qm / m
            res.QM_p = float(stats.f.sf(qm / m, m, df_res))
        else:
            res.QM = qm
            res.QM_p = float(stats.chi2.sf(qm, m))
        res.QM_df = m
        if method != "EE":
            base = rma(y_a, v_a, method=method, tau2_ci=False)
            res.R2 = max(0.0, 100.0 * (base.tau2 - tau2) / base.tau2) if base.tau2 > 0 else 0.0
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
            p_value=float(2.0 * stats.t.sf(abs(t), df)),
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
