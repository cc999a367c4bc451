"""Tables of the per-evidence-base report, built from the results bundle and curated tables.

Every builder returns a :class:`pandas.DataFrame` with raw values (numbers unformatted); the
same frame is written to ``tables/<name>.csv`` and formatted for HTML / Markdown by
:func:`display_frame`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from nutrimeta.report import grade
from nutrimeta.report.fmt import fmt, fmt_int, fmt_p, fmt_prob, fmt_prob_eq

#: Preference order for the model that provides the headline pooled effect of an outcome.
PRIMARY_ORDER = ("random_effects", "exact", "all_evidence", "meta_regression_category",
                 "meta_regression_continuous")
STATS = ("mean", "median", "sd", "q025", "q975")


def is_missing(x: Any) -> bool:
    """True for None, NaN and empty strings."""
    if x is None:
        return True
    if isinstance(x, float) and math.isnan(x):
        return True
    return isinstance(x, str) and x.strip() == ""


def clean(x: Any) -> Any:
    """Convert pandas / numpy scalars to plain JSON-ready Python values (NaN -> None)."""
    if is_missing(x) or x is pd.NA or x is pd.NaT:
        return None
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts."""
    return [{str(k): clean(v) for k, v in row.items()}
            for row in df.astype(object).to_dict(orient="records")]


