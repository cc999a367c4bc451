"""Multivariate cross-nutrient model: does deficiency modify the effect, pooled over outcomes
and nutrient–hormone pairs.

Rows are (trial, outcome) effects on a standardised scale (Hedges' g, signed so that positive
is the hypothesised benefit). The moderator ``x`` is a trial's baseline level as the
fractional distance from its pair's deficiency cut-off, ``(level - cutoff) / cutoff``
(unitless, comparable across nutrients); where only a status category is known it is latent,
``x ~ N(m_c, s_c^2)``. For row ``i`` (trial ``t``, outcome ``o`` of pair ``p``)::

    y_i = mu_o + slope_o x_t + u_i + e_i
    slope_o = slope_p + sigma_outcome z_o,   slope_p = slope_global + sigma_pair z_p

with ``u_i ~ N(0, tau_p^2)`` (between-trial) and ``e_i ~ N(0, v_i)`` (sampling). Within a
trial the residuals ``u_i + e_i`` of two outcomes have a fixed, declared correlation ``rho``
(unknown in the data, so varied in sensitivity analyses). The slopes are non-centred; the
random effects and the latent baselines are integrated out, so each trial's rows are one
multivariate normal and only the hyperparameters are sampled: ``Cov(y_i, y_j)`` for rows of
one trial is ``rho sqrt(a_i a_j) + slope_i slope_j s_t^2`` (``a_i = v_i + tau_p^2``, ``rho``
replaced by 1 on the diagonal). A negative slope means a larger benefit the further below the
cut-off a population starts.

Priors are on the standardised scale, so every scale is a multiple of one SD of the outcome
(:class:`CrossPriors`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from nutrimeta.estimability import InformingTrials

#: declared values of the within-trial residual correlation: primary first, then sensitivity
RHO_VALUES: tuple[float, ...] = (0.5, 0.0, 0.8)
SLOPE_NAMES: tuple[str, ...] = ("slope_global", "slope_pair", "slope_outcome")


@dataclass(frozen=True)
class CrossPriors:
    """Priors in multiples of one standard deviation of the outcome (Hedges' g units).

    Attributes
    ----------
    mu_sd
        ``mu_o ~ N(0, mu_sd)``: effect at the cut-off per outcome.
    tau_scale
        ``tau_p ~ HalfNormal(tau_scale)``: between-trial SD per pair.
    slope_sd
        ``slope_global ~ N(0, slope_sd)``: change in g per unit of fractional distance from
        the cut-off (1 SD per unit: 0.4 SD between 20% below and 20% above the cut-off).
    pair_between_sd, outcome_between_sd
        HalfNormal scales of the spread of pair slopes around the global slope and of
        outcome slopes around their pair's slope.
    rho
        Fixed within-trial correlation of the residuals of two outcomes.
    x_deficient, x_replete
        Reference moderator values (fractional distance) of a typical deficient and replete
        population: ``deficient_minus_replete = slope_global (x_deficient - x_replete)``.
    """

    mu_sd: float = 1.0
    tau_scale: float = 0.5
    slope_sd: float = 1.0
    pair_between_sd: float = 0.5
    outcome_between_sd: float = 0.25
    rho: float = RHO_VALUES[0]
    x_deficient: float = -0.2
    x_replete: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.rho < 1.0:  # negative equicorrelation is not valid for 3+ outcomes
            raise ValueError(f"rho must lie in [0, 1), got {self.rho}")
        for name in ("mu_sd", "tau_scale", "slope_sd", "pair_between_sd",
                     "outcome_between_sd"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, float]:
        """Plain-dict form for provenance."""
        return asdict(self)


@dataclass(frozen=True)
class CrossMVData:
    """Rows of the multivariate model in array form (one row per trial and outcome).

    ``x_mean``/``x_sd`` are per trial: the measured level with SD 0, or the latent mean and SD
    of the trial's status category.
    """

    y: np.ndarray
    v: np.ndarray
    trial_idx: np.ndarray
    outcome_idx: np.ndarray
    outcome_pair_idx: np.ndarray  # per outcome: its pair
    x_mean: np.ndarray
    x_sd: np.ndarray
    trial_labels: tuple[str, ...]
    outcome_labels: tuple[str, ...]
    pair_labels: tuple[str, ...]
    trial_category: tuple[str, ...] = ()  # per trial, for counting informing trials

    def __post_init__(self) -> None:
        n = len(self.y)
        for name in ("v", "trial_idx", "outcome_idx"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, y has {n}")
        if np.any(~np.isfinite(self.y)) or np.any(~(self.v > 0)):
            raise ValueError("y must be finite and v positive in every row")
        if len(self.x_mean) != len(self.trial_labels) or len(self.x_sd) != len(
                self.trial_labels):
            raise ValueError("x_mean and x_sd need one entry per trial")
        if len(self.outcome_pair_idx) != len(self.outcome_labels):
            raise ValueError("outcome_pair_idx needs one entry per outcome")
        pairs = [(int(t), int(o)) for t, o in zip(self.trial_idx, self.outcome_idx,
                                                   strict=True)]
        if len(set(pairs)) != n:
            raise ValueError("each trial may carry each outcome once")

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        latent: Mapping[str, tuple[float, float]],
    ) -> CrossMVData:
        """Rows from a frame with columns ``trial_id, pair, outcome, yi, vi, x, category``.

        ``yi`` is the signed Hedges' g, ``x`` the fractional distance of the measured
        baseline level from the cut-off (NaN when not measured, then ``latent[category]``
        gives the latent ``(mean, sd)``). Outcome labels are ``pair:outcome``.
        """
        need = {"trial_id", "pair", "outcome", "yi", "vi", "x", "category"}
        missing = need - set(df.columns)
        if missing:
            raise ValueError(f"cross-nutrient frame lacks columns {sorted(missing)}")
        df = df.reset_index(drop=True)
        out_key = df["pair"].astype(str) + ":" + df["outcome"].astype(str)
        trials = tuple(dict.fromkeys(df["trial_id"].astype(str)))
        outcomes = tuple(dict.fromkeys(out_key))
        pairs = tuple(dict.fromkeys(df["pair"].astype(str)))
        x_mean, x_sd, cats = [], [], []
        for t in trials:
            rows = df[df["trial_id"].astype(str) == t]
            xs = rows["x"].astype(float).dropna().unique()
            cat = str(rows["category"].fillna("unknown").iloc[0])
            if len(xs) > 1:
                raise ValueError(f"trial {t}: rows disagree on the baseline level {list(xs)}")
            if len(xs) == 1:
                x_mean.append(float(xs[0]))
                x_sd.append(0.0)
            else:
                if cat not in latent:
                    raise ValueError(f"trial {t}: no latent level for category {cat!r}")
                x_mean.append(float(latent[cat][0]))
                x_sd.append(float(latent[cat][1]))
            cats.append(cat)
        pair_of = {o: pairs.index(o.split(":", 1)[0]) for o in outcomes}
        return cls(
            y=df["yi"].to_numpy(float), v=df["vi"].to_numpy(float),
            trial_idx=np.array([trials.index(t) for t in df["trial_id"].astype(str)]),
            outcome_idx=np.array([outcomes.index(o) for o in out_key]),
            outcome_pair_idx=np.array([pair_of[o] for o in outcomes]),
            x_mean=np.array(x_mean), x_sd=np.array(x_sd), trial_labels=trials,
            outcome_labels=outcomes, pair_labels=pairs, trial_category=tuple(cats),
        )

    def informing_trials(self, pair: str | None = None, cutoff: float = 0.0) -> InformingTrials:
        """Trials with status information (all pairs, or one pair), for the estimability rule."""
        keep = np.ones(len(self.trial_labels), bool)
        if pair is not None:
            p = self.pair_labels.index(pair)
            rows = self.outcome_pair_idx[self.outcome_idx] == p
            keep[:] = False
            keep[np.unique(self.trial_idx[rows])] = True
        cats = self.trial_category or ("unknown",) * len(self.trial_labels)
        levels = [float(m) if s == 0 else None for m, s in zip(self.x_mean, self.x_sd,
                                                               strict=True)]
        idx = np.flatnonzero(keep)
        return InformingTrials.from_trials([levels[i] for i in idx],
                                           [cats[i] for i in idx], cutoff)


def _blockwise_logp(
    resid: pt.TensorVariable,
    a2: pt.TensorVariable,
    b: pt.TensorVariable,
    x_var: np.ndarray,
    rho: pt.TensorVariable | float,
    trial_rows: np.ndarray,
) -> pt.TensorVariable:
    """Sum over trials of the multivariate normal log density of their residuals.

    A trial's covariance is diagonal plus rank two, ``D + U U'`` with
    ``D = (1 - rho) diag(a2)`` and ``U = [sqrt(rho) sqrt(a2), s b]`` (``s^2`` the latent
    baseline variance), so Woodbury's identity and the matrix determinant lemma give the
    density from per-trial sums (``trial_rows``: trials x rows indicator) without a
    Cholesky factorisation: no k x k matrix, and a gradient as cheap as the likelihood.
    """
    d = (1.0 - rho) * a2
    u1 = pt.sqrt(rho) * pt.sqrt(a2)
    u2 = np.sqrt(x_var) * b

    def per_trial(values: pt.TensorVariable) -> pt.TensorVariable:
        return pt.dot(trial_rows, values)

    a11, a12, a22 = per_trial(u1**2 / d), per_trial(u1 * u2 / d), per_trial(u2**2 / d)
    c1, c2 = per_trial(u1 * resid / d), per_trial(u2 * resid / d)
    k11, k22 = 1.0 + a11, 1.0 + a22
    det_k = k11 * k22 - a12**2
    quad = per_trial(resid**2 / d) - (k22 * c1**2 - 2.0 * a12 * c1 * c2 + k11 * c2**2) / det_k
    log_det = per_trial(pt.log(d)) + pt.log(det_k)
    n_rows = trial_rows.sum()
    return -0.5 * (quad.sum() + log_det.sum() + n_rows * np.log(2.0 * np.pi))


def build_cross_mv_model(data: CrossMVData, priors: CrossPriors | None = None) -> pm.Model:
    """PyMC model of :class:`CrossMVData` (see the module docstring for the equations).

    ``y``, ``v`` and ``rho`` are ``pm.Data``, so the fits at every declared ``rho`` share one
    compiled model (:func:`fit_cross_mv`)."""
    priors = priors or CrossPriors()
    coords = {"pair": list(data.pair_labels), "outcome": list(data.outcome_labels),
              "row": list(range(len(data.y)))}
    trial_rows = (np.arange(len(data.trial_labels))[:, None] == data.trial_idx[None, :]
                  ).astype(float)
    pair_of_row = data.outcome_pair_idx[data.outcome_idx]
    x_mean_row = data.x_mean[data.trial_idx]
    x_var_row = data.x_sd[data.trial_idx] ** 2
    with pm.Model(coords=coords) as model:
        y = pm.Data("y", data.y, dims="row")
        v = pm.Data("v", data.v, dims="row")
        rho = pm.Data("rho", priors.rho)
        mu = pm.Normal("mu", 0.0, priors.mu_sd, dims="outcome")
        tau = pm.HalfNormal("tau", priors.tau_scale, dims="pair")
        g = pm.Normal("slope_global", 0.0, priors.slope_sd)
        sig_p = pm.HalfNormal("sigma_pair", priors.pair_between_sd)
        sig_o = pm.HalfNormal("sigma_outcome", priors.outcome_between_sd)
        slope_p = pm.Deterministic(
            "slope_pair", g + sig_p * pm.Normal("slope_pair_z", 0.0, 1.0, dims="pair"),
            dims="pair")
        slope_o = pm.Deterministic(
            "slope_outcome", slope_p[data.outcome_pair_idx]
            + sig_o * pm.Normal("slope_outcome_z", 0.0, 1.0, dims="outcome"), dims="outcome")
        b = slope_o[data.outcome_idx]
        a2 = v + tau[pair_of_row] ** 2
        resid = y - mu[data.outcome_idx] - b * x_mean_row
        pm.Potential("loglik", _blockwise_logp(resid, a2, b, x_var_row, rho, trial_rows))
        # outcomes differ in their effect at the cut-off, so only the difference is pooled
        pm.Deterministic("deficient_minus_replete", g * (priors.x_deficient - priors.x_replete))
    return model


_COMPILED_MV: dict[str, tuple[pm.Model, Any]] = {}
_PRIOR_MV: dict[tuple[str, int, int], xr.Dataset] = {}


def _structure_key(data: CrossMVData, priors: CrossPriors) -> str:
    """Hash of everything but ``rho`` that a compiled model of ``data`` depends on."""
    from nutrimeta.versions import package_versions

    h = hashlib.sha256()
    for a in (data.y, data.v, data.trial_idx, data.outcome_idx, data.outcome_pair_idx,
              data.x_mean, data.x_sd):
        h.update(np.ascontiguousarray(a, dtype=float).tobytes())
    h.update(json.dumps([data.trial_labels, data.outcome_labels, data.pair_labels,
                         {**priors.to_dict(), "rho": None}, package_versions()]).encode())
    return h.hexdigest()


def fit_cross_mv(
    data: CrossMVData,
    priors: CrossPriors | None = None,
    *,
    seed: int = 0,
    sampler: Any = None,
    prior_draws: int = 4000,
) -> xr.DataTree:
    """Fit the model with nutpie and add a ``prior`` group.

    The model is compiled once per process for ``data`` and the priors other than ``rho``;
    a fit at another ``rho`` swaps it in. The prior group (``prior_draws`` draws of every
    free and derived variable, which do not depend on ``rho``: the likelihood is a
    potential) lets :func:`prior_and_posterior_sd` and the estimability rule compare prior
    and posterior.
    """
    from nutrimeta.models.fitting import SamplerSettings, compile_model, fit

    priors = priors or CrossPriors()
    sampler = sampler or SamplerSettings(target_accept=0.99)
    key = _structure_key(data, priors)
    if key not in _COMPILED_MV:
        model = build_cross_mv_model(data, priors)
        _COMPILED_MV[key] = (model, compile_model(model) if sampler.backend == "nutpie"
                             else None)
    model, compiled = _COMPILED_MV[key]
    rho = np.asarray(priors.rho, dtype=float)
    with model:
        pm.set_data({"rho": rho})
    attrs = {"model": "cross_mv", "priors": priors.to_dict()}
    if compiled is None:
        dt = fit(model, sampler, seed, attrs=attrs)
    else:
        dt = fit(compiled.with_data(rho=rho), sampler, seed, attrs=attrs,
                 coords={k: list(v) for k, v in model.coords.items()},
                 dims={k: tuple(model.named_vars_to_dims.get(k, ()))
                       for k in ("y", "v", "rho")})
    prior_key = (key, seed, prior_draws)
    if prior_key not in _PRIOR_MV:
        with model, warnings.catch_warnings():
            # the likelihood is a potential, so these are draws from the prior alone
            warnings.filterwarnings("ignore", message="The effect of Potentials")
            prior = pm.sample_prior_predictive(draws=prior_draws, random_seed=seed + 1)
        _PRIOR_MV[prior_key] = (prior["prior"].to_dataset() if hasattr(prior, "children")
                                else prior.prior)
    dt["prior"] = xr.DataTree(_PRIOR_MV[prior_key])
    return dt


def prior_and_posterior_sd(idata: xr.DataTree, name: str) -> pd.DataFrame:
    """Prior SD, posterior SD and contraction of a variable, one row per element.

    The index is the element's label (the coordinate value, or ``name`` for a scalar).
    """
    post = idata["posterior"].to_dataset()[name]
    prior = idata["prior"].to_dataset()[name]
    sample_dims = ("chain", "draw")
    post_sd = post.std(dim=sample_dims, ddof=1)
    prior_sd = prior.std(dim=sample_dims, ddof=1)
    if post_sd.ndim == 0:
        index: Sequence[str] = [name]
        p, q = [float(prior_sd)], [float(post_sd)]
    else:
        (dim,) = post_sd.dims
        index = [str(c) for c in post_sd.coords[dim].values]
        p = [float(s) for s in prior_sd.values]
        q = [float(s) for s in post_sd.values]
    out = pd.DataFrame({"prior_sd": p, "posterior_sd": q}, index=pd.Index(index, name=name))
    out["contraction"] = out["posterior_sd"] / out["prior_sd"]
    return out


# ------------------------------------------------------------------ input from the evidence

def cross_mv_frame(ev: Any, specs: Sequence[Any]) -> pd.DataFrame:
    """Rows of the multivariate model from the evidence under each pair's analysis spec.

    Every outcome of every spec is computed as Hedges' g (randomised, poolable rows only),
    signed so that positive is the outcome's declared benefit; ``x`` is the fractional distance
    of the harmonised baseline level from the pair's cut-off (NaN when not measured). A trial
    reported in strata of different participants gives one unit per stratum
    (``trial[stratum]``); arms compared with one shared control are combined into their mean
    contrast (:func:`combine_shared_control_arms`), so each trial enters once per outcome.
    Columns: ``trial_id, pair, outcome, yi, vi, x, category``.
    """
    from dataclasses import replace

    from nutrimeta.effect_table import effects_for_spec, pooled_rows
    from nutrimeta.results import benefit_sign

    frames = []
    for spec in specs:
        smd = replace(spec, outcomes=tuple(replace(o, measure="SMD") for o in spec.outcomes))
        eff = effects_for_spec(ev, smd)
        cut = spec.moderator.cutoff
        for o in spec.outcomes:
            rows = combine_shared_control_arms(pooled_rows(eff, o.id))
            if rows.empty:
                continue
            trial = rows["trial_id"] if "trial_id" in rows else rows["study_id"]
            sub = rows["subgroup"].fillna("").astype(str)
            unit = trial.astype(str).where(sub == "", trial.astype(str) + "[" + sub + "]")
            frames.append(pd.DataFrame({
                "trial_id": spec.evidence_base + "/" + unit,
                "pair": spec.evidence_base,
                "outcome": o.id,
                "yi": rows["yi"].astype(float) * benefit_sign(o.beneficial),
                "vi": rows["vi"].astype(float),
                "x": (rows["baseline_status_value_std"].astype(float) - cut) / cut,
                "category": rows["baseline_status_category"].fillna("unknown").astype(str),
            }))
    if not frames:
        return pd.DataFrame(columns=["trial_id", "pair", "outcome", "yi", "vi", "x",
                                     "category"])
    df = pd.concat(frames, ignore_index=True)
    dup = df.duplicated(["trial_id", "outcome"], keep=False)
    if dup.any():
        raise ValueError("rows left with one trial reporting one outcome twice: "
                         f"{sorted(set(df.loc[dup, 'trial_id'] + ' ' + df.loc[dup, 'outcome']))}")
    return df


def combine_shared_control_arms(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per group of arms sharing a control: their mean contrast and its variance.

    For ``m`` arm contrasts with variances ``v_j`` and pairwise covariance ``c`` (the shared
    control's variance, ``cov_shared_control``), the mean has variance
    ``(sum v_j + m (m - 1) c) / m^2``. Without a recorded covariance the arms are taken as
    perfectly correlated (``c_jl = sqrt(v_j v_l)``), the conservative bound. Baseline level
    and category of the first arm are kept (arms of one trial share their population).
    """
    if "shared_control_id" not in rows or rows.empty:
        return rows.copy()
    shared = rows["shared_control_id"].fillna("").astype(str)
    keep = [rows[shared == ""]]
    for _, group in rows[shared != ""].groupby(shared[shared != ""], sort=False):
        m = len(group)
        v = group["vi"].to_numpy(float)
        c = group["cov_shared_control"].astype(float).to_numpy()
        if m > 1 and np.all(np.isfinite(c)):
            var = (v.sum() + m * (m - 1) * float(c[0])) / m**2
        else:
            var = float(np.sqrt(v).mean() ** 2)
        first = group.iloc[[0]].copy()
        first["yi"] = float(group["yi"].astype(float).mean())
        first["vi"] = var
        first["subgroup"] = ""
        keep.append(first)
    return pd.concat(keep).sort_index()


def latent_fractional_levels(specs: Sequence[Any]) -> dict[str, tuple[float, float]]:
    """Latent ``(mean, sd)`` per status category on the fractional-distance scale.

    Each spec's latent levels are relative to its cut-off in its own unit; divided by the
    cut-off they become fractional distances (mean of the means, largest SD across pairs).
    """
    cats = set.intersection(*(set(s.moderator.latent) for s in specs))
    return {c: (float(np.mean([s.moderator.latent[c].mean / s.moderator.cutoff
                               for s in specs])),
                float(np.max([s.moderator.latent[c].sd / s.moderator.cutoff for s in specs])))
            for c in sorted(cats)}


def assess_cross_mv(
    idata: xr.DataTree,
    data: CrossMVData,
    rule: Any = None,
) -> dict[str, Any]:
    """The estimability rule applied to the pooled slope, its contrast and each pair's slope.

    Keys: ``slope_global``, ``deficient_minus_replete`` (trials of every pair) and
    ``slope_pair[<pair>]`` (that pair's trials); values are
    :class:`~nutrimeta.estimability.Estimability`. The moderator is already relative to each
    pair's cut-off, so the cut-off is 0 here.
    """
    from nutrimeta.estimability import assess

    out: dict[str, Any] = {}
    every = data.informing_trials()
    for name in ("slope_global", "deficient_minus_replete"):
        row = prior_and_posterior_sd(idata, name).iloc[0]
        out[name] = assess(float(row["prior_sd"]), float(row["posterior_sd"]), every, rule)
    pairs = prior_and_posterior_sd(idata, "slope_pair")
    for pair in data.pair_labels:
        row = pairs.loc[pair]
        out[f"slope_pair[{pair}]"] = assess(float(row["prior_sd"]), float(row["posterior_sd"]),
                                            data.informing_trials(pair), rule)
    return out
