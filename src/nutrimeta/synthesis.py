"""Fit every declared model for one outcome of one evidence base and summarise it.

Produces the per-outcome entry of the results bundle (see ``docs/pipeline.md``): the exact
random-effects posterior (the fast path and the sampler's oracle), the PyMC models with their
diagnostics gate, the frequentist REML/DL cross-check, the small-study check, sensitivity
analyses, the cumulative evidence, and the numbers the report's figures need.

Primary analyses use randomised trials only; ``all_evidence`` is the declared secondary
analysis in which non-randomised designs contribute with an explicit bias and extra variance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nutrimeta import diagnostics, sensitivity
from nutrimeta.analyses import analyses_entry
from nutrimeta.effect_table import effects_for_spec, pooled_rows
from nutrimeta.estimability import (
    MODERATOR_QUANTITIES,
    InformingTrials,
    assess,
    category_moderator_prior_sds,
    continuous_moderator_prior_sds,
)
from nutrimeta.models import frequentist
from nutrimeta.models.multivariate import collapse_trials
from nutrimeta.models.next_trial import next_trial_entry
from nutrimeta.priors import sampled_priors
from nutrimeta.progress import fit_end_line, fit_start_line
from nutrimeta.results import (
    VERDICT_RULE,
    Bundle,
    ClaimResult,
    ModelResult,
    ModeratorResult,
    OutcomeResult,
    Summary,
    benefit_relation,
    benefit_sign,
    clean_json,
)
from nutrimeta.spec import AnalysisSpec, OutcomeSpec
from nutrimeta.subgroups import subgroup_analysis
from nutrimeta.trials import outcome_covariance, trial_counts
from nutrimeta.validate import Evidence

MIN_K = {"random_effects": 2, "meta_regression_continuous": 3, "meta_regression_category": 3,
         "all_evidence": 2}
MODEL_DESCRIPTIONS = {
    "exact": "Normal–normal random-effects model, randomised trials only; exact posterior by "
             "numerical integration over tau (no sampling).",
    "random_effects": "Bayesian random-effects model, randomised trials only, sampled with NUTS "
                      "(trial effects integrated out; multilevel with trial- and contrast-level "
                      "effects when a trial contributes several contrasts).",
    "meta_regression_continuous": "Random-effects meta-regression on baseline nutrient level "
                                  "minus the deficiency cut-off, randomised trials only; trials "
                                  "without a numeric level get a latent level informed by their "
                                  "status category.",
    "meta_regression_category": "Random-effects model with partially pooled effects per baseline "
                                "status category (deficient, marginal, replete, unknown), "
                                "randomised trials only.",
    "all_evidence": "Secondary analysis of all designs: non-randomised designs carry an explicit "
                    "bias term and extra variance; with the continuous baseline moderator.",
}


#: Moderator models in the order their estimability answers the outcome's deficiency question
MODERATOR_MODELS = ("meta_regression_continuous", "meta_regression_category", "all_evidence")


def _q(summary: dict[str, float]) -> dict[str, float]:
    keep = ("mean", "median", "sd", "q025", "q975", "mcse_mean")
    return {k: round(float(summary[k]), 6) for k in keep if k in summary}


def _mixture_summary(mix: Any) -> dict[str, float]:
    lo, hi = mix.interval(0.95)
    return {"mean": round(float(mix.mean), 6), "median": round(float(mix.median), 6),
            "sd": round(float(mix.sd), 6), "q025": round(float(lo), 6),
            "q975": round(float(hi), 6)}


def _prob_statements(draws_or_mix: Any, mid: float, beneficial: str, name: str = "mu"
                     ) -> list[dict[str, Any]]:
    """P(benefit) and P(beyond the MID) of one quantity, in the beneficial direction."""
    sign = benefit_sign(beneficial)
    if isinstance(draws_or_mix, np.ndarray):
        d = draws_or_mix * sign
        p0, pm = float(np.mean(d > 0)), float(np.mean(d > mid))
    else:
        p0 = draws_or_mix.prob_gt(0.0) if sign > 0 else 1 - draws_or_mix.prob_gt(0.0)
        p_mid = draws_or_mix.prob_gt(mid) if sign > 0 else 1 - draws_or_mix.prob_gt(-mid)
        p0, pm = float(p0), float(p_mid)
    rel = benefit_relation(beneficial)
    return [{"quantity": name, "relation": rel, "threshold": 0.0, "value": round(p0, 4)},
            {"quantity": name, "relation": rel, "threshold": sign * mid, "value": round(pm, 4)}]


def model_data_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Rows an outcome's models use, in a stable order."""
    return df.sort_values(["year", "study_id", "subgroup"], kind="stable",
                          na_position="first").reset_index(drop=True)


