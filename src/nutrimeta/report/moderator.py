"""Moderator statements of a report by the declared estimability rule: a quantity the rule
rejects is never shown as a number; its reason and prior vs posterior SD are shown instead."""

from __future__ import annotations

from nutrimeta.report.fmt import fmt_estimate, fmt_prob_eq
from nutrimeta.results import CrossNutrientResult, OutcomeResult


def moderator_headline_parts(o: OutcomeResult) -> list[str]:
    """The deficiency part of a headline by the declared estimability rule: numbers only for
    estimable quantities; otherwise "not estimable" with the reason and prior vs posterior SD."""
    mod = o.moderator
    assert mod is not None
    model = o.models.get(mod.model) if mod.model else None
    if model is None or not mod.quantities:
        return [f"effect modification by baseline status not estimable ({mod.reason})"]
    parts: list[str] = []
    p = model.parameters
    shown = [n for n, lab in (("effect_deficient", "deficient"), ("effect_replete", "replete"))
             if n in p and n in mod.quantities and mod.quantities[n].estimable]
    if shown:
        parts.append(", ".join(f"{lab} {fmt_estimate(p[n])}" for n, lab in
                               (("effect_deficient", "deficient"), ("effect_replete", "replete"))
                               if n in shown))
    q = mod.quantities.get("slope")
    if q is not None and q.estimable and "slope" in p:
        slope_txt = f"slope on baseline status {fmt_estimate(p['slope'])}"
        ps = model.find_probability("slope", "<", 0.0)
        if ps is not None:
            slope_txt += f", P(slope < 0) {fmt_prob_eq(ps)}"
        parts.append(slope_txt)
    hidden = [n for n in mod.quantities if not mod.quantities[n].estimable]
    if hidden:
        key = "deficient_minus_replete" if "deficient_minus_replete" in hidden else hidden[0]
        parts.append(f"deficient vs replete {mod.quantities[key].statement}")
    return parts


def legacy_moderator_parts(o: OutcomeResult) -> list[str]:
    """The deficiency part of a headline from bundles without estimability (as before)."""
    parts: list[str] = []
    for model in o.models.values():
        p = model.parameters
        if model.ok and "effect_deficient" in p and "effect_replete" in p:
            parts.append(f"deficient {fmt_estimate(p['effect_deficient'])}, "
                         f"replete {fmt_estimate(p['effect_replete'])}")
            break
    for model in o.models.values():
        if model.ok and "slope" in model.parameters:
            slope_txt = f"slope on baseline status {fmt_estimate(model.parameters['slope'])}"
            ps = model.find_probability("slope", "<", 0.0)
            if ps is not None:
                slope_txt += f", P(slope < 0) {fmt_prob_eq(ps)}"
            parts.append(slope_txt)
            break
    return parts


def multivariate_sentences(cross: CrossNutrientResult) -> list[str]:
    """The main deficiency answer: the multivariate model's pooled slope at the primary rho,
    then its sensitivity to rho; a slope the rule rejects is stated as not estimable with
    prior vs posterior SD, never as a number."""
    out = []
    for f in cross.multivariate or []:
        lead = (f"Within-trial correlation rho = {f.rho:g}"
                + (" (primary)" if f.primary else " (sensitivity)"))
        q = f.moderator.get("slope_global")
        if f.status != "ok":
            out.append(f"{lead}: model {f.status}: {f.reason or ''}".rstrip(": ") + ".")
        elif f.pooled_slope is not None and q is not None and q.estimable:
            ps = f.pooled_slope
            out.append(f"{lead}: pooled slope {fmt_estimate(ps.model_dump())} (95% CrI), "
                       f"P(slope < 0) {fmt_prob_eq(ps.p_lt_0)}; {q.prior_vs_posterior}.")
        elif q is not None:
            out.append(f"{lead}: pooled slope {q.statement}.")
    return out
