"""nutrimeta: Bayesian evidence synthesis of micronutrient supplementation and hormonal function.

Meta-analysis of your own data, in metafor's words: :func:`escalc`, :func:`rma`,
:func:`bayes_rma` (exact posterior) and :func:`bayes_sampled` (NUTS); see :mod:`nutrimeta.api`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "bayes_rma", "bayes_sampled", "escalc", "rma"]


def __getattr__(name: str) -> Any:
    """The public functions, imported on first use (the command line stays fast)."""
    if name in ("bayes_rma", "bayes_sampled", "escalc", "rma"):
        from nutrimeta import api

        return getattr(api, name)
    raise AttributeError(f"module 'nutrimeta' has no attribute {name!r}")
