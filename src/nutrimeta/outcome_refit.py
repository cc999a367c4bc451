"""Refit some outcomes of an evidence base (``nutrimeta fit --outcome``) and merge them into
its saved results bundle, leaving the other outcomes' results as they were.

The merge rule
--------------
* There must be a saved bundle for the base, holding the same outcomes as the spec and fitted
  with the same spec (spec hash): otherwise the command refuses (nothing is written) and says
  to refit the whole base.
* The named outcomes are refitted (or left alone when they were fitted from the current inputs
  and ``--force`` is not given); the claims and the flow counts are recomputed from the merged
  outcomes (claims read the saved posteriors, nothing else is refitted).
* When the inputs (data, code, data version) changed since the other outcomes were fitted,
  the bundle records, per outcome, the cache key of the inputs it was fitted from
  (``provenance.outcome_cache_keys``); the report states it, and a plain ``nutrimeta fit``
  then refits the whole base. Once every outcome is fitted from the same inputs, the bundle's
  provenance is that of the current inputs and the per-outcome keys are dropped.
* The bundle is written atomically; the previous one is kept as ``<base>.previous.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nutrimeta.results import Bundle, load_bundle

Echo = Callable[[str], None]


def check_outcomes(specs: Sequence[Any], outcomes: Sequence[str]) -> None:
    """Raise a one-line ValueError when an outcome key is in none of ``specs``."""
    valid = sorted({o.id for s in specs for o in s.outcomes})
    unknown = sorted(set(outcomes) - set(valid))
    if unknown:
        raise ValueError(f"unknown outcome(s) {', '.join(unknown)}; valid: {', '.join(valid)}")


def wanted_outcomes(spec: Any, outcomes: Sequence[str]) -> list[str]:
    """The named outcomes that belong to ``spec``, in the spec's order."""
    return [o.id for o in spec.outcomes if o.id in set(outcomes)]


def outcome_keys(bundle: Bundle) -> dict[str, str]:
    """The cache key of the inputs each outcome of ``bundle`` was fitted from."""
    keys = bundle.provenance.outcome_cache_keys or {}
    return {o: keys.get(o, bundle.provenance.cache_key) for o in bundle.outcomes}


def merge_refusal(path: Path, spec: Any) -> str | None:
    """Why the outcomes of ``spec`` cannot be merged into the bundle at ``path`` (None when
    they can)."""
    base = spec.evidence_base
    whole = f"run `nutrimeta fit --base {base}` to fit all its outcomes"
    if not path.exists():
        return f"{base}: no saved results to merge into ({path.name} is missing); {whole}"
    saved = load_bundle(path)
    if set(saved.outcomes) != {o.id for o in spec.outcomes}:
        return (f"{base}: the saved results hold outcomes {', '.join(saved.outcomes)}, the spec "
                f"{', '.join(o.id for o in spec.outcomes)}; {whole}")
    if saved.provenance.spec_hash != spec.spec_hash:
        return f"{base}: the analysis spec changed since the saved results; {whole}"
    return None


def refit_outcomes(ev: Any, spec: Any, wanted: Sequence[str], key: str,
                   provenance: dict[str, Any], effects: Any, path: Path, fits_dir: Path,
                   echo: Echo, force: bool) -> tuple[Bundle | None, str]:
    """Refit ``wanted`` outcomes of ``spec`` and merge them into the bundle at ``path``.

    Returns the merged bundle (None when nothing was refitted) and a line for the user. The
    caller checks :func:`merge_refusal` first and writes the bundle."""
    from nutrimeta import synthesis
    from nutrimeta.results import clean_json

    saved = load_bundle(path)
    keys = outcome_keys(saved)
    if not force and all(keys[o] == key for o in wanted):
        return None, (f"{spec.evidence_base}: {', '.join(wanted)} unchanged (cache key "
                      f"{key[:12]}), not refitted")
    fit_prov = {k: provenance[k] for k in ("package_version", "data_version", "data_hash",
                                            "spec_hash")}
    outcomes = dict(saved.outcomes)
    by_id = {o.id: o for o in spec.outcomes}
    effects_for = synthesis.effects_memo(ev, spec)
    for oid in wanted:
        outcomes[oid] = synthesis.outcome_entry(spec, by_id[oid], effects, ev, fits_dir,
                                                fit_prov, echo, effects_for)
    keys.update({o: key for o in wanted})
    data = saved.model_dump(mode="json")
    data["outcomes"] = {o: clean_json(outcomes[o]) for o in saved.outcomes}
    data["claims"] = clean_json(synthesis.claim_entries(spec, outcomes))
    flow = data["flow"]
    for oid in wanted:
        flow["poolable_per_outcome"][oid] = outcomes[oid].k
        flow["poolable_all_designs_per_outcome"][oid] = outcomes[oid].k_all_designs
    if all(k == key for k in keys.values()):
        data["provenance"] = {**provenance, "outcome_cache_keys": None}
        note = ""
    else:
        data["provenance"]["outcome_cache_keys"] = keys
        others = sorted(o for o, k in keys.items() if k != key)
        note = (f"; inputs changed since {', '.join(others)} were fitted: the bundle records "
                "which inputs each outcome comes from, and a plain `nutrimeta fit` refits all")
    return Bundle.model_validate(data), (f"{spec.evidence_base}: refitted {', '.join(wanted)}, "
                                         f"merged into {path}{note}")


def restrict(bundle: Bundle, outcomes: Sequence[str]) -> Bundle:
    """``bundle`` limited to ``outcomes`` (for a report on those outcomes only): the other
    outcomes, their claims, records not pooled, flow counts and spec entries are left out.
    An outcome the bundle does not hold is a one-line ValueError listing the valid ones."""
    unknown = sorted(set(outcomes) - set(bundle.outcomes))
    if unknown:
        raise ValueError(f"{bundle.evidence_base}: unknown outcome(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(bundle.outcomes)}")
    keep = set(outcomes)
    data = bundle.model_dump(mode="json")
    data["outcomes"] = {o: v for o, v in data["outcomes"].items() if o in keep}
    data["claims"] = [c for c in data["claims"] if c["outcome"] in keep]
    data["not_poolable"] = [r for r in data["not_poolable"] if r["outcome"] in keep]
    data["spec"]["outcomes"] = [o for o in data["spec"]["outcomes"] if o["id"] in keep]
    for name in ("poolable_per_outcome", "poolable_all_designs_per_outcome"):
        data["flow"][name] = {o: v for o, v in data["flow"][name].items() if o in keep}
    return Bundle.model_validate(data)


def scope_note(bundle: Bundle, restricted_to: Sequence[str] | None) -> str:
    """What a report shows when it is limited to some outcomes, or when its outcomes were
    fitted from different inputs (empty otherwise)."""
    parts = []
    if restricted_to:
        parts.append(f"This report is limited to {', '.join(restricted_to)} "
                     "(rendered with --outcome); `nutrimeta report` renders every outcome.")
    keys = bundle.provenance.outcome_cache_keys
    if keys:
        groups: dict[str, list[str]] = {}
        for o, k in keys.items():
            if o in bundle.outcomes:
                groups.setdefault(k, []).append(o)
        if set(groups) - {bundle.provenance.cache_key}:
            parts.append("Outcomes were fitted from different inputs (refitted alone with "
                         "--outcome): " + "; ".join(f"{', '.join(v)} from inputs {k[:12]}"
                                                    for k, v in groups.items())
                         + f"; the provenance below describes inputs "
                         f"{bundle.provenance.cache_key[:12]}.")
    return " ".join(parts)
