"""The effect-size table in the array form every Bayesian model takes (:class:`ModelData`).

Kept apart from the model builders so that the data preparation (labels, codes for designs
and status categories, the cache key of the data) can be read and tested on its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import xarray as xr

from nutrimeta.schema import DESIGNS, EVIDENCE_BASES, STATUS_CATEGORIES


def _nutrient_of(base: str) -> str:
    return EVIDENCE_BASES.get(base, {}).get("nutrient", base)


@dataclass(frozen=True, eq=False)
class ModelData:
    """Effect sizes and moderators of one analysis, as arrays ready for a model.

    Attributes
    ----------
    yi, sei
        Effect estimates and their standard errors, one per row (study or contrast).
    labels
        Unique row labels (``study_id``, or ``study_id[subgroup]`` when a study has several
        contrasts).
    study_idx, study_labels
        Index of each row's study into the unique ``study_labels``.
    outcome_labels
        Outcome of each row.
    x
        Baseline level minus the cut-off, divided by the moderator scale; NaN if unknown.
    category_idx, design_idx
        Codes into :data:`~nutrimeta.schema.STATUS_CATEGORIES` and
        :data:`~nutrimeta.schema.DESIGNS`.
    nutrient_idx, nutrient_labels
        Index of each row's nutrient (from ``evidence_base``) into ``nutrient_labels``.
    weights
        0/1 (or fractional) weight of each row's likelihood term; 0 leaves a row out.
    cutoff
        Cut-off(s) the moderator is centred on, kept for provenance.
    """

    yi: np.ndarray
    sei: np.ndarray
    labels: tuple[str, ...]
    study_idx: np.ndarray
    study_labels: tuple[str, ...]
    outcome_labels: tuple[str, ...]
    x: np.ndarray
    category_idx: np.ndarray
    design_idx: np.ndarray
    nutrient_idx: np.ndarray
    nutrient_labels: tuple[str, ...]
    weights: np.ndarray
    cutoff: float | dict[str, float] = 0.0

    def __post_init__(self) -> None:
        n = len(self.yi)
        for name in ("sei", "study_idx", "x", "category_idx", "design_idx", "nutrient_idx",
                     "weights"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has length {len(getattr(self, name))}, expected {n}")
        if len(self.labels) != n or len(set(self.labels)) != n:
            raise ValueError("labels must be unique, one per row")
        if not (np.all(np.isfinite(self.yi)) and np.all(np.isfinite(self.sei))):
            raise ValueError("yi and sei must be finite")
        if np.any(self.sei <= 0):
            raise ValueError("sei must be positive")

    @property
    def n(self) -> int:
        """Number of rows (likelihood terms)."""
        return len(self.yi)

    @property
    def n_studies(self) -> int:
        """Number of unique studies."""
        return len(self.study_labels)

    @property
    def one_row_per_study(self) -> bool:
        """Whether every study contributes exactly one row."""
        return self.n == self.n_studies

    @classmethod
    def from_arrays(
        cls,
        yi: np.ndarray | list[float],
        sei: np.ndarray | list[float],
        *,
        labels: list[str] | None = None,
        study_ids: list[str] | None = None,
        x: np.ndarray | list[float] | None = None,
        categories: list[str] | None = None,
        designs: list[str] | None = None,
        nutrients: list[str] | None = None,
        outcomes: list[str] | None = None,
        cutoff: float | dict[str, float] = 0.0,
    ) -> ModelData:
        """Build from plain arrays (simulations, reference data sets); ``x`` is already centred."""
        yi = np.asarray(yi, dtype=float)
        n = len(yi)
        study_ids = list(study_ids) if study_ids is not None else (
            list(labels) if labels is not None else [f"study_{i + 1}" for i in range(n)]
        )
        if labels is None:
            labels = _row_labels(study_ids, [""] * n)
        study_labels = tuple(dict.fromkeys(study_ids))
        nutrients = list(nutrients) if nutrients is not None else ["all"] * n
        nutrient_labels = tuple(dict.fromkeys(nutrients))
        return cls(
            yi=yi,
            sei=np.asarray(sei, dtype=float),
            labels=tuple(labels),
            study_idx=np.array([study_labels.index(s) for s in study_ids], dtype=np.int64),
            study_labels=study_labels,
            outcome_labels=tuple(outcomes) if outcomes is not None else ("",) * n,
            x=np.full(n, np.nan) if x is None else np.asarray(x, dtype=float),
            category_idx=_codes(categories or ["unknown"] * n, STATUS_CATEGORIES, "unknown"),
            design_idx=_codes(designs or ["parallel_rct"] * n, DESIGNS, None),
            nutrient_idx=np.array([nutrient_labels.index(b) for b in nutrients], dtype=np.int64),
            nutrient_labels=nutrient_labels,
            weights=np.ones(n),
            cutoff=cutoff,
        )

    @classmethod
    def from_frame(
        cls,
        effects: pd.DataFrame,
        cutoff: float | Mapping[str, float],
        *,
        moderator_scale: float | Mapping[str, float] = 1.0,
    ) -> ModelData:
        """Build from rows of the effect-size table (``build/effects.csv``).

        Parameters
        ----------
        effects
            Poolable rows with columns ``yi``, ``sei``, ``study_id``, ``design``,
            ``baseline_status_value_std``, ``baseline_status_category``, ``evidence_base``
            (optional: ``subgroup``, ``outcome``).
        cutoff
            Deficiency cut-off in the moderator unit; a mapping ``evidence_base -> cut-off`` for
            the cross-nutrient model.
        moderator_scale
            Divisor of ``level - cut-off`` (per evidence base if a mapping), e.g. a between-study
            SD to put the moderator of several nutrients on a common scale.
        """
        df = effects.reset_index(drop=True)
        n = len(df)
        bases = [str(b) for b in df["evidence_base"]]
        cut = np.array([_per_base(cutoff, b) for b in bases], dtype=float)
        scale = np.array([_per_base(moderator_scale, b) for b in bases], dtype=float)
        level = pd.to_numeric(df["baseline_status_value_std"], errors="coerce").to_numpy(float)
        subgroups = (
            [("" if pd.isna(s) else str(s)) for s in df["subgroup"]]
            if "subgroup" in df else [""] * n
        )
        study_ids = [str(s) for s in df["study_id"]]
        cats = [("unknown" if pd.isna(c) or c == "" else str(c))
                for c in df["baseline_status_category"]]
        outcomes = [str(o) for o in df["outcome"]] if "outcome" in df else None
        return cls.from_arrays(
            df["yi"].to_numpy(float),
            df["sei"].to_numpy(float),
            labels=_row_labels(study_ids, subgroups),
            study_ids=study_ids,
            x=(level - cut) / scale,
            categories=cats,
            designs=[str(d) for d in df["design"]],
            nutrients=[_nutrient_of(b) for b in bases],
            outcomes=outcomes,
            cutoff=(dict(cutoff) if isinstance(cutoff, Mapping) else float(cutoff)),
        )

    def with_weights(self, weights: np.ndarray | list[float]) -> ModelData:
        """Copy with new likelihood weights (0 leaves a row out)."""
        return replace(self, weights=np.asarray(weights, dtype=float))

    def leave_out(self, label: str) -> ModelData:
        """Copy with every row of study (or row label) ``label`` given weight 0."""
        drop = np.array([lab == label or self.study_labels[s] == label
                         for lab, s in zip(self.labels, self.study_idx, strict=True)])
        if not drop.any():
            raise KeyError(label)
        return self.with_weights(np.where(drop, 0.0, self.weights))

    def padded(self, rows: int, studies: int | None = None) -> ModelData:
        """Copy with weight-0 rows appended up to ``rows`` (and studies up to ``studies``).

        A padded row has ``y = 0``, ``se = 1``, a known moderator 0 and likelihood weight 0,
        so it adds nothing to the likelihood; its trial effect is a draw from the prior and is
        dropped from the output. ``studies=None``: one row per study is kept (each padded row
        is its own study); otherwise the padded rows belong to study 0 (weight 0: no
        information) and empty studies are appended up to ``studies`` (the multilevel model,
        where a study without rows leaves the other levels unchanged). Padding to a fixed
        size lets one compiled model serve every data set up to that size.
        """
        n_pad = rows - self.n
        if n_pad < 0 or (studies is not None and studies < self.n_studies):
            raise ValueError(f"cannot pad {self.n} rows / {self.n_studies} studies to "
                             f"{rows} / {studies}")
        pad_labels = tuple(f"__pad_{i}" for i in range(n_pad))
        if studies is None:
            study_labels = self.study_labels + pad_labels
            pad_study = np.arange(self.n_studies, self.n_studies + n_pad)
        else:
            study_labels = self.study_labels + tuple(
                f"__pad_study_{i}" for i in range(studies - self.n_studies))
            pad_study = np.zeros(n_pad, dtype=np.int64)

        def cat(a: np.ndarray, fill: float) -> np.ndarray:
            return np.concatenate([a, np.full(n_pad, fill, dtype=a.dtype)])

        return replace(
            self, yi=cat(self.yi, 0.0), sei=cat(self.sei, 1.0), labels=self.labels + pad_labels,
            study_idx=np.concatenate([self.study_idx, pad_study]).astype(np.int64),
            study_labels=study_labels, outcome_labels=self.outcome_labels + ("",) * n_pad,
            x=cat(self.x, 0.0),
            category_idx=cat(self.category_idx, STATUS_CATEGORIES.index("unknown")),
            design_idx=cat(self.design_idx, 0), nutrient_idx=cat(self.nutrient_idx, 0),
            weights=cat(self.weights.astype(float), 0.0))

    def data_hash(self) -> str:
        """SHA-256 of every array and label, for provenance."""
        h = hashlib.sha256()
        for name in ("yi", "sei", "study_idx", "x", "category_idx", "design_idx",
                     "nutrient_idx", "weights"):
            h.update(np.ascontiguousarray(getattr(self, name), dtype=float).tobytes())
        h.update(json.dumps([self.labels, self.study_labels, self.outcome_labels,
                             self.nutrient_labels, self.cutoff]).encode())
        return h.hexdigest()


def _per_base(value: float | Mapping[str, float], base: str) -> float:
    return float(value[base]) if isinstance(value, Mapping) else float(value)


def _row_labels(study_ids: list[str], subgroups: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for s in study_ids:
        counts[s] = counts.get(s, 0) + 1
    labels = [s if counts[s] == 1 or not g else f"{s}[{g}]"
              for s, g in zip(study_ids, subgroups, strict=True)]
    seen: dict[str, int] = {}
    out = []
    for lab in labels:  # make any remaining duplicates unique
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}#{seen[lab]}")
    return out


def _codes(values: list[str], levels: tuple[str, ...], default: str | None) -> np.ndarray:
    codes = []
    for v in values:
        if v not in levels:
            if default is None:
                raise ValueError(f"unknown level {v!r}; expected one of {levels}")
            v = default
        codes.append(levels.index(v))
    return np.array(codes, dtype=np.int64)


#: Model inputs stored as observed data (the rest are constant data)
OBSERVED_INPUTS = ("y", "se")


def data_groups(
    values: Mapping[str, np.ndarray],
    dims: Mapping[str, tuple[str, ...]],
    coords: Mapping[str, list[str]],
) -> dict[str, xr.Dataset]:
    """The ``observed_data`` and ``constant_data`` groups of a fit from its model inputs."""

    def ds(names: list[str]) -> xr.Dataset:
        arrays = {}
        for k in names:
            v = np.asarray(values[k])
            kd = tuple(dims.get(k, ())) or tuple(f"{k}_dim_{i}" for i in range(v.ndim))
            c = {d: coords[d] for d in kd if d in coords and len(coords[d]) == v.shape[
                kd.index(d)]}
            arrays[k] = xr.DataArray(v, dims=kd, coords=c)
        return xr.Dataset(arrays)

    return {
        "observed_data": ds([k for k in OBSERVED_INPUTS if k in values]),
        "constant_data": ds([k for k in values if k not in OBSERVED_INPUTS]),
    }
