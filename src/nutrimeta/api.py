"""The package's public face for people who meta-analyse their own data, in metafor's words.

* :func:`escalc` — effect sizes (MD, SMD, ROM) and sampling variances from arm-level data;
* :func:`rma` — frequentist random-effects model (REML by default; DL, PM, EE);
* :func:`bayes_rma` — exact Bayesian random-effects posterior (quadrature over tau), the tau
  prior chosen by name;
* :func:`bayes_sampled` — the sampled (NUTS) random-effects model, for checks against the
  exact path and for extensions.

Each model returns a result with ``summary()`` (a DataFrame), ``predict()`` (pooled effect and
prediction interval) and ``plot_forest()`` (a matplotlib figure). They are thin wrappers over
:mod:`nutrimeta.models`; the evidence-base pipeline uses the same engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nutrimeta import conversions as cv
from nutrimeta.priors import TAU_FAMILIES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nutrimeta.models.exact import ExactPosterior
    from nutrimeta.models.frequentist import MetaResult

__all__ = ["BayesRmaResult", "RmaResult", "SampledResult", "bayes_rma", "bayes_sampled",
           "escalc", "rma"]

_MEASURES = {"MD": cv.mean_difference, "SMD": cv.smd_hedges, "ROM": cv.ratio_of_means}


def _column(x: Any, data: pd.DataFrame | None, name: str) -> np.ndarray:
    """A vector argument: a column name of ``data`` or array-like values."""
    if isinstance(x, str):
        if data is None or x not in data.columns:
            raise KeyError(f"{name}={x!r} names no column of data")
        return data[x].to_numpy(float)
    return np.asarray(x, dtype=float).ravel()


def _labels(slab: Any, data: pd.DataFrame | None, k: int) -> list[str]:
    if slab is None:
        return [f"Study {i + 1}" for i in range(k)]
    if isinstance(slab, str) and data is not None and slab in data.columns:
        return [str(s) for s in data[slab]]
    return [str(s) for s in slab]


def escalc(measure: str, m1i: Any, sd1i: Any, n1i: Any, m2i: Any, sd2i: Any, n2i: Any, *,
           data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Effect sizes ``yi`` and sampling variances ``vi`` from two-arm data (metafor
    ``escalc``).

    Parameters
    ----------
    measure
        ``"MD"`` (raw mean difference), ``"SMD"`` (Hedges' g, metafor's default ``vtype``)
        or ``"ROM"`` (log ratio of means).
    m1i, sd1i, n1i, m2i, sd2i, n2i
        Means, SDs and sizes of group 1 (treatment) and group 2 (control): column names of
        ``data`` or array-likes.
    data
        Optional frame the column names refer to; it is returned with ``yi`` and ``vi``
        added.

    Returns
    -------
    pandas.DataFrame
        ``data`` (or a new frame) with columns ``yi`` and ``vi``.
    """
    if measure not in _MEASURES:
        raise ValueError(f"measure must be one of {sorted(_MEASURES)}, got {measure!r}")
    args = [_column(v, data, n) for v, n in ((m1i, "m1i"), (sd1i, "sd1i"), (n1i, "n1i"),
                                             (m2i, "m2i"), (sd2i, "sd2i"), (n2i, "n2i"))]
    eff = _MEASURES[measure](*args)
    out = data.copy() if data is not None else pd.DataFrame(index=range(len(args[0])))
    out["yi"] = np.atleast_1d(eff.yi)
    out["vi"] = np.atleast_1d(eff.vi)
    return out


@dataclass
class _Result:
    """Common part of the results: the data and the forest plot."""

    yi: np.ndarray
    vi: np.ndarray
    slab: list[str]
    measure: str = field(default="effect", kw_only=True)

    def predict(self) -> pd.DataFrame:  # pragma: no cover - overridden
        raise NotImplementedError

    def plot_forest(self, *, level: float = 0.95) -> Figure:
        """Forest plot: each study's estimate with its confidence interval, the pooled
        estimate (diamond) and the prediction interval (line under the diamond)."""
        from scipy import stats

        from nutrimeta.report.figures import figure_style, new_figure

        z = float(stats.norm.ppf(0.5 + level / 2))
        se = np.sqrt(self.vi)
        pred = self.predict().iloc[0]
        k = len(self.yi)
        with figure_style():
            fig = new_figure(6.0, 1.2 + 0.3 * (k + 2))
            ax = fig.add_subplot(1, 1, 1)
            rows = np.arange(k, 0, -1) + 1
            ax.errorbar(self.yi, rows, xerr=z * se, fmt="s", color="black", capsize=0)
            ax.fill([pred["ci_lower"], pred["estimate"], pred["ci_upper"], pred["estimate"]],
                    [0, 0.25, 0, -0.25], color="black")
            ax.plot([pred["pi_lower"], pred["pi_upper"]], [-0.5, -0.5], color="grey")
            ax.axvline(0.0, color="grey", lw=0.8, ls=":")
            ax.set_yticks([*rows, 0], [*self.slab, "Pooled"])
            ax.set_xlabel(self.measure)
        return fig