def n_trials(df: pd.DataFrame) -> int:
    """Number of trials (not rows) in an effect-size frame."""
    if "trial_id" not in df.columns:
        return int(df["study_id"].nunique())
    trial = df["trial_id"].fillna("").astype(str)
    return int(trial.where(trial != "", df["study_id"].astype(str)).nunique())


SINGLE_TRIAL_NOTE = ("one trial with its arms: the trial's own estimate across its contrasts "
                     "(GLS with the shared-control covariance), not a pooled result")


def trial_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: several contrasts of one trial (dose arms against a shared control,
    strata) combined by GLS with their sampling covariance
    (:func:`~nutrimeta.models.multivariate.collapse_trials`; exact for a trial-level random
    effect), a shared control counted once in ``n_control``. Single-contrast trials are kept
    as they are, so a frame without multi-contrast trials is returned unchanged."""
    if len(df) == 0 or n_trials(df) == len(df):
        return df
    cov = outcome_covariance(df.assign(poolable=True), poolable_only=False)
    col = collapse_trials(cov)
    trial = df["trial_id"].fillna("").astype(str)
    trial = trial.where(trial != "", df["study_id"].astype(str))
    out = []
    for t, y, se in zip(col.trial_ids, col.y, col.se, strict=True):
        g = df[trial == t]
        if len(g) == 1:
            out.append(g.iloc[0])
            continue
        row = g.iloc[0].copy()
        counts = trial_counts(g.assign(outcome=g["outcome"].iloc[0], poolable=True))
        n_all = counts["n"].iloc[0]
        n_int = pd.to_numeric(g["n_intervention"]).sum(min_count=1)
        row["subgroup"] = ""
        row["yi"], row["sei"], row["vi"] = float(y), float(se), float(se) ** 2
        row["n_intervention"] = n_int
        row["n_control"] = n_all - n_int if pd.notna(n_all) else math.nan
        row["derivation"] = (f"GLS combination of {len(g)} contrasts of one trial "
                             "(shared-control covariance)")
        out.append(row)
    return model_data_frame(pd.DataFrame(out))


def exact_entry(df: pd.DataFrame, o: OutcomeSpec) -> tuple[ModelResult, Any]:
    """The exact random-effects posterior entry and the posterior object (``df``: one row
    per trial, :func:`trial_rows`)."""
    start = time.perf_counter()
    post = sensitivity.fit_exact(df, o.tau_prior, o.mu_prior_sd)
    seconds = time.perf_counter() - start
    entry = {
        "model": "exact", "description": MODEL_DESCRIPTIONS["exact"], "status": "ok",
        "reason": "", "k": len(df),
        "parameters": {"mu": _mixture_summary(post.mu),
                       "tau": {k: round(float(v), 6) for k, v in post.tau_summary().items()}},
        "prediction": _mixture_summary(post.predictive()),
        "i2": {k: round(100 * float(v), 4) for k, v in post.i2_summary().items()},
        "probabilities": _prob_statements(post.mu, o.mid, o.beneficial),
        "diagnostics": {"passed": True, "problems": [],
                        "integration_error": float(getattr(post, "integration_error", 0.0))},
        "fit_seconds": round(seconds, 4),
    }
    return ModelResult.model_validate(clean_json(entry)), post


def compiled_model(data: Any, priors: Any, kind: str, moderator: bool, sampler: Any) -> Any:
    """A refitter of this model's structure: compiled once per process (padded to a size
    class, :class:`~nutrimeta.models.fitting.Structure`) and refitted with new data and prior
    scales (compiling costs seconds; a warm refit a fraction of a second)."""
    from nutrimeta.models.fitting import Refitter

    return Refitter(data, priors, kind, moderator=moderator, sampler=sampler)  # type: ignore[arg-type]


def prepare_model(kind: str, df: pd.DataFrame, spec: AnalysisSpec, o: OutcomeSpec
                  ) -> tuple[Any, Any, str, str] | str:
    """Model data, priors, the model kind to build and a note; or why the model is skipped."""
    from nutrimeta.models.bayes import ModelData

    need = MIN_K[kind]
    k = n_trials(df)
    if k < need:
        return f"needs at least {need} poolable trials; {k} available"
    if kind == "meta_regression_continuous" and df["baseline_status_value_std"].notna().sum() \
            + (df["baseline_status_category"] != "unknown").sum() == 0:
        return "no trial has a baseline status"
    priors = sampled_priors(spec, o)
    # theta integrated out: the same posterior for mu and tau without the funnel geometry
    build_kind = "random_effects_marginal" if kind == "random_effects" else kind
    note = ""
    multi = df["study_id"].duplicated(keep=False)
    if multi.any():
        # Several contrasts (doses, subgroups) in one trial: the random-effects model becomes
        # the multilevel model (study and contrast random effects); the moderator models treat
        # each contrast as its own unit, which is right for disjoint subgroups (e.g. a split by
        # baseline status) and approximate for dose arms that share a control group.
        if kind == "random_effects":
            build_kind = "multilevel"
            note = ("several contrasts per trial: multilevel model with trial- and "
                    "contrast-level random effects")
        else:
            df = df.copy()
            sub = df["subgroup"].fillna("").astype(str)
            df.loc[multi, "study_id"] = df.loc[multi, "study_id"] + "[" + sub[multi] + "]"
            note = ("several contrasts per trial treated as separate units (exact for disjoint "
                    "subgroups; approximate for dose arms sharing a control group)")
    return ModelData.from_frame(df, cutoff=spec.moderator.cutoff), priors, build_kind, note


def bayes_entry(kind: str, df: pd.DataFrame, spec: AnalysisSpec, o: OutcomeSpec,
                fits_dir: Path, provenance: dict[str, Any]) -> ModelResult:
    """Fit one PyMC model, gate it on its diagnostics, save its posterior, summarise it."""
    from nutrimeta.models.fitting import SamplerSettings, save_posterior

    entry: dict[str, Any] = {"model": kind, "description": MODEL_DESCRIPTIONS[kind],
                             "k": n_trials(df)}
    prepared = prepare_model(kind, df, spec, o)
    if isinstance(prepared, str):
        return ModelResult.model_validate({**entry, "status": "skipped", "reason": prepared})
    data, priors, build_kind, note = prepared
    if note:
        entry["note"] = note
    entry["fitted_as"] = build_kind
    sampler = SamplerSettings(chains=spec.sampler.chains, draws=spec.sampler.draws,
                              tune=spec.sampler.tune, target_accept=spec.sampler.target_accept)
    start = time.perf_counter()
    seed = spec.seed + sum(map(ord, f"{o.id}/{kind}"))
    moderated = kind == "all_evidence"
    attrs = {**provenance, "evidence_base": spec.evidence_base, "outcome": o.id, "model": kind,
             "seed": seed, "sampler": sampler.to_dict(), "priors": priors.to_dict(),
             "spec": spec.to_dict()}
    dt, diag, attempts = _posterior_draws(data, priors, build_kind, moderated, sampler, seed,
                                          attrs)
    seconds = time.perf_counter() - start
    names = [v for v in POSTERIOR_SUMMARIES if v in dt.posterior]
    summ = diagnostics.summarise(dt, names)
    path = fits_dir / f"{kind}.nc"
    save_posterior(dt, path)
    post = dt.posterior
    params = {k: _q(v) for k, v in summ.items() if k.split("[")[0] in
              ("mu", "tau", "slope", "effect_deficient", "effect_replete",
               "deficient_minus_replete", "effect_category", "bias", "extra_sd")}
    probs = _prob_statements(post["mu"].values.ravel(), o.mid, o.beneficial)
    if "deficient_minus_replete" in post:
        diff = post["deficient_minus_replete"].values.ravel()
        sign = benefit_sign(o.beneficial)
        probs.append({"quantity": "deficient_minus_replete",
                      "relation": benefit_relation(o.beneficial), "threshold": 0.0,
                      "value": round(float(np.mean(diff * sign > 0)), 4)})
        for name in ("effect_deficient", "effect_replete"):
            probs += _prob_statements(post[name].values.ravel(), o.mid, o.beneficial, name)
    out = {**entry, "status": "ok" if diag.passed else "failed",
           "reason": "" if diag.passed else "; ".join(diag.problems),
           "parameters": params, "probabilities": probs,
           "diagnostics": diag.to_dict(), "fit_seconds": round(seconds, 2),
           "sampling_attempts": attempts,
           "posterior_file": str(path), "seed": seed, "priors": priors.to_dict()}
    if "theta_new" in post:
        out["prediction"] = _q(summ["theta_new"])
    if "i2" in summ:  # reported in percent, as metafor does
        out["i2"] = {k: round(100 * v, 4) for k, v in _q(summ["i2"]).items()}
    moderator = moderator_estimability(post, priors, df, spec)
    if moderator:
        out["moderator"] = moderator
    if kind == "meta_regression_continuous":
        out["density"] = _densities(post, ["effect_deficient", "effect_replete"])
        out["latent_levels"] = latent_levels(post, spec, df)
        if moderator.get("slope", {}).get("estimable"):
            # the band only where the data inform it (no band when the slope is not estimable)
            out["regression_line"] = _regression_line(post, spec, df)
    return ModelResult.model_validate(clean_json(out))


#: Posterior quantities summarised in the results (those a model has)
POSTERIOR_SUMMARIES = ("mu", "tau", "slope", "effect_deficient", "effect_replete",
                       "deficient_minus_replete", "theta_new", "i2", "bias", "extra_sd",
                       "effect_category")


def _posterior_draws(data: Any, priors: Any, build_kind: str, moderated: bool, sampler: Any,
                     seed: int, attrs: dict[str, Any]) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Posterior draws of one model, its gate result and every attempt.

    By quadrature where the model has that path and its integration error is within
    tolerance (no compilation, independent draws; :mod:`nutrimeta.models.quadrature`), else
    sampled with NUTS and the declared escalating retries
    (:func:`~nutrimeta.models.fitting.fit_with_retries`). Every attempt is recorded."""
    from nutrimeta.models import quadrature
    from nutrimeta.models.fitting import fit_with_retries

    attempts: list[dict[str, Any]] = []
    qfit = quadrature.fit(data, priors, build_kind, moderator=moderated, seed=seed,
                          chains=sampler.chains, draws=sampler.draws, attrs=attrs)
    if qfit is not None:
        attempts.append({"attempt": 1, "sampler": qfit.settings(), "parameterisation":
                         "quadrature", "passed": qfit.passed, "diagnostics": qfit.to_dict(),
                         "problems": qfit.problems})
        if qfit.passed:
            qfit.tree.attrs["sampling_attempts"] = attempts
            return qfit.tree, qfit, attempts
    refitter = compiled_model(data, priors, build_kind, moderated, sampler)
    checked = [v for v in POSTERIOR_SUMMARIES if v != "theta_new"
               and v in refitter.model.named_vars]
    dt, diag, sampled = fit_with_retries(
        refitter, data, priors, seed, attrs=attrs,
        check=lambda fitted: diagnostics.check(fitted, var_names=checked))
    for a in sampled:
        a["attempt"] += len(attempts)
    attempts += sampled
    dt.attrs["sampling_attempts"] = attempts
    return dt, diag, attempts


