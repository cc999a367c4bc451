"""Tests for nutrimeta.conversions against published values and independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.meta_analysis import effectsize_smd

from nutrimeta.conversions import (
    arithmetic_from_lognormal,
    change_sd,
    correlation_from_change_sd,
    geometric_to_log_scale,
    hedges_correction,
    mean_difference,
    mean_sd_from_median,
    pooled_sd,
    ratio_of_geometric_means,
    ratio_of_means,
    sd_from_se,
    se_from_ci,
    se_from_p,
    single_arm_change,
    smd_hedges,
)

# dat.normand1999 (metafor/metadat; Normand SL, Stat Med 1999;18:321-359), studies 1-4:
# n1i, m1i, sd1i (specialist care) and n2i, m2i, sd2i (routine care).
N1 = np.array([155.0, 31, 75, 18])
M1 = np.array([55.0, 27, 64, 66])
S1 = np.array([47.0, 7, 17, 20])
N2 = np.array([156.0, 32, 71, 18])
M2 = np.array([75.0, 29, 119, 137])
S2 = np.array([64.0, 4, 29, 48])


# ------------------------------------------------------------------- metafor reference


def test_smd_matches_metafor_escalc() -> None:
    # metafor tests/testthat/test_misc_escalc.r, "escalc() works correctly for
    # measure='SMD/SMDH/ROM'": escalc(measure="SMD", ..., data=dat.normand1999, subset=1:4)
    e = smd_hedges(M1, S1, N1, M2, S2, N2)
    np.testing.assert_array_equal(np.round(e.yi, 4), [-0.3552, -0.3479, -2.3176, -1.8880])
    np.testing.assert_array_equal(np.round(e.vi, 4), [0.0131, 0.0645, 0.0458, 0.1606])


def test_rom_matches_metafor_escalc() -> None:
    # Same metafor test file: escalc(measure="ROM", ..., subset=1:4).
    e = ratio_of_means(M1, S1, N1, M2, S2, N2)
    np.testing.assert_array_equal(np.round(e.yi, 4), [-0.3102, -0.0715, -0.6202, -0.7303])
    np.testing.assert_array_equal(np.round(e.vi, 4), [0.0094, 0.0028, 0.0018, 0.0119])


def test_md_matches_normand_table_viii() -> None:
    # metafor tests/testthat/test_analysis_example_normand1999.r: MD with the pooled SD
    # in both arms reproduces Normand (1999) Table VIII (vi to 2 decimals).
    sdp = pooled_sd(S1, N1, S2, N2)
    e = mean_difference(M1, sdp, N1, M2, sdp, N2)
    np.testing.assert_array_equal(e.yi, [-20, -2, -55, -71])
    np.testing.assert_array_equal(np.round(e.vi, 2), [40.59, 2.05, 15.28, 150.22])


# --------------------------------------------------------------------- statsmodels


@pytest.mark.parametrize(("n1", "n2"), [(10, 12), (25, 25), (80, 60)])
def test_smd_against_statsmodels(n1: int, n2: int) -> None:
    m1, s1, m2, s2 = 12.0, 3.0, 10.0, 2.5
    sm_g, sm_v = effectsize_smd(m1, s1, n1, m2, s2, n2)
    ours = smd_hedges(m1, s1, n1, m2, s2, n2)
    m = n1 + n2 - 2
    # statsmodels uses the approximation J = 1 - 3/(4N - 9) (N = n1 + n2 = m + 2, the
    # same as 1 - 3/(4m - 1)); undoing each correction gives the identical Cohen's d.
    d_sm = sm_g / (1 - 3 / (4 * (n1 + n2) - 9))
    d_ours = ours.yi / hedges_correction(m)
    assert d_ours == pytest.approx(d_sm, rel=1e-12)
    assert ours.yi == pytest.approx(sm_g, rel=2e-3)
    # Variances differ only in the g^2 term (2(N - 3.94) vs metafor's 2N).
    assert ours.vi == pytest.approx(sm_v, rel=2e-2)


def test_hedges_correction_exact() -> None:
    # Independent: J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)) (Hedges 1981, eq 6e).
    for m in (2, 5, 10, 38, 100):
        ref = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
        assert hedges_correction(m) == pytest.approx(ref, rel=1e-12)
    # Large m: the usual approximation 1 - 3/(4m - 1) is accurate to O(m^-2).
    assert hedges_correction(200) == pytest.approx(1 - 3 / (4 * 200 - 1), abs=1e-6)
    # By hand: J(10) = Gamma(5) / (sqrt(5) * Gamma(4.5)) = 24 / (2.236068 * 11.631728).
    assert hedges_correction(10) == pytest.approx(0.922745, abs=2e-6)


# ------------------------------------------------------------------ SE, CI, p values


def test_sd_from_se() -> None:
    d = sd_from_se(2.0, 25)
    assert d.value == 10.0
    assert "sqrt(n)" in d.derivation


@settings(max_examples=50, deadline=None)
@given(
    mean=st.floats(-100, 100),
    se=st.floats(0.01, 50),
    n=st.integers(3, 500),
    level=st.sampled_from([0.9, 0.95, 0.99]),
)
def test_se_from_ci_round_trip(mean: float, se: float, n: int, level: float) -> None:
    # Build the CI as the Cochrane Handbook 6.5.2.2 does (t with n-1 df below n = 60, else
    # z) and recover the SE.
    q = 1 - (1 - level) / 2
    crit = stats.t.ppf(q, n - 1) if n < 60 else stats.norm.ppf(q)
    d = se_from_ci(mean - crit * se, mean + crit * se, n, level=level)
    assert d.value == pytest.approx(se, rel=1e-9)


def test_se_from_ci_dist_choice() -> None:
    # One mean, n = 25: se = 95% CI width / (2 * t[0.975, 24]); t[0.975, 24] = 2.0639 from
    # standard t tables. n >= 60 (or dist='z') uses z[0.975] = 1.959964.
    d_t = se_from_ci(0.0, 2 * 2.0639, 25)
    assert d_t.value == pytest.approx(1.0, rel=1e-4)
    assert "t[" in d_t.derivation
    d_z = se_from_ci(0.0, 2 * 1.959964, 25, dist="z")
    assert d_z.value == pytest.approx(1.0, rel=1e-6)
    assert se_from_ci(0.0, 2 * 1.959964, 100).value == pytest.approx(1.0, rel=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    est=st.floats(0.05, 50),
    se=st.floats(0.05, 20),
    df=st.one_of(st.none(), st.integers(2, 300)),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_se_from_p_round_trip(est: float, se: float, df: int | None, sign: float) -> None:
    z = est / se
    p = 2 * (stats.norm.sf(z) if df is None else stats.t.sf(z, df))
    assume(1e-12 < p < 1 - 1e-9)  # p rounds to 0 or 1 beyond: no SE to recover
    d = se_from_p(sign * est, p, df)
    assert d.value == pytest.approx(se, rel=1e-6)


def test_se_from_p_rejects_invalid() -> None:
    with pytest.raises(ValueError):
        se_from_p(1.0, 0.0)
    with pytest.raises(ValueError):
        se_from_p(1.0, 1.0)


# --------------------------------------------------------- median, IQR and range


def _meta_package_shi(n, a, q1, m, q3, b):
    # R package `meta`, mean.sd.iqr.range(): Luo et al. (2018) eq 15 for the mean and
    # Shi et al. (2020) eq 11 written as theta1/theta2, an algebraically different form.
    mean = (2.2 / (2.2 + n**0.75) * (a + b) / 2 + (0.7 - 0.72 / n**0.55) * (q1 + q3) / 2
            + (0.3 + 0.72 / n**0.55 - 2.2 / (2.2 + n**0.75)) * m)
    theta1 = (2 + 0.14 * n**0.6) * stats.norm.ppf((n - 0.375) / (n + 0.25))
    theta2 = (2 + 2 / (0.07 * n**0.6)) * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    return mean, (b - a) / theta1 + (q3 - q1) / theta2


@pytest.mark.parametrize(
    ("n", "a", "q1", "m", "q3", "b"),
    [(50, 2, 4, 5, 7, 10), (20, 1, 3, 4.8, 6, 9), (300, 10, 30, 42, 55, 120)],
)
def test_five_number_matches_meta_package_form(n, a, q1, m, q3, b) -> None:
    mean, sd = mean_sd_from_median(n, m, q1, q3, a, b)
    ref_mean, ref_sd = _meta_package_shi(n, a, q1, m, q3, b)
    assert mean.value == pytest.approx(ref_mean, rel=1e-12)
    assert sd.value == pytest.approx(ref_sd, rel=1e-12)
    assert "Luo 2018" in mean.derivation and "Shi 2020" in sd.derivation


def test_wan_formulas() -> None:
    # Wan et al. (2014): mean (a+2m+b)/4, (q1+m+q3)/3, (a+2q1+2m+2q3+b)/8; SD of S1
    # (b-a)/xi(n) and S3 (q3-q1)/eta(n). For n = 50, xi = 2*Phi^-1(49.625/50.25).
    mean, sd = mean_sd_from_median(50, 5, minimum=2, maximum=10, mean_method="wan")
    assert mean.value == pytest.approx((2 + 10 + 10) / 4)
    assert sd.value == pytest.approx(8 / (2 * stats.norm.ppf(49.625 / 50.25)))
    mean, sd = mean_sd_from_median(40, 5, q1=4, q3=7, mean_method="wan")
    assert mean.value == pytest.approx(16 / 3)
    assert sd.value == pytest.approx(3 / (2 * stats.norm.ppf(29.875 / 40.25)))
    mean, sd = mean_sd_from_median(50, 5, 4, 7, 2, 10, mean_method="wan", sd_method="wan")
    assert mean.value == pytest.approx((2 + 8 + 10 + 14 + 10) / 8)
    # For large n, Wan's eta(n) tends to the normal IQR 1.34898 sigma (2 * 0.67449).
    _, sd = mean_sd_from_median(10**7, 0.0, q1=-0.67449, q3=0.67449)
    assert sd.value == pytest.approx(1.0, rel=1e-4)


def test_luo_weights_by_hand() -> None:
    # Luo et al. (2018): S1 weight 4/(4+n^0.75); S3 weight 0.7 + 0.39/n.
    n = 30
    w = 4 / (4 + n**0.75)
    mean, _ = mean_sd_from_median(n, 5.0, minimum=1.0, maximum=12.0)
    assert mean.value == pytest.approx(w * 6.5 + (1 - w) * 5.0)
    w = 0.7 + 0.39 / n
    mean, _ = mean_sd_from_median(n, 5.0, q1=3.0, q3=8.0)
    assert mean.value == pytest.approx(w * 5.5 + (1 - w) * 5.0)


@pytest.mark.parametrize("scenario", ["iqr", "range", "both"])
def test_median_estimators_converge_on_normal_samples(scenario: str) -> None:
    # Independent check: for normal samples the estimators should be nearly unbiased for
    # the sample mean and SD (Wan 2014, Luo 2018, Shi 2020 simulations).
    rng = np.random.default_rng(20140101)
    n, reps, mu, sigma = 60, 4000, 50.0, 10.0
    x = np.sort(rng.normal(mu, sigma, size=(reps, n)), axis=1)
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75], axis=1)
    a, b = x[:, 0], x[:, -1]
    kw = {
        "iqr": {"q1": q1, "q3": q3},
        "range": {"minimum": a, "maximum": b},
        "both": {"q1": q1, "q3": q3, "minimum": a, "maximum": b},
    }[scenario]
    mean, sd = mean_sd_from_median(np.full(reps, n), med, **kw)
    assert np.mean(mean.value - x.mean(axis=1)) == pytest.approx(0.0, abs=0.05)
    assert np.mean(sd.value) / np.mean(x.std(axis=1, ddof=1)) == pytest.approx(1.0, abs=0.02)


def test_median_requires_spread() -> None:
    with pytest.raises(ValueError):
        mean_sd_from_median(20, 5.0)


# -------------------------------------------------------------------- geometric means


def test_geometric_mean_ci_round_trip() -> None:
    rng = np.random.default_rng(7)
    n = 40
    logs = rng.normal(1.5, 0.4, n)
    se = logs.std(ddof=1) / math.sqrt(n)
    t = stats.t.ppf(0.975, n - 1)
    gm = math.exp(logs.mean())
    lo, hi = math.exp(logs.mean() - t * se), math.exp(logs.mean() + t * se)
    mu, s = geometric_to_log_scale(gm, n, lo, hi)
    assert mu.value == pytest.approx(logs.mean(), rel=1e-12)
    assert s.value == pytest.approx(logs.std(ddof=1), rel=1e-9)
    mu2, s2 = geometric_to_log_scale(gm, n, gsd=math.exp(0.4))
    assert mu2.value == pytest.approx(math.log(gm)) and s2.value == pytest.approx(0.4)


def test_arithmetic_from_lognormal_matches_scipy() -> None:
    mu, s = 1.2, 0.6
    mean, sd = arithmetic_from_lognormal(mu, s)
    dist = stats.lognorm(s=s, scale=math.exp(mu))
    assert mean.value == pytest.approx(dist.mean(), rel=1e-12)
    assert sd.value == pytest.approx(dist.std(), rel=1e-12)


# ---------------------------------------------------------------------- change scores


def test_change_sd_matches_simulated_bivariate_normal() -> None:
    # Cochrane Handbook 6.5.2.8 formula vs the SD of simulated differences.
    rng = np.random.default_rng(42)
    sb, sf, r = 3.0, 4.0, 0.6
    cov = [[sb**2, r * sb * sf], [r * sb * sf, sf**2]]
    xy = rng.multivariate_normal([10, 12], cov, size=400_000)
    empirical = np.std(xy[:, 1] - xy[:, 0], ddof=1)
    assert change_sd(sb, sf, r).value == pytest.approx(empirical, rel=5e-3)
    # ... and r imputed back from the empirical change SD recovers the correlation.
    r_hat = correlation_from_change_sd(xy[:, 0].std(ddof=1), xy[:, 1].std(ddof=1), empirical)
    assert r_hat.value == pytest.approx(np.corrcoef(xy.T)[0, 1], abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(sb=st.floats(0.1, 100), sf=st.floats(0.1, 100), r=st.floats(-0.99, 0.99))
def test_change_sd_inverse(sb: float, sf: float, r: float) -> None:
    sc = change_sd(sb, sf, r).value
    assert correlation_from_change_sd(sb, sf, sc).value == pytest.approx(r, abs=1e-7)


def test_change_sd_special_cases() -> None:
    assert change_sd(3.0, 4.0, 0.0).value == pytest.approx(5.0)  # independent: 3-4-5
    assert change_sd(3.0, 3.0, 1.0).value == pytest.approx(0.0, abs=1e-12)


def test_single_arm_change_md_uses_change_sd() -> None:
    e = single_arm_change(10.0, 3.0, 12.0, 4.0, 25, 0.0, "MD")
    assert e.yi == 2.0
    assert e.vi == pytest.approx(25.0 / 25)


# ----------------------------------------------------------- ROM and MD by simulation


def test_rom_variance_matches_simulation() -> None:
    # Hedges, Gurevitch & Curtis (1999) delta-method variance vs the empirical variance of
    # log(mean1/mean2) over simulated trials (arm means drawn from their exact normal
    # sampling distributions).
    rng = np.random.default_rng(1999)
    m1, s1, n1, m2, s2, n2 = 10.0, 2.0, 30, 8.0, 1.5, 28
    reps = 400_000
    xb1 = rng.normal(m1, s1 / math.sqrt(n1), reps)
    xb2 = rng.normal(m2, s2 / math.sqrt(n2), reps)
    emp = np.var(np.log(xb1 / xb2), ddof=1)
    e = ratio_of_means(m1, s1, n1, m2, s2, n2)
    assert e.yi == pytest.approx(math.log(m1 / m2))
    assert e.vi == pytest.approx(emp, rel=0.02)


def test_smd_variance_matches_simulation() -> None:
    rng = np.random.default_rng(1981)
    n1, n2, delta, reps = 20, 20, 0.5, 20_000
    x = rng.normal(delta, 1.0, (reps, n1))
    y = rng.normal(0.0, 1.0, (reps, n2))
    e = smd_hedges(x.mean(1), x.std(1, ddof=1), n1, y.mean(1), y.std(1, ddof=1), n2)
    g = np.asarray(e.yi)
    assert g.mean() == pytest.approx(delta, abs=0.01)  # J removes the small-sample bias
    assert np.mean(e.vi) == pytest.approx(g.var(ddof=1), rel=0.05)


# ------------------------------------------------------------ swapping arms (property)

arm = st.tuples(st.floats(0.5, 500), st.floats(0.01, 100), st.integers(2, 500))


@settings(max_examples=60, deadline=None)
@given(a=arm, b=arm)
def test_swapping_arms_flips_sign(a, b) -> None:
    for fn in (mean_difference, smd_hedges, ratio_of_means):
        e1 = fn(a[0], a[1], a[2], b[0], b[1], b[2])
        e2 = fn(b[0], b[1], b[2], a[0], a[1], a[2])
        assert e1.yi == pytest.approx(-e2.yi, rel=1e-9, abs=1e-12)
        assert e1.vi == pytest.approx(e2.vi, rel=1e-9)


def test_rom_rejects_non_positive_means() -> None:
    with pytest.raises(ValueError):
        ratio_of_means(-1.0, 1.0, 10, 2.0, 1.0, 10)


def test_effect_sei() -> None:
    e = mean_difference(1.0, 2.0, 4, 0.0, 2.0, 4)
    assert e.sei == pytest.approx(math.sqrt(2.0))


# ------------------------------------------------------- geometric means of two arms


def test_ratio_of_geometric_means_from_simulated_arms() -> None:
    """Log ratio and variance equal the log-scale mean difference and se1^2 + se2^2 of the
    samples behind each arm's reported GM and t CI (n < 60) or z CI (n unknown)."""
    rng = np.random.default_rng(2008)
    x1, x2 = rng.normal(1.2, 0.5, 25), rng.normal(0.9, 0.3, 40)
    rows = []
    for x, n in ((x1, 25), (x2, 40)):
        se = x.std(ddof=1) / math.sqrt(n)
        t = stats.t.ppf(0.975, n - 1)
        rows.append((math.exp(x.mean()), math.exp(x.mean() - t * se),
                     math.exp(x.mean() + t * se), se))
    (g1, l1, u1, se1), (g2, l2, u2, se2) = rows
    e = ratio_of_geometric_means(g1, l1, u1, g2, l2, u2, n1=25, n2=40)
    assert e.yi == pytest.approx(x1.mean() - x2.mean(), rel=1e-12)
    assert e.vi == pytest.approx(se1**2 + se2**2, rel=1e-9)
    assert e.derivation == (
        "ROM = log(GM1/GM2), vi = se1^2 + se2^2 with se_i from the CI of each geometric mean "
        "on the log scale (SE from 95% CI (se = width/(2*t[n-1 df])); "
        "SE from 95% CI (se = width/(2*t[n-1 df])))")
    # n unknown (None or NaN): z quantiles, as for a large trial
    z = stats.norm.ppf(0.975)
    e_z = ratio_of_geometric_means(g1, l1, u1, g2, l2, u2, n1=float("nan"))
    vz1 = ((math.log(u1) - math.log(l1)) / (2 * z)) ** 2
    vz2 = ((math.log(u2) - math.log(l2)) / (2 * z)) ** 2
    assert e_z.vi == pytest.approx(vz1 + vz2, rel=1e-9)
    assert e_z.derivation.count("(2*z)") == 2
    mixed = ratio_of_geometric_means(g1, l1, u1, g2, l2, u2, n1=25).derivation
    assert mixed.endswith("(SE from 95% CI (se = width/(2*t[n-1 df])); "
                          "SE from 95% CI (se = width/(2*z)))")
    # a 90% interval is narrower for the same SE
    z90 = stats.norm.ppf(0.95)
    e90 = ratio_of_geometric_means(2.0, 2.0 * math.exp(-z90 * 0.1), 2.0 * math.exp(z90 * 0.1),
                                   1.0, math.exp(-z90 * 0.2), math.exp(z90 * 0.2), level=0.9)
    assert e90.vi == pytest.approx(0.1**2 + 0.2**2, rel=1e-9)
    assert "90% CI" in e90.derivation


