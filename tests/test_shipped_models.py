"""Every model the shipped specs build on the shipped evidence has a finite log density and
gradient at its initial point (no sampling); every model they skip is skipped for too few
trials, with the count in the message.

Cases are split at collection into built and skipped ones, so no test passes by returning
early; the split itself is checked (every model kind of the specs is built somewhere).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nutrimeta.effect_table import effects_for_spec
from nutrimeta.models.bayes import build_model, check_initial_point
from nutrimeta.schema import RANDOMISED_DESIGNS as RANDOMISED
from nutrimeta.spec import load_specs
from nutrimeta.synthesis import MIN_K, model_data_frame, prepare_model
from nutrimeta.validate import load_evidence, require_valid

ROOT = Path(__file__).parents[1]


@cache
def _shipped() -> tuple[dict, dict[str, pd.DataFrame]]:
    ev = require_valid(load_evidence(ROOT / "data"))
    specs = {s.evidence_base: s for s in load_specs(ROOT / "analyses")}
    return specs, {b: effects_for_spec(ev, s) for b, s in specs.items()}


def _rows(base: str, outcome: str, kind: str) -> pd.DataFrame:
    e = _shipped()[1][base]
    e = e[(e["outcome"] == outcome) & e["poolable"]]
    return e if kind == "all_evidence" else e[e["design"].isin(RANDOMISED)]


def _k_trials(rows: pd.DataFrame) -> int:
    """Trials, not rows: contrasts of one trial (dose arms, strata) share its ``trial_id``."""
    return int(rows["trial_id"].fillna(rows["study_id"]).nunique())


@cache
def _cases() -> dict[str, list[tuple[str, str, str]]]:
    """``built`` and ``skipped`` (evidence base, outcome, kind) cases, by trial count."""
    out: dict[str, list[tuple[str, str, str]]] = {"built": [], "skipped": []}
    for s in _shipped()[0].values():
        for o in s.outcomes:
            for kind in s.models:
                enough = _k_trials(_rows(s.evidence_base, o.id, kind)) >= MIN_K[kind]
                out["built" if enough else "skipped"].append((s.evidence_base, o.id, kind))
    return out


def _prepare(base: str, outcome: str, kind: str):
    spec = _shipped()[0][base]
    return prepare_model(kind, model_data_frame(_rows(base, outcome, kind)), spec,
                         spec.outcome(outcome))


@pytest.mark.parametrize(("base", "outcome", "kind"), _cases()["built"],
                         ids=["/".join(c) for c in _cases()["built"]])
def test_shipped_model_has_finite_logp_and_gradient(base: str, outcome: str, kind: str) -> None:
    prepared = _prepare(base, outcome, kind)
    assert not isinstance(prepared, str), prepared
    data, priors, build_kind, _ = prepared
    assert data.n == len(_rows(base, outcome, kind))
    model = build_model(data, priors, build_kind, moderator=kind == "all_evidence")
    logp, grad = check_initial_point(model)
    assert np.isfinite(logp) and grad.size > 0 and np.all(np.isfinite(grad))


@pytest.mark.parametrize(("base", "outcome", "kind"), _cases()["skipped"],
                         ids=["/".join(c) for c in _cases()["skipped"]])
def test_shipped_model_skipped_for_too_few_trials(base: str, outcome: str, kind: str) -> None:
    k = _k_trials(_rows(base, outcome, kind))
    assert _prepare(base, outcome, kind) == (
        f"needs at least {MIN_K[kind]} poolable trials; {k} available")


def test_every_model_kind_is_built_on_shipped_data() -> None:
    kinds = {kind for s in _shipped()[0].values() for kind in s.models}
    assert {kind for _, _, kind in _cases()["built"]} == kinds
