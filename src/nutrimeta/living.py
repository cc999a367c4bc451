"""Living evidence: add a trial report, see what changed, value the next trial.

Three parts, each usable from the command line and from the report stage:

* **Adding a record** (:func:`load_record`, :func:`prompt_record`, :func:`add_record`). A record
  is one trial report: a ``studies.csv`` row, its ``results.csv`` rows and, if its reference is
  new, a BibTeX entry. It is checked by writing the would-be files into a temporary copy of the
  data folder and running the validator (:func:`nutrimeta.validate.load_evidence`) there, plus
  the checks only an addition needs (duplicate ``study_id``, a PMID or DOI already recorded, a
  possibly overlapping cohort). Only then are the new rows *appended*: every existing byte of
  every file stays as it was, and the changed files are switched all together or not at all
  (:mod:`nutrimeta.transaction`).
* **What changed** (:func:`compare_bundles`, :func:`changes_markdown`,
  :func:`changes_since_release`): compare a results bundle with the one saved at the previous
  release (``releases/<data-version>/<base>/results.json``), reporting only changes larger
  than a Monte Carlo tolerance (:class:`Tolerance`).
* **Value of the next trial** (:func:`next_trial_value`): by simulation from the posterior
  predictive of the exact normal–normal model, how likely one more trial of a given size is to
  settle a claim.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import yaml
from scipy import special

from nutrimeta.models.exact import ExactPosterior, exact_posterior
from nutrimeta.schema import EVIDENCE_BASES, OUTCOMES, RESULTS, STUDIES, Column, Table
from nutrimeta.strict_yaml import read_document
from nutrimeta.transaction import TransactionError, commit_files
from nutrimeta.validate import Evidence, Problem, ProblemsMixin, load_evidence

__all__ = [
    "AddOutcome",
    "Change",
    "NewRecord",
    "Tolerance",
    "add_record",
    "changes_markdown",
    "changes_since_release",
    "compare_bundles",
    "latest_release",
    "load_record",
    "next_trial_curve",
    "next_trial_value",
    "posterior_from_bundle",
    "prompt_record",
]

Ask = Callable[..., Any]
#: Years either side of a recorded report by the same first author that suggest the same cohort.
OVERLAP_YEARS = 2
#: Posterior probability at or above which a claim is "supported" (as in the reports).
SUPPORTED = 0.95
_BASE_FILES = ("studies.csv", "results.csv", "syntheses.csv", "references.bib")


# ==============================================================================================
# Records
# ==============================================================================================

@dataclass
class NewRecord:
    """One trial report to add: a studies row, its results rows and optional BibTeX.

    Values are kept as the text that will be written to the CSV files (numbers as printed).
    ``study_file``/``results_file`` and the line numbers say where each row came from, so that
    problems can point back into the record rather than into the data files.
    """

    study: dict[str, str]
    results: list[dict[str, str]]
    references: str = ""
    study_file: str = "<record>"
    results_file: str = "<record>"
    references_file: str = "<record>"
    study_line: int | None = None
    result_lines: list[int | None] = field(default_factory=list)

    @property
    def study_id(self) -> str:
        """The record's ``study_id`` (empty if missing)."""
        return self.study.get("study_id", "")

    @property
    def evidence_base(self) -> str:
        """The evidence base the record belongs to (empty if missing)."""
        return self.study.get("evidence_base", "")


def _text(value: Any) -> str:
    """A YAML/CSV value as the text written to a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # also inf and nan: the validator rejects them, located
    return str(value).strip()


def _row_text(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).strip(): _text(v) for k, v in mapping.items()}


def load_record(path: Path | str) -> NewRecord:
    """Read a record from a YAML file or from a folder holding a CSV pair.

    Parameters
    ----------
    path
        A ``.yaml``/``.yml`` file with keys ``study`` (a mapping of ``studies.csv`` columns),
        ``results`` (a list of mappings of ``results.csv`` columns) and optionally
        ``references`` (BibTeX text); or a folder with ``studies.csv`` (one row) and
        ``results.csv`` in the schema's columns, and optionally ``references.bib``.
        Quote numbers in YAML to keep them exactly as printed (``"0.050"``). In ``results``
        rows ``study_id`` may be omitted: it defaults to the study's.

    Returns
    -------
    NewRecord

    Raises
    ------
    ValueError
        If the file cannot be read as a record (its shape, not its content: content is
        checked by :func:`add_record`).
    """
    path = Path(path)
    if path.is_dir():
        return _load_csv_pair(path)
    node, data = read_document(path)
    if not isinstance(data, dict) or not isinstance(data.get("study"), dict):
        raise ValueError(f"{path.name}: expected a mapping with a 'study' mapping")
    results = data.get("results") or []
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ValueError(f"{path.name}: 'results' must be a list of mappings")
    unknown = sorted(set(data) - {"study", "results", "references"})
    if unknown:
        raise ValueError(f"{path.name}: unknown top-level key(s): {', '.join(unknown)}")
    study_line, result_lines = None, [None] * len(results)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "study":
                study_line = value.start_mark.line + 1
            elif key.value == "results" and isinstance(value, yaml.SequenceNode):
                result_lines = [item.start_mark.line + 1 for item in value.value]
    refs = data.get("references") or ""
    return NewRecord(study=_row_text(data["study"]), results=[_row_text(r) for r in results],
                     references=str(refs), study_file=path.name, results_file=path.name,
                     references_file=path.name, study_line=study_line,
                     result_lines=list(result_lines))


def _read_csv_rows(path: Path) -> tuple[list[dict[str, str]], list[int]]:
    rows, lines = [], []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            rows.append({k.strip(): (v or "").strip() for k, v in row.items() if k is not None})
            lines.append(reader.line_num)
    return rows, lines


def _load_csv_pair(folder: Path) -> NewRecord:
    st_path, res_path = folder / "studies.csv", folder / "results.csv"
    if not st_path.exists() or not res_path.exists():
        raise ValueError(f"{folder.name}: a record folder needs studies.csv and results.csv")
    studies, st_lines = _read_csv_rows(st_path)
    if len(studies) != 1:
        raise ValueError(f"{folder.name}/studies.csv: a record holds exactly one study "
                         f"({len(studies)} rows found)")
    results, res_lines = _read_csv_rows(res_path)
    bib = folder / "references.bib"
    return NewRecord(
        study=studies[0], results=results,
        references=bib.read_text(encoding="utf-8") if bib.exists() else "",
        study_file=f"{folder.name}/studies.csv", results_file=f"{folder.name}/results.csv",
        references_file=f"{folder.name}/references.bib", study_line=st_lines[0],
        result_lines=list(res_lines))


class _OptionalChoice(click.Choice):
    """A choice that also accepts an empty answer (an optional enum column)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value in ("", None):
            return ""
        return super().convert(value, param, ctx)


