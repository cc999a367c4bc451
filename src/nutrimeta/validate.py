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

from nutrimeta.csv_reading import _decode, _dtype, _empty_frame, read_table
from nutrimeta.problems import Problem, ProblemsMixin, ValidationError
from nutrimeta.schema import EVIDENCE_BASES, MODERATOR_UNITS, OUTCOMES, TABLES, Column, Table

SOURCE_ID = re.compile(r"^(\d+|10\.\S+/\S+|PMC\d+|url:\S+)$")


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
    #: Tables ("studies", "results", "syntheses", "references") of which some file could not
    #: be read whole; checks that look rows up in them are skipped.
    unreadable: set[str] = field(default_factory=set)
    #: Risk of bias by domain (``risk_of_bias.csv``; optional per evidence base).
    risk_of_bias: pd.DataFrame = field(
        default_factory=lambda: _empty_frame(TABLES["risk_of_bias"]).assign(
            _base=pd.Series(dtype="string")))


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

#: A p-value recorded as an upper bound ('<') is a significance threshold; larger bounds
#: ('p < 0.95') say nothing usable and are rejected.
LARGEST_P_THRESHOLD = 0.10

def _relative(path: Path, data_dir: Path) -> str:
    try:
        return str(Path(data_dir.name) / path.relative_to(data_dir))
    except ValueError:
        return path.name


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
    text, problem = _decode(path.read_bytes(), label, table=False)
    if problem is not None or text is None:
        return {}, [problem] if problem is not None else []
    problems: list[Problem] = []
    library = bibtexparser.parse_string(text)
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
    unreadable: dict[str, list[str]] = {}
    if not data_dir.is_dir():
        problems.append(Problem(str(data_dir), None, None, "data folder does not exist"))
        studies, results, syntheses = (_empty_frame(TABLES[n]).assign(_base=pd.Series(
            dtype="string")) for n in ("studies", "results", "syntheses"))
        return Evidence(data_dir, studies, results, syntheses, {}, problems)
    problems += _finish_interrupted_add(data_dir)
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
                if table.required_file:
                    problems.append(Problem(label, None, None, "file is missing"))
                continue
            df, found = read_table(path, table, label)
            if df.attrs.get("unreadable"):
                unreadable.setdefault(name, []).append(label)
            df["_base"] = base_dir.name
            frames[name].append(df)
            problems += found
        bib = base_dir / "references.bib"
        label = _relative(bib, data_dir)
        if bib.exists():
            entries, found = read_bib(bib, label)
            if any(p.message.startswith("not UTF-8") for p in found):
                unreadable.setdefault("references", []).append(label)
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
                        references, problems, set(unreadable),
                        risk_of_bias=concat("risk_of_bias"))
    absent = {(p.file, p.column) for p in problems if p.row == 1 and "missing from the header"
              in p.message}
    flagged = {(p.file, p.row, p.column) for p in problems}
    for name, table in TABLES.items():
        evidence.problems += [p for p in check_columns(getattr(evidence, name), table)
                              if (p.file, p.column) not in absent
                              and (p.file, p.row, p.column) not in flagged]
    for name, labels in unreadable.items():
        if name in _DEPENDENT_CHECKS:
            evidence.problems.append(Problem(", ".join(labels), None, None, (
                f"checks that look rows up in this file ({_DEPENDENT_CHECKS[name]}) were "
                "skipped because it could not be read whole"), "warning"))
    evidence.problems += cross_checks(evidence)
    return evidence


#: Cross-table checks skipped when a file of the table could not be read whole.
_DEPENDENT_CHECKS = {
    "studies": "unknown study_id, overlap_with, included studies without results",
    "results": "included studies without results",
    "references": "citation keys not in references.bib",
    "risk_of_bias": "risk-of-bias study ids, domains and overall judgements",
}


