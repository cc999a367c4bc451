"""Report figures, drawn from saved results only.

Figures are built on :class:`matplotlib.figure.Figure` objects (no pyplot state, Agg canvas) inside
:func:`figure_style`, a local ``rc_context``; nothing here changes global matplotlib or seaborn
settings. :func:`save_figure` writes PNG and SVG deterministically (fixed SVG hash salt, no
dates in the metadata).
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from nutrimeta.report.fmt import fmt, fmt_p
from nutrimeta.results import (
    CrossNutrientResult,
    ModelResult,
    OutcomeResult,
    Summary,
)
from nutrimeta.schema import RANDOMISED_DESIGNS as RANDOMISED
from nutrimeta.spec_records import ModeratorRecord

#: seaborn's "colorblind" palette (its first 8 colours), written out: importing seaborn for
#: eight constants took most of the report stage's start-up.
PALETTE = [to_rgb(c) for c in ("#0173B2", "#DE8F05", "#029E73", "#D55E00", "#CC78BC", "#CA9161",
                               "#FBAFE4", "#949494")]
OBSERVED = "#222222"
SHRUNKEN = PALETTE[0]
POOLED = PALETTE[3]
PREDICTION = PALETTE[1]
CATEGORY_COLOURS: dict[str, tuple[float, float, float] | str] = {
    "deficient": PALETTE[3], "marginal": PALETTE[1], "replete": PALETTE[0], "unknown": "#888888"}
DESIGN_MARKERS = {"parallel_rct": "s", "crossover_rct": "^", "controlled_nonrandomised": "o",
                  "single_arm_prepost": "v"}
DESIGN_LABELS = {"parallel_rct": "parallel RCT", "crossover_rct": "crossover RCT",
                 "controlled_nonrandomised": "non-randomised controlled",
                 "single_arm_prepost": "single-arm pre/post"}
PNG_DPI = 200
#: zlib level of the PNG files: 3 is close to the default (6) in size and faster to write.
PNG_COMPRESSION = 3

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.08,
    "svg.hashsalt": "nutrimeta-report",
    "svg.fonttype": "path",
    "path.simplify": True,
}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Local matplotlib style for report figures (restores global settings on exit)."""
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        yield


def new_figure(width: float, height: float) -> Figure:
    """A Figure with an Agg canvas, independent of pyplot."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, folder: Path, name: str) -> dict[str, Any]:
    """Write ``name.png`` and ``name.svg`` to ``folder`` deterministically.

    The layout is computed once, at the PNG resolution: one draw without rendering runs the
    constrained layout and measures the tight bounding box, then the layout is frozen and both
    files are written from it (``savefig`` with ``bbox_inches="tight"`` would lay the figure
    out and measure it again for each format). ``folder`` is a report's staging folder, which
    is swapped in as a whole (see :func:`nutrimeta.report.render.render_evidence_base`).

    Returns
    -------
    dict
        ``png``/``svg`` relative paths (``figures/<name>.png``) and the PNG as base64.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with figure_style():
        fig.set_dpi(PNG_DPI)
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        with renderer._draw_disabled():
            fig.draw(renderer)
        bbox = fig.get_tightbbox(renderer).padded(STYLE["savefig.pad_inches"])
        fig.set_layout_engine("none")
        png_buffer = io.BytesIO()
        fig.savefig(png_buffer, format="png", dpi=PNG_DPI, bbox_inches=bbox,
                    metadata={"Software": None}, pil_kwargs={"compress_level": PNG_COMPRESSION})
        svg_buffer = io.BytesIO()
        fig.savefig(svg_buffer, format="svg", bbox_inches=bbox,
                    metadata={"Date": None, "Creator": None})
    png = png_buffer.getvalue()
    (folder / f"{name}.png").write_bytes(png)
    (folder / f"{name}.svg").write_bytes(svg_buffer.getvalue())
    return {"name": name, "png": f"figures/{name}.png", "svg": f"figures/{name}.svg",
            "png_base64": base64.b64encode(png).decode("ascii")}


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _axis_label(label: str, measure: str | None, unit: str | None) -> str:
    unit_txt = f", {unit}" if unit else ""
    return f"{label}: {measure or 'effect'}{unit_txt}"