def _ordered(table: Table, skip: Iterable[str]) -> list[Column]:
    cols = [c for c in table.columns if c.name not in set(skip)]
    return [c for c in cols if c.required] + [c for c in cols if not c.required]


def _ask_column(ask: Ask, col: Column, choices: Sequence[str] | None = None) -> str:
    options = list(choices if choices is not None else col.enum or ())
    text = f"{col.name} ({col.description})" if col.required else \
        f"{col.name} (optional, Enter to skip; {col.description})"
    kwargs: dict[str, Any] = {}
    if options:
        kwargs["type"] = click.Choice(options) if col.required else _OptionalChoice(options)
    if not col.required:
        kwargs.update(default="", show_default=False)
    return _text(ask(text, **kwargs))


def prompt_record(base: str, ask: Ask = click.prompt) -> NewRecord:
    """Build a record interactively, one field at a time.

    Required columns are asked first, then the optional ones (Enter leaves them empty);
    enumerated columns are offered as choices. ``evidence_base`` and ``nutrient`` follow from
    ``base``, and each results row takes the study's ``study_id``.

    Parameters
    ----------
    base
        The evidence base the trial belongs to.
    ask
        A prompt function with the signature of :func:`click.prompt` (a fake in tests).

    Returns
    -------
    NewRecord
        Not yet validated: pass it to :func:`add_record`.
    """
    if base not in EVIDENCE_BASES:
        raise ValueError(f"unknown evidence base {base!r} ({', '.join(EVIDENCE_BASES)})")
    study = {"evidence_base": base, "nutrient": EVIDENCE_BASES[base]["nutrient"]}
    for col in _ordered(STUDIES, skip=study):
        study[col.name] = _ask_column(ask, col)
    outcomes = [o for o, d in OUTCOMES.items() if d["base"] == base]
    results: list[dict[str, str]] = []
    while True:
        row = {"study_id": study["study_id"]}
        for col in _ordered(RESULTS, skip=row):
            row[col.name] = _ask_column(ask, col, outcomes if col.name == "outcome" else None)
        results.append(row)
        if not ask("Add another results row?", type=click.BOOL, default=False):
            break
    refs = _text(ask(f"BibTeX entry for {study.get('citation_key', '')!r} (Enter if it is "
                     "already in references.bib)", default="", show_default=False))
    return NewRecord(study=study, results=results, references=refs,
                     study_file="prompt: study", results_file="prompt: results row",
                     references_file="prompt: references", study_line=None,
                     result_lines=list(range(1, len(results) + 1)))


# ==============================================================================================
# Adding a record
# ==============================================================================================

@dataclass
class AddOutcome(ProblemsMixin):
    """What :func:`add_record` did (or would do).

    Attributes
    ----------
    ok
        True when the record has no errors (and, unless a dry run, was written).
    dry_run
        True when nothing was meant to be written.
    base, study_id
        Where the record goes.
    problems
        Errors and warnings the record introduces (errors block writing), located in the
        record file where possible, else in the data file as the validator prints them.
    appended
        Data-file label (``data/<base>/results.csv``) -> the exact text appended (or that
        would be appended).
    written
        Files actually replaced (empty on a dry run or on error).
    effects
        Effect sizes of the record's rows under the base's analysis spec (``None`` when there
        is no spec or the record has errors).
    """

    ok: bool
    dry_run: bool
    base: str
    study_id: str
    problems: list[Problem] = field(default_factory=list)
    appended: dict[str, str] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    effects: pd.DataFrame | None = None

    def describe(self) -> str:
        """Plain-text account for a terminal: problems, rows appended, effect sizes."""
        out: list[str] = []
        out += [str(p) for p in self.errors] + [str(p) for p in self.warnings]
        if not self.ok:
            out.append(f"{len(self.errors)} error(s): nothing was written.")
            return "\n".join(out)
        verb = "would append" if self.dry_run else "appended"
        for label, text in self.appended.items():
            n = text.count("\n") if label.endswith(".csv") else None
            what = f"{n} row(s)" if n is not None else "a BibTeX entry"
            out.append(f"{verb} {what} to {label}:")
            out += ["  " + line for line in text.rstrip("\n").splitlines()]
        if self.effects is not None:
            cols = [c for c in ("outcome", "subgroup", "measure", "yi", "sei", "effect_unit",
                                "poolable", "reason", "derivation") if c in self.effects]
            out.append("effect sizes:" if len(self.effects) else "effect sizes: none")
            if len(self.effects):
                out.append(self.effects[cols].to_string(index=False))
        if self.dry_run:
            out.append("dry run: nothing was written.")
        return "\n".join(out)


