"""Model kinds, prior choices and the array inputs of the Bayesian models.

Kept apart from the PyMC model builders (:mod:`nutrimeta.models.bayes`) so that the paths
that need no PyMC (the quadrature posterior, reports) can use them without importing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

import numpy as np

from nutrimeta.models.model_data import ModelData
from nutrimeta.schema import DESIGNS, RANDOMISED_DESIGNS, STATUS_CATEGORIES

ModelKind = Literal[
    "random_effects",
    "random_effects_marginal",
    "meta_regression_continuous",
    "meta_regression_category",
    "all_evidence",
    "multilevel",
    "cross_nutrient",
]
TauFamily = Literal["half_normal", "half_cauchy", "half_student_t", "exponential"]
Parameterisation = Literal["noncentred", "contrasts", "marginal"]

MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)
TAU_FAMILIES: tuple[str, ...] = get_args(TauFamily)
PARAMETERISATIONS: tuple[str, ...] = get_args(Parameterisation)
NONRANDOMISED_DESIGNS: tuple[str, ...] = tuple(d for d in DESIGNS if d not in RANDOMISED_DESIGNS)

#: Kinds with partially pooled group values, each with its default parameterisation and a
#: declared alternative (the same model sampled differently, for a retry): see
#: :func:`_pooled_groups` and :func:`_marginal_groups`.
DEFAULT_PARAMETERISATION: dict[str, Parameterisation] = {
    "cross_nutrient": "contrasts",
    "meta_regression_category": "marginal",
    "multilevel": "marginal",
}
ALTERNATIVE_PARAMETERISATION: dict[str, Parameterisation] = {
    "cross_nutrient": "noncentred",
    "meta_regression_category": "noncentred",
    "multilevel": "noncentred",
}

_DEFAULT_LATENT: dict[str, tuple[float, float]] = {
    "deficient": (-1.0, 0.5),
    "marginal": (0.5, 0.5),
    "replete": (2.0, 1.0),
    "unknown": (0.5, 2.0),
}


@dataclass(frozen=True)
class Priors:
    """Prior choices, on the scale of the effect (and of the moderator for slopes).

    Attributes
    ----------
    mu_mean, mu_sd
        ``mu ~ Normal(mu_mean, mu_sd)``: pooled effect (at the cut-off in meta-regressions).
    tau_family, tau_scale, tau_nu
        Between-study SD ``tau = tau_scale * t`` with ``t`` ~ HalfNormal(1), HalfCauchy(1),
        HalfStudentT(tau_nu, 1) or Exponential(1) (so ``tau_scale`` is the scale, or the mean
        for the exponential).
    slope_sd
        ``slope ~ Normal(0, slope_sd)``, effect change per unit of the moderator.
    category_sd
        Scale of the HalfNormal prior on the SD of category effects around ``mu``.
    design_bias_sd, design_extra_scale
        Non-randomised designs: bias ``~ Normal(0, design_bias_sd)`` and extra SD
        ``~ HalfNormal(design_extra_scale)`` added in quadrature to the standard error.
    tau_contrast_scale
        HalfNormal scale of the within-study (between-contrast) SD, multilevel model.
    slope_between_sd
        HalfNormal scale of the SD of nutrient-specific slopes, cross-nutrient model.
    latent_baseline
        Per category ``(mean, sd)`` of the baseline level minus the cut-off (moderator scale),
        the measurement model for studies without a numeric level.
    x_deficient, x_replete
        Reference moderator values of a typical deficient and a typical replete population,
        at which ``effect_deficient`` and ``effect_replete`` are reported.
    """

    mu_mean: float = 0.0
    mu_sd: float = 1.0
    tau_family: TauFamily = "half_normal"
    tau_scale: float = 0.5
    tau_nu: float = 3.0
    slope_sd: float = 1.0
    category_sd: float = 0.5
    design_bias_sd: float = 0.5
    design_extra_scale: float = 0.5
    tau_contrast_scale: float = 0.5
    slope_between_sd: float = 0.5
    latent_baseline: dict[str, tuple[float, float]] = field(
        default_factory=lambda: dict(_DEFAULT_LATENT)
    )
    x_deficient: float = -1.0
    x_replete: float = 1.0

    def __post_init__(self) -> None:
        if self.tau_family not in TAU_FAMILIES:
            raise ValueError(f"tau_family must be one of {TAU_FAMILIES}, got {self.tau_family!r}")
        missing = set(STATUS_CATEGORIES) - set(self.latent_baseline)
        if missing:
            raise ValueError(f"latent_baseline lacks categories {sorted(missing)}")

    def to_dict(self) -> dict[str, object]:
        """Plain-dict form (JSON-serialisable) for provenance."""
        d = asdict(self)
        d["latent_baseline"] = {k: list(v) for k, v in self.latent_baseline.items()}
        return d


# ----------------------------------------------------------------------------- inputs

_BASE_KEYS = ("y", "se", "weight", "mu_mean", "mu_sd", "tau_scale")
_MODERATOR_KEYS = ("x_obs", "x_known", "category_idx", "latent_mean", "latent_sd", "slope_sd",
                   "x_ref")
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "random_effects": _BASE_KEYS,
    "random_effects_marginal": _BASE_KEYS,
    "meta_regression_continuous": _BASE_KEYS + _MODERATOR_KEYS,
    "meta_regression_category": (*_BASE_KEYS, "category_idx", "category_sd"),
    "all_evidence": (*_BASE_KEYS, "design_idx", "bias_sd", "extra_scale"),
    "multilevel": (*_BASE_KEYS, "study_idx", "tau_contrast_scale"),
    "cross_nutrient": (*_BASE_KEYS, *_MODERATOR_KEYS, "nutrient_idx", "slope_between_sd"),
}


def model_inputs(
    data: ModelData, priors: Priors, kind: ModelKind, *, moderator: bool = False
) -> dict[str, np.ndarray]:
    """Values of the ``pm.Data`` containers of a model, by name.

    The same dictionary initialises :func:`build_model` and updates a compiled model for a
    refit, so a refit on swapped data is exactly a fresh build on that data.
    """
    if kind not in _KIND_KEYS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    known = np.isfinite(data.x)
    values: dict[str, np.ndarray] = {
        "y": data.yi.astype(float),
        "se": data.sei.astype(float),
        "weight": data.weights.astype(float),
        "mu_mean": np.asarray(priors.mu_mean, dtype=float),
        "mu_sd": np.asarray(priors.mu_sd, dtype=float),
        "tau_scale": np.asarray(priors.tau_scale, dtype=float),
        "x_obs": np.where(known, data.x, 0.0),
        "x_known": known.astype(float),
        "category_idx": data.category_idx.astype(np.int64),
        "latent_mean": np.array([priors.latent_baseline[c][0] for c in STATUS_CATEGORIES]),
        "latent_sd": np.array([priors.latent_baseline[c][1] for c in STATUS_CATEGORIES]),
        "slope_sd": np.asarray(priors.slope_sd, dtype=float),
        "x_ref": np.array([priors.x_deficient, priors.x_replete], dtype=float),
        "category_sd": np.asarray(priors.category_sd, dtype=float),
        "design_idx": data.design_idx.astype(np.int64),
        "bias_sd": np.asarray(priors.design_bias_sd, dtype=float),
        "extra_scale": np.asarray(priors.design_extra_scale, dtype=float),
        "study_idx": data.study_idx.astype(np.int64),
        "tau_contrast_scale": np.asarray(priors.tau_contrast_scale, dtype=float),
        "nutrient_idx": data.nutrient_idx.astype(np.int64),
        "slope_between_sd": np.asarray(priors.slope_between_sd, dtype=float),
    }
    keys = _KIND_KEYS[kind]
    if kind == "all_evidence" and moderator:
        keys = keys + _MODERATOR_KEYS
    return {k: values[k] for k in keys}


#: Inputs with one value per row, and with one value per status category
ROW_INPUTS = frozenset({"y", "se", "weight", "x_obs", "x_known", "category_idx", "design_idx",
                        "study_idx", "nutrient_idx"})
CATEGORY_INPUTS = frozenset({"latent_mean", "latent_sd"})


def data_dims(values: dict[str, np.ndarray], row: str = "study") -> dict[str, tuple[str, ...]]:
    """Dimensions of each model input (:func:`model_inputs`); ``()`` for the others."""
    return {k: (row,) if k in ROW_INPUTS else ("category",) if k in CATEGORY_INPUTS else ()
            for k in values}


def model_coords(data: ModelData, kind: ModelKind) -> dict[str, list[str]]:
    """Coordinates of a model's dimensions for ``data``."""
    row_dim = "contrast" if kind == "multilevel" else "study"
    coords: dict[str, list[str]] = {
        row_dim: list(data.labels),
        "category": list(STATUS_CATEGORIES),
        "design": list(DESIGNS),
        "nonrandomised_design": list(NONRANDOMISED_DESIGNS),
        "nutrient": list(data.nutrient_labels),
    }
    if kind == "multilevel":
        coords["study"] = list(data.study_labels)
    return coords
