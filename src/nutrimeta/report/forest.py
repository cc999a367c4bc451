"""Forest plot in the layout reviewers know from RevMan and metafor.

One row per arm contrast, grouped under one author–year label per trial (a multi-arm trial is
one trial with its arms, its participants counted once), per-arm mean / SD / n columns, or the
route by which a partial report enters the all-reports analysis; trials grouped by baseline
status, with a subtotal per status group of at least two trials and the test for subgroup
differences (from the fit stage's :class:`~nutrimeta.results.SubgroupAnalysis`); the
conventional and all-reports pooled effects as diamonds; the heterogeneity line (tau², I², Q
and its p) from the frequentist REML fit; "favours" labels oriented by the outcome's
beneficial direction. Drawn from saved results and the effect-size table only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nutrimeta.report.figures import OBSERVED, POOLED, PREDICTION, new_figure
from nutrimeta.report.fmt import fmt, fmt_int, fmt_p
from nutrimeta.results import OutcomeResult

__all__ = ["ROUTE_LABELS", "ForestRow", "author_year", "favours_labels", "forest_plot",
           "forest_rows", "heterogeneity_line", "subgroup_lines", "subgroup_test_line"]

#: How a partial report enters the all-reports analysis, in words.
ROUTE_LABELS = {
    "full": "means, SDs and n",
    "se_from_p": "SE from the printed p-value",
    "latent_sd": "SD not reported (estimated in the model)",
    "censored_threshold": "only 'p < threshold' reported",
    "censored_ns": "only 'not significant' reported",
    "sign": "only the direction reported",
}
STATUS_ORDER = ("deficient", "marginal", "replete", "unknown")
SUBTOTAL = "#333333"


def author_year(first_author: Any, year: Any) -> str:
    """``"Rayman 2008"``; ``"n.d."`` when the report gives no year."""
    name = str(first_author or "").strip() or "Unknown"
    if name.lower().startswith("unknown"):
        name = "Anonymous"
    try:
        y = int(float(year))
    except (TypeError, ValueError):
        return f"{name} n.d."
    return f"{name} {y}"


def favours_labels(beneficial: str) -> tuple[str, str]:
    """(left, right) labels under the x axis for an effect = supplement minus control."""
    if beneficial == "decrease":
        return "favours supplement", "favours control"
    return "favours control", "favours supplement"


def heterogeneity_line(outcome: OutcomeResult) -> str:
    """``Heterogeneity (REML): tau² = …; I² = …%; Q = … (df = …), p = …`` or why none."""
    fit = outcome.frequentist.get("reml") or next(iter(outcome.frequentist.values()), None)
    if fit is None:
        return "Heterogeneity: not estimable (fewer than 2 trials with complete data)."
    extra = fit.model_dump() if hasattr(fit, "model_dump") else dict(fit)
    q, q_df, q_p = extra.get("Q"), extra.get("Q_df"), extra.get("Q_p")
    if q_df is None:
        q_df = fit.k - 1  # intercept-only model
    parts = [f"tau² = {fmt(fit.tau2)}", f"I² = {fmt(fit.i2, 0)}%"]
    if q is not None:
        parts.append(f"Q = {fmt(q)} (df = {fmt_int(q_df)}), p = {fmt_p(q_p)}")
    return f"Heterogeneity ({fit.method}): " + "; ".join(parts)


def subgroup_test_line(outcome: OutcomeResult) -> str | None:
    """RevMan's ``Test for subgroup differences: Chi² = …, df = … (p = …), I² = …%``, or
    None when the trials form fewer than two status groups."""
    sg = outcome.subgroups
    if sg is None or sg.test is None:
        return None
    t = sg.test
    i2 = max(0.0, (t.q_between - t.df) / t.q_between) * 100 if t.q_between > 0 else 0.0
    groups = ", ".join(f"{g.status} (k = {g.k_trials})" for g in sg.groups)
    return (f"Test for subgroup differences: Chi² = {fmt(t.q_between)}, df = {t.df} "
            f"(p = {fmt_p(t.p)}), I² = {fmt(i2, 0)}%; groups: {groups}")


def subgroup_lines(outcome: OutcomeResult, status: str) -> tuple[Any, str, str | None]:
    """The subtotal of one status group: (group result or None, label, heterogeneity line
    or None). A group with fewer than two trials with complete data gets no diamond and says
    so."""
    sg = outcome.subgroups
    g = next((g for g in sg.groups if g.status == status), None) if sg is not None else None
    if g is None:
        return None, "Subtotal: none (no trial with complete data in this group)", None
    if g.mu is None:
        return None, (f"Subtotal: none ({g.k_trials} trial with complete data; a subtotal "
                      "needs at least 2)"), None
    n_txt = fmt_int(g.n_participants) if g.n_participants is not None else "unknown"
    het = (f"Heterogeneity (REML): tau² = {fmt(g.tau2)}; I² = {fmt(g.i2, 0)}%; "
           f"Q = {fmt(g.q)} (df = {fmt_int(g.q_df)}), p = {fmt_p(g.q_p)}")
    return g, f"Subtotal, complete reports (k = {g.k_trials} trials, n = {n_txt})", het


@dataclass
class ForestRow:
    """One arm contrast of one trial (an effect with a CI, or a route for a partial report)."""

    study_id: str
    trial_label: str
    subgroup: str
    status: str
    route: str
    yi: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    weight: float = math.nan
    arms: dict[str, str] = field(default_factory=dict)


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _arm_text(mean: Any, sd: Any, n: Any) -> str:
    m, s, k = _num(mean), _num(sd), _num(n)
    if not any(math.isfinite(v) for v in (m, s, k)):
        return ""
    return (f"{fmt(m) if math.isfinite(m) else '—'} ({fmt(s) if math.isfinite(s) else '—'}), "
            f"{fmt_int(k) if math.isfinite(k) else '—'}")


def forest_rows(outcome: OutcomeResult, oid: str, effects: pd.DataFrame) -> list[ForestRow]:
    """Rows of the forest plot: every complete contrast, then the all-reports routes.

    Effects rows of other outcomes are ignored. A control arm shared by several contrasts of one
    trial is shown once (on the trial's first arm row), so n is counted once per trial.
    """
    eff = effects[effects["outcome"] == oid] if "outcome" in effects else effects.iloc[0:0]

    def eff_row(study_id: str, subgroup: str) -> pd.Series | None:
        hit = eff[(eff["study_id"] == study_id)
                  & (eff["subgroup"].astype("string").fillna("") == subgroup)]
        return None if hit.empty else hit.iloc[0]

    rows: list[ForestRow] = []
    seen: set[tuple[str, str]] = set()
    for s in outcome.studies:
        sub = s.subgroup or ""
        seen.add((s.study_id, sub))
        r = eff_row(s.study_id, sub)
        arms = {"int": _arm_text(r.get("mean_intervention") if r is not None else None,
                                 r.get("sd_intervention") if r is not None else None,
                                 s.n_intervention),
                "ctl": _arm_text(r.get("mean_control") if r is not None else None,
                                 r.get("sd_control") if r is not None else None,
                                 s.n_control)}
        rows.append(ForestRow(s.study_id, author_year(s.first_author, s.year), sub,
                              str(s.baseline_status_category or "unknown"), "full",
                              s.yi, s.ci_lower, s.ci_upper, s.weight, arms))
    ar = (outcome.analyses or {}).get("all_reports")
    for c in ar.contributions if ar is not None else []:
        if (c.study_id, c.subgroup) in seen or c.route == "full":
            continue
        r = eff_row(c.study_id, c.subgroup)
        label = author_year(r.get("first_author") if r is not None else c.study_id,
                            r.get("year") if r is not None else None)
        status = str(r.get("baseline_status_category") or "unknown") if r is not None \
            else "unknown"
        rows.append(ForestRow(c.study_id, label, c.subgroup, status, c.route))
    # A shared control arm is shown once per trial.
    shown_control: set[str] = set()
    for row in rows:
        if row.route != "full":
            continue
        if row.study_id in shown_control and row.arms.get("ctl"):
            row.arms["ctl"] = "(shared control, above)"
        shown_control.add(row.study_id)
    return rows


def _grouped(rows: list[ForestRow]) -> list[tuple[str, list[list[ForestRow]]]]:
    """Rows grouped by baseline status, then by trial (input order kept within a trial)."""
    out = []
    for status in [*STATUS_ORDER, *sorted({r.status for r in rows} - set(STATUS_ORDER))]:
        in_status = [r for r in rows if r.status == status]
        if not in_status:
            continue
        trials: dict[str, list[ForestRow]] = {}
        for r in sorted(in_status, key=lambda r: (r.route != "full", r.trial_label)):
            trials.setdefault(r.study_id, []).append(r)
        out.append((status, list(trials.values())))
    return out


def forest_plot(outcome: OutcomeResult, oid: str, effects: pd.DataFrame,
                label: str) -> Figure | None:
    """The forest plot of one outcome, or None when no trial enters either analysis."""
    rows = forest_rows(outcome, oid, effects)
    if not rows:
        return None
    groups = _grouped(rows)
    analyses = outcome.analyses or {}
    diamonds = [(name, a) for name, a in (("Conventional analysis", analyses.get("conventional")),
                                          ("All-reports analysis", analyses.get("all_reports")))
                if a is not None and a.mu is not None]
    # Subtotals only when the trials fall into several status groups (else the subtotal is
    # the overall estimate); from the fit stage's results, never recomputed here.
    subtotals = len(groups) > 1
    # Layout: y positions from the top (line units).
    lines: list[tuple[str, Any]] = []
    for status, trials in groups:
        lines.append(("status", status))
        for arms in trials:
            if len(arms) > 1 or arms[0].subgroup:
                lines.append(("trial", arms[0]))
                lines += [("arm", a) for a in arms]
            else:
                lines.append(("single", arms[0]))
        if subtotals and outcome.subgroups is not None:
            g, text, het = subgroup_lines(outcome, status)
            lines.append(("subtotal", (g, text)))
            if het:
                lines.append(("subhet", het))
    if subtotals and outcome.subgroups is None:
        lines.append(("note", "Subgroup subtotals are not in these results (computed by the "
                              "fit stage of a newer version: refit to show them)."))
    lines.append(("gap", None))
    lines += [("diamond", d) for d in diamonds]
    lines.append(("het", None))
    test_line = subgroup_test_line(outcome) if subtotals else None
    if test_line:
        lines.append(("note", test_line))
    n_lines = len(lines) + 1
    fig = new_figure(11.5, 0.26 * n_lines + 1.3)
    gs = fig.add_gridspec(1, 3, width_ratios=[5.4, 3.2, 2.6], wspace=0.02)
    ax_l, ax, ax_r = (fig.add_subplot(gs[0, i]) for i in range(3))
    top = n_lines
    for a in (ax_l, ax_r):
        a.set_axis_off()
        a.set_xlim(0, 1)
    for a in (ax_l, ax, ax_r):
        a.set_ylim(-0.5, top + 0.6)
    ax.spines[["left", "top", "right"]].set_visible(False)
    ax.set_yticks([])
    head: dict[str, Any] = dict(fontsize=8.5, fontweight="bold", va="center")
    ax_l.text(0.0, top, "Study / arm", **head)
    ax_l.text(0.44, top, "Supplement\nmean (SD), n", **head)
    ax_l.text(0.73, top, "Control\nmean (SD), n", **head)
    ax_r.text(0.03, top, "Effect (95% CI)", **head)
    ax_r.text(0.78, top, "Weight", **head)
    txt: dict[str, Any] = dict(fontsize=8.5, va="center")
    finite = [v for r in rows for v in (r.lo, r.hi) if math.isfinite(v)]
    finite += [v for _, a in diamonds if a.mu is not None for v in (a.mu.q025, a.mu.q975)]
    finite += [v for g in (outcome.subgroups.groups if outcome.subgroups and subtotals else [])
               if g.mu is not None for v in (g.mu.q025, g.mu.q975) if v is not None]
    wmax = max([r.weight for r in rows if math.isfinite(r.weight)] or [1.0])
    y = top - 1.0
    for kind, item in lines:
        if kind == "status":
            ax_l.text(0.0, y, f"Baseline status: {item}", fontsize=8.5, fontstyle="italic",
                      va="center")
        elif kind == "trial":
            ax_l.text(0.0, y, item.trial_label, fontweight="bold", **txt)
        elif kind in ("arm", "single"):
            r: ForestRow = item
            name = (f"   {r.subgroup}" if kind == "arm" else r.trial_label)
            ax_l.text(0.0, y, name[:38], fontweight="normal" if kind == "arm" else "bold",
                      **txt)
            if r.route == "full":
                if r.arms.get("int") or r.arms.get("ctl"):
                    ax_l.text(0.44, y, r.arms.get("int", ""), **txt)
                    ax_l.text(0.73, y, r.arms.get("ctl", ""), **txt)
                else:
                    ax_l.text(0.44, y, "effect and SE as reported (no per-arm data)",
                              color="#555555", fontstyle="italic", **txt)
                size = 3 + 8 * math.sqrt(r.weight / wmax) if math.isfinite(r.weight) else 4
                ax.plot([r.lo, r.hi], [y, y], color=OBSERVED, lw=1)
                ax.plot(r.yi, y, marker="s", ms=size, color=OBSERVED, ls="none")
                ax_r.text(0.03, y, f"{fmt(r.yi)} ({fmt(r.lo)} to {fmt(r.hi)})", **txt)
                ax_r.text(0.78, y, f"{fmt(100 * r.weight, 1)}%"
                          if math.isfinite(r.weight) else "", **txt)
            else:
                ax_l.text(0.44, y, f"enters as: {ROUTE_LABELS.get(r.route, r.route)}",
                          color="#555555", fontstyle="italic", **txt)
                ax_r.text(0.03, y, "all-reports only", color="#555555", **txt)
        elif kind == "diamond":
            name, a = item
            colour = POOLED if name.startswith("Conventional") else PREDICTION
            mu = a.mu
            assert mu is not None  # only analyses with a posterior are drawn as diamonds
            ax.add_patch(_diamond(mu.q025, mu.mean, mu.q975, y, colour))
            n_txt = fmt_int(a.n_randomised) if a.n_randomised is not None else "unknown"
            k_txt = "1 trial, single-trial estimate" if a.single_trial else (
                f"k = {a.k_trials} trial{'s' if a.k_trials != 1 else ''}")
            ax_l.text(0.0, y, f"{name} ({k_txt}, n = {n_txt})",
                      fontweight="bold", color=colour, **txt)
            ax_r.text(0.03, y, f"{fmt(mu.mean)} ({fmt(mu.q025)} to {fmt(mu.q975)})",
                      fontweight="bold", color=colour, **txt)
        elif kind == "subtotal":
            g, text = item
            if g is None:
                ax_l.text(0.0, y, f"   {text}", fontsize=8, fontstyle="italic",
                          color="#555555", va="center")
            else:
                ax.add_patch(_diamond(g.mu.q025, g.mu.mean, g.mu.q975, y, SUBTOTAL))
                ax_l.text(0.0, y, f"   {text}", fontweight="bold", color=SUBTOTAL, **txt)
                ax_r.text(0.03, y, f"{fmt(g.mu.mean)} ({fmt(g.mu.q025)} to {fmt(g.mu.q975)})",
                          fontweight="bold", color=SUBTOTAL, **txt)
        elif kind == "subhet":
            ax_l.text(0.0, y, f"   {item}", fontsize=7.5, va="center")
        elif kind == "note":
            ax_l.text(0.0, y, item, fontsize=8, va="center")
        elif kind == "het":
            ax_l.text(0.0, y, heterogeneity_line(outcome), fontsize=8, va="center")
        y -= 1.0
    if finite:
        lo, hi = min([*finite, 0.0]), max([*finite, 0.0])
        pad = 0.08 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
    ax.axvline(0, color="#666666", lw=0.8, zorder=0)
    left, right = favours_labels(str(outcome.beneficial))
    unit = f", {outcome.effect_unit}" if outcome.effect_unit else ""
    ax.set_xlabel(f"{outcome.measure}{unit}\n← {left}    {right} →", fontsize=8.5)
    fig.suptitle(f"{label}: forest plot", x=0.01, ha="left", fontsize=10)
    return fig


def _diamond(lo: float, mid: float, hi: float, y: float, colour: Any) -> Any:
    from matplotlib.patches import Polygon

    return Polygon(np.array([[lo, y], [mid, y + 0.35], [hi, y], [mid, y - 0.35]]),
                   closed=True, color=colour, zorder=3)
