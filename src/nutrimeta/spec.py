"""Declarative analysis specs (``analyses/<evidence_base>.toml``).

A spec says what to fit and how: outcomes with their effect measure, unit and minimal important
difference; the baseline-status moderator (unit, deficiency cut-off and its source, the latent
level assumed for each status category); priors; sampler settings; sensitivity analyses; and the
claims of the field to check. Priors and choices are configuration, written into every output.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from nutrimeta.estimability import EstimabilityRule
from nutrimeta.io_utils import sha256_text
from nutrimeta.priors import TAU_FAMILIES, tau_label
from nutrimeta.schema import EVIDENCE_BASES, MODERATOR_UNITS, OUTCOMES, STATUS_CATEGORIES
from nutrimeta.units import UnitConversionError, convert

MODEL_KINDS = (
    "random_effects",
    "meta_regression_continuous",
    "meta_regression_category",
    "all_evidence",
)


#: Readings of a dispersion printed as a bare "±".
UNLABELLED_READINGS = ("sd", "se", "exclude")

#: Declared analyses of each outcome; the spec names the one the verdicts use.
ANALYSES = ("all_reports", "conventional")


class SpecError(ValueError):
    """An analysis spec is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class TauPriorSpec:
    """Prior of the between-trial SD tau: family, scale (the mean for the exponential), nu."""

    family: str
    scale: float  # NaN while a multiple of the unit SD is not resolved for an outcome
    nu: float = 3.0
    #: the scale as a multiple of the outcome's unit SD (None: an absolute scale)
    scale_multiple: float | None = None
    #: unit of the resolved scale, printed in the label ("" when none or not resolved)
    unit: str = ""

    @property
    def label(self) -> str:
        """How the prior is printed (one rule: :func:`nutrimeta.priors.tau_label`)."""
        return tau_label(self.family, self.scale, self.nu, self.scale_multiple, self.unit)

    def for_outcome(self, unit_sd: float | None, unit: str = "") -> TauPriorSpec:
        """The prior on one outcome's scale (a multiple resolved with its unit SD; ``unit``
        is the outcome's analysis-scale unit, printed after the resolved scale)."""
        if self.scale_multiple is None:
            return self
        if unit_sd is None:
            raise ValueError("a tau prior stated as a multiple of the unit SD needs unit_sd")
        return TauPriorSpec(self.family, self.scale_multiple * unit_sd, self.nu,
                            self.scale_multiple, unit)


@dataclass(frozen=True)
class OutcomeSpec:
    """One analysed outcome: measure, unit, MID and its source, direction of benefit, priors."""

    id: str
    measure: str
    unit: str
    mid: float
    mid_source: str
    beneficial: str  # "increase" or "decrease"
    mu_prior_sd: float
    tau_prior: TauPriorSpec
    slope_prior_sd: float
    primary: bool = True
    #: the mu / slope prior SDs as multiples of ``unit_sd`` when declared so (None: absolute)
    mu_prior_sd_multiple: float | None = None
    slope_prior_sd_multiple: float | None = None
    #: Typical between-participant SD on the outcome's analysis scale (for a ROM outcome a
    #: coefficient of variation); scales the all-reports priors. None: not declared.
    unit_sd: float | None = None
    unit_sd_source: str = ""

    @property
    def scale_unit(self) -> str:
        """Unit of the analysis scale (of the unit SD and the priors): the outcome's unit for
        a mean difference; none for a ratio of means (log scale) or an SMD."""
        return self.unit if self.measure == "MD" else ""

    def resolve(self, prior: TauPriorSpec) -> TauPriorSpec:
        """A (sensitivity) tau prior on this outcome's scale, its label naming the multiple."""
        return prior.for_outcome(self.unit_sd, self.scale_unit)

    def require_unit_sd(self) -> float:
        """The declared unit SD; a clear error when the all-reports analysis needs it."""
        if self.unit_sd is None:
            raise ValueError(f"outcome {self.id!r}: the all-reports analysis needs unit_sd "
                             "(and unit_sd_source) in the analysis spec")
        return self.unit_sd

    @property
    def label(self) -> str:
        """Readable name of the outcome (from the schema)."""
        return OUTCOMES[self.id]["label"]


