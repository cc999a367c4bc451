"""Statistical results against independent references: published metafor output, closed
forms derived by hand, and high-accuracy numerical integration (scipy).

Each check is chosen so that a small, plausible bug changes the result beyond its tolerance
(degrees of freedom of Knapp–Hartung with a moderator, tau² in the prediction interval, k - 1
in the typical within-study variance, the REML score equation, the accuracy of the
quadrature).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from nutrimeta.models.bayes import ModelData, Priors, build_model
from nutrimeta.models.exact import TauPrior, exact_posterior
from nutrimeta.models.frequentist import rma
from nutrimeta.reference_data import bcg_data

Y8 = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
S8 = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


@pytest.fixture(scope="module")
def bcg():
    return bcg_data()


# ----------------------------------------------------------------- Knapp–Hartung (metafor)


def test_knapp_hartung_with_moderator_matches_metafor(bcg):
    """``rma(yi, vi, mods = ~ ablat, data = dat, test = "knha")`` on dat.bcg, as printed in
    metafor's README (github.com/wviechtb/metafor, "mixed-effects meta-regression model"):
    intrcpt 0.2515 (se 0.2839, t 0.8857, df 11, p 0.3948, CI [-0.3735, 0.8764]); ablat
    -0.0291 (se 0.0082, t -3.5483, p 0.0046, CI [-0.0472, -0.0111]); F(1, 11) = 12.5905,
    p 0.0046. The t quantiles and p values use k - p = 11 degrees of freedom."""
    r = rma(bcg["yi"], bcg["vi"], bcg["ablat"], knha=True)
    b0, b1 = r.coefficients
    assert r.df == 11
    for got, want, tol in (
        (b0["estimate"], 0.2515, 5e-5), (b0["se"], 0.2839, 5e-5),
        (b0["statistic"], 0.8857, 5e-4), (b0["p_value"], 0.3948, 5e-4),
        (b0["ci_lower"], -0.3735, 2e-4), (b0["ci_upper"], 0.8764, 2e-4),
        (b1["estimate"], -0.0291, 5e-5), (b1["se"], 0.0082, 5e-5),
        (b1["statistic"], -3.5483, 2e-3), (b1["p_value"], 0.0046, 5e-5),
        (b1["ci_lower"], -0.0472, 5e-5), (b1["ci_upper"], -0.0111, 5e-5),
        (r.QM, 12.5905, 1e-2), (r.QM_p, 0.0046, 5e-5),
    ):
        assert got == pytest.approx(want, abs=tol)
    # the same t quantile, hand-derived: CI half-width = t(0.975, 11) * se
    assert b1["ci_upper"] - b1["estimate"] == pytest.approx(
        stats.t.ppf(0.975, 11) * b1["se"], rel=1e-10)


def test_knapp_hartung_intercept_only_matches_metafor(bcg):
    """``rma(yi, vi, data = dat, test = "knha")`` (metafor README): estimate -0.7145,
    se 0.1808, t -3.9522, df 12, p 0.0019, CI [-1.1084, -0.3206]; and
    ``predict(res, transf = exp)``: CI [0.33, 0.73], PI [0.14, 1.76] (two decimals)."""
    r = rma(bcg["yi"], bcg["vi"], knha=True)
    assert r.df == 12
    assert r.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert r.se == pytest.approx(0.1808, abs=5e-5)
    assert r.z == pytest.approx(-3.9522, abs=5e-4)
    assert r.p_value == pytest.approx(0.0019, abs=5e-5)
    assert (r.ci_lower, r.ci_upper) == pytest.approx((-1.1084, -0.3206), abs=5e-5)
    assert np.round(np.exp([r.pi_lower, r.pi_upper]), 2).tolist() == [0.14, 1.76]


# ------------------------------------------------------------------- prediction interval


def test_prediction_interval_includes_tau2(bcg):
    """Wald PI = mu ± z(0.975) sqrt(se² + tau²) with metafor's published REML estimate
    -0.7145, se 0.1798, tau² 0.3132 (see test_frequentist): [-1.8667, 0.4377]."""
    r = rma(bcg["yi"], bcg["vi"])
    half = stats.norm.ppf(0.975) * math.sqrt(0.1798**2 + 0.3132)
    assert (r.pi_lower, r.pi_upper) == pytest.approx((-0.7145 - half, -0.7145 + half),
                                                     abs=3e-4)
    assert r.pi_upper - r.pi_lower > 3 * (r.ci_upper - r.ci_lower)


# ------------------------------------------------------------------- REML score equation


def _reml_score(tau2: float, y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """d/d tau² of the restricted log-likelihood: (y'P P y - tr P) / 2,
    P = W - W X (X'WX)^-1 X'W, W = diag(1 / (v + tau²)) (Harville 1977)."""
    w = 1.0 / (v + tau2)
    xw = X.T * w
    p = np.diag(w) - xw.T @ np.linalg.solve(xw @ X, xw)
    py = p @ y
    return 0.5 * (float(py @ py) - float(np.trace(p)))


def _restricted_loglik(tau2: float, y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    w = 1.0 / (v + tau2)
    xw = X.T * w
    b = np.linalg.solve(xw @ X, xw @ y)
    r = y - X @ b
    return -0.5 * (np.log(v + tau2).sum() + np.linalg.slogdet(xw @ X)[1] + (w * r * r).sum())


@pytest.mark.parametrize("moderator", [False, True])
def test_reml_solves_its_score_equation_on_bcg(bcg, moderator):
    """The REML tau² zeroes the score and is the global maximum over a fine grid."""
    y, v = bcg["yi"].to_numpy(), bcg["vi"].to_numpy()
    X = np.column_stack([np.ones(y.size)] + ([bcg["ablat"].to_numpy()] if moderator else []))
    r = rma(y, v, X[:, 1:] if moderator else None, method="REML")
    assert r.tau2 > 0
    assert abs(_reml_score(r.tau2, y, v, X)) < 1e-6
    grid = np.linspace(0.0, 3.0, 3001)
    best = max(_restricted_loglik(t, y, v, X) for t in grid)
    assert _restricted_loglik(r.tau2, y, v, X) >= best - 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_reml_score_on_simulated_data(seed):
    """Interior REML estimates solve the score equation; a zero estimate has score <= 0."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 25))
    v = rng.uniform(0.01, 0.5, k)
    y = rng.normal(0.2, math.sqrt(rng.choice([0.0, 0.05, 0.5])), k) + rng.normal(0, np.sqrt(v))
    X = np.ones((k, 1))
    r = rma(y, v, method="REML")
    score = _reml_score(r.tau2, y, v, X)
    if r.tau2 > 0:
        assert abs(score) < 1e-6 * (1.0 + float(np.sum(1 / v**2))), (r.tau2, score)
    else:
        assert score <= 1e-9


# --------------------------------------------------------------------- I² in the models


def _bayes_i2(se: np.ndarray, weights: np.ndarray, tau: float) -> float:
    data = ModelData.from_arrays(np.zeros(se.size), se).with_weights(weights)
    priors = Priors(tau_scale=1.0)
    model = build_model(data, priors, "random_effects_marginal")
    out = model.replace_rvs_by_values([model["i2"]])
    f = model.compile_fn(out, inputs=model.value_vars, on_unused_input="ignore")
    point = model.initial_point()
    point["tau_raw_log__"] = np.log(tau)
    return float(f(point)[0])


@pytest.mark.parametrize("weights", [[1, 1, 1, 1, 1], [1, 0, 1, 1, 1]])
def test_bayesian_i2_uses_higgins_thompson_typical_variance(weights):
    """I² = tau²/(tau² + s²), s² = (k - 1) Σw / ((Σw)² - Σw²) over the weighted rows
    (Higgins & Thompson 2002, eq. 9); for equal variances s² is that variance."""
    se = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    wts = np.array(weights, dtype=float)
    w = 1 / se[wts > 0] ** 2
    s2 = (w.size - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    for tau in (0.05, 0.2, 1.0):
        assert _bayes_i2(se, wts, tau) == pytest.approx(tau**2 / (tau**2 + s2), rel=1e-9)
    assert _bayes_i2(np.full(4, 0.3), np.ones(4), 0.3) == pytest.approx(0.5, rel=1e-9)


# ------------------------------------------------------------------ quadrature accuracy


def _reference_log_evidence(y, se, mu_sd, tau_scale) -> float:
    """log ∫ p(tau) N(y; 0, diag(se² + tau²) + mu_sd² 11') dtau, half-Cauchy(tau_scale)."""

    def f(tau: float) -> float:
        cov = np.diag(se**2 + tau**2) + mu_sd**2
        prior = 2 / (math.pi * tau_scale * (1 + (tau / tau_scale) ** 2))
        return prior * stats.multivariate_normal(np.zeros(y.size), cov).pdf(y)

    val, _ = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-13, limit=500)
    return math.log(val)


@pytest.mark.parametrize(
    ("y", "se", "mu_sd", "tau_scale"),
    [
        (Y8, S8, 20.0, 5.0),
        (Y8, S8, 20.0, 1.0),
        (np.array([0.012, -0.004, 0.009, 0.001, -0.015]), np.full(5, 0.5), 1.0, 0.5),
    ],
    ids=["eight_schools_hc5", "eight_schools_hc1", "homogeneous_k5"],
)
def test_exact_quadrature_is_accurate(y, se, mu_sd, tau_scale):
    """Evidence within 1e-11 of adaptive quadrature at 1e-13, and the built-in error bound
    (half-order rule on the same panels) below 1e-9 (halving the panels gives ~1e-7)."""
    post = exact_posterior(y, se, TauPrior.half_cauchy(tau_scale), mu_prior=(0.0, mu_sd))
    assert post.log_evidence == pytest.approx(
        _reference_log_evidence(y, se, mu_sd, tau_scale), abs=1e-11)
    assert post.integration_error < 1e-9
