"""Cohorts shared between trial reports, from ``studies.overlap_with`` / ``overlap_status``.

Reports linked by ``overlap_with`` form groups (connected components); a group is one cohort
and must be counted once. Which links count is a policy: ``"stated"`` joins only reports whose
sources state a shared sample (``same_cohort``); ``"possible"`` also joins reports whose overlap
is neither stated nor excluded (a sensitivity analysis). ``distinct`` links never join.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

OverlapPolicy = Literal["stated", "possible"]
JOINING: dict[str, frozenset[str]] = {
    "stated": frozenset({"same_cohort"}),
    "possible": frozenset({"same_cohort", "possible"}),
}


def cohort_groups(studies: pd.DataFrame, policy: OverlapPolicy = "stated") -> dict[str, str]:
    """study_id -> cohort key (the first study_id of its group in sorted order)."""
    if policy not in JOINING:
        raise ValueError(f"overlap policy must be one of {sorted(JOINING)}, not {policy!r}")
    ids = [str(s) for s in studies["study_id"]]
    parent = {s: s for s in ids}

    def find(s: str) -> str:
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    status = studies.get("overlap_status", pd.Series([None] * len(studies)))
    for sid, other, st in zip(ids, studies["overlap_with"], status, strict=True):
        if isinstance(other, str) and other in parent and st in JOINING[policy]:
            a, b = find(sid), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {s: find(s) for s in ids}
