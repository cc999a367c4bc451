"""Typed results of the declared analyses of one outcome, side by side.

``conventional`` pools complete reports with the trial as the unit; ``all_reports`` adds every
randomised partial report by its route into the likelihood (:mod:`nutrimeta.all_reports`).
Part of each outcome of the results bundle (:mod:`nutrimeta.results`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nutrimeta.records import Probability, Record

__all__ = [
    "AnalysisMu",
    "AnalysisResult",
    "AnalysisVariant",
    "ContributionRow",
    "NotUsedRow",
    "Route",
]

Route = Literal["full", "se_from_p", "latent_sd", "censored_threshold", "censored_ns", "sign"]


class AnalysisMu(Record):
    """Posterior summary of the pooled effect ``mu`` of one analysis."""

    mean: float
    q025: float
    q975: float
    #: P(benefit) as a probability statement on ``mu`` in the beneficial direction.
    p_benefit: Probability


class ContributionRow(Record):
    """A trial-outcome cell that enters an analysis, with its route into the likelihood."""

    study_id: str
    subgroup: str = ""
    route: Route
    #: Declared assumptions the route needed (e.g. an equal split of a known total n).
    assumptions: list[str] = Field(default_factory=list)


class NotUsedRow(Record):
    """A trial-outcome cell an analysis does not use, with the reason."""

    study_id: str
    subgroup: str = ""
    reason: str


class AnalysisVariant(Record):
    """The all-reports analysis under one variation (a route, an assumption or a trial left
    out; the log-SD prior spread scaled; another reading of a bare "±")."""

    label: str
    kind: Literal["route", "assumption", "prior", "leave_one_out", "unlabelled_spread"]
    k_trials: int
    mu: AnalysisMu | None = None


class AnalysisResult(Record):
    """One declared analysis of an outcome (``conventional`` or ``all_reports``)."""

    status: Literal["ok", "not run", "failed"] = "ok"
    reason: str = ""
    k_trials: int
    #: Participants randomised, each counted once per trial (None when a trial's n is
    #: unknown).
    n_randomised: float | None = None
    #: One trial only: shown as that trial with its arms, never as a pooled result.
    single_trial: bool = False
    mu: AnalysisMu | None = None
    method: str | None = None
    contributions: list[ContributionRow] = Field(default_factory=list)
    not_used: list[NotUsedRow] = Field(default_factory=list)
    #: Trials per route (all-reports analysis).
    routes: dict[str, int] = Field(default_factory=dict)
    #: The analysis under each variation (all-reports analysis).
    sensitivity: list[AnalysisVariant] = Field(default_factory=list)
    #: Trials entering by a partial route (a rescued row) whose removal alone moves
    #: P(benefit) across a level of the verdict rule: the answer hangs on that row.
    fragile: list[str] = Field(default_factory=list)