def _line_terminator(data: bytes) -> str:
    first = data.split(b"\n", 1)[0]
    return "\r\n" if first.endswith(b"\r") else "\n"


def _header(data: bytes) -> list[str]:
    first = data.decode("utf-8").splitlines()[0] if data else ""
    return next(csv.reader([first])) if first else []


def _csv_text(rows: list[dict[str, str]], header: list[str], newline: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    for row in rows:
        writer.writerow([row.get(c, "") for c in header])
    return buf.getvalue()


def _joined(old: bytes, text: str, newline: str, *, blank_line: bool = False) -> bytes:
    """``old`` followed by ``text``; a line break is added first if ``old`` lacks one."""
    add = b""
    if old and not old.endswith(b"\n"):
        add = newline.encode()
    if blank_line and old:
        add += newline.encode()
    return old + add + text.encode("utf-8")


def _line_count(data: bytes) -> int:
    return len(data.decode("utf-8").splitlines())


def _key(p: Problem) -> tuple[Any, ...]:
    return (p.file, p.row, p.column, p.message, p.severity)


def _same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip() != "" \
        and a.strip().lower() == b.strip().lower()


def _record_checks(record: NewRecord, ev: Evidence) -> list[Problem]:
    """Checks only an addition needs: existing study_id, PMID or DOI; overlapping cohorts."""
    out: list[Problem] = []
    st = record.study
    sid = record.study_id
    linked = st.get("overlap_with", "")
    studies = ev.studies
    here = (record.study_file, record.study_line)

    def where(row: pd.Series) -> str:
        return f"{row['_file']} row {int(row['_row'])}"

    for _, row in studies[studies["study_id"] == sid].iterrows():
        out.append(Problem(*here, "study_id", f"study_id {sid!r} is already recorded "
                           f"({where(row)}); choose a new one (e.g. with a suffix letter) or "
                           "correct the existing rows instead"))
    for col, label in (("pmid", "PMID"), ("doi", "DOI")):
        value = st.get(col, "")
        if not value:
            continue
        for _, row in studies.iterrows():
            other = row[col]
            if other is pd.NA or not _same(str(other), value):
                continue
            if linked == row["study_id"] or _same(str(row["overlap_with"]), sid):
                continue
            out.append(Problem(*here, col, f"{label} {value} is already recorded for "
                               f"{row['study_id']!r} ({where(row)}); if this is another report "
                               f"of that trial set overlap_with = {row['study_id']}"))
    author, year = st.get("first_author", ""), st.get("year", "")
    try:
        year_num = int(float(year))
    except ValueError:
        year_num = None
    if author and year_num is not None:
        same_base = studies[(studies["evidence_base"] == record.evidence_base)
                            & (studies["study_id"] != sid)]
        for _, row in same_base.iterrows():
            if not _same(str(row["first_author"]), author) or pd.isna(row["year"]):
                continue
            if abs(int(row["year"]) - year_num) > OVERLAP_YEARS:
                continue
            if linked == row["study_id"] or _same(str(row["overlap_with"]), sid):
                continue
            out.append(Problem(*here, "overlap_with", f"possible overlapping cohort: "
                               f"{row['study_id']!r} ({where(row)}) has the same first author "
                               f"and year {int(row['year'])}; if the participants overlap, set "
                               f"overlap_with = {row['study_id']}", "warning"))
    return out


def _pmid_known(record: NewRecord, ev: Evidence) -> bool:
    value = record.study.get("pmid", "")
    return bool(value) and any(_same(str(x), value) for x in ev.studies["pmid"].dropna())


def _shape_checks(record: NewRecord, header: dict[str, list[str]], data_dir: Path
                  ) -> list[Problem]:
    """Problems that stop the record from being placed at all (before any validation)."""
    out: list[Problem] = []
    here = (record.study_file, record.study_line)
    base = record.evidence_base
    if base not in EVIDENCE_BASES:
        out.append(Problem(*here, "evidence_base", f"value {base!r} is not an evidence base; "
                           f"must be one of: {', '.join(EVIDENCE_BASES)}"))
        return out
    if not (data_dir / base / "studies.csv").exists():
        out.append(Problem(*here, "evidence_base", f"no folder {data_dir.name}/{base} with "
                           "studies.csv"))
        return out
    for col in record.study:
        if col not in header["studies.csv"]:
            out.append(Problem(*here, col, "unknown column (not in the data dictionary)"))
    if not record.results:
        out.append(Problem(*here, None, "the record has no results rows"))
    for i, row in enumerate(record.results):
        at = (record.results_file, _nth(record.result_lines, i))
        for col in row:
            if col not in header["results.csv"]:
                out.append(Problem(*at, col, "unknown column (not in the data dictionary)"))
        if row.get("study_id", "") not in ("", record.study_id):
            out.append(Problem(*at, "study_id", f"results row refers to {row['study_id']!r}, "
                               f"not to this record's study {record.study_id!r}"))
    return out


def _nth(lines: list[int | None], i: int) -> int | None:
    return lines[i] if i < len(lines) else None


def _map_problem(p: Problem, record: NewRecord, labels: dict[str, str],
                 first_new: dict[str, int]) -> Problem:
    """Locate a validator problem in the record file when it concerns an appended row."""
    for name, label in labels.items():
        if p.file != label or p.row is None or p.row < first_new[name]:
            continue
        i = p.row - first_new[name]
        if name == "studies.csv":
            return Problem(record.study_file, record.study_line, p.column, p.message, p.severity)
        if name == "results.csv":
            return Problem(record.results_file, _nth(record.result_lines, i), p.column,
                           p.message, p.severity)
        return Problem(record.references_file, None, p.column, p.message, p.severity)
    return p


def _copy_data(data_dir: Path, dest: Path) -> dict[Path, bytes]:
    """Copy the curated files of every evidence base into ``dest``; return the bytes read."""
    snapshot: dict[Path, bytes] = {}
    for base in EVIDENCE_BASES:
        src = data_dir / base
        if not (src / "studies.csv").exists():
            continue
        (dest / base).mkdir(parents=True)
        for name in _BASE_FILES:
            if (src / name).exists():
                data = (src / name).read_bytes()
                snapshot[src / name] = data
                (dest / base / name).write_bytes(data)
    return snapshot


def _effects(ev: Evidence, base: str, study_id: str, analyses_dir: Path) -> pd.DataFrame | None:
    from nutrimeta.pipeline import effects_for_spec
    from nutrimeta.spec import load_spec

    path = analyses_dir / f"{base}.toml"
    if not path.exists():
        return None
    eff = effects_for_spec(ev, load_spec(path))
    return eff[eff["study_id"] == study_id].reset_index(drop=True)


def add_record(record: NewRecord, data_dir: Path | str, *, dry_run: bool = False,
               analyses_dir: Path | str | None = None) -> AddOutcome:
    """Validate a record against the schema and the existing data, then append it.

    The would-be files are written into a temporary copy of ``data_dir`` and checked there
    with :func:`nutrimeta.validate.load_evidence`; problems that already existed before the
    addition are ignored, new ones are reported (rows located in the record file where
    possible). In addition: a ``study_id`` already recorded and a PMID or DOI already recorded
    (unless ``overlap_with`` links the two reports) are errors; the same first author within
    :data:`OVERLAP_YEARS` years in the same evidence base is a warning (possible overlapping
    cohort).

    On success the new rows are appended to ``data/<base>/studies.csv`` and ``results.csv``
    (and the BibTeX to ``references.bib``): the old bytes of each file are an exact prefix of
    the new ones, and the files are switched all or nothing (:func:`nutrimeta.transaction.
    commit_files`, safe against a kill). If a file changed on disk while the
    record was being checked, nothing is written.

    Parameters
    ----------
    record
        The trial report (:func:`load_record` or :func:`prompt_record`).
    data_dir
        The curated data folder (``data``).
    dry_run
        Check and compute, write nothing.
    analyses_dir
        Folder of the analysis specs used for the effect sizes; default ``analyses`` next to
        ``data_dir``.

    Returns
    -------
    AddOutcome
    """
    data_dir = Path(data_dir)
    analyses = Path(analyses_dir) if analyses_dir is not None else \
        data_dir.resolve().parent / "analyses"
    base, sid = record.evidence_base, record.study_id
    record = NewRecord(**{**record.__dict__, "results": [
        {**r, "study_id": r.get("study_id") or sid} for r in record.results]})
    outcome = AddOutcome(ok=False, dry_run=dry_run, base=base, study_id=sid)
    headers: dict[str, list[str]] = {}
    if base in EVIDENCE_BASES:
        for name in ("studies.csv", "results.csv"):
            path = data_dir / base / name
            headers[name] = _header(path.read_bytes()) if path.exists() else []
    outcome.problems = _shape_checks(record, headers, data_dir)
    if outcome.problems:
        return outcome

    with tempfile.TemporaryDirectory(prefix="nutrimeta-add-") as tmp:
        copy = Path(tmp) / data_dir.name
        snapshot = _copy_data(data_dir, copy)
        before = load_evidence(copy)
        known = {_key(p) for p in before.problems}
        labels = {name: f"{data_dir.name}/{base}/{name}" for name in
                  ("studies.csv", "results.csv", "references.bib")}
        extra = _record_checks(record, before)
        new_bytes: dict[str, bytes] = {}
        check_bytes: dict[str, bytes] = {}
        first_new: dict[str, int] = {}
        for name, rows in (("studies.csv", [record.study]), ("results.csv", record.results)):
            old = snapshot[data_dir / base / name]
            nl = _line_terminator(old)
            text = _csv_text(rows, headers[name], nl)
            first_new[name] = _line_count(old) + 1
            new_bytes[name] = _joined(old, text, nl)
            outcome.appended[labels[name]] = text
            if name == "studies.csv" and _pmid_known(record, before):
                # A PMID shared with a recorded study is judged by _record_checks; the copy
                # validated leaves it out, as the validator's PMID cross-check cannot handle
                # a shared PMID when one of the rows has no overlap_with.
                rows = [{**record.study, "pmid": ""}]
                check_bytes[name] = _joined(old, _csv_text(rows, headers[name], nl), nl)
        if record.references.strip():
            old = snapshot.get(data_dir / base / "references.bib", b"")
            nl = _line_terminator(old)
            text = record.references.strip().replace("\n", nl) + nl
            first_new["references.bib"] = _line_count(old) + 1
            new_bytes["references.bib"] = _joined(old, text, nl, blank_line=True)
            outcome.appended[labels["references.bib"]] = text
        else:
            first_new["references.bib"] = 10**12
        for name, data in {**new_bytes, **check_bytes}.items():
            (copy / base / name).write_bytes(data)
        after = load_evidence(copy)
        found = [_map_problem(p, record, labels, first_new) for p in after.problems
                 if _key(p) not in known]
        if any(p.column == "study_id" and p.severity == "error" for p in extra):
            found = [p for p in found if not (p.column == "study_id"
                                              and "must be unique" in p.message)]
        flagged = {(p.file, p.row, p.column) for p in extra}
        found = [p for p in found if not (p.severity == "warning" and
                                          (p.file, p.row, p.column) in flagged)]
        outcome.problems = extra + found
        if outcome.errors:
            return outcome
        outcome.effects = _effects(after, base, sid, analyses)
        outcome.ok = True
        if dry_run:
            return outcome
        targets = {data_dir / base / name: data for name, data in new_bytes.items()}
        changed = [p for p in targets
                   if (p.read_bytes() if p.exists() else b"") != snapshot.get(p, b"")]
        if changed:
            outcome.ok = False
            outcome.problems.append(Problem(
                str(changed[0]), None, None, "the file changed while the record was being "
                "checked; nothing was written (run the command again)"))
            return outcome
        try:  # all files or none, even if the process is killed (nutrimeta.transaction)
            outcome.written = commit_files(data_dir, targets, expected=snapshot)
        except TransactionError as exc:
            outcome.ok = False
            outcome.problems.append(Problem(str(data_dir), None, None, str(exc)))
    return outcome


# ==============================================================================================
# What changed between two results bundles
# ==============================================================================================

@dataclass(frozen=True)
class Tolerance:
    """Smallest changes worth reporting: anything smaller is Monte Carlo noise.

    The sampler's Monte Carlo standard error of a posterior mean is ``sd / sqrt(ESS)``; with
    the bulk ESS of at least 400 that the diagnostics require it is at most ``0.05 sd``, and
    that of a 2.5% or 97.5% quantile about ``0.13 sd`` (tail ESS 400). A probability near 0.5
    estimated from 1000 effective draws has a standard error of about 0.016. The defaults are
    about twice these.

    Attributes
    ----------
    mean_sd
        A parameter's mean must move by more than this fraction of its posterior SD.
    interval_sd
        An interval limit (``q025``/``q975``) must move by more than this fraction of the SD.
    probability
        A posterior probability must move by more than this (absolute). A claim whose verdict
        changes while its probability moved by less is listed as a change at the threshold,
        not flagged.
    """

    mean_sd: float = 0.1
    interval_sd: float = 0.25
    probability: float = 0.03


#: Parameters compared for every model: the pooled effect, heterogeneity and the
#: baseline-status (deficiency) interaction and the effects it contrasts.
PARAMETERS = ("mu", "tau", "deficient_minus_replete", "effect_deficient", "effect_replete",
              "slope")


@dataclass(frozen=True)
class Change:
    """One difference between a previous and a current results bundle.

    ``kind`` is one of ``"verdict"`` (a claim's verdict changed beyond the tolerance:
    ``flag`` is True), ``"verdict_at_threshold"`` (verdict changed within Monte Carlo noise),
    ``"claim_added"``, ``"claim_removed"``, ``"k"``, ``"studies_added"``,
    ``"studies_removed"``, ``"parameter"``, ``"probability"``, ``"model_status"``,
    ``"outcome_added"``, ``"outcome_removed"``. ``old``/``new`` hold the values compared (a
    summary dict ``{mean, q025, q975}`` for parameters, a list of study ids for studies).
    """

    kind: str
    outcome: str | None
    model: str | None
    quantity: str
    old: Any
    new: Any
    delta: float | None = None
    flag: bool = False
    note: str = ""


def _num_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) \
        and math.isfinite(x) else None


