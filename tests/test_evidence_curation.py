"""Curation rules the shipped data must keep (data/CURATION.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from nutrimeta.schema import REASON_CODES
from nutrimeta.validate import load_evidence

ROOT = Path(__file__).resolve().parents[1]
CURATION_WORDS = re.compile(r"\b(?:first|second|third|fourth) pass\b|look-ups?\b|stored (?:pages?|"
                            r"abstract|copy|literature|record|text)", re.I)


@pytest.fixture(scope="module")
def studies() -> pd.DataFrame:
    return load_evidence(ROOT / "data").studies


def test_reason_code_exactly_when_not_included(studies: pd.DataFrame) -> None:
    included = studies["inclusion_status"] == "included"
    coded = studies["reason_code"].notna()
    assert not (included & coded).any(), studies.loc[included & coded, "study_id"].tolist()
    assert not (~included & ~coded).any(), studies.loc[~included & ~coded, "study_id"].tolist()
    assert set(studies["reason_code"].dropna()) <= set(REASON_CODES)


def test_reasons_shown_to_readers_carry_no_curation_history(studies: pd.DataFrame) -> None:
    bad = studies[studies["inclusion_reason"].fillna("").str.contains(CURATION_WORDS)]
    assert bad.empty, bad[["study_id", "inclusion_reason"]].to_string()


def test_overlap_status_goes_with_a_link(studies: pd.DataFrame) -> None:
    linked = studies["overlap_with"].notna()
    assert (linked == studies["overlap_status"].notna()).all()
    same = studies[studies["overlap_status"] == "same_cohort"]
    assert (same["inclusion_status"] == "excluded").all()


def test_placeholder_keys_follow_the_rule(studies: pd.DataFrame) -> None:
    no_year = studies[studies["year"].isna()]
    assert not no_year.empty
    assert no_year["study_id"].str.contains(r"nd(?:_|$)").all(), no_year["study_id"].tolist()
    unknown = studies[studies["first_author"].str.startswith("unknown")]
    new_rule = unknown[unknown["year"].isna()]
    assert new_rule["study_id"].str.startswith("anonnd_").all()
