"""Cohort groups from overlap links, on hand-built tables and on the shipped data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nutrimeta.overlap import cohort_groups
from nutrimeta.validate import load_evidence

ROOT = Path(__file__).resolve().parents[1]


def _studies(rows):
    return pd.DataFrame(rows, columns=["study_id", "overlap_with", "overlap_status"])


def test_policy_decides_which_links_join() -> None:
    st = _studies([("a", None, None), ("b", "a", "possible"), ("c", "b", "possible"),
                   ("d", "a", "same_cohort"), ("e", "a", "distinct")])
    stated = cohort_groups(st, "stated")
    assert stated == {"a": "a", "b": "b", "c": "c", "d": "a", "e": "e"}
    possible = cohort_groups(st, "possible")
    assert possible == {"a": "a", "b": "a", "c": "a", "d": "a", "e": "e"}
    with pytest.raises(ValueError):
        cohort_groups(st, "all")  # type: ignore[arg-type]


def test_shipped_prediabetes_trio_is_one_cohort_only_under_possible() -> None:
    st = load_evidence(ROOT / "data").studies
    trio = ("simentalmendia2012", "simentalmendia2014", "guerreroromero2015")
    possible = cohort_groups(st, "possible")
    assert len({possible[s] for s in trio}) == 1
    stated = cohort_groups(st, "stated")
    assert len({stated[s] for s in trio}) == 3
    assert stated["kyrgios2016"] == stated["kyrgios2019"]
    assert stated["kilic2006"] != stated["kilic2007"]
