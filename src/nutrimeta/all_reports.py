"""The ``all_reports`` analysis of one outcome: every randomised report by its route.

:func:`all_reports_for_outcome` takes the effect-size rows of one outcome (all rows, poolable
or not; :func:`nutrimeta.effects.compute_effects`) and the outcome's analysis settings, and
returns a plain result dict: the trials and participants counted once per trial, one
contribution per trial with its route and declared assumptions, every row not used with its
reason, and the posterior of ``mu`` and ``tau`` (:mod:`nutrimeta.models.partial`).

One contribution per trial: several complete contrasts of one trial (dose arms against a
shared control, strata) are combined by GLS with their covariance into the trial's estimate
(:func:`nutrimeta.models.multivariate.collapse_trials`, exact for a trial-level random
effect); a trial without a complete contrast enters by the most informative route of its
rows, the others listed as not used.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from nutrimeta.models import partial
from nutrimeta.models.multivariate import collapse_trials
from nutrimeta.models.partial import (
    ROUTES,
    CellReport,
    Contribution,
    PartialPriors,
    Route,
    RouteDecision,
    assign_route,
    fit_partial,
)
from nutrimeta.models.partial_grid import grid_posterior
from nutrimeta.trials import outcome_covariance

__all__ = [
    "DECISION_LEVELS",
    "RANDOMISED",
    "all_reports_for_outcome",
    "all_reports_sensitivity",
    "cell_from_effect_row",
    "fragile_rows",
]

RANDOMISED = ("parallel_rct", "crossover_rct")
_ALT_PREFIXES = ("alt-source:", "alt-split:")
_NOT_IN_SCOPE = ("separate", "excluded")
_ROUTE_RANK = {r: i for i, r in enumerate(ROUTES)}  # full first, sign last


def _f(row: Mapping[str, Any], col: str) -> float:
    v = row.get(col, math.nan)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _s(row: Mapping[str, Any], col: str) -> str:
    v = row.get(col, "")
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()


def cell_from_effect_row(row: Mapping[str, Any]) -> CellReport:
    """What one effect-table row carries, as a :class:`~nutrimeta.models.partial.CellReport`.

    A row with a computed effect (``yi``, ``sei``) is complete, whatever the curation status
    that kept it out of the conventional analysis; its SE counts as ``se_from_p`` when the
    derivation took it from a p-value. The pooled SD of an MD row (from the arm SDs) informs
    the log-SD prior.
    """
    label = _s(row, "study_id") + (f"[{_s(row, 'subgroup')}]" if _s(row, "subgroup") else "")
    yi, sei = _f(row, "yi"), _f(row, "sei")
    n1 = _f(row, "n_intervention")
    n2 = _f(row, "n_control")
    if math.isnan(n1):
        n1 = _f(row, "n_intervention_reported")
    if math.isnan(n2):
        n2 = _f(row, "n_control_reported")
    if math.isfinite(yi) and sei > 0:
        sd = math.nan
        s1, s2 = _f(row, "sd_intervention"), _f(row, "sd_control")
        if _s(row, "measure") == "MD" and all(map(math.isfinite, (s1, s2, n1, n2))):
            sd = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))
        return CellReport(_s(row, "trial_id") or _s(row, "study_id"), label, estimate=yi,
                          se=sei, se_from_p="from two-sided p" in _s(row, "derivation"),
                          sd=sd, n1=n1, n2=n2)
    return CellReport(
        _s(row, "trial_id") or _s(row, "study_id"), label,
        estimate=_f(row, "estimate_partial") if _s(row, "measure") != "SMD" else math.nan,
        n1=n1, n2=n2, n_total=_f(row, "n_total_reported"), p_value=_f(row, "p_value"),
        p_qualifier=_s(row, "p_value_qualifier"), p_comparison=_s(row, "p_value_comparison"),
        direction=_s(row, "direction"),
    )


def _scope_reason(row: Mapping[str, Any]) -> str:
    if _s(row, "subgroup").startswith(_ALT_PREFIXES):
        return "alternative source or subgroup split of the same participants"
    if _s(row, "inclusion_status") in _NOT_IN_SCOPE:
        return f"study {_s(row, 'inclusion_status')}: {_s(row, 'reason')}"
    if _s(row, "design") not in RANDOMISED:
        return "not randomised: in the all-designs model only"
    return ""


def _priors(spec: Mapping[str, Any]) -> PartialPriors:
    if "unit_sd" not in spec:
        raise ValueError("the outcome's settings must declare unit_sd (a typical SD of the "
                         "outcome on its analysis scale)")
    keys = ("unit_sd", "mu_sd", "tau_scale", "log_sd_sd", "log_sd_spread", "learn_sd",
            "log_sd_center")
    return PartialPriors(**{k: spec[k] for k in keys if k in spec})


def _contribution(decision: RouteDecision) -> Contribution:
    """The contribution of a usable route decision."""
    if decision.contribution is None:
        raise ValueError(f"route decision without a contribution: {decision.reason}")
    return decision.contribution


def all_reports_for_outcome(
    effect_rows: pd.DataFrame, spec_outcome: Mapping[str, Any]
) -> dict[str, Any]:
    """The all-reports analysis of one outcome.

    Parameters
    ----------
    effect_rows
        Effect-table rows of one outcome (poolable or not).
    spec_outcome
        ``unit_sd`` (required: the outcome's unit SD on its analysis scale; for ROM a typical
        coefficient of variation, for SMD 1), optional prior multiples ``mu_sd``,
        ``tau_scale``, ``log_sd_sd``, ``log_sd_spread``, ``learn_sd``; ``method``
        (``"sample"``, default, or ``"grid"``, which needs ``learn_sd = False``; ``grid``:
        optional ``n_mu``, ``n_tau``, ``n_sd`` of :func:`grid_posterior`); ``sampler``
        (:class:`~nutrimeta.models.fitting.SamplerSettings`) and ``seed``; for sensitivity
        analyses ``exclude_routes`` (routes left out), ``exclude_assumed_allocation`` and
        ``leave_out`` (a trial id).

    Returns
    -------
    dict
        ``k_trials``, ``n_randomised`` (nan when a used trial has no n), ``contributions``
        (``study_id``, ``subgroup``, ``route``, ``assumptions``), ``not_used`` (``study_id``,
        ``subgroup``, ``reason``), ``routes`` (counts), ``priors``, ``posterior`` (``mu``,
        ``tau`` summaries, ``P(mu > 0)``, ``divergences``; ``None`` with no contribution) and
        ``single_trial`` (one trial: shown as that trial with its arms, not as pooled).
    """
    return _for_outcome(_Rows.of(effect_rows), spec_outcome)


@dataclasses.dataclass
class _Rows:
    """An outcome's effect rows read once for all variants of its all-reports analysis:
    each row's scope, trial and route decision, and each trial's combined contribution by
    the rows it combines (the sensitivity analyses rerun the analysis on the same rows)."""

    rows: pd.DataFrame
    cells: list[tuple[int, dict[str, Any], str, str, RouteDecision | None]]
    combined: dict[tuple[int, ...], tuple[Contribution, float]]

    @classmethod
    def of(cls, effect_rows: pd.DataFrame) -> _Rows:
        rows = effect_rows.reset_index(drop=True)
        cells = []
        for i, row in rows.iterrows():
            rec = row.to_dict()
            why = _scope_reason(rec)
            trial = _s(rec, "trial_id") or _s(rec, "study_id")
            d = None if why else assign_route(cell_from_effect_row(rec))
            cells.append((int(i), rec, why, trial, d))
        return cls(rows, cells, {})

    def combine(self, trial: str, full: list[tuple[int, RouteDecision]]
                ) -> tuple[Contribution, float]:
        """One trial's complete contrasts combined by GLS, and its participants."""
        key = tuple(i for i, _ in full)
        if key not in self.combined:
            used_contribs = [_contribution(d) for _, d in full]
            sub = self.rows.loc[list(key)].assign(
                poolable=True, yi=[c.estimate for c in used_contribs],
                vi=[c.se**2 for c in used_contribs])
            cov = outcome_covariance(sub, poolable_only=False)
            col = collapse_trials(cov)
            first = used_contribs[0]
            route: Route = ("se_from_p" if all(d.route == "se_from_p" for _, d in full)
                            else "full")
            con = Contribution(trial, route, estimate=float(col.y[0]), se=float(col.se[0]),
                               n1=first.n1, n2=first.n2, df=first.df,
                               sd=first.sd, label=trial)
            self.combined[key] = (con, _trial_n(sub))
        return self.combined[key]


