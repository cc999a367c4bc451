"""The analysis spec as the results record it: what was declared, written into every bundle.

Typed mirror of :class:`nutrimeta.spec.AnalysisSpec` for the results contract (JSON Schema in
``docs/results.schema.json``), so that a report states the priors, settings and claims that
produced its numbers without reading the spec file again.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from nutrimeta.moderator_results import EstimabilityRuleRecord
from nutrimeta.records import Direction, Record


class TauPriorRecord(Record):
    """A tau prior as declared in the spec."""

    family: str
    scale: float | None = None  # None: a multiple of the unit SD not resolved (sensitivity)
    nu: float = 3.0
    scale_multiple: float | None = None
    unit: str | None = None  # of the resolved scale (None in bundles from before it)

    @property
    def label(self) -> str:
        """How the prior is printed."""
        from nutrimeta.priors import tau_label

        return tau_label(self.family, math.nan if self.scale is None else self.scale, self.nu,
                         self.scale_multiple, self.unit or "")


class OutcomeSpecRecord(Record):
    """One outcome of the spec: measure, unit, MID, direction of benefit, priors."""

    id: str
    measure: str
    unit: str
    mid: float
    mid_source: str
    beneficial: Direction
    mu_prior_sd: float
    tau_prior: TauPriorRecord
    unit_sd: float | None = None
    unit_sd_source: str | None = None
    slope_prior_sd: float
    primary: bool = True
    mu_prior_sd_multiple: float | None = None
    slope_prior_sd_multiple: float | None = None


class LatentLevelRecord(Record):
    """Assumed baseline level (minus the cut-off) of a status category."""

    mean: float
    sd: float


class ModeratorDesignRecord(Record):
    """``[moderator.design]``: the future-trial designs simulated for the moderator."""

    trials: list[int]
    n_per_arm: list[int]
    share_below: list[float]
    true_difference_mids: float
    true_tau_multiple: float
    n_sims: int


class ModeratorRecord(Record):
    """The baseline-status moderator: unit, cut-off and its source, latent levels."""

    nutrient: str
    unit: str
    cutoff: float
    cutoff_value: float
    cutoff_unit: str
    cutoff_source: str
    reference_deficient: float
    reference_replete: float
    latent: dict[str, LatentLevelRecord]
    #: None in bundles from before the rule was declared (the defaults applied)
    estimability: EstimabilityRuleRecord | None = None
    #: None in bundles from before the design grid was declared
    design: ModeratorDesignRecord | None = None


class SamplerRecord(Record):
    """Sampler settings of the spec."""

    draws: int
    tune: int
    chains: int
    target_accept: float


class SensitivityRecord(Record):
    """Sensitivity analyses declared in the spec."""

    tau_priors: list[TauPriorRecord] = Field(default_factory=list)
    leave_one_out: bool = True
    prepost_correlations: list[float] = Field(default_factory=list)
    unlabelled_spread: list[str] = Field(default_factory=list)


class ClaimSpecRecord(Record):
    """A claim of the field as declared in the spec."""

    text: str
    outcome: str
    quantity: str
    model: str
    threshold: float = 0.0
    direction: str = "increase"


class SpecRecord(Record):
    """The analysis spec as the fit used it (``AnalysisSpec.to_dict()``)."""

    evidence_base: str
    title: str
    question: str
    seed: int
    prefer: str
    prepost_correlation: float
    unlabelled_spread: str
    outcomes: list[OutcomeSpecRecord]
    moderator: ModeratorRecord
    models: list[str]
    sampler: SamplerRecord
    sensitivity: SensitivityRecord
    claims: list[ClaimSpecRecord] = Field(default_factory=list)
    bias_prior_sd: float | None = None
    design_extra_sd: float | None = None
    #: The analysis whose ``mu`` posterior the verdicts use.
    primary_analysis: Literal["all_reports", "conventional"] = "all_reports"

    def outcome(self, outcome_id: str) -> OutcomeSpecRecord:
        """The spec of one outcome (KeyError naming it if absent)."""
        for o in self.outcomes:
            if o.id == outcome_id:
                return o
        raise KeyError(f"spec has no outcome {outcome_id!r}")