def forest(outcome: OutcomeResult, model: ModelResult | None,
           label: str) -> Figure | None:
    """Forest plot: observed effects (95% CI), shrunken estimates and pooled effect (95% CrI).

    Squares are sized by weight, marker shape shows the design (open = non-randomised); the
    diamond is the pooled mean effect with its 95% credible interval and the bar beneath it the
    95% prediction interval for a new trial. Returns None when the outcome has no trials.
    """
    studies = sorted(outcome.studies, key=lambda s: (s.year or 0, str(s.study_id)))
    k = len(studies)
    if k == 0:
        return None
    fig = new_figure(7.2, 0.34 * (k + 4) + 1.2)
    ax = fig.add_subplot(1, 1, 1)
    ys = np.arange(k, 0, -1, dtype=float) + 1.6
    wmax = max([_num(s.weight) for s in studies if math.isfinite(_num(s.weight))] or [1.0])
    for y, s in zip(ys, studies, strict=True):
        des = str(s.design or "")
        w = _num(s.weight)
        size = 4 + 10 * math.sqrt(w / wmax) if math.isfinite(w) and wmax > 0 else 5
        randomised = des in RANDOMISED
        ax.plot([_num(s.ci_lower), _num(s.ci_upper)], [y, y], color=OBSERVED, lw=1)
        ax.plot(_num(s.yi), y, marker=DESIGN_MARKERS.get(des, "s"), ms=size,
                color=OBSERVED, mfc=OBSERVED if randomised else "white", mew=1, ls="none")
        sm = _num(s.shrunken_mean)
        if math.isfinite(sm):
            ax.plot([_num(s.shrunken_q025), _num(s.shrunken_q975)],
                    [y - 0.3, y - 0.3], color=SHRUNKEN, lw=1)
            ax.plot(sm, y - 0.3, marker="o", ms=3.5, color=SHRUNKEN, ls="none")
    mu = model.parameters.get("mu") if model is not None else None
    pred = model.prediction if model is not None else None
    if mu:
        lo, m, hi = _num(mu.q025), _num(mu.mean), _num(mu.q975)
        ax.add_patch(Polygon([[lo, 1.0], [m, 1.3], [hi, 1.0], [m, 0.7]], closed=True,
                             color=POOLED, zorder=3))
    if pred:
        ax.plot([_num(pred.q025), _num(pred.q975)], [0.2, 0.2], color=PREDICTION,
                lw=2.5, solid_capstyle="butt")
    ax.axvline(0, color="#666666", lw=0.8, ls="--", zorder=0)
    labels = [f"{s.study_id} ({DESIGN_LABELS.get(str(s.design), s.design)})" for s in studies]
    ticks = [*ys.tolist(), 1.0, 0.2]
    ax.set_yticks(ticks, [*labels, "Pooled mean (95% CrI)", "Prediction (95% PI)"])
    ax.set_ylim(-0.4, k + 2.6)
    ax.set_xlabel(_axis_label(label, outcome.measure, outcome.effect_unit)
                  + "\nobserved 95% CI; shrunken and pooled 95% credible intervals")
    # Right-hand text: weight and observed effect.
    trans = ax.get_yaxis_transform()
    top = k + 2.3
    for x, head in ((1.02, "weight"), (1.15, "observed (95% CI)")):
        ax.text(x, top, head, transform=trans, fontsize=7.5, fontweight="bold", va="center",
                ha="left", clip_on=False)
    for y, s in zip(ys, studies, strict=True):
        ax.text(1.02, y, f"{fmt(100 * _num(s.weight), 1)}%", transform=trans,
                fontsize=7.5, va="center", ha="left", clip_on=False)
        ax.text(1.15, y, f"{fmt(s.yi)} ({fmt(s.ci_lower)} to "
                f"{fmt(s.ci_upper)})", transform=trans, fontsize=7.5, va="center",
                ha="left", clip_on=False)
    if mu:
        ax.text(1.15, 1.0, f"{fmt(mu.mean)} ({fmt(mu.q025)} to "
                f"{fmt(mu.q975)})", transform=trans, fontsize=7.5, va="center",
                ha="left", clip_on=False, color=POOLED, fontweight="bold")
    if pred:
        ax.text(1.15, 0.2, f"({fmt(pred.q025)} to {fmt(pred.q975)})",
                transform=trans, fontsize=7.5, va="center", ha="left", clip_on=False,
                color=PREDICTION)
    handles = [Line2D([], [], color=OBSERVED, marker="s", ls="-", label="observed (size = weight)"),
               Line2D([], [], color=SHRUNKEN, marker="o", ms=3.5, ls="-",
                      label="shrunken trial estimate"),
               Patch(color=POOLED, label="pooled mean"),
               Line2D([], [], color=PREDICTION, lw=2.5, label="95% prediction interval")]
    handles += [Line2D([], [], color=OBSERVED, marker=DESIGN_MARKERS[d], ls="none",
                       mfc=OBSERVED if d in RANDOMISED else "white", label=DESIGN_LABELS[d])
                for d in DESIGN_MARKERS if any(s.design == d for s in studies)]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=7)
    ax.set_title(f"{label}: forest plot (k = {k})", loc="left")
    return fig