def moderator_estimability(post: Any, priors: Any, df: pd.DataFrame, spec: AnalysisSpec
                           ) -> dict[str, dict[str, Any]]:
    """The declared rule (``spec.moderator.estimability``) applied to every moderator quantity
    the posterior holds: prior SDs from the model's prior settings (closed form), posterior SDs
    from the draws, informing contrasts from their baseline levels and categories."""
    if "slope" in post:
        prior_sds = continuous_moderator_prior_sds(priors.mu_sd, priors.slope_sd,
                                                   priors.x_deficient, priors.x_replete)
    elif "deficient_minus_replete" in post:
        prior_sds = category_moderator_prior_sds(priors.mu_sd, priors.category_sd)
    else:
        return {}
    levels = [None if pd.isna(v) else float(v) for v in df["baseline_status_value_std"]]
    cats = [None if pd.isna(c) else str(c) for c in df["baseline_status_category"]]
    trials = InformingTrials.from_trials(levels, cats, spec.moderator.cutoff)
    return {q: assess(sd, float(post[q].values.std(ddof=1)), trials,
                      spec.moderator.estimability).to_dict()
            for q, sd in prior_sds.items() if q in post}


def outcome_moderator(models: dict[str, ModelResult]) -> ModeratorResult:
    """The outcome's moderator verdict: from the continuous meta-regression, else the
    category model, else the all-designs model; not estimable with the reason when none was
    fitted."""
    for kind in MODERATOR_MODELS:
        m = models.get(kind)
        if m is not None and m.ok and m.moderator:
            q = m.moderator.get("deficient_minus_replete") or next(iter(m.moderator.values()))
            return ModeratorResult(model=kind, estimable=q.estimable, reason=q.reason,
                                   quantities=m.moderator)
    why = [f"{k}: {models[k].reason or models[k].status}" for k in MODERATOR_MODELS
           if k in models]
    return ModeratorResult(estimable=False, reason="; ".join(why) or "no moderator model run")


