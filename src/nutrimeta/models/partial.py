"""All-reports likelihood: every trial report enters by the route its numbers allow.

Model (trial ``i`` with true effect ``theta_i``; ``theta_i`` is integrated out analytically
in every route)::

    theta_i ~ N(mu, tau^2),  mu ~ N(0, (mu_sd * unit)^2),  tau ~ HalfNormal(tau_scale * unit)
    y_i | theta_i ~ N(theta_i, se_i^2)

``unit`` is the outcome's declared unit SD (a typical between-person SD on the outcome's
scale), so every prior is stated on the outcome's scale. The routes (one per contribution):

``full``
    estimate and SE: ``y_i ~ N(mu, se_i^2 + tau^2)``.
``se_from_p``
    estimate and an exact two-sided p-value, SE from :func:`se_from_exact_p` (t with
    ``n1 + n2 - 2`` df where n is known); then as ``full``.
``latent_sd``
    estimate and arm sizes but no dispersion: ``se_i = sigma_i sqrt(1/n1 + 1/n2)`` with the
    trial's SD ``sigma_i`` latent, ``log sigma_i ~ N(eta, omega^2)``; ``eta`` and ``omega``
    are learned from the trials that report an SD (``log s_j ~ N(eta, omega^2 + 1/(2 df_j))``,
    the large-sample variance of a log SD), the idea of Sung et al. (2006) inside the model.
``censored_threshold``
    "p < alpha" with a direction: the test statistic lies beyond ``c = t[1 - alpha/2, df]``
    (``z`` without df) on that side, ``P(y_i > c se_i) = Phi((mu - c se_i) / s_i)`` with
    ``s_i^2 = se_i^2 + tau^2`` (mirror image for a decrease).
``censored_ns``
    "no significant difference" at level alpha: ``|y_i| < c se_i``,
    ``Phi((c se_i - mu)/s_i) - Phi((-c se_i - mu)/s_i)``.
``sign``
    direction only: ``P(y_i > 0) = Phi(mu / s_i)`` (or ``Phi(-mu / s_i)``).

Where a censored or sign contribution has no reported SE, ``se_i`` comes from the latent SD
as in ``latent_sd``. The posterior is sampled with PyMC/nutpie through
:func:`nutrimeta.models.fitting.fit`; :func:`grid_posterior` integrates the same posterior by
brute force (grid over ``mu`` and ``tau``, Gauss-Hermite over each latent log SD;
:mod:`nutrimeta.models.partial_grid`) and is the oracle of the tests and the fast path of the
calibration study.

References
----------
Sung et al. (2006) imputed missing SDs from the other trials of a meta-analysis; here the
same idea is a hierarchical prior inside the model rather than a plug-in imputation.

Albajes-Eizagirre A, Solanes A, Radua J. Meta-analysis of non-statistically significant
unreported effects (metansue), 2019: non-significant unreported effects by multiple
imputation; here the same information enters the likelihood exactly as a censored term.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import pandas as pd
from scipy import stats

from nutrimeta import conversions as cv

if TYPE_CHECKING:  # PyMC, PyTensor and the sampler are imported where a model is built
    import pymc as pm

    from nutrimeta.models.fitting import SamplerSettings

__all__ = [
    "PARTIAL_SAMPLER",
    "ROUTES",
    "CellReport",
    "Contribution",
    "PartialFit",
    "PartialPriors",
    "RouteDecision",
    "assign_route",
    "build_partial_model",
    "critical_value",
    "fit_partial",
    "se_from_exact_p",
]

Route = Literal["full", "se_from_p", "latent_sd", "censored_threshold", "censored_ns", "sign"]
ROUTES: tuple[str, ...] = get_args(Route)
_ESTIMATE_ROUTES = ("full", "se_from_p", "latent_sd")
#: p-value bounds that can be significance thresholds ("p < 0.05"); "< 0.95" cannot.
MAX_THRESHOLD_ALPHA = 0.10


# ------------------------------------------------------------------- data structures
@dataclass(frozen=True)
class Contribution:
    """One trial's report entering the likelihood by one route.

    Attributes
    ----------
    trial_id, route, label
        The trial, the route (:data:`ROUTES`) and a display label.
    estimate, se
        Contrast (intervention minus control) and its SE where known.
    n1, n2
        Arm sizes (needed where the SE is latent).
    alpha, direction
        Threshold of a censored report and its side (+1 increase, -1 decrease; also the
        direction of ``sign``).
    df
        Degrees of freedom of the trial's test (``n1 + n2 - 2``), ``nan`` if unknown.
    sd
        A pooled SD reported by the trial (informs the log-SD prior), ``nan`` if none.
    assumptions
        Declared assumptions this contribution rests on (e.g. equal allocation).
    """

    trial_id: str
    route: Route
    estimate: float = math.nan
    se: float = math.nan
    n1: float = math.nan
    n2: float = math.nan
    alpha: float = 0.05
    direction: int = 0
    df: float = math.nan
    sd: float = math.nan
    label: str = ""
    assumptions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"{self.trial_id}: unknown route {self.route!r}")
        if self.route in ("full", "se_from_p") and not (
                math.isfinite(self.estimate) and self.se > 0):
            raise ValueError(f"{self.trial_id}: route {self.route} needs estimate and se > 0")
        if self.route == "latent_sd" and not math.isfinite(self.estimate):
            raise ValueError(f"{self.trial_id}: route latent_sd needs an estimate")
        if self.needs_latent_sd and not (self.n1 > 0 and self.n2 > 0):
            raise ValueError(f"{self.trial_id}: route {self.route} needs n1, n2 without an SE")
        if self.route in ("censored_threshold", "sign") and self.direction not in (-1, 1):
            raise ValueError(f"{self.trial_id}: route {self.route} needs direction +1 or -1")
        if self.route.startswith("censored") and not 0 < self.alpha <= MAX_THRESHOLD_ALPHA:
            raise ValueError(f"{self.trial_id}: alpha {self.alpha} is not a significance "
                             "threshold")

    @property
    def needs_latent_sd(self) -> bool:
        """Whether the SE comes from the latent SD (no SE reported)."""
        return self.route == "latent_sd" or (
            self.route not in _ESTIMATE_ROUTES and not self.se > 0)

    @property
    def se_factor(self) -> float:
        """``sqrt(1/n1 + 1/n2)``: SE per unit SD."""
        return math.sqrt(1.0 / self.n1 + 1.0 / self.n2)

    @property
    def crit(self) -> float:
        """Critical value of the trial's test at ``alpha`` (see :func:`critical_value`)."""
        return critical_value(self.alpha, self.df)


