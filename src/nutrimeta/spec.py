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


class SpecError(ValueError):
    """An analysis spec is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class TauPriorSpec:
    """Prior of the between-trial SD tau: family, scale (the mean for the exponential), nu."""

    family: str
    scale: float
    nu: float = 3.0

    @property
    def label(self) -> str:
        """How the prior is printed (one rule: :func:`nutrimeta.priors.tau_label`)."""
        return tau_label(self.family, self.scale, self.nu)


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


def _get(d: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...],
         default: Any = ...) -> Any:
    if key not in d:
        if default is ...:
            raise SpecError(f"{where}: missing key {key!r}")
        return default
    value = d[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise SpecError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}, "
                        f"got {value!r}")
    return value


def _tau(d: dict[str, Any], where: str) -> TauPriorSpec:
    family = _get(d, "family", where, str)
    if family not in TAU_FAMILIES:
        raise SpecError(f"{where}: tau prior family {family!r} is not one of {TAU_FAMILIES}")
    scale = _get(d, "scale", where, float)
    if not scale > 0:
        raise SpecError(f"{where}: tau prior scale must be > 0")
    return TauPriorSpec(family, scale, _get(d, "nu", where, float, 3.0))


def load_spec(path: Path | str) -> AnalysisSpec:
    """Parse and check one analysis spec; errors name the file and the offending key."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from exc
    w = str(path)
    a = _get(raw, "analysis", w, dict)
    base = _get(a, "evidence_base", f"{w} [analysis]", str)
    if base not in EVIDENCE_BASES:
        raise SpecError(f"{w} [analysis]: unknown evidence_base {base!r}")
    eff = _get(raw, "effects", w, dict, {})
    prefer = _get(eff, "prefer", f"{w} [effects]", str, "change")
    if prefer not in ("change", "final"):
        raise SpecError(f"{w} [effects]: prefer must be 'change' or 'final'")
    unlabelled = _get(eff, "unlabelled_spread", f"{w} [effects]", str, "sd")
    if unlabelled not in ("sd", "se", "exclude"):
        raise SpecError(f"{w} [effects]: unlabelled_spread must be 'sd', 'se' or 'exclude'")
    r = _get(eff, "prepost_correlation", f"{w} [effects]", float, 0.5)
    if not -1 < r < 1:
        raise SpecError(f"{w} [effects]: prepost_correlation must be in (-1, 1)")

    m = _get(raw, "moderator", w, dict)
    mw = f"{w} [moderator]"
    nutrient = EVIDENCE_BASES[base]["nutrient"]
    unit = _get(m, "unit", mw, str)
    if unit != MODERATOR_UNITS[nutrient]:
        raise SpecError(f"{mw}: unit must be {MODERATOR_UNITS[nutrient]} for {nutrient}")
    latent_raw = _get(m, "latent", mw, dict)
    latent = {}
    for cat in STATUS_CATEGORIES:
        lr = _get(latent_raw, cat, f"{mw}.latent", dict)
        latent[cat] = LatentLevel(_get(lr, "mean", f"{mw}.latent.{cat}", float),
                                  _get(lr, "sd", f"{mw}.latent.{cat}", float))
    cutoff_value = _get(m, "cutoff_value", mw, float)
    cutoff_unit = _get(m, "cutoff_unit", mw, str)
    try:
        cutoff = float(convert(cutoff_value, cutoff_unit, unit, nutrient))
    except UnitConversionError as exc:
        raise SpecError(f"{mw}: cutoff_unit: {exc}") from exc
    moderator = ModeratorSpec(
        nutrient=nutrient, unit=unit, cutoff=cutoff, cutoff_value=cutoff_value,
        cutoff_unit=cutoff_unit,
        cutoff_source=_get(m, "cutoff_source", mw, str),
        reference_deficient=_get(m, "reference_deficient", mw, float),
        reference_replete=_get(m, "reference_replete", mw, float), latent=latent)

    outcomes = []
    for i, o in enumerate(_get(raw, "outcomes", w, list)):
        ow = f"{w} [[outcomes]] #{i + 1}"
        oid = _get(o, "id", ow, str)
        if oid not in OUTCOMES:
            raise SpecError(f"{ow}: unknown outcome {oid!r}")
        measure = _get(o, "measure", ow, str)
        if measure not in ("MD", "SMD", "ROM"):
            raise SpecError(f"{ow}: measure must be MD, SMD or ROM")
        beneficial = _get(o, "beneficial", ow, str)
        if beneficial not in ("increase", "decrease"):
            raise SpecError(f"{ow}: beneficial must be 'increase' or 'decrease'")
        outcomes.append(OutcomeSpec(
            id=oid, measure=measure, unit=_get(o, "unit", ow, str, OUTCOMES[oid]["unit"]),
            mid=_get(o, "mid", ow, float), mid_source=_get(o, "mid_source", ow, str),
            beneficial=beneficial, mu_prior_sd=_get(o, "mu_prior_sd", ow, float),
            tau_prior=_tau(_get(o, "tau_prior", ow, dict), f"{ow}.tau_prior"),
            slope_prior_sd=_get(o, "slope_prior_sd", ow, float),
            primary=_get(o, "primary", ow, bool, True)))
    if not outcomes:
        raise SpecError(f"{w}: at least one [[outcomes]] entry is needed")

    models = tuple(_get(raw, "models", w, list, list(MODEL_KINDS)))
    for k in models:
        if k not in MODEL_KINDS:
            raise SpecError(f"{w}: unknown model {k!r}; choose from {MODEL_KINDS}")
    s = _get(raw, "sampler", w, dict, {})
    sampler = SamplerSpec(draws=_get(s, "draws", f"{w} [sampler]", int, 1000),
                          tune=_get(s, "tune", f"{w} [sampler]", int, 1000),
                          chains=_get(s, "chains", f"{w} [sampler]", int, 4),
                          target_accept=_get(s, "target_accept", f"{w} [sampler]", float, 0.95))
    sens = _get(raw, "sensitivity", w, dict, {})
    sw = f"{w} [sensitivity]"
    sensitivity = SensitivitySpec(
        tau_priors=tuple(_tau(t, f"{sw}.tau_priors") for t in _get(sens, "tau_priors", sw, list,
                                                                     [])),
        leave_one_out=_get(sens, "leave_one_out", sw, bool, True),
        prepost_correlations=tuple(float(x) for x in _get(sens, "prepost_correlations", sw, list,
                                                          [0.2, 0.8])),
        unlabelled_spread=tuple(_get(sens, "unlabelled_spread", sw, list, ["se", "exclude"])))
    claims = []
    for i, c in enumerate(_get(raw, "claims", w, list, [])):
        cw = f"{w} [[claims]] #{i + 1}"
        claims.append(ClaimSpec(text=_get(c, "text", cw, str), outcome=_get(c, "outcome", cw, str),
                                quantity=_get(c, "quantity", cw, str),
                                model=_get(c, "model", cw, str),
                                threshold=_get(c, "threshold", cw, float, 0.0),
                                direction=_get(c, "direction", cw, str, "increase")))
    d = _get(raw, "design", w, dict, {})
    spec = AnalysisSpec(
        evidence_base=base, title=_get(a, "title", f"{w} [analysis]", str),
        question=_get(a, "question", f"{w} [analysis]", str),
        seed=_get(a, "seed", f"{w} [analysis]", int), prefer=prefer, prepost_correlation=r,
        unlabelled_spread=unlabelled,
        outcomes=tuple(outcomes), moderator=moderator, models=models, sampler=sampler,
        sensitivity=sensitivity, claims=tuple(claims),
        bias_prior_sd=_get(d, "bias_prior_sd", f"{w} [design]", float, math.nan),
        design_extra_sd=_get(d, "extra_sd", f"{w} [design]", float, math.nan),
        source_text=text)
    for c in spec.claims:
        if c.outcome not in {o.id for o in spec.outcomes}:
            raise SpecError(f"{w} [[claims]]: outcome {c.outcome!r} is not analysed")
    return spec


def load_specs(folder: Path | str = "analyses") -> list[AnalysisSpec]:
    """Every spec in ``folder``, sorted by file name."""
    return [load_spec(p) for p in sorted(Path(folder).glob("*.toml"))]
