"""All-reports likelihood: route rules, the p -> SE conversion and the brute-force oracle."""

from __future__ import annotations

import math

import arviz_stats as azs
import numpy as np
import pytest
from scipy import integrate, stats

from nutrimeta.models.fitting import SamplerSettings
from nutrimeta.models.partial import (
    CellReport,
    Contribution,
    PartialPriors,
    assign_route,
    critical_value,
    fit_partial,
    se_from_exact_p,
)
from nutrimeta.models.partial_grid import grid_posterior

# ----------------------------------------------------------------- p -> SE conversion


def test_se_from_exact_p_inverts_the_t_test() -> None:
    # a two-sample t test with known SE: its p-value must give the SE back
    est, se, n1, n2 = 1.3, 0.55, 14, 17
    p = 2 * stats.t.sf(est / se, n1 + n2 - 2)
    got, df = se_from_exact_p(est, p, n1, n2)
    assert df == 29
    assert got == pytest.approx(se, rel=1e-10)
    # total n only: df = n - 2; no n: z
    assert se_from_exact_p(est, p, n_total=31)[0] == pytest.approx(se, rel=1e-10)
    pz = 2 * stats.norm.sf(est / se)
    assert se_from_exact_p(-est, pz)[0] == pytest.approx(se, rel=1e-10)
    with pytest.raises(ValueError):
        se_from_exact_p(0.0, 0.5, 10, 10)


def test_critical_value() -> None:
    assert critical_value(0.05) == pytest.approx(1.959963985, rel=1e-9)
    assert critical_value(0.05, 10) == pytest.approx(2.228138852, rel=1e-9)


# ------------------------------------------------------------------------ route rules


@pytest.mark.parametrize(("cell", "route", "assumed"), [
    (CellReport("a", estimate=1.0, se=0.4, n1=10, n2=10), "full", False),
    (CellReport("a", estimate=1.0, se=0.4, se_from_p=True), "se_from_p", False),
    (CellReport("a", estimate=1.0, p_value=0.02, p_qualifier="=", n1=10, n2=12,
                p_comparison="between_arms"), "se_from_p", False),
    (CellReport("a", estimate=1.0, n1=10, n2=12), "latent_sd", False),
    (CellReport("a", estimate=1.0, n_total=40), "latent_sd", True),
    (CellReport("a", p_value=0.05, p_qualifier="<", direction="decrease", n1=20, n2=20,
                p_comparison="between_arms"), "censored_threshold", False),
    (CellReport("a", p_value=0.05, p_qualifier=">", n_total=50,
                p_comparison="between_arms"), "censored_ns", True),
    (CellReport("a", direction="no_change", n1=30, n2=30), "censored_ns", False),
    (CellReport("a", p_value=0.40, p_qualifier="=", n1=30, n2=30), "censored_ns", False),
    (CellReport("a", direction="increase", n1=30, n2=30), "sign", False),
])
def test_assign_route(cell: CellReport, route: str, assumed: bool) -> None:
    d = assign_route(cell)
    assert d.route == route and d.contribution is not None
    assert bool(d.assumptions) is assumed
    if assumed:
        assert d.contribution.n1 == d.contribution.n2 == cell.n_total / 2


def test_route_details() -> None:
    d = assign_route(CellReport("a", p_value=0.01, p_qualifier="<", direction="increase",
                                n1=20, n2=22, p_comparison="between_arms"))
    assert d.contribution.alpha == 0.01 and d.contribution.direction == 1
    assert d.contribution.crit == pytest.approx(stats.t.isf(0.005, 40))
    d = assign_route(CellReport("a", estimate=2.0, p_value=0.02, p_qualifier="=", n1=10,
                                n2=12, p_comparison="between_arms"))
    assert d.contribution.se == pytest.approx(2.0 / stats.t.isf(0.01, 20))


@pytest.mark.parametrize(("cell", "why"), [
    (CellReport("a", direction="increase"), "no sample size"),
    (CellReport("a", p_value=0.95, p_qualifier="<", direction="decrease", n1=5, n2=5),
     "not a significance threshold"),
    (CellReport("a", p_value=0.01, p_qualifier="<", n1=5, n2=5, p_comparison="within_arm"),
     "within-arm"),
])
def test_unusable_cells_say_why(cell: CellReport, why: str) -> None:
    d = assign_route(cell)
    assert not d.usable and why in d.reason


def test_contribution_rejects_a_nonsense_threshold() -> None:
    with pytest.raises(ValueError, match="significance threshold"):
        Contribution("a", "censored_threshold", n1=5, n2=5, alpha=0.95, direction=1)


# ---------------------------------------------------------------------- grid vs quad