def test_ratio_of_geometric_means_accepts_limits_at_the_mean_and_below_one() -> None:
    # GMs below 1 (log < 0) are valid; a GM equal to a CI limit lies inside its closed CI
    e = ratio_of_geometric_means(0.5, 0.4, 0.6, 0.8, 0.8, 0.9)
    assert e.yi == pytest.approx(math.log(0.5 / 0.8))
    e = ratio_of_geometric_means(0.6, 0.4, 0.6, 0.9, 0.8, 0.9)
    assert e.yi == pytest.approx(math.log(0.6 / 0.9))
    e = ratio_of_geometric_means(0.4, 0.4, 0.6, 0.9, 0.8, 0.9)
    assert e.yi == pytest.approx(math.log(0.4 / 0.9))


def test_single_arm_rom_accepts_positive_means_below_one() -> None:
    e = single_arm_change(0.5, 0.1, 0.6, 0.1, 10, 0.5, "ROM")
    assert e.yi == pytest.approx(math.log(1.2))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((2.0, 1.5, 2.5, 0.0, 1.0, 2.0), "geometric means and their CI limits must be positive"),
        ((2.0, 1.5, 2.5, 1.0, -1.0, 2.0), "geometric means and their CI limits must be positive"),
        ((2.0, 1.5, math.inf, 1.0, 0.5, 2.0),
         "geometric means and their CI limits must be positive"),
        ((3.0, 1.5, 2.5, 1.0, 0.5, 2.0), "a geometric mean lies outside its CI"),
        ((2.0, 1.5, 2.5, 0.4, 0.5, 2.0), "a geometric mean lies outside its CI"),
    ],
)
def test_ratio_of_geometric_means_rejects_bad_input(args, message) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        ratio_of_geometric_means(*args)


