"""One-off migration of results files written before results schema version 2 (release
2026.11.0): probability key strings become statements; no number changes."""

from __future__ import annotations

import json
import re
from typing import Any

from nutrimeta.results import (
    SCHEMA_VERSION,
    Bundle,
    ReportResults,
    VerdictRule,
    benefit_relation,
    clean_json,
)

_PROB_KEY = re.compile(r"^P\((\w+) ([<>]) (-?[0-9.eE+-]+)\)$")
_BETTER_KEY = re.compile(r"^P\((\w+) better than (\w+)\)$")


def _migrate_probabilities(probs: dict[str, float], beneficial: str) -> list[dict[str, Any]]:
    out = []
    for key, value in probs.items():
        m = _PROB_KEY.match(key)
        if m:
            out.append({"quantity": m[1], "relation": m[2], "threshold": float(m[3]),
                        "value": value})
            continue
        b = _BETTER_KEY.match(key)
        if b and (b[1], b[2]) == ("effect_deficient", "effect_replete"):
            out.append({"quantity": "deficient_minus_replete",
                        "relation": benefit_relation(beneficial), "threshold": 0.0,
                        "value": value})
            continue
        raise ValueError(f"cannot read probability key {key!r}")
    return out


def migrate_bundle(old: dict[str, Any]) -> dict[str, Any]:
    """Bring a bundle written before schema version 2 to the current layout.

    Probability key strings become :class:`Probability` records, an empty
    ``tau_prior_posterior`` becomes absent, the verdict rule is recorded (the rule was the same
    before), and nulls of optional fields are dropped. Numbers are not changed.
    """
    b = json.loads(json.dumps(old))
    if b.get("schema_version", 1) >= SCHEMA_VERSION:
        return b
    b["schema_version"] = SCHEMA_VERSION
    b.setdefault("verdict_rule", VerdictRule().model_dump())
    for oc in b.get("outcomes", {}).values():
        for m in oc.get("models", {}).values():
            if isinstance(m.get("probabilities"), dict):
                m["probabilities"] = _migrate_probabilities(m["probabilities"],
                                                            oc["beneficial"])
        if not oc.get("tau_prior_posterior"):
            oc.pop("tau_prior_posterior", None)
    return clean_json(Bundle.model_validate(b))


def migrate_report_results(old: dict[str, Any]) -> dict[str, Any]:
    """A saved ``results.json`` of a report or release, with its bundle migrated."""
    out = dict(old)
    out["bundle"] = migrate_bundle(old["bundle"])
    return clean_json(ReportResults.model_validate(out))