def test_grid_likelihood_of_one_censored_trial_matches_direct_integration() -> None:
    """One censored-threshold trial with latent SD: grid marginal vs scipy quadrature
    over theta and log sigma (no shortcut through the analytic theta integral)."""
    pri = PartialPriors(unit_sd=1.0, tau_scale=0.5, log_sd_spread=0.3, learn_sd=False)
    c = Contribution("x", "censored_threshold", n1=12, n2=12, direction=1, df=22)
    mu0, tau0 = 0.4, 0.3
    g = grid_posterior([c], pri, n_mu=3, n_tau=2, mu_range=(mu0 - 1, mu0 + 1))
    assert g.mu_grid[1] == pytest.approx(mu0)

    def integrand(theta: float, ls: float) -> float:
        se = math.exp(ls) * c.se_factor
        return (stats.norm.pdf(ls, 0, 0.3) * stats.norm.pdf(theta, mu0, tau0)
                * stats.norm.sf(c.crit * se, theta, se))

    direct, _ = integrate.dblquad(integrand, -1.5, 1.5, -4, 4)
    from nutrimeta.models.partial_grid import _log_terms
    x, w = np.polynomial.hermite_e.hermegauss(32)
    se = np.exp(0.3 * x) * c.se_factor
    quad = float((w / w.sum()) @ np.exp(_log_terms(c, np.array(mu0), np.array(tau0), se)))
    assert quad == pytest.approx(direct, rel=1e-5)


@pytest.mark.parametrize("contrib", [
    Contribution("x", "latent_sd", estimate=0.7, n1=9, n2=11, df=18),
    Contribution("x", "censored_threshold", direction=-1, alpha=0.05, n1=9, n2=11, df=18),
    Contribution("x", "censored_ns", alpha=0.05, n1=9, n2=11, df=18),
    Contribution("x", "sign", direction=1, n1=9, n2=11),
])
def test_latent_term_is_the_general_path_bit_for_bit(contrib: Contribution) -> None:
    """The in-place path of a contribution with a latent SE: identical to the general path
    and equal to the quadrature sum of the route's probability written out with scipy."""
    from nutrimeta.models.partial_grid import _latent_term, _log_terms, _logsumexp0

    c = contrib
    x, w = np.polynomial.hermite_e.hermegauss(16)
    logw = np.log(w / w.sum())[:, None, None]
    se = np.exp(0.2 + 0.4 * x)[:, None, None] * c.se_factor
    mu = np.linspace(-3.0, 3.0, 41)[None, :, None]
    tau = np.linspace(0.01, 2.0, 13)[None, None, :]
    fast = _latent_term(c, mu, tau, se, logw)
    assert np.array_equal(fast, _logsumexp0(_log_terms(c, mu, tau, se) + logw))
    s = np.sqrt(se**2 + tau**2)
    y = stats.norm(mu, s)
    lik = {"latent_sd": lambda: y.pdf(c.estimate),
           "censored_threshold": lambda: y.cdf(-c.crit * se),  # a decrease beyond -crit se
           "censored_ns": lambda: y.cdf(c.crit * se) - y.cdf(-c.crit * se),
           "sign": lambda: y.sf(0.0)}[c.route]()
    direct = np.log(np.sum(np.exp(logw) * lik, axis=0))
    np.testing.assert_allclose(fast, direct, rtol=1e-9)


def test_grid_posterior_cache_gives_the_uncached_result() -> None:
    from nutrimeta.models import partial_grid as partial

    pri = PartialPriors(unit_sd=1.0, tau_scale=0.5, log_sd_spread=0.3, learn_sd=False)
    contribs = [Contribution("a", "full", estimate=0.4, se=0.3),
                Contribution("b", "latent_sd", estimate=0.9, n1=10, n2=12, df=20),
                Contribution("c", "sign", direction=-1, n1=8, n2=8, df=14)]
    partial._GRIDS.clear()
    partial._TERMS.clear()
    first = grid_posterior(contribs, pri, n_mu=61, n_tau=20, n_sd=8)
    again = grid_posterior(list(contribs), pri, n_mu=61, n_tau=20, n_sd=8)
    assert again is first and not first.mu_pmf.flags.writeable
    partial._GRIDS.clear()
    partial._TERMS.clear()
    fresh = grid_posterior(contribs, pri, n_mu=61, n_tau=20, n_sd=8)
    assert fresh is not first
    for name in ("mu_grid", "tau_grid", "mu_pmf", "tau_pmf"):
        assert np.array_equal(getattr(fresh, name), getattr(first, name))
    # another estimate is another posterior, not a cache hit
    moved = [contribs[0], Contribution("b", "latent_sd", estimate=-0.9, n1=10, n2=12, df=20),
             contribs[2]]
    other = grid_posterior(moved, pri, n_mu=61, n_tau=20, n_sd=8)
    assert other.summary()["mu"]["mean"] < first.summary()["mu"]["mean"]


# ----------------------------------------------------------------------------- oracle