def _param_change(old: dict, new: dict, tol: Tolerance) -> bool:
    sd = max(_num_or_none(old.get("sd")) or 0.0, _num_or_none(new.get("sd")) or 0.0)
    for key, frac in (("mean", tol.mean_sd), ("q025", tol.interval_sd),
                      ("q975", tol.interval_sd)):
        a, b = _num_or_none(old.get(key)), _num_or_none(new.get(key))
        if a is None or b is None:
            if (a is None) != (b is None):
                return True
            continue
        limit = frac * sd if sd > 0 else 1e-9 * max(1.0, abs(a), abs(b))
        if abs(b - a) > limit:
            return True
    return False


def _summary(d: dict) -> dict[str, Any]:
    return {k: d.get(k) for k in ("mean", "q025", "q975", "sd")}


def _study_ids(oc: dict) -> list[str]:
    return [str(s.get("study_id")) for s in oc.get("studies", [])]


def _compare_model(outcome: str, mid: str, old: dict, new: dict, tol: Tolerance
                   ) -> list[Change]:
    out: list[Change] = []
    so, sn = old.get("status"), new.get("status")
    if so != sn:
        out.append(Change("model_status", outcome, mid, "status", so, sn,
                          note=str(new.get("reason", "") or "")))
    if old.get("k") != new.get("k") and old.get("k") is not None:
        out.append(Change("k", outcome, mid, "k", old.get("k"), new.get("k"),
                          _num_or_none(new.get("k") or 0) - (_num_or_none(old["k"]) or 0)
                          if isinstance(new.get("k"), int) else None))
    if so != "ok" or sn != "ok":
        return out
    po, pn = old.get("parameters", {}), new.get("parameters", {})
    for name in PARAMETERS:
        if name not in po and name not in pn:
            continue
        a, b = po.get(name, {}), pn.get(name, {})
        if _param_change(a, b, tol):
            ma, mb = _num_or_none(a.get("mean")), _num_or_none(b.get("mean"))
            out.append(Change("parameter", outcome, mid, name, _summary(a), _summary(b),
                              None if ma is None or mb is None else mb - ma))
    qo, qn = old.get("probabilities", {}), new.get("probabilities", {})
    for name in list(dict.fromkeys([*qo, *qn])):
        a, b = _num_or_none(qo.get(name)), _num_or_none(qn.get(name))
        if a is None or b is None:
            if (a is None) != (b is None):
                out.append(Change("probability", outcome, mid, name, a, b))
            continue
        if abs(b - a) > tol.probability:
            out.append(Change("probability", outcome, mid, name, a, b, b - a))
    return out


