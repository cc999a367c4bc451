"""`--outcome` on the report side: a report limited to the named outcomes says so."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nutrimeta.outcome_refit import restrict, scope_note
from nutrimeta.report import render_evidence_base
from nutrimeta.results import load_bundle

REPORT = Path(__file__).parent / "fixtures" / "report"
BUNDLE = REPORT / "zinc_testosterone.json"


def test_restrict_keeps_only_the_named_outcomes() -> None:
    full = load_bundle(BUNDLE)
    only = restrict(full, ["total_testosterone"])
    assert list(only.outcomes) == ["total_testosterone"]
    assert {c.outcome for c in only.claims} == {"total_testosterone"}
    assert all(r.outcome == "total_testosterone" for r in only.not_poolable)
    assert [o.id for o in only.spec.outcomes] == ["total_testosterone"]
    assert only.outcomes["total_testosterone"] == full.outcomes["total_testosterone"]
    with pytest.raises(ValueError, match=r"unknown outcome\(s\) tt; valid: "
                                         r"free_testosterone, total_testosterone"):
        restrict(full, ["tt"])
    assert scope_note(full, None) == ""
    assert "limited to total_testosterone" in scope_note(only, ["total_testosterone"])


def test_restricted_report_shows_one_outcome_and_says_so(tmp_path: Path) -> None:
    effects, studies, syntheses = (pd.read_csv(REPORT / f"{n}.csv")
                                   for n in ("effects", "studies", "syntheses"))
    page = render_evidence_base(BUNDLE, effects, studies, syntheses, tmp_path / "r",
                                outcomes=["free_testosterone"]).read_text(encoding="utf-8")
    assert 'id="scope-note"' in page and "limited to free_testosterone" in page
    sof = page[page.index('id="summary-of-findings"'):page.index("</table>",
                                                                 page.index('id="summary-of-findings"'))]
    assert "Free testosterone" in sof and "Total testosterone" not in sof


def test_scope_note_names_outcomes_fitted_from_other_inputs() -> None:
    full = load_bundle(BUNDLE)
    key = full.provenance.cache_key
    mixed = full.model_copy(update={"provenance": full.provenance.model_copy(update={
        "outcome_cache_keys": {"total_testosterone": "b" * 64, "free_testosterone": key}})})
    note = scope_note(mixed, None)
    assert f"total_testosterone from inputs {'b' * 12}" in note
    assert f"describes inputs {key[:12]}" in note
    # limited to the refitted outcome: still said, as the provenance describes other inputs
    only = restrict(mixed, ["total_testosterone"])
    assert "fitted from different inputs" in scope_note(only, ["total_testosterone"])
    same = full.model_copy(update={"provenance": full.provenance.model_copy(update={
        "outcome_cache_keys": {"total_testosterone": key, "free_testosterone": key}})})
    assert scope_note(same, None) == ""