ORACLE_PRIORS = PartialPriors(unit_sd=1.0, mu_sd=1.0, tau_scale=0.5, log_sd_spread=0.3,
                              learn_sd=False)


def _oracle_contribs() -> list[Contribution]:
    se_b, df_b = se_from_exact_p(0.6, 0.03, 25, 25)
    return [
        Contribution("A", "full", estimate=0.5, se=0.3, n1=20, n2=20, df=38),
        Contribution("B", "se_from_p", estimate=0.6, se=se_b, n1=25, n2=25, df=df_b),
        Contribution("C", "latent_sd", estimate=0.2, n1=15, n2=15, df=28),
        Contribution("D", "censored_threshold", n1=30, n2=30, direction=1, df=58),
        Contribution("E", "censored_ns", n1=20, n2=20, df=38),
        Contribution("F", "sign", n1=10, n2=10, direction=-1, df=18),
    ]


@pytest.fixture(scope="module")
def oracle_reference() -> dict:
    contribs = _oracle_contribs()
    grid = grid_posterior(contribs, ORACLE_PRIORS, n_mu=1601, n_tau=800,
                          mu_range=(-2.5, 3.0), tau_max=2.5)
    return grid.summary()


def _check_against_oracle(ref: dict, seed: int) -> None:
    fitted = fit_partial(_oracle_contribs(), ORACLE_PRIORS,
                         SamplerSettings(chains=4, draws=2000, tune=1000, cores=2,
                                         target_accept=0.99), seed=seed)
    assert fitted.summary()["divergences"] == 0
    post = fitted.posterior["posterior"]
    for name in ("mu", "tau"):
        x = np.asarray(post[name])  # (chain, draw)
        checks = {
            "mean": (x.mean(), azs.mcse(x, method="mean")),
            "sd": (x.std(ddof=1), azs.mcse(x, method="sd")),
        }
        for q, key in ((0.025, "q025"), (0.5, "q500"), (0.975, "q975")):
            checks[key] = (np.quantile(x, q), azs.mcse(x, method="quantile", prob=q))
        for stat, (got, mcse) in checks.items():
            want = ref[name][stat]
            assert abs(got - want) < 3 * float(mcse), (name, stat, got, want, float(mcse))


def test_sampler_agrees_with_brute_force_oracle(oracle_reference: dict) -> None:
    """mu and tau: mean, SD and 2.5/50/97.5% quantiles within 3 MCSE of the grid posterior."""
    # the default, self-placing grid gives the same posterior as the explicit fine grid
    auto = grid_posterior(_oracle_contribs(), ORACLE_PRIORS).summary()
    for name in ("mu", "tau"):
        for stat in ("mean", "sd", "q025", "q500", "q975"):
            assert auto[name][stat] == pytest.approx(oracle_reference[name][stat], abs=2e-3)
    _check_against_oracle(oracle_reference, seed=4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 6, 8])
def test_sampler_agrees_with_oracle_under_other_seeds(oracle_reference: dict, seed: int
                                                      ) -> None:
    """The agreement does not hang on one seed."""
    _check_against_oracle(oracle_reference, seed=seed)


@pytest.mark.slow
def test_log_sd_prior_is_learned_from_reported_sds() -> None:
    """Trials reporting SDs near 2 (unit 1): the log-SD centre moves from log 1 to near log 2,
    and the latent SD of a trial without dispersion follows it."""
    contribs = [
        Contribution(f"s{i}", "full", estimate=0.5, se=2.0 * math.sqrt(2 / 40), n1=40, n2=40,
                     df=78, sd=s)
        for i, s in enumerate((1.8, 2.1, 2.0, 2.3, 1.9, 2.2))
    ] + [Contribution("lat", "latent_sd", estimate=0.4, n1=25, n2=25, df=48)]
    pri = PartialPriors(unit_sd=1.0, learn_sd=True)
    fitted = fit_partial(contribs, pri, seed=3)
    assert fitted.summary()["divergences"] == 0
    eta = fitted.draws("log_sd_mean")
    assert abs(eta.mean() - math.log(2.0)) < 0.1
    sd_lat = np.asarray(fitted.posterior["posterior"]["sd_latent"]).reshape(-1)
    assert 1.4 < np.median(sd_lat) < 2.8


def test_fit_stage_imports_without_the_sampler() -> None:
    """The grid path and the exact models need no sampler: importing the fit stage loads
    neither PyMC, PyTensor, nutpie nor arviz-stats (imported when a model is sampled or its
    draws are checked)."""
    import subprocess
    import sys

    code = ("import sys, nutrimeta.synthesis, nutrimeta.models.partial as p; "
            "print(sorted(m for m in ('pymc', 'pytensor', 'nutpie', 'arviz_stats') "
            "if m in sys.modules)); print(p.PARTIAL_SAMPLER.target_accept)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["[]", "0.99"]
