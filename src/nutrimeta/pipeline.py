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
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

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

    return synthesis.evidence_base_bundle(
        ev, spec, read_effects(build_dir, spec.evidence_base), fit_provenance(spec, data_dir),
        build_dir / "fits" / spec.evidence_base, echo)


def fit_provenance(spec: AnalysisSpec, data_dir: Path) -> dict[str, Any]:
    """What a fit of ``spec`` is computed from and with (the bundle's provenance)."""
    return {
        "package_version": __version__, "data_version": read_version(data_dir),
        "data_hash": data_hash(data_dir, [spec.evidence_base]),
        "data_hash_all": data_hash(data_dir), "spec_hash": spec.spec_hash,
        "cache_key": cache_key(data_dir, spec), "versions": package_versions(),
        "lock_hash": lock_hash(), "lock_mismatches": lock_mismatches(),
        "seed": spec.seed, "sampler": {"backend": "nutpie", **spec.to_dict()["sampler"]},
        "created": dt.date.today().isoformat(),
    }


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
             echo: Echo = print, bases: Sequence[str] | None = None,
             outcomes: Sequence[str] | None = None, ev: Evidence | None = None,
             pool: ProcessPoolExecutor | None = None,
             before_cross: Callable[[bool], None] | None = None) -> Iterator[str]:
    """Fit every spec whose inputs changed; yield one line per evidence base.

    ``bases`` restricts the fits to those evidence bases; ``outcomes`` to those outcomes,
    merged into each base's saved bundle (:mod:`nutrimeta.outcome_refit`; bases without a
    named outcome are left alone). The cross-nutrient synthesis, which needs every base, is
    then left as it is. An unknown base or outcome, or a bundle the outcomes cannot be merged
    into, is a ValueError raised before anything is fitted. ``ev``: the evidence already
    loaded (else it is loaded and validated here). The cross-nutrient fits need no bundle:
    with two or more bases they run in two worker processes (``pool``, else started here
    when a second core is available) beside the evidence-base fits. ``before_cross`` is
    called after the evidence-base fits and before waiting for the cross-nutrient ones
    (with whether they are done), e.g. to render the evidence-base reports meanwhile."""
    from nutrimeta import outcome_refit

    ev = load_valid(data_dir) if ev is None else ev
    all_specs = load_specs(analyses_dir)
    specs = select_specs(all_specs, bases)
    if outcomes:
        outcome_refit.check_outcomes(specs, outcomes)
        specs = [s for s in specs if outcome_refit.wanted_outcomes(s, outcomes)]
        refusals = [r for s in specs if (r := outcome_refit.merge_refusal(
            build_dir / "results" / f"{s.evidence_base}.json", s))]
        if refusals:
            raise ValueError("; ".join(refusals) + " (nothing was fitted)")
    run_effects(data_dir, analyses_dir, build_dir, ev=ev)
    if outcomes:
        for spec in specs:
            path = build_dir / "results" / f"{spec.evidence_base}.json"
            merged, line = outcome_refit.refit_outcomes(
                ev, spec, outcome_refit.wanted_outcomes(spec, outcomes),
                cache_key(data_dir, spec), fit_provenance(spec, data_dir),
                read_effects(build_dir, spec.evidence_base), path,
                build_dir / "fits" / spec.evidence_base, echo, force)
            if merged is not None:
                atomic_write_text(path.with_suffix(".previous.json"), path.read_text("utf-8"))
                atomic_write_text(path, to_json(merged))
            yield line
        yield ("cross_nutrient: not refitted (an evidence base or outcome was selected with "
               "--base or --outcome)")
        return
    own_pool = None
    cross_jobs: list[Future[tuple[Any, list[str]]]] = []
    if not bases and len(specs) >= 2:
        if pool is None:
            pool = own_pool = worker_pool()
        if pool is not None:  # the multivariate model in one worker, the slope model in another
            cross_jobs = [pool.submit(_cross_nutrient_worker, part, specs, ev, data_dir,
                                      build_dir) for part in ("multivariate", "pooled")]
    try:
        for spec in specs:
            yield _fit_one(ev, spec, data_dir, build_dir, force, echo)
        if bases:
            yield ("cross_nutrient: not refitted (an evidence base or outcome was selected "
                   "with --base or --outcome)")
            return
        if before_cross is not None:
            before_cross(all(job.done() for job in cross_jobs))
        if cross_jobs:
            (multivariate, mv_lines), (pooled, lines) = (job.result() for job in cross_jobs)
            for line in mv_lines + lines:
                echo(line)
            result = CrossNutrientResult.model_validate(clean_json(
                {**pooled, "multivariate": multivariate}))
        else:
            result = _fit_cross_nutrient(specs, ev, data_dir, build_dir, echo)
        yield _write_cross_nutrient(build_dir, result)
    finally:
        if own_pool is not None:
            own_pool.shutdown(cancel_futures=True)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _fit_one(ev: Evidence, spec: AnalysisSpec, data_dir: Path, build_dir: Path, force: bool,
             echo: Echo) -> str:
    """Fit one evidence base unless its cache key is unchanged; the line to report."""
    path = build_dir / "results" / f"{spec.evidence_base}.json"
    key = cache_key(data_dir, spec)
    if path.exists() and not force:
        old = json.loads(path.read_text(encoding="utf-8"))
        prov = old.get("provenance", {})
        if prov.get("cache_key") == key and not prov.get("outcome_cache_keys"):
            return f"{spec.evidence_base}: unchanged (cache key {key[:12]}), not refitted"
    start = time.perf_counter()
    bundle = fit_evidence_base(ev, spec, data_dir, build_dir, echo)
    bundle.provenance.fit_seconds = round(time.perf_counter() - start, 1)
    if path.exists():
        atomic_write_text(path.with_suffix(".previous.json"), path.read_text("utf-8"))
    atomic_write_text(path, to_json(bundle))
    failed = [f"{o}/{m}" for o, oc in bundle.outcomes.items()
              for m, me in oc.models.items() if me.status == "failed"]
    return (f"{spec.evidence_base}: fitted in {time.perf_counter() - start:.1f} s -> {path}"
            + (f"; FAILED DIAGNOSTICS: {', '.join(failed)}" if failed else ""))