def primary_model(outcome: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Return ``(model_id, model)`` giving the headline pooled effect ``mu`` of an outcome.

    ``outcome["primary_model"]`` (optional bundle field) wins when it names a model with status
    ``ok``; otherwise the first ``ok`` model with a ``mu`` in :data:`PRIMARY_ORDER`, then any.
    """
    models: dict[str, Any] = outcome.get("models") or {}
    ok = {mid: m for mid, m in models.items()
          if m.get("status") == "ok" and "mu" in (m.get("parameters") or {})}
    chosen = outcome.get("primary_model")
    if chosen in ok:
        return chosen, ok[chosen]
    for kind in PRIMARY_ORDER:
        for mid, m in ok.items():
            if m.get("model") == kind or mid == kind:
                return mid, m
    if ok:
        mid = sorted(ok)[0]
        return mid, ok[mid]
    return None


def outcome_mid(bundle: Mapping[str, Any], outcome_id: str) -> float | None:
    """Minimal important difference: ``outcomes.<o>.mid``, else ``spec.outcomes.<o>.mid``."""
    block = bundle["outcomes"][outcome_id]
    mid = block.get("mid")
    if mid is None:
        mid = (((bundle.get("spec") or {}).get("outcomes") or {}).get(outcome_id) or {}).get("mid")
    try:
        return None if mid is None else float(mid)
    except (TypeError, ValueError):
        return None


def moderator(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline-status moderator of the spec (``spec.moderator``: name, unit, cutoff)."""
    return dict((bundle.get("spec") or {}).get("moderator") or {})


def base_rows(df: pd.DataFrame, base: str) -> pd.DataFrame:
    """Rows of a curated table that belong to one evidence base (all rows if no such column)."""
    if "evidence_base" in df.columns:
        return df[df["evidence_base"] == base].reset_index(drop=True)
    return df.reset_index(drop=True)


def study_characteristics(studies: pd.DataFrame, base: str) -> pd.DataFrame:
    """Design, population, n, dose, duration, baseline status, co-interventions, risk of bias."""
    s = base_rows(studies, base)
    cols = ["study_id", "first_author", "year", "design", "population", "sex", "n_randomised",
            "dose_as_printed", "duration_weeks", "baseline_status_value", "baseline_status_unit",
            "baseline_status_category", "co_interventions", "background_therapy",
            "risk_of_bias", "inclusion_status", "inclusion_reason"]
    out = pd.DataFrame({c: s[c] if c in s.columns else None for c in cols})
    return out.sort_values(["year", "study_id"], kind="stable").reset_index(drop=True)


def study_effects(outcome: Mapping[str, Any]) -> pd.DataFrame:
    """Per-trial observed and shrunken estimates with weights (the forest-plot data)."""
    cols = ["study_id", "year", "design", "baseline_status_value_std", "baseline_status_category",
            "yi", "sei", "ci_lower", "ci_upper", "weight", "shrunken_mean", "shrunken_q025",
            "shrunken_q975"]
    rows = [{c: st.get(c) for c in cols} for st in outcome.get("studies") or []]
    return pd.DataFrame(rows, columns=cols)


def pooled_results(bundle: Mapping[str, Any]) -> pd.DataFrame:
    """One row per outcome x model x quantity (parameters, prediction, I²)."""
    rows: list[dict[str, Any]] = []
    for oid, o in bundle["outcomes"].items():
        for mid, m in (o.get("models") or {}).items():
            base = {"outcome": oid, "model": mid, "status": m.get("status"),
                    "k": o.get("k"), "effect_unit": o.get("effect_unit")}
            if m.get("status") != "ok":
                rows.append({**base, "quantity": "", **dict.fromkeys(STATS)})
                continue
            for pname, summ in (m.get("parameters") or {}).items():
                rows.append({**base, "quantity": pname, **{s: summ.get(s) for s in STATS}})
            if m.get("prediction"):
                p = m["prediction"]
                rows.append({**base, "quantity": "prediction",
                             **{s: p.get(s) for s in STATS}})
            if m.get("i2"):
                i2 = m["i2"]
                rows.append({**base, "quantity": "I² (%)", "mean": None, "median": i2.get("median"),
                             "sd": None, "q025": i2.get("q025"), "q975": i2.get("q975")})
    return pd.DataFrame(rows, columns=["outcome", "model", "status", "k", "effect_unit",
                                       "quantity", *STATS])


def probabilities(bundle: Mapping[str, Any]) -> pd.DataFrame:
    """Posterior probabilities per outcome x model."""
    rows = [{"outcome": oid, "model": mid, "event": ev, "probability": p}
            for oid, o in bundle["outcomes"].items()
            for mid, m in (o.get("models") or {}).items() if m.get("status") == "ok"
            for ev, p in (m.get("probabilities") or {}).items()]
    return pd.DataFrame(rows, columns=["outcome", "model", "event", "probability"])


def frequentist(bundle: Mapping[str, Any]) -> pd.DataFrame:
    """Frequentist comparison estimates (REML, DerSimonian-Laird) per outcome."""
    cols = ["estimate", "se", "ci_lower", "ci_upper", "tau2", "i2", "Q", "Q_p"]
    rows = [{"outcome": oid, "method": meth, **{c: r.get(c) for c in cols}}
            for oid, o in bundle["outcomes"].items()
            for meth, r in (o.get("frequentist") or {}).items()]
    return pd.DataFrame(rows, columns=["outcome", "method", *cols])


def small_study(bundle: Mapping[str, Any]) -> pd.DataFrame:
    """Egger-type small-study test per outcome."""
    cols = ["egger_intercept", "se", "p_value", "k", "caveat"]
    rows = [{"outcome": oid, **{c: (o.get("small_study") or {}).get(c) for c in cols}}
            for oid, o in bundle["outcomes"].items() if o.get("small_study")]
    return pd.DataFrame(rows, columns=["outcome", *cols])


def not_poolable(bundle: Mapping[str, Any], effects: pd.DataFrame) -> pd.DataFrame:
    """Studies that could not be pooled: reason and what they reported (direction, p-value).

    Rows come from the bundle's ``not_poolable`` list, completed with non-poolable rows of the
    effect-size table that the bundle does not list.
    """
    cols = ["study_id", "outcome", "reason", "direction", "p_value"]
    rows = [{c: r.get(c) for c in cols} for r in bundle.get("not_poolable") or []]
    seen = {(r["study_id"], r["outcome"]) for r in rows}
    e = base_rows(effects, bundle["evidence_base"])
    if "poolable" in e.columns:
        for r in records(e[~e["poolable"].astype(bool)]):
            if (r.get("study_id"), r.get("outcome")) not in seen:
                rows.append({c: r.get(c) for c in cols})
                seen.add((r.get("study_id"), r.get("outcome")))
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["outcome", "study_id"], kind="stable").reset_index(drop=True)


