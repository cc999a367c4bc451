"""Synthesis without meta-analysis (Cochrane Handbook ch. 12; SWiM reporting guideline).

For every outcome, each randomised trial that the declared analyses consider (used or not) and
that reports a direction of the between-arm effect is counted as favouring the supplement or the
control:
a vote count on the direction of effect, a two-sided sign test, and a Clopper–Pearson interval
for the proportion favouring the supplement. An albatross plot (Harrison et al. 2017,
doi:10.1002/jrsm.1239) places each comparison by its two-sided p-value (left: favours control,
right: favours supplement) against its number of participants, with contours of standardised
mean differences. Directions reported for one arm only (a within-arm change) are not a
direction of effect and are left out, with a count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from nutrimeta.report.figures import OBSERVED, POOLED, figure_style, new_figure, save_figure
from nutrimeta.report.fmt import fmt, fmt_p
from nutrimeta.results import Bundle, OutcomeResult
from nutrimeta.schema import RANDOMISED_DESIGNS as RANDOMISED

__all__ = ["SignTest", "VoteCount", "albatross", "comparisons", "section", "sign_test",
           "vote_count", "vote_count_frame"]

SUPPLEMENT = "favours supplement"
CONTROL = "favours control"
#: Standardised mean differences drawn as contours on the albatross plot.
SMD_CONTOURS = (0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class SignTest:
    """Two-sided exact sign test of H0: a trial is as likely to favour either arm."""

    successes: int
    trials: int
    p_value: float
    proportion: float
    ci_lower: float
    ci_upper: float


def sign_test(successes: int, trials: int, level: float = 0.95) -> SignTest:
    """Exact binomial sign test (p = 0.5) with a Clopper–Pearson interval for the proportion.

    The two-sided p-value doubles the smaller tail (the binomial is symmetric at p = 0.5).
    """
    if trials <= 0:
        return SignTest(successes, trials, math.nan, math.nan, math.nan, math.nan)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes = {successes} outside 0..{trials}")
    tail = min(stats.binom.cdf(successes, trials, 0.5),
               stats.binom.sf(successes - 1, trials, 0.5))
    alpha = 1.0 - level
    lo = 0.0 if successes == 0 else float(stats.beta.ppf(alpha / 2, successes,
                                                          trials - successes + 1))
    hi = 1.0 if successes == trials else float(stats.beta.ppf(1 - alpha / 2, successes + 1,
                                                              trials - successes))
    return SignTest(successes, trials, float(min(1.0, 2.0 * tail)), successes / trials, lo, hi)


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _considered(outcome: OutcomeResult) -> set[str]:
    """Trials either declared analysis considers (contributions and not-used rows)."""
    ids: set[str] = {s.study_id for s in outcome.studies}
    for a in (outcome.analyses or {}).values():
        ids |= {c.study_id for c in a.contributions}
        ids |= {c.study_id for c in a.not_used}
    return ids


def comparisons(outcome: OutcomeResult, oid: str, effects: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison of a considered trial: direction of effect, p-value and n.

    ``direction`` is ``favours supplement``, ``favours control``, ``no direction`` (reported
    as no change, or an effect of exactly 0), ``within-arm only`` or ``not reported``.
    ``p_value`` is the printed between-arm p (``p_censored`` True when printed as "< x") or,
    for a complete contrast, two-sided from yi / SE.
    """
    eff = effects[(effects["outcome"] == oid)
                  & effects["study_id"].isin(_considered(outcome))
                  & effects["design"].isin(RANDOMISED)] if "outcome" in effects \
        else effects.iloc[0:0]
    good = 1.0 if str(outcome.beneficial) == "increase" else -1.0
    words = {"increase": good, "decrease": -good}
    rows = []
    for _, r in eff.iterrows():
        yi, sei = _num(r.get("yi")), _num(r.get("sei"))
        comparison = str(r.get("p_value_comparison") or "")
        p, censored = _num(r.get("p_value")), str(r.get("p_value_qualifier") or "") == "<"
        if comparison == "within_arm":
            p = math.nan
        word = str(r.get("direction") or "")
        if math.isfinite(yi):
            sign = float(np.sign(yi)) * good
            if not math.isfinite(p) and math.isfinite(sei) and sei > 0:
                p, censored = float(2 * stats.norm.sf(abs(yi / sei))), False
        elif comparison == "within_arm":
            sign = math.nan
        else:
            sign = words.get(word, 0.0 if word == "no_change" else math.nan)
        if comparison == "within_arm" and not math.isfinite(yi) and word:
            direction = "within-arm only"
        else:
            direction = (SUPPLEMENT if sign > 0 else CONTROL if sign < 0 else
                         "no direction" if sign == 0 else "not reported")
        n = _num(r.get("n_intervention")) + _num(r.get("n_control"))
        if not math.isfinite(n):
            n = _num(r.get("n_total_reported"))
        rows.append({"trial": str(r.get("trial_id") or r["study_id"]),
                     "study_id": r["study_id"],
                     "subgroup": "" if pd.isna(r.get("subgroup")) else str(r["subgroup"]),
                     "direction": direction, "p_value": p if math.isfinite(p) else None,
                     "p_censored": bool(censored and math.isfinite(p)),
                     "n": n if math.isfinite(n) else None})
    return pd.DataFrame(rows, columns=["trial", "study_id", "subgroup", "direction", "p_value",
                                       "p_censored", "n"])


