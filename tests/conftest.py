"""Shared session fixtures: small seeded data sets and models compiled once per test session."""

from __future__ import annotations

import numpy as np
import pytest

from nutrimeta.models.bayes import ModelData, Priors
from nutrimeta.models.fitting import Refitter, SamplerSettings

EIGHT_SCHOOLS_Y = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
EIGHT_SCHOOLS_SE = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)


@pytest.fixture(scope="session")
def sampler() -> SamplerSettings:
    """4 chains x 1000 draws after 1000 warm-up draws, 2 cores."""
    return SamplerSettings(chains=4, draws=1000, tune=1000, cores=2)


@pytest.fixture(scope="session")
def eight_schools() -> ModelData:
    """Eight schools (Rubin 1981): coaching effects and standard errors."""
    return ModelData.from_arrays(EIGHT_SCHOOLS_Y, EIGHT_SCHOOLS_SE, labels=list("ABCDEFGH"))


@pytest.fixture(scope="session")
def eight_schools_priors() -> Priors:
    """mu ~ N(0, 20), tau ~ HalfNormal(10)."""
    return Priors(mu_sd=20.0, tau_family="half_normal", tau_scale=10.0)


@pytest.fixture(scope="session")
def re_refitter(eight_schools: ModelData, eight_schools_priors: Priors,
                sampler: SamplerSettings) -> Refitter:
    """Non-centred random-effects model with 8 studies, compiled once."""
    return Refitter(eight_schools, eight_schools_priors, "random_effects", sampler=sampler)


@pytest.fixture(scope="session")
def re_marginal_refitter(eight_schools: ModelData, eight_schools_priors: Priors,
                         sampler: SamplerSettings) -> Refitter:
    """Marginalised random-effects model with 8 studies, compiled once."""
    return Refitter(eight_schools, eight_schools_priors, "random_effects_marginal",
                    sampler=sampler)


@pytest.fixture(scope="session")
def eight_schools_fit(re_refitter: Refitter):
    """Seeded random-effects fit of the eight schools."""
    return re_refitter.fit(seed=11)


def _simulate_regression(
    rng: np.random.Generator,
    k: int = 24,
    mu: float = 0.3,
    slope: float = -0.6,
    tau: float = 0.15,
    frac_missing: float = 0.3,
) -> tuple[ModelData, np.ndarray]:
    """Studies whose true effect falls with baseline level; some levels hidden.

    The moderator is the baseline level minus the cut-off; hidden levels keep only their
    category (deficient below 0, marginal in [0, 1), replete from 1), as real reports do.
    Returns the data and the true moderator values.
    """
    x = rng.uniform(-2.0, 3.0, k)
    se = rng.uniform(0.15, 0.4, k)
    y = rng.normal(mu + slope * x + tau * rng.normal(size=k), se)
    cats = np.where(x < 0, "deficient", np.where(x < 1, "marginal", "replete"))
    hidden = rng.uniform(size=k) < frac_missing
    data = ModelData.from_arrays(y, se, x=np.where(hidden, np.nan, x), categories=list(cats))
    return data, x


@pytest.fixture(scope="session")
def simulate_regression():
    """The simulator of baseline-moderated effects (a function of an rng and options)."""
    return _simulate_regression


@pytest.fixture(scope="session")
def regression_priors() -> Priors:
    """Priors whose latent-baseline model matches the simulator's categories."""
    return Priors(
        mu_sd=1.0, tau_scale=0.3, slope_sd=1.0,
        latent_baseline={"deficient": (-1.0, 0.6), "marginal": (0.5, 0.3),
                         "replete": (2.0, 0.6), "unknown": (0.5, 1.5)},
        x_deficient=-1.0, x_replete=2.0,
    )


@pytest.fixture(scope="session")
def regression_refitter(regression_priors: Priors, sampler: SamplerSettings) -> Refitter:
    """Continuous baseline meta-regression on 24 simulated studies, compiled once."""
    data, _ = _simulate_regression(np.random.default_rng(2024))
    return Refitter(data, regression_priors, "meta_regression_continuous", sampler=sampler)