@dataclass
class RmaResult(_Result):
    """Frequentist random-effects fit (see :func:`rma`)."""

    fit: MetaResult = field(kw_only=True)

    def summary(self) -> pd.DataFrame:
        """Pooled estimate, SE, z, p, CI, and heterogeneity (tau², I², Q)."""
        f = self.fit
        return pd.DataFrame([{"estimate": f.estimate, "se": f.se, "zval": f.z,
                              "pval": f.p_value, "ci_lower": f.ci_lower,
                              "ci_upper": f.ci_upper, "tau2": f.tau2, "I2": f.i2,
                              "Q": f.Q, "Q_p": f.Q_p, "k": f.k, "method": f.method}])

    def predict(self) -> pd.DataFrame:
        """Pooled effect with its CI and the prediction interval (metafor ``predict``)."""
        f = self.fit
        return pd.DataFrame([{"estimate": f.estimate, "se": f.se, "ci_lower": f.ci_lower,
                              "ci_upper": f.ci_upper, "pi_lower": f.pi_lower,
                              "pi_upper": f.pi_upper}])


def rma(yi: Any, vi: Any, *, data: pd.DataFrame | None = None, method: str = "REML",
        knha: bool = False, level: float = 0.95, slab: Any = None,
        measure: str = "effect") -> RmaResult:
    """Frequentist random-effects meta-analysis (metafor ``rma``; REML by default).

    Parameters
    ----------
    yi, vi
        Estimates and sampling variances (column names of ``data`` or array-likes).
    data
        Optional frame (e.g. the output of :func:`escalc`).
    method
        ``"REML"``, ``"DL"``, ``"PM"`` or ``"EE"``.
    knha
        Knapp–Hartung adjustment.
    level
        Confidence level.
    slab, measure
        Study labels (column name or list) and the effect's name, for the forest plot.
    """
    from nutrimeta.models import frequentist

    y, v = _column(yi, data, "yi"), _column(vi, data, "vi")
    fit = frequentist.rma(y, v, method=method, knha=knha, level=level)  # type: ignore[arg-type]
    return RmaResult(y, v, _labels(slab, data, len(y)), fit=fit, measure=measure)


@dataclass
class BayesRmaResult(_Result):
    """Exact Bayesian random-effects posterior (see :func:`bayes_rma`)."""

    posterior: ExactPosterior = field(kw_only=True)

    def summary(self) -> pd.DataFrame:
        """Posterior mean, SD, median and 95% interval of mu and tau; I² in percent."""
        post = self.posterior
        lo, hi = post.mu.interval(0.95)
        tau = post.tau_summary()
        i2 = post.i2_summary()
        rows = [{"parameter": "mu", "mean": post.mu.mean, "sd": post.mu.sd,
                 "median": post.mu.median, "q025": lo, "q975": hi},
                {"parameter": "tau", "mean": tau["mean"], "sd": tau["sd"],
                 "median": tau["median"], "q025": tau["q025"], "q975": tau["q975"]},
                {"parameter": "I2 (%)", "mean": 100 * i2["mean"], "sd": np.nan,
                 "median": 100 * i2["median"], "q025": 100 * i2["q025"],
                 "q975": 100 * i2["q975"]}]
        return pd.DataFrame(rows).set_index("parameter")

    def prob(self, threshold: float = 0.0, relation: str = ">") -> float:
        """Posterior probability P(mu > threshold) (or ``<``)."""
        p = float(self.posterior.mu.prob_gt(threshold))
        return p if relation == ">" else 1.0 - p

    def predict(self) -> pd.DataFrame:
        """Pooled mean with its 95% credible interval and the 95% predictive interval of a
        new study's true effect."""
        post = self.posterior
        lo, hi = post.mu.interval(0.95)
        plo, phi = post.predictive().interval(0.95)
        return pd.DataFrame([{"estimate": post.mu.mean, "se": post.mu.sd, "ci_lower": lo,
                              "ci_upper": hi, "pi_lower": plo, "pi_upper": phi}])


def _tau_prior(name: str, scale: float, nu: float) -> Any:
    from nutrimeta.priors import exact_tau_prior
    from nutrimeta.spec import TauPriorSpec

    if name not in TAU_FAMILIES:
        raise ValueError(f"tau_prior must be one of {TAU_FAMILIES}, got {name!r}")
    return exact_tau_prior(TauPriorSpec(name, scale, nu))


