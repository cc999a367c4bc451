"""Orchestration: validate → effect sizes → fits → results bundles → reports.

Each stage reads the file the previous stage wrote: the effects stage writes
``build/effects.csv`` (:mod:`nutrimeta.effect_table`), the fit stage reads it and writes a typed
:class:`~nutrimeta.results.Bundle` per evidence base (``build/results/<base>.json``), the report
stage reads the bundles. Each evidence base is refitted only when its inputs change: the cache
key is the hash of its curated files, its analysis spec, the code and the data version,
recorded in the bundle's provenance. Bundles are written atomically and the previous one is
kept as ``<base>.previous.json``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from nutrimeta import __version__
from nutrimeta.datapackage import read_version
from nutrimeta.effect_table import load_valid, read_effects, run_effects
from nutrimeta.io_utils import atomic_write_text, sha256_text
from nutrimeta.results import (
    Bundle,
    CrossNutrientResult,
    clean_json,
    load_bundle,
    to_json,
)
from nutrimeta.spec import AnalysisSpec, load_specs
from nutrimeta.validate import Evidence, data_hash, load_evidence
from nutrimeta.versions import lock_hash, lock_mismatches, package_versions

Echo = Callable[[str], None]
def _echo_err(msg: str) -> None:
    print(msg, file=sys.stderr)


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


def fit_evidence_base(ev: Evidence, spec: AnalysisSpec, data_dir: Path, build_dir: Path,
                      echo: Echo) -> Bundle:
    """Fit one evidence base from ``build/effects.csv``: the provenance is recorded here, the
    bundle is built by :func:`nutrimeta.synthesis.evidence_base_bundle`."""
    from nutrimeta import synthesis

    provenance = {
        "package_version": __version__, "data_version": read_version(data_dir),
        "data_hash": data_hash(data_dir, [spec.evidence_base]),
        "data_hash_all": data_hash(data_dir), "spec_hash": spec.spec_hash,
        "cache_key": cache_key(data_dir, spec), "versions": package_versions(),
        "lock_hash": lock_hash(), "lock_mismatches": lock_mismatches(),
        "seed": spec.seed, "sampler": {"backend": "nutpie", **spec.to_dict()["sampler"]},
        "created": dt.date.today().isoformat(),
    }
    return synthesis.evidence_base_bundle(
        ev, spec, read_effects(build_dir, spec.evidence_base), provenance,
        build_dir / "fits" / spec.evidence_base, echo)


def select_specs(specs: list[AnalysisSpec], bases: Sequence[str] | None) -> list[AnalysisSpec]:
    """The specs of ``bases`` (all when None); an unknown name is a one-line error."""
    if not bases:
        return specs
    known = {s.evidence_base for s in specs}
    unknown = sorted(set(bases) - known)
    if unknown:
        raise ValueError(f"unknown evidence base(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    return [s for s in specs if s.evidence_base in set(bases)]


def planned_fits(specs: list[AnalysisSpec]) -> int:
    """Number of model fits a full refit of ``specs`` runs (for a progress bar)."""
    return sum(len(s.outcomes) * len(s.models) for s in specs)


def run_fits(data_dir: Path, analyses_dir: Path, build_dir: Path, *, force: bool = False,
             echo: Echo = print, bases: Sequence[str] | None = None) -> Iterator[str]:
    """Fit every spec whose inputs changed; yield one line per evidence base.

    ``bases`` restricts the fits to those evidence bases; the cross-nutrient synthesis, which
    needs every base, is then left as it is."""
    ev = load_valid(data_dir)
    all_specs = load_specs(analyses_dir)
    specs = select_specs(all_specs, bases)
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
        bundle.provenance.fit_seconds = round(time.perf_counter() - start, 1)
        if path.exists():
            atomic_write_text(path.with_suffix(".previous.json"), path.read_text("utf-8"))
        atomic_write_text(path, to_json(bundle))
        failed = [f"{o}/{m}" for o, oc in bundle.outcomes.items()
                  for m, me in oc.models.items() if me.status == "failed"]
        yield (f"{spec.evidence_base}: fitted in {time.perf_counter() - start:.1f} s -> {path}"
               + (f"; FAILED DIAGNOSTICS: {', '.join(failed)}" if failed else ""))
    if bases:
        yield "cross_nutrient: not refitted (an evidence base was selected with --base)"
        return
    cross = cross_nutrient(build_dir, specs, ev, data_dir, echo)
    if cross is not None:
        yield cross


def cross_nutrient(build_dir: Path, specs: list[AnalysisSpec], ev: Evidence, data_dir: Path,
                   echo: Echo) -> str | None:
    """Partial pooling of the deficiency slope across nutrient–hormone pairs (if estimable)."""
    from nutrimeta.cross import fit_cross_nutrient

    path = build_dir / "results" / "cross_nutrient.json"
    result = CrossNutrientResult.model_validate(clean_json(
        fit_cross_nutrient(specs, ev, data_dir, build_dir, echo)))
    atomic_write_text(path, to_json(result))
    return f"cross_nutrient: {result.status} -> {path}"


def bundle_paths(build_dir: Path) -> list[Path]:
    """The evidence-base bundles in ``build/results`` (not the previous ones, not the
    cross-nutrient result)."""
    return sorted(p for p in (build_dir / "results").glob("*.json")
                  if not p.name.endswith(".previous.json") and p.stem != "cross_nutrient")


def run_reports(data_dir: Path, build_dir: Path, reports_dir: Path,
                releases_dir: Path = Path("releases"),
                bases: Sequence[str] | None = None) -> list[Path]:
    """Render every bundle (or those of ``bases``) into reports/, then the index (reads
    saved files only)."""
    from nutrimeta.report import render_evidence_bases, render_index
    from nutrimeta.report.changes import living_sections

    ev = load_evidence(data_dir)
    effects = read_effects(build_dir)
    jobs = []
    bundles = bundle_paths(build_dir)
    if bases:
        unknown = sorted(set(bases) - {p.stem for p in bundles})
        if unknown:
            raise ValueError(f"no results for evidence base(s) {', '.join(unknown)} in "
                             f"{build_dir / 'results'}: run `nutrimeta fit` first")
    for path in bundles:
        base = path.stem
        if bases and base not in bases:
            continue
        st = ev.studies[ev.studies["evidence_base"] == base]
        sy = ev.syntheses[ev.syntheses["_base"] == base]
        bundle = load_bundle(path)
        jobs.append(dict(
            bundle_path=path, effects=effects[effects["evidence_base"] == base],
            studies=st[[c for c in st.columns if not c.startswith("_")]],
            syntheses=sy[[c for c in sy.columns if not c.startswith("_")]],
            out_dir=reports_dir / base,
            extra_sections=living_sections(bundle, releases_dir),
            search_log=data_dir / base / "SEARCH_LOG.md",
            check_findings=build_dir / "check" / "findings.json",
            references_bib=data_dir / base / "references.bib"))
    written = render_evidence_bases(jobs)
    written.append(render_index(bundles, reports_dir))
    return written


def run_all(data_dir: Path, analyses_dir: Path, build_dir: Path, reports_dir: Path, *,
            force: bool = False, echo: Echo = print, bases: Sequence[str] | None = None,
            fit_echo: Echo | None = None) -> int:
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
    for line in run_fits(data_dir, analyses_dir, build_dir, force=force,
                         echo=fit_echo or echo, bases=bases):
        echo(line)
    for path in run_reports(data_dir, build_dir, reports_dir, bases=bases):
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
    for path in bundle_paths(build_dir):
        b = load_bundle(path)
        for o, oc in b.outcomes.items():
            for m, me in oc.models.items():
                if me.status == "failed":
                    out.append(f"{path.stem}/{o}/{m}: {me.reason or ''}")
    return out
