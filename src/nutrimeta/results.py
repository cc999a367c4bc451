"""Typed results: the contract between the fit stage and the report stage.

Every number a report shows lives in one of these classes. The fit stage builds a
:class:`Bundle` per evidence base (``build/results/<base>.json``) and a
:class:`CrossNutrientResult`; the report stage reads them back with :func:`load_bundle` and
uses attributes, so a renamed or missing field fails when the bundle is read or the report is
rendered, never silently as "NR".

Probability statements are data (:class:`Probability`: quantity, relation, threshold, value),
so "P(mu < 0)" and "P(mu > 0.5)" are found by what they say, not by key strings.

The JSON Schema of these classes is committed as ``docs/results.schema.json`` (regenerate with
``python -m nutrimeta.results``); a test keeps it in sync.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from nutrimeta.analysis_results import AnalysisResult
from nutrimeta.moderator_results import (
    LatentLevel,
    ModeratorQuantity,
    ModeratorResult,
    MultivariateFit,
)
from nutrimeta.records import Direction, OpenRecord, Probability, Record, Relation
from nutrimeta.spec_records import (
    SpecRecord,
)

#: Version of the bundle layout; bumped when a field changes meaning or shape.
SCHEMA_VERSION = 2
Status = Literal["ok", "skipped", "failed"]
Verdict = Literal["supported", "not supported", "uncertain", "not estimable"]

#: Models that give the headline pooled effect of an outcome, in order of preference.
PRIMARY_ORDER = ("random_effects", "exact", "all_evidence", "meta_regression_category",
                 "meta_regression_continuous")


def benefit_sign(beneficial: str) -> float:
    """+1 when a benefit is an increase of the outcome, -1 when it is a decrease."""
    if beneficial == "increase":
        return 1.0
    if beneficial == "decrease":
        return -1.0
    raise ValueError(f"beneficial must be 'increase' or 'decrease', got {beneficial!r}")


def benefit_relation(beneficial: str) -> Relation:
    """The relation that states a benefit: '>' for an increase, '<' for a decrease."""
    return ">" if benefit_sign(beneficial) > 0 else "<"


# --------------------------------------------------------------------------- small pieces


class Summary(Record):
    """Posterior (or sampling-distribution) summary of one scalar quantity."""

    mean: float | None = None
    median: float | None = None
    sd: float | None = None
    mode: float | None = None
    q025: float | None = None
    q500: float | None = None
    q975: float | None = None
    mcse_mean: float | None = None


class Diagnostics(OpenRecord):
    """Convergence summary of a fit (or the quadrature error of the exact path)."""

    passed: bool
    problems: list[str] = Field(default_factory=list)
    rhat_max: float | None = None
    ess_bulk_min: float | None = None
    ess_tail_min: float | None = None
    divergences: int | None = None
    ebfmi_min: float | None = None
    integration_error: float | None = None


class SamplingAttempt(OpenRecord):
    """One sampler run of a fit (settings and whether it passed the gate)."""

    sampler: dict[str, Any]
    passed: bool
    problems: list[str] = Field(default_factory=list)


class RegressionPoint(Record):
    """A point of the posterior regression line on the moderator scale."""

    x: float
    mean: float
    q025: float
    q975: float


class Density(Record):
    """A posterior density on a grid."""

    x: list[float]
    density: list[float]


class ModelResult(Record):
    """One model of one outcome: status, parameter summaries and probability statements."""

    model: str
    description: str
    status: Status
    k: int
    reason: str | None = None
    note: str | None = None
    fitted_as: str | None = None
    parameters: dict[str, Summary] = Field(default_factory=dict)
    prediction: Summary | None = None
    i2: Summary | None = None
    probabilities: list[Probability] = Field(default_factory=list)
    diagnostics: Diagnostics | None = None
    fit_seconds: float | None = None
    sampling_attempts: list[SamplingAttempt] = Field(default_factory=list)
    posterior_file: str | None = None
    seed: int | None = None
    priors: dict[str, Any] | None = None
    regression_line: list[RegressionPoint] = Field(default_factory=list)
    density: dict[str, Density] = Field(default_factory=dict)
    #: moderator models: each moderator quantity's estimability by the declared rule
    moderator: dict[str, ModeratorQuantity] | None = None
    #: continuous meta-regression: posterior level of each category-placed contrast
    latent_levels: list[LatentLevel] | None = None

    def estimable(self, quantity: str) -> bool:
        """False when the rule judged ``quantity`` not estimable (True when not assessed:
        a quantity of no moderator model, e.g. ``mu``)."""
        q = (self.moderator or {}).get(quantity)
        return q is None or q.estimable

    @property
    def ok(self) -> bool:
        """True when the model was fitted and passed its checks."""
        return self.status == "ok"

    def probability(self, quantity: str, relation: str, threshold: float) -> float:
        """The value of P(quantity relation threshold); KeyError naming it if not stated."""
        for p in self.probabilities:
            if p.says(quantity, relation, threshold):
                return p.value
        raise KeyError(f"model {self.model} states no P({quantity} {relation} {threshold:g}); "
                       f"it states {[p.text for p in self.probabilities]}")

    def find_probability(self, quantity: str, relation: str, threshold: float
                         ) -> float | None:
        """Like :meth:`probability` but None when the model does not state it."""
        try:
            return self.probability(quantity, relation, threshold)
        except KeyError:
            return None


class FrequentistCoefficient(OpenRecord):
    """One coefficient of a frequentist fit (estimate, SE, CI)."""

    name: str
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float


class FrequentistFit(OpenRecord):
    """REML or DerSimonian-Laird random-effects fit (metafor conventions; I² in percent)."""

    method: str
    k: int
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    tau2: float
    i2: float | None = None
    Q: float | None = None
    Q_p: float | None = None


class SmallStudy(Record):
    """Egger's regression test (``intercept`` is the asymmetry coefficient) or why not."""

    k: int
    caveat: str | None = None
    method: str | None = None
    intercept: float | None = None
    se: float | None = None
    statistic: float | None = None
    df: int | None = None
    p_value: float | None = None
    slope: float | None = None
    slope_se: float | None = None