def latent_levels(post: Any, spec: AnalysisSpec, df: pd.DataFrame) -> list[dict]:
    """Posterior baseline level (cut-off + latent ``x``) of every contrast placed by its
    status category only, for the effect-versus-baseline figure."""
    if "x" not in post:
        return []
    x = post["x"].values.reshape(-1, len(df)) + spec.moderator.cutoff
    out = []
    for i, r in enumerate(df.itertuples()):
        if not pd.isna(r.baseline_status_value_std):
            continue
        out.append({"study_id": str(r.study_id),
                    "subgroup": "" if pd.isna(r.subgroup) else str(r.subgroup),
                    "category": str(r.baseline_status_category),
                    "mean": round(float(x[:, i].mean()), 6),
                    "q025": round(float(np.quantile(x[:, i], 0.025)), 6),
                    "q975": round(float(np.quantile(x[:, i], 0.975)), 6)})
    return out


def _regression_line(post: Any, spec: AnalysisSpec, df: pd.DataFrame) -> list[dict]:
    """The posterior regression band over the measured baseline range only (empty when fewer
    than two contrasts have a measured level: category-placed trials do not extend it)."""
    mu = post["mu"].values.ravel()
    slope = post["slope"].values.ravel()
    cut = spec.moderator.cutoff
    levels = df["baseline_status_value_std"].dropna().to_numpy(float)
    if len(levels) < 2 or levels.min() == levels.max():
        return []
    out = []
    for x in np.linspace(levels.min(), levels.max(), 41):
        e = mu + slope * (x - cut)
        out.append({"x": round(float(x), 5), "mean": round(float(e.mean()), 6),
                    "q025": round(float(np.quantile(e, 0.025)), 6),
                    "q975": round(float(np.quantile(e, 0.975)), 6)})
    return out


