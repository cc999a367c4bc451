"""The methods section of an evidence-base report, generated from the analysis spec and the
results bundle (every choice stated as the spec declares it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from nutrimeta.report.calibration import primary_analysis_text
from nutrimeta.report.fmt import describe, fmt
from nutrimeta.results import Bundle

__all__ = ["methods_text"]


def _on_scale(value: float, multiple: float | None, unit: str = "") -> str:
    shown = f"{value:.3g}" + (f" {unit}" if unit else "")
    return shown if multiple is None else f"{multiple:g} × unit SD = {shown}"


def _scale_unit(o: Any) -> str:
    """Unit of an outcome's analysis scale (none for a ratio of means or an SMD)."""
    return str(o.unit) if o.measure == "MD" else ""


def methods_text(bundle: Bundle, effects: pd.DataFrame,
                 calibration: Mapping[str, Any] | None = None) -> list[str]:
    """Methods paragraphs generated from the analysis spec and the bundle; ``calibration``
    is the calibration study's results (``benchmarks/calibration.json``)."""
    spec = bundle.spec
    prov = bundle.provenance
    paras: list[str] = [primary_analysis_text(spec.primary_analysis, calibration)]
    measures = "; ".join(f"{o.label}: {o.measure}"
                         f"{' in ' + o.effect_unit if o.effect_unit else ''}"
                         for o in bundle.outcomes.values())
    paras.append(f"Effect measures (intervention minus control, or post minus pre for single-arm "
                 f"trials): {measures}. Effects, sampling variances and their derivations are "
                 "listed per trial in the effect-size table.")
    models: dict[str, str] = {}
    for o in bundle.outcomes.values():
        for mid, m in o.models.items():
            models.setdefault(mid, m.description)
    if models:
        paras.append("Models: " + " ".join(f"{mid}: {d}" for mid, d in models.items())
                     + " I² is tau² / (tau² + s²), with s² the typical within-study variance "
                     "of Higgins & Thompson (2002); its posterior is reported in percent.")
    mod = spec.moderator
    paras.append(f"Baseline-status moderator: baseline {mod.nutrient} status ({mod.unit}); "
                 f"deficiency cut-off {fmt(mod.cutoff)} {mod.unit} ({mod.cutoff_source}); "
                 f"categories: {', '.join(mod.latent)}.")
    paras.append("Priors (declared in the analysis spec): " + "; ".join(
        f"{o.id}: mu ~ Normal(0, "
        f"{_on_scale(o.mu_prior_sd, o.mu_prior_sd_multiple, _scale_unit(o))}), "
        f"{o.tau_prior.label}, slope ~ Normal(0, "
        f"{_on_scale(o.slope_prior_sd, o.slope_prior_sd_multiple, _scale_unit(o))}) per "
        f"{mod.unit}; unit SD {f'{o.unit_sd:.3g}' if o.unit_sd is not None else 'not declared'}"
        f"{' (' + o.unit_sd_source + ')' if o.unit_sd_source else ''}; minimal important "
        f"difference {fmt(o.mid)} ({o.mid_source})"
        for o in spec.outcomes) + ".")
    rule = mod.estimability
    paras.append("Moderator estimability rule (declared): a moderator quantity is shown as a "
                 "number only when its posterior SD is below "
                 f"{rule.max_contraction if rule else 0.5:g} × its prior SD and at least "
                 f"{rule.min_trials_each_side if rule else 2} trials with baseline status "
                 "information lie on each side of the cut-off; otherwise it is reported as not "
                 "estimable with the reason and its prior and posterior SD.")
    paras.append("Trials without a numeric baseline level enter the continuous "
                 "meta-regression with a latent level (minus the cut-off, in "
                 f"{mod.unit}) drawn from a normal distribution per status "
                 "category: " + "; ".join(
                     f"{cat} mean {fmt(v.mean)}, SD {fmt(v.sd)}"
                     for cat, v in mod.latent.items())
                 + f". Effects in deficient and replete populations are reported at "
                 f"{fmt(mod.reference_deficient)} and "
                 f"{fmt(mod.reference_replete)} {mod.unit} from the "
                 "cut-off.")
    conv = [f"change-score SDs derived from baseline and follow-up SDs with a pre/post "
            f"correlation of {describe(spec.prepost_correlation)} unless a row states its own",
            f"a dispersion printed as a bare '±' read as {spec.unlabelled_spread.upper()}",
            "means and SDs from medians with IQR or range by Luo et al. (2018) and Wan et "
            "al. (2014); SD from SE, confidence interval or p-value by the Cochrane Handbook "
            "formulas; units harmonised with pint (every trial's path is its derivation "
            "in the effect-size table)"]
    paras.append("Conversions: " + "; ".join(conv) + ".")
    sens = spec.sensitivity
    parts = []
    if sens.tau_priors:
        parts.append("heterogeneity priors " + ", ".join(t.label for t in sens.tau_priors))
    if sens.leave_one_out:
        parts.append("leave-one-trial-out")
    if sens.prepost_correlations:
        parts.append("pre/post correlation " + ", ".join(
            fmt(r) for r in sens.prepost_correlations))
    if sens.unlabelled_spread:
        parts.append("bare '±' read as " + " or ".join(
            "excluded" if u == "exclude" else u.upper() for u in sens.unlabelled_spread))
    if parts:
        paras.append("Sensitivity analyses (exact random-effects posterior): "
                     + "; ".join(parts) + ".")
    from nutrimeta.models.quadrature import TOLERANCE as QUADRATURE_TOLERANCE

    paras.append("Posterior computation: models with at most three hyperparameters besides "
                 "the location parameters (the meta-regressions, the category model and the "
                 "all-designs model with at most one non-randomised design) are computed by "
                 "quadrature: the location parameters are integrated in closed form, the "
                 "hyperparameters on a grid, and independent draws are taken; a fit whose "
                 "integration error (change against half the grid resolution) exceeds "
                 f"{QUADRATURE_TOLERANCE:g} posterior SDs is sampled instead. "
                 f"Sampled models: {describe(prov.sampler)}; seed {prov.seed}. "
                 "Fits are flagged when R-hat, effective sample sizes, divergences or "
                 "E-BFMI fail their thresholds (diagnostics section).")
    paras.append("Frequentist random-effects estimates (REML and DerSimonian-Laird) are shown for "
                 "comparison. Small-study effects are checked with an Egger-type regression test, "
                 "which has low power with fewer than 10 trials and cannot separate publication "
                 "bias from other causes of asymmetry. GRADE domains carry automated suggestions "
                 "from stated rules; a reviewer makes the judgement.")
    return paras