def _category_levels(outcome: OutcomeResult, moderator: ModeratorRecord,
                     latent_model: ModelResult | None
                     ) -> dict[tuple[str, str], tuple[float, float, float, bool]]:
    """``(mean, q025, q975, from_posterior)`` of the baseline level of every category-placed
    contrast, keyed by ``(study_id, subgroup)``: the continuous meta-regression's posterior
    where it holds one, else the declared latent level (cut-off + mean ± 1.96 SD)."""
    cut = _num(moderator.cutoff)
    out: dict[tuple[str, str], tuple[float, float, float, bool]] = {}
    for st in outcome.studies:
        cat = st.baseline_status_category
        if cat in moderator.latent and cat != "unknown" and math.isfinite(cut) \
                and not math.isfinite(_num(st.baseline_status_value_std)):
            lv = moderator.latent[cat]
            m, half = cut + _num(lv.mean), 1.959964 * _num(lv.sd)
            out[(st.study_id, st.subgroup or "")] = (m, m - half, m + half, False)
    if latent_model is not None:
        for p in latent_model.latent_levels or []:
            out[(p.study_id, p.subgroup)] = (p.mean, p.q025, p.q975, True)
    return out


def effect_vs_baseline(outcome: OutcomeResult, line_model: ModelResult | None,
                       label: str, moderator: ModeratorRecord,
                       latent_model: ModelResult | None = None) -> Figure | None:
    """Effect versus baseline status.

    Trials with a measured level: filled bubbles at that level (area ~ precision). Trials
    placed by their status category only: hollow markers with a horizontal 95% interval at
    their latent level's posterior (``latent_model``'s ``latent_levels``; the declared prior
    interval when no fitted model holds them). The regression band (``line_model``, given only
    when the declared rule judges the slope estimable) is drawn over the measured range only.
    Returns None when no trial has a measured level or a status category.
    """
    placed = _category_levels(outcome, moderator, latent_model)
    measured, category = [], []
    for st in outcome.studies:
        if not math.isfinite(_num(st.yi)):
            continue
        if math.isfinite(_num(st.baseline_status_value_std)):
            measured.append(st)
        elif (st.study_id, st.subgroup or "") in placed:
            category.append(st)
    if not measured and not category:
        return None
    fig = new_figure(6.4, 5.4)
    ax = fig.add_subplot(1, 1, 1)
    levels = [_num(st.baseline_status_value_std) for st in measured]
    line = [p for p in (line_model.regression_line if line_model is not None else [])
            if len(levels) >= 2 and min(levels) <= _num(p.x) <= max(levels)]
    if len(line) >= 2:
        xs = [_num(p.x) for p in line]
        ax.fill_between(xs, [_num(p.q025) for p in line],
                        [_num(p.q975) for p in line], color=SHRUNKEN, alpha=0.18, lw=0,
                        label="95% credible band (measured range)")
        ax.plot(xs, [_num(p.mean) for p in line], color=SHRUNKEN, lw=1.8,
                label="posterior mean regression line")
    every = measured + category
    prec = np.array([1 / _num(st.sei) ** 2 for st in every])
    prec = np.where(np.isfinite(prec), prec, np.nanmin(prec[np.isfinite(prec)]) if
                    np.isfinite(prec).any() else 1.0)
    sizes = 40 + 460 * prec / prec.max()
    where: dict[int, float] = {}
    for cat in ("deficient", "marginal", "replete", "unknown"):
        colour = CATEGORY_COLOURS[cat]
        sub = [i for i, st in enumerate(measured)
               if (st.baseline_status_category or "unknown") == cat]
        if sub:
            ax.scatter([levels[i] for i in sub], [_num(measured[i].yi) for i in sub],
                       s=sizes[sub], facecolor=colour, alpha=0.7, edgecolor="black",
                       linewidth=0.6, label=f"{cat} at baseline: measured level", zorder=3)
            where.update({i: levels[i] for i in sub})
        for posterior in (True, False):
            sub = [j for j, st in enumerate(category) if st.baseline_status_category == cat
                   and placed[(st.study_id, st.subgroup or "")][3] is posterior]
            if not sub:
                continue
            lv = [placed[(category[j].study_id, category[j].subgroup or "")][:3] for j in sub]
            ys = [_num(category[j].yi) for j in sub]
            bars = ax.errorbar([m for m, _, _ in lv], ys,
                               xerr=[[m - lo for m, lo, _ in lv], [hi - m for m, _, hi in lv]],
                               fmt="none", ecolor=colour, elinewidth=1.6, capsize=3, zorder=2)
            if not posterior:  # the declared prior, not a fitted posterior: dashed
                for c in bars.lines[2]:
                    c.set_linestyle("--")
            ax.scatter([m for m, _, _ in lv], ys, s=sizes[[len(measured) + j for j in sub]],
                       facecolor="white", edgecolor=colour, linewidth=1.6, zorder=3)
            ax.plot([], [], color=colour, lw=1.6, marker="o", markersize=7,
                    markerfacecolor="white", markeredgewidth=1.6, ls="-" if posterior else "--",
                    label=f"{cat}, status category only: latent level "
                    + ("posterior" if posterior else "as declared (prior)")
                    + " with 95% interval")
            where.update({len(measured) + j: m for j, (m, _, _) in zip(sub, lv, strict=True)})
    for i, st in enumerate(every):
        if i in where:
            ax.annotate(str(st.study_id), (where[i], _num(st.yi)), xytext=(5, 5),
                        textcoords="offset points", fontsize=7, color="#333333")
    cut = _num(moderator.cutoff)
    if math.isfinite(cut):
        ax.axvline(cut, color="black", ls=":", lw=1.2,
                   label=f"deficiency cut-off ({fmt(cut)} {moderator.unit})".strip())
    ax.axhline(0, color="#666666", lw=0.8, ls="--", zorder=0)
    unit = moderator.unit
    ax.set_xlabel(f"baseline {moderator.nutrient} status{' (' + unit + ')' if unit else ''}")
    ax.set_ylabel(_axis_label(label, outcome.measure, outcome.effect_unit))
    missing = len(outcome.studies) - len(every)
    ax.set_title(f"{label}: effect vs baseline status", loc="left")
    notes = []
    if missing:
        notes.append(f"{missing} trial(s) with neither a baseline value nor a status "
                     "category not shown")
    if line_model is None:
        notes.append("no regression band: the slope is not estimable by the declared rule")
    # legend (and notes) below the axes, so long labels do not squeeze the plot
    leg = ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), fontsize=7, ncol=1,
                    frameon=False, title="\n".join(notes) or None, title_fontsize=7,
                    alignment="left")
    for h in leg.legend_handles:
        if isinstance(h, PathCollection):
            h.set_sizes([60])
    return fig