def _densities(post: Any, names: list[str], n: int = 120) -> dict[str, dict[str, list[float]]]:
    from scipy.stats import gaussian_kde

    out = {}
    for name in names:
        d = post[name].values.ravel()
        lo, hi = np.quantile(d, [0.001, 0.999])
        grid = np.linspace(lo, hi, n)
        out[name] = {"x": grid.round(6).tolist(),
                     "density": gaussian_kde(d)(grid).round(6).tolist()}
    return out


def frequentist_entry(df: pd.DataFrame) -> dict[str, Any]:
    """REML and DL random-effects estimates (metafor conventions) for comparison."""
    if len(df) < 2:
        return {}
    y, v = df["yi"].to_numpy(float), df["vi"].to_numpy(float)
    return {"reml": frequentist.rma(y, v, method="REML").to_dict(),
            "dl": frequentist.rma(y, v, method="DL").to_dict()}


def small_study_entry(df: pd.DataFrame) -> dict[str, Any]:
    """Egger's regression test, stated as a small-study-effects check."""
    if len(df) < 3:
        return {"k": len(df), "caveat": "not assessable: fewer than 3 trials"}
    res = frequentist.egger_test(df["yi"].to_numpy(float), df["sei"].to_numpy(float))
    return res.to_dict()


def study_rows(df: pd.DataFrame, post: Any, tau2_reml: float | None) -> list[dict[str, Any]]:
    """Per-trial numbers for forest plots: observed CI, shrunken estimate, RE weight."""
    shrink = post.shrinkage_summary() if post is not None else [{}] * len(df)
    w = 1.0 / (df["vi"].to_numpy(float) + (tau2_reml or 0.0))
    w = w / w.sum()
    rows = []
    for i, r in enumerate(df.itertuples()):
        s = shrink[i]
        rows.append({
            "study_id": r.study_id, "subgroup": "" if pd.isna(r.subgroup) else str(r.subgroup),
            "first_author": r.first_author, "year": int(r.year), "design": r.design,
            "yi": round(float(r.yi), 6), "sei": round(float(r.sei), 6),
            "ci_lower": round(float(r.yi - 1.959964 * r.sei), 6),
            "ci_upper": round(float(r.yi + 1.959964 * r.sei), 6),
            "weight": round(float(w[i]), 6),
            "shrunken_mean": round(float(s.get("mean", math.nan)), 6),
            "shrunken_q025": round(float(s.get("q025", s.get("q0.025", math.nan))), 6),
            "shrunken_q975": round(float(s.get("q975", s.get("q0.975", math.nan))), 6),
            "n_intervention": None if pd.isna(r.n_intervention) else int(r.n_intervention),
            "n_control": None if pd.isna(r.n_control) else int(r.n_control),
            "baseline_status_value_std": None if pd.isna(r.baseline_status_value_std)
            else round(float(r.baseline_status_value_std), 5),
            "baseline_status_category": r.baseline_status_category,
            "derivation": r.derivation,
        })
    return rows


