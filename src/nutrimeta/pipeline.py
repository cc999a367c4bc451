"""Orchestration: validate → effect sizes → fits → results bundles → reports.

Each evidence base is refitted only when its inputs change: the cache key is the hash of its
curated files, its analysis spec and the package version, recorded in the bundle's provenance.
Bundles are written atomically and the previous one is kept as ``<base>.previous.json`` so the
"what changed" section can compare them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from nutrimeta import __version__
from nutrimeta.datapackage import read_version
from nutrimeta.effects import EffectSettings, compute_effects
from nutrimeta.io_utils import atomic_write_json, atomic_write_text, sha256_text
from nutrimeta.spec import AnalysisSpec, load_specs
from nutrimeta.validate import Evidence, data_hash, load_evidence, require_valid
from nutrimeta.versions import lock_hash, lock_mismatches, package_versions

Echo = Callable[[str], None]
UNLABELLED_SPREAD = "± (unlabelled)"
#: Subgroup labels of rows kept for the record but never pooled (see data/CURATION.md).
ALT_PREFIXES = ("alt-source:", "alt-split:")
ALT_REASON = ("alternative source or alternative subgroup split of the same participants: "
              "recorded for the record, not pooled")


def _echo_err(msg: str) -> None:
    print(msg, file=sys.stderr)


def effect_settings(spec: AnalysisSpec, prepost_correlation: float | None = None
                    ) -> EffectSettings:
    """The effect-size settings an analysis spec declares."""
    return EffectSettings(
        measures={o.id: o.measure for o in spec.outcomes},
        target_units={o.id: o.unit for o in spec.outcomes},
        prefer=spec.prefer,
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


def run_effects(data_dir: Path, analyses_dir: Path, build_dir: Path) -> Path:
    """Write ``build/effects.csv`` for every evidence base with a spec."""
    ev = load_valid(data_dir)
    frames = [effects_for_spec(ev, s) for s in load_specs(analyses_dir)]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    path = build_dir / "effects.csv"
    atomic_write_text(path, table.to_csv(index=False, lineterminator="\n"))
    return path


def code_hash() -> str:
    """SHA-256 of the package's fitting code (every module but the report stage), so that a
    change to the code refits even before the version number moves."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "report":
            continue
        h.update(str(rel).encode() + b"\n" + path.read_bytes())
    return h.hexdigest()


def cache_key(data_dir: Path, spec: AnalysisSpec) -> str:
    """What a bundle depends on: its data, its spec, the code and the data version."""
    return sha256_text("\n".join([data_hash(data_dir, [spec.evidence_base]), spec.spec_hash,
                                  __version__, code_hash(), read_version(data_dir)]))


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is pd.NA:
        return None
    return obj


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [c for c in df.columns if not c.startswith("_")]
    return _clean(df[cols].astype(object).where(df[cols].notna(), None).to_dict("records"))


def fit_evidence_base(ev: Evidence, spec: AnalysisSpec, data_dir: Path, build_dir: Path,
                      echo: Echo) -> dict[str, Any]:
    """Fit every outcome of one evidence base and assemble its results bundle."""
    from nutrimeta import synthesis

    effects = effects_for_spec(ev, spec)
    provenance = {
        "package_version": __version__, "data_version": read_version(data_dir),
        "data_hash": data_hash(data_dir, [spec.evidence_base]),
        "data_hash_all": data_hash(data_dir), "spec_hash": spec.spec_hash,
        "cache_key": cache_key(data_dir, spec), "versions": package_versions(),
        "lock_hash": lock_hash(), "lock_mismatches": lock_mismatches(),
        "seed": spec.seed, "sampler": {"backend": "nutpie", **spec.to_dict()["sampler"]},
        "created": dt.date.today().isoformat(),
    }
    fits_dir = build_dir / "fits" / spec.evidence_base
    outcomes: dict[str, Any] = {}
    for o in spec.outcomes:
        outcomes[o.id] = synthesis.outcome_entry(
            spec, o, effects, lambda r=None, unlabelled=None: effects_for_spec(
                ev, spec, r, unlabelled), fits_dir,
            {k: provenance[k] for k in ("package_version", "data_version", "data_hash",
                                         "spec_hash")}, echo)
    not_poolable = effects[~effects["poolable"]]
    studies = ev.studies[ev.studies["evidence_base"] == spec.evidence_base]
    syntheses = ev.syntheses[ev.syntheses["_base"] == spec.evidence_base]
    bundle = {
        "evidence_base": spec.evidence_base, "title": spec.title, "question": spec.question,
        "provenance": provenance, "spec": spec.to_dict(), "outcomes": outcomes,
        "not_poolable": _records(not_poolable[[
            "study_id", "outcome", "subgroup", "design", "year", "first_author",
            "inclusion_status", "reason", "direction", "p_value"]]),
        "claims": synthesis.claim_entries(spec, outcomes),
        "published_syntheses": _records(syntheses),
        "flow": {
            "recorded": len(studies),
            "by_inclusion_status": {k: int(v) for k, v in
                                    studies["inclusion_status"].value_counts().items()},
            "excluded_reasons": _records(studies.loc[studies["inclusion_status"] != "included",
                                                     ["study_id", "inclusion_status",
                                                      "inclusion_reason"]]),
            "poolable_per_outcome": {o.id: outcomes[o.id]["k"] for o in spec.outcomes},
            "poolable_all_designs_per_outcome": {o.id: outcomes[o.id]["k_all_designs"]
                                                 for o in spec.outcomes},
        },
    }
    return _clean(bundle)


