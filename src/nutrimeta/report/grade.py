"""Automated GRADE suggestions for the summary-of-findings table.

Each rule returns a :class:`DomainSuggestion`: a suggestion for a reviewer, stated with the rule
that produced it and the numbers it used. None of them is a final GRADE judgement.

Rules
-----
risk of bias
    Downgrade one level if more than 50% of the pooling weight comes from trials at high or
    unclear overall risk of bias (RoB 2 "no information" counts as unclear; "some concerns"
    does not). The overall judgement is the RoB 2 "overall" domain of
    ``risk_of_bias.csv`` when the base has one, else the ``risk_of_bias`` column of studies.csv.
inconsistency
    Downgrade one level if I² > 50%, or if the 95% prediction interval crosses 0 while the
    95% interval of the pooled effect does not.
indirectness
    Downgrade one level if more than 50% of the weight comes from trials whose baseline
    nutrient status is unknown (the question is conditional on baseline status). Population,
    intervention and outcome directness otherwise need a reviewer.
imprecision
    Downgrade one level if the 95% interval includes both no effect (0) and the minimal
    important difference (MID), or if fewer than 400 participants contribute (an
    optimal-information-size heuristic, OIS). Trials whose number of participants is unknown
    are never counted as zero: if the participants of the trials with known n already reach
    400, the OIS is met; if they do not and some trials have unknown n, the OIS cannot be
    assessed and imprecision is judged on the interval alone (the detail says so).
publication bias
    With at least 10 trials: downgrade one level if the Egger-type test gives p < 0.10. With
    fewer than 10 trials: not assessable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nutrimeta.report.fmt import fmt, fmt_int, fmt_p
from nutrimeta.schema import RANDOMISED_DESIGNS as RANDOMISED

LEVELS = ("very low", "low", "moderate", "high")
HIGH_OR_UNCLEAR = ("high", "unclear", "no_information")

RULE_RISK_OF_BIAS = ("downgrade if > 50% of the weight is from trials at high or unclear risk "
                     "of bias")
RULE_INCONSISTENCY = ("downgrade if I² > 50%, or if the 95% prediction interval crosses 0 while "
                      "the 95% interval of the pooled effect does not")
RULE_INDIRECTNESS = ("downgrade if > 50% of the weight is from trials with unknown baseline "
                     "status; other aspects of directness need a reviewer")
RULE_IMPRECISION = ("downgrade if the 95% interval includes both 0 and the MID, or if fewer "
                    "than 400 participants contribute (optimal information size, OIS). With "
                    "trials of unknown n: OIS met if the trials of known n reach 400; "
                    "otherwise OIS not assessable and the interval alone decides")
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


def risk_of_bias(weights: Iterable[float], judgements: Iterable[str | None],
                 share_of: str = "the weight") -> DomainSuggestion:
    """Risk-of-bias suggestion from study weights and overall risk-of-bias judgements.

    Parameters
    ----------
    weights
        Pooling weights of the trials (any scale).
    judgements
        Overall judgement per trial: low / some_concerns / high / unclear (RoB 2 wording
        "some concerns", "no information" too); missing counts as unclear.
    share_of
        What the weights are, for the detail (e.g. "the trials" for equal weights).
    """
    flags = [(str(j or "unclear")).strip().lower().replace(" ", "_") in HIGH_OR_UNCLEAR
             for j in judgements]
    w_flag, total = _weight_share(weights, flags)
    if total <= 0:
        return DomainSuggestion("risk of bias", "not assessable (no weights)", 0,
                                RULE_RISK_OF_BIAS, "no pooling weights")
    share = w_flag / total
    return _suggest("risk of bias", share > 0.5, RULE_RISK_OF_BIAS,
                    f"{fmt(100 * share, 0)}% of {share_of} from high/unclear risk trials")


def _shown(value: float | None, natural: Callable[[float], float] | None, unit: str) -> str:
    """A number on the scale the reader sees (e.g. % change for a ratio of means)."""
    if value is None:
        return fmt(value)
    return f"{fmt(natural(value) if natural else value)}{unit}"


def inconsistency(i2_percent: float | None, pooled: Mapping[str, Any] | None,
                  prediction: Mapping[str, Any] | None,
                  natural: Callable[[float], float] | None = None, unit: str = "",
                  source: str = "") -> DomainSuggestion:
    """Inconsistency suggestion.

    Parameters
    ----------
    i2_percent
        I² in percent (posterior median).
    pooled, prediction
        Summaries with ``q025`` and ``q975`` of the pooled effect and of the prediction.
    natural, unit
        How intervals are shown (e.g. log ratio of means to % change); the rule itself is
        applied on the analysis scale, where 0 is no effect.
    source
        Where I² and the prediction interval come from, when not from the analysis graded.
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
            details.append(f"95% prediction interval {_shown(plo, natural, unit)} to "
                           f"{_shown(phi, natural, unit)}")
            if pi_cross and not ci_cross:
                reasons.append("prediction interval crosses 0, pooled interval does not")
    if i2 is None and pi_cross is None:
        return DomainSuggestion("inconsistency", "not assessable (no I² or intervals)", 0,
                                RULE_INCONSISTENCY, "")
    detail = "; ".join(details) + (f" ({'; '.join(reasons)})" if reasons else "")
    if source:
        detail += f" [{source}]"
    return _suggest("inconsistency", bool(reasons), RULE_INCONSISTENCY, detail)


