"""The effects stage: the tidy effect-size table of each evidence base under its spec.

``build/effects.csv`` is written here; the fit stage reads that file. The sensitivity analyses
recompute the table under other assumptions (pre/post correlation, reading of an unlabelled
"±") with :func:`effects_for_spec`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nutrimeta.effects import EffectSettings, compute_effects
from nutrimeta.io_utils import atomic_write_text
from nutrimeta.schema import RANDOMISED_DESIGNS
from nutrimeta.spec import AnalysisSpec, load_specs
from nutrimeta.validate import Evidence, load_evidence, require_valid

EFFECTS_FILE = "effects.csv"
UNLABELLED_SPREAD = "± (unlabelled)"
#: Subgroup labels of rows kept for the record but never pooled (see data/CURATION.md).
ALT_PREFIXES = ("alt-source:", "alt-split:")
ALT_REASON = ("alternative source or alternative subgroup split of the same participants: "
              "recorded for the record, not pooled")


def effect_settings(spec: AnalysisSpec, prepost_correlation: float | None = None
                    ) -> EffectSettings:
    """The effect-size settings an analysis spec declares."""
    return EffectSettings(
        measures={o.id: o.measure for o in spec.outcomes},
        target_units={o.id: o.unit for o in spec.outcomes},
        prefer="final" if spec.prefer == "final" else "change",
        prepost_correlation=spec.prepost_correlation if prepost_correlation is None
        else prepost_correlation,
    )


def unlabelled_spread_rows(results: pd.DataFrame) -> pd.Series:
    """Rows whose dispersion was printed as a bare "±" with no SD/SE label."""
    label = results["spread_as_printed"].fillna("").astype(str).str.strip()
    return label.str.startswith(UNLABELLED_SPREAD)


def apply_unlabelled_policy(results: pd.DataFrame, policy: str) -> pd.DataFrame:
    """Read an unlabelled "±" as an SD (``"sd"``), an SE (``"se"``), or not at all
    (``"exclude"``), as the analysis spec declares. The curated value always sits in ``sd``
    with ``spread_as_printed`` = "± (unlabelled)"; this never edits the curated file."""
    out = results.copy()
    rows = unlabelled_spread_rows(out) & out["sd"].notna()
    if policy == "se":
        out.loc[rows & out["se"].isna(), "se"] = out.loc[rows & out["se"].isna(), "sd"]
        out.loc[rows, "sd"] = float("nan")
    elif policy == "exclude":
        out.loc[rows, "sd"] = float("nan")
    elif policy != "sd":
        raise ValueError(f"unknown unlabelled-spread policy {policy!r}")
    return out


def effects_for_spec(ev: Evidence, spec: AnalysisSpec, r: float | None = None,
                     unlabelled: str | None = None) -> pd.DataFrame:
    """Effect sizes of one evidence base under its spec.

    ``r`` and ``unlabelled`` override the spec's pre/post correlation and its reading of
    unlabelled "±" spreads (used by the sensitivity analyses).
    """
    policy = unlabelled or spec.unlabelled_spread
    st = ev.studies[ev.studies["evidence_base"] == spec.evidence_base]
    res = ev.results[ev.results["study_id"].isin(st["study_id"])]
    cols = [c for c in st.columns if not c.startswith("_")]
    rcols = [c for c in res.columns if not c.startswith("_")]
    res = apply_unlabelled_policy(res[rcols], policy)
    eff = compute_effects(st[cols], res, effect_settings(spec, r))
    flagged = res.loc[unlabelled_spread_rows(res), ["study_id", "outcome", "subgroup"]]
    keys = set(zip(flagged["study_id"], flagged["outcome"], flagged["subgroup"].fillna(""),
                   strict=True))
    hit = [(a, b, c if isinstance(c, str) else "") in keys for a, b, c in
           zip(eff["study_id"], eff["outcome"], eff["subgroup"].fillna(""), strict=True)]
    hit_series = pd.Series(hit, index=eff.index, dtype=bool) & eff["poolable"].astype(bool)
    note = {"sd": "a dispersion printed as an unlabelled '±' was read as an SD",
            "se": "a dispersion printed as an unlabelled '±' was read as an SE",
            "exclude": ""}[policy]
    if note:
        eff.loc[hit_series, "derivation"] = eff.loc[hit_series, "derivation"] + "; " + note \
            + " (analysis spec: effects.unlabelled_spread)"
    alt = eff["subgroup"].fillna("").astype(str).str.startswith(ALT_PREFIXES)
    eff.loc[alt & eff["poolable"], "reason"] = ALT_REASON
    eff.loc[alt, "poolable"] = False
    return eff

def load_valid(data_dir: Path) -> Evidence:
    """Load the evidence and refuse to go on if it has errors."""
    return require_valid(load_evidence(data_dir))


def run_effects(data_dir: Path, analyses_dir: Path, build_dir: Path,
                ev: Evidence | None = None) -> Path:
    """Write ``build/effects.csv`` for every evidence base with a spec (``ev``: the evidence
    already loaded and validated, else it is loaded here)."""
    ev = load_valid(data_dir) if ev is None else require_valid(ev)
    frames = [effects_for_spec(ev, s) for s in load_specs(analyses_dir)]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    path = build_dir / EFFECTS_FILE
    atomic_write_text(path, table.to_csv(index=False, lineterminator="\n"))
    return path


def read_effects(build_dir: Path, evidence_base: str | None = None) -> pd.DataFrame:
    """The effect-size table the effects stage wrote (optionally one evidence base's rows)."""
    path = Path(build_dir) / EFFECTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `nutrimeta effects` first")
    table = pd.read_csv(path, keep_default_na=True)
    if evidence_base is not None:
        table = table[table["evidence_base"] == evidence_base].reset_index(drop=True)
    return table


def pooled_rows(effects: pd.DataFrame, outcome: str, *, randomised_only: bool = True
                ) -> pd.DataFrame:
    """Poolable rows of one outcome (randomised designs only unless asked otherwise)."""
    keep = (effects["outcome"] == outcome) & effects["poolable"].astype(bool)
    if randomised_only:
        keep &= effects["design"].isin(RANDOMISED_DESIGNS)
    return effects[keep]

