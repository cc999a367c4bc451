"""Every model the shipped specs build on the shipped evidence has a finite log density and
gradient at its initial point (no sampling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nutrimeta.effect_table import effects_for_spec
from nutrimeta.models.bayes import build_model, check_initial_point
from nutrimeta.schema import RANDOMISED_DESIGNS as RANDOMISED
from nutrimeta.spec import load_specs
from nutrimeta.synthesis import model_data_frame, prepare_model
from nutrimeta.validate import load_evidence, require_valid

ROOT = Path(__file__).parents[1]


def _cases() -> list[tuple[str, str, str]]:
    return [(s.evidence_base, o.id, kind) for s in load_specs(ROOT / "analyses")
            for o in s.outcomes for kind in s.models]


@pytest.fixture(scope="module")
def shipped() -> tuple[dict, dict]:
    ev = require_valid(load_evidence(ROOT / "data"))
    specs = {s.evidence_base: s for s in load_specs(ROOT / "analyses")}
    return specs, {b: effects_for_spec(ev, s) for b, s in specs.items()}


@pytest.mark.parametrize(("base", "outcome", "kind"), _cases(),
                         ids=["/".join(c) for c in _cases()])
def test_shipped_model_has_finite_logp_and_gradient(shipped: tuple[dict, dict], base: str,
                                                    outcome: str, kind: str) -> None:
    specs, effects = shipped
    spec = specs[base]
    e = effects[base]
    e = e[(e["outcome"] == outcome) & e["poolable"]]
    if kind != "all_evidence":
        e = e[e["design"].isin(RANDOMISED)]
    prepared = prepare_model(kind, model_data_frame(e), spec, spec.outcome(outcome))
    if isinstance(prepared, str):
        assert "needs at least" in prepared or "no trial" in prepared
        return
    data, priors, build_kind, _ = prepared
    model = build_model(data, priors, build_kind, moderator=kind == "all_evidence")
    logp, grad = check_initial_point(model)
    assert np.isfinite(logp) and np.all(np.isfinite(grad))
