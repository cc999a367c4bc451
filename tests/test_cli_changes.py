"""`nutrimeta changes`: the report's "What changed" section drawn as terminal tables."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nutrimeta.cli import main

BUNDLE = Path(__file__).parent / "fixtures" / "report" / "zinc_testosterone.json"


def _project(tmp_path: Path) -> tuple[Path, Path]:
    new = json.loads(BUNDLE.read_text(encoding="utf-8"))
    old = json.loads(BUNDLE.read_text(encoding="utf-8"))
    # The release did not yet know of one trial report.
    old["not_poolable"] = [r for r in old["not_poolable"] if r["study_id"] != "juniper2010"]
    old["flow"]["recorded"] = new["flow"]["recorded"] - 1
    # ... and its pooled mean was far from today's (a row of the changes table).
    model = next(m for m in old["outcomes"]["total_testosterone"]["models"].values()
                 if "mu" in m.get("parameters", {}))
    model["parameters"]["mu"]["mean"] += 5.0
    build = tmp_path / "build"
    (build / "results").mkdir(parents=True)
    (build / "results" / "zinc_testosterone.json").write_text(json.dumps(new), encoding="utf-8")
    rel = tmp_path / "releases" / "2026.1.0" / "zinc_testosterone"
    rel.mkdir(parents=True)
    (rel / "results.json").write_text(json.dumps(old), encoding="utf-8")
    return build, tmp_path / "releases"


def test_changes_prints_tables_and_the_added_line(tmp_path: Path) -> None:
    build, releases = _project(tmp_path)
    runner = CliRunner()
    md = runner.invoke(main, ["changes", "--build", str(build), "--releases", str(releases),
                              "--markdown"])
    assert md.exit_code == 0, md.output
    assert "Added: juniper2010 (not_poolable)." in md.output
    term = runner.invoke(main, ["changes", "--build", str(build), "--releases", str(releases)])
    assert term.exit_code == 0, term.output
    # Same content, rendered: the Added line survives, Markdown markup does not.
    flat = " ".join(term.output.split())
    assert "Added: juniper2010 (not_poolable)." in flat
    assert "|---" not in term.output and "# " not in term.output
    assert "| model |" in md.output
    assert "─" in term.output and "model" in term.output  # a table drawn with box characters
