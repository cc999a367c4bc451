"""Number formatting shared by every part of the report (tables, text, figures and tests)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from markupsafe import Markup

#: Placeholder printed where a number is missing.
MISSING = "NR"


def _finite(x: Any) -> float | None:
    """Return ``x`` as a finite float, or None when it is missing or not finite."""
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt(x: Any, digits: int = 2) -> str:
    """Format an estimate with a fixed number of decimals.

    Parameters
    ----------
    x
        Number (or None / NaN, printed as ``NR``).
    digits
        Decimals.

    Returns
    -------
    str
        e.g. ``"1.32"``, ``"-0.20"``; negative zero is printed as ``"0.00"``.
    """
    v = _finite(x)
    if v is None:
        return MISSING
    s = f"{v:.{digits}f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s


def fmt_prob(p: Any) -> str:
    """Format a posterior probability: two decimals, ``>0.99`` / ``<0.01`` at the extremes."""
    v = _finite(p)
    if v is None:
        return MISSING
    if v > 0.995:
        return ">0.99"
    if v < 0.005:
        return "<0.01"
    return f"{v:.2f}"


def fmt_prob_eq(p: Any) -> str:
    """A probability with its relation sign, for text: ``"= 0.82"``, ``"> 0.99"``, ``"< 0.01"``."""
    s = fmt_prob(p)
    return f"{s[0]} {s[1:]}" if s[0] in "<>" else f"= {s}"


def fmt_p(p: Any) -> str:
    """Format a frequentist p-value: three decimals, ``<0.001`` below that."""
    v = _finite(p)
    if v is None:
        return MISSING
    if v < 0.001:
        return "<0.001"
    return f"{v:.3f}"


def fmt_int(x: Any) -> str:
    """Format a count."""
    v = _finite(x)
    if v is None:
        return MISSING
    return str(round(v))


def fmt_interval(lo: Any, hi: Any, digits: int = 2) -> str:
    """Format an interval as ``lo to hi`` (words, so negative limits stay readable)."""
    return f"{fmt(lo, digits)} to {fmt(hi, digits)}"


def fmt_estimate(summary: Any, digits: int = 2) -> str:
    """Format a posterior summary (a :class:`~nutrimeta.results.Summary` or a mapping with
    ``mean``, ``q025``, ``q975``) as ``mean (q025 to q975)``."""
    if not summary:
        return MISSING
    if not isinstance(summary, dict):
        summary = {k: getattr(summary, k) for k in ("mean", "q025", "q975")}
    return (f"{fmt(summary.get('mean'), digits)} "
            f"({fmt_interval(summary.get('q025'), summary.get('q975'), digits)})")


# --------------------------------------------------------------------------- tables


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def html_table(df: pd.DataFrame, cls: str = "data") -> Markup:
    """A formatted frame as an HTML table (cells escaped)."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False, name=None))
    return Markup(f'<table class="{_esc(cls)}"><thead><tr>{head}</tr></thead>'
                  f"<tbody>{body}</tbody></table>")


def md_table(df: pd.DataFrame) -> str:
    """A formatted frame as a GitHub-flavoured Markdown table."""
    if df.empty:
        return "_None._"

    def cell(v: Any) -> str:
        return str("" if v is None else v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |",
             "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in df.itertuples(index=False, name=None)]
    return "\n".join(lines)


def describe(value: Any) -> str:
    """Plain text for a spec value (string, number, list or mapping)."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {describe(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(describe(v) for v in value)
    return str(value)