def _claim_key(c: dict) -> tuple[str, str, str]:
    return (str(c.get("claim", "")), str(c.get("outcome", "")), str(c.get("quantity", "")))


def compare_bundles(old: dict, new: dict, *, tol: Tolerance | None = None) -> list[Change]:
    """Differences between two results bundles of one evidence base, beyond Monte Carlo noise.

    Per outcome: k before/after, studies added and removed; per model (matched by id): status,
    k, the summaries of ``mu``, ``tau`` and the deficiency interaction
    (``deficient_minus_replete`` and the effects it contrasts) when mean or 95% interval moved
    by more than the tolerance, and posterior probabilities that moved by more than the
    tolerance. Claims (matched by text, outcome and quantity) whose verdict changed are
    flagged (``flag=True``) when their probability moved by more than ``tol.probability`` or
    the model behind them appeared or disappeared; a verdict change within that noise is listed
    as ``verdict_at_threshold`` and not flagged.

    Parameters
    ----------
    old, new
        Results bundles (``build/results/<base>.json`` shape; see ``docs/pipeline.md``).
        ``old`` may be empty (no previous release).
    tol
        Reporting thresholds; default :class:`Tolerance`.

    Returns
    -------
    list of Change
        Flagged verdict changes first, then per outcome in the new bundle's order.
    """
    tol = tol or Tolerance()
    changes: list[Change] = []
    oo, on = old.get("outcomes", {}) or {}, new.get("outcomes", {}) or {}
    for name in list(dict.fromkeys([*on, *oo])):
        if name not in oo:
            changes.append(Change("outcome_added", name, None, "outcome", None,
                                  on[name].get("k")))
            continue
        if name not in on:
            changes.append(Change("outcome_removed", name, None, "outcome", oo[name].get("k"),
                                  None))
            continue
        a, b = oo[name], on[name]
        if a.get("k") != b.get("k"):
            changes.append(Change("k", name, None, "k", a.get("k"), b.get("k"),
                                  (b.get("k") or 0) - (a.get("k") or 0)))
        ids_a, ids_b = _study_ids(a), _study_ids(b)
        added = [s for s in ids_b if s not in ids_a]
        removed = [s for s in ids_a if s not in ids_b]
        if added:
            changes.append(Change("studies_added", name, None, "studies", None, added))
        if removed:
            changes.append(Change("studies_removed", name, None, "studies", removed, None))
        ma, mb = a.get("models", {}), b.get("models", {})
        for mid in list(dict.fromkeys([*mb, *ma])):
            if mid not in ma or mid not in mb:
                changes.append(Change("model_status", name, mid, "status",
                                      ma.get(mid, {}).get("status"),
                                      mb.get(mid, {}).get("status")))
                continue
            changes += _compare_model(name, mid, ma[mid], mb[mid], tol)
    outcome_k = {(c.outcome, c.old, c.new) for c in changes if c.kind == "k" and c.model is None}
    changes = [c for c in changes if not (c.kind == "k" and c.model is not None and
                                          (c.outcome, c.old, c.new) in outcome_k)]
    changes = _claim_changes(old.get("claims", []) or [], new.get("claims", []) or [],
                             tol) + changes
    return sorted(changes, key=lambda c: not c.flag)