class StudyRow(Record):
    """One contrast of one trial as pooled (forest-plot row)."""

    study_id: str
    subgroup: str | None = None
    first_author: str
    year: int
    design: str
    yi: float
    sei: float
    ci_lower: float
    ci_upper: float
    weight: float
    shrunken_mean: float | None = None
    shrunken_q025: float | None = None
    shrunken_q975: float | None = None
    n_intervention: int | None = None
    n_control: int | None = None
    baseline_status_value_std: float | None = None
    baseline_status_category: str
    derivation: str


class SensitivityRow(Record):
    """The exact pooled effect under one alternative assumption."""

    analysis: str
    kind: str
    k: int | None = None
    mean: float
    median: float
    q025: float
    q975: float
    tau_median: float
    p_benefit: float
    p_beyond_mid: float


class CumulativeRow(Record):
    """The pooled effect after the trials up to this one (by publication year)."""

    year: int
    study_id: str
    k: int
    mean: float
    q025: float
    q975: float
    p_gt_0: float


class NextTrialRow(Record):
    """Value of one more trial of ``n_per_arm`` per arm (simulation summary)."""

    n_per_arm: int
    se: float
    p_benefit_now: float
    expected_p_benefit: float
    p_supported: float
    p_mid_now: float
    expected_p_mid: float
    p_supported_mid: float
    n_sims: int
    mc_se: float


class ModeratorDesignRow(Record):
    """One future-trial design for the deficiency difference (simulation summary): how often
    the declared rule would judge it estimable, and how often it would then be supported."""

    trials: int
    n_per_arm: int
    n_below: int
    n_above: int
    p_estimable: float
    p_supported: float
    mean_contraction: float
    n_sims: int
    mc_se: float


