"""The two analyses of one outcome in the fit stage: ``conventional`` and ``all_reports``.

``conventional`` pools complete reports only (the trial is the unit; several contrasts of one
trial enter with their covariance); ``all_reports`` adds every partial report through the
likelihood route it supports (:mod:`nutrimeta.all_reports`), with its sensitivity analyses
and the rescued rows an answer hangs on. Both are written per outcome beside each other;
the spec's ``primary_analysis`` says which one the verdicts use.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

from nutrimeta.all_reports import all_reports_for_outcome, all_reports_sensitivity, fragile_rows
from nutrimeta.results import VERDICT_RULE, benefit_relation, benefit_sign
from nutrimeta.spec import OutcomeSpec

__all__ = ["ANALYSIS_GRID", "VERDICT_LEVELS", "all_reports_priors", "analyses_entry"]


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA \
        else str(v)


def _analysis_summary(mean: float, q025: float, q975: float, p_gt_0: float,
                      beneficial: str) -> dict[str, Any]:
    p = p_gt_0 if benefit_sign(beneficial) > 0 else 1.0 - p_gt_0
    return {"mean": round(mean, 6), "q025": round(q025, 6), "q975": round(q975, 6),
            "p_benefit": {"quantity": "mu", "relation": benefit_relation(beneficial),
                          "threshold": 0.0, "value": round(float(p), 4)}}


def analyses_entry(entry: dict[str, Any], o: OutcomeSpec, effects: pd.DataFrame,
                   rct: pd.DataFrame, seed: int,
                   unlabelled_effects: dict[str, pd.DataFrame] | None = None
                   ) -> dict[str, Any]:
    """The two declared analyses of one outcome side by side: ``conventional`` (complete
    reports, the exact random-effects posterior with the trial as the unit) and
    ``all_reports`` (every randomised report by its route; grid posterior with a fixed
    log-SD prior, deterministic), the latter with its sensitivity analyses
    (:func:`all_reports_sensitivity_rows`; ``unlabelled_effects`` are the effect tables under
    other readings of a bare "±", by reading)."""
    studies = entry["studies"]
    exact = entry["models"]["exact"]
    conv: dict[str, Any] = {
        "k_trials": entry["k_trials"], "n_randomised": entry["n_randomised"],
        "contributions": [{"study_id": s["study_id"], "subgroup": s["subgroup"],
                           "route": "se_from_p" if "from two-sided p" in s["derivation"]
                           else "full"} for s in studies],
        "single_trial": entry["k_trials"] == 1, "status": "ok" if studies else "not run",
    }
    if not studies:
        conv["reason"] = "no complete randomised report"
    if len(rct) == 1:
        # one trial: its own estimate across its arms (normal likelihood, flat prior), not
        # a pooled posterior whose between-trial SD no second trial could inform
        y, se = float(rct["yi"].iloc[0]), float(rct["sei"].iloc[0])
        conv["mu"] = _analysis_summary(y, y - 1.959964 * se, y + 1.959964 * se,
                                       float(stats.norm.cdf(y / se)), o.beneficial)
        conv["method"] = "single trial: estimate and 95% CI"
    elif exact.ok and "mu" in exact.parameters:
        mu = exact.parameters["mu"]
        conv["mu"] = {"mean": mu.mean, "q025": mu.q025, "q975": mu.q975,
                      "p_benefit": exact.probabilities[0].model_dump()}
        conv["method"] = "exact random-effects posterior"
    rows = effects[effects["outcome"] == o.id]
    used = {(s["study_id"], s["subgroup"]) for s in studies}
    conv["not_used"] = [
        {"study_id": str(r.study_id), "subgroup": _text(r.subgroup),
         "reason": _text(r.reason) if bool(r.poolable) and _text(r.reason) else
         "not randomised: in the all-designs model only" if bool(r.poolable) else
         _text(r.reason) or "not a complete report"}
        for r in rows.itertuples() if (str(r.study_id), _text(r.subgroup)) not in used]
    out: dict[str, Any] = {"conventional": conv}
    if o.unit_sd is None:
        out["all_reports"] = {
            "k_trials": 0, "n_randomised": None, "contributions": [], "single_trial": False,
            "status": "not run",
            "reason": "no unit_sd declared: the shipped data report no SD of this outcome",
            "not_used": [{"study_id": str(r.study_id), "reason": "all-reports analysis not "
                          "run for this outcome (no unit_sd)"} for r in rows.itertuples()]}
        return out
    try:
        settings = {**all_reports_priors(o), "method": "grid", "learn_sd": False,
                    "seed": seed, "grid": ANALYSIS_GRID}
        sens = all_reports_sensitivity(rows, settings)
        res = sens["main"]
    except (ValueError, ArithmeticError) as exc:  # reported, never silently dropped
        out["all_reports"] = {"k_trials": 0, "status": "failed",
                              "reason": f"{type(exc).__name__}: {exc}"}
        return out
    ar: dict[str, Any] = {
        "k_trials": res["k_trials"], "n_randomised": res["n_randomised"],
        "contributions": [{"study_id": c["study_id"], "subgroup": c["subgroup"],
                           "route": c["route"], "assumptions": c["assumptions"]}
                          for c in res["contributions"]],
        "not_used": [{"study_id": c["study_id"], "subgroup": c["subgroup"],
                      "reason": c["reason"]} for c in res["not_used"]],
        "routes": res["routes"], "single_trial": res["single_trial"], "status": "ok",
    }
    post = res["posterior"]
    if post is not None:
        mu = post["mu"]
        ar["mu"] = _analysis_summary(mu["mean"], mu["q025"], mu["q975"], post["P(mu > 0)"],
                                     o.beneficial)
        ar["method"] = post.get("method", "grid")
        ar["sensitivity"] = all_reports_sensitivity_rows(sens, o, settings,
                                                         unlabelled_effects or {})
        ar["fragile"] = fragile_rows(sens, VERDICT_LEVELS, int(benefit_sign(o.beneficial)))
    return {**out, "all_reports": ar}


def all_reports_priors(o: OutcomeSpec) -> dict[str, float]:
    """The all-reports analysis's priors from the spec, as multiples of the unit SD (the
    same mu and tau priors as the conventional analysis: one statement per outcome)."""
    unit_sd = o.require_unit_sd()
    if o.tau_prior.family != "half_normal":
        raise ValueError(f"outcome {o.id!r}: the all-reports analysis takes a half-normal tau "
                         f"prior, not {o.tau_prior.family}")
    return {"unit_sd": unit_sd, "mu_sd": o.mu_prior_sd / unit_sd,
            "tau_scale": o.tau_prior.scale / unit_sd}


#: Grid of the all-reports posterior in the fit stage: on the shipped HOMA-IR and glucose data
#: it agrees with the default grid (401 x 300, 32 quadrature nodes) within 1e-5 in P(mu > 0) and
#: the 2.5/97.5% quantiles of mu, five times faster (the sensitivity analyses rerun it often).
ANALYSIS_GRID = {"n_mu": 401, "n_tau": 120, "n_sd": 16}

#: The probability levels of the verdict rule: crossing one changes a verdict.
VERDICT_LEVELS = (VERDICT_RULE.not_supported_below, VERDICT_RULE.supported_at)

_VARIANT_LABELS = {
    "no_censored": ("route", "without censored information (thresholds, not significant, sign)"),
    "no_latent_sd": ("route", "without latent SDs"),
    "no_assumed_allocation": ("assumption", "without an assumed equal allocation"),
}
_READINGS = {"sd": "as SD", "se": "as SE", "exclude": "excluded"}


def all_reports_sensitivity_rows(sens: dict[str, Any], o: OutcomeSpec,
                                 settings: dict[str, Any],
                                 unlabelled_effects: dict[str, pd.DataFrame]
                                 ) -> list[dict[str, Any]]:
    """The all-reports analysis under each variation as rows: each kind of rescued
    information left out, the log-SD prior spread scaled, each trial left out, and each other
    reading of a bare "±" (the effect table recomputed under it)."""

    def row(label: str, kind: str, brief: dict[str, Any]) -> dict[str, Any]:
        mu = brief["mu"]
        return {"label": label, "kind": kind, "k_trials": brief["k_trials"],
                "mu": None if mu is None else _analysis_summary(
                    mu["mean"], mu["q025"], mu["q975"], brief["P(mu > 0)"], o.beneficial)}

    out = []
    for name, brief in sens["variants"].items():
        if name in _VARIANT_LABELS:
            kind, label = _VARIANT_LABELS[name]
        else:  # log_sd_spread_x<factor>
            kind, label = "prior", f"log-SD prior spread x{name.rsplit('_x', 1)[-1]}"
        out.append(row(label, kind, brief))
    for trial, brief in sens["leave_one_out"].items():
        out.append(row(f"without {trial}", "leave_one_out", brief))
    for policy, eff in unlabelled_effects.items():
        res = all_reports_for_outcome(eff[eff["outcome"] == o.id], settings)
        post = res["posterior"]
        out.append(row(f"unlabelled '±' read {_READINGS[policy]}", "unlabelled_spread",
                       {"k_trials": res["k_trials"],
                        "mu": None if post is None else post["mu"],
                        "P(mu > 0)": None if post is None else post["P(mu > 0)"]}))
    return out
