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
from nutrimeta.report.fmt import fmt, fmt_estimate, fmt_int, fmt_p, fmt_prob, fmt_prob_eq
from nutrimeta.results import Bundle, ModelResult, OutcomeResult, clean_json
from nutrimeta.spec_records import ModeratorRecord

STATS = ("mean", "median", "sd", "q025", "q975")


def is_missing(x: Any) -> bool:
    """True for None, NaN and empty strings."""
    if x is None:
        return True
    if isinstance(x, float) and math.isnan(x):
        return True
    return isinstance(x, str) and x.strip() == ""


def clean(x: Any) -> Any:
    """A table cell as a plain JSON-ready value: blank text is missing (None), the rest as
    :func:`~nutrimeta.results.clean_json` has it."""
    if isinstance(x, str) and x.strip() == "":
        return None
    return clean_json(x)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts."""
    return [{str(k): clean(v) for k, v in row.items()}
            for row in df.astype(object).to_dict(orient="records")]


def primary_model(outcome: OutcomeResult) -> tuple[str, ModelResult] | None:
    """``(model id, model)`` giving the headline pooled effect (see
    :meth:`~nutrimeta.results.OutcomeResult.primary_model`)."""
    return outcome.primary_model()


def outcome_mid(bundle: Bundle, outcome_id: str) -> float:
    """Minimal important difference of an outcome, on its effect scale."""
    return bundle.outcomes[outcome_id].mid


def moderator(bundle: Bundle) -> ModeratorRecord:
    """The baseline-status moderator of the spec."""
    return bundle.spec.moderator


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


def study_effects(outcome: OutcomeResult) -> pd.DataFrame:
    """Per-trial observed and shrunken estimates with weights (the forest-plot data)."""
    cols = ["study_id", "year", "design", "baseline_status_value_std", "baseline_status_category",
            "yi", "sei", "ci_lower", "ci_upper", "weight", "shrunken_mean", "shrunken_q025",
            "shrunken_q975"]
    rows = [{c: getattr(st, c) for c in cols} for st in outcome.studies]
    return pd.DataFrame(rows, columns=cols)


ANALYSIS_LABELS = {"conventional": "conventional (complete reports)",
                   "all_reports": "all reports (partial reports by route)"}
ROUTES = ("full", "se_from_p", "latent_sd", "censored_threshold", "censored_ns", "sign")


def analyses_side_by_side(outcome: OutcomeResult, primary: str | None = None
                          ) -> pd.DataFrame:
    """The declared analyses of one outcome side by side: trials, participants, the estimate
    of ``mu`` with its 95% interval, P(benefit) and the contributing cells by route. A single
    trial is shown as that trial with its arms, never as a pooled result. The ``primary``
    analysis (the one the verdicts use) is marked."""
    cols = ["analysis", "k_trials", "n_randomised", "estimate", "p_benefit",
            *(f"n_{r}" for r in ROUTES), "not_used"]
    rows = []
    for name, a in (outcome.analyses or {}).items():
        if a.status != "ok":
            estimate = f"not run: {a.reason}" if a.reason else a.status
        elif a.mu is None:
            estimate = "no contributing trial"
        else:
            estimate = fmt_estimate(a.mu.model_dump())
            if a.single_trial:
                estimate = f"one trial with its arms: {estimate}"
        by_route = {r: sum(1 for c in a.contributions if c.route == r) for r in ROUTES}
        label = ANALYSIS_LABELS.get(name, name)
        if name == primary:
            label += " [primary: used for the verdicts]"
        rows.append({"analysis": label, "k_trials": a.k_trials,
                     "n_randomised": a.n_randomised, "estimate": estimate,
                     "p_benefit": None if a.mu is None else a.mu.p_benefit.value,
                     **{f"n_{r}": n for r, n in by_route.items()},
                     "not_used": len(a.not_used)})
    return pd.DataFrame(rows, columns=cols)


def all_reports_sensitivity(outcome: OutcomeResult) -> pd.DataFrame:
    """The all-reports analysis of one outcome under each variation: trials, ``mu`` with its
    95% interval and P(benefit); empty when the analysis was not run."""
    cols = ["variation", "k_trials", "estimate", "p_benefit"]
    a = (outcome.analyses or {}).get("all_reports")
    if a is None or a.status != "ok":
        return pd.DataFrame(columns=cols)
    rows = [{"variation": v.label, "k_trials": v.k_trials,
             "estimate": "no contributing trial" if v.mu is None
             else fmt_estimate(v.mu.model_dump()),
             "p_benefit": None if v.mu is None else v.mu.p_benefit.value}
            for v in a.sensitivity]
    return pd.DataFrame(rows, columns=cols)


def fragile_text(outcome: OutcomeResult) -> str | None:
    """A sentence naming the rescued rows the all-reports answer hangs on, or None."""
    a = (outcome.analyses or {}).get("all_reports")
    if a is None or not a.fragile:
        return None
    if len(a.fragile) == 1:
        return (f"This answer hangs on one rescued row: {a.fragile[0]}. Leaving it out moves "
                "the probability of benefit across a level of the verdict rule (see the "
                "sensitivity table).")
    return (f"This answer hangs on single rescued rows: leaving out any one of "
            f"{', '.join(a.fragile[:-1])} or {a.fragile[-1]} moves the probability of benefit "
            "across a level of the verdict rule (see the sensitivity table).")


def pooled_results(bundle: Bundle) -> pd.DataFrame:
    """One row per outcome x model x quantity (parameters, prediction, I²)."""
    rows: list[dict[str, Any]] = []
    for oid, o in bundle.outcomes.items():
        for mid, m in o.models.items():
            base = {"outcome": oid, "model": mid, "status": m.status,
                    "k": o.k, "effect_unit": o.effect_unit}
            if not m.ok:
                rows.append({**base, "quantity": "", **dict.fromkeys(STATS)})
                continue
            for pname, summ in m.parameters.items():
                mq = (m.moderator or {}).get(pname)
                if mq is not None and not mq.estimable:  # no number for it: prior vs posterior
                    rows.append({**base, "quantity": f"{pname} ({mq.statement})",
                                 **dict.fromkeys(STATS)})
                    continue
                rows.append({**base, "quantity": pname, **{s: getattr(summ, s) for s in STATS}})
            if m.prediction is not None:
                p = m.prediction
                rows.append({**base, "quantity": "prediction",
                             **{s: getattr(p, s) for s in STATS}})
            if m.i2 is not None:
                i2 = m.i2
                rows.append({**base, "quantity": "I² (%)", "mean": None, "median": i2.median,
                             "sd": None, "q025": i2.q025, "q975": i2.q975})
    return pd.DataFrame(rows, columns=["outcome", "model", "status", "k", "effect_unit",
                                       "quantity", *STATS])


def probabilities(bundle: Bundle) -> pd.DataFrame:
    """Posterior probability statements per outcome x model."""
    rows = [{"outcome": oid, "model": mid, "event": p.text, "probability": p.value}
            for oid, o in bundle.outcomes.items()
            for mid, m in o.models.items() if m.ok
            for p in m.probabilities if m.estimable(p.quantity)]
    return pd.DataFrame(rows, columns=["outcome", "model", "event", "probability"])


def frequentist(bundle: Bundle) -> pd.DataFrame:
    """Frequentist comparison estimates (REML, DerSimonian-Laird) per outcome."""
    cols = ["estimate", "se", "ci_lower", "ci_upper", "tau2", "i2", "Q", "Q_p"]
    rows = [{"outcome": oid, "method": meth, **{c: getattr(r, c) for c in cols}}
            for oid, o in bundle.outcomes.items()
            for meth, r in o.frequentist.items()]
    return pd.DataFrame(rows, columns=["outcome", "method", *cols])


def small_study(bundle: Bundle) -> pd.DataFrame:
    """Egger-type small-study test per outcome (``intercept`` = asymmetry coefficient)."""
    cols = ["intercept", "se", "p_value", "k", "caveat"]
    rows = [{"outcome": oid, **{c: getattr(o.small_study, c) for c in cols}}
            for oid, o in bundle.outcomes.items()]
    return pd.DataFrame(rows, columns=["outcome", *cols])


def not_poolable(bundle: Bundle, effects: pd.DataFrame) -> pd.DataFrame:
    """Studies that could not be pooled: reason and what they reported (direction, p-value).

    Rows come from the bundle's ``not_poolable`` list, completed with non-poolable rows of the
    effect-size table that the bundle does not list.
    """
    cols = ["study_id", "outcome", "reason", "direction", "p_value"]
    rows = [{c: getattr(r, c) for c in cols} for r in bundle.not_poolable]
    seen = {(r["study_id"], r["outcome"]) for r in rows}
    e = base_rows(effects, bundle.evidence_base)
    if "poolable" in e.columns:
        for r in records(e[~e["poolable"].astype(bool)]):
            if (r.get("study_id"), r.get("outcome")) not in seen:
                rows.append({c: r.get(c) for c in cols})
                seen.add((r.get("study_id"), r.get("outcome")))
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["outcome", "study_id"], kind="stable").reset_index(drop=True)


def sensitivity(bundle: Bundle) -> pd.DataFrame:
    """Sensitivity analyses per outcome (priors, leave-one-out, pre/post correlation);
    ``p_benefit`` is P(mu beyond 0 in the beneficial direction)."""
    cols = ["analysis", "kind", "mean", "q025", "q975", "p_benefit"]
    rows = [{"outcome": oid, **{c: getattr(r, c) for c in cols}}
            for oid, o in bundle.outcomes.items() for r in o.sensitivity]
    return pd.DataFrame(rows, columns=["outcome", *cols])


def _method(model: str, d: Any) -> str | None:
    """How a posterior was computed: by quadrature (no sampling) or by NUTS."""
    if d is None:
        return None
    if model == "exact" or getattr(d, "method", None) == "quadrature":
        return "quadrature"
    return "NUTS"


def diagnostics(bundle: Bundle) -> pd.DataFrame:
    """Diagnostics per fit: R-hat, ESS, divergences and E-BFMI of sampled fits; the
    integration error (in posterior SDs, against half the grid resolution) of quadrature
    fits."""
    cols = ["rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "ebfmi_min",
            "integration_error", "passed"]
    rows = []
    for oid, o in bundle.outcomes.items():
        for mid, m in o.models.items():
            d = m.diagnostics
            rows.append({"outcome": oid, "model": mid, "status": m.status,
                         "method": _method(mid, d),
                         **{c: getattr(d, c) if d is not None else None for c in cols},
                         "problems": "; ".join(d.problems if d is not None else [])
                         or (m.reason or ""),
                         "fit_seconds": m.fit_seconds})
    return pd.DataFrame(rows, columns=["outcome", "model", "status", "method", *cols,
                                       "problems", "fit_seconds"])


def failed_fits(bundle: Bundle) -> list[dict[str, str]]:
    """Fits with ``status == 'failed'`` or failed diagnostics."""
    out = []
    for oid, o in bundle.outcomes.items():
        for mid, m in o.models.items():
            d = m.diagnostics
            if m.status == "failed" or (d is not None and not d.passed):
                why = "; ".join(d.problems if d is not None else []) or m.reason or (
                    "fit failed" if m.status == "failed" else "diagnostics failed")
                out.append({"outcome": oid, "model": mid, "status": m.status,
                            "problem": why})
    return out


def _graded_trials(o: OutcomeResult, analysis: Any, effects: pd.DataFrame | None, oid: str
                   ) -> tuple[list[dict[str, Any]], float | None, int]:
    """The trials of an all-reports analysis as GRADE rows (equal weight per trial: the
    analysis has no per-trial weights), the participants of the trials of known n, and the
    number of trials of unknown n (counted from the effect-size table, each trial once)."""
    from nutrimeta.trials import trial_counts

    ids = list(dict.fromkeys(c.study_id for c in analysis.contributions))
    eff = (effects[(effects["outcome"] == oid) & effects["study_id"].isin(ids)]
           if effects is not None and len(effects) else pd.DataFrame())
    rows = []
    for sid in ids:
        e = eff[eff["study_id"] == sid] if len(eff) else eff
        first = e.iloc[0] if len(e) else {}
        rows.append({"study_id": sid, "weight": 1.0,
                     "design": clean(first.get("design")) if len(e) else None,
                     "baseline_status_category": clean(first.get("baseline_status_category"))
                     if len(e) else None})
    if analysis.n_randomised is not None:
        return rows, float(analysis.n_randomised), 0
    if eff.empty:
        return rows, None, len(ids)
    ns = []
    for sid in ids:
        e = eff[eff["study_id"] == sid]
        n = trial_counts(e.assign(poolable=True))["n"].sum(min_count=1) if len(e) else math.nan
        if pd.isna(n) and len(e) and "n_total_reported" in e:  # a total without the split
            n = pd.to_numeric(e["n_total_reported"], errors="coerce").max()
        ns.append(float(n))
    known = [n for n in ns if math.isfinite(n)]
    return rows, float(sum(known)) if known else None, len(ns) - len(known)


def summary_of_findings(bundle: Bundle, studies: pd.DataFrame,
                        effects: pd.DataFrame | None = None,
                        risk: Mapping[str, str | None] | None = None) -> list[dict[str, Any]]:
    """Summary of findings per outcome with GRADE suggestions (see :mod:`.grade`).

    Certainty is graded on the spec's primary analysis (``primary_analysis``): with
    ``all_reports``, its pooled effect, its trials (equal weight each) and its participants;
    I² and the prediction interval, which that analysis does not estimate, come from the
    conventional model and the detail says so. With ``conventional`` (or when the all-reports
    analysis has no estimate), the conventional primary model. ``risk`` is the overall
    risk-of-bias judgement per study (RoB 2 file); default the studies.csv column. Ratio-of-
    means outcomes are shown as % change."""
    from nutrimeta.report import summary as summ

    s = base_rows(studies, bundle.evidence_base)
    if risk is None:
        risk = {}
        if "risk_of_bias" in s.columns:
            risk = {str(r["study_id"]): clean(r["risk_of_bias"]) for r in records(s)}
    primary_name = bundle.spec.primary_analysis
    out = []
    for oid, o in bundle.outcomes.items():
        pm = o.primary_model()
        pooled = prediction = None
        i2 = None
        model_id = None
        if pm:
            model_id, m = pm
            pooled = clean_json(m.parameters["mu"])
            prediction = clean_json(m.prediction) if m.prediction is not None else None
            i2 = m.i2.median if m.i2 is not None else None
        ratio = o.measure in summ.RATIO_MEASURES
        natural = (lambda v: 100.0 * math.expm1(v)) if ratio else None
        unit = "%" if ratio else ""
        a = (o.analyses or {}).get("all_reports")
        trials_rows = clean_json(o.studies)
        n_known: float | None = o.n_participants
        n_unknown = summ.unknown_n_trials(o)
        k = o.k
        het_source = ""
        share_of = "the weight"
        if primary_name == "all_reports" and a is not None and a.status == "ok" and a.mu:
            source = (f"Graded on the all-reports analysis (the primary analysis; {a.k_trials} "
                      f"randomised trial{'s' if a.k_trials != 1 else ''} counting partial "
                      "reports; each trial counts once in the risk-of-bias and indirectness "
                      "domains, as the analysis has no per-trial weights).")
            share_of = "the trials (each counted once)"
            pooled = {"mean": a.mu.mean, "q025": a.mu.q025, "q975": a.mu.q975}
            trials_rows, n_known, n_unknown = _graded_trials(o, a, effects, oid)
            k = a.k_trials
            model_id = "all_reports"
            if o.k >= 2:
                het_source = (f"I² and prediction interval from the conventional model, "
                              f"k = {o.k}; the all-reports analysis does not estimate them"
                              if i2 is not None or prediction is not None else "")
            else:  # heterogeneity needs at least 2 trials
                i2 = prediction = None
        elif pm:
            source = (f"Graded on the conventional analysis ({model_id}; complete reports only"
                      + ("; the primary all-reports analysis has no estimate"
                         if primary_name == "all_reports" else "") + ").")
        else:
            source = "No analysis has an estimate: the domains below are not a grading."
        ss = o.small_study
        g = grade.grade_outcome(trials_rows, risk, pooled, prediction, i2, o.mid, n_known,
                                ss.p_value, k if model_id == "all_reports" else ss.k,
                                n_unknown_trials=n_unknown, natural=natural, unit=unit,
                                heterogeneity_source=het_source, share_of=share_of)
        if pooled is not None:
            lo, mean, hi = (natural(v) if natural else v
                            for v in (pooled["q025"], pooled["mean"], pooled["q975"]))
            shown_unit = "%" if ratio else (f" {o.effect_unit}" if o.effect_unit else "")
            estimate = f"{fmt(mean)}{shown_unit} (95% CrI {fmt(lo)} to {fmt(hi)}{shown_unit})"
            estimate = ("change " if ratio else "") + estimate
        else:
            estimate = ""
        n_text = (f"n = {fmt_int(n_known)}" if not n_unknown else
                  f"n = {fmt_int(n_known)} in the trials of known n, {n_unknown} trial"
                  f"{'s' if n_unknown != 1 else ''} with unknown n")
        out.append({"outcome": oid, "label": o.label, "measure": o.measure,
                    "effect_unit": o.effect_unit, "k": k,
                    "n_participants": n_known, "n_unknown_trials": n_unknown,
                    "n_text": n_text, "model": model_id, "source": source,
                    "estimate_text": estimate,
                    "pooled": pooled, "prediction": prediction, "mid": o.mid,
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


def published_syntheses(bundle: Bundle, syntheses: pd.DataFrame) -> pd.DataFrame:
    """Published pooled estimates beside this package's estimate for the same outcome."""
    syn = syntheses
    if syn is None or syn.empty:
        syn = pd.DataFrame(bundle.published_syntheses)
    cols = ["review_id", "outcome", "subgroup", "measure", "estimate", "ci_lower", "ci_upper",
            "unit", "k", "n_participants", "i2"]
    rows = []
    for r in records(syn) if not syn.empty else []:
        o = bundle.outcomes.get(str(r.get("outcome")))
        if o is None:
            continue
        pm = o.primary_model()
        mu = pm[1].parameters["mu"] if pm else None
        rows.append({**{c: r.get(c) for c in cols},
                     "package_measure": o.measure, "package_unit": o.effect_unit,
                     "package_mean": mu.mean if mu else None,
                     "package_q025": mu.q025 if mu else None,
                     "package_q975": mu.q975 if mu else None, "package_k": o.k})
    return pd.DataFrame(rows, columns=[*cols, "package_measure", "package_unit", "package_mean",
                                       "package_q025", "package_q975", "package_k"])


def claims(bundle: Bundle) -> list[dict[str, Any]]:
    """Claims checked, each with a plain-words statement of the posterior evidence."""
    out = []
    for c in bundle.claims:
        o = bundle.outcomes[c.outcome]
        unit = o.effect_unit
        if c.quantity == "slope":
            unit = f"{unit or 'effect'} per {bundle.spec.moderator.unit}"
        row = {**clean_json(c), "outcome_label": o.label}
        if c.probability is None and c.why:
            out.append({**row, "evidence": f"Not estimable: {c.why}."})
            continue
        est = c.estimate
        words = (f"Posterior probability {fmt_prob_eq(c.probability)}; "
                 f"{c.quantity} {fmt(est.mean if est else None)} "
                 f"(95% CrI {fmt(est.q025 if est else None)} to "
                 f"{fmt(est.q975 if est else None)})"
                 f"{' ' + unit if unit else ''}; {fmt_int(c.k)} trials"
                 + (f" ({c.why})." if c.why else "."))
        out.append({**row, "evidence": words})
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
PROB_COLUMNS = ("probability", "p_gt_0", "p_lt_0", "p_benefit")
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
