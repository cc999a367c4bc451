"""Value of the next trial: by simulation from the posterior predictive of the exact
normal–normal model, how likely one more randomised trial of a given size is to settle a claim
(:func:`next_trial_value`, :func:`next_trial_curve`), and the bundle entry built from it
(:func:`next_trial_entry`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from nutrimeta.models.exact import ExactPosterior, exact_posterior
from nutrimeta.results import VERDICT_RULE, benefit_sign
from nutrimeta.spec import OutcomeSpec

__all__ = ["next_trial_curve", "next_trial_entry", "next_trial_value", "posterior_from_bundle"]


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


def next_trial_entry(post: Any, df: pd.DataFrame, o: OutcomeSpec, seed: int) -> dict[str, Any]:
    """How much one more randomised trial of a given size would move the pooled effect.

    The per-participant SD of the outcome is the median over the pooled trials of
    ``se / sqrt(1/n1 + 1/n2)`` (the SD implied by each trial's standard error and group
    sizes); simulation from the exact posterior predictive (see
    :func:`next_trial_value`).
    """
    n1, n2 = df["n_intervention"].to_numpy(float), df["n_control"].to_numpy(float)
    ok = np.isfinite(n1) & np.isfinite(n2) & (n1 > 0) & (n2 > 0)
    if not ok.any():
        return {"status": "skipped", "reason": "no pooled trial reports both group sizes"}
    sd = float(np.median(df["sei"].to_numpy(float)[ok] / np.sqrt(1 / n1[ok] + 1 / n2[ok])))
    rows = next_trial_curve(post, NEXT_TRIAL_SIZES, sd, o.mid, o.beneficial, n_sims=1000,
                            seed=seed)
    return {"status": "ok", "sd_per_participant": round(sd, 6),
            "sd_source": "median over pooled trials of se / sqrt(1/n1 + 1/n2)",
            "rows": [{k: (round(float(v), 4) if isinstance(v, float) else v)
                      for k, v in r.items()} for r in rows]}
