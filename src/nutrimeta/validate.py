"""Load and validate the curated evidence (stage 1 of the pipeline).

Every CSV is read as text first, so that a malformed number is reported as such rather than
silently turned into a missing value. Column checks come from :mod:`nutrimeta.schema` via
pandera; cross-table checks (unknown keys, unpaired arms, inconvertible units, implausible
spreads, ordered quantiles, CIs that exclude their estimate) are written here. All problems are
collected and reported at once, each naming the file, the row (the line number in the file; the
header is line 1) and the column.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import bibtexparser
import numpy as np
import pandas as pd
import pandera.pandas as pa

from nutrimeta.schema import EVIDENCE_BASES, MODERATOR_UNITS, OUTCOMES, TABLES, Column, Table

SEVERITIES = ("error", "warning")
SOURCE_ID = re.compile(r"^(\d+|10\.\S+/\S+|PMC\d+|url:\S+)$")


@dataclass(frozen=True)
class Problem:
    """One validation finding, located as precisely as possible."""

    file: str
    row: int | None
    column: str | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.column:
            where += f", column {self.column}"
        return f"{self.severity}: {where}: {self.message}"


class ProblemsMixin:
    """``errors`` and ``warnings`` views of a ``problems`` list."""

    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass
class Evidence(ProblemsMixin):
    """The curated tables of every evidence base, concatenated, with their origin.

    Each data frame has two extra columns, ``_file`` and ``_row``, locating every row in its
    source file so that later stages can point back to it.
    """

    data_dir: Path
    studies: pd.DataFrame
    results: pd.DataFrame
    syntheses: pd.DataFrame
    references: dict[str, dict[str, str]]
    problems: list[Problem] = field(default_factory=list)


class ValidationError(Exception):
    """Raised when curated data have errors; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} data error(s):\n" + "\n".join(str(p) for p in errors))


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

def _relative(path: Path, data_dir: Path) -> str:
    try:
        return str(Path(data_dir.name) / path.relative_to(data_dir))
    except ValueError:
        return path.name