def _for_outcome(prepared: _Rows, spec_outcome: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`all_reports_for_outcome` on rows read by :meth:`_Rows.of`."""
    priors = _priors(spec_outcome)
    exclude = set(spec_outcome.get("exclude_routes", ()))
    leave_out = spec_outcome.get("leave_out")
    no_assumed = bool(spec_outcome.get("exclude_assumed_allocation", False))
    rows = prepared.rows
    recs = {i: rec for i, rec, _, _, _ in prepared.cells}
    not_used: list[dict[str, Any]] = []
    decided: dict[str, list[tuple[int, RouteDecision]]] = {}
    for i, rec, why, trial, d in prepared.cells:
        if not why and leave_out is not None and trial == leave_out:
            why, d = "left out (sensitivity analysis)", None
        if d is not None and not d.usable:
            why = d.reason
        if d is not None and d.usable and d.route in exclude:
            why = f"route {d.route} left out (sensitivity analysis)"
        if d is not None and d.usable and no_assumed and d.assumptions:
            why = "assumed allocation left out (sensitivity analysis)"
        if why:
            not_used.append({"study_id": _s(rec, "study_id"), "subgroup": _s(rec, "subgroup"),
                             "reason": why})
            continue
        assert d is not None  # a cell without a decision was listed as not used above
        decided.setdefault(trial, []).append((i, d))

    measure = str(rows["measure"].iloc[0]) if len(rows) else "MD"
    contribs: list[Contribution] = []
    listed: list[dict[str, Any]] = []
    trial_n: list[float] = []
    for trial, items in decided.items():
        full = [(i, d) for i, d in items if d.route in ("full", "se_from_p")]
        if full:
            con, n = prepared.combine(trial, full)
            used = full
        else:
            best = min(items, key=lambda it: _ROUTE_RANK[_contribution(it[1]).route])
            con = dataclasses.replace(_contribution(best[1]), label=trial)
            used = [best]
            n = con.n1 + con.n2
        if measure == "SMD" and con.needs_latent_sd:  # SE of an SMD needs no SD
            con = dataclasses.replace(con, se=math.sqrt(1 / con.n1 + 1 / con.n2))
        contribs.append(con)
        trial_n.append(n)
        for i, d in items:
            rec = recs[i]
            if (i, d) in used:
                listed.append({"study_id": _s(rec, "study_id"), "subgroup": _s(rec, "subgroup"),
                               "route": con.route, "assumptions": list(d.assumptions)})
            else:
                not_used.append({"study_id": _s(rec, "study_id"),
                                 "subgroup": _s(rec, "subgroup"),
                                 "reason": "another report of the same trial contributes "
                                           f"(route {con.route})"})
    result: dict[str, Any] = {
        "analysis": "all_reports",
        "k_trials": len(contribs),
        "n_randomised": float(np.sum(trial_n)) if trial_n else 0.0,
        "contributions": listed,
        "not_used": not_used,
        "routes": {r: sum(1 for c in contribs if c.route == r) for r in ROUTES},
        "priors": priors.to_dict(),
        "single_trial": len(contribs) == 1,
        "posterior": None,
    }
    if not contribs:
        return result
    if spec_outcome.get("method", "sample") == "grid":
        g = grid_posterior(contribs, priors, **dict(spec_outcome.get("grid", {})))
        result["posterior"] = {**g.summary(), "method": "grid"}
    else:
        sampler = spec_outcome.get("sampler") or partial.PARTIAL_SAMPLER
        fitted = fit_partial(contribs, priors, sampler, int(spec_outcome.get("seed", 0)))
        result["posterior"] = {**fitted.summary(), "method": "nuts"}
    return result


def _trial_n(sub: pd.DataFrame) -> float:
    """Participants of one trial's complete contrasts, a shared control counted once."""
    n_int = pd.to_numeric(sub["n_intervention"], errors="coerce").astype(float)
    n_ctl = pd.to_numeric(sub["n_control"], errors="coerce").astype(float)
    shared = sub.get("shared_control_id", pd.Series("", index=sub.index)).fillna("")
    ctl = float(n_ctl[shared == ""].sum()) + float(
        n_ctl[shared != ""].groupby(shared[shared != ""]).first().sum())
    if n_int.isna().any() or n_ctl.isna().any():
        tot = pd.to_numeric(sub.get("n_total_reported"), errors="coerce")
        return float(tot.iloc[0]) if tot is not None and len(sub) == 1 else math.nan
    return float(n_int.sum()) + ctl


#: Levels of P(mu > 0) whose crossing changes how an answer reads (both directions of benefit).
DECISION_LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9)