@dataclass(frozen=True)
class LatentLevel:
    """Assumed baseline level (minus the cut-off) of trials in a status category."""

    mean: float
    sd: float


@dataclass(frozen=True)
class ModeratorDesignSpec:
    """``[moderator.design]``: the grid of future-trial designs simulated to see what would
    make the deficiency difference estimable and give a verdict (declared assumptions).

    Each cell adds ``trials`` two-arm trials of ``n_per_arm`` per arm with measured baseline
    levels, ``share_below`` of them at the reference deficient level and the rest at the
    reference replete level; the truth simulated has a deficient-minus-replete difference of
    ``true_difference_mids`` MIDs in the beneficial direction and a between-trial SD of
    ``true_tau_multiple`` unit SDs."""

    trials: tuple[int, ...] = (2, 4, 8, 16)
    n_per_arm: tuple[int, ...] = (50, 200)
    share_below: tuple[float, ...] = (0.0, 0.5)
    true_difference_mids: float = 1.0
    true_tau_multiple: float = 0.25
    n_sims: int = 200


@dataclass(frozen=True)
class ModeratorSpec:
    """The baseline-status moderator: unit, deficiency cut-off and its source, latent levels."""

    nutrient: str
    unit: str
    cutoff: float  # in ``unit`` (converted in code from the published value)
    cutoff_value: float  # as published
    cutoff_unit: str  # as published
    cutoff_source: str
    reference_deficient: float
    reference_replete: float
    latent: dict[str, LatentLevel]
    #: ``[moderator.estimability]``: when a moderator quantity may be shown as a number
    estimability: EstimabilityRule = field(default_factory=EstimabilityRule)
    #: ``[moderator.design]``: future-trial designs simulated for the moderator
    design: ModeratorDesignSpec = field(default_factory=ModeratorDesignSpec)


@dataclass(frozen=True)
class SamplerSpec:
    """NUTS settings."""

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.95


@dataclass(frozen=True)
class SensitivitySpec:
    """Sensitivity analyses to run on the exact posterior."""

    tau_priors: tuple[TauPriorSpec, ...] = ()
    leave_one_out: bool = True
    prepost_correlations: tuple[float, ...] = (0.2, 0.8)
    unlabelled_spread: tuple[str, ...] = ("se", "exclude")


@dataclass(frozen=True)
class ClaimSpec:
    """A claim of the field to check against the posterior."""

    text: str
    outcome: str
    quantity: str  # "mu", "effect_deficient", "effect_replete", "deficient_minus_replete"
    model: str
    threshold: float = 0.0
    direction: str = "increase"


