"""Frequentist meta-analysis against metafor's published BCG results and statsmodels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from nutrimeta.models.frequentist import _q_gen, egger_test, rma
from nutrimeta.reference_data import bcg_data, escalc_rr


@pytest.fixture(scope="module")
def bcg():
    return bcg_data()


def test_escalc_rr_matches_metafor_printout(bcg):
    # First six (yi, vi) of escalc(measure="RR", ..., data=dat.bcg) as printed in a public
    # metafor tutorial (rounded to 4 decimals, as printed).
    yi = [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861]
    vi = [0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069]
    np.testing.assert_allclose(bcg["yi"][:6], yi, atol=5e-5)
    np.testing.assert_allclose(bcg["vi"][:6], vi, atol=5e-5)


def test_escalc_zero_cell_correction():
    # metafor's add=1/2, to="only0": 1/2 added to every cell of a table with a zero cell
    yi, vi = escalc_rr([0, 3], [10, 7], [2, 3], [8, 7])
    a, b, c, d = 0.5, 10.5, 2.5, 8.5
    assert yi[0] == pytest.approx(np.log((a / (a + b)) / (c / (c + d))))
    assert vi[0] == pytest.approx(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d))
    assert yi[1] == pytest.approx(0.0)


def test_reml_bcg_matches_metafor(bcg):
    # metafor::rma(yi, vi, data=dat) (REML) on dat.bcg log risk ratios, as printed in the
    # RoBMA vignette "Bayesian Meta-Analysis" (CRAN, vignettes/v02-bayesian-meta-analysis):
    # tau^2 0.3132 (SE 0.1664), I^2 92.22%, H^2 12.86, Q(df=12) 152.2330,
    # estimate -0.7145, se 0.1798, z -3.9744, CI [-1.0669, -0.3622];
    # confint(): tau^2 CI [0.1197, 1.1115] (Q-profile).
    r = rma(bcg["yi"], bcg["vi"], method="REML")
    assert r.converged
    assert r.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert r.se == pytest.approx(0.1798, abs=5e-5)
    assert r.z == pytest.approx(-3.9744, abs=5e-4)
    assert r.ci_lower == pytest.approx(-1.0669, abs=5e-5)
    assert r.ci_upper == pytest.approx(-0.3622, abs=5e-5)
    assert r.tau2 == pytest.approx(0.3132, abs=5e-5)
    assert r.tau2_se == pytest.approx(0.1664, abs=5e-5)
    assert r.i2 == pytest.approx(92.22, abs=5e-3)
    assert r.h2 == pytest.approx(12.86, abs=5e-3)
    q_stat = r.Q
    assert q_stat == pytest.approx(152.2330, abs=5e-4)
    assert r.Q_df == 12
    assert r.tau2_ci[0] == pytest.approx(0.1197, abs=5e-5)
    assert r.tau2_ci[1] == pytest.approx(1.1115, abs=5e-5)
    assert r.level == 0.95


def test_dl_and_ee_bcg_match_metafor(bcg):
    # metafor tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r (checked against
    # Stata's metan): DL estimate -0.7141, CI [-1.0644, -0.3638], z -3.9952, tau^2 0.3088,
    # I^2 92.1173; FE/EE estimate -0.4303, CI [-0.5097, -0.3509], z -10.6247, QE 152.2330.
    dl = rma(bcg["yi"], bcg["vi"], method="DL")
    assert dl.estimate == pytest.approx(-0.7141, abs=5e-5)
    assert dl.ci_lower == pytest.approx(-1.0644, abs=5e-5)
    assert dl.ci_upper == pytest.approx(-0.3638, abs=5e-5)
    assert dl.z == pytest.approx(-3.9952, abs=5e-4)
    assert dl.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert dl.i2 == pytest.approx(92.1173, abs=5e-4)
    ee = rma(bcg["yi"], bcg["vi"], method="EE")
    assert ee.estimate == pytest.approx(-0.4303, abs=5e-5)
    assert ee.ci_lower == pytest.approx(-0.5097, abs=5e-5)
    assert ee.ci_upper == pytest.approx(-0.3509, abs=5e-5)
    assert ee.z == pytest.approx(-10.6247, abs=5e-4)
    q_stat = ee.Q
    assert q_stat == pytest.approx(152.2330, abs=5e-4)


def test_pm_matches_metafor_iterated_dl(bcg):
    # metafor tests/testthat/test_misc_rma_uni.r: method="DLIT" (iterated DL, whose fixed
    # point is the Paule-Mandel estimate) gives tau^2 0.3181 on dat.bcg.
    assert rma(bcg["yi"], bcg["vi"], method="PM").tau2 == pytest.approx(0.3181, abs=5e-5)


@pytest.mark.parametrize(("ours", "theirs"), [("DL", "dl"), ("PM", "pm")])
def test_against_statsmodels_combine_effects(bcg, ours, theirs):
    # statsmodels.stats.meta_analysis.combine_effects: an independent implementation
    r = rma(bcg["yi"], bcg["vi"], method=ours)
    c = combine_effects(bcg["yi"].to_numpy(), bcg["vi"].to_numpy(), method_re=theirs)
    assert r.tau2 == pytest.approx(c.tau2, rel=1e-8)
    assert r.estimate == pytest.approx(c.mean_effect_re, rel=1e-8)
    assert r.se == pytest.approx(c.sd_eff_w_re, rel=1e-8)
    q_stat = r.Q
    assert q_stat == pytest.approx(c.q, rel=1e-10)
    # Knapp-Hartung (HKSJ) standard error
    rk = rma(bcg["yi"], bcg["vi"], method=ours, knha=True)
    assert rk.se == pytest.approx(c.sd_eff_w_re_hksj, rel=1e-8)
    lo, hi = c.conf_int(use_t=True)[3]  # random effects, HKSJ variance, t(k-1)
    assert (rk.ci_lower, rk.ci_upper) == pytest.approx((lo, hi), rel=1e-8)


def test_meta_regression_ablat_matches_metafor(bcg):
    # metafor::rma(yi, vi, mods = ~ ablat, data=dat) (REML), as printed in the RoBMA vignette
    # "Bayesian Meta-Analysis": tau^2 0.0764 (SE 0.0591), I^2 68.39%, H^2 3.16, R^2 75.62%,
    # QE(df=11) 30.7331, QM(df=1) 16.3571; intrcpt 0.2515 (se 0.2491, z 1.0095, p 0.3127,
    # CI [-0.2368, 0.7397]); ablat -0.0291 (se 0.0072, z -4.0444, CI [-0.0432, -0.0150]).
    # metafor stops REML iterations at a tau^2 change < 1e-5; printed values derived from the
    # estimates (CI bounds, z, R^2, QM) carry that small difference, hence some wider
    # tolerances below.
    r = rma(bcg["yi"], bcg["vi"], bcg["ablat"], coef_names=["ablat"])
    b0, b1 = r.coefficients
    assert (b0["name"], b1["name"]) == ("intrcpt", "ablat")
    assert b0["estimate"] == pytest.approx(0.2515, abs=5e-5)
    assert b0["se"] == pytest.approx(0.2491, abs=5e-5)
    assert b0["statistic"] == pytest.approx(1.0095, abs=5e-4)
    assert b0["p_value"] == pytest.approx(0.3127, abs=5e-5)
    assert b0["ci_lower"] == pytest.approx(-0.2368, abs=1e-4)
    assert b0["ci_upper"] == pytest.approx(0.7397, abs=5e-5)
    assert b1["estimate"] == pytest.approx(-0.0291, abs=5e-5)
    assert b1["se"] == pytest.approx(0.0072, abs=5e-5)
    assert b1["statistic"] == pytest.approx(-4.0444, abs=2e-3)
    assert b1["ci_lower"] == pytest.approx(-0.0432, abs=5e-5)
    assert b1["ci_upper"] == pytest.approx(-0.0150, abs=5e-5)
    assert r.tau2 == pytest.approx(0.0764, abs=1e-4)  # ours 0.076348 (REML maximum)
    assert r.tau2_se == pytest.approx(0.0591, abs=1e-4)
    assert r.i2 == pytest.approx(68.39, abs=5e-3)
    assert r.h2 == pytest.approx(3.16, abs=5e-3)
    r2, qe, qm = r.R2, r.Q, r.QM
    assert r2 == pytest.approx(75.62, abs=0.01)
    assert qe == pytest.approx(30.7331, abs=5e-4)
    assert r.Q_df == 11
    assert qm == pytest.approx(16.3571, abs=2e-3)
    assert r.QM_df == 1


def test_qprofile_ci_solves_the_q_equations(bcg):
    y, v = bcg["yi"].to_numpy(), bcg["vi"].to_numpy()
    r = rma(y, v, level=0.9)
    X = np.ones((y.size, 1))
    lo, hi = r.tau2_ci
    assert _q_gen(lo, y, v, X) == pytest.approx(stats.chi2.ppf(0.95, 12), rel=1e-8)
    assert _q_gen(hi, y, v, X) == pytest.approx(stats.chi2.ppf(0.05, 12), rel=1e-8)


def test_homogeneous_data_give_zero_tau2():
    y = np.array([0.10, 0.11, 0.09, 0.10])
    v = np.full(4, 0.04)
    for m in ("REML", "DL", "PM"):
        r = rma(y, v, method=m)
        assert r.tau2 == 0.0
        assert r.i2 == 0.0
        assert r.tau2_ci[0] == 0.0
    assert rma(y, v).estimate == pytest.approx(0.1, abs=1e-12)


def test_egger_classical_against_statsmodels_ols(bcg):
    y, se = bcg["yi"].to_numpy(), bcg["sei"].to_numpy()
    e = egger_test(y, se)
    ols = sm.OLS(y / se, sm.add_constant(1.0 / se)).fit()
    assert e.intercept == pytest.approx(ols.params[0], rel=1e-10)
    assert e.se == pytest.approx(ols.bse[0], rel=1e-10)
    assert e.p_value == pytest.approx(ols.pvalues[0], rel=1e-8)
    assert e.slope == pytest.approx(ols.params[1], rel=1e-10)
    assert e.df == 11
    assert e.caveat == ""
    # same as metafor's regtest(model="lm", predictor="sei"): WLS of y on se, weights 1/v
    wls = sm.WLS(y, sm.add_constant(se), weights=1.0 / se**2).fit()
    assert e.intercept == pytest.approx(wls.params[1], rel=1e-10)
    assert e.statistic == pytest.approx(wls.tvalues[1], rel=1e-8)


def test_egger_rma_variant_and_small_k_caveat(bcg):
    e = egger_test(bcg["yi"], bcg["sei"], method="rma")
    fit = rma(bcg["yi"], bcg["vi"], bcg["sei"], method="REML")
    assert e.intercept == pytest.approx(fit.coefficients[1]["estimate"])
    assert e.p_value == pytest.approx(fit.coefficients[1]["p_value"])
    small = egger_test(bcg["yi"][:6], bcg["sei"][:6])
    assert "low power" in small.caveat


def test_to_dict_is_json_serialisable(bcg):
    r = rma(bcg["yi"], bcg["vi"], bcg["ablat"])
    d = r.to_dict()
    json.dumps(d)
    assert d["coefficients"][1]["name"] == "mod1"
    json.dumps(egger_test(bcg["yi"], bcg["sei"]).to_dict())


def test_input_validation():
    with pytest.raises(ValueError):
        rma([0.1, 0.2], [0.1])
    with pytest.raises(ValueError):
        rma([0.1, 0.2], [0.1, -0.1])
    with pytest.raises(ValueError):
        rma([0.1, 0.2], [0.1, 0.1], [1.0, 2.0])  # k = p