@dataclass(frozen=True)
class PartialPriors:
    """Priors on the outcome's scale, as multiples of a declared unit SD.

    ``mu ~ N(0, (mu_sd unit)^2)``, ``tau ~ HalfNormal(tau_scale unit)``; latent log SDs
    ``~ N(eta, omega^2)`` with ``eta ~ N(log unit, log_sd_sd^2)`` and
    ``omega ~ HalfNormal(log_sd_spread)`` when ``learn_sd``; otherwise ``eta = log unit``
    and ``omega = log_sd_spread`` are fixed. ``log_sd_center`` replaces ``log unit`` as the
    centre of the log-SD prior (e.g. the mean log SD of the trials that report one, an
    empirical-Bayes plug-in used by the calibration study).
    """

    unit_sd: float
    mu_sd: float = 1.0
    tau_scale: float = 0.5
    log_sd_sd: float = 1.0
    log_sd_spread: float = 0.5
    learn_sd: bool = True
    log_sd_center: float | None = None

    @property
    def log_sd_mean(self) -> float:
        """Centre of the log-SD prior."""
        return math.log(self.unit_sd) if self.log_sd_center is None else self.log_sd_center

    def __post_init__(self) -> None:
        for name in ("unit_sd", "mu_sd", "tau_scale", "log_sd_sd", "log_sd_spread"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be positive and finite")

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form with the priors spelled out on the outcome's scale."""
        d = asdict(self)
        d["mu"] = f"Normal(0, {self.mu_sd * self.unit_sd:g})"
        d["tau"] = f"HalfNormal({self.tau_scale * self.unit_sd:g})"
        c = f"{self.log_sd_mean:.4g}"
        d["log_sd"] = (f"Normal(eta, omega), eta ~ Normal({c}, {self.log_sd_sd:g}), "
                       f"omega ~ HalfNormal({self.log_sd_spread:g})"
                       if self.learn_sd else
                       f"Normal({c}, {self.log_sd_spread:g}) (fixed)")
        return d


# --------------------------------------------------------------------- conversions
def critical_value(alpha: float, df: float = math.nan) -> float:
    """Two-sided critical value: ``t[1 - alpha/2, df]``, or ``z[1 - alpha/2]`` without df."""
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    if math.isfinite(df) and df > 0:
        return float(stats.t.isf(alpha / 2.0, df))
    return float(stats.norm.isf(alpha / 2.0))


def se_from_exact_p(
    estimate: float, p: float, n1: float = math.nan, n2: float = math.nan,
    n_total: float = math.nan,
) -> tuple[float, float]:
    """SE of a between-arm contrast from its exact two-sided p-value: ``(se, df)``.

    ``se = |estimate| / t[1 - p/2, df]`` with ``df = n1 + n2 - 2`` (or ``n_total - 2``); a
    z quantile (``df = nan``) when no n is known. Cochrane Handbook 6.5.2.3.
    """
    if not math.isfinite(estimate) or estimate == 0:
        raise ValueError("an SE from a p-value needs a non-zero estimate")
    if math.isfinite(n1) and math.isfinite(n2):
        df = n1 + n2 - 2.0
    elif math.isfinite(n_total):
        df = n_total - 2.0
    else:
        df = math.nan
    d = cv.se_from_p(estimate, p, df=df if math.isfinite(df) and df > 0 else None)
    return float(d.value), df


# ---------------------------------------------------------------- route assignment
@dataclass(frozen=True)
class CellReport:
    """What one trial x outcome (x stratum) report carries, for :func:`assign_route`.

    ``estimate`` is the contrast (intervention minus control) from a reported difference or
    arm means, ``se`` its SE when computable (then the cell is a complete report).
    ``p_qualifier`` is ``'='``, ``'<'``, ``'>'`` or ``''``; ``p_comparison`` is
    ``'between_arms'``, ``'between_arms_change'``, ``'within_arm'`` or ``''``; ``direction``
    is ``'increase'``, ``'decrease'``, ``'no_change'`` or ``''``.
    """

    trial_id: str
    label: str = ""
    estimate: float = math.nan
    se: float = math.nan
    se_from_p: bool = False
    sd: float = math.nan
    n1: float = math.nan
    n2: float = math.nan
    n_total: float = math.nan
    p_value: float = math.nan
    p_qualifier: str = ""
    p_comparison: str = ""
    direction: str = ""


@dataclass(frozen=True)
class RouteDecision:
    """The route of one cell, or why it cannot be used."""

    route: Route | None
    contribution: Contribution | None
    reason: str = ""
    assumptions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def usable(self) -> bool:
        """Whether the cell contributes to the all-reports likelihood."""
        return self.contribution is not None


_EQUAL_SPLIT = "equal allocation of the known total n assumed (n1 = n2 = n/2)"


def assign_route(cell: CellReport) -> RouteDecision:
    """Choose the single best route by which a report enters the likelihood.

    Rules, in order: a complete report (estimate and SE) is ``full`` (``se_from_p`` when its
    SE was derived from an exact p); an estimate with an exact between-arm p is
    ``se_from_p``; an estimate with arm sizes but no dispersion is ``latent_sd``; a
    between-arm "p < alpha" (alpha <= 0.10) with a direction is ``censored_threshold``; a
    between-arm "not significant" (``p > alpha``, exact ``p >= 0.05`` or ``no_change``) is
    ``censored_ns``; a direction alone is ``sign``. Where only a total n is known an equal
    split is assumed and declared; with no n at all a cell without an SE is unusable; a
    within-arm p-value informs that arm only and is not used for the contrast; a p-bound that
    cannot be a significance threshold (e.g. ``< 0.95``) is an error in the data, not a
    censoring bound.
    """
    c = cell
    if c.p_qualifier == "<" and math.isfinite(c.p_value) and c.p_value > MAX_THRESHOLD_ALPHA:
        return RouteDecision(None, None, f"p-value bound '< {c.p_value:g}' is not a "
                             "significance threshold (a data error, not a censoring bound)")
    if math.isfinite(c.estimate) and c.se > 0:
        route: Route = "se_from_p" if c.se_from_p else "full"
        return RouteDecision(route, Contribution(
            c.trial_id, route, estimate=c.estimate, se=c.se, n1=c.n1, n2=c.n2, sd=c.sd,
            df=_df(c.n1, c.n2), label=c.label))
    assumptions: tuple[str, ...] = ()
    n1, n2 = c.n1, c.n2
    if not (n1 > 0 and n2 > 0):
        if c.n_total > 0:
            n1 = n2 = c.n_total / 2.0
            assumptions = (_EQUAL_SPLIT,)
        else:
            return RouteDecision(None, None, "no sample size reported (neither per arm nor "
                                 "in total): the report cannot be placed on the effect scale")
    df = n1 + n2 - 2.0
    between = c.p_comparison in ("", "between_arms", "between_arms_change")
    has_p = math.isfinite(c.p_value) and 0 < c.p_value < 1
    if has_p and not between and not math.isfinite(c.estimate) and c.direction not in (
            "increase", "decrease", "no_change"):
        return RouteDecision(None, None, "only a within-arm p-value: it informs that arm's "
                             "change, not the between-arm contrast")
    p_between = has_p and between

    def make(route: Route, **kw: Any) -> RouteDecision:
        kw.setdefault("n1", n1)
        kw.setdefault("n2", n2)
        con = Contribution(c.trial_id, route, df=df, label=c.label, assumptions=assumptions,
                           **kw)
        return RouteDecision(route, con, assumptions=assumptions)

    if math.isfinite(c.estimate) and c.estimate != 0 and p_between and c.p_qualifier == "=":
        se, _ = se_from_exact_p(c.estimate, c.p_value, n1, n2)
        return make("se_from_p", estimate=c.estimate, se=se)
    if math.isfinite(c.estimate):
        return make("latent_sd", estimate=c.estimate)
    sign = {"increase": 1, "decrease": -1}.get(c.direction, 0)
    significant = (c.p_qualifier == "<" and c.p_value <= MAX_THRESHOLD_ALPHA) or (
        c.p_qualifier == "=" and c.p_value < 0.05)
    if p_between and significant and sign:
        alpha = c.p_value if c.p_qualifier == "<" else 0.05
        return make("censored_threshold", alpha=alpha, direction=sign)
    if (p_between and c.p_qualifier in (">", "=") and c.p_value >= 0.05) or (
            c.direction == "no_change" and (between or not has_p)):
        alpha = min(c.p_value, MAX_THRESHOLD_ALPHA) if p_between and \
            c.p_qualifier == ">" and c.p_value <= MAX_THRESHOLD_ALPHA else 0.05
        return make("censored_ns", alpha=alpha)
    if sign and (between or not has_p):
        return make("sign", direction=sign)
    if has_p and not between:
        return RouteDecision(None, None, "only a within-arm p-value: it informs that arm's "
                             "change, not the between-arm contrast")
    return RouteDecision(None, None, "no estimate, p-value or direction for the contrast")


def _df(n1: float, n2: float) -> float:
    return n1 + n2 - 2.0 if math.isfinite(n1) and math.isfinite(n2) else math.nan


# ---------------------------------------------------------------------- the model
@dataclass(frozen=True)
class _Arrays:
    """Contributions split by route into arrays (indices into the latent SD vector)."""

    n_latent: int
    y_idx: np.ndarray
    y: np.ndarray
    y_se: np.ndarray
    y_lat: np.ndarray
    thr_idx: np.ndarray
    thr_crit: np.ndarray
    thr_dir: np.ndarray
    ns_idx: np.ndarray
    ns_crit: np.ndarray
    sign_idx: np.ndarray
    sign_dir: np.ndarray
    se: np.ndarray  # known SE (nan where latent)
    factor: np.ndarray  # sqrt(1/n1 + 1/n2)
    lat: np.ndarray  # index into latent SDs (-1 where SE known)
    sd_obs: np.ndarray
    sd_obs_var: np.ndarray


def _arrays(contribs: Sequence[Contribution]) -> _Arrays:
    lat = np.full(len(contribs), -1)
    j = 0
    for i, c in enumerate(contribs):
        if c.needs_latent_sd:
            lat[i] = j
            j += 1
    se = np.array([c.se if not c.needs_latent_sd else math.nan for c in contribs])
    fac = np.array([c.se_factor if c.needs_latent_sd else 1.0 for c in contribs])
    routes = [c.route for c in contribs]

    def idx(*names: str) -> np.ndarray:
        return np.array([i for i, r in enumerate(routes) if r in names], dtype=int)

    yi = idx(*_ESTIMATE_ROUTES)
    th = idx("censored_threshold")
    ns = idx("censored_ns")
    sg = idx("sign")
    sd_rows = [c for c in contribs if c.sd > 0 and c.df > 1]
    return _Arrays(
        n_latent=j, y_idx=yi, y=np.array([contribs[i].estimate for i in yi]),
        y_se=se[yi], y_lat=lat[yi],
        thr_idx=th, thr_crit=np.array([contribs[i].crit for i in th]),
        thr_dir=np.array([contribs[i].direction for i in th], dtype=float),
        ns_idx=ns, ns_crit=np.array([contribs[i].crit for i in ns]),
        sign_idx=sg, sign_dir=np.array([contribs[i].direction for i in sg], dtype=float),
        se=se, factor=fac, lat=lat,
        sd_obs=np.log(np.array([c.sd for c in sd_rows])),
        sd_obs_var=np.array([1.0 / (2.0 * c.df) for c in sd_rows]),
    )


def build_partial_model(contribs: Sequence[Contribution], priors: PartialPriors) -> pm.Model:
    """PyMC model of the all-reports likelihood (``theta`` integrated out analytically)."""
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.dist_math import log_diff_normal_cdf, normal_lcdf

    if not contribs:
        raise ValueError("no contributions")
    a = _arrays(contribs)
    u = priors.unit_sd
    coords = {"contribution": [c.label or c.trial_id for c in contribs],
              "latent_sd": [contribs[int(i)].label or contribs[int(i)].trial_id
                            for i in np.flatnonzero(a.lat >= 0)]}
    with pm.Model(coords=coords) as model:
        mu = pm.Normal("mu", 0.0, priors.mu_sd * u)
        tau = pm.HalfNormal("tau", priors.tau_scale * u)
        se = pt.as_tensor_variable(np.where(np.isnan(a.se), 1.0, a.se))
        if a.n_latent:
            if priors.learn_sd:
                eta = pm.Normal("log_sd_mean", priors.log_sd_mean, priors.log_sd_sd)
                omega = pm.HalfNormal("log_sd_spread", priors.log_sd_spread)
                if a.sd_obs.size:
                    pm.Normal("log_sd_reported", eta, pt.sqrt(omega**2 + a.sd_obs_var),
                              observed=a.sd_obs)
            else:
                eta, omega = priors.log_sd_mean, priors.log_sd_spread
            z = pm.Normal("log_sd_z", 0.0, 1.0, dims="latent_sd")
            sigma = pm.Deterministic("sd_latent", pt.exp(eta + omega * z), dims="latent_sd")
            lat_pos = np.flatnonzero(a.lat >= 0)
            se = pt.set_subtensor(se[lat_pos], sigma[a.lat[lat_pos]] * a.factor[lat_pos])
        s = pt.sqrt(se**2 + tau**2)
        if a.y_idx.size:
            pm.Potential("lik_estimate", pm.logp(pm.Normal.dist(mu, s[a.y_idx]), a.y).sum())
        if a.thr_idx.size:
            i, d = a.thr_idx, a.thr_dir
            # P(d * y > crit * se) with y ~ N(mu, s^2): Phi((d mu - crit se) / s)
            pm.Potential("lik_threshold",
                         normal_lcdf(0.0, 1.0, (d * mu - a.thr_crit * se[i]) / s[i]).sum())
        if a.ns_idx.size:
            i = a.ns_idx
            hi = a.ns_crit * se[i]
            pm.Potential("lik_ns", log_diff_normal_cdf(mu, s[i], hi, -hi).sum())
        if a.sign_idx.size:
            i, d = a.sign_idx, a.sign_dir
            pm.Potential("lik_sign", normal_lcdf(0.0, 1.0, d * mu / s[i]).sum())
    return model


@dataclass
class PartialFit:
    """Posterior of the all-reports model with its per-contribution table."""

    posterior: Any
    contributions: pd.DataFrame
    priors: PartialPriors

    def draws(self, name: str) -> np.ndarray:
        """All draws of a scalar parameter (chains stacked)."""
        return np.asarray(self.posterior["posterior"][name]).reshape(-1)

    def summary(self, probs: Sequence[float] = (0.025, 0.5, 0.975)) -> dict[str, Any]:
        """Mean, SD and quantiles of ``mu`` and ``tau``, P(mu > 0), divergences."""
        out: dict[str, Any] = {}
        for name in ("mu", "tau"):
            x = self.draws(name)
            d = {"mean": float(x.mean()), "sd": float(x.std(ddof=1))}
            for p, q in zip(probs, np.quantile(x, probs), strict=True):
                d[f"q{p * 1000:03.0f}"] = float(q)
            out[name] = d
        out["P(mu > 0)"] = float((self.draws("mu") > 0).mean())
        div = np.asarray(self.posterior["sample_stats"]["diverging"])
        out["divergences"] = int(div.sum())
        return out


def contribution_table(contribs: Sequence[Contribution]) -> pd.DataFrame:
    """One row per contribution: trial, route, inputs and declared assumptions."""
    rows = []
    for c in contribs:
        d = asdict(c)
        d["assumptions"] = "; ".join(c.assumptions)
        d["se_latent"] = c.needs_latent_sd
        rows.append(d)
    return pd.DataFrame(rows)


#: Default sampler of the all-reports model (made on first use by ``__getattr__``: it needs
#: the sampler's module): the censored terms leave an occasional divergence in the tails at
#: a target acceptance of 0.95; 0.99 removes them.
PARTIAL_SAMPLER: SamplerSettings


def __getattr__(name: str) -> Any:
    """``PARTIAL_SAMPLER``, made on first use (it needs the sampler's module)."""
    if name == "PARTIAL_SAMPLER":
        from nutrimeta.models.fitting import SamplerSettings

        globals()[name] = SamplerSettings(target_accept=0.99)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fit_partial(
    contribs: Sequence[Contribution],
    priors: PartialPriors,
    sampler: SamplerSettings | None = None,
    seed: int = 0,
) -> PartialFit:
    """Sample the all-reports posterior (nutpie via :func:`nutrimeta.models.fitting.fit`)."""
    from nutrimeta.models.fitting import fit

    model = build_partial_model(contribs, priors)
    dt = fit(model, sampler or __getattr__("PARTIAL_SAMPLER"), seed,
             attrs={"kind": "all_reports", "priors": priors.to_dict()})
    return PartialFit(dt, contribution_table(contribs), priors)


def routes_count(contribs: Sequence[Contribution]) -> Mapping[str, int]:
    """How many contributions enter by each route."""
    out = dict.fromkeys(ROUTES, 0)
    for c in contribs:
        out[c.route] += 1
    return out