def _fit_cross_nutrient(specs: list[AnalysisSpec], ev: Evidence, data_dir: Path,
                        build_dir: Path, echo: Echo) -> CrossNutrientResult:
    from nutrimeta.cross import fit_cross_nutrient

    return CrossNutrientResult.model_validate(clean_json(
        fit_cross_nutrient(specs, ev, data_dir, build_dir, echo)))


def _cross_nutrient_worker(part: str, specs: list[AnalysisSpec], ev: Evidence, data_dir: Path,
                           build_dir: Path) -> tuple[Any, list[str]]:
    """One part of the cross-nutrient synthesis in a worker process, and its progress lines:
    ``"multivariate"``, the multivariate model's fits; ``"pooled"``, the partially pooled
    slope model (the bundle without the multivariate fits). Each part compiles its own
    model, so the two run side by side."""
    from nutrimeta.cross import fit_cross_nutrient, multivariate_fits

    lines: list[str] = []
    if part == "multivariate":
        return multivariate_fits(specs, ev, lines.append), lines
    return fit_cross_nutrient(specs, ev, data_dir, build_dir, lines.append, multivariate=[]), lines


def _write_cross_nutrient(build_dir: Path, result: CrossNutrientResult) -> str:
    path = build_dir / "results" / "cross_nutrient.json"
    atomic_write_text(path, to_json(result))
    return f"cross_nutrient: {result.status} -> {path}"


def bundle_paths(build_dir: Path) -> list[Path]:
    """The evidence-base bundles in ``build/results`` (not the previous ones, not the
    cross-nutrient result)."""
    return sorted(p for p in (build_dir / "results").glob("*.json")
                  if not p.name.endswith(".previous.json") and p.stem != "cross_nutrient")


