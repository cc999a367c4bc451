"""Multivariate cross-nutrient model: recovery of a known global slope and clean sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nutrimeta import diagnostics
from nutrimeta.estimability import assess
from nutrimeta.models.cross_mv import (
    CrossMVData,
    CrossPriors,
    assess_cross_mv,
    build_cross_mv_model,
    fit_cross_mv,
    prior_and_posterior_sd,
)
from nutrimeta.models.fitting import SamplerSettings

TRUE_GLOBAL_SLOPE = -0.8
LATENT = {"deficient": (-0.3, 0.15), "marginal": (0.0, 0.15), "replete": (0.3, 0.2),
          "unknown": (0.0, 0.5)}
CHECKED = ["mu", "tau", "slope_global", "sigma_pair", "sigma_outcome", "slope_pair",
           "slope_outcome"]


def simulate(rng: np.random.Generator, trials_per_pair: int = 6,
             outcomes_per_pair: int = 2, rho: float = 0.5) -> CrossMVData:
    """Three pairs, each trial reporting every outcome of its pair with correlated residuals.

    Two thirds of the trials have a measured level; the rest a status category drawn from the
    true level.
    """
    rows = []
    tau = 0.15
    pair_slopes = TRUE_GLOBAL_SLOPE + 0.2 * rng.normal(size=3)
    for p, pair in enumerate(("zinc", "selenium", "magnesium")):
        out_slopes = pair_slopes[p] + 0.1 * rng.normal(size=outcomes_per_pair)
        mus = 0.1 + 0.1 * rng.normal(size=outcomes_per_pair)
        for t in range(trials_per_pair):
            x = rng.uniform(-0.6, 0.6)
            n_arm = rng.integers(20, 80)
            v = np.full(outcomes_per_pair, 2.0 / n_arm)
            a = np.sqrt(v + tau**2)
            corr = np.full((outcomes_per_pair,) * 2, rho) + (1 - rho) * np.eye(outcomes_per_pair)
            resid = rng.multivariate_normal(np.zeros(outcomes_per_pair),
                                            corr * np.outer(a, a))
            measured = t % 3 != 2
            cat = "deficient" if x < -0.1 else "replete" if x > 0.1 else "marginal"
            for o in range(outcomes_per_pair):
                rows.append({"trial_id": f"{pair}{t}", "pair": pair, "outcome": f"o{o}",
                             "yi": mus[o] + out_slopes[o] * x + resid[o], "vi": v[o],
                             "x": x if measured else np.nan, "category": cat})
    return CrossMVData.from_frame(pd.DataFrame(rows), LATENT)


def test_frame_to_arrays_and_informing_trials() -> None:
    df = pd.DataFrame({
        "trial_id": ["a", "a", "b", "c"], "pair": ["zinc", "zinc", "zinc", "selenium"],
        "outcome": ["tt", "ft", "tt", "tsh"], "yi": [0.1, 0.2, 0.3, 0.4],
        "vi": [0.1, 0.1, 0.2, 0.3], "x": [-0.2, -0.2, np.nan, np.nan],
        "category": ["deficient", "deficient", "replete", "unknown"]})
    d = CrossMVData.from_frame(df, LATENT)
    assert d.outcome_labels == ("zinc:tt", "zinc:ft", "selenium:tsh")
    assert list(d.outcome_pair_idx) == [0, 0, 1]
    assert list(d.x_mean) == [-0.2, 0.3, 0.0] and list(d.x_sd) == [0.0, 0.2, 0.5]
    zinc = d.informing_trials("zinc")
    assert (zinc.n_measured, zinc.n_category_only, zinc.n_below, zinc.n_above) == (1, 1, 1, 1)
    sel = d.informing_trials("selenium")
    assert (sel.n_below, sel.n_above) == (0, 0)
    assert not assess(1.0, 0.1, sel).estimable
    bad = df.assign(x=[-0.2, -0.1, np.nan, np.nan])
    with pytest.raises(ValueError, match="trial a: rows disagree"):
        CrossMVData.from_frame(bad, LATENT)


def test_covariance_matches_rho_and_latent_baseline() -> None:
    """The model's marginal covariance of one trial's rows equals the stated formula."""
    df = pd.DataFrame({"trial_id": ["a", "a"], "pair": ["zinc"] * 2, "outcome": ["tt", "ft"],
                       "yi": [0.1, 0.2], "vi": [0.04, 0.09], "x": [np.nan] * 2,
                       "category": ["deficient"] * 2})
    d = CrossMVData.from_frame(df, LATENT)
    model = build_cross_mv_model(d, CrossPriors(rho=0.5))
    point = {"mu": np.zeros(2), "tau_log__": np.log([0.2]), "slope_global": -1.0,
             "sigma_pair_log__": np.log(0.1), "sigma_outcome_log__": np.log(0.1),
             "slope_pair_z": np.zeros(1), "slope_outcome_z": np.zeros(2)}
    logp = model.compile_logp(vars=[model["loglik"]])(point)
    a = np.sqrt(np.array([0.04, 0.09]) + 0.04)
    cov = 0.5 * np.outer(a, a) + np.diag(0.5 * a**2) + 0.15**2 * np.ones((2, 2))
    mean = np.full(2, 0.3)  # slope -1 times latent mean -0.3
    r = np.array([0.1, 0.2]) - mean
    expected = -0.5 * (r @ np.linalg.solve(cov, r) + np.log(np.linalg.det(cov))
                       + 2 * np.log(2 * np.pi))
    assert logp == pytest.approx(expected, rel=1e-9)


def _fit_and_check(trials_per_pair: int, draws: int, seed: int) -> None:
    data = simulate(np.random.default_rng(seed), trials_per_pair=trials_per_pair)
    dt = fit_cross_mv(data, seed=seed,
                      sampler=SamplerSettings(draws=draws, tune=draws, chains=4, cores=2))
    diag = diagnostics.check(dt, var_names=CHECKED)
    assert diag.passed, diag.problems
    g = dt["posterior"]["slope_global"].values.ravel()
    lo, hi = np.quantile(g, [0.025, 0.975])
    assert lo < TRUE_GLOBAL_SLOPE < hi
    sds = prior_and_posterior_sd(dt, "slope_global")
    # prior SD of N(0, 1) from 4,000 draws: within about 4 Monte Carlo SEs (1.1% each)
    assert sds.loc["slope_global", "prior_sd"] == pytest.approx(1.0, rel=0.05)
    assert sds.loc["slope_global", "contraction"] < 0.8
    pairs = prior_and_posterior_sd(dt, "slope_pair")
    assert list(pairs.index) == ["zinc", "selenium", "magnesium"]
    # a pair slope's prior SD is sqrt(slope_sd^2 + E[sigma_pair^2]) = sqrt(1 + 0.25)
    assert pairs["prior_sd"].to_numpy() == pytest.approx(np.sqrt(1.25), rel=0.05)
    verdicts = assess_cross_mv(dt, data)
    assert set(verdicts) == {"slope_global", "deficient_minus_replete",
                             *(f"slope_pair[{p}]" for p in data.pair_labels)}
    # trials across the cut-off in every pair and a well-contracted slope: estimable
    assert verdicts["slope_global"].estimable, verdicts["slope_global"].reason
    assert verdicts["slope_global"].n_below > 0 and verdicts["slope_global"].n_above > 0


def test_recovers_global_slope_small() -> None:
    _fit_and_check(trials_per_pair=6, draws=600, seed=11)


@pytest.mark.slow
def test_recovers_global_slope_larger() -> None:
    _fit_and_check(trials_per_pair=15, draws=1000, seed=12)


def test_shared_control_arms_combined_into_mean_contrast() -> None:
    from nutrimeta.models.cross_mv import combine_shared_control_arms

    rows = pd.DataFrame({
        "yi": [0.2, 0.4, 0.1], "vi": [0.02, 0.03, 0.05], "subgroup": ["d1", "d2", ""],
        "shared_control_id": ["t:c", "t:c", ""], "cov_shared_control": [0.01, 0.01, np.nan]})
    out = combine_shared_control_arms(rows)
    assert len(out) == 2
    combined = out[out["shared_control_id"] == "t:c"].iloc[0]
    # mean of two contrasts: Var = (v1 + v2 + 2 c) / 4
    assert combined["yi"] == pytest.approx(0.3)
    assert combined["vi"] == pytest.approx((0.02 + 0.03 + 2 * 0.01) / 4)
    unknown_cov = rows.assign(cov_shared_control=np.nan)
    bound = combine_shared_control_arms(unknown_cov)
    assert bound["vi"].iloc[0] == pytest.approx(((np.sqrt(0.02) + np.sqrt(0.03)) / 2) ** 2)


def test_shipped_evidence_gives_one_row_per_trial_and_outcome() -> None:
    from pathlib import Path

    from nutrimeta.models.cross_mv import cross_mv_frame, latent_fractional_levels
    from nutrimeta.spec import load_specs
    from nutrimeta.validate import load_evidence, require_valid

    root = Path(__file__).parents[1]
    specs = load_specs(root / "analyses")
    ev = require_valid(load_evidence(root / "data"))
    df = cross_mv_frame(ev, specs)
    assert not df.duplicated(["trial_id", "outcome"]).any()
    assert np.isfinite(df["yi"]).all() and (df["vi"] > 0).all()
    # every row's moderator is either measured or has a latent level for its category
    latent = latent_fractional_levels(specs)
    assert set(df.loc[df["x"].isna(), "category"]) <= set(latent)
    data = CrossMVData.from_frame(df, latent)
    assert len(data.y) == len(df)
    # signed so that positive = benefit: a decrease-is-benefit outcome flips the sign of g
    from dataclasses import replace

    from nutrimeta.effect_table import effects_for_spec, pooled_rows

    spec = next(s for s in specs if s.evidence_base == "magnesium_insulin")
    homa = next(o for o in spec.outcomes if o.id == "homa_ir")
    assert homa.beneficial == "decrease"
    smd = replace(spec, outcomes=tuple(replace(o, measure="SMD") for o in spec.outcomes))
    raw = pooled_rows(effects_for_spec(ev, smd), "homa_ir")
    mine = df[(df["pair"] == "magnesium_insulin") & (df["outcome"] == "homa_ir")]
    assert len(mine) == len(raw) >= 1
    assert sorted(mine["yi"]) == pytest.approx(sorted(-raw["yi"].astype(float)))
