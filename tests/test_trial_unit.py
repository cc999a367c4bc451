"""The trial is the unit in what the fit stage writes, and the all-reports analysis covers
the shipped evidence."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nutrimeta.analyses import analyses_entry
from nutrimeta.effect_table import effects_for_spec
from nutrimeta.spec import SensitivitySpec, load_specs
from nutrimeta.synthesis import outcome_entry
from nutrimeta.validate import load_evidence

ROOT = Path(__file__).resolve().parents[1]

SD, N_A, N_B, N_C = 0.6, 99, 95, 90  # one trial: two dose arms against one placebo group
Y_A, Y_B = 0.01, 0.08


def _three_arm_effects() -> pd.DataFrame:
    """Effect-table rows of one three-arm trial (MD, arm SDs equal) and a non-randomised
    study of the same outcome."""
    var_c = SD**2 / N_C
    base = {"evidence_base": "selenium_thyroid", "outcome": "ft3", "measure": "MD",
            "effect_unit": "pmol/L", "design": "parallel_rct", "year": 2008,
            "first_author": "Trialist", "inclusion_status": "included",
            "baseline_status_value_std": math.nan, "baseline_status_category": "unknown",
            "week": 26, "prepost_correlation": math.nan, "poolable": True, "reason": "",
            "derivation": "end values", "direction": "", "p_value": math.nan,
            "trial_id": "trial3", "shared_control_id": "trial3:control",
            "cov_shared_control": var_c, "n_control": N_C, "sd_intervention": SD,
            "sd_control": SD, "study_id": "trial3"}
    rows = []
    for sub, y, n in (("dose A", Y_A, N_A), ("dose B", Y_B, N_B)):
        v = SD**2 / n + var_c
        rows.append({**base, "subgroup": sub, "yi": y, "vi": v, "sei": math.sqrt(v),
                     "n_intervention": n})
    rows.append({**base, "study_id": "cohort1", "trial_id": "cohort1", "subgroup": "",
                 "design": "cohort", "yi": 0.2, "vi": 0.01, "sei": 0.1, "n_intervention": 40,
                 "n_control": 40, "shared_control_id": "", "cov_shared_control": math.nan})
    return pd.DataFrame(rows)


def test_three_arm_trial_is_one_trial_with_participants_once(tmp_path: Path) -> None:
    spec = next(s for s in load_specs(ROOT / "analyses") if s.evidence_base == "selenium_thyroid")
    spec = dataclasses.replace(spec, models=(), sensitivity=SensitivitySpec(
        leave_one_out=False, prepost_correlations=(), unlabelled_spread=()), claims=())
    o = next(x for x in spec.outcomes if x.id == "ft3")
    res = outcome_entry(spec, o, _three_arm_effects(), None, tmp_path, {},  # type: ignore[arg-type]
                        lambda _: None)
    assert res.k == res.k_trials == 1
    assert res.n_randomised == res.n_participants == N_A + N_B + N_C  # placebo group once
    conv = res.analyses["conventional"]
    assert conv.k_trials == 1 and conv.single_trial
    assert [c.study_id for c in conv.contributions] == ["trial3", "trial3"]
    assert {u.study_id for u in conv.not_used} == {"cohort1"}
    # GLS combination of the two arms, by hand from the known covariance
    va, vb, c = SD**2 / N_A + SD**2 / N_C, SD**2 / N_B + SD**2 / N_C, SD**2 / N_C
    inv = np.linalg.inv(np.array([[va, c], [c, vb]]))
    w = inv.sum(axis=1)
    y_gls, se_gls = float(w @ [Y_A, Y_B] / w.sum()), 1 / math.sqrt(w.sum())
    assert conv.mu.mean == pytest.approx(y_gls, abs=1e-6)
    assert conv.mu.q975 - conv.mu.q025 == pytest.approx(2 * 1.959964 * se_gls, abs=1e-5)
    # the two arms treated as independent trials would understate the SE
    assert se_gls > 1 / math.sqrt(1 / va + 1 / vb) * 1.1
    assert "not a pooled result" in (res.models["exact"].note or "")


@pytest.mark.slow  # about 45 s: the grid posterior of every outcome
def test_shipped_evidence_all_reports_covers_fifty_cells() -> None:
    ev = load_evidence(ROOT / "data")
    used, per_outcome = 0, {}
    for spec in load_specs(ROOT / "analyses"):
        effects = effects_for_spec(ev, spec)
        for o in spec.outcomes:
            entry = {"studies": [], "models": {}, "k_trials": 0, "n_randomised": None}
            entry["models"]["exact"] = _skipped()
            res = analyses_entry(entry, o, effects, effects.iloc[:0], spec.seed)
            ar = res["all_reports"]
            assert ar["status"] in ("ok", "not run"), (o.id, ar.get("reason"))
            assert all(u["reason"].strip() for u in ar["not_used"]), o.id
            rows = effects[effects["outcome"] == o.id]
            assert len(ar.get("contributions", [])) + len(ar["not_used"]) == len(rows), o.id
            per_outcome[o.id] = len(ar.get("contributions", []))
            used += per_outcome[o.id]
    assert used >= 50, per_outcome


def _skipped():  # type: ignore[no-untyped-def]
    from nutrimeta.results import ModelResult

    return ModelResult(model="exact", description="", status="skipped", k=0)