def effects_memo(ev: Evidence, spec: AnalysisSpec) -> Callable[..., pd.DataFrame]:
    """:func:`~nutrimeta.effect_table.effects_for_spec` of one evidence base, each
    (pre/post correlation, unlabelled-spread reading) computed once: every outcome's
    sensitivity analyses ask for the same few tables. The tables are shared: do not modify."""
    tables: dict[tuple[float, str], pd.DataFrame] = {}

    def effects_for(r: float | None = None, unlabelled: str | None = None) -> pd.DataFrame:
        key = (spec.prepost_correlation if r is None else r,
               unlabelled or spec.unlabelled_spread)
        if key not in tables:
            tables[key] = effects_for_spec(ev, spec, r=key[0], unlabelled=key[1])
        return tables[key]

    return effects_for


def outcome_entry(spec: AnalysisSpec, o: OutcomeSpec, effects: pd.DataFrame, ev: Evidence,
                  fits_dir: Path, provenance: dict[str, Any], log: Callable[[str], None],
                  effects_for: Callable[..., pd.DataFrame] | None = None
                  ) -> OutcomeResult:
    """Everything the bundle holds for one outcome.

    ``effects`` is the evidence base's effect-size table (``build/effects.csv``); ``ev`` the
    curated evidence, from which the sensitivity analyses recompute the table under other
    assumptions (through ``effects_for``, default :func:`effects_memo`).
    """
    effects_for = effects_for or effects_memo(ev, spec)
    contrasts = model_data_frame(pooled_rows(effects, o.id))
    rct = trial_rows(contrasts)  # the trial is the unit: one row per trial
    every = model_data_frame(pooled_rows(effects, o.id, randomised_only=False))
    counts = trial_counts(contrasts)
    n = float(counts["n"].sum()) if len(counts) else 0.0
    entry: dict[str, Any] = {
        "label": o.label, "measure": o.measure, "effect_unit": o.unit if o.measure == "MD"
        else ("log ratio of means" if o.measure == "ROM" else "SD units"),
        "k": len(rct), "k_all_designs": n_trials(every), "n_participants": int(n),
        "k_trials": len(rct), "n_randomised": counts.attrs["n_total"],
        "mid": o.mid, "mid_source": o.mid_source, "beneficial": o.beneficial,
        "primary": o.primary, "models": {},
    }
    post = None
    if len(rct) >= 1:
        ex, post = exact_entry(rct, o)
        if len(rct) == 1 and len(contrasts) > 1:
            ex = ex.model_copy(update={"note": SINGLE_TRIAL_NOTE})
        entry["models"]["exact"] = ex
    else:
        entry["models"]["exact"] = ModelResult(
            model="exact", description=MODEL_DESCRIPTIONS["exact"], status="skipped", k=0,
            reason="no poolable randomised trial")
    entry["frequentist"] = frequentist_entry(rct)
    tau2 = entry["frequentist"].get("reml", {}).get("tau2") if entry["frequentist"] else None
    entry["studies"] = study_rows(contrasts, post if len(rct) == len(contrasts) else None,
                                  tau2)
    entry["studies_all_designs"] = study_rows(every, None, None) if len(every) else []
    entry["small_study"] = small_study_entry(rct)
    entry["subgroups"] = subgroup_analysis(contrasts, o.tau_prior, o.mu_prior_sd, trial_rows)
    for kind in spec.models:
        # the moderator models keep each contrast as its unit (its own baseline status)
        data = every if kind == "all_evidence" else rct if kind == "random_effects" \
            else contrasts
        log(fit_start_line(spec.evidence_base, o.id, kind, n_trials(data)))
        try:
            entry["models"][kind] = bayes_entry(kind, data, spec, o, fits_dir / o.id, provenance)
        except Exception as exc:  # a failing fit is reported, never silently dropped
            entry["models"][kind] = ModelResult(
                model=kind, description=MODEL_DESCRIPTIONS[kind], status="failed",
                reason=f"{type(exc).__name__}: {exc}", k=len(data))
        done = entry["models"][kind]
        if done.status != "ok":
            log(fit_end_line(spec.evidence_base, o.id, kind, done.status, done.reason or ""))
    if post is not None:
        sens = sensitivity.prior_sensitivity(rct, [o.resolve(p) for p in
                                                   spec.sensitivity.tau_priors],
                                             o.mu_prior_sd, o.mid, o.beneficial)
        if spec.sensitivity.leave_one_out:
            sens += sensitivity.leave_one_out(rct, o.tau_prior, o.mu_prior_sd, o.mid,
                                              o.beneficial)

        def rct_for(r: float) -> pd.DataFrame:
            return trial_rows(model_data_frame(pooled_rows(effects_for(r=r), o.id)))

        sens += sensitivity.correlation_sensitivity(rct_for, list(
            spec.sensitivity.prepost_correlations), o.tau_prior, o.mu_prior_sd, o.mid,
            o.beneficial)
        readings = {"sd": "as SD", "se": "as SE", "exclude": "excluded (trials relying on it "
                    "dropped)"}
        variants = []
        for policy in spec.sensitivity.unlabelled_spread:
            e = pooled_rows(effects_for(unlabelled=policy), o.id)
            variants.append((f"unlabelled '±' read {readings[policy]}",
                             trial_rows(model_data_frame(e))))
        sens += sensitivity.variant_sensitivity(variants, o.tau_prior, o.mu_prior_sd, o.mid,
                                                o.beneficial, "unlabelled_spread")
        entry["sensitivity"] = sens
        entry["cumulative"] = sensitivity.cumulative(rct, o.tau_prior, o.mu_prior_sd)
        entry["next_trial"] = next_trial_entry(post, rct, o, spec.seed, spec=spec,
                                               contrasts=contrasts)
        entry["tau_prior_posterior"] = sensitivity.tau_prior_posterior(post, o.tau_prior)
    else:
        entry["sensitivity"], entry["cumulative"] = [], []
    entry["moderator"] = outcome_moderator(entry["models"])
    entry["analyses"] = analyses_entry(
        entry, o, effects, rct, spec.seed,
        {p: effects_for(unlabelled=p) for p in spec.sensitivity.unlabelled_spread
         if p != spec.unlabelled_spread})
    return OutcomeResult.model_validate(clean_json(entry))