def run_fits(data_dir: Path, analyses_dir: Path, build_dir: Path, *, force: bool = False,
             echo: Echo = print) -> Iterator[str]:
    """Fit every spec whose inputs changed; yield one line per evidence base."""
    ev = load_valid(data_dir)
    specs = load_specs(analyses_dir)
    run_effects(data_dir, analyses_dir, build_dir)
    for spec in specs:
        path = build_dir / "results" / f"{spec.evidence_base}.json"
        key = cache_key(data_dir, spec)
        if path.exists() and not force:
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("provenance", {}).get("cache_key") == key:
                yield f"{spec.evidence_base}: unchanged (cache key {key[:12]}), not refitted"
                continue
        start = time.perf_counter()
        bundle = fit_evidence_base(ev, spec, data_dir, build_dir, echo)
        bundle["provenance"]["fit_seconds"] = round(time.perf_counter() - start, 1)
        if path.exists():
            atomic_write_text(path.with_suffix(".previous.json"), path.read_text("utf-8"))
        atomic_write_json(path, bundle)
        failed = [f"{o}/{m}" for o, oc in bundle["outcomes"].items()
                  for m, me in oc["models"].items() if me.get("status") == "failed"]
        yield (f"{spec.evidence_base}: fitted in {time.perf_counter() - start:.1f} s -> {path}"
               + (f"; FAILED DIAGNOSTICS: {', '.join(failed)}" if failed else ""))
    cross = cross_nutrient(build_dir, specs, ev, data_dir, echo)
    if cross is not None:
        yield cross


def cross_nutrient(build_dir: Path, specs: list[AnalysisSpec], ev: Evidence, data_dir: Path,
                   echo: Echo) -> str | None:
    """Partial pooling of the deficiency slope across nutrient–hormone pairs (if estimable)."""
    from nutrimeta.cross import fit_cross_nutrient

    path = build_dir / "results" / "cross_nutrient.json"
    bundle = fit_cross_nutrient(specs, ev, data_dir, build_dir, echo)
    atomic_write_json(path, _clean(bundle))
    return f"cross_nutrient: {bundle['status']} -> {path}"


def _recorded(bundle: dict[str, Any]) -> dict[str, str]:
    """study_id -> inclusion status of every trial report a bundle knows of."""
    out = {r["study_id"]: r.get("inclusion_status") or "" for r in bundle.get("not_poolable", [])}
    for oc in bundle.get("outcomes", {}).values():
        for r in oc.get("studies_all_designs", []):
            out.setdefault(r["study_id"], "included")
    return out


def record_changes(bundle: dict[str, Any], releases_dir: Path) -> str:
    """Trial reports added or removed since the latest saved release (Markdown lines)."""
    from nutrimeta.living import latest_release

    rel = latest_release(releases_dir, bundle.get("evidence_base", ""))
    if rel is None:
        return ""
    version, path = rel
    old = json.loads(path.read_text(encoding="utf-8"))
    old = old.get("bundle", old)
    before, after = _recorded(old), _recorded(bundle)
    n_old = old.get("flow", {}).get("recorded", len(before))
    n_new = bundle.get("flow", {}).get("recorded", len(after))
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    lines = [f"Trial reports recorded: {n_old} in release {version}, {n_new} now."]
    if added:
        lines.append("Added: " + ", ".join(f"{s} ({after[s]})" for s in added) + ".")
    if removed:
        lines.append("Removed: " + ", ".join(removed) + ".")
    return " ".join(lines) + "\n\n"


