"""Risk of bias by domain (``risk_of_bias.csv``): the RoB 2 overall judgement and its checks.

The overall RoB 2 judgement follows from the five domain judgements (Sterne et al. 2019,
BMJ 366:l4898, table 3): *low* only if every domain is low; *high* if any domain is high;
otherwise *some concerns*. A domain judged "no information" (the sources read say nothing
for it) counts as *some concerns*: missing information cannot support a low judgement, and
it is not evidence of a high one. "no information" is therefore never an overall judgement.
RoB 2 also allows *high* when several domains have some concerns that together lower
confidence substantially; that judgement is not made here, so the overall row must equal
:func:`rob2_overall` of its domains.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from nutrimeta.problems import Problem
from nutrimeta.schema import RANDOMISED_DESIGNS, ROB_DOMAINS, ROB_JUDGEMENTS

__all__ = ["DOMAINS", "OVERALL", "STUDIES_COLUMN_VALUE", "check_risk_of_bias", "rob2_overall"]

OVERALL = "overall"
#: The five RoB 2 domains (every domain but the overall row).
DOMAINS: tuple[str, ...] = tuple(d for d in ROB_DOMAINS if d != OVERALL)
#: The studies.csv ``risk_of_bias`` value that matches each overall judgement.
STUDIES_COLUMN_VALUE: dict[str, str] = {"low": "low", "some concerns": "some_concerns",
                                        "high": "high"}


def rob2_overall(judgements: Iterable[str]) -> str:
    """Overall RoB 2 judgement from the domain judgements (see the module docstring)."""
    js = list(judgements)
    unknown = sorted(set(js) - set(ROB_JUDGEMENTS))
    if unknown:
        raise ValueError(f"unknown judgement(s) {unknown}; expected one of {ROB_JUDGEMENTS}")
    if not js:
        raise ValueError("no domain judgements")
    if "high" in js:
        return "high"
    if any(j in ("some concerns", "no information") for j in js):
        return "some concerns"
    return "low"


def _at(row: pd.Series, column: str | None, message: str) -> Problem:
    return Problem(str(row["_file"]), int(row["_row"]), column, message)


def _study_problems(row: pd.Series, study: pd.Series | None) -> list[Problem]:
    """The study behind a risk-of-bias row exists, in the same base, with a randomised design."""
    sid = row["study_id"]
    if study is None:
        return [_at(row, "study_id", f"unknown study_id {sid!r} (not in any studies.csv)")]
    if study["_base"] != row["_base"]:
        return [_at(row, "study_id", f"study {sid!r} belongs to {study['_base']}, not to "
                    f"{row['_base']}")]
    if row["tool"] == "RoB 2" and study["design"] not in RANDOMISED_DESIGNS:
        return [_at(row, "tool", f"RoB 2 is for randomised trials; {sid!r} is "
                    f"{study['design']}")]
    return []


def check_risk_of_bias(rob: pd.DataFrame, studies: pd.DataFrame) -> list[Problem]:
    """Cross-table checks of the risk-of-bias rows, each located by file, row and column.

    Every study_id is a study of the same evidence base with a randomised design (RoB 2);
    one tool per evidence base; one row per study x domain, all five domains and the
    overall row present; the overall row equals :func:`rob2_overall` of the domains and
    agrees with studies.csv ``risk_of_bias``. Vocabularies are checked by the schema.
    """
    out: list[Problem] = []
    if rob.empty:
        return out
    by_id = {str(r["study_id"]): r for _, r in studies.iterrows() if pd.notna(r["study_id"])}
    for base, rows in rob.groupby("_base", sort=True):
        tools = rows["tool"].dropna().unique()
        if len(tools) > 1:
            first = rows[rows["tool"] != tools[0]].iloc[0]
            out.append(_at(first, "tool", f"one tool per evidence base: {base} uses "
                           f"{', '.join(map(str, tools))}"))
    dup = rob.duplicated(["_base", "study_id", "domain"], keep="first")
    for _, row in rob[dup].iterrows():
        out.append(_at(row, "domain", f"duplicate row: {row['study_id']!r} already has a "
                       f"judgement for {row['domain']!r}"))
    seen: set[tuple[str, str]] = set()  # study-level problems are reported at its first row
    for _, row in rob.iterrows():
        sid = row["study_id"]
        if pd.isna(sid):
            continue
        key = (str(row["_base"]), str(sid))
        if key not in seen:
            seen.add(key)
            out += _study_problems(row, by_id.get(str(sid)))
        if row["domain"] == OVERALL and row["judgement"] == "no information":
            out.append(_at(row, "judgement", "'no information' is a domain judgement only; "
                           "the overall judgement follows from the domains"))
    for (_, sid), rows in rob[rob["study_id"].notna()].groupby(["_base", "study_id"],
                                                                sort=False):
        first = rows.iloc[0]
        present = set(rows["domain"].dropna())
        missing = [d for d in ROB_DOMAINS if d not in present]
        if missing:
            out.append(_at(first, "domain", f"{sid!r} has no row for: {', '.join(missing)} "
                           "(one row per domain and an overall row)"))
            continue
        domains = rows[rows["domain"].isin(DOMAINS)].drop_duplicates("domain")
        if domains["judgement"].isna().any() or not set(domains["judgement"]) <= set(
                ROB_JUDGEMENTS):
            continue  # reported by the column checks
        expected = rob2_overall(domains["judgement"])
        overall = rows[rows["domain"] == OVERALL].iloc[0]
        if overall["judgement"] != expected and overall["judgement"] in ROB_JUDGEMENTS \
                and overall["judgement"] != "no information":
            out.append(_at(overall, "judgement", f"overall {overall['judgement']!r} does not "
                           f"follow from the domains ({expected!r} by the RoB 2 algorithm: "
                           "any high -> high; any some concerns or no information -> some "
                           "concerns; all low -> low)"))
        study = by_id.get(str(sid))
        if study is not None and study["_base"] == first["_base"]:
            want = STUDIES_COLUMN_VALUE.get(str(overall["judgement"]))
            have = study.get("risk_of_bias")
            if want is not None and (pd.isna(have) or have != want):
                out.append(_at(overall, "judgement", f"studies.csv risk_of_bias of {sid!r} is "
                               f"{have if pd.notna(have) else 'empty'!r}, but the overall "
                               f"RoB 2 judgement is {overall['judgement']!r} (expected "
                               f"{want!r} in {study['_file']} row {int(study['_row'])})"))
    return out