def _density(model: ModelResult, name: str) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """Density grid for parameter ``name``: the bundle's grid (``density.<name>.x`` and
    ``.density``, as :class:`~nutrimeta.results.Density`), else a normal approximation."""
    grid = model.density.get(name)
    if grid is not None:
        return np.asarray(grid.x, float), np.asarray(grid.density, float), False
    summ = model.parameters.get(name)
    if summ is None:
        return None
    m, sd = _num(summ.mean), _num(summ.sd)
    if not (math.isfinite(m) and math.isfinite(sd) and sd > 0):
        return None
    x = np.linspace(m - 4 * sd, m + 4 * sd, 201)
    return x, np.exp(-0.5 * ((x - m) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)), True


def subgroup_densities(outcome: OutcomeResult, model: ModelResult,
                       label: str) -> tuple[Figure, bool] | None:
    """Posterior density of the pooled effect in deficient vs replete populations.

    Returns the figure and whether a normal approximation (from mean and sd) was used.
    """
    curves = {name: _density(model, name) for name in ("effect_deficient", "effect_replete")}
    if not all(curves.values()):
        return None
    fig = new_figure(6.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    approx = False
    for name, colour in (("effect_deficient", CATEGORY_COLOURS["deficient"]),
                         ("effect_replete", CATEGORY_COLOURS["replete"])):
        x, d, a = curves[name]  # type: ignore[misc]
        approx |= a
        summ = model.parameters[name]
        ax.fill_between(x, d, color=colour, alpha=0.25, lw=0)
        ax.plot(x, d, color=colour, lw=1.6,
                label=f"{name.removeprefix('effect_')}: {fmt(summ.mean)} "
                f"(95% CrI {fmt(summ.q025)} to {fmt(summ.q975)})")
    ax.axvline(0, color="#666666", lw=0.8, ls="--")
    ax.set_xlabel(_axis_label(label, outcome.measure, outcome.effect_unit))
    ax.set_ylabel("posterior density")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{label}: pooled effect by baseline status"
                 + (" (normal approximation)" if approx else ""), loc="left")
    ax.legend(loc="upper right", fontsize=7)
    return fig, approx


