"""Reference list of one evidence base: every study report with its PMID and DOI.

Entries come from the base's ``references.bib`` (read with bibtexparser, LaTeX decoded) joined to
``studies.csv`` on ``citation_key``; a PMID or DOI recorded in either is shown (the studies
table wins when both give one). Studies without a BibTeX entry are listed from ``studies.csv``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bibtexparser
import pandas as pd
from bibtexparser.middlewares import LatexDecodingMiddleware

__all__ = ["Reference", "read_bib", "reference_list"]


@dataclass(frozen=True)
class Reference:
    """One study report as listed in the report."""

    key: str
    study_ids: tuple[str, ...]
    text: str
    pmid: str
    doi: str
    url: str


def _clean(text: Any) -> str:
    """BibTeX field text (LaTeX already decoded to Unicode) without stray braces."""
    s = "" if text is None else str(text)
    return re.sub(r"\s+", " ", s.replace("{", "").replace("}", "")).strip()


def _cell(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    s = str(x).strip()
    return "" if s.lower() in ("nan", "<na>", "none") else s.removesuffix(".0")


#: Characters (and pairs) LaTeX decoding can change: a value without any is its own
#: decoding (backslash commands, groups, math, ligatures such as -- and quotes, special
#: characters, runs of white space).
_LATEX_SYNTAX = re.compile(r"""[\\{}$%&~#^_`'"<>!?]|--|\s\s|[\t\n\r]""")


class _PlainAwareLatexDecoding(LatexDecodingMiddleware):
    """LaTeX decoding that passes plain text through untouched (most fields are plain, and
    decoding parses each value with pylatexenc)."""

    def _transform_python_value_string(self, python_string: str) -> tuple[str, str]:
        if _LATEX_SYNTAX.search(python_string) is None:
            return python_string, ""
        return super()._transform_python_value_string(python_string)


def read_bib(path: Path | None) -> dict[str, dict[str, str]]:
    """Entries of a BibTeX file by key (fields as cleaned text); {} when there is no file."""
    if path is None or not Path(path).is_file():
        return {}
    lib = bibtexparser.parse_string(
        Path(path).read_text(encoding="utf-8"),
        append_middleware=[_PlainAwareLatexDecoding()])
    return {e.key: {"ENTRYTYPE": e.entry_type,
                    **{f.key.lower(): _clean(f.value) for f in e.fields}}
            for e in lib.entries}


def _authors(raw: str) -> str:
    names = [n.strip() for n in raw.split(" and ") if n.strip()]
    more = bool(names) and names[-1].lower() == "others"
    names = names[:-1] if more else names
    surnames = [n.split(",")[0].strip() if "," in n else n.split()[-1] for n in names]
    if not surnames:
        return ""
    return ", ".join(surnames[:3]) + (" et al." if more or len(surnames) > 3 else "")


def reference_list(studies: pd.DataFrame, bib: dict[str, dict[str, str]]) -> list[Reference]:
    """References sorted by first author and year, one per citation key."""
    by_key: dict[str, list[pd.Series]] = {}
    for _, row in studies.iterrows():
        key = _cell(row.get("citation_key")) or str(row["study_id"])
        by_key.setdefault(key, []).append(row)
    refs = []
    for key, rows in by_key.items():
        first = rows[0]
        e = bib.get(key, {})
        pmid = next((_cell(r.get("pmid")) for r in rows if _cell(r.get("pmid"))),
                    e.get("pmid", ""))
        doi = next((_cell(r.get("doi")) for r in rows if _cell(r.get("doi"))),
                   e.get("doi", ""))
        authors = _authors(e.get("author", "")) or _cell(first.get("first_author"))
        year = e.get("year") or _cell(first.get("year")) or "n.d."
        parts = [f"{authors} ({year})."]
        if e.get("title"):
            parts.append(e["title"].rstrip(".") + ".")
        venue = e.get("journal") or e.get("booktitle") or e.get("publisher") or ""
        if venue:
            vol = f" {e['volume']}" if e.get("volume") else ""
            pages = f":{e['pages'].replace('--', '–')}" if e.get("pages") else ""
            parts.append(f"{venue}{vol}{pages}.")
        refs.append(Reference(key, tuple(str(r["study_id"]) for r in rows), " ".join(parts),
                              pmid, doi, e.get("url", "")))
    return sorted(refs, key=lambda r: (r.text.lower(), r.key))
