"""The reader-facing summary of a report: the bottom line, the summary-of-findings table, the
PRISMA 2020 flow of reports and which failed fits matter.

Everything is read from the results bundle and the curated tables; nothing is refitted. The
sentences follow the bundle's verdict rule (``Bundle.verdict_rule``) and the automated GRADE
suggestions of :mod:`nutrimeta.report.grade`; a moderator estimate is never stated as a finding.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from nutrimeta.analysis_results import AnalysisMu
from nutrimeta.report.fmt import fmt, fmt_int
from nutrimeta.results import Bundle, ModelResult, OutcomeResult
from nutrimeta.schema import REASON_CODES

RATIO_MEASURES = ("ROM",)
MIN_TRIALS_FUNNEL = 10  # funnel plots and small-study tests (Cochrane Handbook 13.3.5.4)
MODERATOR_PARAMETERS = ("slope", "effect_deficient", "effect_replete")
CERTAINTY_WORDS = {"high": "", "moderate": "probably ", "low": "may ", "very low": ""}


# --------------------------------------------------------------------------- numbers


def natural(value: float | None, measure: str) -> float | None:
    """An effect on its natural scale: ratio-of-means outcomes (log scale) as % change."""
    if value is None or not math.isfinite(value):
        return None
    return 100.0 * math.expm1(value) if measure in RATIO_MEASURES else value


def natural_unit(outcome: OutcomeResult) -> str:
    """Unit of :func:`natural` for ``outcome`` (a difference of percentages is in percentage
    points)."""
    if outcome.measure in RATIO_MEASURES:
        return "%"
    return "percentage points" if outcome.effect_unit == "%" else outcome.effect_unit


def effect_text(outcome: OutcomeResult, model: ModelResult | AnalysisMu) -> str:
    """Pooled effect with its 95% credible interval in natural units, e.g. ``-0.7 %``; from a
    model's ``mu`` or an analysis's ``mu``."""
    mu = model.parameters["mu"] if isinstance(model, ModelResult) else model
    unit = natural_unit(outcome)
    sep = "" if unit == "%" else " "
    mean, lo, hi = (natural(v, outcome.measure) for v in (mu.mean, mu.q025, mu.q975))
    what = "change" if outcome.measure in RATIO_MEASURES else "difference"
    return (f"{what} {fmt(mean)}{sep}{unit} (95% CrI {fmt(lo)} to {fmt(hi)}{sep}{unit})"
            .replace(" )", ")"))


def unknown_n_trials(outcome: OutcomeResult) -> int:
    """Trials pooled for ``outcome`` whose number of participants is not known."""
    ids: dict[str, bool] = {}
    for s in outcome.studies:
        known = s.n_intervention is not None or s.n_control is not None
        ids[s.study_id] = ids.get(s.study_id, False) or known
    return sum(not known for known in ids.values())


def trials_text(outcome: OutcomeResult) -> str:
    """``"2 randomised trials, 63 participants"``; when some trials did not report their n,
    ``"2 randomised trials (1 with unknown n), 63 participants in the other"``: the
    participant count never reads as if it covered every trial."""
    k = outcome.k
    unknown = unknown_n_trials(outcome)
    trials = f"{k} randomised trial{'s' if k != 1 else ''}"
    if not unknown:
        return f"{trials}, {fmt_int(outcome.n_participants)} participants"
    if unknown >= k:
        return f"{trials}, number of participants not reported"
    known = k - unknown
    return (f"{trials} ({unknown} with unknown n), {fmt_int(outcome.n_participants)} "
            f"participants in the {'other' if known == 1 else f'other {known}'}")


# --------------------------------------------------------------------------- bottom line


def _verb(outcome: OutcomeResult) -> str:
    return "lowers" if outcome.beneficial == "decrease" else "raises"


def outcome_sentence(bundle: Bundle, oid: str, certainty: str | None) -> str:
    """One plain sentence for one outcome, from the verdict rule and the GRADE certainty."""
    o = bundle.outcomes[oid]
    nutrient = bundle.spec.moderator.nutrient
    label = o.label
    first = label.split()[0] if label.split() else label
    label_l = label[0].lower() + label[1:] if first[1:].islower() else label
    rule = bundle.verdict_rule
    cert = f"; {certainty} certainty" if certainty else ""
    primary = (o.analyses or {}).get(bundle.spec.primary_analysis)
    if (bundle.spec.primary_analysis == "all_reports" and primary is not None
            and primary.status == "ok" and primary.mu is not None):
        # the verdict follows the declared primary analysis (every report by its route)
        k, p, eff = primary.k_trials, primary.mu.p_benefit.value, effect_text(o, primary.mu)
        n = (f"{fmt_int(primary.n_randomised)} participants" if primary.n_randomised
             is not None else "participants not known for every trial")
        trials = f"{k} randomised trial{'s' if k != 1 else ''} counting partial reports ({n})"
        if primary.fragile:
            trials += (f"; the answer hangs on single rescued rows ({', '.join(primary.fragile)})"
                       if len(primary.fragile) > 1 else
                       f"; the answer hangs on one rescued row ({primary.fragile[0]})")
        if k < rule.min_trials:
            return f"{trials}: too few to say whether {nutrient} {_verb(o)} {label_l}{cert}."
        return _verdict_sentence(o, nutrient, label_l, p, eff, trials, certainty, rule,
                                 (primary.mu.q025, primary.mu.q975))
    if o.k == 0:
        return (f"No randomised trial reported {label_l} with numbers that can be pooled "
                f"(0 poolable trials): no estimate{cert and '; certainty not assessable'}.")
    pm = o.primary_model()
    if pm is None:
        return (f"{trials_text(o)}: no model could be fitted, so there is no estimate "
                "(see diagnostics).")
    _, m = pm
    p = o.benefit_probability(m)
    if o.k < rule.min_trials:
        return (f"{trials_text(o)}: too few to say whether {nutrient} {_verb(o)} "
                f"{label_l}{cert}.")
    return _verdict_sentence(o, nutrient, label_l, p, effect_text(o, m), trials_text(o),
                             certainty, rule)


def _verdict_sentence(o: OutcomeResult, nutrient: str, label_l: str, p: float, eff: str,
                      trials: str, certainty: str | None, rule: Any,
                      interval: tuple[float, float] | None = None) -> str:
    """The plain sentence for an outcome with enough trials, by the verdict rule's levels.

    With high or moderate certainty and a 95% interval inside (-MID, MID) (``interval`` on the
    analysis scale), the plain-language wording of GRADE for a precise null result is used:
    "makes little or no difference" (Santesso et al. 2020), not "it is uncertain"."""
    cert = f"; {certainty} certainty" if certainty else ""
    if (interval is not None and o.mid is not None and certainty in ("high", "moderate")
            and -abs(o.mid) < interval[0] and interval[1] < abs(o.mid)
            and p < rule.supported_at):
        hedge = CERTAINTY_WORDS[certainty]
        verb = "make" if hedge == "may " else "makes"
        return (f"{nutrient.capitalize()} {hedge}{verb} little or no difference to {label_l}: "
                f"{eff}; {trials}{cert}.")
    if p >= rule.supported_at:
        hedge = CERTAINTY_WORDS.get(certainty or "", "")
        verb = _verb(o)[:-1] if hedge == "may " else _verb(o)  # "may raise", "probably raises"
        lead = (f"{nutrient.capitalize()} {hedge}{verb} {label_l}" if certainty != "very low"
                else f"{nutrient.capitalize()} may {_verb(o)[:-1]} {label_l}, but the evidence "
                "is very uncertain")
        return f"{lead}: {eff}; {trials}{cert}."
    if p < rule.not_supported_below:
        return (f"The trials do not show that {nutrient} {_verb(o)} {label_l}: {eff}; "
                f"{trials}{cert}.")
    return f"It is uncertain whether {nutrient} {_verb(o)} {label_l}: {eff}; {trials}{cert}."


def _moderator_models(o: OutcomeResult) -> list[tuple[str, ModelResult]]:
    return [(mid, m) for mid, m in o.models.items()
            if any(p in (m.parameters or {}) for p in MODERATOR_PARAMETERS)
            or "meta_regression" in mid]


def deficiency_sentence(bundle: Bundle) -> str:
    """Whether baseline deficiency modifies the effect, stated without a moderator number.

    The question is treated as not estimable when every meta-regression was skipped or failed,
    or when fewer trials than the verdict rule's minimum inform it."""
    nutrient = bundle.spec.moderator.nutrient
    rule = bundle.verdict_rule
    reasons: list[str] = []
    estimable = []
    for oid, o in bundle.outcomes.items():
        if o.moderator is not None:  # the declared estimability rule decides
            if o.moderator.estimable:
                estimable.append(oid)
            else:
                reasons.append(f"{o.label}: {o.moderator.reason}")
            continue
        mods = _moderator_models(o)
        ok = [m for _, m in mods if m.ok]
        known = sorted({s.baseline_status_category for s in o.studies} - {"unknown", ""})
        if not ok:
            why = next((m.reason for _, m in mods if m.reason), None)
            reasons.append(f"{o.label}: {why or 'meta-regression not fitted'}")
        elif o.k < rule.min_trials:
            reasons.append(f"{o.label}: only {o.k} trial{'s' if o.k != 1 else ''}")
        elif len(known) < 2:
            reasons.append(f"{o.label}: every trial of known baseline status is "
                           f"{known[0] if known else 'of unknown status'}")
        else:
            estimable.append(oid)
    if not estimable:
        return (f"Whether baseline {nutrient} deficiency modifies the effect cannot be estimated "
                "from these trials (" + "; ".join(reasons[:4])
                + ("; …" if len(reasons) > 4 else "") + ").")
    labels = ", ".join(bundle.outcomes[o].label for o in estimable)
    return (f"Whether baseline {nutrient} deficiency modifies the effect was examined by "
            f"meta-regression for {labels}; with so few trials per status group the result is "
            "exploratory and is shown in the outcome sections and the claims table, not as a "
            "finding.")