def run_reports(data_dir: Path, build_dir: Path, reports_dir: Path,
                releases_dir: Path = Path("releases"),
                bases: Sequence[str] | None = None,
                outcomes: Sequence[str] | None = None, ev: Evidence | None = None,
                workers: int | None = None, index: bool = True,
                pool: ProcessPoolExecutor | None = None) -> list[Path]:
    """Render every bundle (or those of ``bases``) into reports/, then the index (reads
    saved files only; ``ev``: the evidence already loaded). With ``outcomes``, each base
    holding a named outcome gets a report on those outcomes only, in
    ``reports/<base>/outcomes/<outcome>[+<outcome>…]/`` (the full report and the index are
    left as they are). The bases are rendered in parallel processes
    (:func:`~nutrimeta.report.render.render_evidence_bases`; ``workers`` processes, default
    two on two or more cores; or shared with the running worker processes of ``pool``);
    ``index=False`` leaves the index page out."""
    from nutrimeta.report import render_evidence_bases, render_index
    from nutrimeta.report.changes import living_sections

    ev = load_evidence(data_dir) if ev is None else ev
    effects = read_effects(build_dir)
    bundles = bundle_paths(build_dir)
    if bases:
        unknown = sorted(set(bases) - {p.stem for p in bundles})
        if unknown:
            raise ValueError(f"no results for evidence base(s) {', '.join(unknown)} in "
                             f"{build_dir / 'results'}: run `nutrimeta fit` first")
    if outcomes:
        held = {o for p in bundles if not bases or p.stem in bases
                for o in load_bundle(p).outcomes}
        unknown = sorted(set(outcomes) - held)
        if unknown:
            raise ValueError(f"unknown outcome(s) {', '.join(unknown)}; valid: "
                             f"{', '.join(sorted(held))}")
    jobs = []
    for path in bundles:
        base = path.stem
        if bases and base not in bases:
            continue
        bundle = load_bundle(path)
        wanted = [o for o in bundle.outcomes if o in set(outcomes or ())]
        if outcomes and not wanted:
            continue
        out_dir = reports_dir / base / "outcomes" / "+".join(wanted) if wanted \
            else reports_dir / base
        st = ev.studies[ev.studies["evidence_base"] == base]
        sy = ev.syntheses[ev.syntheses["_base"] == base]
        jobs.append(dict(
            bundle_path=path, effects=effects[effects["evidence_base"] == base],
            studies=st[[c for c in st.columns if not c.startswith("_")]],
            syntheses=sy[[c for c in sy.columns if not c.startswith("_")]], out_dir=out_dir,
            extra_sections=living_sections(bundle, releases_dir),
            search_log=data_dir / base / "SEARCH_LOG.md",
            check_findings=build_dir / "check" / "findings.json",
            references_bib=data_dir / base / "references.bib", outcomes=wanted or None,
            risk_of_bias_csv=data_dir / base / "risk_of_bias.csv"))
    written = render_evidence_bases(jobs, workers, pool)
    if not outcomes and index:
        written.append(render_index(bundles, reports_dir))
    return written


def worker_pool() -> ProcessPoolExecutor | None:
    """Two worker processes beside this one when a second core is available, else None:
    the two cross-nutrient models compile (seconds each) while this process fits the
    evidence bases by quadrature, then the workers share the evidence-base reports.

    Started from a fork server that has imported the sampling stack once (a forked copy of
    this process, which may run numba and the sampler's threads, would not be safe; two
    ``spawn``ed workers would each import it, seconds of CPU)."""
    if _cpus() < 2:
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["nutrimeta.cross", "nutrimeta.models.fitting",
                                    "nutrimeta.models.bayes", "nutrimeta.models.cross_mv",
                                    "nutpie", "nutrimeta.report.render"])
    forkserver.ensure_running()  # imports the stack now, beside the caller's own work
    return ProcessPoolExecutor(2, mp_context=context)


def run_all(data_dir: Path, analyses_dir: Path, build_dir: Path, reports_dir: Path, *,
            force: bool = False, echo: Echo = print, bases: Sequence[str] | None = None,
            fit_echo: Echo | None = None, outcomes: Sequence[str] | None = None) -> int:
    """The whole pipeline; returns a process exit status (1 on data errors)."""
    start = time.perf_counter()
    pool = worker_pool()  # its fork server imports the sampling stack while the data load
    ev = load_evidence(data_dir)
    for p in ev.problems:
        (echo if p.severity == "warning" else _echo_err)(str(p))
    if ev.errors:
        if pool is not None:
            pool.shutdown()
        _echo_err(f"{len(ev.errors)} data error(s): fix them, then run again (nothing was "
                  "fitted or written).")
        return 1
    echo(f"validated: {len(ev.studies)} studies, {len(ev.results)} result rows")
    early: list[Path] = []

    def base_reports(cross_done: bool) -> None:
        # the evidence-base reports need no cross-nutrient result: rendered while the workers
        # fit it, shared between this process and the workers as they come free
        early.extend(run_reports(data_dir, build_dir, reports_dir, bases=bases,
                                 outcomes=outcomes, ev=ev, index=False,
                                 pool=None if cross_done else pool))
        for path in early:
            echo(f"wrote {path}")

    try:
        for line in run_fits(data_dir, analyses_dir, build_dir, force=force,
                             echo=fit_echo or echo, bases=bases, outcomes=outcomes, ev=ev,
                             pool=pool, before_cross=base_reports):
            echo(line)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if early:
        from nutrimeta.report import render_index

        written = [render_index(bundle_paths(build_dir), reports_dir)]
    else:
        written = run_reports(data_dir, build_dir, reports_dir, bases=bases, outcomes=outcomes,
                              ev=ev)
    for path in written:
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