def claim_entries(spec: AnalysisSpec, outcomes: dict[str, OutcomeResult]
                  ) -> list[ClaimResult]:
    """Each claim of the field with its posterior probability and a verdict by
    :data:`~nutrimeta.results.VERDICT_RULE` (stated in every report); *uncertain* also when
    the model a claim needs could not be fitted or failed its diagnostics."""
    out = []
    for c in spec.claims:
        oc = outcomes[c.outcome]
        from_primary = primary_analysis_claim(c, oc, spec.primary_analysis)
        if from_primary is not None:
            out.append(from_primary)
            continue
        model = oc.models.get(c.model)
        row: dict[str, Any] = {"claim": c.text, "outcome": c.outcome, "model": c.model,
                               "quantity": c.quantity, "threshold": c.threshold,
                               "direction": c.direction,
                               "k": model.k if model is not None else oc.k}
        if model is None or not model.ok:
            status = model.status if model is not None else "not run"
            reason = (model.reason or "") if model is not None else ""
            verdict = "not estimable" if c.quantity in MODERATOR_QUANTITIES else "uncertain"
            out.append(ClaimResult(**row, probability=None, estimate=None, verdict=verdict,
                                   why=f"model {c.model} {status}: {reason}".strip()))
            continue
        mq = (model.moderator or {}).get(c.quantity)
        if mq is not None and not mq.estimable:
            # one rule: a quantity the rule calls not estimable gets no probability or number
            out.append(ClaimResult(**row, probability=None, estimate=None,
                                   verdict="not estimable",
                                   why=f"{mq.reason}; {mq.prior_vs_posterior}"))
            continue
        est = model.parameters.get(c.quantity)
        prob = _claim_probability(model, c)
        verdict, why = VERDICT_RULE.verdict(prob, row["k"])
        out.append(ClaimResult(**row, probability=prob, estimate=est, verdict=verdict, why=why))
    return out


