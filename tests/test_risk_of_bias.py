"""Risk of bias by domain: the RoB 2 overall algorithm and the shipped risk_of_bias.csv files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from nutrimeta.risk_of_bias import DOMAINS, OVERALL, STUDIES_COLUMN_VALUE, rob2_overall
from nutrimeta.schema import ROB_DOMAINS, ROB_JUDGEMENTS, TABLES
from nutrimeta.validate import load_evidence

ROOT = Path(__file__).parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(("domains", "expected"), [
    (["low"] * 5, "low"),
    (["low", "low", "some concerns", "low", "low"], "some concerns"),
    (["low", "high", "some concerns", "low", "low"], "high"),
    (["some concerns"] * 5, "some concerns"),
    # 'no information' cannot support low and is not evidence of high
    (["low", "low", "no information", "low", "low"], "some concerns"),
    (["no information"] * 5, "some concerns"),
    (["no information", "high", "low", "low", "low"], "high"),
])
def test_rob2_overall_follows_the_published_algorithm(domains: list[str], expected: str
                                                      ) -> None:
    """Sterne et al. 2019 (BMJ 366:l4898) table 3: low only if all low; high if any high."""
    assert rob2_overall(domains) == expected


def test_rob2_overall_rejects_unknown_judgements() -> None:
    with pytest.raises(ValueError, match="unclear"):
        rob2_overall(["low", "unclear"])
    with pytest.raises(ValueError, match="no domain"):
        rob2_overall([])


def test_vocabularies_are_the_rob2_ones() -> None:
    assert ROB_DOMAINS[:5] == DOMAINS and OVERALL == ROB_DOMAINS[5] == "overall"
    assert set(STUDIES_COLUMN_VALUE) == set(ROB_JUDGEMENTS) - {"no information"}
    # every studies.csv value the overall maps to is allowed in studies.csv
    assert set(STUDIES_COLUMN_VALUE.values()) <= set(TABLES["studies"].column(
        "risk_of_bias").enum or ())


def test_complete_assessment_passes(tmp_path: Path) -> None:
    """A well-formed file (two trials, all domains, overall by the algorithm) gives no problem."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid_data", data)
    lines = ["study_id,tool,domain,judgement,support,source_id,source_locator"]
    for sid, js in (("alpha2001", ["low"] * 5), ("gamma2010", ["low", "no information", "low",
                                                              "low", "low"])):
        overall = rob2_overall(js)
        for d, j in zip(ROB_DOMAINS, [*js, overall], strict=True):
            lines.append(f'{sid},RoB 2,{d},{j},"Quoted support.",1000001,abstract')
    (data / "zinc_testosterone" / "risk_of_bias.csv").write_text("\n".join(lines) + "\n")
    studies = data / "zinc_testosterone" / "studies.csv"
    df = pd.read_csv(studies, dtype=str, keep_default_na=False)
    df.loc[df["study_id"] == "gamma2010", "risk_of_bias"] = "some_concerns"
    df.to_csv(studies, index=False)
    ev = load_evidence(data)
    assert ev.problems == []
    assert len(ev.risk_of_bias) == 12



def test_shipped_assessments_are_complete_and_consistent() -> None:
    """Every shipped file validates (load_evidence runs the checks) and covers each assessed
    trial with all six rows; every included randomised trial is assessed."""
    ev = load_evidence(ROOT / "data")
    rob_problems = [p for p in ev.problems if "risk_of_bias" in p.file]
    assert rob_problems == []
    rob = ev.risk_of_bias
    counts = rob.groupby("study_id")["domain"].nunique()
    assert (counts == len(ROB_DOMAINS)).all()
    s = ev.studies
    included_rcts = set(s[(s["inclusion_status"] == "included")
                          & s["design"].isin(("parallel_rct", "crossover_rct"))]["study_id"])
    assert included_rcts <= set(rob["study_id"])
