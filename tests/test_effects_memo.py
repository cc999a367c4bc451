"""The effect tables of the sensitivity analyses are computed once per evidence base."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nutrimeta import synthesis
from nutrimeta.effect_table import effects_for_spec
from nutrimeta.spec import load_specs
from nutrimeta.validate import load_evidence, require_valid

ROOT = Path(__file__).resolve().parents[1]


def test_effects_memo_computes_each_setting_once_and_matches(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    ev = require_valid(load_evidence(ROOT / "data"))
    spec = next(s for s in load_specs(ROOT / "analyses")
                if s.evidence_base == "zinc_testosterone")
    calls: list[tuple[float | None, str | None]] = []

    def counted(ev_: object, spec_: object, r: float | None = None,
                unlabelled: str | None = None) -> pd.DataFrame:
        calls.append((r, unlabelled))
        return effects_for_spec(ev, spec, r=r, unlabelled=unlabelled)

    monkeypatch.setattr(synthesis, "effects_for_spec", counted)
    memo = synthesis.effects_memo(ev, spec)
    default = memo()
    # the spec's own correlation and reading are the default table, asked for three ways
    assert memo(r=spec.prepost_correlation) is default
    assert memo(unlabelled=spec.unlabelled_spread) is default
    other_r = next(r for r in (0.2, 0.8) if r != spec.prepost_correlation)
    assert memo(r=other_r) is memo(r=other_r)
    assert len(calls) == 2
    pd.testing.assert_frame_equal(default, effects_for_spec(ev, spec))
    pd.testing.assert_frame_equal(memo(r=other_r), effects_for_spec(ev, spec, r=other_r))
    with pytest.raises(AssertionError):  # another correlation is another table
        pd.testing.assert_frame_equal(memo(r=other_r), default)
