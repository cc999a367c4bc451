"""Exact posterior of the normal-normal model against brute force and published bayesmeta output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from nutrimeta.models.exact import (
    TauPrior,
    _gauss_legendre,
    exact_posterior,
    typical_within_variance,
)
from nutrimeta.models.frequentist import rma
from nutrimeta.reference_data import EIGHT_SCHOOLS, bcg_data

Y8 = np.array(EIGHT_SCHOOLS["y"])
S8 = np.array(EIGHT_SCHOOLS["sigma"])


@pytest.fixture(autouse=True)
def _fresh_quadrature_rules():
    """Each test computes its Gauss-Legendre rules afresh rather than reading cached ones
    (a cache filled before a mutation test forks would hide mutants of the rule)."""
    _gauss_legendre.cache_clear()
    yield
    _gauss_legendre.cache_clear()


def _trapz_weights(x: np.ndarray) -> np.ndarray:
    w = np.zeros_like(x)
    d = np.diff(x)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def _quantiles_from_grid(x: np.ndarray, dens: np.ndarray, probs) -> np.ndarray:
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x))])
    cum /= cum[-1]
    return np.interp(probs, cum, x)


@pytest.fixture(scope="module")
def schools_brute_force():
    """Joint posterior of (mu, tau) on a fine 2-D grid: flat mu, tau ~ HalfCauchy(5)."""
    tau = np.linspace(0.0, 100.0, 2001)
    mu = np.linspace(-60.0, 80.0, 1401)
    logp = stats.halfcauchy(scale=5).logpdf(tau)[:, None] + np.zeros((1, mu.size))
    for yi, si in zip(Y8, S8, strict=True):
        v = si**2 + tau[:, None] ** 2
        logp += -0.5 * np.log(v) - 0.5 * (yi - mu[None, :]) ** 2 / v
    p = np.exp(logp - logp.max())
    wt, wm = _trapz_weights(tau), _trapz_weights(mu)
    p /= wt @ p @ wm
    p_tau = p @ wm
    p_mu = wt @ p
    return {"tau": tau, "mu": mu, "p": p, "p_tau": p_tau, "p_mu": p_mu, "wt": wt, "wm": wm}


@pytest.fixture(scope="module")
def schools_exact():
    return exact_posterior(Y8, S8, TauPrior.half_cauchy(5.0))


def test_eight_schools_vs_2d_grid(schools_exact, schools_brute_force):
    bf, post = schools_brute_force, schools_exact
    mu, tau = bf["mu"], bf["tau"]
    mu_mean = bf["wm"] @ (bf["p_mu"] * mu)
    mu_sd = math.sqrt(bf["wm"] @ (bf["p_mu"] * (mu - mu_mean) ** 2))
    tau_mean = bf["wt"] @ (bf["p_tau"] * tau)
    tau_sd = math.sqrt(bf["wt"] @ (bf["p_tau"] * (tau - tau_mean) ** 2))
    probs = [0.025, 0.5, 0.975]
    assert post.mu.mean == pytest.approx(mu_mean, abs=2e-3)
    assert post.mu.sd == pytest.approx(mu_sd, abs=2e-3)
    np.testing.assert_allclose(
        post.mu.ppf(probs), _quantiles_from_grid(mu, bf["p_mu"], probs), atol=1e-2
    )
    assert post.tau_mean == pytest.approx(tau_mean, abs=2e-3)
    assert post.tau_sd == pytest.approx(tau_sd, abs=2e-3)
    np.testing.assert_allclose(
        post.tau_quantile(probs), _quantiles_from_grid(tau, bf["p_tau"], probs), atol=1e-2
    )
    p_gt0 = bf["wm"][mu > 0] @ bf["p_mu"][mu > 0]
    assert post.mu.prob_gt(0.0) == pytest.approx(p_gt0, abs=2e-3)
    # shrunken effect of school A: E[theta_1 | mu, tau, y] averaged over the joint grid
    a = tau[:, None] ** 2 / (tau[:, None] ** 2 + S8[0] ** 2)
    th_mean = a * Y8[0] + (1 - a) * mu[None, :]
    th1 = bf["wt"] @ (bf["p"] * th_mean) @ bf["wm"]
    assert post.theta(0).mean == pytest.approx(th1, abs=2e-3)
    # predictive: E[theta_new] = E[mu], Var = Var(mu) + E[tau^2]
    pred = post.predictive()
    assert pred.mean == pytest.approx(mu_mean, abs=2e-3)
    e_tau2 = bf["wt"] @ (bf["p_tau"] * tau**2)
    assert pred.var == pytest.approx(mu_sd**2 + e_tau2, rel=2e-3)


def test_bayesmeta_published_jeffreys_example():
    # bayesmeta(c(11,13,16), c(1,1,2), tau.prior="Jeffreys") printed output, reproduced in a
    # public Japanese-language meta-analysis tutorial (section "6.5 bayesmeta package"):
    #   tau: mode 1.39055194, median 2.35487034, mean 3.67647047 (sd NA: infinite)
    #   mu:  median 12.855986, mean 12.980341
    #   theta means 11.4133994, 12.9395931, 14.588030; sds 0.9927761, 0.9349359, 1.888808
    # bayesmeta integrates tau numerically (as here) but represents mu and theta by a
    # DIRECT mixture approximation with KL tolerance delta = 0.01, hence 1e-3 tolerances
    # there (our mu median is confirmed to 1e-9 by adaptive quadrature below).
    y = np.array([11.0, 13.0, 16.0])
    s = np.array([1.0, 1.0, 2.0])

    def jeffreys(t):  # bayesmeta's Jeffreys prior: sqrt(sum((t / (s^2 + t^2))^2))
        t = np.atleast_1d(t)
        return 0.5 * np.log(np.sum((t[:, None] / (s**2 + t[:, None] ** 2)) ** 2, axis=1))

    post = exact_posterior(y, s, TauPrior.custom(jeffreys, "Jeffreys"))
    assert post.log_evidence is None
    assert post.tau_median == pytest.approx(2.35487034, rel=1e-6)
    assert post.tau_mean == pytest.approx(3.67647047, rel=1e-6)
    assert post.tau_mode == pytest.approx(1.39055194, rel=1e-5)
    assert post.mu.mean == pytest.approx(12.980341, abs=1e-3)
    assert post.mu.median == pytest.approx(12.855986, abs=1e-3)
    for i, (m, sd) in enumerate(
        [(11.4133994, 0.9927761), (12.9395931, 0.9349359), (14.588030, 1.888808)]
    ):
        assert post.theta(i).mean == pytest.approx(m, abs=1e-3)
        assert post.theta(i).sd == pytest.approx(sd, abs=1e-3)

    # independent adaptive quadrature (scipy.integrate.quad) of the mu median
    def cond(t):
        w = 1 / (s**2 + t**2)
        b = w @ y / w.sum()
        ll = 0.5 * np.log(w).sum() - 0.5 * np.log(w.sum()) - 0.5 * (w * (y - b) ** 2).sum()
        return math.exp(ll + jeffreys(t)[0]), b, 1 / math.sqrt(w.sum())

    z = integrate.quad(lambda t: cond(t)[0], 0, np.inf, limit=500, epsrel=1e-12)[0]
    med = post.mu.median
    cdf = (
        integrate.quad(
            lambda t: cond(t)[0] * stats.norm.cdf((med - cond(t)[1]) / cond(t)[2]),
            0,
            np.inf,
            limit=500,
            epsrel=1e-12,
        )[0]
        / z
    )
    assert cdf == pytest.approx(0.5, abs=1e-9)


def test_meta_regression_vs_3d_grid():
    rng = np.random.default_rng(7)
    k = 12
    x = rng.uniform(-1, 1, k)
    se = rng.uniform(0.2, 0.5, k)
    y = 0.3 + 0.5 * x + rng.normal(0, np.sqrt(se**2 + 0.3**2))
    X = np.column_stack([np.ones(k), x])
    prior = [(0.0, 2.0), (0.0, 1.0)]
    tp = TauPrior.half_normal(0.5)
    post = exact_posterior(y, se, tp, prior, X, coef_names=["b0", "b1"])

    b0 = np.linspace(-1.5, 2.0, 141)
    h = 4.0 / 140
    b1 = -1.5 + h / 2 + h * np.arange(141)  # 0.5 falls mid-cell (P(b1 > 0.5) below)
    tau = np.linspace(0.0, 2.0, 161)
    B0, B1, T = np.meshgrid(b0, b1, tau, indexing="ij")
    logp = (
        stats.norm(0, 2).logpdf(B0)
        + stats.norm(0, 1).logpdf(B1)
        + stats.halfnorm(scale=0.5).logpdf(T)
    )
    for i in range(k):
        v = se[i] ** 2 + T**2
        logp += -0.5 * np.log(v) - 0.5 * (y[i] - B0 - B1 * x[i]) ** 2 / v
    p = np.exp(logp - logp.max())
    w = (
        _trapz_weights(b0)[:, None, None]
        * _trapz_weights(b1)[None, :, None]
        * _trapz_weights(tau)[None, None, :]
    )
    p *= w / (p * w).sum()

    for name, G in (("b0", B0), ("b1", B1)):
        m = (p * G).sum()
        sd = math.sqrt((p * (G - m) ** 2).sum())
        assert post.coef(name).mean == pytest.approx(m, abs=2e-3)
        assert post.coef(name).sd == pytest.approx(sd, abs=2e-3)
    assert post.tau_mean == pytest.approx((p * T).sum(), abs=2e-3)
    # effect at x = 0.8 minus effect at x = -0.8 (= 1.6 * b1): P(> 0.8)
    diff = post.contrast([1.0, 0.8], [1.0, -0.8])
    assert diff.prob_gt(0.8) == pytest.approx(p[(1.6 * B1) > 0.8].sum(), abs=5e-3)
    eff = post.linear_combination([1.0, 0.5])
    assert eff.mean == pytest.approx((p * (B0 + 0.5 * B1)).sum(), abs=2e-3)
    # evidence: all priors proper, compare with brute-force integral of the grid
    logz_grid = (
        logp.max()
        + math.log((np.exp(logp - logp.max()) * w).sum())
        - k * 0.5 * math.log(2 * math.pi)
    )
    assert post.log_evidence == pytest.approx(logz_grid, abs=2e-3)


def test_tau_prior_to_zero_gives_fixed_effect():
    post = exact_posterior(Y8, S8, TauPrior.half_normal(1e-6))
    w = 1 / S8**2
    assert post.mu.mean == pytest.approx(w @ Y8 / w.sum(), rel=1e-6)
    assert post.mu.sd == pytest.approx(1 / math.sqrt(w.sum()), rel=1e-6)


def test_single_study_flat_mu_tau_posterior_is_prior():
    tp = TauPrior.half_normal(2.0)
    post = exact_posterior([1.3], [0.7], tp)
    assert post.mu.mean == pytest.approx(1.3, abs=1e-10)
    assert post.tau_mean == pytest.approx(2.0 * math.sqrt(2 / math.pi), rel=1e-8)
    assert post.tau_median == pytest.approx(float(tp.ppf(0.5)), rel=1e-8)
    # mu | tau ~ N(y, s^2 + tau^2): Var(mu) = s^2 + E[tau^2] = s^2 + scale^2
    assert post.mu.var == pytest.approx(0.49 + 4.0, rel=1e-8)


def test_conjugate_limit_with_proper_mu_prior():
    # tau essentially 0 and mu ~ N(1, 2^2): mu posterior is the conjugate normal
    post = exact_posterior(Y8, S8, TauPrior.exponential(1e7), mu_prior=(1.0, 2.0))
    prec = (1 / S8**2).sum() + 1 / 4
    mean = ((Y8 / S8**2).sum() + 1 / 4) / prec
    assert post.mu.mean == pytest.approx(mean, rel=1e-6)
    assert post.mu.sd == pytest.approx(1 / math.sqrt(prec), rel=1e-6)


def test_evidence_against_quadrature():
    tp = TauPrior.half_cauchy(5.0)
    post = exact_posterior(Y8, S8, tp, mu_prior=(0.0, 20.0))

    def integrand(t):
        cov = np.diag(S8**2 + t**2) + 400.0
        return math.exp(stats.multivariate_normal(np.zeros(8), cov).logpdf(Y8)) * tp.pdf(t)

    z = sum(
        integrate.quad(integrand, a, b, limit=200, epsrel=1e-12)[0]
        for a, b in ((0, 50), (50, 1000), (1000, np.inf))
    )
    assert post.log_evidence == pytest.approx(math.log(z), abs=1e-7)


def test_grid_refinement_and_error_estimate(schools_exact):
    fine = exact_posterior(Y8, S8, TauPrior.half_cauchy(5.0), grid=(256, 16))
    assert schools_exact.integration_error < 1e-5
    assert schools_exact.mu.mean == pytest.approx(fine.mu.mean, rel=1e-9)
    assert schools_exact.mu.sd == pytest.approx(fine.mu.sd, rel=1e-9)
    assert schools_exact.tau_quantile(0.975) == pytest.approx(fine.tau_quantile(0.975), rel=1e-8)
    assert schools_exact.tau_cdf(schools_exact.tau_median) == pytest.approx(0.5, abs=1e-10)
    assert schools_exact.weights.sum() == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize(
    "prior",
    [
        TauPrior.half_normal(3.0),
        TauPrior.half_cauchy(3.0),
        TauPrior.half_student_t(3, 3.0),
        TauPrior.exponential(0.3),
        TauPrior.uniform(10.0),
    ],
    ids=lambda p: p.label,
)
def test_tau_priors_are_normalised_and_labelled(prior):
    z = integrate.quad(lambda t: float(prior.pdf(t)), 0, prior.upper, limit=200)[0]
    assert z == pytest.approx(1.0, abs=1e-7)
    assert prior.label.startswith("tau ~ ")
    post = exact_posterior(Y8, S8, prior)
    assert post.integration_error < 1e-5
    assert post.tau_quantile(0.999) <= prior.upper
    json.dumps(post.summary())


def test_uniform_prior_truncates_posterior():
    post = exact_posterior(Y8, S8, TauPrior.uniform(4.0))
    assert post.tau_cdf(4.0) == 1.0
    assert post.tau_quantile(0.99) < 4.0
    assert post.tau_pdf(4.5) == 0.0


def test_sampling_matches_analytic_moments(schools_exact):
    d = schools_exact.sample(200_000, np.random.default_rng(3))
    post = schools_exact
    assert d["mu"].mean() == pytest.approx(post.mu.mean, abs=4 * post.mu.sd / math.sqrt(2e5))
    assert d["tau"].mean() == pytest.approx(post.tau_mean, abs=4 * post.tau_sd / math.sqrt(2e5))
    assert np.quantile(d["tau"], 0.9) == pytest.approx(post.tau_quantile(0.9), rel=2e-2)
    pred = post.predictive()
    assert d["theta_new"].std() == pytest.approx(pred.sd, rel=2e-2)


def test_i2_uses_higgins_thompson_typical_variance():
    bcg = bcg_data()
    post = exact_posterior(bcg["yi"], bcg["sei"], TauPrior.half_normal(1.0))
    fit = rma(bcg["yi"], bcg["vi"])
    # for the model without moderators metafor's (k-1)/tr(P) equals Higgins & Thompson's s^2
    assert 100 * post.i2_of_tau(fit.tau) == pytest.approx(fit.i2, rel=1e-10)
    assert post.s2_typical == pytest.approx(typical_within_variance(bcg["sei"]))
    s = post.i2_summary()
    assert s["q025"] < s["median"] < s["q975"]
    assert s["median"] == pytest.approx(float(post.i2_of_tau(post.tau_median)))


def test_shrinkage_towards_estimates_when_heterogeneity_is_huge():
    y = np.array([-100.0, 0.0, 100.0])
    s = np.ones(3)
    post = exact_posterior(y, s, TauPrior.half_cauchy(50.0))
    # tau is large, so the shrunken effects stay at the estimates with sd close to s_i
    for i in range(3):
        th = post.theta(i)
        assert th.mean == pytest.approx(y[i], abs=0.05)
        assert th.sd == pytest.approx(1.0, abs=0.01)
    shr = exact_posterior(Y8, S8, TauPrior.half_cauchy(5.0)).shrinkage_summary()
    assert len(shr) == 8
    assert all(r["q025"] < r["mean"] < r["q975"] for r in shr)
    # school A (largest estimate) is pulled towards the mean
    assert shr[0]["mean"] < Y8[0]


def test_summary_shape(schools_exact):
    s = schools_exact.summary(thresholds=(0.0, 5.0))
    assert set(s["parameters"]) == {"mu", "tau"}
    assert {"mean", "sd", "median", "q025", "q975"} <= set(s["parameters"]["mu"])
    assert "P(mu > 5)" in s["probabilities"]
    # I² = tau²/(tau² + s²), s² = (k-1) Σw / ((Σw)² - Σw²) (Higgins & Thompson 2002), is
    # increasing in tau, so its quantiles are those of tau mapped through it
    w = 1 / np.asarray(S8) ** 2
    s2 = (len(w) - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    for key, p in (("q025", 0.025), ("q975", 0.975)):
        t2 = float(schools_exact.tau_quantile(p)) ** 2
        assert s["i2"][key] == pytest.approx(t2 / (t2 + s2), rel=1e-6)
    assert typical_within_variance(np.full(5, 0.3)) == pytest.approx(0.09, rel=1e-12)
    json.dumps(s)
    tab = schools_exact.tau_table(n=400)
    g, dens = np.array(tab["grid"]), np.array(tab["posterior"])
    assert np.sum(0.5 * (dens[1:] + dens[:-1]) * np.diff(g)) == pytest.approx(0.995, abs=1e-3)
    assert tab["prior"][0] == pytest.approx(2 / (math.pi * 5.0))


def test_input_validation():
    with pytest.raises(ValueError):
        exact_posterior([1.0, 2.0], [1.0], TauPrior.half_normal(1))
    with pytest.raises(ValueError):
        exact_posterior([1.0, 2.0], [1.0, 0.0], TauPrior.half_normal(1))
    with pytest.raises(ValueError):  # flat priors on 2 coefficients with one study
        exact_posterior([1.0], [1.0], TauPrior.half_normal(1), X=[[1.0, 2.0]])
    with pytest.raises(ValueError):
        TauPrior.half_normal(-1.0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-5, 5), st.floats(0.1, 3.0)), min_size=1, max_size=15),
    st.floats(0.05, 5.0),
)
def test_flat_prior_mean_is_a_weighted_average(data, scale):
    y = np.array([d[0] for d in data])
    se = np.array([d[1] for d in data])
    post = exact_posterior(y, se, TauPrior.half_normal(scale))
    m = post.mu.mean
    assert y.min() - 1e-9 <= m <= y.max() + 1e-9
    q = post.mu.ppf([0.1, 0.5, 0.9])
    assert q[0] < q[1] < q[2]
    assert post.integration_error < 1e-4