def read_table(path: Path, table: Table, label: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Read one curated CSV as text, then type it column by column, reporting bad cells."""
    problems: list[Problem] = []
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                          encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        return pd.DataFrame(columns=table.column_names), [Problem(label, None, None,
                                                                  f"cannot be parsed: {exc}")]
    missing = [c for c in table.column_names if c not in raw.columns]
    unknown = [c for c in raw.columns if c not in table.column_names]
    for c in missing:
        problems.append(Problem(label, 1, c, "required column is missing from the header"))
    for c in unknown:
        problems.append(Problem(label, 1, c, "unknown column (not in the data dictionary)"))
    typed = pd.DataFrame(index=raw.index)
    for col in table.columns:
        if col.name not in raw.columns:
            typed[col.name] = pd.Series(np.nan if col.type in ("number", "integer") else None,
                                        index=raw.index, dtype=_dtype(col))
            continue
        text = raw[col.name].str.strip()
        if col.type in ("number", "integer"):
            values = pd.to_numeric(text, errors="coerce")
            bad = text.notna() & values.isna()
            for idx in raw.index[bad]:
                problems.append(Problem(label, int(idx) + 2, col.name,
                                        f"not a number: {text[idx]!r}"))
            if col.type == "integer":
                frac = values.notna() & (values != values.round())
                for idx in raw.index[frac]:
                    problems.append(Problem(label, int(idx) + 2, col.name,
                                            f"not a whole number: {text[idx]!r}"))
                values = values.where(~frac)
            typed[col.name] = values.astype("float64")
        else:
            typed[col.name] = text.astype("string")
    typed["_file"] = label
    typed["_row"] = raw.index + 2
    return typed, problems


def _dtype(col: Column) -> str:
    return "float64" if col.type in ("number", "integer") else "string"


def _pandera_schema(table: Table) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for col in table.columns:
        checks: list[pa.Check] = []
        if col.enum is not None:
            checks.append(pa.Check.isin(list(col.enum), error=f"must be one of {list(col.enum)}"))
        if col.minimum is not None:
            checks.append(pa.Check.ge(col.minimum, error=f"must be >= {col.minimum}"))
        if col.maximum is not None:
            checks.append(pa.Check.le(col.maximum, error=f"must be <= {col.maximum}"))
        if col.pattern is not None:
            checks.append(pa.Check.str_matches(col.pattern,
                                               error=f"must match the pattern {col.pattern}"))
        columns[col.name] = pa.Column(_dtype(col), checks=checks, nullable=not col.required,
                                      unique=col.unique, required=False)
    return pa.DataFrameSchema(columns, strict=False)


def check_columns(df: pd.DataFrame, table: Table) -> list[Problem]:
    """Column-level checks (required, enum, range, pattern, unique) with pandera."""
    problems: list[Problem] = []
    if df.empty:
        return problems
    schema = _pandera_schema(table)
    try:
        schema.validate(df.drop(columns=["_file", "_row"]), lazy=True)
    except pa.errors.SchemaErrors as exc:
        for _, fc in exc.failure_cases.iterrows():
            idx = fc["index"]
            column = fc["column"]
            check = str(fc["check"])
            if idx is None or (isinstance(idx, float) and np.isnan(idx)):
                continue
            row = df.loc[idx]
            value = fc["failure_case"]
            if check == "not_nullable":
                msg = "required value is missing"
            elif check == "field_uniqueness":
                msg = f"duplicate value {value!r} (must be unique)"
            else:
                col = table.column(column)
                rule = _rule_text(col, check)
                msg = f"value {value!r} {rule}"
            problems.append(Problem(row["_file"], int(row["_row"]), column, msg))
    return problems


def _rule_text(col: Column, check: str) -> str:
    if col.enum is not None and check.startswith("must be one of"):
        return f"is not allowed; must be one of: {', '.join(col.enum)}"
    if check.startswith("must be >=") and col.minimum == 0:
        return "is negative"
    return check


def read_bib(path: Path, label: str) -> tuple[dict[str, dict[str, str]], list[Problem]]:
    """Parse one BibTeX file; report unparsable blocks."""
    problems: list[Problem] = []
    library = bibtexparser.parse_string(path.read_text(encoding="utf-8"))
    entries: dict[str, dict[str, str]] = {}
    for block in library.failed_blocks:
        line = getattr(block, "start_line", None)
        problems.append(Problem(label, None if line is None else line + 1, None,
                                f"unparsable BibTeX entry: {type(block).__name__}"))
    for entry in library.entries:
        fields = {f.key.lower(): str(f.value) for f in entry.fields}
        fields["ENTRYTYPE"] = entry.entry_type
        fields["_file"] = label
        entries[entry.key] = fields
    return entries, problems


def load_evidence(data_dir: Path | str = "data") -> Evidence:
    """Read every evidence base under ``data_dir`` and validate it; never raises for bad data.

    The returned :class:`Evidence` carries all problems; call :func:`require_valid` to turn
    errors into an exception.
    """
    data_dir = Path(data_dir)
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    problems: list[Problem] = []
    references: dict[str, dict[str, str]] = {}
    bases = sorted(p for p in data_dir.iterdir() if p.is_dir() and (p / "studies.csv").exists())
    for base_dir in bases:
        if base_dir.name not in EVIDENCE_BASES:
            problems.append(Problem(_relative(base_dir, data_dir), None, None,
                                    f"folder is not a known evidence base "
                                    f"({', '.join(EVIDENCE_BASES)})"))
            continue
        for name, table in TABLES.items():
            path = base_dir / table.filename
            label = _relative(path, data_dir)
            if not path.exists():
                problems.append(Problem(label, None, None, "file is missing"))
                continue
            df, found = read_table(path, table, label)
            df["_base"] = base_dir.name
            frames[name].append(df)
            problems += found
        bib = base_dir / "references.bib"
        label = _relative(bib, data_dir)
        if bib.exists():
            entries, found = read_bib(bib, label)
            problems += found
            for key, entry in entries.items():
                if key in references:
                    problems.append(Problem(label, None, None, f"BibTeX key {key!r} is also "
                                            f"defined in {references[key]['_file']}"))
                references[key] = entry
        else:
            problems.append(Problem(label, None, None, "file is missing"))

    def concat(name: str) -> pd.DataFrame:
        table = TABLES[name]
        if not frames[name]:
            cols = {c.name: pd.Series(dtype=_dtype(c)) for c in table.columns}
            empty = pd.DataFrame(cols)
            empty["_file"] = pd.Series(dtype="string")
            empty["_row"] = pd.Series(dtype="int64")
            empty["_base"] = pd.Series(dtype="string")
            return empty
        return pd.concat(frames[name], ignore_index=True)

    evidence = Evidence(data_dir, concat("studies"), concat("results"), concat("syntheses"),
                        references, problems)
    absent = {(p.file, p.column) for p in problems if p.row == 1 and "missing from the header"
              in p.message}
    for name, table in TABLES.items():
        evidence.problems += [p for p in check_columns(getattr(evidence, name), table)
                              if (p.file, p.column) not in absent]
    evidence.problems += cross_checks(evidence)
    return evidence


def require_valid(evidence: Evidence) -> Evidence:
    """Raise :class:`ValidationError` listing every error, or return the evidence unchanged."""
    if evidence.errors:
        raise ValidationError(evidence.problems)
    return evidence


# ----------------------------------------------------------------------------------------------
# Cross-table checks
# ----------------------------------------------------------------------------------------------

def _at(row: pd.Series, column: str | None, message: str, severity: str = "error") -> Problem:
    return Problem(str(row["_file"]), int(row["_row"]), column, message, severity)


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) \
        and value is not pd.NA


def cross_checks(ev: Evidence) -> list[Problem]:
    """Checks that span rows or tables; see the module docstring for the list."""
    from nutrimeta import units  # local import: units loads pint, only needed here

    out: list[Problem] = []
    studies, results, syntheses = ev.studies, ev.results, ev.syntheses
    known = set(studies["study_id"].dropna())
    study_by_id = {r.study_id: r for r in studies.itertuples() if _present(r.study_id)}

    # studies -------------------------------------------------------------------------------
    for _, row in studies.iterrows():
        if _present(row["evidence_base"]) and row["evidence_base"] != row["_base"]:
            out.append(_at(row, "evidence_base", f"{row['evidence_base']!r} does not match the "
                           f"folder {row['_base']!r}"))
        if _present(row["citation_key"]) and row["citation_key"] not in ev.references:
            out.append(_at(row, "citation_key", f"{row['citation_key']!r} is not in any "
                           "references.bib"))
        if row["inclusion_status"] in ("not_poolable", "separate", "excluded") and not _present(
                row["inclusion_reason"]):
            out.append(_at(row, "inclusion_reason",
                           f"a reason is required when inclusion_status is "
                           f"{row['inclusion_status']!r}"))
        if _present(row["overlap_with"]) and row["overlap_with"] not in known:
            out.append(_at(row, "overlap_with", f"unknown study_id {row['overlap_with']!r}"))
        if _present(row["baseline_status_value"]):
            unit = row["baseline_status_unit"]
            nutrient = row["nutrient"]
            if not _present(unit):
                out.append(_at(row, "baseline_status_unit",
                               "baseline_status_value is given without its unit"))
            elif _present(nutrient) and not units.can_convert(
                    unit, MODERATOR_UNITS[nutrient], nutrient):
                out.append(_at(row, "baseline_status_unit",
                               f"unit {unit!r} cannot be converted to "
                               f"{MODERATOR_UNITS[nutrient]} for {nutrient}"))
        if (_present(row["evidence_base"]) and _present(row["nutrient"])
                and row["evidence_base"] in EVIDENCE_BASES
                and EVIDENCE_BASES[row["evidence_base"]]["nutrient"] != row["nutrient"]):
            out.append(_at(row, "nutrient", f"{row['nutrient']!r} is not the nutrient of "
                           f"{row['evidence_base']}"))
    dup_pmid = studies[studies["pmid"].notna() & studies.duplicated("pmid", keep=False)]
    for _, row in dup_pmid.iterrows():
        others = studies[(studies["pmid"] == row["pmid"]) & (studies.index != row.name)]
        linked = any((_present(row["overlap_with"]) and row["overlap_with"] == o)
                     or (_present(o_ov) and o_ov == row["study_id"])
                     for o, o_ov in zip(others["study_id"], others["overlap_with"], strict=True))
        if not linked:
            out.append(_at(row, "pmid", f"PMID {row['pmid']} is recorded for another study "
                           "too; link duplicate reports with overlap_with", "warning"))

    # results -------------------------------------------------------------------------------
    key_cols = list(TABLES["results"].primary_key)
    keyed = results[key_cols].astype("string").fillna("")
    for idx in results.index[keyed.duplicated(keep="first")] if len(results) else []:
        row = results.loc[idx]
        out.append(_at(row, None, "duplicate row: same study, outcome, arm, time point, value "
                       "type, week and subgroup as an earlier row"))
    for _, row in results.iterrows():
        sid = row["study_id"]
        if _present(sid) and sid not in known:
            out.append(_at(row, "study_id", f"unknown study_id {sid!r} (not in any "
                           "studies.csv)"))
            continue
        study = study_by_id.get(sid)
        if (study is not None and _present(row["outcome"]) and row["outcome"] in OUTCOMES
                and OUTCOMES[row["outcome"]]["base"] != study.evidence_base
                and not row["outcome"].startswith("serum_")):
            out.append(_at(row, "outcome", f"outcome {row['outcome']!r} does not belong to "
                               f"the evidence base {study.evidence_base!r}", "warning"))
        out += _check_numbers(row, units)
    out += _check_pairing(results, study_by_id)

    # syntheses -----------------------------------------------------------------------------
    for _, row in syntheses.iterrows():
        if _present(row["citation_key"]) and row["citation_key"] not in ev.references:
            out.append(_at(row, "citation_key", f"{row['citation_key']!r} is not in any "
                           "references.bib"))
        lo, est, hi = row["ci_lower"], row["estimate"], row["ci_upper"]
        if _present(lo) and _present(hi) and _present(est) and not lo <= est <= hi:
            out.append(_at(row, "estimate", f"the CI [{lo}, {hi}] does not contain the "
                           f"estimate {est}"))
    return out


def _check_numbers(row: pd.Series, units) -> list[Problem]:
    out: list[Problem] = []
    g = row.get
    # quantiles must be ordered
    order = [(c, g(c)) for c in ("min", "q1", "median", "q3", "max") if _present(g(c))]
    for (c1, v1), (c2, v2) in itertools.pairwise(order):
        if v1 > v2:
            out.append(_at(row, c2, f"{c1} ({v1}) > {c2} ({v2}): expected "
                           "min <= q1 <= median <= q3 <= max"))
    lo, hi = g("ci_lower"), g("ci_upper")
    if _present(lo) and _present(hi):
        if lo > hi:
            out.append(_at(row, "ci_lower", f"ci_lower ({lo}) > ci_upper ({hi})"))
        centre = g("mean") if _present(g("mean")) else g("geometric_mean")
        if _present(centre) and not lo <= centre <= hi:
            out.append(_at(row, "ci_lower", f"the CI [{lo}, {hi}] does not contain its "
                           f"estimate {centre}"))
    elif _present(lo) != _present(hi):
        out.append(_at(row, "ci_upper" if _present(lo) else "ci_lower",
                       "a confidence interval needs both limits"))
    if _present(g("p_value_qualifier")) and not _present(g("p_value")):
        out.append(_at(row, "p_value", "p_value_qualifier is given without a p_value"))
    unit, outcome = g("unit"), g("outcome")
    has_numbers = any(_present(g(c)) for c in ("mean", "median", "geometric_mean", "sd", "se"))
    if has_numbers and g("value_type") != "percent_change":
        if not _present(unit):
            out.append(_at(row, "unit", "numbers are given without their unit"))
        elif _present(outcome) and outcome in OUTCOMES:
            target = OUTCOMES[outcome]["unit"]
            if not units.can_convert(unit, target, outcome):
                out.append(_at(row, "unit", f"unit {unit!r} cannot be converted to {target} "
                               f"for {outcome}"))
    sd, mean = g("sd"), g("mean")
    if _present(sd) and _present(mean) and g("value_type") == "value" and mean > 0 \
            and sd > 3 * mean:
        out.append(_at(row, "sd", f"SD {sd} is more than 3 times the mean {mean}: implausible "
                       "for a level (a variance, an SE mislabel or a typo?)", "warning"))
    if _present(sd) and sd == 0 and _present(g("n")) and g("n") > 1:
        out.append(_at(row, "sd", "SD of 0 with n > 1", "warning"))
    for col in ("source_id",):
        v = g(col)
        if _present(v) and not SOURCE_ID.match(str(v)):
            out.append(_at(row, col, f"{v!r} is not a PMID (digits), a DOI (10.x/...), a PMCID "
                           "(PMC digits) or, for a source with none of these, url:<address>"))
    return out


def _check_pairing(results: pd.DataFrame, study_by_id: dict) -> list[Problem]:
    """Intervention rows of a controlled design should have a matching control row."""
    out: list[Problem] = []
    controlled = {"parallel_rct", "crossover_rct", "controlled_nonrandomised"}
    keys = ["study_id", "outcome", "subgroup", "timepoint", "value_type", "week"]
    if results.empty:
        return out
    res = results.copy()
    res["_k"] = res[keys].astype("string").fillna("").agg("|".join, axis=1)
    arms_by_key = res.groupby("_k")["arm"].agg(lambda s: set(s.dropna()))
    for _, row in res[res["arm"] == "intervention"].iterrows():
        study = study_by_id.get(row["study_id"])
        if study is None or study.design not in controlled:
            continue
        if study.inclusion_status != "included":
            continue
        if "control" not in arms_by_key[row["_k"]]:
            out.append(_at(row, "arm", "intervention row has no control row with the same "
                           "outcome, subgroup, time point, value type and week", "warning"))
    for _, row in res[res["arm"] == "single_arm"].iterrows():
        study = study_by_id.get(row["study_id"])
        if study is not None and study.design in controlled:
            out.append(_at(row, "arm", f"arm 'single_arm' in a {study.design} study"))
    return out


# ----------------------------------------------------------------------------------------------
# Hashing
# ----------------------------------------------------------------------------------------------

def data_files(data_dir: Path | str = "data") -> list[Path]:
    """The curated files whose content defines the data version (sorted, reproducible)."""
    data_dir = Path(data_dir)
    files = []
    for base in sorted(EVIDENCE_BASES):
        for name in [t.filename for t in TABLES.values()] + ["references.bib"]:
            p = data_dir / base / name
            if p.exists():
                files.append(p)
    return files


def data_hash(data_dir: Path | str = "data", bases: list[str] | None = None) -> str:
    """SHA-256 over the curated files (names and bytes), optionally for some bases only."""
    data_dir = Path(data_dir)
    h = hashlib.sha256()
    for p in data_files(data_dir):
        base = p.parent.name
        if bases is not None and base not in bases:
            continue
        h.update(f"{base}/{p.name}\n".encode())
        h.update(p.read_bytes())
    return h.hexdigest()
