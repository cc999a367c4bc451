"""Cross-nutrient synthesis: does deficiency modify the effect alike for every pair.

Each evidence base contributes its primary outcome as a standardised mean difference (Hedges'
g), signed so that a positive value is the hypothesised benefit, and its baseline level as the
fractional distance from its deficiency cut-off, ``(level - cutoff) / cutoff``, a unitless
moderator comparable across nutrients. The nutrient-specific slopes are partially pooled
(``slope_b ~ Normal(slope_global, sigma_slope)``).

Bundle shape (``build/results/cross_nutrient.json``)::

    {"status": "ok | skipped | failed", "reason": str,
     "slopes": [{"evidence_base", "outcome", "k", "mean", "q025", "q975", "p_lt_0"}],
     "pooled_slope": {"mean", "q025", "q975", "p_lt_0"}, "tau": {...},
     "scale": str, "diagnostics": {...},
     "moderator": "...", "measure": "..."}

A negative slope means a larger benefit the further below the cut-off a population starts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nutrimeta.effect_table import effects_for_spec, pooled_rows
from nutrimeta.estimability import InformingTrials, assess
from nutrimeta.results import benefit_sign
from nutrimeta.spec import AnalysisSpec
from nutrimeta.validate import Evidence

MIN_K_PER_PAIR = 2
MIN_PAIRS = 2
MODERATOR_TEXT = ("fractional distance of the baseline level from the deficiency cut-off, "
                  "(level - cutoff) / cutoff; latent for trials without a numeric level")


def _pair_frame(ev: Evidence, spec: AnalysisSpec) -> tuple[pd.DataFrame, str]:
    primary = next(o for o in spec.outcomes if o.primary)
    smd_spec = replace(spec, outcomes=tuple(replace(o, measure="SMD") if o.id == primary.id
                                            else o for o in spec.outcomes))
    eff = effects_for_spec(ev, smd_spec)
    eff = pooled_rows(eff, primary.id).copy()
    sign = benefit_sign(primary.beneficial)
    eff["yi"] = eff["yi"] * sign
    cut = spec.moderator.cutoff
    eff["baseline_status_value_std"] = (eff["baseline_status_value_std"] - cut) / cut
    return eff, primary.id


def fit_cross_nutrient(specs: list[AnalysisSpec], ev: Evidence, data_dir: Path,
                       build_dir: Path, echo: Any,
                       multivariate: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Fit the cross-nutrient slope model when at least two pairs have enough trials.

    ``multivariate``: the multivariate fits (:func:`multivariate_fits`) when they were run
    elsewhere (in another process); else they are run here."""
    frames: list[pd.DataFrame] = []
    pairs: list[dict[str, Any]] = []
    for spec in specs:
        df, outcome = _pair_frame(ev, spec)
        pairs.append({"evidence_base": spec.evidence_base, "outcome": outcome, "k": len(df)})
        if len(df) >= MIN_K_PER_PAIR:
            frames.append(df)
    base = {"title": "Cross-nutrient synthesis: does deficiency modify the effect alike?",
            "measure": "Hedges' g, signed so that positive = hypothesised benefit",
            "moderator": MODERATOR_TEXT, "slopes": pairs,
            "multivariate": multivariate_fits(specs, ev, echo) if multivariate is None
            else multivariate}
    if len(frames) < MIN_PAIRS:
        return {**base, "status": "skipped",
                "reason": f"needs at least {MIN_PAIRS} nutrient–hormone pairs with "
                          f"{MIN_K_PER_PAIR}+ poolable randomised trials of the primary outcome; "
                          f"have {len(frames)}"}
    from nutrimeta import diagnostics
    from nutrimeta.models.bayes import ModelData, Priors
    from nutrimeta.models.fitting import (
        Refitter,
        SamplerSettings,
        fit_with_retries,
        save_posterior,
    )

    df = pd.concat(frames, ignore_index=True)
    multi = df["study_id"].duplicated(keep=False)
    sub = df["subgroup"].fillna("").astype(str)
    df.loc[multi, "study_id"] = df.loc[multi, "study_id"] + "[" + sub[multi] + "]"
    latent = {}
    # the category latent levels of each spec are relative to its cut-off in its own units;
    # on the fractional scale they are divided by the cut-off (averaged across pairs)
    for cat in ("deficient", "marginal", "replete", "unknown"):
        means = [s.moderator.latent[cat].mean / s.moderator.cutoff for s in specs]
        sds = [s.moderator.latent[cat].sd / s.moderator.cutoff for s in specs]
        latent[cat] = (float(np.mean(means)), float(np.max(sds)))
    priors = Priors(mu_sd=1.0, tau_scale=0.5, slope_sd=2.0, slope_between_sd=1.0,
                    latent_baseline=latent, x_deficient=-0.2, x_replete=0.2)
    data = ModelData.from_frame(df, cutoff=0.0)
    seed = specs[0].seed
    sampler = SamplerSettings(target_accept=0.99)  # the slope spread is weakly identified
    names = ["slope_global", "sigma_slope", "slope"]
    try:
        refitter = Refitter(data, priors, "cross_nutrient", sampler=sampler)
        # declared escalating retries; every attempt is recorded
        dt, diag, attempts = fit_with_retries(
            refitter, seed=seed, attrs={"model": "cross_nutrient"},
            check=lambda fitted: diagnostics.check(fitted, var_names=names))
    except Exception as exc:  # reported, never hidden
        return {**base, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    save_posterior(dt, build_dir / "fits" / "cross_nutrient.nc")
    summ = diagnostics.summarise(dt, names)
    post = dt.posterior
    slope = post["slope"]
    labels = [str(v) for v in slope.coords["nutrient"].values]
    for p in pairs:
        label = next((lab for lab in labels if lab in (p["evidence_base"],
                                                        p["evidence_base"].split("_")[0])), None)
        if label is not None:
            p.update(_summary(slope.sel(nutrient=label).values.ravel()))
    sg = post["slope_global"].values.ravel()
    # the declared estimability rule on the pooled slope (moderator relative to cut-off 0)
    informing = InformingTrials.from_trials(
        [None if pd.isna(v) else float(v) for v in df["baseline_status_value_std"]],
        [None if pd.isna(c) else str(c) for c in df["baseline_status_category"]], 0.0)
    pooled_est = assess(priors.slope_sd, float(sg.std(ddof=1)), informing,
                        specs[0].moderator.estimability).to_dict()
    return {**base, "status": "ok" if diag.passed else "failed",
            "pooled_moderator": pooled_est,
            "reason": "" if diag.passed else "; ".join(diag.problems),
            "slopes": pairs, "pooled_slope": _summary(sg),
            "tau": summ.get("sigma_slope"), "scale": "per unit of fractional distance from the "
            "cut-off", "diagnostics": diag.to_dict(), "sampling_attempts": attempts, "seed": seed,
            "priors": priors.to_dict()}


def _summary(d: np.ndarray) -> dict[str, float]:
    return {"mean": round(float(d.mean()), 6), "q025": round(float(np.quantile(d, 0.025)), 6),
            "q975": round(float(np.quantile(d, 0.975)), 6),
            "p_lt_0": round(float(np.mean(d < 0)), 4)}


def multivariate_fits(specs: list[AnalysisSpec], ev: Evidence, echo: Any = None
                      ) -> list[dict[str, Any]]:
    """The multivariate cross-nutrient model (:mod:`nutrimeta.models.cross_mv`) at each
    declared within-trial correlation (primary first), with the estimability rule of the first
    spec applied to its pooled slope; the slope is reported only when estimable."""
    from nutrimeta import diagnostics
    from nutrimeta.models.cross_mv import (
        RHO_VALUES,
        CrossMVData,
        CrossPriors,
        assess_cross_mv,
        cross_mv_frame,
        fit_cross_mv,
        latent_fractional_levels,
    )

    out: list[dict[str, Any]] = []
    seed = specs[0].seed if specs else 0
    try:
        df = cross_mv_frame(ev, specs)
        if df.empty or df["pair"].nunique() < MIN_PAIRS:
            return [{"rho": RHO_VALUES[0], "primary": True, "status": "skipped",
                     "reason": f"needs trials from at least {MIN_PAIRS} nutrient–hormone pairs"}]
        data = CrossMVData.from_frame(df, latent_fractional_levels(specs))
    except Exception as exc:  # reported, never hidden
        return [{"rho": RHO_VALUES[0], "primary": True, "status": "failed",
                 "reason": f"{type(exc).__name__}: {exc}"}]
    rule = specs[0].moderator.estimability
    for rho in RHO_VALUES:
        entry: dict[str, Any] = {"rho": rho, "primary": rho == RHO_VALUES[0], "seed": seed}
        if echo is not None:
            echo(f"  cross_nutrient: multivariate model, rho = {rho:g}")
        try:
            priors = CrossPriors(rho=rho)
            dt = fit_cross_mv(data, priors, seed=seed)
            diag = diagnostics.check(dt, var_names=["slope_global", "mu"])
            est = {k: v.to_dict() for k, v in assess_cross_mv(dt, data, rule).items()}
        except Exception as exc:  # reported, never hidden
            out.append({**entry, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"})
            continue
        sg = est["slope_global"]
        entry.update({"status": "ok" if diag.passed else "failed",
                      "reason": "" if diag.passed else "; ".join(diag.problems),
                      "moderator": est, "diagnostics": diag.to_dict(),
                      "priors": priors.to_dict()})
        if sg["estimable"]:
            entry["pooled_slope"] = _summary(dt.posterior["slope_global"].values.ravel())
        out.append(entry)
    return out