# --------------------------------------------------------------------------- summary of findings


def summary_rows(bundle: Bundle, sof: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GRADEpro-style rows: outcome, trials / participants, effect (natural units), certainty
    with the reason for each downgrade, comments."""
    by_id = {s["outcome"]: s for s in sof}
    rows = []
    for oid, o in bundle.outcomes.items():
        s = by_id.get(oid, {})
        pm = o.primary_model()
        unknown = unknown_n_trials(o)
        trials = f"{o.k} / {fmt_int(o.n_participants)}"
        if unknown:
            trials += f" ({unknown} trial{'s' if unknown != 1 else ''} with unknown n)"
        downgrades = [f"{d['domain']}: {d['detail']}" for d in s.get("domains", [])
                      if d.get("downgrade") and s.get("k", o.k) > 0]
        comments = []
        primary = (o.analyses or {}).get("all_reports")
        if s.get("model") == "all_reports" and primary is not None and primary.mu is not None:
            # effect, trials and certainty all from the declared primary analysis
            unknown = int(s.get("n_unknown_trials") or 0)
            trials = f"{primary.k_trials} / {fmt_int(s.get('n_participants'))}"
            if unknown:
                trials += f" ({unknown} trial{'s' if unknown != 1 else ''} with unknown n)"
            comments.append("all-reports analysis (primary: every trial report by its route)")
            if pm is not None:
                comments.append(f"conventional analysis (complete reports, k = {o.k}): "
                                f"{effect_text(o, pm[1])}")
            comments += _mid_comment(o) + _closing_comments(o, unknown, primary.k_trials)
            rows.append({"outcome": oid, "label": o.label, "trials_participants": trials,
                         "effect": effect_text(o, primary.mu),
                         "certainty": str(s.get("certainty", "")),
                         "downgrades": downgrades, "comments": "; ".join(comments)})
            continue
        if o.k == 0:
            effect = "no poolable trial"
            certainty = "not assessable"
        elif pm is None:
            effect = "no model could be fitted"
            certainty = "not assessable"
        else:
            mid, m = pm
            effect = effect_text(o, m)
            certainty = str(s.get("certainty", ""))
            if m.prediction is not None:
                lo = natural(m.prediction.q025, o.measure)
                hi = natural(m.prediction.q975, o.measure)
                comments.append(f"95% prediction interval {fmt(lo)} to {fmt(hi)}")
            comments.append(f"model: {mid}")
            comments += _mid_comment(o)
        comments += _closing_comments(o, unknown, o.k)
        rows.append({"outcome": oid, "label": o.label, "trials_participants": trials,
                     "effect": effect, "certainty": certainty,
                     "downgrades": downgrades, "comments": "; ".join(comments)})
    return rows


def _mid_comment(o: Any) -> list[str]:
    """The minimal important difference in natural units, as a summary-of-findings comment."""
    if o.mid is None:
        return []
    unit = natural_unit(o)
    return [f"minimal important difference {fmt(natural(o.mid, o.measure))}"
            f"{'' if unit == '%' else ' '}{unit}"]


def _closing_comments(o: Any, unknown: int, k: int) -> list[str]:
    """Moderator, unknown-n and small-study comments closing a summary-of-findings row."""
    out = [moderator_comment(o)] if o.moderator is not None else []
    if unknown:
        out.append("participant count leaves out trials with unknown n")
    if k < 10:
        out.append("publication bias not assessable with fewer than 10 trials")
    return out


def moderator_comment(o: OutcomeResult) -> str:
    """The summary-of-findings note on effect modification by baseline status: never a
    number for a quantity the estimability rule rejects, prior vs posterior SD instead."""
    mod = o.moderator
    assert mod is not None
    if mod.estimable:
        return "effect modification by baseline status estimable (see the outcome section)"
    q = mod.quantities.get("deficient_minus_replete")
    if q is None:
        return f"effect modification by baseline status not estimable ({mod.reason})"
    return f"deficient vs replete {q.statement}"


def summary_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Flat table of :func:`summary_rows` for CSV and Markdown."""
    return pd.DataFrame([{"Outcome": r["label"], "Trials / participants":
                          r["trials_participants"], "Effect (95% interval)": r["effect"],
                          "Certainty": r["certainty"] + (" (" + "; ".join(r["downgrades"]) + ")"
                                                         if r["downgrades"] else ""),
                          "Comments": r["comments"]} for r in rows],
                        columns=["Outcome", "Trials / participants", "Effect (95% interval)",
                                 "Certainty", "Comments"])


def bottom_line(bundle: Bundle, sof: list[dict[str, Any]]) -> dict[str, Any]:
    """The first screen: the question, one sentence per outcome, the deficiency answer."""
    cert = {s["outcome"]: s.get("certainty") for s in sof}
    return {"question": bundle.question or bundle.spec.question,
            "sentences": [{"outcome": oid, "label": o.label,
                           "text": outcome_sentence(bundle, oid, cert.get(oid))}
                          for oid, o in bundle.outcomes.items()],
            "deficiency": deficiency_sentence(bundle)}


# --------------------------------------------------------------------------- failed fits


def shown_fits(bundle: Bundle) -> set[tuple[str, str]]:
    """(outcome, model) pairs that feed a shown result: each outcome's primary model and the
    model behind each claim."""
    shown = set()
    for oid, o in bundle.outcomes.items():
        primary = [mid for mid, m in o.models.items() if "mu" in m.parameters
                   or m.model in ("random_effects",) or mid == "random_effects"]
        pm = o.primary_model()
        shown.add((oid, pm[0] if pm else (primary[0] if primary else "random_effects")))
    shown |= {(c.outcome, c.model) for c in bundle.claims}
    return shown


def split_failed(bundle: Bundle, failed: list[dict[str, str]]
                 ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Failed fits that feed a shown result, and secondary ones (with what was done)."""
    shown = shown_fits(bundle)
    headline: list[dict[str, str]] = []
    secondary: list[dict[str, str]] = []
    for f in failed:
        m = bundle.outcomes[f["outcome"]].models[f["model"]]
        attempts = len(m.sampling_attempts)
        done = (f"refitted {attempts - 1} time(s) with stricter sampler settings; "
                if attempts > 1 else "")
        done += "not used for any headline result or claim in this report"
        row = {**f, "done": done}
        (headline if (f["outcome"], f["model"]) in shown else secondary).append(row)
    return headline, secondary


# --------------------------------------------------------------------------- PRISMA 2020


def reason_label(code: str) -> str:
    """Standard wording of a reason code."""
    return REASON_CODES.get(code, code or "reason not recorded")


def _short(code: str) -> str:
    return (code or "not recorded").replace("_", " ")


def search_summary(search_log: Path | None) -> dict[str, Any]:
    """How the search was done, read from the base's SEARCH_LOG.md: look-ups counted from its
    query tables, dates when the log states them."""
    if search_log is None or not search_log.is_file():
        return {"lookups": None, "dates": [], "link": None}
    text = search_log.read_text(encoding="utf-8")
    lookups = len(re.findall(r"^\|\s*[A-Z]?\d+\s*\|", text, flags=re.MULTILINE))
    dates = sorted(set(re.findall(r"\b(20\d\d-\d\d-\d\d)\b", text)))
    return {"lookups": lookups, "dates": dates, "link": search_log.name}


def prisma_flow(bundle: Bundle, studies: pd.DataFrame) -> dict[str, Any]:
    """PRISMA 2020 counts of trial reports, each stage from studies.csv and the bundle.

    identified = duplicates + excluded + separate + not_used + included, by construction from
    the inclusion statuses; per outcome, the trials pooled come from the bundle.
    """
    s = studies[studies["evidence_base"] == bundle.evidence_base] if "evidence_base" in \
        studies.columns else studies
    status = s["inclusion_status"].astype("string").fillna("")
    code = (s["reason_code"].astype("string").fillna("") if "reason_code" in s.columns
            else pd.Series([""] * len(s), index=s.index))

    def counts(mask: pd.Series) -> list[dict[str, Any]]:
        vc = code[mask].value_counts()
        return [{"code": str(c), "label": _short(str(c)), "n": int(n)}
                for c, n in sorted(vc.items(), key=lambda kv: (-kv[1], kv[0]))]

    dup = (status == "excluded") & (code == "duplicate_report")
    excluded = (status == "excluded") & ~dup
    identified = len(s)
    return {
        "identified": identified,
        "duplicates": int(dup.sum()),
        "screened": identified - int(dup.sum()),
        "excluded": int(excluded.sum()),
        "excluded_reasons": counts(excluded),
        "eligible": identified - int(dup.sum()) - int(excluded.sum()),
        "separate": int((status == "separate").sum()),
        "separate_reasons": counts(status == "separate"),
        "not_used": int((status == "not_poolable").sum()),
        "not_used_reasons": counts(status == "not_poolable"),
        "included": int((status == "included").sum()),
        "other_status": int((~status.isin(["excluded", "separate", "not_poolable",
                                           "included"])).sum()),
        "per_outcome": [{"outcome": oid, "label": o.label, "k": o.k,
                         "n": o.n_participants, "unknown_n": unknown_n_trials(o)}
                        for oid, o in bundle.outcomes.items()],
    }


def studies_table(bundle: Bundle, studies: pd.DataFrame, statuses: tuple[str, ...]
                  ) -> pd.DataFrame:
    """One row per study report with one of ``statuses``: study, design, n, standard reason."""
    s = studies[studies["evidence_base"] == bundle.evidence_base] if "evidence_base" in \
        studies.columns else studies
    s = s[s["inclusion_status"].isin(statuses)].drop_duplicates("study_id")
    rows = [{"Study": f"{r.get('first_author', '')} {r.get('year', '')}".strip(),
             "Design": str(r.get("design") or "").replace("_", " "),
             "Randomised": "" if pd.isna(r.get("n_randomised")) else
             fmt_int(r.get("n_randomised")),
             "Reason": reason_label(str(r.get("reason_code") or ""))}
            for r in s.sort_values(["reason_code", "year", "study_id"]).to_dict("records")]
    return pd.DataFrame(rows, columns=["Study", "Design", "Randomised", "Reason"])


def _reasons_lines(items: list[dict[str, Any]]) -> list[str]:
    return [f"{r['label']}: {r['n']}" for r in items]


def prisma_svg(flow: Mapping[str, Any], search: Mapping[str, Any]) -> str:
    """PRISMA 2020 flow diagram as inline SVG (boxes and arrows; scales with the page)."""
    lk = search.get("lookups")
    ident = [f"Trial reports identified: {flow['identified']}",
             f"by {lk} logged look-ups in a stored" if lk else "by look-ups in a stored",
             "literature corpus (see search log)"]
    left = [("Identification", ident),
            ("Screening", [f"Reports screened: {flow['screened']}"]),
            ("Eligibility", [f"Reports assessed for eligibility: {flow['eligible']}"]),
            ("Included", [f"Reports included: {flow['included']}",
                          *[f"pooled for {p['label']}: {p['k']} trials, "
                            f"{fmt_int(p['n'])} participants"
                            + (f" (+{p['unknown_n']} unknown n)" if p["unknown_n"] else "")
                            for p in flow["per_outcome"]]])]
    right: list[list[list[str]]] = [
        [[f"Duplicate reports removed: {flow['duplicates']}"]],
        [[f"Reports excluded: {flow['excluded']}", *_reasons_lines(flow["excluded_reasons"])]],
        [[f"Analysed apart: {flow['separate']}", *_reasons_lines(flow["separate_reasons"])],
         [f"Not used in a meta-analysis: {flow['not_used']}",
          *_reasons_lines(flow["not_used_reasons"])]],
        []]
    line_h, pad, gap = 17, 10, 26
    lx, lw, rx, rw = 110, 380, 550, 360
    y = 10
    parts: list[str] = []

    def box(x: int, y0: int, w: int, lines: list[str]) -> int:
        h = pad * 2 + line_h * len(lines)
        parts.append(f'<rect x="{x}" y="{y0}" width="{w}" height="{h}" rx="4" '
                     'fill="#fff" stroke="#333"/>')
        for i, t in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            parts.append(f'<text x="{x + 8}" y="{y0 + pad + 13 + i * line_h}"{weight}>'
                         f"{html.escape(t)}</text>")
        return h

    prev_bottom = None
    for (stage, lines), rlines in zip(left, right, strict=True):
        h_left = pad * 2 + line_h * len(lines)
        h_right = sum(pad * 2 + line_h * len(b) for b in rlines) + 8 * max(len(rlines) - 1, 0)
        h = max(h_left, h_right)
        parts.append(f'<rect x="0" y="{y}" width="{lx - 14}" height="{h}" fill="#dbe7f3"/>')
        parts.append(f'<text x="{(lx - 14) // 2}" y="{y + h / 2 + 5}" text-anchor="middle" '
                     f'font-weight="bold">{stage}</text>')
        if prev_bottom is not None:
            parts.append(f'<line x1="{lx + lw // 2}" y1="{prev_bottom}" x2="{lx + lw // 2}" '
                         f'y2="{y}" stroke="#333" marker-end="url(#arrow)"/>')
        box(lx, y, lw, lines)
        ry = y
        for lines_r in rlines:
            ry += box(rx, ry, rw, lines_r) + 8
        if rlines:
            parts.append(f'<line x1="{lx + lw}" y1="{y + h_left // 2}" x2="{rx}" '
                         f'y2="{y + h_left // 2}" stroke="#333" marker-end="url(#arrow)"/>')
        prev_bottom = y + h_left
        y += h + gap
    height = y - gap + 10
    width = rx + rw + 10
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" font-family="sans-serif" '
            'font-size="13" aria-label="PRISMA 2020 flow diagram of trial reports">'
            '<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" '
            'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#333"/></marker></defs>'
            + "".join(parts) + "</svg>")
