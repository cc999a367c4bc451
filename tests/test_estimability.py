"""The estimability rule: support on both sides of the cut-off and posterior contraction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nutrimeta.estimability import (
    MODERATOR_QUANTITIES,
    EstimabilityRule,
    InformingTrials,
    assess,
    assess_draws,
    assess_quantities,
    category_moderator_prior_sds,
    continuous_moderator_prior_sds,
    prior_sds_by_simulation,
)

CUTOFF = 0.0
MU_SD, SLOPE_SD, X_DEF, X_REP = 1.0, 1.0, -0.2, 0.2


def conjugate_meta_regression(x: np.ndarray, v: np.ndarray, tau: float, y: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior of ``(mu, slope)`` in ``y_i ~ N(mu + slope x_i, v_i + tau^2)`` with
    independent normal priors ``N(0, MU_SD^2)``, ``N(0, SLOPE_SD^2)`` (known ``tau``)."""
    design = np.column_stack([np.ones_like(x), x])
    w = 1.0 / (v + tau**2)
    prec = design.T @ (w[:, None] * design) + np.diag([MU_SD**-2, SLOPE_SD**-2])
    cov = np.linalg.inv(prec)
    return cov @ (design.T @ (w * y)), cov


def posterior_sds(cov: np.ndarray) -> dict[str, float]:
    """Posterior SDs of the moderator quantities: linear maps of ``(mu, slope)``."""
    maps = {"slope": [0, 1], "effect_deficient": [1, X_DEF], "effect_replete": [1, X_REP],
            "deficient_minus_replete": [0, X_DEF - X_REP]}
    return {q: float(np.sqrt(np.array(a) @ cov @ np.array(a))) for q, a in maps.items()}


PRIOR_SDS = continuous_moderator_prior_sds(MU_SD, SLOPE_SD, X_DEF, X_REP)


def test_counting_informing_trials() -> None:
    t = InformingTrials.from_trials(
        [-0.3, 0.1, None, float("nan"), None, None],
        ["deficient", "replete", "deficient", "replete", "marginal", "unknown"], CUTOFF)
    assert t == InformingTrials(n_measured=2, n_category_only=3, n_below=2, n_above=2)


def test_no_trial_above_cutoff_is_not_estimable_everywhere() -> None:
    # many precise trials, all deficient: the slope is well informed within the range, yet
    # nothing is said about replete populations without extrapolating
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.8, -0.1, 40)
    v = np.full(40, 0.02)
    _, cov = conjugate_meta_regression(x, v, 0.1, rng.normal(size=40))
    trials = InformingTrials.from_trials(list(x), ["deficient"] * 40, CUTOFF)
    out = assess_quantities(PRIOR_SDS, posterior_sds(cov), trials)
    assert set(out) == set(MODERATOR_QUANTITIES)
    assert out["slope"].contraction < 0.8  # informative, and still not estimable
    for q, e in out.items():
        assert not e.estimable, q
        assert "no trial above the cut-off" in e.reason
        assert (e.n_below, e.n_above, e.n_measured) == (40, 0, 40)


def test_reason_names_the_contraction() -> None:
    e = assess(2.0, 1.72, InformingTrials(1, 3, 2, 2))
    assert not e.estimable
    assert e.reason == "posterior SD is 86% of the prior SD: the data barely inform it"
    assert e.contraction == pytest.approx(0.86)
    ok = assess(2.0, 0.5, InformingTrials(4, 0, 2, 2))
    assert ok.estimable and ok.reason.startswith("posterior SD is 25% of the prior SD")