def sensitivity(bundle: Mapping[str, Any]) -> pd.DataFrame:
    """Sensitivity analyses per outcome (priors, leave-one-out, pre/post correlation)."""
    cols = ["analysis", "kind", "mean", "q025", "q975", "p_gt_0"]
    rows = [{"outcome": oid, **{c: r.get(c) for c in cols}}
            for oid, o in bundle["outcomes"].items() for r in o.get("sensitivity") or []]
    return pd.DataFrame(rows, columns=["outcome", *cols])


def diagnostics(bundle: Mapping[str, Any]) -> pd.DataFrame:
    """Sampler diagnostics per fit."""
    cols = ["rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "ebfmi_min", "passed"]
    rows = []
    for oid, o in bundle["outcomes"].items():
        for mid, m in (o.get("models") or {}).items():
            d = m.get("diagnostics") or {}
            rows.append({"outcome": oid, "model": mid, "status": m.get("status"),
                         **{c: d.get(c) for c in cols},
                         "problems": "; ".join(map(str, d.get("problems") or []))
                         or (m.get("reason") or ""),
                         "fit_seconds": m.get("fit_seconds")})
    return pd.DataFrame(rows, columns=["outcome", "model", "status", *cols, "problems",
                                       "fit_seconds"])


def failed_fits(bundle: Mapping[str, Any]) -> list[dict[str, str]]:
    """Fits with ``status == 'failed'`` or ``diagnostics.passed == false``."""
    out = []
    for oid, o in bundle["outcomes"].items():
        for mid, m in (o.get("models") or {}).items():
            d = m.get("diagnostics") or {}
            if m.get("status") == "failed" or d.get("passed") is False:
                why = "; ".join(map(str, d.get("problems") or [])) or m.get("reason") or (
                    "fit failed" if m.get("status") == "failed" else "diagnostics failed")
                out.append({"outcome": oid, "model": mid, "status": str(m.get("status")),
                            "problem": why})
    return out


def summary_of_findings(bundle: Mapping[str, Any], studies: pd.DataFrame) -> list[dict[str, Any]]:
    """Summary of findings per outcome with GRADE suggestions (see :mod:`.grade`)."""
    s = base_rows(studies, bundle["evidence_base"])
    risk = {}
    if "risk_of_bias" in s.columns:
        risk = {str(r["study_id"]): clean(r["risk_of_bias"]) for r in records(s)}
    out = []
    for oid, o in bundle["outcomes"].items():
        pm = primary_model(o)
        pooled = prediction = None
        i2 = None
        model_id = None
        if pm:
            model_id, m = pm
            pooled = m["parameters"]["mu"]
            prediction = m.get("prediction")
            i2 = (m.get("i2") or {}).get("median")
        ss = o.get("small_study") or {}
        g = grade.grade_outcome(o.get("studies") or [], risk, pooled, prediction, i2,
                                outcome_mid(bundle, oid), o.get("n_participants"),
                                ss.get("p_value"), ss.get("k", o.get("k")))
        out.append({"outcome": oid, "label": o.get("label", oid), "measure": o.get("measure"),
                    "effect_unit": o.get("effect_unit"), "k": o.get("k"),
                    "n_participants": o.get("n_participants"), "model": model_id,
                    "pooled": pooled, "prediction": prediction, "mid": outcome_mid(bundle, oid),
                    **g})
    return out


def summary_of_findings_frame(sof: list[dict[str, Any]]) -> pd.DataFrame:
    """Flat table of :func:`summary_of_findings` (one row per outcome x domain)."""
    rows = []
    for r in sof:
        pooled = r.get("pooled") or {}
        for d in r["domains"]:
            rows.append({"outcome": r["outcome"], "k": r["k"],
                         "n_participants": r["n_participants"],
                         "mean": pooled.get("mean"), "q025": pooled.get("q025"),
                         "q975": pooled.get("q975"), "start": r["start"],
                         "domain": d["domain"], "suggestion": d["suggestion"],
                         "rule": d["rule"], "detail": d["detail"],
                         "suggested_certainty": r["certainty"]})
    return pd.DataFrame(rows, columns=["outcome", "k", "n_participants", "mean", "q025", "q975",
                                       "start", "domain", "suggestion", "rule", "detail",
                                       "suggested_certainty"])


def published_syntheses(bundle: Mapping[str, Any], syntheses: pd.DataFrame) -> pd.DataFrame:
    """Published pooled estimates beside this package's estimate for the same outcome."""
    syn = syntheses
    if syn is None or syn.empty:
        syn = pd.DataFrame(bundle.get("published_syntheses") or [])
    cols = ["review_id", "outcome", "subgroup", "measure", "estimate", "ci_lower", "ci_upper",
            "unit", "k", "n_participants", "i2"]
    rows = []
    for r in records(syn) if not syn.empty else []:
        o = bundle["outcomes"].get(r.get("outcome"))
        if o is None:
            continue
        pm = primary_model(o)
        mu = pm[1]["parameters"]["mu"] if pm else {}
        rows.append({**{c: r.get(c) for c in cols},
                     "package_measure": o.get("measure"), "package_unit": o.get("effect_unit"),
                     "package_mean": mu.get("mean"), "package_q025": mu.get("q025"),
                     "package_q975": mu.get("q975"), "package_k": o.get("k")})
    return pd.DataFrame(rows, columns=[*cols, "package_measure", "package_unit", "package_mean",
                                       "package_q025", "package_q975", "package_k"])


def claims(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Claims checked, each with a plain-words statement of the posterior evidence."""
    out = []
    for c in bundle.get("claims") or []:
        est = c.get("estimate") or {}
        o = bundle["outcomes"].get(c.get("outcome"), {})
        unit = o.get("effect_unit") or ""
        if c.get("quantity") == "slope" and moderator(bundle).get("unit"):
            unit = f"{unit or 'effect'} per {moderator(bundle)['unit']}"
        if c.get("probability") is None and c.get("why"):
            out.append({**c, "outcome_label": o.get("label", c.get("outcome")),
                        "evidence": f"Not estimable: {c['why']}."})
            continue
        words = (f"Posterior probability {fmt_prob_eq(c.get('probability'))}; "
                 f"{c.get('quantity', 'estimate')} {fmt(est.get('mean'))} "
                 f"(95% CrI {fmt(est.get('q025'))} to {fmt(est.get('q975'))})"
                 f"{' ' + unit if unit else ''}; {fmt_int(c.get('k'))} trials"
                 + (f" ({c['why']})." if c.get("why") else "."))
        out.append({**c, "outcome_label": o.get("label", c.get("outcome")), "evidence": words})
    return out


REASON_CATEGORIES = (
    ("study inclusion_status is not_poolable", "judged not poolable at curation (reasons in "
     "the not-poolable table)"),
    ("separate population", "analysed apart (other population or co-intervention)"),
    ("study inclusion_status is excluded", "excluded (duplicate report or out of scope)"),
    ("study inclusion_status is separate", "analysed apart (other population or "
     "co-intervention)"),
    ("alternative source", "alternative source or subgroup split, kept for the record"),
    ("only a p-value", "only a direction or p-value reported"),
)


def reason_category(reason: str) -> str:
    """A short category for a not-poolable reason, for counting in the flow of records."""
    text = str(reason or "").strip()
    if not text:
        return "reason not recorded"
    for prefix, label in REASON_CATEGORIES:
        if text.startswith(prefix):
            return label
    return "numbers insufficient for an effect size (" + text.split(";")[0].split(":")[0] + ")"


def prisma(studies: pd.DataFrame, effects: pd.DataFrame, base: str) -> dict[str, Any]:
    """PRISMA-style flow of study reports.

    ``found`` = reports in studies.csv; ``recorded`` = reports with at least one row in the
    effect-size table; ``excluded`` = inclusion status ``excluded`` (by reason); ``separate`` =
    analysed apart; per outcome: reports poolable and not poolable (by reason).
    """
    s = base_rows(studies, base)
    e = base_rows(effects, base)
    status = s["inclusion_status"].fillna("") if "inclusion_status" in s.columns else pd.Series()
    reason = (s["inclusion_reason"].fillna("") if "inclusion_reason" in s.columns
              else pd.Series([""] * len(s)))

    def by_reason(mask: pd.Series) -> list[dict[str, Any]]:
        cnt = (reason[mask].astype(str).str.strip().str.rstrip(".")
               .replace("", "reason not recorded").value_counts())
        return [{"reason": str(k), "n": int(v)} for k, v in sorted(cnt.items())]

    per_outcome = []
    if not e.empty:
        for oid in sorted(e["outcome"].dropna().unique()):
            eo = e[e["outcome"] == oid]
            pool = eo[eo["poolable"].astype(bool)] if "poolable" in eo else eo
            nonp = eo[~eo["poolable"].astype(bool)] if "poolable" in eo else eo.iloc[0:0]
            rs = nonp["reason"].fillna("").map(reason_category).value_counts()
            per_outcome.append({"outcome": str(oid),
                                "poolable": int(pool["study_id"].nunique()),
                                "not_poolable": int(nonp["study_id"].nunique()),
                                "not_poolable_reasons": [{"reason": str(k), "n": int(v)}
                                                         for k, v in sorted(rs.items())]})
    recorded = set(e["study_id"].dropna()) if not e.empty else set()
    return {
        "found": len(s),
        "recorded": int(s["study_id"].isin(recorded).sum()) if len(s) else 0,
        "not_recorded": int((~s["study_id"].isin(recorded)).sum()) if len(s) else 0,
        "included": int((status == "included").sum()),
        "not_poolable_reports": int((status == "not_poolable").sum()),
        "separate": int((status == "separate").sum()),
        "separate_reasons": by_reason(status == "separate"),
        "excluded": int((status == "excluded").sum()),
        "excluded_reasons": by_reason(status == "excluded"),
        "per_outcome": per_outcome,
    }


def prisma_frame(flow: Mapping[str, Any]) -> pd.DataFrame:
    """Flat table of :func:`prisma`."""
    rows = [{"stage": "found", "outcome": "", "reason": "", "n": flow["found"]},
            {"stage": "recorded", "outcome": "", "reason": "", "n": flow["recorded"]}]
    rows += [{"stage": "excluded", "outcome": "", "reason": r["reason"], "n": r["n"]}
             for r in flow["excluded_reasons"]]
    rows += [{"stage": "separate", "outcome": "", "reason": r["reason"], "n": r["n"]}
             for r in flow["separate_reasons"]]
    for o in flow["per_outcome"]:
        rows.append({"stage": "poolable", "outcome": o["outcome"], "reason": "",
                     "n": o["poolable"]})
        rows += [{"stage": "not poolable", "outcome": o["outcome"], "reason": r["reason"],
                  "n": r["n"]} for r in o["not_poolable_reasons"]]
    return pd.DataFrame(rows, columns=["stage", "outcome", "reason", "n"])


Formatter = Callable[[Any], str]
PROB_COLUMNS = ("probability", "p_gt_0", "p_lt_0")
P_COLUMNS = ("p_value", "Q_p")
INT_COLUMNS = ("k", "n", "year", "n_randomised", "n_participants", "divergences", "package_k",
               "n_intervention", "n_control")


def _cell(col: str, v: Any, formats: Mapping[str, Formatter]) -> str:
    v = clean(v)
    if col in formats:
        return formats[col](v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if col in PROB_COLUMNS:
        return fmt_prob(v)
    if col in P_COLUMNS:
        return fmt_p(v)
    if col in INT_COLUMNS and isinstance(v, (int, float)):
        return fmt_int(v)
    if isinstance(v, float):
        return fmt(v)
    return str(v)


def display_frame(df: pd.DataFrame, formats: Mapping[str, Formatter] | None = None,
                  labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Format every cell as the report prints it (numbers via :mod:`.fmt`)."""
    formats = formats or {}
    out = pd.DataFrame({c: [_cell(str(c), v, formats) for v in df[c].astype(object)]
                        for c in df.columns}, columns=df.columns, dtype=object)
    if labels:
        out = out.rename(columns=dict(labels))
    return out.rename(columns=lambda c: str(c).replace("_", " "))
