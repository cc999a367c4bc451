"""Command-line interface: ``nutrimeta <command>``. Each command is a thin wrapper over an
importable function, so everything the CLI does can be scripted from Python too."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nutrimeta import __version__

if TYPE_CHECKING:
    from nutrimeta.progress import FitProgress


def _in_project(name: str) -> Callable[[], Path]:
    """Default for a path option: ``name`` inside the project found from the working folder."""

    def default() -> Path:
        from nutrimeta.project import NoProjectError, project_path

        try:
            return project_path(name, click.get_current_context().find_root().params.get(
                "project"))
        except NoProjectError as exc:
            raise click.ClickException(str(exc)) from None

    return default


def _release_heap_at_exit() -> None:
    """Keep the garbage collector's passes at interpreter exit off the heap a fit leaves.

    After fitting, the heap holds hundreds of thousands of objects (compiled models, graphs,
    posteriors); the collections at interpreter shutdown walked them for seconds after the last
    line was printed. Frozen objects are skipped by those passes; the operating system releases
    the memory when the process ends.
    """
    import gc

    gc.freeze()


DATA_OPT = click.option("--data", "data_dir", default=_in_project("data"), show_default="data",
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Folder of curated evidence.")
SPECS_OPT = click.option("--analyses", "analyses_dir", default=_in_project("analyses"),
                         show_default="analyses",
                         type=click.Path(file_okay=False, path_type=Path),
                         help="Folder of analysis specs (*.toml).")
BUILD_OPT = click.option("--build", "build_dir", default=_in_project("build"),
                         show_default="build",
                         type=click.Path(file_okay=False, path_type=Path),
                         help="Folder for intermediate results (effects, fits, bundles).")
BASE_OPT = click.option("--base", "bases", multiple=True, metavar="EVIDENCE_BASE",
                        help="Only this evidence base (repeat for several); default: all.")
OUTCOME_OPT = click.option("--outcome", "outcomes", multiple=True, metavar="OUTCOME",
                           help="Only this outcome (a spec outcome key; repeat for several); "
                           "fits are merged into the saved results of the other outcomes.")
REPORTS_OPT = click.option("--reports", "reports_dir", default=_in_project("reports"),
                           show_default="reports",
                           type=click.Path(file_okay=False, path_type=Path),
                           help="Folder the reports are written to.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nutrimeta")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Project folder (default: found upwards from the working folder); the "
              "default paths of every command are taken inside it.")
@click.option("-q", "--quiet", is_flag=True, help="Print only problems and the final line.")
@click.option("-v", "--verbose", is_flag=True, help="Also print every model fit as it starts.")
@click.pass_context
def main(ctx: click.Context, project: Path | None, quiet: bool, verbose: bool) -> None:
    """nutrimeta: Bayesian evidence synthesis of micronutrient supplementation and hormones."""
    from nutrimeta.progress import NORMAL, QUIET, VERBOSE

    ctx.obj = {"verbosity": QUIET if quiet else VERBOSE if verbose else NORMAL}


def _verbosity() -> int:
    from nutrimeta.progress import NORMAL

    ctx = click.get_current_context().find_root()
    return int((ctx.obj or {}).get("verbosity", NORMAL))


def _fit_progress(analyses_dir: Path, bases: tuple[str, ...],
                  outcomes: tuple[str, ...] = ()) -> FitProgress:
    """A progress display sized to the fits of the selected bases and outcomes."""
    from nutrimeta.outcome_refit import check_outcomes, wanted_outcomes
    from nutrimeta.pipeline import planned_fits, select_specs
    from nutrimeta.progress import FitProgress
    from nutrimeta.spec import load_specs

    try:
        specs = select_specs(load_specs(analyses_dir), bases or None)
        if outcomes:
            check_outcomes(specs, outcomes)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    planned = (sum(len(wanted_outcomes(s, outcomes)) * len(s.models) for s in specs)
               if outcomes else planned_fits(specs))
    return FitProgress(planned, _verbosity())


@main.command()
@DATA_OPT
@click.option("--warnings/--no-warnings", default=True, show_default=True,
              help="Also print warnings (they do not change the exit code).")
def validate(data_dir: Path, warnings: bool) -> None:
    """Validate the curated data; print every problem with file, row and column.

    Exits 1 if there is any error.
    """
    from nutrimeta.validate import load_evidence

    ev = load_evidence(data_dir)
    shown = ev.problems if warnings else ev.errors
    for p in shown:
        click.echo(str(p), err=p.severity == "error")
    n_st, n_res = len(ev.studies), len(ev.results)
    summary = (f"{n_st} studies, {n_res} result rows, {len(ev.syntheses)} published syntheses, "
               f"{len(ev.references)} references: {len(ev.errors)} error(s), "
               f"{len(ev.warnings)} warning(s)")
    click.echo(summary, err=bool(ev.errors))
    if ev.errors:
        sys.exit(1)


@main.command()
@DATA_OPT
@BUILD_OPT
@click.option("--strict", is_flag=True, help="Exit 1 if any finding has severity 'error'.")
def check(data_dir: Path, build_dir: Path, strict: bool) -> None:
    """Check reported statistics for consistency (printed vs recomputed p, '±' readings,
    order of summaries, dispersion plausibility); write build/check/findings.{csv,json}."""
    from nutrimeta.check import check_evidence, render_table, write_findings
    from nutrimeta.validate import load_evidence

    ev = load_evidence(data_dir)
    findings = check_evidence(ev.studies, ev.results)
    click.echo(render_table(findings))
    paths = write_findings(findings, build_dir)
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    click.echo(f"{len(findings)} finding(s): " + ", ".join(f"{v} {k}" for k, v in
                                                          counts.items()))
    click.echo("wrote " + ", ".join(str(p) for p in paths))
    if strict and counts["error"]:
        sys.exit(1)


@main.command()
@DATA_OPT
@SPECS_OPT
@BUILD_OPT
def effects(data_dir: Path, analyses_dir: Path, build_dir: Path) -> None:
    """Compute the tidy effect-size table (build/effects.csv)."""
    from nutrimeta.pipeline import run_effects

    path = run_effects(data_dir, analyses_dir, build_dir)
    click.echo(f"wrote {path}")


@main.command()
@DATA_OPT
@SPECS_OPT
@BUILD_OPT
@BASE_OPT
@OUTCOME_OPT
@click.option("--force", is_flag=True, help="Refit even if inputs are unchanged.")
def fit(data_dir: Path, analyses_dir: Path, build_dir: Path, bases: tuple[str, ...],
        outcomes: tuple[str, ...], force: bool) -> None:
    """Fit every analysis (refits only those whose inputs changed)."""
    from nutrimeta.pipeline import run_fits
    from nutrimeta.progress import line_printer

    out = line_printer(_verbosity())
    with _fit_progress(analyses_dir, bases, outcomes) as progress:
        try:
            for line in run_fits(data_dir, analyses_dir, build_dir, force=force, echo=progress,
                                 bases=bases or None, outcomes=outcomes or None):
                out(line)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    out(progress.summary())
    _release_heap_at_exit()


@main.command()
@DATA_OPT
@BUILD_OPT
@REPORTS_OPT
@BASE_OPT
@OUTCOME_OPT
def report(data_dir: Path, build_dir: Path, reports_dir: Path, bases: tuple[str, ...],
           outcomes: tuple[str, ...]) -> None:
    """Render reports from saved results (never refits). With --outcome, a report on those
    outcomes only, in reports/<base>/outcomes/<outcome>/."""
    from nutrimeta.pipeline import run_reports
    from nutrimeta.progress import line_printer

    out = line_printer(_verbosity())
    try:
        paths = run_reports(data_dir, build_dir, reports_dir, bases=bases or None,
                            outcomes=outcomes or None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for path in paths:
        out(f"wrote {path}")


@main.command()
@DATA_OPT
@SPECS_OPT
@BUILD_OPT
@REPORTS_OPT
@BASE_OPT
@OUTCOME_OPT
@click.option("--force", is_flag=True, help="Refit even if inputs are unchanged.")
def analysis(data_dir: Path, analyses_dir: Path, build_dir: Path, reports_dir: Path,
             bases: tuple[str, ...], outcomes: tuple[str, ...], force: bool) -> None:
    """The whole pipeline: validate, effect sizes, fits, reports."""
    from nutrimeta.pipeline import run_all
    from nutrimeta.progress import line_printer

    out = line_printer(_verbosity())
    with _fit_progress(analyses_dir, bases, outcomes) as progress:
        try:
            status = run_all(data_dir, analyses_dir, build_dir, reports_dir, force=force,
                             echo=out, fit_echo=progress, bases=bases or None,
                             outcomes=outcomes or None)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    out(progress.summary())
    _release_heap_at_exit()
    sys.exit(status)


@main.command()
@click.argument("record", required=False, type=click.Path(exists=True, path_type=Path))
@DATA_OPT
@SPECS_OPT
@click.option("--dry-run", is_flag=True, help="Validate and show the effect sizes the record "
              "would produce; write nothing.")
@click.option("--interactive", "base", default=None, metavar="EVIDENCE_BASE",
              help="Build the record by answering a prompt for each field.")
def add(record: Path | None, data_dir: Path, analyses_dir: Path, dry_run: bool,
        base: str | None) -> None:
    """Add one trial report (a YAML file, or a folder with studies.csv + results.csv).

    The record is validated against the schema and the existing data; on success its rows are
    appended (no other byte of the data changes); on any error nothing is written.
    """
    from nutrimeta.intake import add_record, load_record, prompt_record
    from nutrimeta.transaction import TransactionError, recover

    if (record is None) == (base is None):
        raise click.UsageError("give a RECORD file, or --interactive EVIDENCE_BASE")
    try:
        note = recover(data_dir) if data_dir.is_dir() else None
        rec = load_record(record) if record is not None else prompt_record(str(base))
    except (ValueError, UnicodeDecodeError, TransactionError) as exc:
        if isinstance(exc, UnicodeDecodeError):  # a CSV-pair record folder
            exc = ValueError(f"{record}: a file is not UTF-8 text (byte 0x"
                             f"{exc.object[exc.start:exc.start + 1].hex().upper()} at offset "
                             f"{exc.start}); save it as UTF-8")
        click.echo(f"error: {exc}\nnothing was written.", err=True)
        sys.exit(1)
    if note:
        click.echo(f"note: {note}")
    outcome = add_record(rec, data_dir, dry_run=dry_run, analyses_dir=analyses_dir)
    click.echo(outcome.describe())
    sys.exit(0 if outcome.ok else 1)


@main.command()
@BUILD_OPT
@click.option("--releases", "releases_dir", default=_in_project("releases"),
              show_default="releases",
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder of saved releases (releases/<data-version>/<base>/results.json).")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print the Markdown source instead of terminal tables.")
def changes(build_dir: Path, releases_dir: Path, as_markdown: bool) -> None:
    """What changed in each evidence base since the last saved release (the same content as
    the report's "What changed" section, drawn as terminal tables)."""
    from rich.console import Console
    from rich.markdown import Markdown

    from nutrimeta.pipeline import bundle_paths
    from nutrimeta.report.changes import living_sections
    from nutrimeta.results import load_bundle

    bundles = bundle_paths(build_dir)
    if not bundles:
        raise click.ClickException(f"no results in {build_dir}/results: run `nutrimeta fit`")
    console = Console()
    for path in bundles:
        bundle = load_bundle(path)
        section = next(body for sid, _title, body in living_sections(bundle, releases_dir)
                       if sid == "changes")
        text = f"# {bundle.title}\n\n{section}"
        if as_markdown:
            click.echo(text)
        else:
            console.print(Markdown(text))


@main.command()
@DATA_OPT
@click.option("--check", is_flag=True, help="Exit 1 if the descriptor is out of date.")
def datapackage(data_dir: Path, check: bool) -> None:
    """Regenerate data/datapackage.json (the data dictionary) from the schema."""
    from nutrimeta import datapackage as dp

    if check:
        path = data_dir / dp.DESCRIPTOR_NAME
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        expected = dp.render(dp.build_descriptor(dp.read_version(data_dir)))
        if current != expected:
            click.echo(f"{path} is out of date: run `nutrimeta datapackage`", err=True)
            sys.exit(1)
        click.echo(f"{path} is up to date")
        return
    click.echo(f"wrote {dp.write_descriptor(data_dir)}")


if __name__ == "__main__":  # pragma: no cover
    main()
