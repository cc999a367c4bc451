"""The batched exact posterior of a linear combination agrees with one exact posterior per
data set (the independent reference: :func:`exact_posterior`, itself checked against
bayesmeta and brute-force integration elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

from nutrimeta.models.exact import (
    TauPrior,
    _gauss_legendre,
    exact_linear_combination_batch,
    exact_posterior,
)


@pytest.fixture(autouse=True)
def _fresh_quadrature_rules():
    """Compute the Gauss-Legendre rules afresh in each test (a cache filled before a mutation
    run forks would hide mutants of the rule)."""
    _gauss_legendre.cache_clear()
    yield
    _gauss_legendre.cache_clear()


@pytest.mark.parametrize("tau_prior", [TauPrior.half_normal(0.3), TauPrior.half_cauchy(0.5),
                                       TauPrior.uniform(2.0)])
@pytest.mark.parametrize("moderator", [False, True])
def test_batch_matches_one_posterior_per_data_set(tau_prior: TauPrior, moderator: bool) -> None:
    rng = np.random.default_rng(7)
    k = 8
    se = rng.uniform(0.05, 0.6, k)
    x = np.r_[np.full(4, -0.12), np.full(4, 0.12)]
    X = np.c_[np.ones(k), x] if moderator else None
    prior = [(0.2, 1.5), (0.0, 4.0)] if moderator else (0.2, 1.5)
    c = [0.0, -0.24] if moderator else [1.0]
    # data sets from homogeneous to very heterogeneous
    Y = rng.normal(0.3, 1.0, (12, k)) * np.linspace(0.05, 3.0, 12)[:, None]
    batch = exact_linear_combination_batch(Y, se, tau_prior, c, prior, X)
    for i, y in enumerate(Y):
        ref = exact_posterior(y, se, tau_prior, prior, X).linear_combination(c)
        assert batch.mean[i] == pytest.approx(ref.mean, rel=1e-7, abs=1e-9)
        assert batch.sd[i] == pytest.approx(ref.sd, rel=1e-7)
        assert batch.prob_gt_0[i] == pytest.approx(ref.prob_gt(0.0), abs=1e-8)


def test_batch_flat_prior_and_bad_input() -> None:
    se = np.array([0.1, 0.2, 0.3])
    Y = np.array([[0.1, 0.4, -0.2], [1.0, 1.1, 0.9]])
    batch = exact_linear_combination_batch(Y, se, TauPrior.half_normal(0.5), [1.0])
    for i, y in enumerate(Y):
        ref = exact_posterior(y, se, TauPrior.half_normal(0.5)).mu
        assert batch.mean[i] == pytest.approx(ref.mean, rel=1e-7)
        assert batch.sd[i] == pytest.approx(ref.sd, rel=1e-7)
    with pytest.raises(ValueError, match="one value per standard error"):
        exact_linear_combination_batch(Y, se[:2], TauPrior.half_normal(0.5), [1.0])
    with pytest.raises(ValueError, match="finite"):
        exact_linear_combination_batch(Y, -se, TauPrior.half_normal(0.5), [1.0])
