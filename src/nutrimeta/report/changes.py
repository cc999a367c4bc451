"""Release comparison, rendered by the report stage: what changed since the last release.

:func:`compare_bundles` compares a results bundle with the one saved at the previous release
(``releases/<data-version>/<base>/results.json``), reporting only changes larger than a Monte
Carlo tolerance (:class:`Tolerance`); :func:`changes_markdown` and
:func:`changes_since_release` write it as Markdown; :func:`living_sections` gives the report's
"what changed" and "how much more evidence would settle it" sections.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nutrimeta.results import Bundle, Probability, VerdictRule, clean_json

__all__ = ["Change", "Tolerance", "changes_markdown", "changes_since_release",
           "compare_bundles", "latest_release", "living_sections"]


@dataclass(frozen=True)
class Tolerance:
    """Smallest changes worth reporting: anything smaller is Monte Carlo noise.

    The sampler's Monte Carlo standard error of a posterior mean is ``sd / sqrt(ESS)``; with
    the bulk ESS of at least 400 that the diagnostics require it is at most ``0.05 sd``, and
    that of a 2.5% or 97.5% quantile about ``0.13 sd`` (tail ESS 400). A probability near 0.5
    estimated from 1000 effective draws has a standard error of about 0.016. The defaults are
    about twice these.

    Attributes
    ----------
    mean_sd
        A parameter's mean must move by more than this fraction of its posterior SD.
    interval_sd
        An interval limit (``q025``/``q975``) must move by more than this fraction of the SD.
    probability
        A posterior probability must move by more than this (absolute). A claim whose verdict
        changes while its probability moved by less is listed as a change at the threshold,
        not flagged.
    """

    mean_sd: float = 0.1
    interval_sd: float = 0.25
    probability: float = 0.03


#: Parameters compared for every model: the pooled effect, heterogeneity and the
#: baseline-status (deficiency) interaction and the effects it contrasts.
PARAMETERS = ("mu", "tau", "deficient_minus_replete", "effect_deficient", "effect_replete",
              "slope")


@dataclass(frozen=True)
class Change:
    """One difference between a previous and a current results bundle.

    ``kind`` is one of ``"verdict"`` (a claim's verdict changed beyond the tolerance:
    ``flag`` is True), ``"verdict_at_threshold"`` (verdict changed within Monte Carlo noise),
    ``"claim_added"``, ``"claim_removed"``, ``"k"``, ``"studies_added"``,
    ``"studies_removed"``, ``"parameter"``, ``"probability"``, ``"model_status"``,
    ``"outcome_added"``, ``"outcome_removed"``, ``"estimability"`` (a moderator quantity
    not estimable by the declared rule in one bundle: its numbers are not compared).
    ``old``/``new`` hold the values compared (a summary dict
    ``{mean, q025, q975}`` for parameters, a list of study ids for studies).
    """

    kind: str
    outcome: str | None
    model: str | None
    quantity: str
    old: Any
    new: Any
    delta: float | None = None
    flag: bool = False
    note: str = ""


def _num_or_none(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) \
        and math.isfinite(x) else None


def _param_change(old: dict, new: dict, tol: Tolerance) -> bool:
    sd = max(_num_or_none(old.get("sd")) or 0.0, _num_or_none(new.get("sd")) or 0.0)
    for key, frac in (("mean", tol.mean_sd), ("q025", tol.interval_sd),
                      ("q975", tol.interval_sd)):
        a, b = _num_or_none(old.get(key)), _num_or_none(new.get(key))
        if a is None or b is None:
            if (a is None) != (b is None):
                return True
            continue
        limit = frac * sd if sd > 0 else 1e-9 * max(1.0, abs(a), abs(b))
        if abs(b - a) > limit:
            return True
    return False


def _probabilities(model: dict) -> dict[str, float]:
    """A model's probability statements keyed by their text (``P(mu < 0)``); bundles before
    schema version 2 stored them so already."""
    probs = model.get("probabilities") or {}
    if isinstance(probs, dict):
        return probs
    return {Probability.model_validate(p).text: p["value"] for p in probs}


#: Moderator quantities: compared as numbers only when the declared rule judged them estimable
#: in both bundles (:mod:`nutrimeta.estimability`); otherwise the change says "not estimable".
MODERATOR_QUANTITIES = ("slope", "effect_deficient", "effect_replete",
                        "deficient_minus_replete")

#: How a moderator quantity without a number to compare is shown.
_ESTIMABILITY_TEXT: dict[bool | None, str] = {False: "not estimable", None: "not assessed"}


def _estimability(model: dict, quantity: str) -> bool | None:
    """The rule's verdict on a model's moderator quantity: True/False, or None when the
    bundle did not assess it (a bundle from before the rule)."""
    q = (model.get("moderator") or {}).get(quantity)
    return None if not isinstance(q, dict) else bool(q.get("estimable"))


def _estimability_reason(model: dict, quantity: str) -> str:
    q = (model.get("moderator") or {}).get(quantity)
    return str(q.get("reason") or "") if isinstance(q, dict) else ""


def _probability_quantity(text: str) -> str:
    """The quantity a probability statement is about: ``P(slope < 0)`` -> ``slope``."""
    return text.removeprefix("P(").split(" ", 1)[0]


def _summary(d: dict) -> dict[str, Any]:
    return {k: d.get(k) for k in ("mean", "q025", "q975", "sd")}


def _study_ids(oc: dict) -> list[str]:
    return [str(s.get("study_id")) for s in oc.get("studies", [])]


def _compare_model(outcome: str, mid: str, old: dict, new: dict, tol: Tolerance
                   ) -> list[Change]:
    out: list[Change] = []
    so, sn = old.get("status"), new.get("status")
    if so != sn:
        out.append(Change("model_status", outcome, mid, "status", so, sn,
                          note=str(new.get("reason", "") or "")))
    if old.get("k") != new.get("k") and old.get("k") is not None:
        out.append(Change("k", outcome, mid, "k", old.get("k"), new.get("k"),
                          (_num_or_none(new.get("k") or 0) or 0.0)
                          - (_num_or_none(old["k"]) or 0.0)
                          if isinstance(new.get("k"), int) else None))
    if so != "ok" or sn != "ok":
        return out
    po, pn = old.get("parameters", {}), new.get("parameters", {})
    hidden = set()  # moderator quantities not estimable in either bundle: no numbers compared
    for name in MODERATOR_QUANTITIES:
        if name not in po and name not in pn:
            continue
        eo, en = _estimability(old, name), _estimability(new, name)
        if eo is not False and en is not False:  # estimable (or not assessed) in both
            continue
        hidden.add(name)
        if eo != en:
            out.append(Change("estimability", outcome, mid, name,
                              _summary(po.get(name, {})) if eo else _ESTIMABILITY_TEXT[eo],
                              _summary(pn.get(name, {})) if en else _ESTIMABILITY_TEXT[en],
                              note=_estimability_reason(new, name)))
    for name in PARAMETERS:
        if (name not in po and name not in pn) or name in hidden:
            continue
        a, b = po.get(name, {}), pn.get(name, {})
        if _param_change(a, b, tol):
            ma, mb = _num_or_none(a.get("mean")), _num_or_none(b.get("mean"))
            out.append(Change("parameter", outcome, mid, name, _summary(a), _summary(b),
                              None if ma is None or mb is None else mb - ma))
    qo, qn = _probabilities(old), _probabilities(new)
    for name in list(dict.fromkeys([*qo, *qn])):
        if _probability_quantity(name) in hidden:
            continue
        a, b = _num_or_none(qo.get(name)), _num_or_none(qn.get(name))
        if a is None or b is None:
            if (a is None) != (b is None):
                out.append(Change("probability", outcome, mid, name, a, b))
            continue
        if abs(b - a) > tol.probability:
            out.append(Change("probability", outcome, mid, name, a, b, b - a))
    return out


def _claim_key(c: dict) -> tuple[str, str, str]:
    return (str(c.get("claim", "")), str(c.get("outcome", "")), str(c.get("quantity", "")))


def compare_bundles(old: dict, new: dict, *, tol: Tolerance | None = None) -> list[Change]:
    """Differences between two results bundles of one evidence base, beyond Monte Carlo noise.

    Per outcome: k before/after, studies added and removed; per model (matched by id): status,
    k, the summaries of ``mu``, ``tau`` and the deficiency interaction
    (``deficient_minus_replete`` and the effects it contrasts) when mean or 95% interval moved
    by more than the tolerance, and posterior probabilities that moved by more than the
    tolerance. Claims (matched by text, outcome and quantity) whose verdict changed are
    flagged (``flag=True``) when their probability moved by more than ``tol.probability`` or
    the model behind them appeared or disappeared; a verdict change within that noise is listed
    as ``verdict_at_threshold`` and not flagged.

    Parameters
    ----------
    old, new
        Results bundles (``build/results/<base>.json`` shape; see ``docs/pipeline.md``).
        ``old`` may be empty (no previous release).
    tol
        Reporting thresholds; default :class:`Tolerance`.

    Returns
    -------
    list of Change
        Flagged verdict changes first, then per outcome in the new bundle's order.
    """
    tol = tol or Tolerance()
    changes: list[Change] = []
    oo, on = old.get("outcomes", {}) or {}, new.get("outcomes", {}) or {}
    for name in list(dict.fromkeys([*on, *oo])):
        if name not in oo:
            changes.append(Change("outcome_added", name, None, "outcome", None,
                                  on[name].get("k")))
            continue
        if name not in on:
            changes.append(Change("outcome_removed", name, None, "outcome", oo[name].get("k"),
                                  None))
            continue
        a, b = oo[name], on[name]
        if a.get("k") != b.get("k"):
            changes.append(Change("k", name, None, "k", a.get("k"), b.get("k"),
                                  (b.get("k") or 0) - (a.get("k") or 0)))
        ids_a, ids_b = _study_ids(a), _study_ids(b)
        added = [s for s in ids_b if s not in ids_a]
        removed = [s for s in ids_a if s not in ids_b]
        if added:
            changes.append(Change("studies_added", name, None, "studies", None, added))
        if removed:
            changes.append(Change("studies_removed", name, None, "studies", removed, None))
        ma, mb = a.get("models", {}), b.get("models", {})
        for mid in list(dict.fromkeys([*mb, *ma])):
            if mid not in ma or mid not in mb:
                changes.append(Change("model_status", name, mid, "status",
                                      ma.get(mid, {}).get("status"),
                                      mb.get(mid, {}).get("status")))
                continue
            changes += _compare_model(name, mid, ma[mid], mb[mid], tol)
    outcome_k = {(c.outcome, c.old, c.new) for c in changes if c.kind == "k" and c.model is None}
    changes = [c for c in changes if not (c.kind == "k" and c.model is not None and
                                          (c.outcome, c.old, c.new) in outcome_k)]
    changes = _claim_changes(old.get("claims", []) or [], new.get("claims", []) or [],
                             tol) + changes
    return sorted(changes, key=lambda c: not c.flag)


def _claim_changes(old: list[dict], new: list[dict], tol: Tolerance) -> list[Change]:
    out: list[Change] = []
    before = {_claim_key(c): c for c in old}
    after = {_claim_key(c): c for c in new}
    for key, c in after.items():
        if key not in before:
            out.append(Change("claim_added", c.get("outcome"), c.get("model"), key[0], None,
                              c.get("verdict")))
            continue
        p = before[key]
        if p.get("verdict") == c.get("verdict"):
            continue
        a, b = _num_or_none(p.get("probability")), _num_or_none(c.get("probability"))
        if "not estimable" in (p.get("verdict"), c.get("verdict")):
            a = b = None  # a non-estimable quantity's probability is not compared
        delta = None if a is None or b is None else b - a
        real = delta is None or abs(delta) > tol.probability
        note = (f"P {_fmt(a)} -> {_fmt(b)}; " if a is not None and b is not None else "") \
            + f"k {p.get('k')} -> {c.get('k')}"
        if c.get("why"):
            note += f"; {c['why']}"
        out.append(Change("verdict" if real else "verdict_at_threshold", c.get("outcome"),
                          c.get("model"), key[0], p.get("verdict"), c.get("verdict"), delta,
                          flag=real, note=note))
    for key, p in before.items():
        if key not in after:
            out.append(Change("claim_removed", p.get("outcome"), p.get("model"), key[0],
                              p.get("verdict"), None))
    return out


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:.3e}"
    return str(x)


def _fmt_summary(d: dict | None) -> str:
    if not d or d.get("mean") is None:
        return "–"
    return f"{_fmt(d.get('mean'))} [{_fmt(d.get('q025'))}, {_fmt(d.get('q975'))}]"


def changes_markdown(changes: list[Change], *, since: str | None = None,
                     tol: Tolerance | None = None, heading: str = "## What changed") -> str:
    """Render changes as a Markdown section for the report.

    Flagged verdict changes come first, in bold, then one table per outcome. Parameters show
    ``mean [2.5%, 97.5%]``. The tolerance used is stated at the end.

    Parameters
    ----------
    changes
        From :func:`compare_bundles`.
    since
        Label of the previous release (e.g. its data version), used in the heading.
    tol
        The tolerance the changes were computed with (for the closing note).
    heading
        The section heading line.
    """
    tol = tol or Tolerance()
    title = heading + (f" since data version {since}" if since else "")
    lines = [title, ""]
    flagged = [c for c in changes if c.flag]
    if flagged:
        lines.append("**Claims whose verdict changed:**")
        lines.append("")
        for c in flagged:
            lines.append(f"- **{c.quantity}** ({c.outcome}, {c.model}): **{c.old} → {c.new}** "
                         f"({c.note})")
        lines.append("")
    other_claims = [c for c in changes if not c.flag and c.kind in
                    ("verdict_at_threshold", "claim_added", "claim_removed")]
    for c in other_claims:
        what = {"verdict_at_threshold": f"verdict {c.old} → {c.new} within Monte Carlo noise "
                f"({c.note}); not a real change",
                "claim_added": f"new claim (verdict: {c.new})",
                "claim_removed": f"claim no longer checked (was: {c.old})"}[c.kind]
        lines.append(f"- {c.quantity} ({c.outcome}): {what}")
    if other_claims:
        lines.append("")
    rest = [c for c in changes if c.kind not in
            ("verdict", "verdict_at_threshold", "claim_added", "claim_removed")]
    if not changes:
        lines.append("No change beyond Monte Carlo noise.")
        lines.append("")
    for outcome in list(dict.fromkeys(c.outcome for c in rest)):
        lines.append(f"### {outcome}")
        lines.append("")
        mine = [c for c in rest if c.outcome == outcome]
        for c in mine:
            if c.kind == "studies_added":
                lines.append(f"- Studies added: {', '.join(c.new)}")
            elif c.kind == "studies_removed":
                lines.append(f"- Studies removed: {', '.join(c.old)}")
            elif c.kind == "k" and c.model is None:
                lines.append(f"- Trials pooled (k): {c.old} → {c.new}")
            elif c.kind == "outcome_added":
                lines.append(f"- New outcome (k = {c.new})")
            elif c.kind == "outcome_removed":
                lines.append(f"- Outcome no longer analysed (k was {c.old})")
        table = [c for c in mine if c.model is not None]
        if table:
            lines += ["", "| model | quantity | before | after | change |",
                      "|---|---|---|---|---|"]
            for c in table:
                if c.kind == "parameter":
                    before, after = _fmt_summary(c.old), _fmt_summary(c.new)
                    delta = "–" if c.delta is None else f"{c.delta:+.3g} (mean)"
                elif c.kind == "estimability":
                    before, after = (x if isinstance(x, str) else _fmt_summary(x)
                                     for x in (c.old, c.new))
                    delta = "not compared (not estimable)"
                    if c.note:
                        after += f" ({c.note})"
                else:
                    before, after = _fmt(c.old), _fmt(c.new)
                    delta = "–" if c.delta is None else f"{c.delta:+.3g}"
                    if c.kind == "model_status" and c.note:
                        after += f" ({c.note})"
                lines.append(f"| {c.model} | {c.quantity} | {before} | {after} | {delta} |")
        lines.append("")
    lines.append(f"_Changes smaller than Monte Carlo noise are not listed: a parameter's mean "
                 f"must move by more than {tol.mean_sd:g} posterior SD, an interval limit by "
                 f"more than {tol.interval_sd:g} SD, a probability by more than "
                 f"{tol.probability:g}; a verdict change within that noise is not flagged._")
    return "\n".join(lines) + "\n"


def _version_key(v: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in v.replace("-", ".").split("."))


def latest_release(releases_dir: Path | str, base: str) -> tuple[str, Path] | None:
    """The newest saved release bundle of a base: ``(data_version, path)`` or ``None``.

    Releases are saved as ``releases/<data-version>/<base>/results.json`` (see
    ``docs/releasing.md``); versions are compared numerically part by part.
    """
    root = Path(releases_dir)
    if not root.is_dir():
        return None
    found = [(d.name, d / base / "results.json") for d in root.iterdir()
             if (d / base / "results.json").is_file()]
    if not found:
        return None
    return max(found, key=lambda t: _version_key(t[0]))


def changes_since_release(new: dict | Bundle, releases_dir: Path | str, *,
                          tol: Tolerance | None = None) -> str:
    """The "what changed" Markdown section of one bundle against the latest saved release.

    Parameters
    ----------
    new
        The current results bundle (it names its ``evidence_base``).
    releases_dir
        The ``releases`` folder.
    tol
        Reporting thresholds.
    """
    current: dict = clean_json(new) if isinstance(new, Bundle) else new
    base = str(current.get("evidence_base", ""))
    rel = latest_release(releases_dir, base)
    if rel is None:
        return ("## What changed\n\nNo previous release of this evidence base is saved in "
                f"{Path(releases_dir).name}/, so there is nothing to compare with.\n")
    version, path = rel
    old = json.loads(path.read_text(encoding="utf-8"))
    old = old.get("bundle", old)  # a report's results.json wraps the results bundle
    return changes_markdown(compare_bundles(old, current, tol=tol), since=version, tol=tol)


def _recorded(bundle: dict[str, Any]) -> dict[str, str]:
    """study_id -> inclusion status of every trial report a bundle knows of."""
    out = {r["study_id"]: r.get("inclusion_status") or "" for r in bundle.get("not_poolable", [])}
    for oc in bundle.get("outcomes", {}).values():
        for r in oc.get("studies_all_designs", []):
            out.setdefault(r["study_id"], "included")
    return out


def record_changes(bundle: dict[str, Any], releases_dir: Path) -> str:
    """Trial reports added or removed since the latest saved release (Markdown lines)."""
    rel = latest_release(releases_dir, bundle.get("evidence_base", ""))
    if rel is None:
        return ""
    version, path = rel
    old = json.loads(path.read_text(encoding="utf-8"))
    old = old.get("bundle", old)
    before, after = _recorded(old), _recorded(bundle)
    n_old = old.get("flow", {}).get("recorded", len(before))
    n_new = bundle.get("flow", {}).get("recorded", len(after))
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    lines = [f"Trial reports recorded: {n_old} in release {version}, {n_new} now."]
    if added:
        lines.append("Added: " + ", ".join(f"{s} ({after[s]})" for s in added) + ".")
    if removed:
        lines.append("Removed: " + ", ".join(removed) + ".")
    return " ".join(lines) + "\n\n"


def moderator_design_lines(oc: dict[str, Any], data: dict[str, Any]) -> list[str]:
    """The report's table of future-trial designs for the deficiency difference (the
    declared ``[moderator.design]`` grid, simulated): how often the declared rule would judge
    it estimable, and how often it would then be supported."""
    md = (oc.get("next_trial") or {}).get("moderator") or {}
    if md.get("status") != "ok" or not md.get("rows"):
        return []
    rule = data.get("spec", {}).get("moderator", {}).get("estimability") or {}
    supported_at = data.get("verdict_rule", VerdictRule().model_dump())["supported_at"]
    unit = oc.get("effect_unit", "")
    left_out = (f"; {md['existing_left_out']} trial(s) with a status category only are left "
                "out (the exact meta-regression needs a measured level)"
                if md.get("existing_left_out") else "")
    lines = [f"**{oc['label']}: trials that would answer the deficiency question.** "
             "Simulated: new two-arm trials with a measured baseline level, each enrolling "
             "people at the reference deficient or the reference replete level, added to the "
             f"{md.get('existing_measured', 0)} trial(s) with a measured level{left_out}; "
             f"truth: deficient-minus-replete difference {md['true_difference']:.3g} {unit} "
             "in the beneficial direction (declared, as a multiple of the MID), between-trial "
             f"SD {md['true_tau']:.3g} {unit}, per-participant SD {md['sd_per_participant']:.3g}"
             f" {unit} (the unit SD). Estimable: the declared rule (posterior SD below "
             f"{rule.get('max_contraction', 0.5):g} × prior SD and at least "
             f"{rule.get('min_trials_each_side', 2)} trials on each side of the cut-off); "
             f"supported: estimable and P(benefit larger when deficient) ≥ {supported_at:g}.",
             "", "| new trials | n per arm | below / above cut-off | P(estimable) | "
             "P(supported) | mean posterior/prior SD |", "|---|---|---|---|---|---|"]
    for r in md["rows"]:
        lines.append(f"| {r['trials']} | {r['n_per_arm']} | {r['n_below']} / {r['n_above']} | "
                     f"{r['p_estimable']:.2f} | {r['p_supported']:.2f} ± {r['mc_se']:.2f} | "
                     f"{r['mean_contraction']:.2f} |")
    return [*lines, ""]


def living_sections(bundle: Bundle | dict[str, Any], releases_dir: Path
                    ) -> list[tuple[str, str, str]]:
    """The report's living-evidence sections: what changed since the last release, and what
    one more trial would do (both read from saved files)."""
    data: dict[str, Any] = clean_json(bundle) if isinstance(bundle, Bundle) else bundle
    changes = changes_since_release(data, releases_dir)
    changes = "\n".join(line for line in changes.splitlines()
                        if not line.startswith("## What changed"))
    changes = record_changes(data, releases_dir) + changes
    lines = ["Expected effect of one more randomised trial (two equal arms) on the pooled "
             "estimate of the exact random-effects model, by simulation from its posterior "
             "predictive. P(supported) is the probability that, after that trial, the posterior "
             "probability of a benefit reaches "
             f"{data.get('verdict_rule', VerdictRule().model_dump())['supported_at']:g}.", ""]
    for _oid, oc in data["outcomes"].items():
        nt = oc.get("next_trial") or {}
        lines += moderator_design_lines(oc, data)
        if nt.get("status") != "ok":
            continue
        lines += [f"**{oc['label']}** (per-participant SD {nt['sd_per_participant']:.3g} "
                  f"{oc.get('effect_unit', '')}: {nt['sd_source']})", "",
                  "| n per arm | P(benefit) now | expected P(benefit) after | P(supported) after "
                  "| P(beyond MID) now | expected P(beyond MID) after |",
                  "|---|---|---|---|---|---|"]
        for r in nt["rows"]:
            lines.append(f"| {r['n_per_arm']} | {r['p_benefit_now']:.2f} | "
                         f"{r['expected_p_benefit']:.2f} | {r['p_supported']:.2f} | "
                         f"{r['p_mid_now']:.2f} | {r['expected_p_mid']:.2f} |")
        lines.append("")
    return [("changes", "What changed since the last release", changes.strip() + "\n"),
            ("next-trial", "How much more evidence would settle it", "\n".join(lines))]
