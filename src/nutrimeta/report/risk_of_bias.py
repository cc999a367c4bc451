"""Risk of bias by domain, drawn as RevMan / robvis "traffic lights".

Read from ``data/<base>/risk_of_bias.csv`` (one row per trial and domain; one tool per
evidence base, RoB 2 for randomised trials)::

    study_id, tool, domain, judgement, support, source_id, source_locator

``domain`` is one of :data:`DOMAINS`, ``judgement`` one of :data:`JUDGEMENTS`. Each cell shows
a coloured symbol and its judgement in words (the colour is never the only carrier). When the
base has no such file, the overall judgement curated in the ``risk_of_bias`` column of
studies.csv is shown instead, with a note that the domains are not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from nutrimeta.results import Bundle

FILE_NAME = "risk_of_bias.csv"
COLUMNS = ("study_id", "tool", "domain", "judgement", "support", "source_id", "source_locator")
DOMAINS = ("D1 randomisation process", "D2 deviations from intended interventions",
           "D3 missing outcome data", "D4 measurement of the outcome",
           "D5 selection of the reported result", "overall")
JUDGEMENTS = ("low", "some concerns", "high", "no information")
#: symbol and CSS class per judgement (robvis convention); studies.csv values included
SYMBOLS = {"low": ("+", "rob-low"), "some concerns": ("−", "rob-some"),
           "high": ("×", "rob-high"), "no information": ("?", "rob-none"),
           "unclear": ("?", "rob-none")}


@dataclass
class TrafficLights:
    """What the report draws: a tool, the column headings, one row per trial and a note."""

    tool: str
    domains: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    by_domain: bool = True


def normalise(judgement: Any) -> str:
    """``some_concerns`` and ``Some concerns`` read as ``some concerns``."""
    return str(judgement or "").strip().lower().replace("_", " ")


def load(path: Path) -> pd.DataFrame | None:
    """The base's risk-of-bias file, checked; None when the base has none.

    Raises
    ------
    ValueError
        Naming the file, row (line number) and column of the first problem found in each
        row: a missing column, an unknown domain or judgement, a blank study_id, more than
        one tool, or a trial with a domain twice.
    """
    if not path.is_file():
        return None
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected "
                         f"{', '.join(COLUMNS)}")
    problems = []
    for i, r in df.iterrows():
        line = int(str(i)) + 2  # header is line 1
        if not r["study_id"].strip():
            problems.append(f"{path}: row {line}, column study_id: blank")
        if r["domain"] not in DOMAINS:
            problems.append(f"{path}: row {line}, column domain: {r['domain']!r} is not one "
                            f"of {', '.join(DOMAINS)}")
        if r["judgement"] not in JUDGEMENTS:
            problems.append(f"{path}: row {line}, column judgement: {r['judgement']!r} is not "
                            f"one of {', '.join(JUDGEMENTS)}")
    tools = sorted(set(df["tool"]))
    if len(tools) > 1:
        problems.append(f"{path}: column tool: one tool per evidence base, found "
                        f"{', '.join(tools)}")
    dup = df[df.duplicated(["study_id", "domain"], keep="first")]
    for i, r in dup.iterrows():
        problems.append(f"{path}: row {int(str(i)) + 2}, column domain: {r['domain']!r} "
                        f"already given for {r['study_id']}")
    if problems:
        raise ValueError("\n".join(problems))
    return df


def overall(df: pd.DataFrame | None) -> dict[str, str] | None:
    """The overall judgement per trial (for GRADE's risk-of-bias domain); None without a
    file."""
    if df is None:
        return None
    o = df[df["domain"] == "overall"]
    return {str(r.study_id): str(r.judgement) for r in o.itertuples()}


def _cell(judgement: str, support: str = "", source: str = "") -> dict[str, str]:
    j = normalise(judgement)
    symbol, css = SYMBOLS.get(j, ("", "rob-other"))
    title = "; ".join(x for x in (support, source) if x)
    return {"judgement": j or "not recorded", "symbol": symbol, "css": css, "title": title}


def traffic_lights(df: pd.DataFrame | None, studies: pd.DataFrame,
                   labels: dict[str, str]) -> TrafficLights:
    """Rows for the traffic-light table: from the file when present, else the overall column
    of studies.csv (trials with a judgement only). ``labels`` maps study_id to
    "Author year"."""
    if df is None:
        col = studies["risk_of_bias"] if "risk_of_bias" in studies.columns else pd.Series()
        rows = [{"study_id": sid, "label": labels.get(str(sid), str(sid)),
                 "cells": [_cell(str(j))]}
                for sid, j in zip(studies.get("study_id", []), col, strict=False)
                if isinstance(j, str) and j.strip()]
        tools = sorted({"RoB 1" if normalise(j) == "unclear" else "RoB 2"
                        for j in col if isinstance(j, str) and normalise(j)
                        in ("unclear", "some concerns")})
        note = ("Risk of bias by domain is not recorded for this evidence base (no "
                f"{FILE_NAME}); the overall judgement curated in studies.csv is shown"
                + (f"; it mixes tools ({' and '.join(tools)} wording)" if len(tools) > 1 else "")
                + ".")
        return TrafficLights("as curated", ["overall"], rows, note, by_domain=False)
    rows = []
    for sid, g in df.groupby("study_id", sort=False):
        by = {r.domain: r for r in g.itertuples()}
        cells = []
        for d in DOMAINS:
            r = by.get(d)
            cells.append(_cell(r.judgement, r.support,
                               f"{r.source_id} {r.source_locator}".strip())
                         if r is not None else _cell(""))
        rows.append({"study_id": sid, "label": labels.get(str(sid), str(sid)), "cells": cells})
    tool = str(df["tool"].iloc[0]) if len(df) else ""
    return TrafficLights(tool, list(DOMAINS), rows,
                         f"{tool}: one tool for every trial of this evidence base; hover a "
                         "cell for the support for the judgement and its source.")


def study_labels(studies: pd.DataFrame) -> dict[str, str]:
    """``study_id`` -> "Author year"."""
    from nutrimeta.report.forest import author_year

    return {str(r["study_id"]): author_year(r.get("first_author"), r.get("year"))
            for r in studies.to_dict("records")}


def analysed_studies(bundle: Bundle, studies: pd.DataFrame) -> pd.DataFrame:
    """The studies.csv rows of trials entering an analysis of any outcome (those the
    fallback table lists)."""
    ids = {c.study_id for o in bundle.outcomes.values() for a in (o.analyses or {}).values()
           for c in a.contributions} | {s.study_id for o in bundle.outcomes.values()
                                        for s in o.studies}
    return studies[studies["study_id"].astype(str).isin(ids)]


def frame(t: TrafficLights) -> pd.DataFrame:
    """The table as a flat frame (CSV and Markdown): the judgement in words per domain."""
    return pd.DataFrame([{"study": r["label"], **{d: c["judgement"] for d, c in
                                                  zip(t.domains, r["cells"], strict=True)}}
                         for r in t.rows], columns=["study", *t.domains])