def living_sections(bundle: dict[str, Any], releases_dir: Path) -> list[tuple[str, str, str]]:
    """The report's living-evidence sections: what changed since the last release, and what
    one more trial would do (both read from saved files)."""
    from nutrimeta.living import changes_since_release

    changes = changes_since_release(bundle, releases_dir)
    changes = "\n".join(line for line in changes.splitlines()
                        if not line.startswith("## What changed"))
    changes = record_changes(bundle, releases_dir) + changes
    lines = ["Expected effect of one more randomised trial (two equal arms) on the pooled "
             "estimate of the exact random-effects model, by simulation from its posterior "
             "predictive. P(supported) is the probability that, after that trial, the posterior "
             "probability of a benefit reaches 0.95.", ""]
    for _oid, oc in bundle["outcomes"].items():
        nt = oc.get("next_trial") or {}
        if nt.get("status") != "ok":
            continue
        lines += [f"**{oc['label']}** (per-participant SD {nt['sd_per_participant']:.3g} "
                  f"{oc.get('effect_unit', '')}: {nt['sd_source']})", "",
                  "| n per arm | P(benefit) now | expected P(benefit) after | P(supported) after "
                  "| P(beyond MID) now | expected P(beyond MID) after |",
                  "|---|---|---|---|---|---|"]
        for r in nt["rows"]:
            lines.append(f"| {r['n_per_arm']} | {r['p_benefit_now']:.2f} | "
                         f"{r['expected_p_benefit']:.2f} | {r['p_supported']:.2f} | "
                         f"{r['p_mid_now']:.2f} | {r['expected_p_mid']:.2f} |")
        lines.append("")
    return [("changes", "What changed since the last release", changes.strip() + "\n"),
            ("next-trial", "How much more evidence would settle it", "\n".join(lines))]


def run_reports(data_dir: Path, build_dir: Path, reports_dir: Path,
                releases_dir: Path = Path("releases")) -> list[Path]:
    """Render every bundle into reports/ (reads saved files only)."""
    from nutrimeta.report import render_evidence_base, render_index

    ev = load_evidence(data_dir)
    effects = pd.read_csv(build_dir / "effects.csv")
    written = []
    bundles = sorted(p for p in (build_dir / "results").glob("*.json")
                     if not p.name.endswith(".previous.json") and p.stem != "cross_nutrient")
    for path in bundles:
        base = path.stem
        st = ev.studies[ev.studies["evidence_base"] == base]
        sy = ev.syntheses[ev.syntheses["_base"] == base]
        bundle = json.loads(path.read_text(encoding="utf-8"))
        written.append(render_evidence_base(
            path, effects[effects["evidence_base"] == base],
            st[[c for c in st.columns if not c.startswith("_")]],
            sy[[c for c in sy.columns if not c.startswith("_")]], reports_dir / base,
            extra_sections=living_sections(bundle, releases_dir)))
    written.append(render_index(bundles, reports_dir))
    return written


def run_all(data_dir: Path, analyses_dir: Path, build_dir: Path, reports_dir: Path, *,
            force: bool = False, echo: Echo = print) -> int:
    """The whole pipeline; returns a process exit status (1 on data errors)."""
    start = time.perf_counter()
    ev = load_evidence(data_dir)
    for p in ev.problems:
        (echo if p.severity == "warning" else _echo_err)(str(p))
    if ev.errors:
        _echo_err(f"{len(ev.errors)} data error(s): fix them, then run again (nothing was "
                  "fitted or written).")
        return 1
    echo(f"validated: {len(ev.studies)} studies, {len(ev.results)} result rows")
    for line in run_fits(data_dir, analyses_dir, build_dir, force=force, echo=echo):
        echo(line)
    for path in run_reports(data_dir, build_dir, reports_dir):
        echo(f"wrote {path}")
    failed = _failed_fits(build_dir)
    if failed:
        banner = "!" * 78
        _echo_err(f"{banner}\nCONVERGENCE PROBLEMS in {len(failed)} fit(s); they are marked "
                  f"failed in the reports and not used for claims:\n  " + "\n  ".join(failed)
                  + f"\n{banner}")
    echo(f"analysis finished in {time.perf_counter() - start:.1f} s")
    return 0


def _failed_fits(build_dir: Path) -> list[str]:
    out = []
    for path in sorted((build_dir / "results").glob("*.json")):
        if path.name.endswith(".previous.json"):
            continue
        b = json.loads(path.read_text(encoding="utf-8"))
        for o, oc in b.get("outcomes", {}).items():
            for m, me in oc.get("models", {}).items():
                if me.get("status") == "failed":
                    out.append(f"{path.stem}/{o}/{m}: {me.get('reason', '')}")
    return out