class ModeratorDesign(Record):
    """What future trials would make the deficiency difference estimable and give a verdict:
    the declared design grid simulated with the exact meta-regression (``rows``), the truth
    simulated, and the trials with a measured level already included."""

    status: Status
    reason: str | None = None
    true_difference: float | None = None
    true_tau: float | None = None
    sd_per_participant: float | None = None
    existing_measured: int = 0
    existing_left_out: int = 0
    rows: list[ModeratorDesignRow] = Field(default_factory=list)


class NextTrial(Record):
    """What one more randomised trial of a given size would do to the pooled effect, and
    (``moderator``) what trials would answer the deficiency question."""

    status: Status
    reason: str | None = None
    sd_per_participant: float | None = None
    sd_source: str | None = None
    rows: list[NextTrialRow] = Field(default_factory=list)
    moderator: ModeratorDesign | None = None


class TauPriorPosterior(Record):
    """Prior and posterior densities of tau on a common grid."""

    grid: list[float]
    prior: list[float]
    posterior: list[float]
    prior_label: str


class SubgroupTotal(Record):
    """One baseline-status group of an outcome's randomised trials (:mod:`nutrimeta.subgroups`)."""

    status: str
    k_trials: int
    #: Participants, each counted once per trial (None when a trial's n is unknown).
    n_participants: float | None = None
    #: Exact random-effects posterior of the group's pooled effect (k >= 2 only).
    mu: Summary | None = None
    #: REML estimate and its SE (a one-trial group: the trial's own estimate); used by the test.
    estimate: float
    se: float
    tau2: float | None = None
    i2: float | None = None  # percent
    q: float | None = None
    q_df: int | None = None
    q_p: float | None = None


class SubgroupTest(Record):
    """Test for subgroup differences across the status groups."""

    q_between: float
    df: int
    p: float
    method: str = "random effects (REML within groups), inverse-variance chi² test"


class SubgroupAnalysis(Record):
    """Subtotals by baseline status and the test for differences between them."""

    by: str = "baseline_status_category"
    groups: list[SubgroupTotal]
    #: None with fewer than two groups.
    test: SubgroupTest | None = None


class OutcomeResult(Record):
    """Everything the bundle holds for one outcome."""

    label: str
    measure: str
    effect_unit: str
    k: int
    k_all_designs: int
    n_participants: int
    k_trials: int | None = None  # None in bundles from before the trial was the unit
    n_randomised: float | None = None  # participants counted once per trial
    analyses: dict[Literal["conventional", "all_reports"], AnalysisResult] | None = None
    mid: float
    mid_source: str
    beneficial: Direction
    primary: bool
    models: dict[str, ModelResult]
    frequentist: dict[str, FrequentistFit] = Field(default_factory=dict)
    studies: list[StudyRow] = Field(default_factory=list)
    studies_all_designs: list[StudyRow] = Field(default_factory=list)
    small_study: SmallStudy
    sensitivity: list[SensitivityRow] = Field(default_factory=list)
    cumulative: list[CumulativeRow] = Field(default_factory=list)
    next_trial: NextTrial | None = None
    tau_prior_posterior: TauPriorPosterior | None = None
    #: the outcome's moderator estimability (None in bundles from before it was assessed)
    moderator: ModeratorResult | None = None
    #: Subtotals by baseline status and the test for subgroup differences (None in bundles
    #: from before they were computed, or without a poolable trial).
    subgroups: SubgroupAnalysis | None = None

    @property
    def relation(self) -> Relation:
        """'>' when a benefit is an increase, '<' when it is a decrease."""
        return benefit_relation(self.beneficial)

    def primary_model(self) -> tuple[str, ModelResult] | None:
        """``(model id, model)`` giving the headline pooled effect: the first fitted model
        with a ``mu`` in :data:`PRIMARY_ORDER`, else None."""
        ok = {mid: m for mid, m in self.models.items() if m.ok and "mu" in m.parameters}
        for kind in PRIMARY_ORDER:
            for mid, m in ok.items():
                if m.model == kind or mid == kind:
                    return mid, m
        if ok:
            mid = sorted(ok)[0]
            return mid, ok[mid]
        return None

    def benefit_probability(self, model: ModelResult) -> float:
        """P(benefit) of ``mu`` in ``model``: P(mu > 0) or P(mu < 0) by the outcome's
        beneficial direction."""
        return model.probability("mu", self.relation, 0.0)


