"""Read one curated CSV file as text, then type it column by column (stage 1, first half).

The whole file is read before anything is typed, so that a file that cannot be read whole (not
UTF-8, empty, separated by semicolons or tabs, a header with an empty column) gives one located
problem instead of a cascade, and a malformed number is reported as such rather than silently
turned into a missing value.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from nutrimeta.problems import Problem
from nutrimeta.schema import Column, Table

#: Largest magnitude accepted in any numeric cell: no count, level, dose or spread recorded
#: here comes near it, so a larger number is a typo, an overflow or a unit slip.
LARGEST_NUMBER = 1e9
#: Cell texts that stand for "not available"; the schema wants an empty cell instead.
MISSING_MARKERS = frozenset({"na", "n/a", "nan", "nr", "n.r.", "nd", "n.d.", "none", "null",
                             "-", "--", "\u2013", "\u2014", "?", ".", "ns", "n.s."})
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")
_EXCEL_HINT = ("save it as 'CSV UTF-8 (Comma delimited)' with '.' as the decimal separator "
               "(in Excel set File > Options > Advanced > 'Use system separators' off, "
               "decimal '.', thousands none), or convert it with LibreOffice/csvkit")


def _empty_frame(table: Table) -> pd.DataFrame:
    empty = pd.DataFrame({c.name: pd.Series(dtype=_dtype(c)) for c in table.columns})
    empty["_file"] = pd.Series(dtype="string")
    empty["_row"] = pd.Series(dtype="int64")
    return empty


def _decode(data: bytes, label: str, *, table: bool = True
            ) -> tuple[str | None, Problem | None]:
    """UTF-8 text of a file (a leading byte-order mark dropped), or one located problem.

    For a CSV table (``table``) the problem names the column the bad byte falls in.
    """
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        prefix = data[start:exc.start].decode("utf-8", errors="replace")
        column = None
        if table and line > 1:
            header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip("\r")
            names = next(csv.reader([header]), [])
            index = len(next(csv.reader([prefix]), [""])) - 1 if prefix else 0
            column = names[index] if index < len(names) else None
        byte = data[exc.start:exc.start + 1]
        return None, Problem(label, line, column, (
            f"not UTF-8 text: byte 0x{byte.hex().upper()} at character {len(prefix) + 1} of "
            f"the line (in Windows-1252/latin-1 it would be {byte.decode('cp1252', 'replace')!r});"
            f" save the file as UTF-8{' (CSV UTF-8 in Excel)' if table else ''}; nothing else "
            "in this file was checked"))


def _split_rows(text: str, label: str, width: int, padded: int = 0
                ) -> tuple[list[list[str]], list[int], list[Problem], bool]:
    """Data rows of a comma-separated text (blank lines skipped) with their first line numbers.

    A row with more or fewer fields than the header is reported and left out: its values
    would sit in the wrong columns (a trailing comma cannot be told from a stray comma before
    an empty last field). When the header itself ends in ``padded`` empty names (trailing
    commas, reported once by the caller), rows padded the same way are trimmed silently. The
    flag says whether any row was left out.
    """
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    dropped = False
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    next(reader)
    last = reader.line_num
    try:
        for fields in reader:
            first, last = last + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            n = len(fields)
            if n > width and n <= padded and not any(f.strip() for f in fields[width:]):
                fields = fields[:width]  # the header's trailing commas, repeated on the row
                n = width
            if n != width:
                hint = ("remove the trailing comma at the end of the row (or a stray comma "
                        "inside it)" if n > width and not any(f.strip() for f in fields[width:])
                        else "a missing or stray comma (or an unquoted comma inside a value) "
                        "shifts the columns; quote values that contain commas")
                problems.append(Problem(label, first, None, (
                    f"{n} fields but the header has {width}: {hint}; the row was not "
                    "checked further")))
                dropped = True
                continue
            rows.append(fields)
            lines.append(first)
    except csv.Error as exc:
        problems.append(Problem(label, reader.line_num, None, f"cannot be parsed as CSV: {exc}"))
        dropped = True
    return rows, lines, problems, dropped


def _delimiter_problem(header: list[str], first_line: str, table: Table,
                       label: str) -> Problem | None:
    """One problem when the header is not a comma-separated list of known column names."""
    known = set(table.column_names)
    if any(h.strip() in known for h in header):
        return None
    for delimiter, name, origin in (
            (";", "semicolons", "as Excel writes where the decimal separator is a comma"),
            ("\t", "tabs", "as Excel's 'Text (Tab delimited)' or a copied sheet gives")):
        if sum(part.strip().strip('"') in known for part in first_line.split(delimiter)) >= 2:
            return Problem(label, 1, None, f"the file is separated by {name}, not commas "
                           f"({origin}): {_EXCEL_HINT}")
    return Problem(label, 1, None, "the header row names none of the columns of the data "
                   f"dictionary (expected {', '.join(table.column_names[:3])}, ...): is this "
                   "the right file?")


def _number_problem(text: str) -> str:
    if text.lower() in MISSING_MARKERS:
        return (f"not a number: {text!r} (leave the cell empty when a value is not reported, "
                "and say why in the notes)")
    if _DECIMAL_COMMA.match(text):
        return (f"not a number: {text!r} (a decimal comma or a thousands separator? write "
                "numbers with '.' as the decimal point and no thousands separator)")
    return f"not a number: {text!r}"


def read_table(path: Path, table: Table, label: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Read one curated CSV as text, then type it column by column, reporting bad cells.

    A file that cannot be read as a whole (not UTF-8, empty, not comma-separated, no known
    column) gives one problem and an empty frame with ``attrs["unreadable"]`` set, so that
    cross-table checks depending on it are skipped rather than reported row by row; the
    same flag is set when rows had to be left out.
    """
    data = path.read_bytes()
    decoded, problem = _decode(data, label)
    text = decoded or ""  # empty when undecodable; the problem is then reported instead
    if problem is None and not text.strip():
        problem = Problem(label, None, None, "the file is empty (no header row); restore it "
                          "from version control, or write at least the header row of the data "
                          "dictionary")
    header: list[str] = []
    if problem is None:
        first_line = text.splitlines()[0]
        header = [h.strip() for h in next(csv.reader([first_line]))]
        problem = _delimiter_problem(header, first_line, table, label)
    if problem is not None:
        empty = _empty_frame(table)
        empty.attrs["unreadable"] = True
        return empty, [problem]
    problems: list[Problem] = []
    if data.startswith(b"\xef\xbb\xbf"):
        problems.append(Problem(label, 1, None, "the file starts with a byte-order mark (as "
                                "Excel's 'CSV UTF-8' writes); it was read correctly, but save it "
                                "without one so that `nutrimeta add` can append to it",
                                "warning"))
    padded = len(header)
    while header and header[-1] == "":
        header.pop()
    if len(header) < padded:
        problems.append(Problem(label, 1, None, "the header row ends with a comma (an empty "
                                "column name); remove the trailing comma from the header and "
                                "from every row"))
    rows, lines, found, dropped = _split_rows(text, label, len(header), padded)
    problems += found
    raw = pd.DataFrame([[f if f != "" else None for f in r] for r in rows],
                       columns=header, dtype="string") if rows else \
        pd.DataFrame({h: pd.Series(dtype="string") for h in header})
    raw.index = pd.RangeIndex(len(raw))
    missing = [c for c in table.column_names if c not in raw.columns]
    unknown = [c for c in raw.columns if c not in table.column_names]
    for c in missing:
        problems.append(Problem(label, 1, c, "required column is missing from the header"))
    for c in unknown:
        problems.append(Problem(label, 1, c, "unknown column (not in the data dictionary)"))
    row_of = pd.Series(lines, index=raw.index, dtype="int64")
    typed = pd.DataFrame(index=raw.index)
    for col in table.columns:
        if col.name not in raw.columns:
            typed[col.name] = pd.Series(np.nan if col.type in ("number", "integer") else None,
                                        index=raw.index, dtype=_dtype(col))
            continue
        cells = raw[col.name]
        if isinstance(cells, pd.DataFrame):  # a column named twice in the header
            problems.append(Problem(label, 1, col.name, "column appears more than once in "
                                    "the header"))
            cells = cells.iloc[:, 0]
        text_col = cells.str.strip()
        if col.type in ("number", "integer"):
            values = pd.to_numeric(text_col, errors="coerce").astype("float64")
            for idx in raw.index[text_col.notna() & values.isna()]:
                problems.append(Problem(label, int(row_of[idx]), col.name,
                                        _number_problem(str(text_col[idx]))))
            infinite = values.notna() & ~np.isfinite(values)
            for idx in raw.index[infinite]:
                problems.append(Problem(label, int(row_of[idx]), col.name,
                                        f"not a finite number: {text_col[idx]!r}"))
            huge = np.isfinite(values) & (values.abs() > LARGEST_NUMBER)
            for idx in raw.index[huge]:
                problems.append(Problem(label, int(row_of[idx]), col.name, (
                    f"implausibly large number {text_col[idx]!r} (larger in magnitude than "
                    f"{LARGEST_NUMBER:g}): a typo, an overflow or a unit slip")))
            values = values.where(~(infinite | huge))
            if col.type == "integer":
                frac = values.notna() & (values != values.round())
                for idx in raw.index[frac]:
                    problems.append(Problem(label, int(row_of[idx]), col.name,
                                            f"not a whole number: {text_col[idx]!r}"))
                values = values.where(~frac)
            typed[col.name] = values
        else:
            typed[col.name] = text_col.astype("string")
    typed["_file"] = label
    typed["_row"] = row_of
    if dropped:
        typed.attrs["unreadable"] = True
    return typed, problems


def _dtype(col: Column) -> str:
    return "float64" if col.type in ("number", "integer") else "string"
