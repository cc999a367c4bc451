"""The trial as the unit: shared-control covariance, multilevel GLS/REML and exact posterior."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special

from nutrimeta.effects import EffectSettings, compute_effects
from nutrimeta.models.exact import TauPrior, exact_posterior
from nutrimeta.models.frequentist import rma
from nutrimeta.models.multivariate import (
    collapse_trials,
    combine_arms_effect,
    combine_groups,
    gls_reml,
    multivariate_exact,
)
from nutrimeta.trials import OutcomeCovariance, outcome_covariance, trial_counts

STUDIES = pd.DataFrame([
    {"study_id": "threearm", "evidence_base": "selenium_thyroid", "design": "parallel_rct",
     "inclusion_status": "included", "nutrient": "selenium", "year": 2008},
    {"study_id": "strata", "evidence_base": "selenium_thyroid", "design": "parallel_rct",
     "inclusion_status": "included", "nutrient": "selenium", "year": 2021},
])


def _arm(study: str, subgroup: str, arm: str, label: str, n: int, mean: float, sd: float
         ) -> dict:
    return {"study_id": study, "outcome": "ft3", "subgroup": subgroup, "arm": arm,
            "arm_label": label, "timepoint": "follow_up", "week": 26, "value_type": "value",
            "n": n, "mean": mean, "sd": sd, "unit": "pmol/L"}


# two doses vs one placebo group entered once per dose (as rayman2008), and a trial with two
# strata of different participants (each with its own control group)
RESULTS = pd.DataFrame([
    _arm("threearm", "low dose", "intervention", "dose 1", 99, 5.15, 0.65),
    _arm("threearm", "low dose", "control", "placebo", 90, 5.25, 0.61),
    _arm("threearm", "high dose", "intervention", "dose 2", 95, 5.22, 0.55),
    _arm("threearm", "high dose", "control", "placebo", 90, 5.25, 0.61),
    _arm("strata", "low status", "intervention", "Se", 25, 5.0, 0.7),
    _arm("strata", "low status", "control", "control", 24, 5.3, 0.8),
    _arm("strata", "high status", "intervention", "Se", 18, 5.2, 0.6),
    _arm("strata", "high status", "control", "control", 23, 5.1, 0.5),
])


@pytest.fixture(scope="module")
def effects() -> pd.DataFrame:
    return compute_effects(STUDIES, RESULTS, EffectSettings(prefer="final"))


def test_effect_rows_carry_trial_and_shared_control(effects: pd.DataFrame) -> None:
    three = effects[effects.study_id == "threearm"]
    assert set(three.trial_id) == {"threearm"}
    assert three.shared_control_id.nunique() == 1 and three.shared_control_id.iloc[0]
    assert three.cov_shared_control.to_numpy() == pytest.approx([0.61**2 / 90] * 2, rel=1e-12)
    strata = effects[effects.study_id == "strata"]
    assert (strata.shared_control_id == "").all()  # different participants: independent
    assert strata.cov_shared_control.isna().all()


def test_three_arm_trial_is_one_trial_with_hand_computed_gls_se(effects: pd.DataFrame) -> None:
    cov = outcome_covariance(effects[effects.study_id == "threearm"], "ft3")
    assert cov.k_trials == 1 and cov.n_contrasts == 2
    counts = trial_counts(effects[effects.study_id == "threearm"], "ft3")
    assert counts.attrs["k_trials"] == 1
    assert counts.attrs["n_total"] == 99 + 95 + 90  # the shared placebo group counted once
    # hand computation: var_i = s_i^2/n_i + s_c^2/n_c, cov = s_c^2/n_c
    a = 0.65**2 / 99 + 0.61**2 / 90
    b = 0.55**2 / 95 + 0.61**2 / 90
    c = 0.61**2 / 90
    se_hand = math.sqrt((a * b - c**2) / (a + b - 2 * c))  # (1' V^-1 1)^-1/2 for 2 x 2 V
    w = np.array([b - c, a - c]) / (a + b - 2 * c)
    mu_hand = w @ np.array([5.15 - 5.25, 5.22 - 5.25])
    fit = gls_reml(cov)
    assert fit.k_trials == 1 and fit.tau2 == 0.0
    assert fit.se == pytest.approx(se_hand, rel=1e-10)
    assert fit.mu == pytest.approx(mu_hand, rel=1e-10)
    # treating the arms as independent trials understates the SE
    naive = 1 / math.sqrt(1 / a + 1 / b)
    assert naive < 0.85 * se_hand  # 23% too small here, as for rayman2008 fT3


def test_single_trial_reported_as_one_trial_with_its_arms(effects: pd.DataFrame) -> None:
    cov = outcome_covariance(effects[effects.study_id == "threearm"], "ft3")
    post = multivariate_exact(cov, TauPrior.half_normal(0.5), (0.0, 1.0))
    s = post.summary()
    assert s["k_trials"] == 1 and s["n_contrasts"] == 2 and s["pooled"] is False
    assert len(s["trials"]) == 1 and len(s["trials"][0]["arms"]) == 2
    assert s["trials"][0]["se"] == pytest.approx(gls_reml(cov).se, rel=1e-10)


def test_trial_counts_for_strata_and_three_arm(effects: pd.DataFrame) -> None:
    counts = trial_counts(effects, "ft3")
    assert counts.attrs["k_trials"] == 2
    assert counts.attrs["n_total"] == 99 + 95 + 90 + 25 + 24 + 18 + 23


def _random_blocks(rng: np.random.Generator, k: int) -> OutcomeCovariance:
    """k trials, some with two or three correlated contrasts."""
    ys, blocks, idx = [], [], []
    for t in range(k):
        m = int(rng.integers(1, 4))
        A = rng.normal(size=(m, m)) * 0.1
        V = A @ A.T + np.diag(rng.uniform(0.02, 0.2, m))
        ys.extend(rng.normal(0.3, 0.4, m))
        blocks.append(V)
        idx.extend([t] * m)
    n = len(ys)
    V = np.zeros((n, n))
    i = 0
    for B in blocks:
        m = B.shape[0]
        V[i:i + m, i:i + m] = B
        i += m
    ids = tuple(f"t{j}" for j in range(k))
    return OutcomeCovariance(np.array(ys), V, ids, np.array(idx), tuple(f"r{j}" for j in
                                                                       range(n)), tuple(range(n)))


def test_reml_on_blocks_equals_reml_on_collapsed_trials() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        cov = _random_blocks(rng, 6)
        fit = gls_reml(cov)
        col = collapse_trials(cov)
        ref = rma(col.y, col.se**2, method="REML", tau2_ci=False)
        assert fit.tau2 == pytest.approx(ref.tau2, rel=1e-5, abs=1e-8)
        assert fit.mu == pytest.approx(ref.estimate, rel=1e-6, abs=1e-9)
        assert fit.se == pytest.approx(ref.se, rel=1e-5)


def test_exact_posterior_matches_brute_force_on_full_blocks() -> None:
    """Grid over (mu, tau) with the full multivariate normal likelihood of every block."""
    rng = np.random.default_rng(5)
    cov = _random_blocks(rng, 4)
    prior = TauPrior.half_normal(0.5)
    post = multivariate_exact(cov, prior, (0.0, 1.0))
    mus = np.linspace(-3, 3, 1201)
    taus = np.linspace(1e-6, 3, 1200)
    logp = np.zeros((mus.size, taus.size)) + prior.logpdf(taus)[None, :] - 0.5 * mus[:, None] ** 2
    Z = np.zeros((cov.n_contrasts, cov.k_trials))
    Z[np.arange(cov.n_contrasts), cov.trial_idx] = 1
    for j, tau in enumerate(taus):
        S = cov.V + tau**2 * Z @ Z.T
        Si = np.linalg.inv(S)
        _, logdet = np.linalg.slogdet(S)
        r = cov.yi[None, :] - mus[:, None]
        logp[:, j] += -0.5 * logdet - 0.5 * np.einsum("mi,ij,mj->m", r, Si, r)
    p = np.exp(logp - special.logsumexp(logp))
    mu_mean = float(p.sum(axis=1) @ mus)
    tau_mean = float(p.sum(axis=0) @ taus)
    assert post.exact.mu.mean == pytest.approx(mu_mean, abs=2e-3)
    assert post.exact.tau_mean == pytest.approx(tau_mean, abs=2e-3)
    # and it is the normal-normal posterior of the collapsed trials
    col = collapse_trials(cov)
    ref = exact_posterior(col.y, col.se, prior, (0.0, 1.0))
    assert post.exact.mu.sd == pytest.approx(ref.mu.sd, rel=1e-12)


def test_combine_groups_equals_pooled_sample() -> None:
    rng = np.random.default_rng(1)
    parts = [rng.normal(m, s, n) for m, s, n in ((1.0, 2.0, 30), (2.5, 1.0, 12), (0.0, 3, 7))]
    n, m, s = combine_groups([len(p) for p in parts], [p.mean() for p in parts],
                             [p.std(ddof=1) for p in parts])
    allx = np.concatenate(parts)
    assert n == allx.size
    assert m == pytest.approx(allx.mean(), rel=1e-12)
    assert s == pytest.approx(allx.std(ddof=1), rel=1e-12)
    eff = combine_arms_effect("MD", [99, 95], [5.15, 5.22], [0.65, 0.55], 90, 5.25, 0.61)
    assert float(eff.yi) == pytest.approx((99 * 5.15 + 95 * 5.22) / 194 - 5.25, rel=1e-12)


def test_shared_control_covariance_for_smd_and_rom() -> None:
    rom = compute_effects(STUDIES, RESULTS, EffectSettings(prefer="final",
                                                           measures={"ft3": "ROM"}))
    three = rom[rom.study_id == "threearm"]
    assert three.cov_shared_control.to_numpy() == pytest.approx(
        [0.61**2 / (90 * 5.25**2)] * 2, rel=1e-12)
    cov = outcome_covariance(three, "ft3")
    assert cov.V[0, 1] == pytest.approx(0.61**2 / (90 * 5.25**2), rel=1e-12)
    smd = compute_effects(STUDIES, RESULTS, EffectSettings(prefer="final",
                                                           measures={"ft3": "SMD"}))
    three = smd[smd.study_id == "threearm"]
    cov = outcome_covariance(three, "ft3")
    g = cov.yi
    # Gleser & Olkin (2009): 1/n_c + g_i g_j / (2 N), N = all participants of the groups
    assert cov.V[0, 1] == pytest.approx(1 / 90 + g[0] * g[1] / (2 * (99 + 95 + 90)),
                                        rel=1e-12)
    assert cov.V[0, 1] == cov.V[1, 0]
    assert np.all(np.linalg.eigvalsh(cov.V) > 0)
