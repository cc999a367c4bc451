"""A fresh fit of the shipped data agrees with the committed release within Monte Carlo error.

Bit-identity across machines is not promised by the samplers, so each sampled posterior mean
is compared within ``N_MCSE`` combined Monte Carlo standard errors (plus a small absolute
slack for rounding in the bundle), and exact (quadrature) results to the bundle's rounding.
Only models that converged in both runs are compared; a model that passed the gate in the
release must pass it again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[1]
RELEASE = max((p for p in (ROOT / "releases").iterdir() if p.is_dir()), key=lambda p: [
    int(x) for x in p.name.split(".")])
N_MCSE = 4.0


def _bundle(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    return data.get("bundle", data)


def disagreements(fresh: dict[str, Any], release: dict[str, Any]) -> tuple[list[str], int]:
    """Every posterior mean (sampled: beyond N_MCSE MCSE; exact: beyond 1e-4) that moved,
    and every model that passed in the release but not now; and the number compared."""
    out, n = [], 0
    for oid, o_rel in release.get("outcomes", {}).items():
        o_new = fresh["outcomes"][oid]
        for kind, m_rel in o_rel.get("models", {}).items():
            m_new = o_new["models"].get(kind, {})
            if m_rel.get("status") == "ok" and m_new.get("status") != "ok":
                out.append(f"{oid}/{kind}: {m_new.get('status')} ({m_new.get('reason')})")
                continue
            if m_rel.get("status") != "ok":
                continue
            for name, p_rel in (m_rel.get("parameters") or {}).items():
                p_new = m_new["parameters"].get(name)
                if p_new is None or "mean" not in p_rel:
                    continue
                if "mcse_mean" in p_rel:
                    tol = N_MCSE * math.hypot(p_rel["mcse_mean"], p_new["mcse_mean"]) + 1e-6
                else:
                    tol = 1e-4 * max(1.0, abs(p_rel["mean"]))
                n += 1
                if abs(p_new["mean"] - p_rel["mean"]) > tol:
                    out.append(f"{oid}/{kind}/{name}: {p_new['mean']:.5g} vs release "
                               f"{p_rel['mean']:.5g} (tolerance {tol:.2g})")
    return out, n


@pytest.mark.slow
def test_fresh_fit_agrees_with_release(tmp_path):
    from nutrimeta.pipeline import run_fits

    list(run_fits(ROOT / "data", ROOT / "analyses", tmp_path, force=True))
    compared = 0
    for rel in sorted(RELEASE.glob("*/results.json")):
        fresh = _bundle(tmp_path / "results" / f"{rel.parent.name}.json")
        problems, n = disagreements(fresh, _bundle(rel))
        assert not problems, problems
        compared += n
    assert compared > 50