def test_rule_boundaries_and_config() -> None:
    assert EstimabilityRule() == EstimabilityRule(max_contraction=0.5, min_trials_each_side=2)
    trials = InformingTrials(2, 0, 1, 1)
    lenient = EstimabilityRule(max_contraction=0.8, min_trials_each_side=1)
    assert not assess(1.0, 0.8, trials, lenient).estimable  # strictly below the fraction
    assert assess(1.0, 0.79, trials, lenient).estimable
    assert not assess(1.0, 0.49, trials).estimable  # the default asks for 2 trials each side
    assert assess(1.0, 0.49, InformingTrials(4, 0, 2, 2)).estimable
    assert not assess(1.0, 0.5, InformingTrials(4, 0, 2, 2)).estimable
    strict = EstimabilityRule.from_mapping({"max_contraction": 0.5, "min_trials_each_side": 2})
    e = assess(1.0, 0.4, trials, strict)
    assert not e.estimable and "only 1 trial below the cut-off (the rule asks for 2)" in e.reason
    with pytest.raises(ValueError, match="unknown keys"):
        EstimabilityRule.from_mapping({"max_contraction": 0.5, "min_trials": 2})
    with pytest.raises(ValueError, match="max_contraction"):
        EstimabilityRule(max_contraction=1.5)


def test_assess_draws_matches_exact_sds() -> None:
    rng = np.random.default_rng(3)
    e = assess_draws(rng.normal(0, 2.0, 20000), rng.normal(0, 0.6, 20000),
                     InformingTrials(4, 0, 2, 2))
    # SD of 20,000 normal draws: relative Monte Carlo error about 0.5%
    assert e.prior_sd == pytest.approx(2.0, rel=0.02)
    assert e.contraction == pytest.approx(0.3, rel=0.03)
    assert e.estimable


def test_prior_sds_of_derived_quantities_agree_with_simulation() -> None:
    pm = pytest.importorskip("pymc")
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, MU_SD)
        slope = pm.Normal("slope", 0.0, SLOPE_SD)
        dep = pm.Deterministic("effect_deficient", mu + slope * X_DEF)
        rep = pm.Deterministic("effect_replete", mu + slope * X_REP)
        pm.Deterministic("deficient_minus_replete", dep - rep)
        sig = 0.5 * pm.HalfNormal("sigma_c_raw", 1.0)
        z = pm.Normal("z", 0.0, 1.0, shape=2)
        pm.Deterministic("category_difference", sig * (z[0] - z[1]))
    names = [*MODERATOR_QUANTITIES, "category_difference"]
    sim = prior_sds_by_simulation(model, names, draws=20000, seed=5)
    for q in MODERATOR_QUANTITIES:
        assert float(sim[q]) == pytest.approx(PRIOR_SDS[q], rel=0.03), q
    cat = category_moderator_prior_sds(MU_SD, 0.5)
    assert float(sim["category_difference"]) == pytest.approx(
        cat["deficient_minus_replete"], rel=0.03)
    assert cat["effect_deficient"] == pytest.approx(math.sqrt(1.25))


def _flag_rate(rng: np.random.Generator, k: int, x_low: float, x_high: float,
               n_sim: int = 300) -> tuple[float, float]:
    """Share of simulated meta-analyses whose slope is flagged, and the mean contraction."""
    flagged, contractions = 0, []
    tau = 0.2
    for _ in range(n_sim):
        x = rng.uniform(x_low, x_high, k)
        n_arm = rng.integers(15, 80, k)
        v = 2.0 / n_arm + 0.1 / n_arm  # sampling variance of Hedges' g, d about 0.3
        y = rng.normal(0.2 - 0.5 * x, np.sqrt(v + tau**2))
        _, cov = conjugate_meta_regression(x, v, tau, y)
        cats = ["deficient" if xi < CUTOFF else "replete" for xi in x]
        trials = InformingTrials.from_trials(list(x), cats, CUTOFF)
        e = assess(PRIOR_SDS["slope"], posterior_sds(cov)["slope"], trials)
        flagged += not e.estimable
        contractions.append(e.contraction)
    return flagged / n_sim, float(np.mean(contractions))


def test_rule_flags_prior_dominated_slopes_and_accepts_informed_ones() -> None:
    rng = np.random.default_rng(2026)
    # few trials with baseline levels close together straddling the cut-off: support on
    # both sides, yet the slope posterior is essentially the prior
    narrow, c_narrow = _flag_rate(rng, k=3, x_low=-0.1, x_high=0.1)
    # many trials across the cut-off
    wide, c_wide = _flag_rate(rng, k=20, x_low=-0.6, x_high=0.6)
    assert narrow >= 0.95, (narrow, c_narrow)
    assert c_narrow > 0.9
    assert wide <= 0.05, (wide, c_wide)
    assert c_wide < 0.5
