"""Subgroup subtotals by baseline status and the test for subgroup differences (fit stage),
and their drawing in the forest plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nutrimeta.models import frequentist
from nutrimeta.report import forest
from nutrimeta.report.figures import figure_style
from nutrimeta.results import load_bundle
from nutrimeta.spec import load_spec
from nutrimeta.subgroups import between_test, subgroup_analysis
from nutrimeta.synthesis import trial_rows

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = load_spec(FIXTURES / "pipeline" / "analyses" / "zinc_testosterone.toml")
TT = next(o for o in SPEC.outcomes if o.id == "total_testosterone")


def _contrasts(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"study_id": sid, "trial_id": sid, "subgroup": "",
                          "outcome": "total_testosterone", "baseline_status_category": status,
                          "yi": y, "sei": se, "vi": se**2, "n_intervention": 20,
                          "n_control": 20} for sid, status, y, se in rows])


def test_between_test_hand_value() -> None:
    # two groups 0 and 1 with SE 1: Q = 2 * 0.5² = 0.5 on 1 df
    t = between_test([0.0, 1.0], [1.0, 1.0])
    assert t is not None and t.df == 1
    assert t.q_between == pytest.approx(0.5, abs=1e-9)
    assert t.p == pytest.approx(stats.chi2.sf(0.5, 1), abs=1e-6)
    assert between_test([0.3], [0.1]) is None


def test_q_between_is_q_total_minus_q_within_when_groups_are_homogeneous() -> None:
    """With tau² = 0 in every group (REML), RevMan's test equals the fixed-effect partition
    Q_total - sum(Q_within) (an identity independent of the code under test)."""
    rows = [("a1", "deficient", 1.00, 0.30), ("a2", "deficient", 1.05, 0.25),
            ("a3", "deficient", 0.98, 0.40), ("b1", "replete", 0.10, 0.20),
            ("b2", "replete", 0.12, 0.30), ("c1", "unknown", 0.50, 0.50)]
    df = _contrasts(rows)
    res = subgroup_analysis(df, TT.tau_prior, TT.mu_prior_sd, trial_rows)
    assert res is not None and res.test is not None
    by = {g.status: g for g in res.groups}
    assert [g.status for g in res.groups] == ["deficient", "replete", "unknown"]
    assert by["deficient"].tau2 == 0 and by["replete"].tau2 == 0

    def q_fixed(y: np.ndarray, se: np.ndarray) -> float:
        w = 1 / se**2
        return float(np.sum(w * (y - np.sum(w * y) / np.sum(w)) ** 2))

    y, se = df["yi"].to_numpy(), df["sei"].to_numpy()
    within = sum(q_fixed(y[df["baseline_status_category"] == s],
                         se[df["baseline_status_category"] == s]) for s in by)
    assert res.test.q_between == pytest.approx(q_fixed(y, se) - within, abs=1e-5)
    assert res.test.df == 2
    # subtotal k, n and the REML heterogeneity of a group
    d = by["deficient"]
    assert (d.k_trials, d.n_participants, d.q_df) == (3, 120.0, 2)
    assert d.q == pytest.approx(q_fixed(y[:3], se[:3]), abs=1e-5)
    # the exact posterior of the group's mean lies around the REML estimate
    assert d.mu is not None and d.mu.q025 < d.estimate < d.mu.q975
    # a one-trial group: no subtotal, the trial itself enters the test
    c = by["unknown"]
    assert c.mu is None and (c.estimate, c.se, c.k_trials) == (0.5, 0.5, 1)


def test_reml_subtotal_matches_rma_on_the_group() -> None:
    df = _contrasts([("a1", "deficient", 2.0, 0.5), ("a2", "deficient", 0.2, 0.4),
                     ("b1", "replete", 0.3, 0.6)])
    res = subgroup_analysis(df, TT.tau_prior, TT.mu_prior_sd, trial_rows)
    assert res is not None
    g = res.groups[0]
    ref = frequentist.rma([2.0, 0.2], [0.25, 0.16], method="REML")
    assert g.tau2 is not None and g.tau2 > 0
    assert (g.estimate, g.se, g.tau2) == pytest.approx((ref.estimate, ref.se, ref.tau2),
                                                       abs=1e-6)
    assert subgroup_analysis(df.iloc[0:0], TT.tau_prior, TT.mu_prior_sd, trial_rows) is None


def _texts(fig: object) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]  # type: ignore[attr-defined]


def test_forest_draws_subtotals_and_the_test() -> None:
    o = load_bundle(FIXTURES / "report" / "zinc_testosterone.json").outcomes[
        "total_testosterone"]
    df = pd.DataFrame([{"study_id": s.study_id, "trial_id": s.study_id, "subgroup": s.subgroup,
                        "outcome": "total_testosterone",
                        "baseline_status_category": s.baseline_status_category,
                        "yi": s.yi, "sei": s.sei, "vi": s.sei**2, "n_intervention": 10,
                        "n_control": 10} for s in o.studies])
    with_sg = o.model_copy(update={"subgroups": subgroup_analysis(df, TT.tau_prior,
                                                                  TT.mu_prior_sd, trial_rows)})
    no_effects = pd.DataFrame(columns=["outcome", "study_id", "subgroup"])
    with figure_style():
        texts = _texts(forest.forest_plot(with_sg, "total_testosterone", no_effects, "TT"))
        old = _texts(forest.forest_plot(o, "total_testosterone", no_effects, "TT"))
    deficient = sum(s.baseline_status_category == "deficient" for s in o.studies)
    assert f"   Subtotal, complete reports (k = {deficient} trials, n = {20 * deficient})" \
        in texts
    assert any(t.startswith("   Subtotal: none (1 trial with complete data") for t in texts)
    assert any(t.startswith("   Heterogeneity (REML): tau²") for t in texts)
    test_line = next(t for t in texts if t.startswith("Test for subgroup differences"))
    assert with_sg.subgroups is not None and with_sg.subgroups.test is not None
    assert f"df = {with_sg.subgroups.test.df} (p = " in test_line
    i2 = max(0.0, 1 - with_sg.subgroups.test.df / with_sg.subgroups.test.q_between)
    assert f"I² = {100 * i2:.0f}%" in test_line
    # results from before subtotals were computed say so instead of drawing none
    assert any("Subgroup subtotals are not in these results" in t for t in old)
    assert not any("Subtotal, complete" in t for t in old)
    assert math.isfinite(with_sg.subgroups.groups[0].estimate)
