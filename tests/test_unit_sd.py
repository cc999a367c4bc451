"""The declared ``unit_sd`` of every outcome matches the data it cites.

Each spec records ``unit_sd`` with the source text "median of the SDs reported in
data/<base>/results.csv, data version ...". This test recomputes that median from the shipped
data (outcome values, every arm and time point, changes from baseline when no value carries an SD,
converted to the outcome's unit; for a ratio
of means the median coefficient of variation SD/mean) and fails when a declared value has
drifted from it by more than 10%.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from nutrimeta.spec import load_specs
from nutrimeta.units import can_convert, conversion_factor

ROOT = Path(__file__).resolve().parents[1]


def median_reported_sd(results: pd.DataFrame, outcome: str, unit: str, measure: str) -> float:
    """Median SD of the outcome's reported values (``value_type = value``; changes from
    baseline only when no value carries an SD) in ``unit``; for ``ROM`` the median SD/mean of
    value rows reporting both. ``nan`` when none is reported."""
    rows = results[(results["outcome"] == outcome) & results["sd"].notna()]
    values = rows[rows["value_type"] == "value"]
    rows = values if len(values) or measure == "ROM" else rows[rows["value_type"] == "change"]
    if measure == "ROM":
        rows = rows[rows["mean"].notna() & (rows["mean"] > 0)]
        return float((rows["sd"] / rows["mean"]).median()) if len(rows) else math.nan
    sds = [float(r.sd) * conversion_factor(str(r.unit), unit, outcome)
           for r in rows.itertuples() if can_convert(str(r.unit), unit, outcome)]
    return float(pd.Series(sds).median()) if sds else math.nan


SPECS = load_specs(ROOT / "analyses")


@pytest.mark.parametrize("spec", SPECS, ids=[s.evidence_base for s in SPECS])
def test_declared_unit_sd_matches_data(spec) -> None:
    results = pd.read_csv(ROOT / "data" / spec.evidence_base / "results.csv")
    for o in spec.outcomes:
        median = median_reported_sd(results, o.id, o.unit, o.measure)
        if o.unit_sd is None:
            assert math.isnan(median), f"{o.id}: the data report SDs; declare unit_sd"
            continue
        assert f"data/{spec.evidence_base}/results.csv" in o.unit_sd_source
        assert o.unit_sd == pytest.approx(median, rel=0.10), o.id