def primary_analysis_claim(c: Any, oc: OutcomeResult, primary: str) -> ClaimResult | None:
    """A claim about ``mu`` judged on the spec's primary analysis (its ``mu`` posterior and
    its trial count), or None when the claim is about another quantity, the primary analysis
    is ``conventional`` (the claim's declared model is used), or the claim's threshold is not
    the one P(benefit) is stated at."""
    if c.quantity != "mu" or primary == "conventional" or oc.analyses is None:
        return None
    a = oc.analyses.get("all_reports")  # the only other primary analysis
    if a is None or c.direction not in ("increase", "decrease") or c.threshold != 0:
        return None
    row: dict[str, Any] = {"claim": c.text, "outcome": c.outcome, "model": primary,
                           "quantity": c.quantity, "threshold": c.threshold,
                           "direction": c.direction, "k": a.k_trials}
    if a.status != "ok" or a.mu is None:
        return ClaimResult(**row, probability=None, estimate=None, verdict="uncertain",
                           why=f"primary analysis {primary} {a.status}: "
                               f"{a.reason or 'no contributing trial'}")
    pb = a.mu.p_benefit.value
    prob = round(pb if c.direction == oc.beneficial else 1.0 - pb, 4)
    verdict, why = VERDICT_RULE.verdict(prob, a.k_trials)
    if a.fragile and c.direction == oc.beneficial:  # the verdict stands; say what it hangs on
        why = "; ".join(filter(None, [why, "leaving out any one rescued row of "
                                      + ", ".join(a.fragile) + " changes it"]))
    est = Summary(mean=a.mu.mean, q025=a.mu.q025, q975=a.mu.q975)
    return ClaimResult(**row, probability=prob, estimate=est, verdict=verdict, why=why)


def _claim_probability(model: ModelResult, c: Any) -> float | None:
    from nutrimeta.models.fitting import load_posterior

    if c.model == "exact" or model.posterior_file is None:
        return None
    dt = load_posterior(model.posterior_file)
    d = dt.posterior[c.quantity].values.ravel()
    if c.direction == "increase":
        return round(float(np.mean(d > c.threshold)), 4)
    if c.direction == "decrease":
        return round(float(np.mean(d < -abs(c.threshold) if c.threshold else d < 0)), 4)
    if c.direction == "within":
        return round(float(np.mean(np.abs(d) < abs(c.threshold))), 4)
    raise ValueError(f"unknown claim direction {c.direction!r}")


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [c for c in df.columns if not c.startswith("_")]
    return clean_json(df[cols].astype(object).where(df[cols].notna(), None).to_dict("records"))


def evidence_base_bundle(ev: Evidence, spec: AnalysisSpec, effects: pd.DataFrame,
                         provenance: dict[str, Any], fits_dir: Path,
                         log: Callable[[str], None]) -> Bundle:
    """The typed results bundle of one evidence base: every outcome, the claims, the records
    not pooled, the published syntheses and the flow of records."""
    fit_provenance = {k: provenance[k] for k in ("package_version", "data_version", "data_hash",
                                                   "spec_hash")}
    effects_for = effects_memo(ev, spec)
    outcomes = {o.id: outcome_entry(spec, o, effects, ev, fits_dir, fit_provenance, log,
                                    effects_for)
                for o in spec.outcomes}
    not_poolable = effects[~effects["poolable"].astype(bool)]
    studies = ev.studies[ev.studies["evidence_base"] == spec.evidence_base]
    syntheses = ev.syntheses[ev.syntheses["_base"] == spec.evidence_base]
    return Bundle.model_validate(clean_json({
        "evidence_base": spec.evidence_base, "title": spec.title, "question": spec.question,
        "provenance": provenance, "spec": spec.to_dict(), "outcomes": outcomes,
        "not_poolable": _records(not_poolable[[
            "study_id", "outcome", "subgroup", "design", "year", "first_author",
            "inclusion_status", "reason", "direction", "p_value"]]),
        "claims": claim_entries(spec, outcomes),
        "published_syntheses": _records(syntheses),
        "flow": {
            "recorded": len(studies),
            "by_inclusion_status": {k: int(v) for k, v in
                                    studies["inclusion_status"].value_counts().items()},
            "excluded_reasons": _records(studies.loc[studies["inclusion_status"] != "included",
                                                     ["study_id", "inclusion_status",
                                                      "inclusion_reason"]]),
            "poolable_per_outcome": {o.id: outcomes[o.id].k for o in spec.outcomes},
            "poolable_all_designs_per_outcome": {o.id: outcomes[o.id].k_all_designs
                                                 for o in spec.outcomes},
        },
    }))