# ------------------------------------------------------------- recorded derivations
# The effect-size table records, per trial, how each number was obtained; a reader checks the
# formula named there against the method sections cited in this module's references.


@pytest.mark.parametrize(
    ("call", "derivation"),
    [
        (lambda: sd_from_se(2.0, 25), "SD from SE (sd = se*sqrt(n))"),
        (lambda: se_from_ci(0.0, 1.0, 25), "SE from 95% CI (se = width/(2*t[n-1 df]))"),
        (lambda: se_from_ci(0.0, 1.0, 25, df=48), "SE from 95% CI (se = width/(2*t[given df]))"),
        (lambda: se_from_ci(0.0, 1.0, 25, level=0.9, dist="z"),
         "SE from 90% CI (se = width/(2*z))"),
        (lambda: se_from_p(1.0, 0.05), "SE from two-sided p (se = |est|/z[1-p/2])"),
        (lambda: se_from_p(1.0, 0.05, 30), "SE from two-sided p (se = |est|/t[1-p/2, df])"),
        (lambda: mean_sd_from_median(30, 5, 4, 7, 2, 10)[0],
         "mean from median, IQR and range (Luo 2018)"),
        (lambda: mean_sd_from_median(30, 5, 4, 7, 2, 10)[1],
         "SD from median, IQR and range (Shi 2020)"),
        (lambda: mean_sd_from_median(30, 5, 4, 7, 2, 10, "wan", "wan")[0],
         "mean from median, IQR and range (Wan 2014)"),
        (lambda: mean_sd_from_median(30, 5, 4, 7, 2, 10, "wan", "wan")[1],
         "SD from median, IQR and range (Wan 2014)"),
        (lambda: mean_sd_from_median(30, 5, minimum=2, maximum=10)[0],
         "mean from median and range (Luo 2018)"),
        (lambda: mean_sd_from_median(30, 5, minimum=2, maximum=10)[1],
         "SD from median and range (Wan 2014)"),
        (lambda: mean_sd_from_median(30, 5, q1=4, q3=7)[1], "SD from median and IQR (Wan 2014)"),
        (lambda: mean_sd_from_median(30, 5, q1=4, q3=7, mean_method="wan")[0],
         "mean from median and IQR (Wan 2014)"),
        (lambda: geometric_to_log_scale(2.0, 30, gsd=1.5)[0], "log-scale mean = log(GM)"),
        (lambda: geometric_to_log_scale(2.0, 30, gsd=1.5)[1], "log-scale SD = log(GSD)"),
        (lambda: geometric_to_log_scale(2.0, 30, 1.5, 2.5)[0], "log-scale mean = log(GM)"),
        (lambda: geometric_to_log_scale(2.0, 30, 1.5, 2.5)[1],
         "log-scale SD from CI of GM (SE from 95% CI (se = width/(2*t[n-1 df])) on log scale; "
         "sd = se*sqrt(n))"),
        (lambda: arithmetic_from_lognormal(1.0, 0.5)[0], "mean = exp(mu + s^2/2) (log-normal)"),
        (lambda: arithmetic_from_lognormal(1.0, 0.5)[1], "sd = mean*sqrt(exp(s^2)-1) (log-normal)"),
        (lambda: change_sd(3.0, 4.0, 0.5),
         "change SD from baseline/follow-up SDs with r=0.5 (sqrt(sdb^2+sdf^2-2r*sdb*sdf))"),
        (lambda: change_sd([3.0, 1.0], [4.0, 1.0], [0.5, 0.2]),
         "change SD from baseline/follow-up SDs with r=given (sqrt(sdb^2+sdf^2-2r*sdb*sdf))"),
        (lambda: correlation_from_change_sd(3.0, 4.0, 5.0), "r = (sdb^2+sdf^2-sdc^2)/(2*sdb*sdf)"),
        (lambda: mean_difference(1, 1, 10, 0, 1, 10), "MD = m1-m2, vi = sd1^2/n1 + sd2^2/n2"),
        (lambda: smd_hedges(1, 1, 10, 0, 1, 10),
         "SMD = J*(m1-m2)/sd_pooled with exact J (Hedges g), "
         "vi = 1/n1+1/n2+g^2/(2(n1+n2)) (metafor vtype LS)"),
        (lambda: ratio_of_means(2, 1, 10, 1, 1, 10),
         "ROM = log(m1/m2), vi = sd1^2/(n1 m1^2) + sd2^2/(n2 m2^2) (delta method)"),
        (lambda: single_arm_change(10, 2, 12, 2, 20, 0.5),
         "within-arm MD = mf-mb, vi = sd_change^2/n"),
        (lambda: single_arm_change(10, 2, 12, 2, 20, 0.5, "SMD"),
         "within-arm SMD standardised by baseline SD (metafor SMCR), vi = 2(1-r)/n + yi^2/(2n)"),
        (lambda: single_arm_change(10, 2, 12, 2, 20, 0.5, "ROM"),
         "within-arm log ratio of means (metafor ROMC), delta-method variance with r"),
    ],
)
def test_derivation_names_the_formula_used(call, derivation: str) -> None:
    assert call().derivation == derivation


