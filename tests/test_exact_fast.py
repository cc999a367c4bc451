"""The fast paths of the exact posterior against direct evaluation of the same formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nutrimeta.models.exact import TauPrior, _conditional, _gauss_legendre, exact_posterior


@pytest.fixture(autouse=True)
def _fresh_quadrature_rules():
    """Compute the Gauss-Legendre rules afresh in each test (a cache filled before a mutation
    run forks would hide mutants of the rule)."""
    _gauss_legendre.cache_clear()
    yield
    _gauss_legendre.cache_clear()


def _direct(y, s2, tau, prior_prec, prior_mean):
    """``log p(y | tau)`` and ``mu | tau, y`` straight from the definitions, one tau at a time."""
    out = []
    for t in tau:
        v = s2 + t * t
        w = 1.0 / v
        prec = w.sum() + prior_prec
        m0 = prior_mean if prior_prec > 0 else 0.0
        mean = (w @ y + prior_prec * m0) / prec
        quad = w @ (y - mean) ** 2 + prior_prec * (mean - m0) ** 2
        out.append((-0.5 * np.log(v).sum() - 0.5 * math.log(prec) - 0.5 * quad, mean, 1 / prec))
    return np.array(out)


@pytest.mark.parametrize("k", [5, 200])
@pytest.mark.parametrize("prior", [(0.0, 0.0), (0.04, 1.5)])
def test_mean_only_sums_match_direct_evaluation(k: int, prior: tuple[float, float]) -> None:
    rng = np.random.default_rng(k)
    s2 = rng.uniform(0.05, 2.0, k)
    y = 3.0 + rng.normal(0, 1, k)
    # from deep in the lower series region through the direct region into the upper series
    tau = np.geomspace(1e-6, 1e3, 400)
    got = _conditional(y, s2, np.ones((k, 1)), tau, np.array([prior[0]]), np.array([prior[1]]))
    ref = _direct(y, s2, tau, *prior)
    np.testing.assert_allclose(got.loglik, ref[:, 0], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got.mean[:, 0], ref[:, 1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.cov[:, 0, 0], ref[:, 2], rtol=1e-12)


def test_narrow_posterior_with_many_studies_is_accurate() -> None:
    """k = 1000: fewer panels over the narrow range, same answer as a much finer rule."""
    rng = np.random.default_rng(7)
    k = 1000
    se = rng.uniform(0.2, 0.8, k)
    y = 0.3 + rng.normal(0, 0.3, k) + rng.normal(0, se)
    post = exact_posterior(y, se, TauPrior.half_normal(1.0))
    fine = exact_posterior(y, se, TauPrior.half_normal(1.0), grid=(400, 16))
    assert post.nodes_t.size < fine.nodes_t.size
    assert post.mu.mean == pytest.approx(fine.mu.mean, rel=1e-10)
    assert post.mu.sd == pytest.approx(fine.mu.sd, rel=1e-9)
    assert post.tau_mean == pytest.approx(fine.tau_mean, rel=1e-10)
    assert float(post.tau_quantile(0.975)) == pytest.approx(
        float(fine.tau_quantile(0.975)), rel=1e-9
    )
    assert post.integration_error < 1e-8