# --------------------------------------------------------------------------- bundle


class VerdictRule(Record):
    """When a claim is called supported / not supported (stated in every report).

    *supported* when P(claim) >= ``supported_at`` and at least ``min_trials`` trials inform
    it; *not supported* when P(claim) < ``not_supported_below`` (same trial rule);
    *uncertain* otherwise, or when the model the claim needs is not fitted or failed.
    """

    supported_at: float = 0.95
    not_supported_below: float = 0.5
    min_trials: int = 3

    def verdict(self, probability: float | None, k: int) -> tuple[Verdict, str | None]:
        """The verdict and, when the trial rule overrides the probability, why."""
        by_p: Verdict = ("supported" if probability is not None
                         and probability >= self.supported_at else
                         "not supported" if probability is not None
                         and probability < self.not_supported_below else "uncertain")
        if by_p != "uncertain" and k < self.min_trials:
            return "uncertain", (f"{by_p} by probability, but only {k} trial(s): a verdict "
                                 f"needs at least {self.min_trials}")
        return by_p, None


#: The verdict rule of this version (one definition; templates read its numbers).
VERDICT_RULE = VerdictRule()


class ClaimResult(Record):
    """A claim of the field with its posterior probability and verdict."""

    claim: str
    outcome: str
    model: str
    quantity: str
    threshold: float
    direction: str
    k: int
    probability: float | None = None
    estimate: Summary | None = None
    verdict: Verdict
    why: str | None = None


class NotPoolableRow(Record):
    """A reported result that could not be pooled, with the reason."""

    study_id: str
    outcome: str
    subgroup: str | None = None
    design: str
    year: int | None = None  # None: the report gives no date
    first_author: str
    inclusion_status: str
    reason: str
    direction: str | None = None
    p_value: float | None = None


class ExcludedRow(Record):
    """A trial report not included, with its status and reason."""

    study_id: str
    inclusion_status: str
    inclusion_reason: str | None = None


class Flow(Record):
    """Counts of trial reports by inclusion status and poolable trials per outcome."""

    recorded: int
    by_inclusion_status: dict[str, int]
    excluded_reasons: list[ExcludedRow]
    poolable_per_outcome: dict[str, int]
    poolable_all_designs_per_outcome: dict[str, int]


class Provenance(Record):
    """What the results were computed from and with."""

    package_version: str
    data_version: str
    data_hash: str
    data_hash_all: str
    spec_hash: str
    cache_key: str
    versions: dict[str, str]
    seed: int
    sampler: dict[str, Any]
    created: str
    fit_seconds: float | None = None
    #: SHA-256 of ``requirements.lock`` (the hash-pinned install); absent in results computed
    #: before the project had a lock.
    lock_hash: str | None = None
    #: Locked packages whose installed version differed when the results were computed.
    lock_mismatches: dict[str, str] | None = None
    #: Outcomes refitted alone (``nutrimeta fit --outcome``) after the inputs changed: the
    #: cache key of the inputs each outcome was fitted from; absent when every outcome was
    #: fitted from the inputs this provenance describes.
    outcome_cache_keys: dict[str, str] | None = None