def _claim_changes(old: list[dict], new: list[dict], tol: Tolerance) -> list[Change]:
    out: list[Change] = []
    before = {_claim_key(c): c for c in old}
    after = {_claim_key(c): c for c in new}
    for key, c in after.items():
        if key not in before:
            out.append(Change("claim_added", c.get("outcome"), c.get("model"), key[0], None,
                              c.get("verdict")))
            continue
        p = before[key]
        if p.get("verdict") == c.get("verdict"):
            continue
        a, b = _num_or_none(p.get("probability")), _num_or_none(c.get("probability"))
        delta = None if a is None or b is None else b - a
        real = delta is None or abs(delta) > tol.probability
        note = f"P {_fmt(a)} -> {_fmt(b)}; k {p.get('k')} -> {c.get('k')}"
        if c.get("why"):
            note += f"; {c['why']}"
        out.append(Change("verdict" if real else "verdict_at_threshold", c.get("outcome"),
                          c.get("model"), key[0], p.get("verdict"), c.get("verdict"), delta,
                          flag=real, note=note))
    for key, p in before.items():
        if key not in after:
            out.append(Change("claim_removed", p.get("outcome"), p.get("model"), key[0],
                              p.get("verdict"), None))
    return out


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:.3e}"
    return str(x)


def _fmt_summary(d: dict | None) -> str:
    if not d or d.get("mean") is None:
        return "–"
    return f"{_fmt(d.get('mean'))} [{_fmt(d.get('q025'))}, {_fmt(d.get('q975'))}]"