@dataclass(frozen=True)
class AnalysisSpec:
    """A parsed, checked analysis spec (``analyses/<evidence_base>.toml``)."""

    evidence_base: str
    title: str
    question: str
    seed: int
    prefer: str
    prepost_correlation: float
    unlabelled_spread: str
    outcomes: tuple[OutcomeSpec, ...]
    moderator: ModeratorSpec
    models: tuple[str, ...]
    sampler: SamplerSpec
    sensitivity: SensitivitySpec
    claims: tuple[ClaimSpec, ...]
    bias_prior_sd: float
    design_extra_sd: float
    #: The analysis whose ``mu`` posterior the verdicts use (chosen by the calibration study).
    primary_analysis: str = "all_reports"
    source_text: str = field(repr=False, compare=False, default="")

    @property
    def spec_hash(self) -> str:
        """SHA-256 of the spec file text (part of the cache key)."""
        return sha256_text(self.source_text)

    def outcome(self, outcome_id: str) -> OutcomeSpec:
        """The spec of one outcome."""
        for o in self.outcomes:
            if o.id == outcome_id:
                return o
        raise KeyError(outcome_id)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as recorded in every results bundle."""
        d = asdict(self)
        d.pop("source_text", None)
        return d


# --------------------------------------------------------------------------- TOML checking
# The TOML file is checked by pydantic models of its shape (strict types, no unknown keys);
# errors are reported as ``<file> [section] #n.key: problem``.


class _Toml(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


def _one_of(value: str, allowed: tuple[str, ...] | dict[str, Any], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {tuple(allowed)}")
    return value


class _TauToml(_Toml):
    family: str
    scale: float | None = None
    scale_multiple: float | None = None  # of the outcome's unit_sd
    nu: float = 3.0

    @model_validator(mode="after")
    def _one_scale(self) -> _TauToml:
        if (self.scale is None) == (self.scale_multiple is None):
            raise ValueError("give exactly one of scale and scale_multiple (of unit_sd)")
        if self.scale_multiple is not None and not self.scale_multiple > 0:
            raise ValueError("tau prior scale_multiple must be > 0")
        return self

    @field_validator("family")
    @classmethod
    def _family(cls, v: str) -> str:
        return _one_of(v, TAU_FAMILIES, "tau prior family")

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError("tau prior scale must be > 0")
        return v


class _AnalysisToml(_Toml):
    evidence_base: str
    title: str
    question: str
    seed: int
    primary_analysis: str = "all_reports"

    @field_validator("primary_analysis")
    @classmethod
    def _primary(cls, v: str) -> str:
        return _one_of(v, ANALYSES, "primary_analysis")

    @field_validator("evidence_base")
    @classmethod
    def _base(cls, v: str) -> str:
        if v not in EVIDENCE_BASES:
            raise ValueError(f"unknown evidence_base {v!r}")
        return v


class _EffectsToml(_Toml):
    prefer: str = "change"
    unlabelled_spread: str = "sd"
    prepost_correlation: float = 0.5

    @field_validator("prefer")
    @classmethod
    def _prefer(cls, v: str) -> str:
        if v not in ("change", "final"):
            raise ValueError("prefer must be 'change' or 'final'")
        return v

    @field_validator("unlabelled_spread")
    @classmethod
    def _unlabelled(cls, v: str) -> str:
        if v not in UNLABELLED_READINGS:
            raise ValueError("unlabelled_spread must be 'sd', 'se' or 'exclude'")
        return v

    @field_validator("prepost_correlation")
    @classmethod
    def _r(cls, v: float) -> float:
        if not -1 < v < 1:
            raise ValueError("prepost_correlation must be in (-1, 1)")
        return v


class _LatentToml(_Toml):
    mean: float
    sd: float


class _EstimabilityToml(_Toml):
    max_contraction: float = EstimabilityRule.max_contraction
    min_trials_each_side: int = EstimabilityRule.min_trials_each_side

    @field_validator("max_contraction")
    @classmethod
    def _contraction(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError("max_contraction must lie in (0, 1]")
        return v

    @field_validator("min_trials_each_side")
    @classmethod
    def _min_each_side(cls, v: int) -> int:
        if v < 0:
            raise ValueError("min_trials_each_side must be >= 0")
        return v


class _DesignGridToml(_Toml):
    trials: list[int] = list(ModeratorDesignSpec.trials)
    n_per_arm: list[int] = list(ModeratorDesignSpec.n_per_arm)
    share_below: list[float] = list(ModeratorDesignSpec.share_below)
    true_difference_mids: float = ModeratorDesignSpec.true_difference_mids
    true_tau_multiple: float = ModeratorDesignSpec.true_tau_multiple
    n_sims: int = ModeratorDesignSpec.n_sims

    @model_validator(mode="after")
    def _ranges(self) -> _DesignGridToml:
        if not self.trials or min(self.trials) < 1:
            raise ValueError("trials must be a non-empty list of positive counts")
        if not self.n_per_arm or min(self.n_per_arm) < 2:
            raise ValueError("n_per_arm must be a non-empty list of sizes >= 2")
        if not self.share_below or not all(0.0 <= f <= 1.0 for f in self.share_below):
            raise ValueError("share_below must be a non-empty list of shares in [0, 1]")
        if self.true_tau_multiple < 0 or self.n_sims < 10:
            raise ValueError("true_tau_multiple must be >= 0 and n_sims >= 10")
        return self


class _ModeratorToml(_Toml):
    unit: str
    cutoff_value: float
    cutoff_unit: str
    cutoff_source: str
    reference_deficient: float
    reference_replete: float
    latent: dict[str, _LatentToml]
    estimability: _EstimabilityToml = _EstimabilityToml()
    design: _DesignGridToml = _DesignGridToml()

    @field_validator("latent")
    @classmethod
    def _categories(cls, v: dict[str, _LatentToml]) -> dict[str, _LatentToml]:
        missing = [c for c in STATUS_CATEGORIES if c not in v]
        if missing:
            raise ValueError(f"missing key {missing[0]!r}")
        for c in v:
            _one_of(c, STATUS_CATEGORIES, "status category")
        return v


class _OutcomeToml(_Toml):
    id: str
    measure: str
    unit: str | None = None
    mid: float
    mid_source: str
    beneficial: str
    mu_prior_sd: float | None = None
    mu_prior_sd_multiple: float | None = None
    tau_prior: _TauToml
    slope_prior_sd: float | None = None
    slope_prior_sd_multiple: float | None = None
    primary: bool = True
    unit_sd: float | None = None
    unit_sd_source: str = ""

    @model_validator(mode="after")
    def _priors_on_scale(self) -> _OutcomeToml:
        for key in ("mu_prior_sd", "slope_prior_sd"):
            absolute, multiple = getattr(self, key), getattr(self, f"{key}_multiple")
            if (absolute is None) == (multiple is None):
                raise ValueError(f"give exactly one of {key} and {key}_multiple (of unit_sd)")
            if (multiple if multiple is not None else absolute) <= 0:
                raise ValueError(f"{key} must be > 0")
        uses_multiple = (self.mu_prior_sd_multiple is not None
                         or self.slope_prior_sd_multiple is not None
                         or self.tau_prior.scale_multiple is not None)
        if uses_multiple and self.unit_sd is None:
            raise ValueError("priors stated as multiples of the unit SD need unit_sd")
        return self

    @field_validator("unit_sd")
    @classmethod
    def _unit_sd(cls, v: float | None) -> float | None:
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise ValueError("unit_sd must be positive and finite")
        return v

    @model_validator(mode="after")
    def _unit_sd_sourced(self) -> _OutcomeToml:
        if self.unit_sd is not None and not self.unit_sd_source.strip():
            raise ValueError("unit_sd needs unit_sd_source (where the number comes from)")
        return self

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if v not in OUTCOMES:
            raise ValueError(f"unknown outcome {v!r}")
        return v

    @field_validator("measure")
    @classmethod
    def _measure(cls, v: str) -> str:
        if v not in ("MD", "SMD", "ROM"):
            raise ValueError("measure must be MD, SMD or ROM")
        return v

    @field_validator("beneficial")
    @classmethod
    def _beneficial(cls, v: str) -> str:
        if v not in ("increase", "decrease"):
            raise ValueError("beneficial must be 'increase' or 'decrease'")
        return v


class _SamplerToml(_Toml):
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.95


class _SensitivityToml(_Toml):
    tau_priors: list[_TauToml] = []
    leave_one_out: bool = True
    prepost_correlations: list[float] = [0.2, 0.8]
    unlabelled_spread: list[str] = ["se", "exclude"]

    @field_validator("unlabelled_spread")
    @classmethod
    def _readings(cls, v: list[str]) -> list[str]:
        for r in v:
            _one_of(r, UNLABELLED_READINGS, "unlabelled_spread reading")
        return v


class _ClaimToml(_Toml):
    text: str
    outcome: str
    quantity: str
    model: str
    threshold: float = 0.0
    direction: str = "increase"


class _DesignToml(_Toml):
    bias_prior_sd: float = math.nan
    extra_sd: float = math.nan


class _SpecToml(_Toml):
    analysis: _AnalysisToml
    effects: _EffectsToml = _EffectsToml()
    moderator: _ModeratorToml
    outcomes: list[_OutcomeToml]
    models: list[str] = list(MODEL_KINDS)
    sampler: _SamplerToml = _SamplerToml()
    sensitivity: _SensitivityToml = _SensitivityToml()
    claims: list[_ClaimToml] = []
    design: _DesignToml = _DesignToml()

    @field_validator("outcomes")
    @classmethod
    def _some(cls, v: list[_OutcomeToml]) -> list[_OutcomeToml]:
        if not v:
            raise ValueError("at least one [[outcomes]] entry is needed")
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        for k in v:
            if k not in MODEL_KINDS:
                raise ValueError(f"unknown model {k!r}; choose from {MODEL_KINDS}")
        return v


_KINDS = {"int_type": "int", "float_type": "float", "string_type": "str", "bool_type": "bool",
          "list_type": "list", "dict_type": "dict", "model_type": "a table"}


def _problem(path: str, err: Any) -> str:
    """One pydantic error as ``<file> [section] #n.key: problem``."""
    loc = list(err["loc"])
    where = path
    if len(loc) > 1 and isinstance(loc[0], str):
        section = loc.pop(0)
        if loc and isinstance(loc[0], int):
            where += f" [[{section}]] #{loc.pop(0) + 1}"
        else:
            where += f" [{section}]"
    key = loc.pop() if loc and err["type"] in (*_KINDS, "missing", "extra_forbidden") else None
    if loc:
        where += "." + ".".join(str(x) for x in loc)
    if err["type"] == "missing":
        return f"{where}: missing key {key!r}"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key {key!r}"
    if err["type"] in _KINDS:
        return f"{where}: {key!r} must be {_KINDS[err['type']]}, got {err['input']!r}"
    return f"{where}: {str(err['msg']).removeprefix('Value error, ')}"


