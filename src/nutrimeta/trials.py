"""The trial as the unit of analysis: grouping of contrasts and their covariance.

Several rows of the effect-size table can come from one trial: dose arms compared with one
shared control group, or strata of different participants. Every row carries ``trial_id``;
rows that share a control group carry the same ``shared_control_id`` and the control arm's
share of their sampling variance in ``cov_shared_control`` (see
:func:`nutrimeta.effects.compute_effects`). This module turns those columns into the
block-diagonal sampling covariance matrix of an outcome and counts trials and participants
once per trial.

Covariance of two contrasts ``i, j`` against one shared control group (``c``):

- MD: ``sd_c^2 / n_c``; ROM: ``sd_c^2 / (n_c m_c^2)``;
- SMD: ``1/n_c + g_i g_j / (2 N)`` with ``N`` the participants of all groups involved
  (Gleser & Olkin 2009, as metafor's ``vcalc`` for multi-treatment studies).

Strata of different participants of one trial are independent (zero covariance); they share
the trial-level random effect in the models of :mod:`nutrimeta.models.multivariate`.

References
----------
Gleser LJ, Olkin I. Stochastically dependent effect sizes. In: Cooper H, Hedges LV, Valentine
JC (eds). The Handbook of Research Synthesis and Meta-Analysis, 2nd ed. New York: Russell Sage
Foundation; 2009: 357-376.

Viechtbauer W. metafor: ``vcalc()``, constructing or approximating the variance-covariance
matrix of dependent effect sizes (metafor 4.x reference manual).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["OutcomeCovariance", "covariance_by_outcome", "outcome_covariance", "trial_counts"]


@dataclass(frozen=True)
class OutcomeCovariance:
    """Contrasts of one outcome with their block-diagonal sampling covariance.

    Attributes
    ----------
    yi
        Effect estimates, one per contrast (row), ordered trial by trial.
    V
        ``(m, m)`` sampling covariance matrix, block-diagonal by trial.
    trial_ids
        The distinct trials, in order of first appearance.
    trial_idx
        Index of each row's trial into ``trial_ids``.
    labels
        ``study_id`` or ``study_id[subgroup]`` per row.
    rows
        Index labels of the rows in the effect table they came from.
    """

    yi: np.ndarray
    V: np.ndarray
    trial_ids: tuple[str, ...]
    trial_idx: np.ndarray
    labels: tuple[str, ...]
    rows: tuple[int, ...]

    @property
    def k_trials(self) -> int:
        """Number of trials (the unit of analysis)."""
        return len(self.trial_ids)

    @property
    def n_contrasts(self) -> int:
        """Number of contrasts (rows)."""
        return int(self.yi.size)

    def block(self, trial: int | str) -> tuple[np.ndarray, np.ndarray]:
        """``(y, V)`` of one trial (by index or id)."""
        t = self.trial_ids.index(trial) if isinstance(trial, str) else int(trial)
        sel = np.flatnonzero(self.trial_idx == t)
        return self.yi[sel], self.V[np.ix_(sel, sel)]


def _col(df: pd.DataFrame, name: str, default: object) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(default, index=df.index)


def outcome_covariance(
    effects: pd.DataFrame, outcome: str | None = None, *, poolable_only: bool = True
) -> OutcomeCovariance:
    """Block-diagonal sampling covariance of the contrasts of one outcome.

    Parameters
    ----------
    effects
        Effect-size table (:func:`nutrimeta.effects.compute_effects`), with ``trial_id``,
        ``shared_control_id`` and ``cov_shared_control`` (absent columns: every row its own
        trial, no shared controls).
    outcome
        Outcome to select; ``None`` uses all rows (they must share one outcome).
    poolable_only
        Keep only rows with ``poolable`` true.

    Returns
    -------
    OutcomeCovariance
    """
    df = effects
    if outcome is not None:
        df = df[df["outcome"] == outcome]
    if poolable_only and "poolable" in df.columns:
        df = df[df["poolable"].astype(bool)]
    if outcome is None and df["outcome"].nunique() > 1:
        raise ValueError("rows of several outcomes: pass outcome=")
    trial = _col(df, "trial_id", "").astype(str)
    trial = trial.where(trial != "", df["study_id"].astype(str))
    order = list(dict.fromkeys(trial))
    df = df.assign(_trial=pd.Categorical(trial, categories=order)).sort_values(
        "_trial", kind="stable")
    m = len(df)
    yi = df["yi"].to_numpy(dtype=float)
    vi = df["vi"].to_numpy(dtype=float)
    if not (np.all(np.isfinite(yi)) and np.all(np.isfinite(vi)) and np.all(vi > 0)):
        raise ValueError("yi must be finite and vi finite and positive in the selected rows")
    V = np.diag(vi)
    shared = _col(df, "shared_control_id", "").fillna("").astype(str).to_numpy()
    cov = _col(df, "cov_shared_control", math.nan).to_numpy(dtype=float)
    measure = _col(df, "measure", "MD").astype(str).to_numpy()
    n_int = pd.to_numeric(_col(df, "n_intervention", math.nan)).to_numpy(dtype=float)
    n_ctl = pd.to_numeric(_col(df, "n_control", math.nan)).to_numpy(dtype=float)
    trials = df["_trial"].astype(str).to_numpy()
    for g in {s for s in shared if s}:
        idx = np.flatnonzero(shared == g)
        if len(idx) < 2:
            continue
        if len(set(trials[idx])) > 1:
            raise ValueError(f"shared control {g!r} spans several trials")
        if not np.all(np.isfinite(cov[idx])):
            raise ValueError(f"shared control {g!r}: cov_shared_control missing")
        n_all = float(np.nansum(n_int[idx]) + n_ctl[idx[0]])
        for a in idx:
            for b in idx:
                if a == b:
                    continue
                c = cov[a]
                if measure[a] == "SMD":
                    c = cov[a] + yi[a] * yi[b] / (2.0 * n_all)
                V[a, b] = c
    subgroup = _col(df, "subgroup", "").fillna("").astype(str).to_numpy()
    sids = df["study_id"].astype(str).to_numpy()
    multi = pd.Series(sids).duplicated(keep=False).to_numpy()
    labels = tuple(f"{s}[{g}]" if mm and g else s
                   for s, g, mm in zip(sids, subgroup, multi, strict=True))
    return OutcomeCovariance(
        yi=yi, V=V, trial_ids=tuple(order),
        trial_idx=np.array([order.index(t) for t in trials], dtype=int),
        labels=labels, rows=tuple(int(i) for i in df.index) if m else (),
    )


def covariance_by_outcome(effects: pd.DataFrame) -> dict[str, OutcomeCovariance]:
    """:func:`outcome_covariance` for every outcome with at least one poolable row."""
    pool = effects[effects["poolable"].astype(bool)] if "poolable" in effects.columns \
        else effects
    return {str(o): outcome_covariance(pool, str(o)) for o in pool["outcome"].unique()}


def trial_counts(effects: pd.DataFrame, outcome: str | None = None) -> pd.DataFrame:
    """Trials and participants of the poolable rows, each participant counted once.

    Returns one row per trial with ``trial_id``, ``n_contrasts`` and ``n`` (intervention
    arms summed, a shared control group counted once); the frame's ``attrs`` carry
    ``k_trials`` and ``n_total`` (``nan`` when any trial's n is unknown).
    """
    df = effects
    if outcome is not None:
        df = df[df["outcome"] == outcome]
    if "poolable" in df.columns:
        df = df[df["poolable"].astype(bool)]
    trial = _col(df, "trial_id", "").astype(str)
    trial = trial.where(trial != "", df["study_id"].astype(str))
    shared = _col(df, "shared_control_id", "").astype("string").fillna("").astype(str)
    recs = []
    for t, g in df.groupby(trial, sort=False):
        n_int = pd.to_numeric(g["n_intervention"]).astype(float)
        n_ctl = pd.to_numeric(g["n_control"]).astype(float)
        sh = shared.loc[g.index]
        ctl = n_ctl[sh == ""].sum(min_count=1)
        for _, gg in n_ctl[sh != ""].groupby(sh[sh != ""]):
            ctl = np.nansum([ctl, gg.iloc[0]])
        n = float(n_int.sum(min_count=1)) + float(ctl)
        if n_int.isna().any() or n_ctl.isna().any():
            n = math.nan
        recs.append({"trial_id": t, "n_contrasts": len(g), "n": n})
    out = pd.DataFrame.from_records(recs, columns=["trial_id", "n_contrasts", "n"])
    out.attrs["k_trials"] = len(out)
    out.attrs["n_total"] = float(out["n"].sum()) if len(out) and out["n"].notna().all() \
        else math.nan
    return out
