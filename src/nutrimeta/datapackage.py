"""The Data Package descriptor (``data/datapackage.json``): the data dictionary.

Generated from :mod:`nutrimeta.schema` so that documentation and validation cannot drift apart
(a test compares the committed file with :func:`build_descriptor`). The data version lives in
the descriptor and is preserved when it is regenerated; bump it with ``nutrimeta release``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nutrimeta.io_utils import atomic_write_text
from nutrimeta.schema import EVIDENCE_BASES, TABLES, Column, Table

DESCRIPTOR_NAME = "datapackage.json"
DEFAULT_DATA_VERSION = "2026.11.0"


def _field(col: Column) -> dict[str, Any]:
    field: dict[str, Any] = {"name": col.name, "type": col.type, "description": col.description}
    constraints: dict[str, Any] = {}
    if col.required:
        constraints["required"] = True
    if col.unique:
        constraints["unique"] = True
    if col.enum is not None:
        constraints["enum"] = list(col.enum)
    if col.minimum is not None:
        constraints["minimum"] = col.minimum
    if col.maximum is not None:
        constraints["maximum"] = col.maximum
    if col.pattern is not None:
        constraints["pattern"] = col.pattern
    if constraints:
        field["constraints"] = constraints
    return field


def _resource(table: Table) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "fields": [_field(c) for c in table.columns],
        "missingValues": [""],
    }
    if table.primary_key and table.name == "studies":
        schema["primaryKey"] = list(table.primary_key)
    if table.name in ("results", "risk_of_bias"):
        schema["foreignKeys"] = [{"fields": "study_id",
                                  "reference": {"resource": "studies", "fields": "study_id"}}]
    return {
        "name": table.name,
        "path": [f"{base}/{table.filename}" for base in EVIDENCE_BASES],
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "description": table.description + (" Logical key: " + ", ".join(table.primary_key)
                                            + "." if table.primary_key else ""),
        "schema": schema,
    }


def build_descriptor(version: str = DEFAULT_DATA_VERSION) -> dict[str, Any]:
    """The descriptor for the current schema, at the given data version."""
    return {
        "profile": "tabular-data-package",
        "name": "nutrimeta-evidence",
        "title": "nutrimeta curated evidence: micronutrient supplementation and hormonal function",
        "description": "Trial reports of zinc, selenium and magnesium supplementation with "
        "hormonal outcomes, numbers recorded exactly as reported, with provenance for every "
        "number. One folder per evidence base: " + ", ".join(EVIDENCE_BASES) + ". Each folder "
        "also holds references.bib (the bibliography of its sources).",
        "version": version,
        "licenses": [{"name": "CC-BY-4.0", "title": "Creative Commons Attribution 4.0"}],
        "resources": [_resource(t) for t in TABLES.values()],
    }


def read_version(data_dir: Path | str = "data") -> str:
    """The data version recorded in the descriptor (default if there is none yet)."""
    path = Path(data_dir) / DESCRIPTOR_NAME
    if not path.exists():
        return DEFAULT_DATA_VERSION
    return str(json.loads(path.read_text(encoding="utf-8")).get("version", DEFAULT_DATA_VERSION))


def render(descriptor: dict[str, Any]) -> str:
    """The descriptor as written to disk (indented JSON)."""
    return json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n"


def write_descriptor(data_dir: Path | str = "data", version: str | None = None) -> Path:
    """(Re)write the descriptor atomically, keeping the recorded version unless one is given."""
    data_dir = Path(data_dir)
    path = data_dir / DESCRIPTOR_NAME
    descriptor = build_descriptor(version or read_version(data_dir))
    atomic_write_text(path, render(descriptor))
    return path
