"""Future-trial designs for the deficiency difference: simulations of known truth checked
against what the declared estimability rule and the verdict threshold must give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nutrimeta.estimability import EstimabilityRule
from nutrimeta.models.exact import TauPrior
from nutrimeta.models.next_trial import (
    MeasuredTrials,
    moderator_design_entry,
    moderator_design_value,
)
from nutrimeta.results import ModeratorDesign
from nutrimeta.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[1]
RULE = EstimabilityRule(max_contraction=0.5, min_trials_each_side=2)


def _run(trials: int, share_below: float, true_difference: float, *, n_per_arm: int = 200,
         true_tau: float = 0.0, n_sims: int = 200, seed: int = 1) -> dict:
    # HOMA-IR-like scale: unit SD 1.9, reference levels +-0.12 mmol/L from the cut-off
    return moderator_design_value(
        MeasuredTrials.none(), trials=trials, n_per_arm=n_per_arm, share_below=share_below,
        sd=1.9, x_deficient=-0.12, x_replete=0.12, true_difference=true_difference,
        true_tau=true_tau, mu_sd=1.9, slope_sd=7.6, tau_prior=TauPrior.half_normal(0.95),
        beneficial="decrease", rule=RULE, n_sims=n_sims, rng=np.random.default_rng(seed))


def test_well_spread_trials_are_estimable_and_find_a_real_difference() -> None:
    # 16 trials of 200 per arm, half on each side: the difference's SE is about
    # 1.9 * sqrt(2/200) * sqrt(4/16) = 0.095; a true difference of 0.6 is > 6 SE
    r = _run(16, 0.5, 0.6)
    assert (r["n_below"], r["n_above"]) == (8, 8)
    assert r["p_estimable"] == 1.0
    assert r["p_supported"] > 0.95
    assert r["mean_contraction"] < 0.2


def test_all_trials_on_one_side_never_estimable() -> None:
    for share in (0.0, 1.0):
        r = _run(16, share, 0.6)
        assert r["p_estimable"] == 0.0 and r["p_supported"] == 0.0
        assert min(r["n_below"], r["n_above"]) == 0


def test_no_true_difference_is_rarely_supported() -> None:
    # one-sided threshold 0.95: about 5% false support (MC SE about 0.011 at 400 draws)
    r = _run(16, 0.5, 0.0, n_sims=400)
    assert r["p_estimable"] == 1.0
    assert r["p_supported"] < 0.05 + 4 * 0.011


def test_power_grows_with_trials_and_size() -> None:
    rows = [_run(k, 0.5, 0.3, n_per_arm=n, true_tau=0.2)["p_supported"]
            for k, n in ((4, 50), (8, 50), (16, 50), (16, 400))]
    assert rows == sorted(rows) and rows[-1] > rows[0] + 0.3, rows


def test_few_trials_fail_the_rule_by_side_counts() -> None:
    # one trial on each side: well informed perhaps, but the rule asks for two per side
    r = _run(2, 0.5, 0.6)
    assert (r["n_below"], r["n_above"]) == (1, 1) and r["p_estimable"] == 0.0


def test_entry_runs_the_declared_grid_and_validates() -> None:
    spec = load_spec(ROOT / "analyses" / "magnesium_insulin.toml")
    o = spec.outcome("homa_ir")
    cut = spec.moderator.cutoff
    frame = pd.DataFrame({"yi": [-0.5, -0.2, -0.9], "sei": [0.3, 0.4, 0.5],
                          "baseline_status_value_std": [cut - 0.1, cut + 0.1, np.nan]})
    out = ModeratorDesign.model_validate(moderator_design_entry(frame, spec, o, seed=3))
    grid = spec.moderator.design
    assert out.status == "ok"
    assert (out.existing_measured, out.existing_left_out) == (2, 1)
    assert len(out.rows) == len(grid.trials) * len(grid.n_per_arm) * len(grid.share_below)
    assert out.true_difference == pytest.approx(grid.true_difference_mids * o.mid)
    assert all(r.p_supported <= r.p_estimable + 1e-12 for r in out.rows)


def test_design_grid_checked_in_spec(tmp_path: Path) -> None:
    text = (ROOT / "analyses" / "magnesium_insulin.toml").read_text(encoding="utf-8")
    bad = text.replace("share_below = [0.0, 0.5]", "share_below = [1.5]", 1)
    assert bad != text
    (tmp_path / "m.toml").write_text(bad, encoding="utf-8")
    with pytest.raises(SpecError, match=r"\[moderator\].*share_below"):
        load_spec(tmp_path / "m.toml")
