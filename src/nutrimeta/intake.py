"""Intake: add one trial report to the curated data (``nutrimeta add``).

A record is one trial report: a ``studies.csv`` row, its ``results.csv`` rows and, if its
reference is new, a BibTeX entry (:func:`load_record`, :func:`prompt_record`). It is checked by
writing the would-be files into a temporary copy of the data folder and running the validator
(:func:`nutrimeta.validate.load_evidence`) there, plus the checks only an addition needs
(duplicate ``study_id``, a PMID or DOI already recorded, a possibly overlapping cohort). Only
then are the new rows *appended* (:func:`add_record`): every existing byte of every file stays
as it was, and the changed files are switched all together or not at all
(:mod:`nutrimeta.transaction`).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pandas as pd
import yaml

from nutrimeta.problems import Problem, ProblemsMixin
from nutrimeta.schema import EVIDENCE_BASES, OUTCOMES, RESULTS, STUDIES, Column, Table
from nutrimeta.strict_yaml import read_document
from nutrimeta.transaction import TransactionError, commit_files
from nutrimeta.validate import Evidence, load_evidence

__all__ = ["AddOutcome", "NewRecord", "add_record", "load_record", "prompt_record"]

Ask = Callable[..., Any]
#: Years either side of a recorded report by the same first author that suggest the same cohort.
OVERLAP_YEARS = 2
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
    from nutrimeta.effect_table import effects_for_spec
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
