"""Living evidence, kept as one import place for code written against it.

The three jobs live in their own modules: :mod:`nutrimeta.intake` (add a trial report),
:mod:`nutrimeta.report.changes` (what changed since the last release, rendered by the report
stage) and :mod:`nutrimeta.models.next_trial` (value of one more trial). Names are resolved on
first use, so importing this module loads none of them.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "nutrimeta.intake": ("AddOutcome", "NewRecord", "add_record", "load_record",
                         "prompt_record"),
    "nutrimeta.report.changes": ("Change", "Tolerance", "changes_markdown",
                                 "changes_since_release", "compare_bundles", "latest_release"),
    "nutrimeta.models.next_trial": ("next_trial_curve", "next_trial_value",
                                    "posterior_from_bundle", "_with_trial"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(n for n in _WHERE if not n.startswith("_"))


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
