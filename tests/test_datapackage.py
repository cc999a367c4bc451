"""The committed data dictionary matches the schema the validator enforces."""

from __future__ import annotations

import json
from pathlib import Path

from nutrimeta import datapackage as dp
from nutrimeta.schema import TABLES

DATA = Path(__file__).parents[1] / "data"


def test_descriptor_is_in_sync_with_schema() -> None:
    committed = (DATA / dp.DESCRIPTOR_NAME).read_text(encoding="utf-8")
    expected = dp.render(dp.build_descriptor(dp.read_version(DATA)))
    assert committed == expected, "run `nutrimeta datapackage` and commit data/datapackage.json"


def test_descriptor_documents_every_column_and_no_remote_urls() -> None:
    desc = json.loads((DATA / dp.DESCRIPTOR_NAME).read_text(encoding="utf-8"))
    by_name = {r["name"]: r for r in desc["resources"]}
    for name, table in TABLES.items():
        fields = [f["name"] for f in by_name[name]["schema"]["fields"]]
        assert fields == table.column_names
        assert all(f["description"] for f in by_name[name]["schema"]["fields"])
        for path in by_name[name]["path"]:
            assert not path.startswith("http") and (DATA / path).exists()


def test_csv_headers_match_schema() -> None:
    for base in (p for p in DATA.iterdir() if p.is_dir()):
        for table in TABLES.values():
            header = (base / table.filename).read_text(encoding="utf-8").splitlines()[0]
            assert header.split(",") == table.column_names, f"{base.name}/{table.filename}"