@dataclass
class VoteCount:
    """Vote count on the direction of effect over trials (the trial is the unit)."""

    favours_supplement: int
    favours_control: int
    no_direction: int
    mixed: int
    not_counted: int
    test: SignTest
    trials: dict[str, str] = field(default_factory=dict)


def vote_count(comps: pd.DataFrame) -> VoteCount:
    """Trial-level votes: a trial whose comparisons all point one way votes that way; one whose
    arms point both ways is ``mixed`` and does not vote."""
    trials: dict[str, str] = {}
    for trial, grp in comps.groupby("trial", sort=True):
        dirs = set(grp["direction"]) & {SUPPLEMENT, CONTROL}
        if len(dirs) == 1:
            trials[str(trial)] = dirs.pop()
        elif len(dirs) == 2:
            trials[str(trial)] = "mixed"
        elif "no direction" in set(grp["direction"]):
            trials[str(trial)] = "no direction"
        else:
            trials[str(trial)] = "not counted"
    votes = list(trials.values())
    sup, ctl = votes.count(SUPPLEMENT), votes.count(CONTROL)
    return VoteCount(sup, ctl, votes.count("no direction"), votes.count("mixed"),
                     votes.count("not counted"), sign_test(sup, sup + ctl), trials)


def vote_count_frame(rows: list[tuple[str, VoteCount]]) -> pd.DataFrame:
    """Display table: one row per outcome."""
    out = []
    for label, v in rows:
        t = v.test
        out.append({
            "outcome": label, "favours supplement": v.favours_supplement,
            "favours control": v.favours_control,
            "no direction / mixed / not reported":
                f"{v.no_direction} / {v.mixed} / {v.not_counted}",
            "proportion favouring supplement (95% CI)":
                "—" if t.trials == 0 else
                f"{fmt(t.proportion, 2)} ({fmt(t.ci_lower, 2)} to {fmt(t.ci_upper, 2)})",
            "sign test p": "—" if t.trials == 0 else fmt_p(t.p_value)})
    return pd.DataFrame(out)


def _axis_position(p: float, favours_supplement: bool) -> float:
    """Signed -log10(p): positive right (favours supplement), negative left."""
    v = -math.log10(max(p, 1e-12))
    return v if favours_supplement else -v


