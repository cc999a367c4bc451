"""Typed moderator estimability (part of :mod:`nutrimeta.results`): the declared rule, and per
model and per outcome whether baseline status modifies the effect estimably."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nutrimeta.records import Record

__all__ = ["EstimabilityRuleRecord", "LatentLevel", "ModeratorQuantity", "ModeratorResult",
           "MultivariateFit", "MultivariateSlope"]


class EstimabilityRuleRecord(Record):
    """``[moderator.estimability]``: the rule deciding when a moderator quantity is shown."""

    max_contraction: float = 0.5
    min_trials_each_side: int = 2


class ModeratorQuantity(Record):
    """Estimability of one moderator quantity (:func:`nutrimeta.estimability.assess`): the
    declared rule's verdict, its reason, prior against posterior SD, and the informing trials
    (contrasts with their own baseline status) by kind and by side of the cut-off."""

    estimable: bool
    reason: str
    prior_sd: float
    posterior_sd: float
    contraction: float
    n_measured: int
    n_category_only: int
    n_below: int
    n_above: int

    @property
    def prior_vs_posterior(self) -> str:
        """How a non-estimable quantity is shown instead of a number, e.g.
        ``prior SD 2, posterior SD 1.8 (90% of the prior)``."""
        return (f"prior SD {self.prior_sd:.3g}, posterior SD {self.posterior_sd:.3g} "
                f"({100 * self.contraction:.0f}% of the prior)")

    @property
    def statement(self) -> str:
        """``not estimable: <reason>; prior SD …, posterior SD …`` (for reports)."""
        return f"not estimable: {self.reason}; {self.prior_vs_posterior}"


class LatentLevel(Record):
    """The baseline level of a contrast placed by its status category only (no numeric
    value): its posterior in the continuous meta-regression, on the moderator's scale."""

    study_id: str
    subgroup: str = ""
    category: str
    mean: float
    q025: float
    q975: float


class ModeratorResult(Record):
    """Per outcome: does baseline status modify the effect, by the declared rule?
    ``quantities`` is empty when no moderator model could be fitted (``reason`` says why)."""

    model: str | None = None
    estimable: bool
    reason: str
    quantities: dict[str, ModeratorQuantity] = Field(default_factory=dict)


class MultivariateSlope(Record):
    """The pooled deficiency slope of the multivariate cross-nutrient model (posterior)."""

    mean: float
    q025: float
    q975: float
    p_lt_0: float


class MultivariateFit(Record):
    """One fit of the multivariate cross-nutrient model at a declared within-trial residual
    correlation ``rho`` (the primary value, or a sensitivity value). ``pooled_slope`` is
    None when the rule judges ``slope_global`` not estimable (``moderator`` says why)."""

    rho: float
    primary: bool
    status: Literal["ok", "skipped", "failed"]
    reason: str | None = None
    pooled_slope: MultivariateSlope | None = None
    moderator: dict[str, ModeratorQuantity] = Field(default_factory=dict)
    diagnostics: dict[str, Any] | None = None
    seed: int | None = None
    priors: dict[str, Any] | None = None