def all_reports_sensitivity(
    effect_rows: pd.DataFrame, spec_outcome: Mapping[str, Any],
    log_sd_factors: tuple[float, ...] = (0.5, 2.0),
) -> dict[str, Any]:
    """The all-reports analysis with each kind of rescued information left out in turn.

    Variants: no censored information (``censored_threshold``, ``censored_ns``, ``sign``);
    no latent SDs; no assumed allocation; the spread of the log-SD prior scaled by each of
    ``log_sd_factors``; and each trial left out in turn. ``hangs_on_single_rescued_row``
    lists the trials entering by a partial route (not ``full``) whose removal alone moves
    P(mu > 0) across one of :data:`DECISION_LEVELS`.
    """
    prepared = _Rows.of(effect_rows)
    main = _for_outcome(prepared, spec_outcome)
    out: dict[str, Any] = {"main": main, "variants": {}, "leave_one_out": {},
                           "hangs_on_single_rescued_row": []}
    if main["posterior"] is None:
        return out
    spread = float(spec_outcome.get("log_sd_spread", PartialPriors(1.0).log_sd_spread))
    variants: dict[str, dict[str, Any]] = {
        "no_censored": {"exclude_routes": ("censored_threshold", "censored_ns", "sign")},
        "no_latent_sd": {"exclude_routes": ("latent_sd",)},
        "no_assumed_allocation": {"exclude_assumed_allocation": True},
    }
    for f in log_sd_factors:
        variants[f"log_sd_spread_x{f:g}"] = {"log_sd_spread": spread * f}
    for name, change in variants.items():
        out["variants"][name] = _brief(_for_outcome(prepared, {**spec_outcome, **change}))
    p0 = main["posterior"]["P(mu > 0)"]
    routes = {c["study_id"]: c["route"] for c in main["contributions"]}
    trials = list(dict.fromkeys(c["study_id"] for c in main["contributions"]))
    for trial in trials:
        res = _brief(_for_outcome(prepared, {**spec_outcome, "leave_out": trial}))
        out["leave_one_out"][trial] = res
        p1 = res["P(mu > 0)"]
        if routes[trial] != "full" and p1 is not None and any(
                (p0 - lev) * (p1 - lev) < 0 for lev in DECISION_LEVELS):
            out["hangs_on_single_rescued_row"].append(
                {"study_id": trial, "route": routes[trial], "P(mu > 0)": p0,
                 "P(mu > 0) without it": p1})
    return out