def changes_markdown(changes: list[Change], *, since: str | None = None,
                     tol: Tolerance | None = None, heading: str = "## What changed") -> str:
    """Render changes as a Markdown section for the report.

    Flagged verdict changes come first, in bold, then one table per outcome. Parameters show
    ``mean [2.5%, 97.5%]``. The tolerance used is stated at the end.

    Parameters
    ----------
    changes
        From :func:`compare_bundles`.
    since
        Label of the previous release (e.g. its data version), used in the heading.
    tol
        The tolerance the changes were computed with (for the closing note).
    heading
        The section heading line.
    """
    tol = tol or Tolerance()
    title = heading + (f" since data version {since}" if since else "")
    lines = [title, ""]
    flagged = [c for c in changes if c.flag]
    if flagged:
        lines.append("**Claims whose verdict changed:**")
        lines.append("")
        for c in flagged:
            lines.append(f"- **{c.quantity}** ({c.outcome}, {c.model}): **{c.old} → {c.new}** "
                         f"({c.note})")
        lines.append("")
    other_claims = [c for c in changes if not c.flag and c.kind in
                    ("verdict_at_threshold", "claim_added", "claim_removed")]
    for c in other_claims:
        what = {"verdict_at_threshold": f"verdict {c.old} → {c.new} within Monte Carlo noise "
                f"({c.note}); not a real change",
                "claim_added": f"new claim (verdict: {c.new})",
                "claim_removed": f"claim no longer checked (was: {c.old})"}[c.kind]
        lines.append(f"- {c.quantity} ({c.outcome}): {what}")
    if other_claims:
        lines.append("")
    rest = [c for c in changes if c.kind not in
            ("verdict", "verdict_at_threshold", "claim_added", "claim_removed")]
    if not changes:
        lines.append("No change beyond Monte Carlo noise.")
        lines.append("")
    for outcome in list(dict.fromkeys(c.outcome for c in rest)):
        lines.append(f"### {outcome}")
        lines.append("")
        mine = [c for c in rest if c.outcome == outcome]
        for c in mine:
            if c.kind == "studies_added":
                lines.append(f"- Studies added: {', '.join(c.new)}")
            elif c.kind == "studies_removed":
                lines.append(f"- Studies removed: {', '.join(c.old)}")
            elif c.kind == "k" and c.model is None:
                lines.append(f"- Trials pooled (k): {c.old} → {c.new}")
            elif c.kind == "outcome_added":
                lines.append(f"- New outcome (k = {c.new})")
            elif c.kind == "outcome_removed":
                lines.append(f"- Outcome no longer analysed (k was {c.old})")
        table = [c for c in mine if c.model is not None]
        if table:
            lines += ["", "| model | quantity | before | after | change |",
                      "|---|---|---|---|---|"]
            for c in table:
                if c.kind == "parameter":
                    before, after = _fmt_summary(c.old), _fmt_summary(c.new)
                    delta = "–" if c.delta is None else f"{c.delta:+.3g} (mean)"
                else:
                    before, after = _fmt(c.old), _fmt(c.new)
                    delta = "–" if c.delta is None else f"{c.delta:+.3g}"
                    if c.kind == "model_status" and c.note:
                        after += f" ({c.note})"
                lines.append(f"| {c.model} | {c.quantity} | {before} | {after} | {delta} |")
        lines.append("")
    lines.append(f"_Changes smaller than Monte Carlo noise are not listed: a parameter's mean "
                 f"must move by more than {tol.mean_sd:g} posterior SD, an interval limit by "
                 f"more than {tol.interval_sd:g} SD, a probability by more than "
                 f"{tol.probability:g}; a verdict change within that noise is not flagged._")
    return "\n".join(lines) + "\n"


def _version_key(v: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in v.replace("-", ".").split("."))


def latest_release(releases_dir: Path | str, base: str) -> tuple[str, Path] | None:
    """The newest saved release bundle of a base: ``(data_version, path)`` or ``None``.

    Releases are saved as ``releases/<data-version>/<base>/results.json`` (see
    ``docs/releasing.md``); versions are compared numerically part by part.
    """
    root = Path(releases_dir)
    if not root.is_dir():
        return None
    found = [(d.name, d / base / "results.json") for d in root.iterdir()
             if (d / base / "results.json").is_file()]
    if not found:
        return None
    return max(found, key=lambda t: _version_key(t[0]))


def changes_since_release(new: dict, releases_dir: Path | str, *,
                          tol: Tolerance | None = None) -> str:
    """The "what changed" Markdown section of one bundle against the latest saved release.

    Parameters
    ----------
    new
        The current results bundle (it names its ``evidence_base``).
    releases_dir
        The ``releases`` folder.
    tol
        Reporting thresholds.
    """
    base = str(new.get("evidence_base", ""))
    rel = latest_release(releases_dir, base)
    if rel is None:
        return ("## What changed\n\nNo previous release of this evidence base is saved in "
                f"{Path(releases_dir).name}/, so there is nothing to compare with.\n")
    version, path = rel
    old = json.loads(path.read_text(encoding="utf-8"))
    old = old.get("bundle", old)  # a report's results.json wraps the results bundle
    return changes_markdown(compare_bundles(old, new, tol=tol), since=version, tol=tol)


# ==============================================================================================
# Value of one more trial
# ==============================================================================================

def posterior_from_bundle(bundle: dict, outcome: str) -> ExactPosterior | None:
    """Rebuild the exact random-effects posterior of an outcome from a results bundle.

    Uses the trials' ``yi``/``sei`` in ``outcomes[outcome].studies`` and the outcome's priors
    in ``spec`` (``tau_prior``, ``mu_prior_sd``): the same inputs as the bundle's ``exact``
    model. Returns ``None`` when the outcome has no pooled trial.
    """
    from nutrimeta.sensitivity import tau_prior
    from nutrimeta.spec import TauPriorSpec

    studies = bundle.get("outcomes", {}).get(outcome, {}).get("studies", [])
    if not studies:
        return None
    o = next(x for x in bundle["spec"]["outcomes"] if x["id"] == outcome)
    prior = tau_prior(TauPriorSpec(**o["tau_prior"]))
    return exact_posterior([s["yi"] for s in studies], [s["sei"] for s in studies], prior,
                           mu_prior=(0.0, float(o["mu_prior_sd"])),
                           labels=[str(s["study_id"]) for s in studies])


def _beyond(mean: np.ndarray, sd: np.ndarray, c: float, sign: float) -> np.ndarray:
    """``P(sign * mu > c)`` for normals ``N(mean, sd^2)``."""
    return special.ndtr((sign * mean - c) / sd)