def funnel(outcome: OutcomeResult, centre: float | None, label: str) -> Figure | None:
    """Contour-enhanced funnel plot with the Egger-type small-study test in the title."""
    pts = [(_num(s.yi), _num(s.sei)) for s in outcome.studies]
    pts = [(y, s) for y, s in pts if math.isfinite(y) and math.isfinite(s) and s > 0]
    if not pts:
        return None
    fig = new_figure(6.0, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    ys = np.array([p[0] for p in pts])
    ses = np.array([p[1] for p in pts])
    smax = ses.max() * 1.15
    se_grid = np.linspace(0, smax, 100)
    xr = max(np.abs(ys).max(), 2.7 * smax) * 1.1
    ax.axvspan(-xr, xr, color="#bdbdbd", lw=0)
    for z, shade, lab in ((2.576, "#d9d9d9", "0.01 < p < 0.05"),
                          (1.960, "#f0f0f0", "0.05 < p < 0.10"),
                          (1.645, "white", "p > 0.10")):
        ax.fill_betweenx(se_grid, -z * se_grid, z * se_grid, color=shade, lw=0, label=lab)
    if centre is not None and math.isfinite(centre):
        ax.plot(centre - 1.96 * se_grid, se_grid, color=POOLED, lw=0.8, ls="--")
        ax.plot(centre + 1.96 * se_grid, se_grid, color=POOLED, lw=0.8, ls="--")
        ax.axvline(centre, color=POOLED, lw=1.2, label=f"pooled mean ({fmt(centre)})")
    ax.scatter(ys, ses, color=OBSERVED, s=22, zorder=3, label="trials")
    ax.set_xlim(-xr, xr)
    ax.set_ylim(smax, 0)
    ax.set_xlabel(_axis_label(label, outcome.measure, outcome.effect_unit))
    unit = outcome.effect_unit
    ax.set_ylabel(f"standard error{' (' + unit + ')' if unit else ''}")
    ss = outcome.small_study
    title = f"{label}: contour-enhanced funnel plot"
    if ss.intercept is not None:
        title += (f"\nEgger-type small-study test: intercept {fmt(ss.intercept)} "
                  f"(SE {fmt(ss.se)}), p = {fmt_p(ss.p_value)}, k = {ss.k}")
        if ss.k < 10:
            title += " (low power at k < 10)"
    else:
        title += f"\nEgger-type small-study test {ss.caveat or 'not run'} (k = {ss.k})"
    ax.set_title(title, loc="left")
    handles, labels = ax.get_legend_handles_labels()
    handles.insert(0, Patch(color="#bdbdbd"))
    labels.insert(0, "p < 0.01")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return fig


def _interval_rows(ax: Any, rows: Sequence[Any], labels: Sequence[str],
                   colour: Any) -> np.ndarray:
    """Rows with ``mean``, ``q025`` and ``q975`` attributes as points with intervals."""
    ys = np.arange(len(rows), 0, -1, dtype=float)
    for y, r in zip(ys, rows, strict=True):
        ax.plot([_num(r.q025), _num(r.q975)], [y, y], color=colour, lw=1.2)
        ax.plot(_num(r.mean), y, marker="o", ms=4, color=colour)
    ax.set_yticks(ys, list(labels))
    ax.axvline(0, color="#666666", lw=0.8, ls="--", zorder=0)
    ax.set_ylim(0.4, len(rows) + 0.6)
    return ys


def cumulative(outcome: OutcomeResult, label: str) -> Figure | None:
    """Cumulative evidence: the pooled estimate (95% CrI) after each trial, by publication."""
    rows = outcome.cumulative
    if not rows:
        return None
    fig = new_figure(6.4, 0.3 * len(rows) + 1.6)
    ax = fig.add_subplot(1, 1, 1)
    _interval_rows(ax, rows, [f"+ {r.study_id} ({r.year}), k = {r.k}" for r in rows], POOLED)
    ax.set_xlabel(_axis_label(label, outcome.measure, outcome.effect_unit)
                  + "\ncumulative pooled mean, 95% credible interval")
    ax.set_title(f"{label}: cumulative evidence by year of publication", loc="left")
    return fig


def tau_prior_posterior(outcome: OutcomeResult, label: str) -> Figure | None:
    """Prior and posterior density of tau (between-trial standard deviation)."""
    tpp = outcome.tau_prior_posterior
    if tpp is None or not tpp.grid:
        return None
    fig = new_figure(5.6, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    g = np.asarray(tpp.grid, float)
    ax.plot(g, np.asarray(tpp.prior or [np.nan] * len(g), float), color="#555555",
            ls="--", lw=1.4, label="prior")
    post = np.asarray(tpp.posterior or [np.nan] * len(g), float)
    ax.plot(g, post, color=SHRUNKEN, lw=1.8, label="posterior")
    ax.fill_between(g, post, color=SHRUNKEN, alpha=0.2, lw=0)
    unit = outcome.effect_unit
    ax.set_xlabel(f"tau, between-trial SD ({outcome.measure or 'effect'}"
                  f"{', ' + unit if unit else ''})")
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{label}: prior vs posterior of tau", loc="left")
    ax.legend()
    return fig


def sensitivity(outcome: OutcomeResult, primary: Summary | None,
                label: str) -> Figure | None:
    """Sensitivity analyses (priors, leave-one-out, pre/post correlation) beside the primary."""
    rows: list[Any] = list(outcome.sensitivity)
    if not rows:
        return None
    labels = [f"{r.analysis} [{r.kind}]" for r in rows]
    if primary:
        rows = [primary, *rows]
        labels = ["primary analysis", *labels]
    fig = new_figure(6.4, 0.3 * len(rows) + 1.6)
    ax = fig.add_subplot(1, 1, 1)
    ys = _interval_rows(ax, rows, labels, SHRUNKEN)
    if primary:
        ax.axvspan(_num(primary.q025), _num(primary.q975), color=POOLED,
                   alpha=0.1, lw=0)
        ax.plot(_num(primary.mean), ys[0], marker="D", ms=5, color=POOLED)
    ax.set_xlabel(_axis_label(label, outcome.measure, outcome.effect_unit)
                  + "\npooled mean, 95% credible interval")
    ax.set_title(f"{label}: sensitivity analyses", loc="left")
    return fig


def cross_nutrient(cross: CrossNutrientResult) -> Figure | None:
    """Slopes of effect on baseline status per evidence base, with the pooled slope."""
    rows: list[Any] = list(cross.slopes)
    if not rows:
        return None
    labels = [str(r.label or f"{r.evidence_base}: {r.outcome}") for r in rows]
    pooled = cross.pooled_slope
    if pooled:
        rows.append(pooled)
        labels.append("pooled slope")
    fig = new_figure(6.4, 0.4 * len(rows) + 1.6)
    ax = fig.add_subplot(1, 1, 1)
    ys = _interval_rows(ax, rows, labels, SHRUNKEN)
    if pooled:
        ax.plot(_num(pooled.mean), ys[-1], marker="D", ms=6, color=POOLED)
    ax.set_xlabel(f"slope ({cross.scale or 'effect per unit of baseline status'})"
                  "\nposterior mean, 95% credible interval")
    ax.set_title("Dependence of the effect on baseline status, by nutrient", loc="left")
    return fig