def albatross(comps: pd.DataFrame, label: str) -> Figure | None:
    """Albatross plot, or None when no comparison has both a direction and a p-value and n."""
    usable = comps[comps["direction"].isin([SUPPLEMENT, CONTROL]) & comps["p_value"].notna()
                   & comps["n"].notna()]
    if usable.empty:
        return None
    fig = new_figure(7.2, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    n_max = max(float(usable["n"].max()) * 1.6, 200.0)
    n_grid = np.geomspace(4, n_max, 200)
    xmax = 4.0
    for d in SMD_CONTOURS:
        # Equal arms: SE(SMD) ~ 2 / sqrt(N), so z = d * sqrt(N) / 2.
        p = 2 * stats.norm.sf(d * np.sqrt(n_grid) / 2)
        x = -np.log10(np.clip(p, 1e-12, 1))
        for side in (1, -1):
            ax.plot(side * x, n_grid, color="#999999", lw=0.7, ls="--", zorder=0)
        inside = x <= xmax
        if inside.any():
            i = int(np.flatnonzero(inside)[-1])
            ax.text(x[i], n_grid[i], f"SMD {d:g}", fontsize=6.5, color="#666666",
                    ha="right", va="bottom")
    for _, r in usable.iterrows():
        xpos = _axis_position(float(r["p_value"]), r["direction"] == SUPPLEMENT)
        ax.plot(xpos, float(r["n"]), marker=">" if r["p_censored"] and xpos > 0 else
                "<" if r["p_censored"] else "o", ms=6, ls="none",
                color=POOLED if r["direction"] == SUPPLEMENT else OBSERVED,
                mfc="white" if r["p_censored"] else None)
    ax.axvline(0, color="#666666", lw=0.8)
    for s in (1, -1):
        ax.axvline(s * -math.log10(0.05), color="#cccccc", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlim(-xmax, xmax)
    ticks = [-4, -3, -2, math.log10(0.05), 0, -math.log10(0.05), 2, 3, 4]
    ax.set_xticks(ticks, ["0.0001", "0.001", "0.01", "0.05", "1", "0.05", "0.01", "0.001",
                          "0.0001"])
    ax.set_ylabel("participants (n)")
    ax.set_xlabel("two-sided p-value\n← favours control    favours supplement →")
    ax.set_title(f"{label}: albatross plot ({len(usable)} comparisons)", loc="left")
    return fig


def caption(comps: pd.DataFrame, label: str) -> str:
    """Figure caption with the count of comparisons that could not be placed."""
    directed = comps["direction"].isin([SUPPLEMENT, CONTROL])
    placed = directed & comps["p_value"].notna() & comps["n"].notna()
    return (f"Albatross plot, {label}: each comparison at its two-sided p-value (left: favours "
            "control, right: favours supplement; an open arrow marks a p printed only as "
            "'< threshold', plotted at the threshold) against its number of participants; "
            "dashed contours: standardised mean differences "
            + ", ".join(f"{d:g}" for d in SMD_CONTOURS)
            + " for two equal arms (Harrison et al. 2017). "
            f"{int(placed.sum())} of {int(directed.sum())} comparisons with a direction have a "
            "p-value and n and are shown.")


def section(bundle: Bundle, effects: pd.DataFrame, fig_dir: Path
            ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The report section: the vote-count table over outcomes and the albatross figures saved
    in ``fig_dir`` (each with its ``outcome`` and ``caption``)."""
    votes: list[tuple[str, VoteCount]] = []
    saved_figs: list[dict[str, Any]] = []
    for oid, outcome in bundle.outcomes.items():
        comps = comparisons(outcome, oid, effects)
        votes.append((outcome.label, vote_count(comps)))
        with figure_style():
            fig = albatross(comps, outcome.label)
            if fig is not None:
                saved = save_figure(fig, fig_dir, f"albatross_{oid}")
                saved_figs.append({**saved, "outcome": oid,
                                   "caption": caption(comps, outcome.label)})
    return vote_count_frame(votes), saved_figs