def fragile_rows(sens: Mapping[str, Any], levels: tuple[float, ...],
                 benefit_sign: int) -> list[str]:
    """Trials entering by a partial route (not ``full``) whose removal alone moves P(benefit)
    across one of ``levels`` (e.g. the verdict rule's probability levels).

    ``sens`` is the output of :func:`all_reports_sensitivity`; ``benefit_sign`` is +1 when an
    increase is the benefit, -1 when a decrease is.
    """
    post = sens["main"]["posterior"]
    if post is None:
        return []

    def p_benefit(p_gt_0: float) -> float:
        return p_gt_0 if benefit_sign > 0 else 1.0 - p_gt_0

    p0 = p_benefit(post["P(mu > 0)"])
    routes = {c["study_id"]: c["route"] for c in sens["main"]["contributions"]}
    out = []
    for trial, res in sens["leave_one_out"].items():
        if routes.get(trial, "full") == "full" or res["P(mu > 0)"] is None:
            continue
        p1 = p_benefit(res["P(mu > 0)"])
        if any((p0 >= lev) != (p1 >= lev) for lev in levels):
            out.append(trial)
    return out


def _brief(res: Mapping[str, Any]) -> dict[str, Any]:
    post = res.get("posterior")
    return {"k_trials": res["k_trials"], "routes": res["routes"],
            "mu": None if post is None else post["mu"],
            "P(mu > 0)": None if post is None else post["P(mu > 0)"]}