def _with_trial(post: ExactPosterior, y_new: np.ndarray, se: float, mid: float, sign: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """``P(sign * mu > 0)`` and ``P(sign * mu > mid)`` after adding one trial ``(y, se)``.

    Exact on the quadrature of ``post``: each ``tau`` node is reweighted by the new trial's
    predictive density ``N(y; m, v + tau^2 + se^2)`` and ``mu | tau`` updated conjugately.
    Vectorised over the values in ``y_new``.
    """
    tau2 = np.exp(2.0 * post.nodes_t)
    m = post.cond.mean[:, 0]
    v = post.cond.cov[:, 0, 0]
    logw = np.log(np.maximum(post.weights, 1e-300))
    s2 = tau2 + se**2  # variance of the new trial's estimate given mu and tau
    pred_var = v + s2
    prec = 1.0 / v + 1.0 / s2
    post_sd = 1.0 / np.sqrt(prec)
    y_all = np.atleast_1d(np.asarray(y_new, dtype=float))
    p_ben, p_mid = np.empty(y_all.size), np.empty(y_all.size)
    chunk = max(1, 2_000_000 // max(tau2.size, 1))
    for start in range(0, y_all.size, chunk):
        y = y_all[start:start + chunk, None]
        lw = logw - 0.5 * np.log(pred_var) - 0.5 * (y - m) ** 2 / pred_var
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        mean = (m / v + y / s2) / prec
        p_ben[start:start + chunk] = (w * _beyond(mean, post_sd, 0.0, sign)).sum(axis=1)
        p_mid[start:start + chunk] = (w * _beyond(mean, post_sd, abs(mid), sign)).sum(axis=1)
    return p_ben, p_mid


def next_trial_value(post: ExactPosterior, n_per_arm: int, sd: float, mid: float,
                     beneficial: str, *, n_sims: int = 2000,
                     rng: np.random.Generator) -> dict[str, float]:
    """How much one more two-arm trial of a given size would settle the pooled effect.

    Simulates from the posterior predictive: ``(tau, mu)`` from the posterior, the new
    trial's true effect ``theta ~ N(mu, tau^2)``, its observed mean difference
    ``y ~ N(theta, se^2)`` with ``se = sd * sqrt(2 / n_per_arm)``; then the exact posterior
    with that trial added. The update is exact on the quadrature of ``post``: given ``tau``
    the model is conjugate, so the new trial reweights each ``tau`` node by
    ``N(y; m(tau), v(tau) + tau^2 + se^2)`` and updates ``mu | tau`` in closed form (the same
    numbers as :func:`~nutrimeta.models.exact.exact_posterior` on ``k + 1`` trials, without
    re-running it; a few milliseconds for thousands of simulations).

    Parameters
    ----------
    post
        Exact posterior of the plain random-effects model (no moderators).
    n_per_arm
        Participants per arm of the hypothetical trial.
    sd
        Per-participant SD of the outcome (in the unit of the pooled effect).
    mid
        Minimal important difference (positive, in the same unit).
    beneficial
        ``"increase"`` or ``"decrease"``: the direction a benefit takes.
    n_sims
        Number of simulated trials.
    rng
        Random generator (pass a seeded one for reproducible output).

    Returns
    -------
    dict
        ``p_benefit_now``/``p_mid_now`` (current posterior), ``expected_p_benefit`` and
        ``expected_p_mid`` (mean over simulated trials of the updated ``P(mu beyond 0)`` and
        ``P(mu beyond MID)`` in the beneficial direction), ``p_supported`` and
        ``p_supported_mid`` (share of simulations in which that probability reaches
        :data:`SUPPORTED`), ``mc_se`` (Monte Carlo SE of ``p_supported``), ``n_per_arm``,
        ``se``, ``n_sims``.
    """
    if post.p != 1:
        raise ValueError("next_trial_value needs the plain random-effects posterior")
    if beneficial not in ("increase", "decrease"):
        raise ValueError("beneficial must be 'increase' or 'decrease'")
    if not (n_per_arm >= 1 and sd > 0 and n_sims >= 1):
        raise ValueError("n_per_arm, sd and n_sims must be positive")
    sign = 1.0 if beneficial == "increase" else -1.0
    se = float(sd) * math.sqrt(2.0 / n_per_arm)
    draws = post.sample(n_sims, rng)
    y_new = draws["theta_new"] + se * rng.standard_normal(n_sims)

    p_ben, p_mid = _with_trial(post, y_new, se, mid, sign)
    mu = post.mu
    now_ben = mu.prob_gt(0.0) if sign > 0 else 1.0 - mu.prob_gt(0.0)
    now_mid = mu.prob_gt(abs(mid)) if sign > 0 else 1.0 - mu.prob_gt(-abs(mid))
    p_sup = float(np.mean(p_ben >= SUPPORTED))
    return {
        "n_per_arm": int(n_per_arm), "se": se, "n_sims": int(n_sims),
        "p_benefit_now": float(now_ben), "p_mid_now": float(now_mid),
        "expected_p_benefit": float(p_ben.mean()), "expected_p_mid": float(p_mid.mean()),
        "p_supported": p_sup, "p_supported_mid": float(np.mean(p_mid >= SUPPORTED)),
        "mc_se": math.sqrt(p_sup * (1.0 - p_sup) / n_sims),
    }


def next_trial_curve(post: ExactPosterior, sizes: Sequence[int], sd: float, mid: float,
                     beneficial: str, *, n_sims: int = 2000, seed: int = 0
                     ) -> list[dict[str, float]]:
    """:func:`next_trial_value` for several trial sizes, with common random numbers.

    The same seed is used for every size, so differences between sizes are not Monte Carlo
    noise. One row per size, for a table or a plot in the report.
    """
    return [next_trial_value(post, int(n), sd, mid, beneficial, n_sims=n_sims,
                             rng=np.random.default_rng(seed)) for n in sizes]