def bayes_rma(yi: Any, vi: Any, *, data: pd.DataFrame | None = None,
              tau_prior: str = "half_normal", tau_scale: float = 0.5, tau_nu: float = 3.0,
              mu_prior_sd: float = 10.0, slab: Any = None,
              measure: str = "effect") -> BayesRmaResult:
    """Exact Bayesian random-effects meta-analysis (normal likelihood, known variances).

    The posterior is computed by quadrature over tau (no sampling, no Monte Carlo error).

    Parameters
    ----------
    yi, vi
        Estimates and sampling variances (column names of ``data`` or array-likes).
    data
        Optional frame.
    tau_prior
        ``"half_normal"``, ``"half_cauchy"``, ``"half_student_t"`` or ``"exponential"``.
    tau_scale, tau_nu
        Scale of the tau prior (the mean for the exponential) and the half-t's degrees of
        freedom.
    mu_prior_sd
        SD of the ``Normal(0, sd)`` prior of the pooled effect, on the effect's scale.
    slab, measure
        Study labels and the effect's name, for the forest plot.
    """
    from nutrimeta.models.exact import exact_posterior

    y, v = _column(yi, data, "yi"), _column(vi, data, "vi")
    labels = _labels(slab, data, len(y))
    post = exact_posterior(y, np.sqrt(v), _tau_prior(tau_prior, tau_scale, tau_nu),
                           mu_prior=(0.0, mu_prior_sd), labels=labels)
    return BayesRmaResult(y, v, labels, posterior=post, measure=measure)


@dataclass
class SampledResult(_Result):
    """Sampled (NUTS) random-effects posterior (see :func:`bayes_sampled`)."""

    draws: dict[str, np.ndarray] = field(kw_only=True)
    diagnostics: dict[str, Any] = field(kw_only=True)

    def summary(self) -> pd.DataFrame:
        """Posterior mean, SD, median and 95% interval of mu and tau."""
        rows = []
        for name in ("mu", "tau"):
            d = self.draws[name]
            rows.append({"parameter": name, "mean": d.mean(), "sd": d.std(ddof=1),
                         "median": np.median(d), "q025": np.quantile(d, 0.025),
                         "q975": np.quantile(d, 0.975)})
        return pd.DataFrame(rows).set_index("parameter")

    def predict(self) -> pd.DataFrame:
        """Pooled mean with its 95% interval and the 95% predictive interval."""
        mu, new = self.draws["mu"], self.draws["theta_new"]
        return pd.DataFrame([{"estimate": mu.mean(), "se": mu.std(ddof=1),
                              "ci_lower": np.quantile(mu, 0.025),
                              "ci_upper": np.quantile(mu, 0.975),
                              "pi_lower": np.quantile(new, 0.025),
                              "pi_upper": np.quantile(new, 0.975)}])


def bayes_sampled(yi: Any, vi: Any, *, data: pd.DataFrame | None = None,
                  tau_prior: str = "half_normal", tau_scale: float = 0.5,
                  tau_nu: float = 3.0, mu_prior_sd: float = 10.0, seed: int = 0,
                  draws: int = 1000, chains: int = 4, slab: Any = None,
                  measure: str = "effect") -> SampledResult:
    """The sampled random-effects model (PyMC, NUTS) on your data: the same model as
    :func:`bayes_rma`, with convergence diagnostics (``result.diagnostics``)."""
    from nutrimeta import diagnostics as dg
    from nutrimeta.models.bayes import ModelData, Priors, build_model
    from nutrimeta.models.fitting import SamplerSettings, fit

    if tau_prior not in TAU_FAMILIES:
        raise ValueError(f"tau_prior must be one of {TAU_FAMILIES}, got {tau_prior!r}")
    y, v = _column(yi, data, "yi"), _column(vi, data, "vi")
    labels = _labels(slab, data, len(y))
    md = ModelData.from_arrays(y, np.sqrt(v), labels=labels)
    priors = Priors(mu_sd=mu_prior_sd, tau_family=tau_prior,  # type: ignore[arg-type]
                    tau_scale=tau_scale,
                    tau_nu=tau_nu)
    dt = fit(build_model(md, priors, "random_effects_marginal"),
             SamplerSettings(draws=draws, chains=chains), seed)
    post = dt.posterior
    names: Sequence[str] = [n for n in ("mu", "tau") if n in post.data_vars]
    out = {n: post[n].values.ravel() for n in (*names, "theta_new") if n in post.data_vars}
    return SampledResult(y, v, labels, draws=out,
                         diagnostics=dg.check(dt, var_names=list(names)).to_dict(),
                         measure=measure)