def indirectness(weights: Iterable[float], status_categories: Iterable[str | None],
                 share_of: str = "the weight") -> DomainSuggestion:
    """Indirectness suggestion from the weight share of trials with unknown baseline status."""
    flags = [(c or "unknown") == "unknown" for c in status_categories]
    w_flag, total = _weight_share(weights, flags)
    if total <= 0:
        return DomainSuggestion("indirectness", "not assessable (no weights)", 0,
                                RULE_INDIRECTNESS, "no pooling weights")
    share = w_flag / total
    return _suggest("indirectness", share > 0.5, RULE_INDIRECTNESS,
                    f"{fmt(100 * share, 0)}% of {share_of} from trials with unknown status")


def imprecision(pooled: Mapping[str, Any] | None, mid: float | None,
                n_total: float | None, n_unknown_trials: int = 0,
                natural: Callable[[float], float] | None = None,
                unit: str = "") -> DomainSuggestion:
    """Imprecision suggestion.

    Parameters
    ----------
    pooled
        Summary with ``q025`` and ``q975`` of the pooled effect.
    mid
        Minimal important difference on the effect scale (sign gives the beneficial
        direction); None when not specified.
    n_total
        Participants of the contributing trials whose n is known.
    n_unknown_trials
        Contributing trials whose number of participants is unknown (see the module's rule).
    natural, unit
        How the interval and the MID are shown (the rule is applied on the analysis scale).
    """
    reasons: list[str] = []
    details: list[str] = []
    lo = _num((pooled or {}).get("q025"))
    hi = _num((pooled or {}).get("q975"))
    m = _num(mid)
    n = _num(n_total)
    if lo is not None and hi is not None:
        details.append(f"95% interval {_shown(lo, natural, unit)} to {_shown(hi, natural, unit)}")
        if m is not None:
            details.append(f"MID {_shown(m, natural, unit)}")
            if lo <= 0 <= hi and lo <= m <= hi:
                reasons.append("interval includes 0 and the MID")
        else:
            details.append("no MID specified")
    unknown = int(n_unknown_trials or 0)
    if n is not None or unknown:
        known = n or 0.0
        if unknown:
            details.append(f"n = {fmt_int(known)} in the trials of known n; {unknown} "
                           f"trial{'s' if unknown != 1 else ''} with unknown n")
        else:
            details.append(f"n = {fmt_int(known)}")
        if known >= 400:
            if unknown:
                details.append("OIS met by the trials of known n alone")
        elif unknown:
            details.append("OIS not assessable (trials with unknown n): judged on the "
                           "interval alone")
        else:
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
                  egger_p: float | None, k: int | None, n_unknown_trials: int = 0,
                  natural: Callable[[float], float] | None = None, unit: str = "",
                  heterogeneity_source: str = "", share_of: str = "the weight"
                  ) -> dict[str, Any]:
    """Apply every rule to one outcome.

    Parameters
    ----------
    studies
        Bundle study rows (``study_id``, ``weight``, ``design``, ``baseline_status_category``).
    risk
        Overall risk-of-bias judgement per study_id (from studies.csv).
    pooled, prediction, i2_percent, mid, n_total, egger_p, k, n_unknown_trials
        As in the single-domain rules.
    natural, unit
        How numbers are shown (e.g. % change for a ratio of means).
    heterogeneity_source
        Where I² and the prediction interval come from, when not from the graded analysis.
    share_of
        What the study weights are (``"the trials"`` when each trial counts once).

    Returns
    -------
    dict
        ``start``, ``domains`` (list of suggestion dicts), ``certainty`` and a ``note``.
    """
    weights = [s.get("weight") or 0.0 for s in studies]
    domains = [
        risk_of_bias(weights, [risk.get(str(s.get("study_id"))) for s in studies], share_of),
        inconsistency(i2_percent, pooled, prediction, natural, unit, heterogeneity_source),
        indirectness(weights, [s.get("baseline_status_category") for s in studies], share_of),
        imprecision(pooled, mid, n_total, n_unknown_trials, natural, unit),
        publication_bias(egger_p, k),
    ]
    start = starting_level(weights, [s.get("design") for s in studies])
    return {
        "start": start,
        "domains": [d.to_dict() for d in domains],
        "certainty": certainty(start, domains),
        "note": "Automated suggestions from the stated rules; a reviewer makes the judgement.",
    }