def _finish_interrupted_add(data_dir: Path) -> list[Problem]:
    """Complete or undo an addition that was interrupted (see :mod:`nutrimeta.transaction`)."""
    from nutrimeta.transaction import TransactionError, recover

    try:
        note = recover(data_dir)
    except TransactionError as exc:
        return [Problem(str(data_dir), None, None, str(exc))]
    return [] if note is None else [Problem(str(data_dir), None, None, note, "warning")]


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
        if _present(row["citation_key"]) and row["citation_key"] not in ev.references \
                and "references" not in ev.unreadable:
            out.append(_at(row, "citation_key", f"{row['citation_key']!r} is not in any "
                           "references.bib"))
        if _present(row["inclusion_status"]) and row["inclusion_status"] in (
                "not_poolable", "separate", "excluded") and not _present(
                row["inclusion_reason"]):
            out.append(_at(row, "inclusion_reason",
                           f"a reason is required when inclusion_status is "
                           f"{row['inclusion_status']!r}"))
        if _present(row["overlap_with"]) and row["overlap_with"] not in known \
                and "studies" not in ev.unreadable:
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
            if "studies" in ev.unreadable:
                continue
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
        out += _check_plausible(row, units)
    out += _check_pairing(results, study_by_id)

    if not {"studies", "results"} & ev.unreadable:
        out += _check_studies_have_results(studies, results)

    # risk of bias ---------------------------------------------------------------------------
    if not {"studies", "risk_of_bias"} & ev.unreadable:
        from nutrimeta.risk_of_bias import check_risk_of_bias

        out += check_risk_of_bias(ev.risk_of_bias, studies)
    for _, row in ev.risk_of_bias.iterrows():
        v = row["source_id"]
        if _present(v) and not SOURCE_ID.match(str(v)):
            out.append(_at(row, "source_id", f"{v!r} is not a PMID (digits), a DOI (10.x/...), "
                           "a PMCID (PMC digits) or, for a source with none of these, "
                           "url:<address>"))

    # syntheses -----------------------------------------------------------------------------
    for _, row in syntheses.iterrows():
        if _present(row["citation_key"]) and row["citation_key"] not in ev.references \
                and "references" not in ev.unreadable:
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
    for col, what in (("sd", "SD"), ("se", "SE")):
        if _present(g(col)) and g(col) == 0:
            out.append(_at(row, col, f"{what} of 0: a spread of zero cannot be pooled (it would "
                           "give the row infinite weight); leave the cell empty if it was not "
                           "reported, or check the digits"))
    for col in ("mean", "geometric_mean"):
        v, lo, hi = g(col), g("min"), g("max")
        if _present(v) and ((_present(lo) and v < lo) or (_present(hi) and v > hi)):
            out.append(_at(row, col, f"{col} ({v}) lies outside its own range [min, max] = "
                           f"[{lo if _present(lo) else ''}, {hi if _present(hi) else ''}]"))
    if _present(g("timepoint")) and _present(g("value_type")) and g("timepoint") == "baseline" \
            and g("value_type") in ("change", "percent_change", "difference"):
        out.append(_at(row, "value_type", f"a baseline row cannot hold a {g('value_type')!r}: "
                       "changes and differences are measured at follow-up (set timepoint to "
                       "follow_up and give its week)"))
    p, qualifier = g("p_value"), g("p_value_qualifier")
    if _present(qualifier) and qualifier == "<" and _present(p) and p > LARGEST_P_THRESHOLD:
        out.append(_at(row, "p_value", f"'p < {p}' cannot be a significance threshold (an upper "
                       f"bound must be at most {LARGEST_P_THRESHOLD}); if the report prints it, "
                       "leave p_value empty, keep the text in extraction_notes and record "
                       "direction"))
    for col in ("source_id",):
        v = g(col)
        if _present(v) and not SOURCE_ID.match(str(v)):
            out.append(_at(row, col, f"{v!r} is not a PMID (digits), a DOI (10.x/...), a PMCID "
                           "(PMC digits) or, for a source with none of these, url:<address>"))
    return out


def _check_plausible(row: pd.Series, units) -> list[Problem]:
    """Unit plausibility of a level or a change (see :mod:`nutrimeta.plausibility`)."""
    from nutrimeta import plausibility

    outcome, unit, value_type = row.get("outcome"), row.get("unit"), row.get("value_type")
    if not (_present(outcome) and _present(unit) and _present(value_type)) \
            or outcome not in OUTCOMES or value_type == "percent_change":
        return []
    target = OUTCOMES[outcome]["unit"]
    try:
        factor = units.conversion_factor(unit, target, outcome)
    except units.UnitConversionError:
        return []  # reported by _check_numbers
    out: list[Problem] = []
    for col in ("mean", "median", "geometric_mean"):
        v = row.get(col)
        if not _present(v):
            continue
        if value_type == "value":
            verdict = plausibility.check_level(outcome, v * factor)
        else:
            verdict = plausibility.check_change(outcome, v * factor)
        if verdict.severity is not None:
            out.append(_at(row, col, f"{col} {v} {unit}: {verdict.message}", verdict.severity))
    return out


#: Words with which a study's reason or notes explain why it has no result rows.
_NO_RESULTS_EXPLAINED = re.compile(
    r"\b(no|not|without|only|none)\b[^.;]{0,120}\b(numbers?|results?|values?|rows?|data|"
    r"read|printed|reported|found|entered|recorded)\b|"
    r"\b(numbers?|results?|values?)\b[^.;]{0,60}\b(no|not|only|none)\b|"
    r"truncated|stops before|protocol|duplicate|preliminary", re.IGNORECASE)


def _check_studies_have_results(studies: pd.DataFrame, results: pd.DataFrame
                                ) -> list[Problem]:
    """An included study needs result rows; a study left without them should say why.

    A results.csv with a header but no rows (all rows lost) is one error for the file, not
    one per study.
    """
    out: list[Problem] = []
    with_rows = set(results["study_id"].dropna())
    empty_files = {base for base in studies["_base"].dropna().unique()
                   if not (results["_base"] == base).any()}
    for base in sorted(empty_files):
        included = studies[(studies["_base"] == base)
                           & (studies["inclusion_status"] == "included")]
        if len(included):
            label = str(included["_file"].iloc[0]).replace("studies.csv", "results.csv")
            out.append(Problem(label, None, None, (
                f"no result rows (a header only), but {len(included)} included "
                f"stud{'y' if len(included) == 1 else 'ies'} in studies.csv need them; "
                "restore the rows from version control")))
    unexplained: list[str] = []
    for _, row in studies.iterrows():
        sid = row["study_id"]
        if not _present(sid) or sid in with_rows or row["_base"] in empty_files:
            continue
        status = row["inclusion_status"]
        if not _present(status):
            continue
        if status == "included":
            out.append(_at(row, "inclusion_status", f"study {sid!r} is 'included' but has no "
                           "rows in results.csv: add its results, or set inclusion_status "
                           "to not_poolable/separate/excluded with a reason"))
        elif status in ("not_poolable", "separate"):
            said = " ".join(str(row[c]) for c in ("inclusion_reason", "notes")
                            if _present(row[c]))
            if not _NO_RESULTS_EXPLAINED.search(said):
                unexplained.append(f"{sid} ({row['_file']} row {int(row['_row'])})")
    if unexplained:
        out.append(Problem("studies.csv", None, "inclusion_reason", (
            "studies without result rows whose reason or notes do not say why there are none: "
            + ", ".join(unexplained)), "warning"))
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
        if not _present(study.inclusion_status) or study.inclusion_status != "included":
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