def test_scalars_in_scalars_out_and_missing_values_stay_missing() -> None:
    assert isinstance(sd_from_se(2.0, 25).value, float)
    assert isinstance(mean_difference(1.0, 1.0, 10, 0.0, 1.0, 10).vi, float)
    # a column read with gaps (object dtype holding None) gives NaN in the gaps
    m1 = np.array([5.0, None], dtype=object)
    e = mean_difference(m1, [1.0, 1.0], [10, 10], [4.0, 4.0], [1.0, 1.0], [10, 10])
    assert e.yi[0] == pytest.approx(1.0) and np.isnan(e.yi[1])


def test_t_quantiles_below_sixty_z_from_sixty() -> None:
    """Cochrane Handbook 6.5.2.2: t with n - 1 df for n < 60, z from n = 60 on."""
    z, t58 = stats.norm.ppf(0.975), stats.t.ppf(0.975, 58)
    assert se_from_ci(0.0, 2 * z, 60).value == pytest.approx(1.0, rel=1e-12)
    assert se_from_ci(0.0, 2 * t58, 59).value == pytest.approx(1.0, rel=1e-12)
    # geometric means follow the same rule unless a distribution is forced
    _, sd_z = geometric_to_log_scale(1.0, 25, math.exp(-z * 0.2), math.exp(z * 0.2), dist="z")
    assert sd_z.value == pytest.approx(0.2 * 5, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: se_from_ci(0.0, 1.0, 25, dist="chi"), "dist must be 't' or 'z', not 'chi'"),
        (lambda: se_from_ci(0.0, 1.0, dist="t"), r"t quantiles need n \(df = n-1\) or df"),
        (lambda: se_from_p(1.0, 1.5), "p must lie strictly between 0 and 1"),
        (lambda: mean_sd_from_median(20, 5.0, q1=3.0),
         r"need q1 and q3, or minimum and maximum \(or both\)"),
        (lambda: mean_sd_from_median(20, 5.0, minimum=3.0),
         r"need q1 and q3, or minimum and maximum \(or both\)"),
        (lambda: mean_sd_from_median(20, 5.0, 3.0, 7.0, mean_method="hozo"),
         r"mean_method must be 'luo'\|'wan' and sd_method 'shi'\|'wan'"),
        (lambda: mean_sd_from_median(20, 5.0, 3.0, 7.0, sd_method="hozo"),
         r"mean_method must be 'luo'\|'wan' and sd_method 'shi'\|'wan'"),
        (lambda: geometric_to_log_scale(2.0, 30, ci_lower=1.5),
         "need the CI of the geometric mean or the geometric SD"),
        (lambda: ratio_of_means(0.0, 1.0, 10, 2.0, 1.0, 10), "ratio of means needs positive means"),
        (lambda: ratio_of_means(2.0, 1.0, 10, 0.0, 1.0, 10), "ratio of means needs positive means"),
        (lambda: ratio_of_means(2.0, 1.0, 10, -1.0, 1.0, 10),
         "ratio of means needs positive means"),
        (lambda: single_arm_change(2.0, 1.0, -1.0, 1.0, 10, 0.5, "ROM"),
         "ratio of means needs positive means"),
        (lambda: single_arm_change(0.0, 1.0, 1.0, 1.0, 10, 0.5, "ROM"),
         "ratio of means needs positive means"),
        (lambda: single_arm_change(1.0, 1.0, 0.0, 1.0, 10, 0.5, "ROM"),
         "ratio of means needs positive means"),
        (lambda: single_arm_change(1.0, 1.0, 1.0, 1.0, 10, 0.5, "OR"), "unknown measure 'OR'"),
    ],
)
def test_bad_arguments_give_their_message(call, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        call()


def test_wan_sd_for_five_numbers_by_hand() -> None:
    """Wan 2014 eq 12: the average of the range-based and the IQR-based SD estimates."""
    n, a, q1, q3, b = 50, 2.0, 4.0, 7.0, 10.0
    xi = 2 * stats.norm.ppf((n - 0.375) / (n + 0.25))
    eta = 2 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25))
    _, sd = mean_sd_from_median(n, 5.0, q1, q3, a, b, sd_method="wan")
    assert sd.value == pytest.approx(0.5 * ((b - a) / xi + (q3 - q1) / eta), rel=1e-12)
