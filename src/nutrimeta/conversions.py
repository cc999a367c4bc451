"""Statistical conversions between reported summary statistics and effect sizes.

Pure numpy/scipy functions, vectorised over array inputs. Functions that turn one reported
statistic into another return a :class:`Derived` (value plus a short derivation string) so the
effect-size table can record every step; effect-size functions return an :class:`Effect`.

References
----------
.. [1] Higgins JPT, Li T, Deeks JJ (eds). Chapter 6: Choosing effect measures and computing
   estimates of effect. In: Cochrane Handbook for Systematic Reviews of Interventions,
   version 6.4, 2023. Sections 6.5.2.2 (SD from SE/CI), 6.5.2.3 (from t/p values), 6.5.2.8
   (change-from-baseline SDs).
.. [2] Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and standard deviation from
   the sample size, median, range and/or interquartile range. BMC Med Res Methodol.
   2014;14:135. doi:10.1186/1471-2288-14-135
.. [3] Luo D, Wan X, Liu J, Tong T. Optimally estimating the sample mean from the sample size,
   median, mid-range, and/or mid-quartile range. Stat Methods Med Res. 2018;27(6):1785-1805.
   doi:10.1177/0962280216669183
.. [4] Shi J, Luo D, Weng H, et al. Optimally estimating the sample standard deviation from
   the five-number summary. Res Synth Methods. 2020;11(5):641-654. doi:10.1002/jrsm.1429
.. [5] Hedges LV. Distribution theory for Glass's estimator of effect size and related
   estimators. J Educ Stat. 1981;6(2):107-128.
.. [6] Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw.
   2010;36(3):1-48 (``escalc``, measures MD, SMD, ROM; ``vtype='LS'``).
.. [7] Hedges LV, Gurevitch J, Curtis PS. The meta-analysis of response ratios in
   experimental ecology. Ecology. 1999;80(4):1150-1156.
.. [8] Higgins JPT, White IR, Anzures-Cabrera J. Meta-analysis of skewed data: combining
   results reported on log-transformed or raw scales. Stat Med. 2008;27(29):6072-6092.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "Derived",
    "Effect",
    "arithmetic_from_lognormal",
    "change_sd",
    "correlation_from_change_sd",
    "geometric_to_log_scale",
    "hedges_correction",
    "mean_difference",
    "mean_sd_from_median",
    "pooled_sd",
    "ratio_of_geometric_means",
    "ratio_of_means",
    "sd_from_se",
    "se_from_ci",
    "se_from_p",
    "single_arm_change",
    "smd_hedges",
]

#: Sample size below which t rather than z quantiles are used for CIs (Cochrane 6.5.2.2).
T_THRESHOLD_N = 60


@dataclass(frozen=True)
class Derived:
    """A derived statistic and how it was obtained."""

    value: np.ndarray | float
    derivation: str


@dataclass(frozen=True)
class Effect:
    """An effect size ``yi`` with sampling variance ``vi`` and the formula used."""

    yi: np.ndarray | float
    vi: np.ndarray | float
    derivation: str

    @property
    def sei(self) -> np.ndarray | float:
        """Standard error, ``sqrt(vi)``."""
        return _out(np.sqrt(np.asarray(self.vi, dtype=float)))


def _arr(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _out(a: np.ndarray):
    a = np.asarray(a, dtype=float)
    return float(a) if a.ndim == 0 else a


# ------------------------------------------------------------------ SD, SE, CI, p-values


def sd_from_se(se: ArrayLike, n: ArrayLike) -> Derived:
    """Standard deviation from the standard error of a mean: ``sd = se * sqrt(n)``.

    References
    ----------
    Cochrane Handbook [1]_ section 6.5.2.2.
    """
    return Derived(_out(_arr(se) * np.sqrt(_arr(n))), "SD from SE (sd = se*sqrt(n))")


def _crit(level: float, n: ArrayLike | None, dist: str | None, df: ArrayLike | None = None):
    """Two-sided critical value and the label of the distribution used."""
    q = 1.0 - (1.0 - level) / 2.0
    if dist is None:
        small = n is not None and bool(np.all(_arr(n) < T_THRESHOLD_N))
        dist = "t" if small else "z"
    from scipy import stats  # imported on use: scipy.stats costs most of a second
    if dist == "z":
        return stats.norm.ppf(q), "z"
    if dist != "t":
        raise ValueError(f"dist must be 't' or 'z', not {dist!r}")
    if df is None:
        if n is None:
            raise ValueError("t quantiles need n (df = n-1) or df")
        df = _arr(n) - 1.0
    return stats.t.ppf(q, _arr(df)), "t"


def se_from_ci(
    lower: ArrayLike,
    upper: ArrayLike,
    n: ArrayLike | None = None,
    level: float = 0.95,
    dist: str | None = None,
    df: ArrayLike | None = None,
) -> Derived:
    """Standard error of a mean (or difference) from a symmetric confidence interval.

    ``se = (upper - lower) / (2 * crit)`` where ``crit`` is the two-sided quantile of the
    t distribution with ``n - 1`` df (or ``df`` when given, e.g. ``n1 + n2 - 2`` for a
    difference) or of the standard normal.

    Parameters
    ----------
    lower, upper : array_like
        Confidence limits.
    n : array_like, optional
        Sample size (of the arm, for a single mean).
    level : float
        Confidence level, e.g. 0.95.
    dist : {'t', 'z'}, optional
        Default: ``'t'`` when ``n < 60`` (Cochrane Handbook 6.5.2.2), else ``'z'``.
    df : array_like, optional
        Degrees of freedom for ``'t'``; default ``n - 1``.

    References
    ----------
    Cochrane Handbook [1]_ section 6.5.2.2.
    """
    crit, used = _crit(level, n, dist, df)
    se = (_arr(upper) - _arr(lower)) / (2.0 * crit)
    lvl = f"{100 * level:g}%"
    if used == "t":
        dfs = "n-1" if df is None else "given"
        how = f"SE from {lvl} CI (se = width/(2*t[{dfs} df]))"
    else:
        how = f"SE from {lvl} CI (se = width/(2*z))"
    return Derived(_out(se), how)


def se_from_p(estimate: ArrayLike, p: ArrayLike, df: ArrayLike | None = None) -> Derived:
    """Standard error of an estimate (a difference) from its two-sided p-value.

    ``se = |estimate| / q`` with ``q`` the ``1 - p/2`` quantile of t with ``df`` degrees of
    freedom (or of the standard normal when ``df`` is None).

    Parameters
    ----------
    estimate : array_like
        The difference tested (must be non-zero).
    p : array_like
        Two-sided p-value, in (0, 1).
    df : array_like, optional
        Degrees of freedom of the t test (e.g. ``n1 + n2 - 2``; ``n - 1`` for a paired test);
        None for a z test.

    References
    ----------
    Cochrane Handbook [1]_ section 6.5.2.3.
    """
    p_ = _arr(p)
    if np.any((p_ <= 0) | (p_ >= 1)):
        raise ValueError("p must lie strictly between 0 and 1")
    from scipy import stats  # imported on use: scipy.stats costs most of a second
    if df is None:
        q = stats.norm.isf(p_ / 2.0)
        how = "SE from two-sided p (se = |est|/z[1-p/2])"
    else:
        q = stats.t.isf(p_ / 2.0, _arr(df))
        how = "SE from two-sided p (se = |est|/t[1-p/2, df])"
    return Derived(_out(np.abs(_arr(estimate)) / q), how)


# ------------------------------------------------------------- medians, quartiles, ranges


def _xi(n: np.ndarray) -> np.ndarray:
    """Wan 2014 ``xi(n) = 2 * Phi^-1((n - 0.375) / (n + 0.25))`` (expected range / sigma)."""
    from scipy import stats  # imported on use: scipy.stats costs most of a second
    return 2.0 * stats.norm.ppf((n - 0.375) / (n + 0.25))


def _eta(n: np.ndarray) -> np.ndarray:
    """Wan 2014 ``eta(n) = 2 * Phi^-1((0.75n - 0.125) / (n + 0.25))`` (expected IQR / sigma)."""
    from scipy import stats  # imported on use: scipy.stats costs most of a second
    return 2.0 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))


def mean_sd_from_median(
    n: ArrayLike,
    median: ArrayLike,
    q1: ArrayLike | None = None,
    q3: ArrayLike | None = None,
    minimum: ArrayLike | None = None,
    maximum: ArrayLike | None = None,
    mean_method: str = "luo",
    sd_method: str = "shi",
) -> tuple[Derived, Derived]:
    """Estimate the sample mean and SD from the median with IQR and/or range.

    Scenarios (Wan 2014 notation): S1 = {min, median, max}; S2 = {min, q1, median, q3,
    max}; S3 = {q1, median, q3}. Estimators assume approximately normal data.

    Mean (``mean_method='luo'``, Luo et al. 2018 eqs 7, 15, 11):

    * S1: ``w = 4/(4 + n^0.75)``; ``w*(a+b)/2 + (1-w)*m``
    * S2: ``w1 = 2.2/(2.2 + n^0.75)``, ``w2 = 0.7 - 0.72/n^0.55``;
      ``w1*(a+b)/2 + w2*(q1+q3)/2 + (1-w1-w2)*m``
    * S3: ``w = 0.7 + 0.39/n``; ``w*(q1+q3)/2 + (1-w)*m``

    ``mean_method='wan'`` gives Wan 2014: ``(a+2m+b)/4``, ``(a+2q1+2m+2q3+b)/8``,
    ``(q1+m+q3)/3``.

    SD (Wan 2014 eqs 7, 16 with the closed-form ``xi(n)``, ``eta(n)`` above):

    * S1: ``(b-a)/xi(n)``; S3: ``(q3-q1)/eta(n)``
    * S2 with ``sd_method='shi'`` (Shi et al. 2020 eq 11): ``w = 1/(1 + 0.07 n^0.6)``,
      ``w*(b-a)/xi(n) + (1-w)*(q3-q1)/eta(n)``; with ``sd_method='wan'`` (Wan 2014 eq 12):
      ``0.5*((b-a)/xi(n) + (q3-q1)/eta(n))``.

    Parameters
    ----------
    n : array_like
        Sample size.
    median : array_like
        Sample median ``m``.
    q1, q3 : array_like, optional
        First and third quartiles.
    minimum, maximum : array_like, optional
        Sample minimum ``a`` and maximum ``b``.
    mean_method : {'luo', 'wan'}
    sd_method : {'shi', 'wan'}
        Only matters for S2 (both IQR and range given).

    Returns
    -------
    (Derived, Derived)
        Estimated mean and SD with their derivations.

    References
    ----------
    Wan et al. 2014 [2]_; Luo et al. 2018 [3]_; Shi et al. 2020 [4]_.
    """
    n_ = _arr(n)
    m = _arr(median)
    has_iqr = q1 is not None and q3 is not None
    has_rng = minimum is not None and maximum is not None
    if not (has_iqr or has_rng):
        raise ValueError("need q1 and q3, or minimum and maximum (or both)")
    if mean_method not in ("luo", "wan") or sd_method not in ("shi", "wan"):
        raise ValueError("mean_method must be 'luo'|'wan' and sd_method 'shi'|'wan'")
    if has_iqr and has_rng:
        a, b, lo, hi = _arr(minimum), _arr(maximum), _arr(q1), _arr(q3)
        if mean_method == "luo":
            w1 = 2.2 / (2.2 + n_**0.75)
            w2 = 0.7 - 0.72 / n_**0.55
            mean = w1 * (a + b) / 2 + w2 * (lo + hi) / 2 + (1 - w1 - w2) * m
        else:
            mean = (a + 2 * lo + 2 * m + 2 * hi + b) / 8
        if sd_method == "shi":
            w = 1.0 / (1.0 + 0.07 * n_**0.6)
            sd = w * (b - a) / _xi(n_) + (1 - w) * (hi - lo) / _eta(n_)
        else:
            sd = 0.5 * ((b - a) / _xi(n_) + (hi - lo) / _eta(n_))
        scen = "median, IQR and range"
    elif has_rng:
        a, b = _arr(minimum), _arr(maximum)
        if mean_method == "luo":
            w = 4.0 / (4.0 + n_**0.75)
            mean = w * (a + b) / 2 + (1 - w) * m
        else:
            mean = (a + 2 * m + b) / 4
        sd = (b - a) / _xi(n_)
        sd_method = "wan"
        scen = "median and range"
    else:
        lo, hi = _arr(q1), _arr(q3)
        if mean_method == "luo":
            w = 0.7 + 0.39 / n_
            mean = w * (lo + hi) / 2 + (1 - w) * m
        else:
            mean = (lo + m + hi) / 3
        sd = (hi - lo) / _eta(n_)
        sd_method = "wan"
        scen = "median and IQR"
    mean_ref = "Luo 2018" if mean_method == "luo" else "Wan 2014"
    sd_ref = "Shi 2020" if sd_method == "shi" else "Wan 2014"
    return (
        Derived(_out(mean), f"mean from {scen} ({mean_ref})"),
        Derived(_out(sd), f"SD from {scen} ({sd_ref})"),
    )


# ---------------------------------------------------------------------- geometric means


def geometric_to_log_scale(
    gm: ArrayLike,
    n: ArrayLike,
    ci_lower: ArrayLike | None = None,
    ci_upper: ArrayLike | None = None,
    gsd: ArrayLike | None = None,
    level: float = 0.95,
    dist: str | None = None,
) -> tuple[Derived, Derived]:
    """Log-scale mean and SD from a geometric mean with its CI or geometric SD.

    ``mu = log(gm)``; from a CI, ``se_log = (log(U) - log(L)) / (2*crit)`` (t with ``n - 1``
    df when ``n < 60``) and ``sd_log = se_log*sqrt(n)``; from a geometric SD,
    ``sd_log = log(gsd)``.

    References
    ----------
    Higgins, White & Anzures-Cabrera 2008 [8]_; Cochrane Handbook [1]_ 6.5.2.2.
    """
    mu = np.log(_arr(gm))
    if gsd is not None:
        return (Derived(_out(mu), "log-scale mean = log(GM)"),
                Derived(_out(np.log(_arr(gsd))), "log-scale SD = log(GSD)"))
    if ci_lower is None or ci_upper is None:
        raise ValueError("need the CI of the geometric mean or the geometric SD")
    se = se_from_ci(np.log(_arr(ci_lower)), np.log(_arr(ci_upper)), n, level, dist)
    sd = _arr(se.value) * np.sqrt(_arr(n))
    return (Derived(_out(mu), "log-scale mean = log(GM)"),
            Derived(_out(sd), f"log-scale SD from CI of GM ({se.derivation} on log scale; "
                              "sd = se*sqrt(n))"))


def arithmetic_from_lognormal(mu_log: ArrayLike, sd_log: ArrayLike) -> tuple[Derived, Derived]:
    """Arithmetic mean and SD of a log-normal variable from its log-scale mean and SD.

    ``mean = exp(mu + s^2/2)``, ``sd = mean * sqrt(exp(s^2) - 1)``.

    References
    ----------
    Higgins, White & Anzures-Cabrera 2008 [8]_.
    """
    mu, s = _arr(mu_log), _arr(sd_log)
    mean = np.exp(mu + s**2 / 2.0)
    sd = mean * np.sqrt(np.expm1(s**2))
    return (Derived(_out(mean), "mean = exp(mu + s^2/2) (log-normal)"),
            Derived(_out(sd), "sd = mean*sqrt(exp(s^2)-1) (log-normal)"))


# -------------------------------------------------------------------------- change scores


def change_sd(sd_baseline: ArrayLike, sd_followup: ArrayLike, r: ArrayLike) -> Derived:
    """SD of the change from baseline given baseline and follow-up SDs and their correlation.

    ``sd_change = sqrt(sd_b^2 + sd_f^2 - 2*r*sd_b*sd_f)``.

    References
    ----------
    Cochrane Handbook [1]_ section 6.5.2.8.
    """
    b, f, r_ = _arr(sd_baseline), _arr(sd_followup), _arr(r)
    v = b**2 + f**2 - 2.0 * r_ * b * f
    return Derived(_out(np.sqrt(v)),
                   f"change SD from baseline/follow-up SDs with r={_fmt(r)} "
                   "(sqrt(sdb^2+sdf^2-2r*sdb*sdf))")


def correlation_from_change_sd(
    sd_baseline: ArrayLike, sd_followup: ArrayLike, sd_change: ArrayLike
) -> Derived:
    """Impute the pre/post correlation from reported baseline, follow-up and change SDs.

    ``r = (sd_b^2 + sd_f^2 - sd_change^2) / (2*sd_b*sd_f)`` (the inverse of
    :func:`change_sd`). Values outside [-1, 1] signal inconsistent reporting.

    References
    ----------
    Cochrane Handbook [1]_ section 6.5.2.8.
    """
    b, f, c = _arr(sd_baseline), _arr(sd_followup), _arr(sd_change)
    r = (b**2 + f**2 - c**2) / (2.0 * b * f)
    return Derived(_out(r), "r = (sdb^2+sdf^2-sdc^2)/(2*sdb*sdf)")


def _fmt(x: ArrayLike) -> str:
    a = np.asarray(x, dtype=float)
    return f"{float(a):g}" if a.ndim == 0 else "given"


# ------------------------------------------------------------------------- effect sizes


def mean_difference(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> Effect:
    """Raw mean difference (group 1 minus group 2) with its variance.

    ``yi = m1 - m2``, ``vi = sd1^2/n1 + sd2^2/n2`` (metafor ``measure='MD'``, heteroscedastic
    default).

    References
    ----------
    Viechtbauer 2010 [6]_.
    """
    yi = _arr(m1) - _arr(m2)
    vi = _arr(sd1) ** 2 / _arr(n1) + _arr(sd2) ** 2 / _arr(n2)
    return Effect(_out(yi), _out(vi), "MD = m1-m2, vi = sd1^2/n1 + sd2^2/n2")


def pooled_sd(sd1: ArrayLike, n1: ArrayLike, sd2: ArrayLike, n2: ArrayLike) -> np.ndarray | float:
    """Pooled within-group SD, ``sqrt(((n1-1)sd1^2 + (n2-1)sd2^2)/(n1+n2-2))``."""
    n1_, n2_ = _arr(n1), _arr(n2)
    v = ((n1_ - 1) * _arr(sd1) ** 2 + (n2_ - 1) * _arr(sd2) ** 2) / (n1_ + n2_ - 2)
    return _out(np.sqrt(v))


def hedges_correction(m: ArrayLike) -> np.ndarray | float:
    """Exact small-sample bias correction of Hedges (1981).

    ``J(m) = exp(lgamma(m/2) - 0.5*log(m/2) - lgamma((m-1)/2))`` with ``m = n1 + n2 - 2``
    (equivalently ``Gamma(m/2) / (sqrt(m/2) * Gamma((m-1)/2))``); ``J ~ 1 - 3/(4m - 1)``.

    References
    ----------
    Hedges 1981 [5]_; metafor ``.cmicalc`` [6]_.
    """
    m_ = _arr(m)
    from scipy import special  # imported on use, like scipy.stats above
    return _out(np.exp(special.gammaln(m_ / 2) - 0.5 * np.log(m_ / 2)
                       - special.gammaln((m_ - 1) / 2)))


def smd_hedges(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> Effect:
    """Bias-corrected standardised mean difference (Hedges' g) and its variance.

    ``g = J(n1+n2-2) * (m1 - m2) / sd_pooled`` and
    ``vi = 1/n1 + 1/n2 + g^2 / (2*(n1 + n2))``, as metafor's ``escalc(measure='SMD')`` with
    ``vtype='LS'``.

    References
    ----------
    Hedges 1981 [5]_; Viechtbauer 2010 [6]_.
    """
    n1_, n2_ = _arr(n1), _arr(n2)
    j = _arr(hedges_correction(n1_ + n2_ - 2))
    g = j * (_arr(m1) - _arr(m2)) / _arr(pooled_sd(sd1, n1, sd2, n2))
    vi = 1.0 / n1_ + 1.0 / n2_ + g**2 / (2.0 * (n1_ + n2_))
    return Effect(_out(g), _out(vi),
                  "SMD = J*(m1-m2)/sd_pooled with exact J (Hedges g), "
                  "vi = 1/n1+1/n2+g^2/(2(n1+n2)) (metafor vtype LS)")


def ratio_of_means(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> Effect:
    """Log ratio of means (response ratio) with its delta-method variance.

    ``yi = log(m1/m2)``, ``vi = sd1^2/(n1*m1^2) + sd2^2/(n2*m2^2)``; means must be positive.

    References
    ----------
    Hedges, Gurevitch & Curtis 1999 [7]_; metafor ``measure='ROM'`` [6]_.
    """
    a1, a2 = _arr(m1), _arr(m2)
    if np.any(a1 <= 0) or np.any(a2 <= 0):
        raise ValueError("ratio of means needs positive means")
    yi = np.log(a1 / a2)
    vi = _arr(sd1) ** 2 / (_arr(n1) * a1**2) + _arr(sd2) ** 2 / (_arr(n2) * a2**2)
    return Effect(_out(yi), _out(vi),
                  "ROM = log(m1/m2), vi = sd1^2/(n1 m1^2) + sd2^2/(n2 m2^2) (delta method)")


def ratio_of_geometric_means(
    gm1: float, lower1: float, upper1: float, gm2: float, lower2: float, upper2: float,
    level: float = 0.95, n1: float | None = None, n2: float | None = None,
) -> Effect:
    """Log ratio of geometric means with its variance from each arm's CI of the geometric mean.

    ``yi = log(gm1/gm2)``; each arm's CI is symmetric on the log scale, so
    ``se_i = (log U_i - log L_i) / (2*crit)`` (t with ``n_i - 1`` df when ``n_i < 60``, else
    z; z when n is unknown) and ``vi = se_1^2 + se_2^2``. No log-normal back-transformation to
    arithmetic means is involved, and n is not needed.

    References
    ----------
    Higgins, White & Anzures-Cabrera 2008 [8]_; Cochrane Handbook [1]_ 6.5.2.2 and 10.5.
    """
    vals = np.array([gm1, lower1, upper1, gm2, lower2, upper2], dtype=float)
    if np.any(vals <= 0) or not np.all(np.isfinite(vals)):
        raise ValueError("geometric means and their CI limits must be positive")
    if not (lower1 <= gm1 <= upper1 and lower2 <= gm2 <= upper2):
        raise ValueError("a geometric mean lies outside its CI")
    parts = []
    variances = []
    for lo, hi, n in ((lower1, upper1, n1), (lower2, upper2, n2)):
        known = n is not None and math.isfinite(float(n))
        d = se_from_ci(math.log(lo), math.log(hi), n if known else None, level,
                       None if known else "z")
        variances.append(float(d.value) ** 2)
        parts.append(d.derivation)
    yi = math.log(gm1 / gm2)
    return Effect(_out(np.asarray(yi)), _out(np.asarray(sum(variances))),
                  "ROM = log(GM1/GM2), vi = se1^2 + se2^2 with se_i from the CI of each "
                  f"geometric mean on the log scale ({parts[0]}; {parts[1]})")


def single_arm_change(
    m_baseline: ArrayLike,
    sd_baseline: ArrayLike,
    m_followup: ArrayLike,
    sd_followup: ArrayLike,
    n: ArrayLike,
    r: ArrayLike,
    measure: str = "MD",
) -> Effect:
    """Within-arm change (follow-up minus baseline) for single-arm pre/post designs.

    * ``'MD'`` (metafor ``MC``): ``yi = mf - mb``, ``vi = sd_change^2 / n``.
    * ``'SMD'`` (metafor ``SMCR``, standardised by the baseline SD):
      ``yi = J(n-1) * (mf - mb) / sdb``, ``vi = 2(1-r)/n + yi^2/(2n)``.
    * ``'ROM'`` (metafor ``ROMC``): ``yi = log(mf/mb)``,
      ``vi = sdf^2/(n mf^2) + sdb^2/(n mb^2) - 2 r sdf sdb/(n mf mb)``.

    References
    ----------
    Cochrane Handbook [1]_ 6.5.2.8; Viechtbauer 2010 [6]_ (measures MC, SMCR, ROMC);
    Becker BJ. Synthesizing standardized mean-change measures. Br J Math Stat Psychol.
    1988;41:257-278.
    """
    mb, sb, mf, sf = _arr(m_baseline), _arr(sd_baseline), _arr(m_followup), _arr(sd_followup)
    n_, r_ = _arr(n), _arr(r)
    if measure == "MD":
        sdc = _arr(change_sd(sb, sf, r_).value)
        return Effect(_out(mf - mb), _out(sdc**2 / n_),
                      "within-arm MD = mf-mb, vi = sd_change^2/n")
    if measure == "SMD":
        j = _arr(hedges_correction(n_ - 1))
        yi = j * (mf - mb) / sb
        vi = 2 * (1 - r_) / n_ + yi**2 / (2 * n_)
        return Effect(_out(yi), _out(vi),
                      "within-arm SMD standardised by baseline SD (metafor SMCR), "
                      "vi = 2(1-r)/n + yi^2/(2n)")
    if measure == "ROM":
        if np.any(mb <= 0) or np.any(mf <= 0):
            raise ValueError("ratio of means needs positive means")
        yi = np.log(mf / mb)
        vi = sf**2 / (n_ * mf**2) + sb**2 / (n_ * mb**2) - 2 * r_ * sf * sb / (n_ * mf * mb)
        return Effect(_out(yi), _out(vi),
                      "within-arm log ratio of means (metafor ROMC), delta-method variance "
                      "with r")
    raise ValueError(f"unknown measure {measure!r}")
