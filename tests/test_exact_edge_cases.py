"""Edge cases of the exact posterior against independent references.

References: scipy.stats densities and quantiles for the tau priors and for normal mixtures;
closed forms (the conjugate normal posterior of ``beta`` given ``tau``, the Higgins &
Thompson typical variance by hand, a single study); adaptive quadrature (scipy.integrate.quad)
of the posterior of ``tau`` written from the model's definition; Monte Carlo draws with
tolerances a multiple of their standard error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from nutrimeta.models.exact import (
    NormalMixture,
    TauPrior,
    _gauss_legendre,
    _qname,
    _region,
    exact_linear_combination_batch,
    exact_posterior,
    typical_within_variance,
)


@pytest.fixture(autouse=True)
def _fresh_quadrature_rules():
    """Compute the Gauss-Legendre rules afresh in each test (a cache filled before a mutation
    run forks would hide mutants of the rule)."""
    _gauss_legendre.cache_clear()
    yield
    _gauss_legendre.cache_clear()


# --------------------------------------------------------------------------- tau priors
TAU = np.array([0.0, 0.05, 0.4, 1.0, 2.5, 7.0, 30.0])


def _halft_logpdf(t, nu, scale):
    return math.log(2.0) + stats.t(df=nu, scale=scale).logpdf(t)


@pytest.mark.parametrize(
    ("prior", "reference"),
    [
        (TauPrior.half_normal(1.7), lambda t: stats.halfnorm(scale=1.7).logpdf(t)),
        (TauPrior.half_cauchy(0.8), lambda t: stats.halfcauchy(scale=0.8).logpdf(t)),
        (TauPrior.half_student_t(3.0, 1.3), lambda t: _halft_logpdf(t, 3.0, 1.3)),
        (TauPrior.half_student_t(0.7, 2.2), lambda t: _halft_logpdf(t, 0.7, 2.2)),
        (TauPrior.exponential(0.6), lambda t: stats.expon(scale=1 / 0.6).logpdf(t)),
        (TauPrior.uniform(2.5), lambda t: stats.uniform(0.0, 2.5).logpdf(t)),
    ],
    ids=lambda v: v.label if isinstance(v, TauPrior) else "",
)
def test_tau_prior_densities_match_scipy(prior, reference):
    np.testing.assert_allclose(prior.logpdf(TAU), reference(TAU), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(prior.pdf(TAU), np.exp(reference(TAU)), rtol=1e-13)
    # no mass below 0, and none above the uniform's bound (which itself has the density)
    assert np.all(prior.logpdf([-1e-9, -1.0, -50.0]) == -np.inf)
    assert prior.pdf(-0.5) == 0.0
    assert prior.proper
    if prior.kind == "uniform":
        assert prior.upper == 2.5
        assert prior.logpdf(2.5) == pytest.approx(-math.log(2.5), rel=1e-15)
        assert prior.logpdf(2.5 + 1e-12) == -np.inf
    else:
        assert prior.upper == math.inf


@pytest.mark.parametrize(
    ("prior", "dist"),
    [
        (TauPrior.half_normal(1.7), stats.halfnorm(scale=1.7)),
        (TauPrior.half_cauchy(0.8), stats.halfcauchy(scale=0.8)),
        (TauPrior.exponential(0.6), stats.expon(scale=1 / 0.6)),
        (TauPrior.uniform(2.5), stats.uniform(0.0, 2.5)),
    ],
    ids=lambda v: v.label if isinstance(v, TauPrior) else "",
)
def test_tau_prior_quantiles_and_draws_match_scipy(prior, dist):
    q = np.array([0.01, 0.3, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(prior.ppf(q), dist.ppf(q), rtol=1e-12)
    u = np.random.default_rng(5).uniform(size=50)
    np.testing.assert_allclose(
        prior.rvs(50, np.random.default_rng(5)), dist.ppf(u), rtol=1e-12)


def test_half_student_t_quantiles_invert_its_cdf():
    prior = TauPrior.half_student_t(3.0, 1.3)
    q = np.array([0.05, 0.5, 0.95])
    x = prior.ppf(q)
    # cdf of the folded t: 2 F_t(x) - 1, integrated independently from the density
    cdf = [integrate.quad(lambda t: float(prior.pdf(t)), 0, xi, epsabs=1e-13)[0] for xi in x]
    np.testing.assert_allclose(cdf, q, atol=1e-10)
    np.testing.assert_allclose(2 * stats.t(df=3.0, scale=1.3).cdf(x) - 1, q, rtol=1e-12)


def test_tau_prior_labels_and_dicts():
    cases = [
        (TauPrior.half_normal(0.5), "tau ~ HalfNormal(0.5)", {"scale": 0.5}),
        (TauPrior.half_cauchy(2.0), "tau ~ HalfCauchy(2)", {"scale": 2.0}),
        (TauPrior.half_student_t(4.0, 0.25), "tau ~ HalfStudentT(4, 0.25)",
         {"scale": 0.25, "nu": 4.0}),
        (TauPrior.exponential(4.0), "tau ~ Exponential(4)", {"rate": 4.0}),
        (TauPrior.uniform(3.0), "tau ~ Uniform(0, 3)", {"upper": 3.0}),
    ]
    for prior, label, params in cases:
        assert prior.label == label
        assert prior.to_dict() == {"kind": prior.kind, "label": label, **params}
    assert TauPrior.exponential(4.0).scale == 0.25
    custom = TauPrior.custom(lambda t: -t, "my prior", scale=2.0)
    assert custom.label == "my prior"
    assert custom.to_dict() == {"kind": "custom", "label": "my prior"}
    assert custom.scale == 2.0
    assert not custom.proper
    assert custom.upper == math.inf
    with pytest.raises(NotImplementedError,
                       match=r"^no quantile function for a custom tau prior$"):
        custom.ppf(0.5)


def test_custom_prior_sees_tau_and_only_non_negative_tau():
    seen = []

    def logpdf(t):
        seen.append(np.array(t, copy=True))
        return -2.0 * np.asarray(t)

    prior = TauPrior.custom(logpdf, "exp(-2 tau)")
    np.testing.assert_allclose(prior.logpdf([0.3, 0.7, 1.5]), [-0.6, -1.4, -3.0], rtol=1e-15)
    np.testing.assert_allclose(seen[-1], [0.3, 0.7, 1.5])
    out = prior.logpdf([-0.5, 0.2])
    assert out[0] == -np.inf
    assert out[1] == pytest.approx(-0.4, rel=1e-15)
    assert np.all(seen[-1] >= 0.0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TauPrior("lognormal", 1.0), "unknown tau prior kind 'lognormal'"),
        (lambda: TauPrior("custom", 1.0), r"^a custom tau prior needs logpdf_fn$"),
        (lambda: TauPrior.half_normal(0.0), r"^tau prior scale must be positive and finite$"),
        (lambda: TauPrior.half_cauchy(-2.0), "positive and finite"),
        (lambda: TauPrior.uniform(math.inf), "positive and finite"),
        (lambda: TauPrior.half_normal(math.nan), "positive and finite"),
        (lambda: TauPrior.half_student_t(0.0, 1.0), r"^half-Student-t prior needs nu > 0$"),
        (lambda: TauPrior.half_student_t(math.nan, 1.0), "nu > 0"),
    ],
)
def test_tau_prior_rejects_bad_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_tau_prior_accepts_boundary_parameters():
    TauPrior.half_student_t(1e-3, 1e-300)  # tiny but positive
    TauPrior.custom(lambda t: t, "flat", scale=math.nan)  # custom needs no scale


# --------------------------------------------------------------------------- mixtures
W3 = np.array([0.2, 0.5, 0.3])
M3 = np.array([-1.0, 0.5, 2.0])
S3 = np.array([0.4, 1.1, 0.7])
MIX = NormalMixture(W3, M3, S3)


def _mix_cdf(x):
    return float(W3 @ stats.norm.cdf((x - M3) / S3))


def test_mixture_functions_match_scipy():
    x = np.array([-3.0, -1.0, 0.0, 0.7, 2.5, 6.0])
    cdf = np.array([_mix_cdf(v) for v in x])
    pdf = sum(w * stats.norm(m, s).pdf(x) for w, m, s in zip(W3, M3, S3, strict=True))
    np.testing.assert_allclose(MIX.cdf(x), cdf, rtol=1e-13)
    np.testing.assert_allclose(MIX.pdf(x), pdf, rtol=1e-13)
    # the upper tail without cancellation: far out, 1 - cdf would round to 0
    sf = sum(w * stats.norm(m, s).sf(x) for w, m, s in zip(W3, M3, S3, strict=True))
    np.testing.assert_allclose(MIX.sf(x), sf, rtol=1e-12)
    assert MIX.sf(12.0) == pytest.approx(0.3 * stats.norm(2.0, 0.7).sf(12.0), rel=1e-10)
    assert MIX.sf(12.0) > 0
    assert MIX.prob_gt(0.7) == pytest.approx(1 - _mix_cdf(0.7), rel=1e-12)
    assert MIX.prob_gt() == pytest.approx(1 - _mix_cdf(0.0), rel=1e-12)
    for f in (MIX.cdf, MIX.sf, MIX.pdf):
        assert isinstance(f(0.3), float)
        assert f([0.3]).shape == (1,)


def test_mixture_moments_match_numerical_integration():
    m1 = integrate.quad(lambda x: x * MIX.pdf(x), -30, 30, epsabs=1e-13, limit=200)[0]
    m2 = integrate.quad(lambda x: (x - m1) ** 2 * MIX.pdf(x), -30, 30, epsabs=1e-13,
                        limit=200)[0]
    assert MIX.mean == pytest.approx(m1, rel=1e-12)
    assert MIX.var == pytest.approx(m2, rel=1e-10)
    assert MIX.sd == pytest.approx(math.sqrt(m2), rel=1e-10)


def test_mixture_quantiles_invert_the_cdf_tightly():
    q = np.array([1e-6, 0.025, 0.2, 0.5, 0.8, 0.975, 1 - 1e-6])
    x = MIX.ppf(q)
    for qi, xi in zip(q, x, strict=True):
        root = optimize.brentq(lambda v, qi=qi: _mix_cdf(v) - qi, -20, 20, xtol=1e-14)
        assert xi == pytest.approx(root, abs=1e-9)
    assert MIX.median == pytest.approx(float(MIX.ppf(0.5)), abs=0)
    assert isinstance(MIX.ppf(0.5), float)
    np.testing.assert_array_equal(MIX.ppf([0.0, 1.0, -0.5, 1.5]),
                                  [-np.inf, np.inf, -np.inf, np.inf])
    lo, hi = MIX.interval(0.9)
    assert _mix_cdf(lo) == pytest.approx(0.05, abs=1e-10)
    assert _mix_cdf(hi) == pytest.approx(0.95, abs=1e-10)
    lo, hi = MIX.interval()
    assert _mix_cdf(lo) == pytest.approx(0.025, abs=1e-10)
    assert _mix_cdf(hi) == pytest.approx(0.975, abs=1e-10)
    # a narrow component: the root is found to a small fraction of its sd
    narrow = NormalMixture(np.array([1.0]), np.array([1e3]), np.array([1e-6]))
    assert narrow.ppf(0.975) == pytest.approx(1e3 + 1.959963984540054e-6, abs=1e-12)


def test_mixture_summary_keys_and_values():
    s = MIX.summary()
    assert set(s) == {"mean", "sd", "median", "q025", "q500", "q975"}
    assert s["q025"] == pytest.approx(float(MIX.ppf(0.025)), abs=1e-12)
    assert s["median"] == s["q500"]
    s = MIX.summary((0.1, 0.9))
    assert set(s) == {"mean", "sd", "median", "q100", "q900"}
    assert _mix_cdf(s["median"]) == pytest.approx(0.5, abs=1e-10)
    assert s["mean"] == MIX.mean
    assert s["sd"] == MIX.sd


def test_mixture_sample_matches_components():
    n = 200_000
    d = MIX.sample(n, np.random.default_rng(11))
    assert d.shape == (n,)
    assert d.mean() == pytest.approx(MIX.mean, abs=4 * MIX.sd / math.sqrt(n))
    assert d.var() == pytest.approx(MIX.var, rel=4 * math.sqrt(2 / n) * 1.5)
    for x in (-1.0, 0.5, 2.0):
        p = _mix_cdf(x)
        assert np.mean(d <= x) == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))


@pytest.mark.parametrize(
    ("p", "name"),
    [(0.025, "q025"), (0.5, "q500"), (0.975, "q975"), (0.05, "q050"), (0.1, "q100"),
     (0.9995, "q999_5"), (0.001, "q001")],
)
def test_quantile_names(p, name):
    assert _qname(p) == name


def test_typical_within_variance_by_hand():
    # se = (1, 2): w = (1, 1/4), s2 = 1 * 1.25 / (1.5625 - 1.0625) = 2.5
    assert typical_within_variance([1.0, 2.0]) == pytest.approx(2.5, rel=1e-15)
    # se = (1, 1, 2): w = (1, 1, 1/4), s2 = 2 * 2.25 / (5.0625 - 2.0625) = 1.5
    assert typical_within_variance([1.0, 1.0, 2.0]) == pytest.approx(1.5, rel=1e-15)
    assert typical_within_variance([0.7]) == pytest.approx(0.49, rel=1e-15)
    assert typical_within_variance(np.full(4, 0.5)) == pytest.approx(0.25, rel=1e-14)


# --------------------------------------------------------------------------- posterior of tau
Y5 = np.array([0.1, 0.5, -0.2, 0.9, 0.3])
S5 = np.array([0.2, 0.3, 0.25, 0.4, 0.15])
HN = TauPrior.half_normal(0.5)


def _flat_mu_density(tau, y=Y5, se=S5, prior=HN):
    """Unnormalised ``p(tau | y)`` with a flat prior on ``mu`` (``mu`` integrated out by hand):
    ``p(tau) prod(v)^-1/2 (sum w)^-1/2 exp(-Q/2)``, ``v = s^2 + tau^2``, ``w = 1/v``."""
    v = se**2 + tau**2
    w = 1 / v
    mu = w @ y / w.sum()
    q = w @ (y - mu) ** 2
    return float(prior.pdf(tau)) * math.exp(
        -0.5 * np.log(v).sum() - 0.5 * math.log(w.sum()) - 0.5 * q)


@pytest.fixture(scope="module")
def tau_reference():
    """Normalising constant, mean, sd and I^2 mean of ``p(tau | y)`` by adaptive quadrature."""
    def quad(g):
        return integrate.quad(lambda t: g(t) * _flat_mu_density(t), 0, np.inf, epsabs=0,
                              epsrel=1e-12, limit=400)[0]

    z = quad(lambda t: 1.0)
    mean = quad(lambda t: t) / z
    var = quad(lambda t: (t - mean) ** 2) / z
    s2 = typical_within_variance(S5)
    i2 = quad(lambda t: t**2 / (t**2 + s2)) / z
    return {"z": z, "mean": mean, "sd": math.sqrt(var), "i2_mean": i2}


def _ref_cdf(x, z):
    return integrate.quad(_flat_mu_density, 0, x, epsabs=0, epsrel=1e-12, limit=400)[0] / z


def test_tau_posterior_against_adaptive_quadrature(tau_reference):
    post = exact_posterior(Y5, S5, HN)
    z = tau_reference["z"]
    x = np.array([0.01, 0.1, 0.25, 0.6, 1.5])
    np.testing.assert_allclose(post.tau_pdf(x), [_flat_mu_density(t) / z for t in x],
                               rtol=1e-9)
    assert post.tau_pdf(0.25) == pytest.approx(_flat_mu_density(0.25) / z, rel=1e-9)
    assert post.tau_pdf(0.25).shape == ()
    np.testing.assert_array_equal(post.tau_pdf([0.0, -1.0]), [0.0, 0.0])
    np.testing.assert_allclose(post.tau_density, post.tau_pdf(post.tau_grid), rtol=1e-15)
    for t in (0.05, 0.2, 0.45, 1.0):
        assert post.tau_cdf(t) == pytest.approx(_ref_cdf(t, z), abs=1e-10)
    assert post.tau_cdf(0.0) == 0.0
    assert post.tau_cdf(-1.0) == 0.0
    assert post.tau_cdf(1e-30) == 0.0
    assert post.tau_cdf(1e6) == 1.0
    assert post.tau_cdf(math.exp(post.t_edges[-1]) * 0.999999) == pytest.approx(1.0, abs=1e-14)
    assert post.tau_mean == pytest.approx(tau_reference["mean"], rel=1e-10)
    assert post.tau_sd == pytest.approx(tau_reference["sd"], rel=1e-9)
    assert post.i2_summary()["mean"] == pytest.approx(tau_reference["i2_mean"], rel=1e-9)
    np.testing.assert_allclose(post.tau_weights.sum(), 1.0, rtol=1e-14)
    assert np.all(np.diff(post.tau_grid) > 0)
    assert post.k == 5
    assert post.p == 1


def test_tau_quantiles_and_mode_against_quadrature(tau_reference):
    post = exact_posterior(Y5, S5, HN)
    z = tau_reference["z"]
    probs = [0.001, 0.025, 0.3, 0.5, 0.975]
    got = post.tau_quantile(probs)
    for p, g in zip(probs, got, strict=True):
        assert _ref_cdf(g, z) == pytest.approx(p, abs=1e-10)
    assert post.tau_median == pytest.approx(got[3], rel=1e-12)
    assert isinstance(post.tau_quantile(0.5), float)
    assert post.tau_quantile(0.0) == 0.0
    assert post.tau_quantile(-0.1) == 0.0
    assert post.tau_quantile(1.0) == pytest.approx(math.exp(post.t_edges[-1]), rel=1e-15)
    np.testing.assert_array_equal(post.tau_quantile([0.0, 1.0]),
                                  [0.0, math.exp(post.t_edges[-1])])
    # a quantile exactly at a panel edge of the exact cdf
    i = post.t_edges.size // 2
    edge_q = float(post.panel_cdf[i])
    assert post.tau_quantile(edge_q) == pytest.approx(math.exp(post.t_edges[i]), rel=1e-9)
    mode = optimize.minimize_scalar(lambda t: -_flat_mu_density(t), bounds=(1e-3, 2.0),
                                    method="bounded", options={"xatol": 1e-10}).x
    assert mode > 0.05  # an interior mode: the data are heterogeneous
    assert post.tau_mode == pytest.approx(mode, rel=1e-5)
    s = post.tau_summary((0.1, 0.9))
    assert set(s) == {"mean", "sd", "median", "mode", "q100", "q900"}
    assert _ref_cdf(s["q100"], z) == pytest.approx(0.1, abs=1e-10)
    assert s["median"] == pytest.approx(got[3], rel=1e-12)
    assert s["mode"] == pytest.approx(mode, rel=1e-5)
    s = post.tau_summary()
    assert s["median"] == s["q500"]


def test_tau_mode_is_zero_for_homogeneous_data():
    # identical estimates: the likelihood of tau decreases from 0, so does the posterior
    post = exact_posterior([0.3, 0.3, 0.3], [0.2, 0.3, 0.4], TauPrior.half_normal(1.0))
    assert post.tau_mode == pytest.approx(0.0, abs=1e-10)
    dens = post.tau_density
    assert dens[0] == pytest.approx(dens.max(), rel=1e-12)


def test_tau_table_against_reference(tau_reference):
    post = exact_posterior(Y5, S5, HN)
    z = tau_reference["z"]
    tab = post.tau_table(n=30, upper_q=0.9)
    grid = np.array(tab["grid"])
    assert grid.size == 30
    assert grid[0] == 0.0
    assert _ref_cdf(grid[-1], z) == pytest.approx(0.9, abs=1e-10)
    np.testing.assert_allclose(tab["prior"], HN.pdf(grid), rtol=1e-14)
    # the density at 0 by its limit, which is finite for this proper prior
    ref = [_flat_mu_density(max(t, 1e-12)) / z for t in grid]
    np.testing.assert_allclose(tab["posterior"], ref, rtol=1e-9)
    default = post.tau_table()
    assert len(default["grid"]) == 200
    assert _ref_cdf(default["grid"][-1], z) == pytest.approx(0.995, abs=1e-10)


def test_i2_maps_tau_through_the_typical_variance(tau_reference):
    post = exact_posterior(Y5, S5, HN)
    s2 = typical_within_variance(S5)
    assert post.s2_typical == pytest.approx(s2, rel=1e-15)
    np.testing.assert_allclose(post.i2_of_tau([0.0, 0.2, 1.0]),
                               [0.0, 0.04 / (0.04 + s2), 1 / (1 + s2)], rtol=1e-14)
    s = post.i2_summary((0.1, 0.5, 0.9))
    q = post.tau_quantile([0.1, 0.5, 0.9])
    for key, t in zip(("q100", "q500", "q900"), q, strict=True):
        assert s[key] == pytest.approx(t**2 / (t**2 + s2), rel=1e-12)
    assert s["median"] == pytest.approx(s["q500"], rel=1e-12)
    assert set(s) == {"mean", "median", "q100", "q500", "q900"}


def test_integration_error_is_the_half_order_rule_difference(tau_reference):
    coarse = exact_posterior(Y5, S5, HN, grid=(5, 6))
    # the half-order (3-point) rule on the same panels, with scipy's fixed Gauss rule

    def integrand(t):
        return np.array([_flat_mu_density(math.exp(u)) * math.exp(u) for u in t])

    z3 = sum(integrate.fixed_quad(integrand, a, b, n=3)[0]
             for a, b in zip(coarse.t_edges[:-1], coarse.t_edges[1:], strict=True))
    z6 = sum(integrate.fixed_quad(integrand, a, b, n=6)[0]
             for a, b in zip(coarse.t_edges[:-1], coarse.t_edges[1:], strict=True))
    assert coarse.integration_error == pytest.approx(abs(z3 / z6 - 1), rel=1e-7)
    assert coarse.integration_error > 1e-6
    assert coarse.order == 6
    assert coarse.nodes_t.size == 30
    # with a 2-point rule, "half the order" is still 2: the same rule, no difference
    two = exact_posterior(Y5, S5, HN, grid=(40, 2))
    assert two.integration_error < 1e-14
    default = exact_posterior(Y5, S5, HN)
    assert default.integration_error < 1e-9


# --------------------------------------------------------------------------- beta given tau
def _joint_gaussian(y, se, X, tau, m0, sd0):
    """Posterior mean and covariance of ``(beta, theta)`` given ``y`` and ``tau``, and
    ``log p(y | tau)``, by conditioning the joint normal of ``(beta, theta, y)`` (proper
    priors): ``beta ~ N(m0, D)``, ``theta = X beta + u``, ``y = theta + e``."""
    k, p = X.shape
    D = np.diag(np.asarray(sd0, float) ** 2)
    c_bb = D
    c_bt = D @ X.T
    c_tt = X @ D @ X.T + tau**2 * np.eye(k)
    c_yy = c_tt + np.diag(se**2)
    cov_z = np.block([[c_bb, c_bt], [c_bt.T, c_tt]])  # z = (beta, theta)
    c_zy = np.vstack([c_bt, c_tt])  # cov(z, y): e is independent of z
    mean_z = np.concatenate([m0, X @ m0])
    gain = np.linalg.solve(c_yy, c_zy.T).T
    post_mean = mean_z + gain @ (y - X @ m0)
    post_cov = cov_z - gain @ c_zy.T
    logml = stats.multivariate_normal(X @ m0, c_yy).logpdf(y)
    return post_mean[:p], post_cov[:p, :p], post_mean[p:], post_cov[p:, p:], logml


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(3)
    k = 7
    x = np.linspace(-1.0, 1.0, k)
    se = rng.uniform(0.2, 0.5, k)
    y = 0.4 - 0.6 * x + rng.normal(0, np.sqrt(se**2 + 0.2**2))
    X = np.column_stack([np.ones(k), x])
    m0, sd0 = np.array([0.1, -0.2]), np.array([1.5, 0.8])
    return {"y": y, "se": se, "X": X, "m0": m0, "sd0": sd0}


def test_regression_conditionals_are_the_conjugate_normal(regression):
    r = regression
    post = exact_posterior(r["y"], r["se"], TauPrior.half_cauchy(0.3),
                           list(zip(r["m0"], r["sd0"], strict=True)), r["X"],
                           coef_names=["icpt", "slope"], labels=list("abcdefg"))
    taus = post.tau_grid[:: max(1, post.tau_grid.size // 9)]
    cond = post._conditional(taus)
    c = np.array([1.0, 0.7])
    x0 = np.array([1.0, -0.4])
    idx = np.searchsorted(post.tau_grid, taus)
    lc, pred, th3 = post.linear_combination(c), post.predictive(x0), post.theta(3)
    for n, tau in enumerate(taus):
        b, cov_b, th, cov_th, logml = _joint_gaussian(r["y"], r["se"], r["X"], tau, r["m0"],
                                                      r["sd0"])
        np.testing.assert_allclose(cond.mean[n], b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cond.cov[n], cov_b, rtol=1e-10, atol=1e-14)
        # log p(y | tau) up to the constant the evidence adds back
        const = -r["y"].size * 0.5 * math.log(2 * math.pi) + np.log(1 / r["sd0"]).sum()
        assert cond.loglik[n] + const == pytest.approx(logml, abs=1e-10)
        j = idx[n]
        assert lc.means[j] == pytest.approx(c @ b, rel=1e-10, abs=1e-12)
        assert lc.sds[j] == pytest.approx(math.sqrt(c @ cov_b @ c), rel=1e-10)
        assert pred.means[j] == pytest.approx(x0 @ b, rel=1e-10, abs=1e-12)
        assert pred.sds[j] == pytest.approx(math.sqrt(x0 @ cov_b @ x0 + tau**2), rel=1e-10)
        assert th3.means[j] == pytest.approx(th[3], rel=1e-10, abs=1e-12)
        assert th3.sds[j] == pytest.approx(math.sqrt(cov_th[3, 3]), rel=1e-10)
    np.testing.assert_array_equal(lc.weights, post.weights)
    # names, contrasts and the default predictive (x0 = first coefficient only)
    assert post.coef("slope").means == pytest.approx(post.coef(1).means, rel=0)
    np.testing.assert_allclose(post.coef("slope").means, post.cond.mean[:, 1], rtol=0)
    np.testing.assert_allclose(post.mu.means, post.cond.mean[:, 0], rtol=0)
    np.testing.assert_allclose(post.coef("slope").sds, np.sqrt(post.cond.cov[:, 1, 1]),
                               rtol=1e-15)
    diff = post.contrast([1.0, 0.5], [1.0, -0.5])
    np.testing.assert_allclose(diff.means, post.cond.mean[:, 1], rtol=1e-14)
    np.testing.assert_allclose(diff.sds, np.sqrt(post.cond.cov[:, 1, 1]), rtol=1e-14)
    np.testing.assert_allclose(post.predictive().sds**2,
                               post.cond.cov[:, 0, 0] + post.tau_grid**2, rtol=1e-14)
    rows = post.shrinkage_summary()
    assert [row["label"] for row in rows] == list("abcdefg")
    assert rows[3]["mean"] == pytest.approx(th3.mean, rel=1e-14)
    assert rows[3]["q975"] == pytest.approx(th3.ppf(0.975), rel=1e-12)


def test_regression_evidence_against_adaptive_quadrature(regression):
    r = regression
    prior = TauPrior.half_cauchy(0.3)
    post = exact_posterior(r["y"], r["se"], prior, list(zip(r["m0"], r["sd0"], strict=True)),
                           r["X"])

    def f(t):
        return math.exp(_joint_gaussian(r["y"], r["se"], r["X"], t, r["m0"], r["sd0"])[4]
                        ) * float(prior.pdf(t))

    z = integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-12, limit=400)[0]
    assert post.log_evidence == pytest.approx(math.log(z), abs=1e-9)
    tau_mean = integrate.quad(lambda t: t * f(t), 0, np.inf, epsabs=0, epsrel=1e-12,
                              limit=400)[0] / z
    assert post.tau_mean == pytest.approx(tau_mean, rel=1e-9)
    assert post.coef_names == ["b0", "b1"]


def test_mean_only_with_proper_prior_is_the_conjugate_normal():
    prior = (0.2, 0.5)
    post = exact_posterior(Y5, S5, HN, prior)
    X = np.ones((5, 1))
    taus = post.tau_grid[::37]
    cond = post._conditional(taus)
    for n, tau in enumerate(taus):
        b, cov_b, _, _, logml = _joint_gaussian(Y5, S5, X, tau, np.array([0.2]), [0.5])
        assert cond.mean[n, 0] == pytest.approx(b[0], rel=1e-11, abs=1e-13)
        assert cond.cov[n, 0, 0] == pytest.approx(cov_b[0, 0], rel=1e-11)
        assert cond.loglik[n] - 2.5 * math.log(2 * math.pi) - math.log(0.5) == pytest.approx(
            logml, abs=1e-10)
    assert post.coef_names == ["mu"]
    assert post.log_evidence is not None
    # a flat prior on mu: no evidence
    assert exact_posterior(Y5, S5, HN).log_evidence is None


def test_single_study_with_a_proper_prior_has_a_closed_form_given_tau():
    # k = 1, tau ~ Uniform(0, 2): mu | tau, y ~ N((y/v + m0/d^2) / P, 1/P), v = s^2 + tau^2
    post = exact_posterior([1.2], [0.5], TauPrior.uniform(2.0), (0.0, 1.0))
    v = 0.25 + post.tau_grid**2
    prec = 1 / v + 1.0
    np.testing.assert_allclose(post.mu.means, (1.2 / v) / prec, rtol=1e-12)
    np.testing.assert_allclose(post.mu.sds, 1 / np.sqrt(prec), rtol=1e-12)
    # evidence: integral over the prior of N(1.2; 0, 1 + v)
    z = integrate.quad(lambda t: stats.norm(0, math.sqrt(1.25 + t * t)).pdf(1.2) / 2.0, 0, 2,
                       epsabs=0, epsrel=1e-13)[0]
    assert post.log_evidence == pytest.approx(math.log(z), abs=1e-10)
    assert post.tau_cdf(2.0) == 1.0
    assert math.exp(post.t_edges[-1]) == pytest.approx(2.0, rel=1e-14)
    assert post.tau_pdf(2.0) > 0
    assert post.tau_pdf(2.0 + 1e-9) == 0.0


def test_summary_reports_every_piece(regression, tau_reference):
    post = exact_posterior(Y5, S5, HN)
    s = post.summary(probs=(0.05, 0.5, 0.95), thresholds=(0.0, 0.3))
    assert s["model"] == "exact"
    assert s["tau_prior"] == {"kind": "halfnormal", "label": "tau ~ HalfNormal(0.5)",
                              "scale": 0.5}
    assert s["coef_prior"] == [{"name": "mu", "mean": 0.0, "sd": math.inf}]
    assert s["k"] == 5
    mu = s["parameters"]["mu"]
    assert set(mu) == {"mean", "sd", "median", "q050", "q500", "q950"}
    assert mu["mean"] == pytest.approx(post.mu.mean, rel=1e-15)
    assert mu["q950"] == pytest.approx(float(post.mu.ppf(0.95)), rel=1e-12)
    tau = s["parameters"]["tau"]
    assert tau["mean"] == pytest.approx(tau_reference["mean"], rel=1e-10)
    assert _ref_cdf(tau["q050"], tau_reference["z"]) == pytest.approx(0.05, abs=1e-10)
    assert tau["mode"] == pytest.approx(post.tau_mode, rel=1e-12)
    assert s["prediction"]["sd"] == pytest.approx(post.predictive().sd, rel=1e-15)
    assert s["prediction"]["q050"] == pytest.approx(float(post.predictive().ppf(0.05)),
                                                    rel=1e-12)
    assert s["i2"]["mean"] == pytest.approx(tau_reference["i2_mean"], rel=1e-9)
    assert set(s["i2"]) == {"mean", "median", "q050", "q500", "q950"}
    assert s["i2_definition"] == ("tau^2 / (tau^2 + s2), s2 = Higgins & Thompson (2002) "
                                  "typical within-study variance")
    assert s["probabilities"] == {
        "P(mu > 0)": pytest.approx(post.mu.sf(0.0), rel=1e-15),
        "P(mu > 0.3)": pytest.approx(post.mu.sf(0.3), rel=1e-15),
    }
    num = s["numerics"]
    assert num["n_nodes"] == post.nodes_t.size == 96 * 8
    assert num["tau_range"] == pytest.approx(
        [math.exp(post.t_edges[0]), math.exp(post.t_edges[-1])], rel=1e-15, abs=0)
    assert num["tau_range"][0] < 1e-6 * tau_reference["mean"]
    assert num["integration_error"] == post.integration_error
    # meta-regression: one entry per named coefficient, with its prior
    r = regression
    reg = exact_posterior(r["y"], r["se"], HN, list(zip(r["m0"], r["sd0"], strict=True)),
                          r["X"], coef_names=["icpt", "slope"])
    s = reg.summary()
    assert set(s["parameters"]) == {"icpt", "slope", "tau"}
    assert s["parameters"]["slope"]["mean"] == pytest.approx(reg.coef(1).mean, rel=1e-15)
    assert s["coef_prior"] == [{"name": "icpt", "mean": 0.1, "sd": 1.5},
                               {"name": "slope", "mean": -0.2, "sd": 0.8}]
    assert s["probabilities"] == {"P(mu > 0)": pytest.approx(reg.coef(0).sf(0.0), rel=1e-15)}
    # one coefficient from a moderator column (named b0): reported as mu
    slope = exact_posterior(Y5, S5, HN, (0.0, 10.0), np.linspace(-1, 1, 5))
    assert set(slope.summary()["parameters"]) == {"mu", "tau"}


def test_joint_draws_match_the_exact_posterior(regression):
    r = regression
    post = exact_posterior(r["y"], r["se"], HN, list(zip(r["m0"], r["sd0"], strict=True)),
                           r["X"])
    n = 40_000
    x0 = np.array([1.0, 0.6])
    d = post.sample(n, np.random.default_rng(2), x0=x0)
    assert d["beta"].shape == (n, 2)
    np.testing.assert_array_equal(d["mu"], d["beta"][:, 0])
    for name, draws, mix in (("b0", d["beta"][:, 0], post.coef(0)),
                             ("b1", d["beta"][:, 1], post.coef(1)),
                             ("theta_new", d["theta_new"], post.predictive(x0))):
        assert draws.mean() == pytest.approx(mix.mean, abs=4 * mix.sd / math.sqrt(n)), name
        assert draws.std() == pytest.approx(mix.sd, rel=4 * math.sqrt(0.5 / n) * 1.5), name
    # correlation of the coefficients: E[cov(beta | tau)] + cov of the conditional means
    w = post.weights
    m = post.cond.mean
    mbar = w @ m
    cov = np.einsum("n,nij->ij", w, post.cond.cov) + (m - mbar).T @ (w[:, None] * (m - mbar))
    corr = cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1])
    assert np.corrcoef(d["beta"].T)[0, 1] == pytest.approx(corr, abs=4 / math.sqrt(n))
    for q in (0.1, 0.5, 0.9):
        t = float(post.tau_quantile(q))
        assert np.mean(d["tau"] <= t) == pytest.approx(q, abs=4 * math.sqrt(q * (1 - q) / n))
    # the default x0 is the first coefficient: theta_new = b0 + tau * z
    d0 = post.sample(n, np.random.default_rng(2))
    pred0 = post.predictive()
    assert d0["theta_new"].mean() == pytest.approx(pred0.mean, abs=4 * pred0.sd / math.sqrt(n))
    assert d0["theta_new"].std() == pytest.approx(pred0.sd, rel=4 * math.sqrt(0.5 / n) * 1.5)


def test_tau_draws_follow_the_exact_cdf_in_the_tails():
    post = exact_posterior(Y5, S5, HN)
    n = 100_000
    tau = post.sample(n, np.random.default_rng(9))["tau"]
    for q in (0.005, 0.05, 0.25, 0.75, 0.95, 0.995):
        t = float(post.tau_quantile(q))
        assert np.mean(tau <= t) == pytest.approx(q, abs=4 * math.sqrt(q * (1 - q) / n))
    assert tau.min() >= math.exp(post.t_edges[0])
    assert tau.max() <= math.exp(post.t_edges[-1])
    # the sampling table: t ascending, cdf non-decreasing from 0 to 1, exact at the edges
    t_tab, c_tab = post._sampling_table
    assert np.all(np.diff(t_tab) > 0)
    assert np.all(np.diff(c_tab) >= 0)
    assert c_tab[0] == 0.0
    assert c_tab[-1] == 1.0
    assert t_tab.size == 16 * (post.t_edges.size - 1) + 1
    at_edges = np.searchsorted(t_tab, post.t_edges)
    np.testing.assert_allclose(c_tab[at_edges], post.panel_cdf, atol=1e-15)
    mid = t_tab[8::16][:96]  # mid-panel points: trapezoid cdf within 1e-5 of the exact one
    np.testing.assert_allclose(c_tab[8::16][:96], [post.tau_cdf(math.exp(t)) for t in mid],
                               atol=1e-5)


# --------------------------------------------------------------------------- many data sets
def _mu_moments_by_quadrature(y, se, prior, m0=0.0, sd0=math.inf):
    """``E[mu | y]``, ``sd(mu | y)``, ``P(mu > 0 | y)`` by adaptive quadrature over ``tau``
    of the conjugate normal ``mu | tau, y`` (``sd0 = inf``: flat prior)."""
    p0 = 0.0 if math.isinf(sd0) else 1 / sd0**2

    def parts(t):
        v = se**2 + t * t
        w = 1 / v
        prec = w.sum() + p0
        mean = (w @ y + p0 * m0) / prec
        quad = w @ (y - mean) ** 2 + p0 * (mean - m0) ** 2
        dens = float(prior.pdf(t)) * math.exp(
            -0.5 * np.log(v).sum() - 0.5 * math.log(prec) - 0.5 * quad)
        return dens, mean, 1 / prec

    def q(g):
        def f(t):
            dens, m, v = parts(t)
            return dens * g(m, v)

        return integrate.quad(f, 0, prior.upper, epsabs=0, epsrel=1e-12, limit=400)[0]

    z = q(lambda m, v: 1.0)
    mean = q(lambda m, v: m) / z
    second = q(lambda m, v: v + m * m) / z
    p_gt = q(lambda m, v: stats.norm.sf(0.0, m, math.sqrt(v))) / z
    return mean, math.sqrt(second - mean**2), p_gt


@pytest.mark.parametrize(
    ("prior", "mu_prior"),
    [(HN, (0.0, math.inf)), (TauPrior.uniform(0.6), (0.1, 0.4)),
     (TauPrior.half_cauchy(0.2), (-0.3, 2.0))],
    ids=["halfnormal-flat", "uniform-proper", "halfcauchy-proper"],
)
def test_batch_against_adaptive_quadrature(prior, mu_prior):
    Y = np.vstack([Y5, 2 * Y5 - 0.4, np.full(5, 0.25)])
    batch = exact_linear_combination_batch(Y, S5, prior, [1.0], mu_prior)
    for i, y in enumerate(Y):
        mean, sd, p_gt = _mu_moments_by_quadrature(y, S5, prior, *mu_prior)
        assert batch.mean[i] == pytest.approx(mean, rel=1e-9)
        assert batch.sd[i] == pytest.approx(sd, rel=1e-9)
        assert batch.prob_gt_0[i] == pytest.approx(p_gt, abs=1e-10)
    # a linear combination scales: c = -2 gives -2 times the mean, 2 times the sd
    neg = exact_linear_combination_batch(Y, S5, prior, -2.0, mu_prior)
    np.testing.assert_allclose(neg.mean, -2 * batch.mean, rtol=1e-12)
    np.testing.assert_allclose(neg.sd, 2 * batch.sd, rtol=1e-12)
    np.testing.assert_allclose(neg.prob_gt_0, 1 - batch.prob_gt_0, atol=1e-12)


def test_batch_regression_and_identical_rows(regression):
    r = regression
    prior = TauPrior.half_cauchy(0.3)
    mu_prior = list(zip(r["m0"], r["sd0"], strict=True))
    Y = np.vstack([r["y"], r["y"][::-1], np.zeros_like(r["y"])])
    c = np.array([0.5, 1.0])
    batch = exact_linear_combination_batch(Y, r["se"], prior, c, mu_prior, r["X"])
    for i, y in enumerate(Y):
        post = exact_posterior(y, r["se"], prior, mu_prior, r["X"]).linear_combination(c)
        assert batch.mean[i] == pytest.approx(post.mean, rel=1e-8, abs=1e-12)
        assert batch.sd[i] == pytest.approx(post.sd, rel=1e-8)
        assert batch.prob_gt_0[i] == pytest.approx(post.prob_gt(0.0), abs=1e-9)
    # all-zero data with prior means (0.1, -0.2): the posterior of c' beta is that of
    # data-free shrinkage to X m0, mean between 0 and c' m0 = -0.15
    assert -0.15 < batch.mean[2] < 0.0
    # a single data set as a 1-D array; X as a flat vector for one moderator column
    one = exact_linear_combination_batch(Y5, S5, HN, [1.0], (0.0, 1.0), X=np.ones(5))
    mean, sd, p_gt = _mu_moments_by_quadrature(Y5, S5, HN, 0.0, 1.0)
    assert one.mean.shape == (1,)
    assert one.mean[0] == pytest.approx(mean, rel=1e-9)
    assert one.sd[0] == pytest.approx(sd, rel=1e-9)
    assert one.prob_gt_0[0] == pytest.approx(p_gt, abs=1e-10)


def test_batch_single_study_and_constant_data():
    # k = 1 with a flat prior: mu | tau, y ~ N(y, s^2 + tau^2); E = y, Var = s^2 + E[tau^2]
    prior = TauPrior.half_normal(0.4)
    one = exact_linear_combination_batch([[1.3], [-0.2]], [0.3], prior, [1.0])
    np.testing.assert_allclose(one.mean, [1.3, -0.2], rtol=1e-10)
    np.testing.assert_allclose(one.sd, math.sqrt(0.09 + 0.16), rtol=1e-8)
    assert one.prob_gt_0[0] == pytest.approx(
        _mu_moments_by_quadrature(np.array([1.3]), np.array([0.3]), prior)[2], abs=1e-9)
    # every row constant (no spread anywhere)
    Y = np.full((2, 4), 0.5)
    se = np.array([0.1, 0.2, 0.3, 0.4])
    flat = exact_linear_combination_batch(Y, se, prior, [1.0])
    np.testing.assert_allclose(flat.mean, 0.5, rtol=1e-12)
    _, sd, _ = _mu_moments_by_quadrature(Y[0], se, prior)
    np.testing.assert_allclose(flat.sd, sd, rtol=1e-9)


def test_batch_rejects_bad_input():
    with pytest.raises(ValueError, match=r"^each row of Y needs one value per standard error$"):
        exact_linear_combination_batch(np.zeros((2, 0)), [], HN, [1.0])
    with pytest.raises(ValueError, match=r"^Y must be finite and se finite and positive$"):
        exact_linear_combination_batch([[0.0, np.nan]], [1.0, 1.0], HN, [1.0])
    with pytest.raises(ValueError, match="finite"):
        exact_linear_combination_batch([[0.0, 1.0]], [1.0, np.inf], HN, [1.0])
    with pytest.raises(ValueError, match="finite"):
        exact_linear_combination_batch([[0.0, 1.0]], [1.0, 0.0], HN, [1.0])


# --------------------------------------------------------------------------- integration range
def _full_region(h):
    keep = np.nonzero(h > np.max(h) - 36.0)[0]
    return int(keep[0]), int(keep[-1])


@pytest.mark.parametrize("n", [701, 703])
@pytest.mark.parametrize(
    "shape",
    [
        lambda g: -0.5 * ((g - 1.3) / 0.9) ** 2,  # interior peak
        lambda g: -3.0 * np.abs(g + 4.1) - 0.02 * g**2,  # kink, asymmetric
        lambda g: 2.0 * g,  # maximum at the upper end
        lambda g: -1.5 * g,  # maximum at the lower end
        lambda g: np.where(g < -20, -np.inf, -0.5 * (g / 2.0) ** 2),  # -inf part
    ],
)
def test_sparse_region_search_matches_full_evaluation(n, shape):
    grid = np.linspace(-35.0, 35.0, n)
    calls = []

    def f(t):
        calls.append(t.size)
        return shape(t)

    want = _full_region(shape(grid))
    assert _region(grid, f, sparse=True) == want
    assert sum(calls) <= n // 5 + 2 + 3 * 8  # every 5th point and a few neighbours
    calls.clear()
    assert _region(grid, f, sparse=False) == want
    assert sum(calls) == n


def test_region_search_fails_loudly_when_nothing_can_be_evaluated():
    grid = np.linspace(-1.0, 1.0, 101)
    for sparse in (True, False):
        with pytest.raises(FloatingPointError, match="could not be evaluated"):
            _region(grid, lambda t: np.full(t.size, np.nan), sparse=sparse)
        with pytest.raises(FloatingPointError,
                           match=r"^posterior of tau could not be evaluated$"):
            _region(grid, lambda t: np.full(t.size, -np.inf), sparse=sparse)


def test_default_panels_follow_the_width_of_the_range():
    wide = exact_posterior(Y5, S5, HN)
    assert wide.t_edges[-1] - wide.t_edges[0] >= 3.84
    assert wide.t_edges.size == 97
    assert wide.order == 8
    # many precise studies: a narrow range, one panel per 0.08 e-fold (at least 12)
    rng = np.random.default_rng(1)
    k = 80
    se = rng.uniform(0.1, 0.3, k)
    y = rng.normal(0.0, np.sqrt(se**2 + 0.5**2))
    narrow = exact_posterior(y, se, HN)
    width = narrow.t_edges[-1] - narrow.t_edges[0]
    assert width < 3.84
    assert narrow.t_edges.size - 1 == max(12, math.ceil(width / 0.08))
    # the range holds the posterior: the same answer as adaptive quadrature over all tau
    def quad(g):
        return sum(integrate.quad(lambda t: g(t) * _flat_mu_density(t, y, se), a, b,
                                  epsabs=0, epsrel=1e-12, limit=400, points=pts)[0]
                   for a, b, pts in ((0, 3, [0.3, 0.5, 0.8]), (3, np.inf, None)))

    tau_mean = quad(lambda t: t) / quad(lambda t: 1.0)
    assert narrow.tau_mean == pytest.approx(tau_mean, rel=1e-10)
    assert narrow.integration_error < 1e-8


# --------------------------------------------------------------------------- input handling
def test_exact_posterior_rejects_bad_input():
    with pytest.raises(ValueError, match=r"^y and se must be non-empty and of equal length$"):
        exact_posterior([], [], HN)
    with pytest.raises(ValueError, match="equal length"):
        exact_posterior([1.0], [1.0, 1.0], HN)
    with pytest.raises(ValueError, match=r"^y must be finite and se finite and positive$"):
        exact_posterior([1.0, np.nan], [1.0, 1.0], HN)
    with pytest.raises(ValueError, match="finite"):
        exact_posterior([1.0, 2.0], [1.0, np.inf], HN)
    with pytest.raises(ValueError, match="finite"):
        exact_posterior([1.0, 2.0], [1.0, -1.0], HN)
    with pytest.raises(ValueError, match=r"^X must have one row per study$"):
        exact_posterior([1.0, 2.0], [1.0, 1.0], HN, X=np.ones((3, 1)))
    with pytest.raises(
            ValueError,
            match=r"^posterior is improper: flat-prior columns of X are rank deficient$"):
        exact_posterior(Y5, S5, HN, X=np.column_stack([np.ones(5), 2 * np.ones(5)]))
    with pytest.raises(ValueError, match="2 such pairs"):
        exact_posterior(Y5, S5, HN, [(0, 1), (0, 1), (0, 1)], np.column_stack([np.ones(5),
                                                                                 S5]))
    for bad in [(0.0, 0.0), (0.0, -1.0), (np.inf, 1.0), (np.nan, 1.0)]:
        with pytest.raises(ValueError, match=r"^prior sds must be positive \(inf = flat\) and "
                                             r"means finite$"):
            exact_posterior(Y5, S5, HN, bad)


def test_two_flat_coefficients_of_full_rank_are_proper(regression):
    r = regression
    post = exact_posterior(r["y"], r["se"], HN, (0.0, math.inf), r["X"])
    assert post.log_evidence is None
    cond = post._conditional(np.array([0.2]))
    w = 1 / (r["se"] ** 2 + 0.04)  # weighted least squares at tau = 0.2
    xtw = r["X"].T * w
    np.testing.assert_allclose(cond.mean[0], np.linalg.solve(xtw @ r["X"], xtw @ r["y"]),
                               rtol=1e-12)
    np.testing.assert_allclose(cond.cov[0], np.linalg.inv(xtw @ r["X"]), rtol=1e-12)


def test_custom_prior_without_a_scale_on_identical_estimates():
    # no reference scale from the prior and none from the spread of the estimates
    hn = TauPrior.half_normal(1.0)
    custom = TauPrior.custom(hn.logpdf, "half-normal(1) by hand")
    y, se = [0.5, 0.5, 0.5], [0.2, 0.3, 0.5]  # binary fractions: spread exactly 0
    a = exact_posterior(y, se, custom)
    b = exact_posterior(y, se, hn)
    assert a.tau_mean == pytest.approx(b.tau_mean, rel=1e-9)
    assert a.mu.sd == pytest.approx(b.mu.sd, rel=1e-9)


def test_exact_posterior_input_variants():
    # a proper prior on the collinear column makes the posterior proper again
    X = np.column_stack([np.ones(5), 2 * np.ones(5)])
    post = exact_posterior(Y5, S5, HN, [(0.0, math.inf), (0.0, 1.0)], X)
    assert np.isfinite(post.coef(1).sd)
    # a 1-D moderator vector is one column; names default to b0..; labels to 1..k
    x = np.linspace(-1, 1, 5)
    post = exact_posterior(Y5, S5, HN, (0.0, 10.0), x)
    assert post.X.shape == (5, 1)
    assert post.coef_names == ["b0"]
    assert post.labels == ["1", "2", "3", "4", "5"]
    same = exact_posterior(Y5, S5, HN, (0.0, 10.0), x[:, None])
    assert post.coef(0).mean == pytest.approx(same.coef(0).mean, rel=1e-14)
    # slope-only model through the origin: conjugate normal given tau
    cond = post._conditional(np.array([0.3]))
    b, cov_b, *_ = _joint_gaussian(Y5, S5, x[:, None], 0.3, np.zeros(1), [10.0])
    assert cond.mean[0, 0] == pytest.approx(b[0], rel=1e-10)
    assert cond.cov[0, 0, 0] == pytest.approx(cov_b[0, 0], rel=1e-10)
    # an explicit intercept column equals the default model
    a = exact_posterior(Y5, S5, HN, (0.0, 2.0), np.ones((5, 1)))
    d = exact_posterior(Y5, S5, HN, (0.0, 2.0))
    assert a.coef_names == ["b0"]
    assert a.mu.mean == pytest.approx(d.mu.mean, rel=1e-12)
    assert a.log_evidence == pytest.approx(d.log_evidence, rel=1e-12)
    # list input, per-coefficient prior given once for all columns
    X2 = np.column_stack([np.ones(5), x])
    one = exact_posterior(list(Y5), list(S5), HN, (0.0, 3.0), X2)
    two = exact_posterior(Y5, S5, HN, [(0.0, 3.0), (0.0, 3.0)], X2)
    np.testing.assert_allclose(one.prior_sd, [3.0, 3.0])
    assert one.coef(1).mean == pytest.approx(two.coef(1).mean, rel=1e-15)


def test_integer_and_shaped_inputs_give_the_same_answers():
    post = exact_posterior(Y5, S5, HN)
    assert post.tau_pdf(1) == pytest.approx(post.tau_pdf(1.0), rel=1e-15)
    assert post.tau_pdf(1) > 0
    np.testing.assert_array_equal(post.tau_quantile([0, 1]), [0.0, math.exp(post.t_edges[-1])])
    np.testing.assert_array_equal(post.tau_quantile([1.0, 0.0]),
                                  [math.exp(post.t_edges[-1]), 0.0])
    np.testing.assert_array_equal(MIX.ppf([0, 1]), [-np.inf, np.inf])
    # a moderator row given as a (1, p) array
    x = np.linspace(-1, 1, 5)
    reg = exact_posterior(Y5, S5, HN, (0.0, 3.0), np.column_stack([np.ones(5), x]))
    np.testing.assert_allclose(reg.linear_combination([[0.0, 1.0]]).means, reg.coef(1).means,
                               rtol=0)
    np.testing.assert_allclose(reg.coef().means, reg.coef(0).means, rtol=0)
    row = reg.predictive([[1.0, 0.5]])
    np.testing.assert_allclose(row.means, reg.predictive([1.0, 0.5]).means, rtol=1e-15)
    np.testing.assert_allclose(row.sds, reg.predictive([1.0, 0.5]).sds, rtol=1e-15)


def test_draws_are_reproducible_from_the_generator():
    post = exact_posterior(Y5, S5, HN)
    a = post.sample(50, np.random.default_rng(4))
    b = post.sample(50, np.random.default_rng(4))
    for key in ("tau", "beta", "mu", "theta_new"):
        np.testing.assert_array_equal(a[key], b[key])
    c = post.sample(50)  # a fresh generator when none is given
    assert c["tau"].shape == (50,)
    assert not np.array_equal(c["tau"], a["tau"])


def test_tau_quantiles_in_the_first_and_last_panels():
    # k = 1, tau ~ Uniform(0, 2): mass right up to the bound, so the last panel matters
    post = exact_posterior([1.2], [0.5], TauPrior.uniform(2.0), (0.0, 1.0))
    z = integrate.quad(lambda t: float(post.tau_pdf(t)), 0, 2.0, epsabs=0, epsrel=1e-12)[0]
    assert z == pytest.approx(1.0, abs=1e-10)
    for t in (0.3, 1.0, 1.995):
        ref = integrate.quad(lambda u: float(post.tau_pdf(u)), 0, t, epsabs=0,
                             epsrel=1e-12)[0]
        assert post.tau_cdf(t) == pytest.approx(ref, abs=1e-10)
    q_last = 0.5 * (post.panel_cdf[-2] + 1.0)  # inside the last panel
    t_last = float(post.tau_quantile(q_last))
    assert math.exp(post.t_edges[-2]) < t_last < 2.0
    assert post.tau_cdf(t_last) == pytest.approx(q_last, abs=1e-12)
    q_first = 0.5 * post.panel_cdf[1]  # inside the first panel (a tiny probability)
    assert q_first > 0
    t_first = float(post.tau_quantile(q_first))
    assert math.exp(post.t_edges[0]) < t_first < math.exp(post.t_edges[1])
    assert post.tau_cdf(t_first) == pytest.approx(q_first, rel=1e-6)
    # the table at n = 2: 0 and the upper quantile, the density at 0 by its limit
    tab = post.tau_table(n=2, upper_q=0.5)
    assert tab["grid"] == [0.0, pytest.approx(float(post.tau_quantile(0.5)), rel=1e-15)]
    assert tab["posterior"][0] == pytest.approx(float(post.tau_pdf(1e-9)), rel=1e-9)
    assert tab["posterior"][0] > 0
    assert post.tau_table(n=1)["grid"] == [0.0]


def test_batch_far_from_the_prior_shifts_each_data_set_before_exponentiating():
    # estimates 1000 times the prior scale of tau: log weights near -1700 would underflow
    # unless each data set's maximum is subtracted first (a finer rule than the default,
    # whose 0.37 e-fold panels are too wide for this posterior of tau, sd/mean ~ 1%)
    far = 1000.0 * Y5
    Y = np.vstack([Y5, far])
    batch = exact_linear_combination_batch(Y, S5, HN, [1.0], n_panels=400, order=16)
    assert np.all(np.isfinite(batch.mean))
    for i, y in enumerate(Y):
        ref = exact_posterior(y, S5, HN).mu
        assert batch.mean[i] == pytest.approx(ref.mean, rel=1e-6)
        assert batch.sd[i] == pytest.approx(ref.sd, rel=1e-6)
        assert batch.prob_gt_0[i] == pytest.approx(ref.prob_gt(0.0), abs=1e-8)
