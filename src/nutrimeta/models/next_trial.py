"""Value of the next trial: by simulation from the posterior predictive of the exact
normal–normal model, how likely one more randomised trial of a given size is to settle a claim
(:func:`next_trial_value`, :func:`next_trial_curve`), and the bundle entry built from it
(:func:`next_trial_entry`); and for the deficiency question, which future trials (how many, how
large, how many below and above the cut-off) would make the deficient-minus-replete difference
estimable under the declared rule and supported at the verdict threshold
(:func:`moderator_design_value`, :func:`moderator_design_entry`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from nutrimeta.estimability import EstimabilityRule, InformingTrials, assess
from nutrimeta.models.exact import (
    ExactPosterior,
    TauPrior,
    exact_linear_combination_batch,
    exact_posterior,
)
from nutrimeta.results import VERDICT_RULE, benefit_sign
from nutrimeta.spec import AnalysisSpec, OutcomeSpec

__all__ = ["MeasuredTrials", "moderator_design_entry", "moderator_design_value",
           "next_trial_curve", "next_trial_entry", "next_trial_value", "posterior_from_bundle"]


# ==============================================================================================

def posterior_from_bundle(bundle: dict, outcome: str) -> ExactPosterior | None:
    """Rebuild the exact random-effects posterior of an outcome from a results bundle.

    Uses the trials' ``yi``/``sei`` in ``outcomes[outcome].studies`` and the outcome's priors
    in ``spec`` (``tau_prior``, ``mu_prior_sd``): the same inputs as the bundle's ``exact``
    model. Returns ``None`` when the outcome has no pooled trial.
    """
    from nutrimeta.priors import exact_tau_prior
    from nutrimeta.spec import TauPriorSpec

    studies = bundle.get("outcomes", {}).get(outcome, {}).get("studies", [])
    if not studies:
        return None
    o = next(x for x in bundle["spec"]["outcomes"] if x["id"] == outcome)
    prior = exact_tau_prior(TauPriorSpec(**o["tau_prior"]))
    return exact_posterior([s["yi"] for s in studies], [s["sei"] for s in studies], prior,
                           mu_prior=(0.0, float(o["mu_prior_sd"])),
                           labels=[str(s["study_id"]) for s in studies])


def _beyond(mean: np.ndarray, sd: np.ndarray, c: float, sign: float) -> np.ndarray:
    """``P(sign * mu > c)`` for normals ``N(mean, sd^2)``."""
    return special.ndtr((sign * mean - c) / sd)


def _with_trial(post: ExactPosterior, y_new: np.ndarray, se: float, mid: float, sign: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """``P(sign * mu > 0)`` and ``P(sign * mu > mid)`` after adding one trial ``(y, se)``.

    Exact on the quadrature of ``post``: each ``tau`` node is reweighted by the new trial's
    predictive density ``N(y; m, v + tau^2 + se^2)`` and ``mu | tau`` updated conjugately.
    Vectorised over the values in ``y_new``.
    """
    tau2 = np.exp(2.0 * post.nodes_t)
    m = post.cond.mean[:, 0]
    v = post.cond.cov[:, 0, 0]
    logw = np.log(np.maximum(post.weights, 1e-300))
    s2 = tau2 + se**2  # variance of the new trial's estimate given mu and tau
    pred_var = v + s2
    prec = 1.0 / v + 1.0 / s2
    post_sd = 1.0 / np.sqrt(prec)
    y_all = np.atleast_1d(np.asarray(y_new, dtype=float))
    p_ben, p_mid = np.empty(y_all.size), np.empty(y_all.size)
    chunk = max(1, 2_000_000 // max(tau2.size, 1))
    for start in range(0, y_all.size, chunk):
        y = y_all[start:start + chunk, None]
        lw = logw - 0.5 * np.log(pred_var) - 0.5 * (y - m) ** 2 / pred_var
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        mean = (m / v + y / s2) / prec
        p_ben[start:start + chunk] = (w * _beyond(mean, post_sd, 0.0, sign)).sum(axis=1)
        p_mid[start:start + chunk] = (w * _beyond(mean, post_sd, abs(mid), sign)).sum(axis=1)
    return p_ben, p_mid


def next_trial_value(post: ExactPosterior, n_per_arm: int, sd: float, mid: float,
                     beneficial: str, *, n_sims: int = 2000,
                     rng: np.random.Generator) -> dict[str, float]:
    """How much one more two-arm trial of a given size would settle the pooled effect.

    Simulates from the posterior predictive: ``(tau, mu)`` from the posterior, the new
    trial's true effect ``theta ~ N(mu, tau^2)``, its observed mean difference
    ``y ~ N(theta, se^2)`` with ``se = sd * sqrt(2 / n_per_arm)``; then the exact posterior
    with that trial added. The update is exact on the quadrature of ``post``: given ``tau``
    the model is conjugate, so the new trial reweights each ``tau`` node by
    ``N(y; m(tau), v(tau) + tau^2 + se^2)`` and updates ``mu | tau`` in closed form (the same
    numbers as :func:`~nutrimeta.models.exact.exact_posterior` on ``k + 1`` trials, without
    re-running it; a few milliseconds for thousands of simulations).

    Parameters
    ----------
    post
        Exact posterior of the plain random-effects model (no moderators).
    n_per_arm
        Participants per arm of the hypothetical trial.
    sd
        Per-participant SD of the outcome (in the unit of the pooled effect).
    mid
        Minimal important difference (positive, in the same unit).
    beneficial
        ``"increase"`` or ``"decrease"``: the direction a benefit takes.
    n_sims
        Number of simulated trials.
    rng
        Random generator (pass a seeded one for reproducible output).

    Returns
    -------
    dict
        ``p_benefit_now``/``p_mid_now`` (current posterior), ``expected_p_benefit`` and
        ``expected_p_mid`` (mean over simulated trials of the updated ``P(mu beyond 0)`` and
        ``P(mu beyond MID)`` in the beneficial direction), ``p_supported`` and
        ``p_supported_mid`` (share of simulations in which that probability reaches the
        verdict rule's ``supported_at``), ``mc_se`` (Monte Carlo SE of ``p_supported``),
        ``n_per_arm``, ``se``, ``n_sims``.
    """
    if post.p != 1:
        raise ValueError("next_trial_value needs the plain random-effects posterior")
    if beneficial not in ("increase", "decrease"):
        raise ValueError("beneficial must be 'increase' or 'decrease'")
    if not (n_per_arm >= 1 and sd > 0 and n_sims >= 1):
        raise ValueError("n_per_arm, sd and n_sims must be positive")
    sign = benefit_sign(beneficial)
    se = float(sd) * math.sqrt(2.0 / n_per_arm)
    draws = post.sample(n_sims, rng)
    y_new = draws["theta_new"] + se * rng.standard_normal(n_sims)

    p_ben, p_mid = _with_trial(post, y_new, se, mid, sign)
    mu = post.mu
    now_ben = mu.prob_gt(0.0) if sign > 0 else 1.0 - mu.prob_gt(0.0)
    now_mid = mu.prob_gt(abs(mid)) if sign > 0 else 1.0 - mu.prob_gt(-abs(mid))
    p_sup = float(np.mean(p_ben >= VERDICT_RULE.supported_at))
    return {
        "n_per_arm": int(n_per_arm), "se": se, "n_sims": int(n_sims),
        "p_benefit_now": float(now_ben), "p_mid_now": float(now_mid),
        "expected_p_benefit": float(p_ben.mean()), "expected_p_mid": float(p_mid.mean()),
        "p_supported": p_sup, "p_supported_mid": float(np.mean(p_mid >= VERDICT_RULE.supported_at)),
        "mc_se": math.sqrt(p_sup * (1.0 - p_sup) / n_sims),
    }


def next_trial_curve(post: ExactPosterior, sizes: Sequence[int], sd: float, mid: float,
                     beneficial: str, *, n_sims: int = 2000, seed: int = 0
                     ) -> list[dict[str, float]]:
    """:func:`next_trial_value` for several trial sizes, with common random numbers.

    The same seed is used for every size, so differences between sizes are not Monte Carlo
    noise. One row per size, for a table or a plot in the report.
    """
    return [next_trial_value(post, int(n), sd, mid, beneficial, n_sims=n_sims,
                             rng=np.random.default_rng(seed)) for n in sizes]


NEXT_TRIAL_SIZES = (25, 50, 100, 200)


def next_trial_entry(post: Any, df: pd.DataFrame, o: OutcomeSpec, seed: int, *,
                     spec: AnalysisSpec | None = None, contrasts: pd.DataFrame | None = None
                     ) -> dict[str, Any]:
    """How much one more randomised trial of a given size would move the pooled effect.

    The per-participant SD of the outcome is the median over the pooled trials of
    ``se / sqrt(1/n1 + 1/n2)`` (the SD implied by each trial's standard error and group
    sizes); simulation from the exact posterior predictive (see
    :func:`next_trial_value`). With ``spec``, a primary outcome also carries ``moderator``:
    the declared design grid for the deficiency difference (:func:`moderator_design_entry`,
    from ``contrasts``, each with its own baseline level; default ``df``).
    """
    extra: dict[str, Any] = {}
    if spec is not None and o.primary:
        extra["moderator"] = moderator_design_entry(df if contrasts is None else contrasts,
                                                    spec, o, seed)
    n1, n2 = df["n_intervention"].to_numpy(float), df["n_control"].to_numpy(float)
    ok = np.isfinite(n1) & np.isfinite(n2) & (n1 > 0) & (n2 > 0)
    if not ok.any():
        return {"status": "skipped", "reason": "no pooled trial reports both group sizes",
                **extra}
    sd = float(np.median(df["sei"].to_numpy(float)[ok] / np.sqrt(1 / n1[ok] + 1 / n2[ok])))
    rows = next_trial_curve(post, NEXT_TRIAL_SIZES, sd, o.mid, o.beneficial, n_sims=1000,
                            seed=seed)
    return {"status": "ok", "sd_per_participant": round(sd, 6),
            "sd_source": "median over pooled trials of se / sqrt(1/n1 + 1/n2)",
            "rows": [{k: (round(float(v), 4) if isinstance(v, float) else v)
                      for k, v in r.items()} for r in rows], **extra}


# ============================================================================ the moderator

@dataclass(frozen=True)
class MeasuredTrials:
    """Trials with a measured baseline level: effect ``y``, its SE and the level minus the
    cut-off ``x`` (the only trials the exact meta-regression can take: a category-only trial
    would need its latent level integrated out)."""

    y: np.ndarray
    se: np.ndarray
    x: np.ndarray

    @classmethod
    def none(cls) -> MeasuredTrials:
        """No trial yet."""
        return cls(np.empty(0), np.empty(0), np.empty(0))


def moderator_design_value(existing: MeasuredTrials, *, trials: int, n_per_arm: int,
                           share_below: float, sd: float, x_deficient: float,
                           x_replete: float, true_difference: float, true_tau: float,
                           mu_sd: float, slope_sd: float, tau_prior: TauPrior,
                           beneficial: str, rule: EstimabilityRule, n_sims: int,
                           rng: np.random.Generator) -> dict[str, Any]:
    """How often ``trials`` new two-arm trials would make the deficiency difference
    estimable and supported.

    Of the new trials, ``round(share_below * trials)`` enrol people at the reference
    deficient level (``x_deficient``, level minus cut-off) and the rest at the reference
    replete level, each with a measured baseline level. The truth: effect 0 in the replete,
    ``true_difference`` (signed: positive = benefit) more benefit in the deficient, trial
    effects spread with SD ``true_tau``; each trial's estimate has SE
    ``sd * sqrt(2 / n_per_arm)``. Each simulated evidence set (``existing`` plus the new
    trials) is analysed with the exact meta-regression (intercept = effect at the cut-off,
    slope per unit of the moderator; priors ``N(0, mu_sd)``, ``N(0, slope_sd)`` and
    ``tau_prior``) and the declared rule is applied to deficient minus replete
    (:func:`nutrimeta.estimability.assess`: contraction and trials on each side); *supported*
    means estimable and P(difference in the beneficial direction) at least the verdict
    rule's ``supported_at``.
    """
    if trials < 1 or n_per_arm < 2 or not 0.0 <= share_below <= 1.0 or n_sims < 1:
        raise ValueError("trials >= 1, n_per_arm >= 2, share_below in [0, 1], n_sims >= 1")
    sign = benefit_sign(beneficial)
    gap = x_deficient - x_replete
    slope_true = sign * true_difference / gap
    n_below = round(share_below * trials)
    x_new = np.r_[np.full(n_below, x_deficient), np.full(trials - n_below, x_replete)]
    se_new = np.full(trials, sd * math.sqrt(2.0 / n_per_arm))
    x_all = np.r_[existing.x, x_new]
    se_all = np.r_[existing.se, se_new]
    X = np.c_[np.ones(x_all.size), x_all]
    sides = InformingTrials.from_trials(list(x_all), [None] * x_all.size, 0.0)
    prior_sd = abs(gap) * slope_sd
    theta = (slope_true * (x_new - x_replete))[None, :] \
        + true_tau * rng.standard_normal((n_sims, trials))
    y_new = theta + se_new[None, :] * rng.standard_normal((n_sims, trials))
    Y = np.c_[np.broadcast_to(existing.y, (n_sims, existing.y.size)), y_new]
    diff = exact_linear_combination_batch(Y, se_all, tau_prior, [0.0, gap],
                                          [(0.0, mu_sd), (0.0, slope_sd)], X)
    verdicts = [assess(prior_sd, float(sd), sides, rule) for sd in diff.sd]
    contraction = np.array([v.contraction for v in verdicts])
    estimable = np.array([v.estimable for v in verdicts], dtype=bool)
    p_benefit = diff.prob_gt_0 if sign > 0 else 1.0 - diff.prob_gt_0
    supported = estimable & (p_benefit >= VERDICT_RULE.supported_at)
    p_sup = float(supported.mean())
    return {"trials": int(trials), "n_per_arm": int(n_per_arm), "n_below": n_below,
            "n_above": int(trials - n_below), "p_estimable": float(estimable.mean()),
            "p_supported": p_sup, "mean_contraction": float(contraction.mean()),
            "n_sims": int(n_sims), "mc_se": math.sqrt(p_sup * (1.0 - p_sup) / n_sims)}


def moderator_design_entry(contrasts: pd.DataFrame, spec: AnalysisSpec, o: OutcomeSpec,
                           seed: int) -> dict[str, Any]:
    """The declared design grid (``[moderator.design]``) simulated for one outcome with the
    exact meta-regression, from the trials with a measured baseline level (category-only
    trials are left out and counted) and the outcome's priors; the per-participant SD of a
    new trial is the outcome's unit SD. Common random numbers across cells."""
    from nutrimeta.priors import exact_tau_prior

    if o.unit_sd is None:
        return {"status": "skipped", "reason": "no unit_sd declared for this outcome"}
    m, grid = spec.moderator, spec.moderator.design
    level = contrasts["baseline_status_value_std"].to_numpy(float) if len(contrasts) \
        else np.empty(0)
    has = np.isfinite(level)
    existing = MeasuredTrials(contrasts["yi"].to_numpy(float)[has],
                              contrasts["sei"].to_numpy(float)[has], level[has] - m.cutoff)
    true_difference = grid.true_difference_mids * abs(o.mid)
    true_tau = grid.true_tau_multiple * o.unit_sd
    rows = [moderator_design_value(
        existing, trials=k, n_per_arm=n, share_below=f, sd=o.unit_sd,
        x_deficient=m.reference_deficient, x_replete=m.reference_replete,
        true_difference=true_difference, true_tau=true_tau, mu_sd=o.mu_prior_sd,
        slope_sd=o.slope_prior_sd, tau_prior=exact_tau_prior(o.tau_prior),
        beneficial=o.beneficial, rule=m.estimability, n_sims=grid.n_sims,
        rng=np.random.default_rng(seed)) for k in grid.trials for n in grid.n_per_arm
        for f in grid.share_below]
    return {"status": "ok", "true_difference": round(true_difference, 6),
            "true_tau": round(true_tau, 6), "sd_per_participant": o.unit_sd,
            "existing_measured": int(has.sum()), "existing_left_out": int((~has).sum()),
            "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                     for r in rows]}
