"""Prior translation, in one place: the analysis spec's priors → the sampled models' priors,
the exact path's tau prior, and the printed labels of both."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nutrimeta.models.bayes import Priors
    from nutrimeta.models.exact import TauPrior
    from nutrimeta.spec import AnalysisSpec, OutcomeSpec, TauPriorSpec

TAU_FAMILIES = ("half_normal", "half_cauchy", "half_student_t", "exponential")


def tau_label(family: str, scale: float, nu: float = 3.0,
              scale_multiple: float | None = None, unit: str = "") -> str:
    """How a tau prior is printed, e.g. ``tau ~ HalfNormal(0.5)``; a prior declared as a
    multiple of the outcome's unit SD names it: ``tau ~ HalfNormal(1 × unit SD = 48.3 pmol/L)``
    (``scale`` NaN when not yet resolved for an outcome: ``HalfNormal(1 × unit SD)``)."""
    if scale_multiple is not None:
        shown = f"{scale_multiple:g} × unit SD" + (
            "" if math.isnan(scale) else f" = {scale:.3g}" + (f" {unit}" if unit else ""))
        return tau_label(family, 1.0, nu).replace("=1)", f"={shown})").replace(
            "(1)", f"({shown})")
    if family == "half_student_t":
        return f"tau ~ HalfStudentT(nu={nu:g}, scale={scale:g})"
    if family == "exponential":
        return f"tau ~ Exponential(mean={scale:g})"
    names = {"half_normal": "HalfNormal", "half_cauchy": "HalfCauchy"}
    if family not in names:
        raise ValueError(f"unknown tau prior family {family!r}; choose from {TAU_FAMILIES}")
    return f"tau ~ {names[family]}({scale:g})"


def exact_tau_prior(spec: TauPriorSpec) -> TauPrior:
    """The exact (quadrature) engine's prior for a spec's tau prior."""
    from nutrimeta.models.exact import TauPrior

    if spec.family == "half_normal":
        return TauPrior.half_normal(spec.scale)
    if spec.family == "half_cauchy":
        return TauPrior.half_cauchy(spec.scale)
    if spec.family == "half_student_t":
        return TauPrior.half_student_t(spec.nu, spec.scale)
    if spec.family == "exponential":
        return TauPrior.exponential(1.0 / spec.scale)
    raise ValueError(f"unknown tau prior family {spec.family!r}")


def sampled_priors(spec: AnalysisSpec, o: OutcomeSpec) -> Priors:
    """The sampled models' priors for one outcome of a spec (all on the outcome's scale)."""
    from nutrimeta.models.bayes import Priors

    m = spec.moderator
    latent = {c: (lv.mean, lv.sd) for c, lv in m.latent.items()}
    kw: dict[str, Any] = {
        "mu_sd": o.mu_prior_sd, "tau_family": o.tau_prior.family, "tau_scale": o.tau_prior.scale,
        "tau_nu": o.tau_prior.nu, "slope_sd": o.slope_prior_sd, "latent_baseline": latent,
        "x_deficient": m.reference_deficient, "x_replete": m.reference_replete,
        "category_sd": o.mu_prior_sd / 2, "tau_contrast_scale": o.tau_prior.scale,
    }
    if not math.isnan(spec.bias_prior_sd):
        kw["design_bias_sd"] = spec.bias_prior_sd * o.mu_prior_sd
    if not math.isnan(spec.design_extra_sd):
        kw["design_extra_scale"] = spec.design_extra_sd * o.mu_prior_sd
    return Priors(**kw)
