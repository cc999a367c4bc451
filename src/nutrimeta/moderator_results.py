"""Typed moderator estimability (part of :mod:`nutrimeta.results`): the declared rule, and per
model and per outcome whether baseline status modifies the effect estimably."""

from __future__ import annotations

from pydantic import Field

from nutrimeta.records import Record

__all__ = ["EstimabilityRuleRecord", "ModeratorQuantity", "ModeratorResult"]


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


class ModeratorResult(Record):
    """Per outcome: does baseline status modify the effect, by the declared rule?
    ``quantities`` is empty when no moderator model could be fitted (``reason`` says why)."""

    model: str | None = None
    estimable: bool
    reason: str
    quantities: dict[str, ModeratorQuantity] = Field(default_factory=dict)
