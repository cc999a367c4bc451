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

#: Outcomes whose shipped data report no SD: the published SDs their unit SD is taken from, as
#: printed (same rule: the median), with the unit printed and the locator the spec cites.
PUBLISHED_SDS: dict[str, dict] = {
    # Kong et al. 2023 (PMID 37335715), table 1: baseline TgAb mean ± SD (IU/mL) of six trials;
    # the unit SD of a ratio of means is the median SD/mean
    "tg_ab": {"means_sds": [(783, 312), (810, 301), (415.43, 275.89), (344.96, 23.77),
                            (1720, 498), (272, 712)], "unit": None, "cite": "PMID 37335715"},
    # Testosterone Trials (DOI 10.1210/jc.2019-00806), table 1: baseline free testosterone
    # 65.0 ± 23.4 and 62.0 ± 21.4 pg/mL
    "free_testosterone": {"sds": [23.4, 21.4], "unit": "pg/mL",
                          "cite": "10.1210/jc.2019-00806"},
}


def published_unit_sd(outcome: str, unit: str) -> float:
    """The median of the published SDs (or SD/mean) of an outcome, in ``unit``."""
    src = PUBLISHED_SDS[outcome]
    if "means_sds" in src:
        return float(pd.Series([sd / m for m, sd in src["means_sds"]]).median())
    return float(pd.Series(src["sds"]).median()) * conversion_factor(src["unit"], unit, outcome)


@pytest.mark.parametrize("spec", SPECS, ids=[s.evidence_base for s in SPECS])
def test_declared_unit_sd_matches_data(spec) -> None:
    results = pd.read_csv(ROOT / "data" / spec.evidence_base / "results.csv")
    for o in spec.outcomes:
        median = median_reported_sd(results, o.id, o.unit, o.measure)
        assert o.unit_sd is not None, f"{o.id}: every outcome declares unit_sd"
        if math.isnan(median):  # no SD in the data: a published source, by the same rule
            assert PUBLISHED_SDS[o.id]["cite"] in o.unit_sd_source, o.id
            assert o.unit_sd == pytest.approx(published_unit_sd(o.id, o.unit), rel=0.005), o.id
            continue
        assert f"data/{spec.evidence_base}/results.csv" in o.unit_sd_source
        assert o.unit_sd == pytest.approx(median, rel=0.10), o.id


@pytest.mark.parametrize("spec", SPECS, ids=[s.evidence_base for s in SPECS])
def test_priors_are_multiples_of_the_unit_sd(spec) -> None:
    """Every prior of every analysis is stated as a multiple of the outcome's unit SD and
    resolves to multiple × unit SD; the sensitivity labels name the multiple and the value."""
    for o in spec.outcomes:
        assert o.mu_prior_sd_multiple is not None and o.slope_prior_sd_multiple is not None
        assert o.tau_prior.scale_multiple is not None, o.id
        assert o.mu_prior_sd == pytest.approx(o.mu_prior_sd_multiple * o.unit_sd)
        assert o.slope_prior_sd == pytest.approx(o.slope_prior_sd_multiple * o.unit_sd)
        assert o.tau_prior.scale == pytest.approx(o.tau_prior.scale_multiple * o.unit_sd)
        for alt in spec.sensitivity.tau_priors:
            assert alt.scale_multiple is not None
            resolved = o.resolve(alt)
            assert resolved.scale == pytest.approx(alt.scale_multiple * o.unit_sd)
            assert f"{alt.scale_multiple:g} × unit SD = {resolved.scale:.3g}" in resolved.label


def test_all_reports_analysis_takes_the_spec_priors() -> None:
    """One prior statement per outcome: the all-reports analysis uses the spec's multiples
    (not defaults of its own), and refuses a tau family it cannot take."""
    from dataclasses import replace

    from nutrimeta.all_reports import _priors
    from nutrimeta.analyses import all_reports_priors
    from nutrimeta.spec import TauPriorSpec

    for spec in SPECS:
        for o in spec.outcomes:
            p = _priors(all_reports_priors(o))
            assert p.unit_sd == o.unit_sd
            assert p.mu_sd == pytest.approx(o.mu_prior_sd_multiple)
            assert p.tau_scale == pytest.approx(o.tau_prior.scale_multiple)
    o = SPECS[0].outcomes[0]
    wider = replace(o, mu_prior_sd=3 * o.unit_sd)
    assert _priors(all_reports_priors(wider)).mu_sd == pytest.approx(3.0)
    cauchy = replace(o, tau_prior=TauPriorSpec("half_cauchy", 1.0))
    with pytest.raises(ValueError, match="half-normal"):
        all_reports_priors(cauchy)