def load_spec(path: Path | str) -> AnalysisSpec:
    """Parse and check one analysis spec; errors name the file and the offending key."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from exc
    w = str(path)
    try:
        t = _SpecToml.model_validate(raw)
    except ValidationError as exc:
        raise SpecError("\n".join(_problem(w, e) for e in exc.errors())) from None
    base = t.analysis.evidence_base
    m = t.moderator
    mw = f"{w} [moderator]"
    nutrient = EVIDENCE_BASES[base]["nutrient"]
    if m.unit != MODERATOR_UNITS[nutrient]:
        raise SpecError(f"{mw}: unit must be {MODERATOR_UNITS[nutrient]} for {nutrient}")
    try:
        cutoff = float(convert(m.cutoff_value, m.cutoff_unit, m.unit, nutrient))
    except UnitConversionError as exc:
        raise SpecError(f"{mw}: cutoff_unit: {exc}") from exc
    moderator = ModeratorSpec(
        nutrient=nutrient, unit=m.unit, cutoff=cutoff, cutoff_value=m.cutoff_value,
        cutoff_unit=m.cutoff_unit, cutoff_source=m.cutoff_source,
        reference_deficient=m.reference_deficient, reference_replete=m.reference_replete,
        latent={c: LatentLevel(m.latent[c].mean, m.latent[c].sd) for c in STATUS_CATEGORIES},
        estimability=EstimabilityRule(max_contraction=m.estimability.max_contraction,
                                      min_trials_each_side=m.estimability.min_trials_each_side),
        design=ModeratorDesignSpec(
            trials=tuple(m.design.trials), n_per_arm=tuple(m.design.n_per_arm),
            share_below=tuple(float(f) for f in m.design.share_below),
            true_difference_mids=m.design.true_difference_mids,
            true_tau_multiple=m.design.true_tau_multiple, n_sims=m.design.n_sims))

    def tau(x: _TauToml) -> TauPriorSpec:
        return TauPriorSpec(x.family, math.nan if x.scale is None else x.scale, x.nu,
                            x.scale_multiple)

    def on_scale(absolute: float | None, multiple: float | None, unit_sd: float | None
                 ) -> float:
        return float(absolute if absolute is not None else multiple * unit_sd)  # type: ignore

    def unit_of(o: _OutcomeToml) -> str:
        return o.unit if o.unit is not None else str(OUTCOMES[o.id]["unit"])

    outcomes = tuple(OutcomeSpec(
        id=o.id, measure=o.measure, unit=unit_of(o),
        mid=o.mid, mid_source=o.mid_source, beneficial=o.beneficial,
        mu_prior_sd=on_scale(o.mu_prior_sd, o.mu_prior_sd_multiple, o.unit_sd),
        tau_prior=tau(o.tau_prior).for_outcome(o.unit_sd,
                                               unit_of(o) if o.measure == "MD" else ""),
        slope_prior_sd=on_scale(o.slope_prior_sd, o.slope_prior_sd_multiple, o.unit_sd),
        primary=o.primary, unit_sd=o.unit_sd, unit_sd_source=o.unit_sd_source,
        mu_prior_sd_multiple=o.mu_prior_sd_multiple,
        slope_prior_sd_multiple=o.slope_prior_sd_multiple)
        for o in t.outcomes)
    if any(x.scale_multiple is not None for x in t.sensitivity.tau_priors):
        missing = [o.id for o in outcomes if o.unit_sd is None]
        if missing:
            raise SpecError(f"{w} [sensitivity] tau_priors: a prior stated as a multiple of the "
                            f"unit SD needs unit_sd for every outcome; missing for {missing}")
    sens = t.sensitivity
    spec = AnalysisSpec(
        evidence_base=base, title=t.analysis.title, question=t.analysis.question,
        seed=t.analysis.seed, prefer=t.effects.prefer,
        prepost_correlation=t.effects.prepost_correlation,
        unlabelled_spread=t.effects.unlabelled_spread, outcomes=outcomes, moderator=moderator,
        models=tuple(t.models),
        sampler=SamplerSpec(draws=t.sampler.draws, tune=t.sampler.tune,
                            chains=t.sampler.chains, target_accept=t.sampler.target_accept),
        sensitivity=SensitivitySpec(
            tau_priors=tuple(tau(x) for x in sens.tau_priors),
            leave_one_out=sens.leave_one_out,
            prepost_correlations=tuple(float(x) for x in sens.prepost_correlations),
            unlabelled_spread=tuple(sens.unlabelled_spread)),
        claims=tuple(ClaimSpec(text=c.text, outcome=c.outcome, quantity=c.quantity,
                               model=c.model, threshold=c.threshold, direction=c.direction)
                     for c in t.claims),
        bias_prior_sd=t.design.bias_prior_sd, design_extra_sd=t.design.extra_sd,
        primary_analysis=t.analysis.primary_analysis, source_text=text)
    for c in spec.claims:
        if c.outcome not in {o.id for o in spec.outcomes}:
            raise SpecError(f"{w} [[claims]]: outcome {c.outcome!r} is not analysed")
    return spec


def load_specs(folder: Path | str = "analyses") -> list[AnalysisSpec]:
    """Every spec in ``folder``, sorted by file name."""
    return [load_spec(p) for p in sorted(Path(folder).glob("*.toml"))]