class Bundle(Record):
    """The results of one evidence base (``build/results/<base>.json``)."""

    schema_version: int = SCHEMA_VERSION
    evidence_base: str
    title: str
    question: str
    provenance: Provenance
    spec: SpecRecord
    verdict_rule: VerdictRule = Field(default_factory=VerdictRule)
    outcomes: dict[str, OutcomeResult]
    not_poolable: list[NotPoolableRow] = Field(default_factory=list)
    claims: list[ClaimResult] = Field(default_factory=list)
    published_syntheses: list[dict[str, Any]] = Field(default_factory=list)
    flow: Flow


class SlopeRow(Record):
    """The deficiency slope of one nutrient–hormone pair."""

    evidence_base: str
    outcome: str
    k: int
    label: str | None = None
    mean: float | None = None
    q025: float | None = None
    q975: float | None = None
    p_lt_0: float | None = None


class PooledSlope(Record):
    """The slope pooled across pairs."""

    mean: float
    q025: float
    q975: float
    p_lt_0: float


class CrossNutrientResult(Record):
    """Partial pooling of the deficiency slope across nutrient–hormone pairs."""

    schema_version: int = SCHEMA_VERSION
    title: str
    measure: str
    moderator: str
    status: Status
    reason: str | None = None
    slopes: list[SlopeRow]
    pooled_slope: PooledSlope | None = None
    tau: Summary | None = None
    scale: str | None = None
    diagnostics: Diagnostics | None = None
    #: Every sampling attempt of the escalating retry, in order (the last one is reported).
    sampling_attempts: list[SamplingAttempt] = Field(default_factory=list)
    seed: int | None = None
    priors: dict[str, Any] | None = None
    #: the multivariate model at each declared rho, primary first: the main deficiency answer
    multivariate: list[MultivariateFit] | None = None
    #: the estimability rule applied to ``pooled_slope`` (None in older results)
    pooled_moderator: ModeratorQuantity | None = None


class ReportResults(Record):
    """``reports/<base>/results.json``: the bundle and the numbers the report derived."""

    evidence_base: str
    title: str
    report_version: str
    bundle: Bundle
    derived: dict[str, Any]


# --------------------------------------------------------------------------- JSON


def clean_json(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf and pandas NA become None, numpy scalars Python numbers,
    tuples lists, mapping keys strings (the one JSON-cleaning rule of the package)."""
    if isinstance(obj, BaseModel):
        return clean_json(obj.model_dump(mode="json", exclude_none=True))
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    if obj is None or isinstance(obj, str | bool):
        return obj
    if hasattr(obj, "item"):
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    try:
        import pandas as pd

        if obj is pd.NA or obj is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return obj


def to_json(result: BaseModel) -> str:
    """Deterministic JSON text of a results object (absent optional fields omitted)."""
    return json.dumps(clean_json(result), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def load_bundle(path: Path | str) -> Bundle:
    """Read and check ``build/results/<base>.json``; a malformed bundle names the file."""
    path = Path(path)
    try:
        return Bundle.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"results bundle {path.name} does not match the results schema "
                         f"(rerun `nutrimeta fit --force`):\n{exc}") from exc


def load_cross(path: Path | str) -> CrossNutrientResult:
    """Read and check ``build/results/cross_nutrient.json``."""
    path = Path(path)
    try:
        return CrossNutrientResult.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"cross-nutrient results {path.name} do not match the results "
                         f"schema:\n{exc}") from exc


# --------------------------------------------------------------------------- schema


SCHEMA_CLASSES: dict[str, type[BaseModel]] = {
    "Bundle": Bundle, "CrossNutrientResult": CrossNutrientResult,
    "ReportResults": ReportResults,
}


def json_schema() -> dict[str, Any]:
    """JSON Schema of the results files (one document, a definition per file kind)."""
    from pydantic.json_schema import models_json_schema

    _, schema = models_json_schema([(c, "validation") for c in SCHEMA_CLASSES.values()],
                                   title="nutrimeta results",
                                   description="Results bundles written by the fit stage and "
                                               "the report stage (nutrimeta.results).")
    return schema


def schema_text() -> str:
    """The committed ``docs/results.schema.json`` text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results.schema.json")
    target.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {target}")
