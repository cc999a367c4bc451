"""The convergence gate against synthetic traces with known properties, and the retry ladder.

Traces: independent normal draws per chain with chain means offset by ``delta`` have a known
potential scale reduction ``R = sqrt((n - 1) / n + (1 + 1/m) B / (n W))`` (Gelman et al.,
BDA3 §11.4: ``B / n`` the variance of the chain means, ``W`` the within-chain variance); AR(1)
chains with coefficient ``rho`` have ``ESS = N (1 - rho) / (1 + rho)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from nutrimeta.diagnostics import Diagnostics, Thresholds, check
from nutrimeta.models.bayes import ModelData, Priors
from nutrimeta.models.fitting import Refitter, SamplerSettings, fit_with_retries

CHAINS, DRAWS = 4, 2000


def _tree(x: np.ndarray, diverging: int = 0) -> xr.DataTree:
    rng = np.random.default_rng(1)
    div = np.zeros(x.shape, dtype=bool)
    div.flat[:diverging] = True
    return xr.DataTree.from_dict({
        "/posterior": xr.Dataset({"mu": (("chain", "draw"), x)}),
        "/sample_stats": xr.Dataset({
            "diverging": (("chain", "draw"), div),
            "energy": (("chain", "draw"), rng.normal(size=x.shape)),  # E-BFMI about 2
        }),
    })


def _offset_chains(r_target: float, seed: int = 0) -> np.ndarray:
    """Chains whose classic R-hat is ``r_target`` in expectation (means at +-delta)."""
    n, m = DRAWS // 2, 2 * CHAINS  # split chains
    b_over_n = (r_target**2 - (n - 1) / n) / (1 + 1 / m)  # with W = 1
    delta = np.sqrt(b_over_n * m / (m - 1))  # chain means +-delta: sample variance m/(m-1) d²
    rng = np.random.default_rng(seed)
    offsets = np.repeat([delta, -delta], CHAINS // 2)
    return rng.normal(size=(CHAINS, DRAWS)) + offsets[:, None]


@pytest.mark.parametrize(("r_target", "flagged"), [(1.0, False), (1.03, True), (1.06, True)])
def test_rhat_gate_on_known_traces(r_target, flagged):
    """R-hat between 1.01 and 1.1 is flagged (the gate is 1.01), R-hat 1 is not."""
    d = check(_tree(_offset_chains(r_target)))
    assert abs(d.rhat_max - r_target) < 0.006, d.rhat_max  # sampling error of R-hat
    assert (any("R-hat" in p for p in d.problems)) is flagged, d.problems
    assert d.passed is not flagged


@pytest.mark.parametrize(("rho", "flagged"), [(0.5, False), (0.92, True)])
def test_ess_gate_on_ar1_traces(rho, flagged):
    """ESS = N (1 - rho)/(1 + rho): 2,667 passes, 333 is flagged (limit 400)."""
    rng = np.random.default_rng(2)
    x = np.zeros((CHAINS, DRAWS))
    e = rng.normal(size=(CHAINS, DRAWS)) * np.sqrt(1 - rho**2)
    x[:, 0] = rng.normal(size=CHAINS)
    for t in range(1, DRAWS):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    d = check(_tree(x))
    expected = CHAINS * DRAWS * (1 - rho) / (1 + rho)
    assert 0.7 * expected < d.ess_bulk_min < 1.3 * expected, (d.ess_bulk_min, expected)
    assert any("ESS" in p for p in d.problems) is flagged


def test_one_divergence_fails_the_gate():
    d = check(_tree(np.random.default_rng(3).normal(size=(CHAINS, DRAWS)), diverging=1))
    assert d.divergences == 1 and not d.passed
    assert d.problems == [f"1 divergent transitions of {CHAINS * DRAWS} draws (allowed 0)"]
    assert Thresholds().rhat_max == 1.01 and Thresholds().divergences_max == 0


def test_retry_ladder_escalates_and_records_every_attempt():
    """Failing checks walk the ladder: own settings, longer adaptation at 0.99, alternative
    parameterisation; each attempt is recorded, the last fit is returned."""
    data = ModelData.from_arrays([0.2, -0.1, 0.5], [0.3, 0.2, 0.4],
                                 categories=["deficient", "deficient", "replete"])
    sampler = SamplerSettings(chains=2, draws=50, tune=50, cores=1, target_accept=0.9)
    refitter = Refitter(data, Priors(), "meta_regression_category", sampler=sampler)

    def never(dt: xr.DataTree) -> Diagnostics:
        return Diagnostics(1.5, 1.0, 1.0, 0, 1.0, passed=False, problems=["forced"])

    dt, diag, attempts = fit_with_retries(refitter, seed=1, check=never)
    assert not diag.passed and len(attempts) == 3
    assert [a["parameterisation"] for a in attempts] == ["default", "default", "noncentred"]
    assert attempts[1]["sampler"]["tune"] == 200 and attempts[1]["sampler"]["draws"] == 100
    assert attempts[1]["sampler"]["target_accept"] == 0.99
    assert attempts[2]["sampler"] == attempts[1]["sampler"]
    assert dt.attrs["sampling_attempts"] == attempts
    assert dt.attrs["parameterisation"] == "noncentred"
    assert dt["posterior"].sizes["draw"] == 100 and "effect_category_z" in dt["posterior"]
