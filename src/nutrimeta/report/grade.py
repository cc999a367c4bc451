"""Automated GRADE suggestions for the summary-of-findings table.

Each rule returns a :class:`DomainSuggestion`: a suggestion for a reviewer, stated with the rule
that produced it and the numbers it used. None of them is a final GRADE judgement.

Rules
-----
risk of bias
    Downgrade one level if more than 50% of the pooling weight comes from trials at high or
    unclear overall risk of bias.
inconsistency
    Downgrade one level if I² > 50%, or if the 95% prediction interval crosses 0 while the
    95% interval of the pooled effect does not.
indirectness
    Downgrade one level if more than 50% of the weight comes from trials whose baseline
    nutrient status is unknown (the question is conditional on baseline status). Population,
    intervention and outcome directness otherwise need a reviewer.
imprecision
    Downgrade one level if the 95% interval includes both no effect (0) and the minimal
    important difference (MID), or if the total number of participants is below 400 (an
    optimal-information-size heuristic).
publication bias
    With at least 10 trials: downgrade one level if the Egger-type test gives p < 0.10. With
    fewer than 10 trials: not assessable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nutrimeta.report.fmt import fmt, fmt_int, fmt_interval, fmt_p
from nutrimeta.schema import RANDOMISED_DESIGNS as RANDOMISED

LEVELS = ("very low", "low", "moderate", "high")
HIGH_OR_UNCLEAR = ("high", "unclear")

RULE_RISK_OF_BIAS = ("downgrade if > 50% of the weight is from trials at high or unclear risk "
                     "of bias")
RULE_INCONSISTENCY = ("downgrade if I² > 50%, or if the 95% prediction interval crosses 0 while "
                      "the 95% interval of the pooled effect does not")
RULE_INDIRECTNESS = ("downgrade if > 50% of the weight is from trials with unknown baseline "
                     "status; other aspects of directness need a reviewer")
RULE_IMPRECISION = ("downgrade if the 95% interval includes both 0 and the MID, or if the total "
                    "number of participants is < 400 (optimal information size heuristic)")
RULE_PUBLICATION_BIAS = ("with k >= 10: downgrade if the Egger-type test gives p < 0.10; "
                         "with k < 10: not assessable")


@dataclass(frozen=True)
class DomainSuggestion:
    """An automated suggestion for one GRADE domain.

    Attributes
    ----------
    domain
        GRADE domain name.
    suggestion
        ``"no downgrade"``, ``"downgrade 1 level"`` or ``"not assessable (...)"``.
    downgrade
        Levels to downgrade (0 or 1).
    rule
        The rule that produced the suggestion.
    detail
        The numbers the rule used.
    """

    domain: str
    suggestion: str
    downgrade: int
    rule: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _suggest(domain: str, down: bool, rule: str, detail: str) -> DomainSuggestion:
    return DomainSuggestion(domain, "downgrade 1 level" if down else "no downgrade",
                            1 if down else 0, rule, detail)


def _weight_share(weights: Iterable[float], flags: Iterable[bool]) -> tuple[float, float]:
    """Return (weight with flag, total weight)."""
    w_flag = 0.0
    total = 0.0
    for w, f in zip(weights, flags, strict=True):
        wv = _num(w) or 0.0
        total += wv
        if f:
            w_flag += wv
    return w_flag, total


def risk_of_bias(weights: Iterable[float], judgements: Iterable[str | None]) -> DomainSuggestion:
    """Risk-of-bias suggestion from study weights and overall risk-of-bias judgements.

    Parameters
    ----------
    weights
        Pooling weights of the trials (any scale).
    judgements
        Overall judgement per trial: low / some_concerns / high / unclear; missing counts as
        unclear.
    """
    flags = [(j or "unclear") in HIGH_OR_UNCLEAR for j in judgements]
    w_flag, total = _weight_share(weights, flags)
    if total <= 0:
        return DomainSuggestion("risk of bias", "not assessable (no weights)", 0,
                                RULE_RISK_OF_BIAS, "no pooling weights")
    share = w_flag / total
    return _suggest("risk of bias", share > 0.5, RULE_RISK_OF_BIAS,
                    f"{fmt(100 * share, 0)}% of the weight from high/unclear risk trials")


def inconsistency(i2_percent: float | None, pooled: Mapping[str, Any] | None,
                  prediction: Mapping[str, Any] | None) -> DomainSuggestion:
    """Inconsistency suggestion.

    Parameters
    ----------
    i2_percent
        I² in percent (posterior median).
    pooled, prediction
        Summaries with ``q025`` and ``q975`` of the pooled effect and of the prediction.
    """
    i2 = _num(i2_percent)
    reasons: list[str] = []
    details: list[str] = []
    if i2 is not None:
        details.append(f"I² = {fmt(i2, 0)}%")
        if i2 > 50:
            reasons.append("I² > 50%")
    pi_cross = ci_cross = None
    if pooled and prediction:
        plo, phi = _num(prediction.get("q025")), _num(prediction.get("q975"))
        clo, chi = _num(pooled.get("q025")), _num(pooled.get("q975"))
        if None not in (plo, phi, clo, chi):
            pi_cross = plo < 0 < phi  # type: ignore[operator]
            ci_cross = clo < 0 < chi  # type: ignore[operator]
            details.append(f"95% prediction interval {fmt_interval(plo, phi)}")
            if pi_cross and not ci_cross:
                reasons.append("prediction interval crosses 0, pooled interval does not")
    if i2 is None and pi_cross is None:
        return DomainSuggestion("inconsistency", "not assessable (no I² or intervals)", 0,
                                RULE_INCONSISTENCY, "")
    detail = "; ".join(details) + (f" ({'; '.join(reasons)})" if reasons else "")
    return _suggest("inconsistency", bool(reasons), RULE_INCONSISTENCY, detail)


def indirectness(weights: Iterable[float],
                 status_categories: Iterable[str | None]) -> DomainSuggestion:
    """Indirectness suggestion from the weight share of trials with unknown baseline status."""
    flags = [(c or "unknown") == "unknown" for c in status_categories]
    w_flag, total = _weight_share(weights, flags)
    if total <= 0:
        return DomainSuggestion("indirectness", "not assessable (no weights)", 0,
                                RULE_INDIRECTNESS, "no pooling weights")
    share = w_flag / total
    return _suggest("indirectness", share > 0.5, RULE_INDIRECTNESS,
                    f"{fmt(100 * share, 0)}% of the weight from trials with unknown status")


def imprecision(pooled: Mapping[str, Any] | None, mid: float | None,
                n_total: float | None) -> DomainSuggestion:
    """Imprecision suggestion.

    Parameters
    ----------
    pooled
        Summary with ``q025`` and ``q975`` of the pooled effect.
    mid
        Minimal important difference on the effect scale (sign gives the beneficial
        direction); None when not specified.
    n_total
        Participants contributing to the pooled estimate.
    """
    reasons: list[str] = []
    details: list[str] = []
    lo = _num((pooled or {}).get("q025"))
    hi = _num((pooled or {}).get("q975"))
    m = _num(mid)
    n = _num(n_total)
    if lo is not None and hi is not None:
        details.append(f"95% interval {fmt_interval(lo, hi)}")
        if m is not None:
            details.append(f"MID {fmt(m)}")
            if lo <= 0 <= hi and lo <= m <= hi:
                reasons.append("interval includes 0 and the MID")
        else:
            details.append("no MID specified")
    if n is not None:
        details.append(f"n = {fmt_int(n)}")
        if n < 400:
            reasons.append("n < 400")
    if not details:
        return DomainSuggestion("imprecision", "not assessable (no interval or n)", 0,
                                RULE_IMPRECISION, "")
    detail = "; ".join(details) + (f" ({'; '.join(reasons)})" if reasons else "")
    return _suggest("imprecision", bool(reasons), RULE_IMPRECISION, detail)


def publication_bias(egger_p: float | None, k: int | None) -> DomainSuggestion:
    """Publication-bias suggestion from the Egger-type small-study test."""
    kk = int(k) if k is not None and _num(k) is not None else 0
    p = _num(egger_p)
    if kk < 10:
        return DomainSuggestion("publication bias", "not assessable (k<10)", 0,
                                RULE_PUBLICATION_BIAS, f"k = {kk}")
    if p is None:
        return DomainSuggestion("publication bias", "not assessable (no test result)", 0,
                                RULE_PUBLICATION_BIAS, f"k = {kk}")
    return _suggest("publication bias", p < 0.10, RULE_PUBLICATION_BIAS,
                    f"k = {kk}; Egger p = {fmt_p(p)}")


def starting_level(weights: Iterable[float], designs: Iterable[str | None]) -> str:
    """Starting certainty: high when most of the weight is randomised, else low."""
    flags = [(d or "") in RANDOMISED for d in designs]
    w_rand, total = _weight_share(weights, flags)
    return "high" if total > 0 and w_rand / total > 0.5 else "low"


def certainty(start: str, suggestions: Iterable[DomainSuggestion]) -> str:
    """Suggested certainty after applying the downgrades to the starting level."""
    idx = LEVELS.index(start) - sum(s.downgrade for s in suggestions)
    return LEVELS[max(idx, 0)]


def grade_outcome(studies: list[Mapping[str, Any]], risk: Mapping[str, str | None],
                  pooled: Mapping[str, Any] | None, prediction: Mapping[str, Any] | None,
                  i2_percent: float | None, mid: float | None, n_total: float | None,
                  egger_p: float | None, k: int | None) -> dict[str, Any]:
    """Apply every rule to one outcome.

    Parameters
    ----------
    studies
        Bundle study rows (``study_id``, ``weight``, ``design``, ``baseline_status_category``).
    risk
        Overall risk-of-bias judgement per study_id (from studies.csv).
    pooled, prediction, i2_percent, mid, n_total, egger_p, k
        As in the single-domain rules.

    Returns
    -------
    dict
        ``start``, ``domains`` (list of suggestion dicts), ``certainty`` and a ``note``.
    """
    weights = [s.get("weight") or 0.0 for s in studies]
    domains = [
        risk_of_bias(weights, [risk.get(str(s.get("study_id"))) for s in studies]),
        inconsistency(i2_percent, pooled, prediction),
        indirectness(weights, [s.get("baseline_status_category") for s in studies]),
        imprecision(pooled, mid, n_total),
        publication_bias(egger_p, k),
    ]
    start = starting_level(weights, [s.get("design") for s in studies])
    return {
        "start": start,
        "domains": [d.to_dict() for d in domains],
        "certainty": certainty(start, domains),
        "note": "Automated suggestions from the stated rules; a reviewer makes the judgement.",
    }
