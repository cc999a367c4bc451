"""Citation text for the reports, read from CITATION.cff (Citation File Format).

The data reference names the data version the results were computed from, so the citation
printed in a report always matches that report's numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["find_citation", "read_citation"]


def read_citation(path: Path | None, data_version: str | None = None) -> dict[str, Any]:
    """Citation text from CITATION.cff (Citation File Format), read with PyYAML.

    The data reference names ``data_version`` (the version the results were computed from)
    when given, so the citation always matches the report."""
    if path is None or not path.is_file():
        return {"text": "Citation metadata (CITATION.cff) not found.", "bibtex": "",
                "message": "", "data": [], "found": False}
    cff = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    authors = ", ".join(a.get("name") or " ".join(filter(None, (a.get("given-names"),
                                                               a.get("family-names"))))
                        for a in cff.get("authors") or [])
    title = cff.get("title", "")
    version = cff.get("version", "")
    date = str(cff.get("date-released", ""))
    text = f"{authors}. {title}. Version {version}"
    text += f" ({date})." if date else "."
    if cff.get("doi"):
        text += f" https://doi.org/{cff['doi']}"
    data_refs = [r for r in cff.get("references") or [] if r.get("type") == "data"]
    data_text = [f"{r.get('title')}, version {data_version or r.get('version')}."
                 for r in data_refs]
    year = date[:4]
    bibtex = ("@software{nutrimeta,\n"
              f"  author  = {{{authors}}},\n  title   = {{{title}}},\n"
              f"  version = {{{version}}},\n  year    = {{{year}}}\n}}")
    return {"text": text, "data": data_text, "message": cff.get("message", ""),
            "bibtex": bibtex, "found": True}


def find_citation(start: Path) -> Path | None:
    """Nearest CITATION.cff in ``start`` or its parents, else in the working directory."""
    for folder in [start.resolve(), *start.resolve().parents, Path.cwd()]:
        cand = folder / "CITATION.cff"
        if cand.is_file():
            return cand
    return None
