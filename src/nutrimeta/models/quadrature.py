"""Posterior of the low-dimensional hierarchical models by numerical integration (no MCMC).

The continuous meta-regression, the category model and the all-designs model of
:mod:`nutrimeta.models.bayes` are linear-Gaussian given a few hyperparameters ``phi``:
``tau``; the slope, where latent baseline levels make a row's variance depend on it
(``slope^2 s_c^2``); the SD of the category effects; the extra SD of each non-randomised
design present. Given ``phi``, the location parameters ``beta`` (``mu``, category deviations,
design biases) have a normal prior and a normal likelihood, so they integrate out in closed
form and their conditional posterior is normal. ``phi`` (one to three numbers) is integrated
on a tensor grid of cell midpoints in prior-probability coordinates ``u = F(phi)``: the prior
is uniform on the unit cube, so every prior family, heavy tails included, becomes a bounded
box. The box is zoomed to where the posterior mass lies, and the result is checked against a
grid of half the resolution (:attr:`QuadratureFit.integration_error`).

Draws are independent: a grid cell with probability equal to its posterior mass, a uniform
point in it, ``beta`` from its exact normal conditional, then the trial effects ``theta`` and
the latent baseline levels ``x`` from the exact conditionals the sampled models use
(:func:`nutrimeta.models.bayes._marginal_rows`). The model is the sampled one, so sampling it
with NUTS is this path's independent check (``tests/test_quadrature.py``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy import special

from nutrimeta.models.inputs import (
    NONRANDOMISED_DESIGNS,
    Priors,
    data_dims,
    model_coords,
    model_inputs,
)
from nutrimeta.models.model_data import ModelData, data_groups
from nutrimeta.schema import DESIGNS, STATUS_CATEGORIES
from nutrimeta.versions import lock_hash, package_versions

#: Model kinds with a quadrature path (the random-effects model is checked against the exact
#: one-dimensional path of :mod:`nutrimeta.models.exact`).
KINDS = ("random_effects_marginal", "meta_regression_continuous", "meta_regression_category",
         "all_evidence")
#: Grid points per axis by number of axes (cells: 400, 14,400 and 64,000).
GRID_POINTS = {1: 400, 2: 120, 3: 40}
#: Largest allowed change of a posterior mean or SD (in posterior SDs) between the grid and
#: one of half its resolution; above it the fit is not accepted (the model is sampled).
TOLERANCE = 0.01
_ZOOM_PASSES = 6
_MASS_FLOOR = 1e-11  # marginal cells below this share of the largest are outside the box
_CHUNK = 20_000  # grid cells evaluated at once (bounds memory at about 50 MB)
_LOG_2PI = math.log(2.0 * math.pi)


def _halfnormal_ppf(u: np.ndarray) -> np.ndarray:
    return special.ndtri(0.5 * (1.0 + u))


def _tau_ppf(priors: Priors, u: np.ndarray) -> np.ndarray:
    """Standardised ``tau`` (``tau / tau_scale``) at prior probability ``u``."""
    fam = priors.tau_family
    if fam == "half_normal":
        return _halfnormal_ppf(u)
    if fam == "half_cauchy":
        return np.tan(0.5 * math.pi * u)
    if fam == "half_student_t":
        return special.stdtrit(priors.tau_nu, 0.5 * (1.0 + u))
    if fam == "exponential":
        return -np.log1p(-u)
    raise ValueError(f"unknown tau family {fam!r}")


@dataclass(frozen=True)
class _Problem:
    """One model on one data set: the grid axes and the Gaussian pieces given them."""

    kind: str
    moderator: bool
    priors: Priors
    v: dict[str, np.ndarray]
    axes: tuple[str, ...]
    biased: tuple[int, ...] = ()  # all_evidence: codes of non-randomised designs present

    @property
    def n_beta(self) -> int:
        if self.kind == "meta_regression_category":
            return 1 + len(STATUS_CATEGORIES)
        return 1 + len(self.biased)

    def hyper(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Named hyperparameter values at unit-cube points ``u`` (``G x axes``)."""
        v = self.v
        out: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.axes):
            uj = u[:, j]
            if name == "tau":
                out[name] = v["tau_scale"] * _tau_ppf(self.priors, uj)
            elif name == "slope":
                out[name] = v["slope_sd"] * special.ndtri(uj)
            elif name == "sigma_category":
                out[name] = v["category_sd"] * _halfnormal_ppf(uj)
            else:  # extra SD of one non-randomised design
                out[name] = v["extra_scale"] * _halfnormal_ppf(uj)
        return out

    def _moderated(self) -> bool:
        return self.kind == "meta_regression_continuous" or (
            self.kind == "all_evidence" and self.moderator)

    def extra_var(self, h: dict[str, np.ndarray]) -> np.ndarray | float:
        """Extra sampling variance of each row (non-randomised designs), ``G x n``."""
        if not self.biased:
            return 0.0
        di = self.v["design_idx"]
        out = np.zeros((len(h["tau"]), len(di)))
        for code in self.biased:
            out[:, di == code] = h[f"extra_{DESIGNS[code]}"][:, None] ** 2
        return out

    def pieces(self, h: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Given ``phi``: row offsets and variances (``G x n``), the design ``X`` (``n x p``),
        the prior precisions (``G x p``) and prior means (``p``) of ``beta``."""
        v = self.v
        se2 = v["se"] ** 2
        tau = h["tau"][:, None]
        var = se2 + tau**2 + self.extra_var(h)
        offset = np.zeros_like(var)
        if self._moderated():
            slope = h["slope"][:, None]
            cat = v["category_idx"]
            known = v["x_known"] > 0.5
            xbar = np.where(known, v["x_obs"], v["latent_mean"][cat])
            var = var + np.where(known, 0.0, v["latent_sd"][cat] ** 2) * slope**2
            offset = offset + slope * xbar
        n, g = len(se2), len(tau)
        if self.kind == "meta_regression_category":
            onehot = v["category_idx"][:, None] == np.arange(len(STATUS_CATEGORIES))[None, :]
            x = np.column_stack([np.ones(n), onehot.astype(float)])
            prec0 = np.column_stack([np.full(g, v["mu_sd"] ** -2.0),
                                     np.repeat(h["sigma_category"][:, None] ** -2.0,
                                               len(STATUS_CATEGORIES), axis=1)])
        else:
            cols = [np.ones(n)] + [(v["design_idx"] == c).astype(float) for c in self.biased]
            x = np.column_stack(cols)
            bias_prec = [v["bias_sd"] ** -2.0] * len(self.biased) if self.biased else []
            prec0 = np.tile(np.r_[v["mu_sd"] ** -2.0, bias_prec], (g, 1))
        b0 = np.zeros(x.shape[1])
        b0[0] = v["mu_mean"]
        return offset, var, x, prec0, b0


def _conditional(problem: _Problem, h: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log marginal likelihood ``log p(y | phi)``, and the mean and precision of ``beta``
    given ``phi`` and ``y``.

    With weights as powers on the rows, ``P = P0 + X' W V^-1 X``, ``h = P0 b0 + X' W V^-1 r``
    (``r = y - offset``) and ``log p(y | phi) = sum w (-log(2 pi V) - r^2 / V) / 2
    - b0' P0 b0 / 2 + h' P^-1 h / 2 + (log|P0| - log|P|) / 2``.
    """
    v = problem.v
    offset, var, x, prec0, b0 = problem.pieces(h)
    w = v["weight"]
    r = v["y"] - offset
    wv = w / var
    prec = np.einsum("gn,np,nq->gpq", wv, x, x)
    idx = np.arange(x.shape[1])
    prec[:, idx, idx] += prec0
    rhs = prec0 * b0 + (wv * r) @ x
    chol = np.linalg.cholesky(prec)
    mean = np.linalg.solve(prec, rhs[..., None])[..., 0]
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    loglik = (0.5 * (-(w * (_LOG_2PI + np.log(var))).sum(axis=1) - (wv * r**2).sum(axis=1))
              - 0.5 * (prec0 * b0**2).sum(axis=1) + 0.5 * (rhs * mean).sum(axis=1)
              + 0.5 * (np.log(prec0).sum(axis=1) - logdet))
    return loglik, mean, prec


@dataclass
class _Grid:
    lo: np.ndarray
    hi: np.ndarray
    n: int
    pmf: np.ndarray  # flat, C order over axes
    moments: dict[str, tuple[float, float]] = field(default_factory=dict)

    def points(self) -> np.ndarray:
        """Cell midpoints, ``cells x axes``."""
        axes = [self.lo[j] + (np.arange(self.n) + 0.5) * (self.hi[j] - self.lo[j]) / self.n
                for j in range(len(self.lo))]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.column_stack([m.ravel() for m in mesh])


def _evaluate(problem: _Problem, lo: np.ndarray, hi: np.ndarray, n: int) -> _Grid:
    """Posterior cell masses on the box ``[lo, hi]`` and the moments the error check uses."""
    grid = _Grid(lo, hi, n, np.empty(0))
    u = grid.points()
    logp = np.empty(len(u))
    beta_m = np.empty(len(u))
    beta_v = np.empty(len(u))
    for s in range(0, len(u), _CHUNK):
        ll, mean, prec = _conditional(problem, problem.hyper(u[s:s + _CHUNK]))
        logp[s:s + _CHUNK] = ll
        beta_m[s:s + _CHUNK] = mean[:, 0]
        beta_v[s:s + _CHUNK] = np.linalg.inv(prec)[:, 0, 0]
    if not np.isfinite(logp).any():
        raise FloatingPointError("the log posterior is not finite anywhere on the grid")
    logp = np.where(np.isfinite(logp), logp, -np.inf)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    grid.pmf = p
    mu_mean = float(p @ beta_m)
    grid.moments["mu"] = (mu_mean, math.sqrt(max(float(p @ (beta_v + beta_m**2)) - mu_mean**2,
                                                 0.0)))
    for j, a in enumerate(problem.axes):
        # in prior-probability coordinates, where the midpoint rule converges at O(h^2) (a
        # value-space moment has an integrable singularity at u = 1 for unbounded priors);
        # draws are exact within a cell, so their value-space moments are not affected
        m = float(p @ u[:, j])
        grid.moments[a] = (m, math.sqrt(max(float(p @ (u[:, j] - m) ** 2), 0.0)))
    return grid


def _mass_box(grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """The sub-box holding all cells whose marginal mass exceeds the floor, one cell wider."""
    d = len(grid.lo)
    p = grid.pmf.reshape((grid.n,) * d)
    lo, hi = grid.lo.copy(), grid.hi.copy()
    for j in range(d):
        marg = p.sum(axis=tuple(i for i in range(d) if i != j))
        keep = np.flatnonzero(marg > _MASS_FLOOR * marg.max())
        width = (grid.hi[j] - grid.lo[j]) / grid.n
        lo[j] = max(grid.lo[j], grid.lo[j] + (keep[0] - 1) * width)
        hi[j] = min(grid.hi[j], grid.lo[j] + (keep[-1] + 2) * width)
    return lo, hi


def _integrate(problem: _Problem) -> tuple[_Grid, float]:
    """The zoomed grid and its integration error (largest change of a posterior mean or SD,
    in posterior SDs, against the grid of half the resolution on the same box)."""
    d = len(problem.axes)
    n = GRID_POINTS[d]
    grid = _evaluate(problem, np.zeros(d), np.ones(d), n)
    for _ in range(_ZOOM_PASSES):
        lo, hi = _mass_box(grid)
        if np.all(hi - lo > 0.8 * (grid.hi - grid.lo)):
            break
        grid = _evaluate(problem, lo, hi, n)
    coarse = _evaluate(problem, grid.lo, grid.hi, n // 2)
    error = _moment_change(grid, coarse)
    if error > TOLERANCE:  # one refinement at 1.5x the points per axis
        finer = _evaluate(problem, grid.lo, grid.hi, 3 * n // 2)
        grid, error = finer, _moment_change(finer, grid)
    return grid, error


def _moment_change(grid: _Grid, coarse: _Grid) -> float:
    """Largest change of a posterior mean or SD between two grids, in posterior SDs."""
    error = 0.0
    for name, (m, s) in grid.moments.items():
        cm, cs = coarse.moments[name]
        scale = max(s, 1e-300)
        error = max(error, abs(m - cm) / scale, abs(s - cs) / scale)
    return error


def problem_for(data: ModelData, priors: Priors, kind: str, *, moderator: bool = False
                ) -> _Problem | None:
    """The quadrature problem of a model, or None where it has no quadrature path (another
    kind, several rows per study, or more than three hyperparameters)."""
    if kind not in KINDS or not data.one_row_per_study:
        return None
    values = model_inputs(data, priors, kind, moderator=moderator)  # type: ignore[arg-type]
    axes: list[str] = ["tau"]
    biased: tuple[int, ...] = ()
    if kind == "meta_regression_continuous" or (kind == "all_evidence" and moderator):
        axes.append("slope")
    if kind == "meta_regression_category":
        axes.append("sigma_category")
    if kind == "all_evidence":
        used = set(values["design_idx"][values["weight"] > 0].tolist())
        biased = tuple(DESIGNS.index(d) for d in NONRANDOMISED_DESIGNS if DESIGNS.index(d) in used)
        axes += [f"extra_{DESIGNS[c]}" for c in biased]
    if len(axes) > max(GRID_POINTS):
        return None
    return _Problem(kind, moderator, priors, values, tuple(axes), biased)


@dataclass
class QuadratureFit:
    """A quadrature posterior: its draws (same layout as a sampled fit) and its error check."""

    tree: xr.DataTree
    integration_error: float
    grid_points: int
    axes: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether the integration error is within :data:`TOLERANCE`."""
        return self.integration_error <= TOLERANCE

    @property
    def problems(self) -> list[str]:
        """Why the fit is not accepted (empty when it is)."""
        if self.passed:
            return []
        return [f"quadrature integration error {self.integration_error:.3g} posterior SDs "
                f"exceeds {TOLERANCE}"]

    def to_dict(self) -> dict[str, Any]:
        """The ``diagnostics`` entry of the results bundle."""
        return {"passed": self.passed, "problems": self.problems,
                "integration_error": self.integration_error, "method": "quadrature",
                "grid_axes": list(self.axes), "grid_points_per_axis": self.grid_points}

    def settings(self) -> dict[str, Any]:
        """How the posterior was computed (the ``sampler`` entry of its attempt)."""
        return {"method": "quadrature", "grid_axes": list(self.axes),
                "grid_points_per_axis": self.grid_points, "tolerance": TOLERANCE}


def fit(data: ModelData, priors: Priors, kind: str, *, moderator: bool = False, seed: int = 0,
        chains: int = 4, draws: int = 1000, attrs: dict[str, Any] | None = None
        ) -> QuadratureFit | None:
    """Posterior of ``kind`` on ``data`` by quadrature, with ``chains x draws`` independent
    draws; None where the model has no quadrature path (see :func:`problem_for`)."""
    start = time.perf_counter()
    problem = problem_for(data, priors, kind, moderator=moderator)
    if problem is None:
        return None
    grid, error = _integrate(problem)
    rng = np.random.default_rng(seed)
    posterior = _draws(problem, grid, chains * draws, rng)
    coords = model_coords(data, kind)  # type: ignore[arg-type]
    ds = xr.Dataset({name: xr.DataArray(val.reshape(chains, draws, *val.shape[1:]),
                                        dims=("chain", "draw", *dims))
                     for name, (val, dims) in posterior.items()})
    ds = ds.assign_coords({d: coords[d] for d in ds.dims if d in coords})
    groups = {"posterior": ds, **data_groups(problem.v, data_dims(problem.v), coords)}
    tree = xr.DataTree.from_dict({f"/{k}": g for k, g in groups.items()})
    result = QuadratureFit(tree, float(error), grid.n, problem.axes)
    tree.attrs = {"seed": int(seed), "sampler": result.settings(), "versions": package_versions(),
                  "lock_hash": lock_hash(),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "kind": kind, "moderator": int(moderator), "parameterisation": "quadrature",
                  "priors": priors.to_dict(), "data_hash": data.data_hash(),
                  "integration_error": float(error), **(attrs or {}),
                  "fit_seconds": time.perf_counter() - start}
    return result


Draws = dict[str, tuple[np.ndarray, tuple[str, ...]]]


def _draws(problem: _Problem, grid: _Grid, n: int, rng: np.random.Generator) -> Draws:
    """``n`` independent posterior draws of every model quantity, with their dimensions."""
    d = len(problem.axes)
    cell = rng.choice(grid.pmf.size, size=n, p=grid.pmf)
    index = np.column_stack(np.unravel_index(cell, (grid.n,) * d))
    u = grid.lo + (index + rng.random((n, d))) * (grid.hi - grid.lo) / grid.n
    h = problem.hyper(u)
    _, mean, prec = _conditional(problem, h)
    chol = np.linalg.cholesky(prec)
    e = rng.standard_normal(mean.shape)
    beta = mean + np.linalg.solve(np.swapaxes(chol, 1, 2), e[..., None])[..., 0]
    v = problem.v
    tau = h["tau"]
    mu = beta[:, 0]
    out: Draws = {"mu": (mu, ()), "tau": (tau, ()),
                  "tau_raw": (tau / v["tau_scale"], ())}
    loc: np.ndarray = np.repeat(mu[:, None], len(v["y"]), axis=1)
    offset: np.ndarray | float = 0.0
    extra_var: np.ndarray | float = 0.0
    if problem.kind == "meta_regression_category":
        eff = mu[:, None] + beta[:, 1:]
        sig = h["sigma_category"]
        out["sigma_category"] = (sig, ())
        out["sigma_category_raw"] = (sig / v["category_sd"], ())
        out["effect_category"] = (eff, ("category",))
        loc = eff[:, v["category_idx"]]
        dep = eff[:, STATUS_CATEGORIES.index("deficient")]
        rep = eff[:, STATUS_CATEGORIES.index("replete")]
        out.update(effect_deficient=(dep, ()), effect_replete=(rep, ()),
                   deficient_minus_replete=(dep - rep, ()))
    if problem.kind == "all_evidence":
        bias, extra = _design_terms(problem, beta, h, rng)
        offset = bias[:, v["design_idx"]]
        extra_var = extra[:, v["design_idx"]] ** 2
        nonrand = [DESIGNS.index(x) for x in NONRANDOMISED_DESIGNS]
        out.update(bias=(bias, ("design",)), extra_sd=(extra, ("design",)),
                   bias_z=(bias[:, nonrand] / v["bias_sd"], ("nonrandomised_design",)),
                   extra_sd_raw=(extra[:, nonrand] / v["extra_scale"],
                                 ("nonrandomised_design",)))
    slope = h.get("slope")
    out.update(_rows(problem, loc, tau, slope, offset, extra_var, rng))
    if slope is not None:
        out["slope"] = (slope, ())
        dep = mu + slope * v["x_ref"][0]
        rep = mu + slope * v["x_ref"][1]
        out.update(effect_deficient=(dep, ()), effect_replete=(rep, ()),
                   deficient_minus_replete=(dep - rep, ()))
    if problem.kind == "random_effects_marginal":
        w = v["weight"] / v["se"] ** 2
        k = v["weight"].sum()
        s2 = (k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
        out["i2"] = (tau**2 / (tau**2 + s2), ())
    if problem.kind == "random_effects_marginal" or (
            problem.kind == "all_evidence" and slope is None):
        out["theta_new"] = (mu + tau * rng.standard_normal(n), ())
    return out


def _design_terms(problem: _Problem, beta: np.ndarray, h: dict[str, np.ndarray],
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bias and extra SD of every design (0 for randomised ones; prior draws for
    non-randomised designs without weighted rows)."""
    v = problem.v
    n = len(beta)
    bias = np.zeros((n, len(DESIGNS)))
    extra = np.zeros((n, len(DESIGNS)))
    for name in NONRANDOMISED_DESIGNS:
        code = DESIGNS.index(name)
        if code in problem.biased:
            bias[:, code] = beta[:, 1 + problem.biased.index(code)]
            extra[:, code] = h[f"extra_{name}"]
        else:  # no data: the prior
            bias[:, code] = v["bias_sd"] * rng.standard_normal(n)
            extra[:, code] = v["extra_scale"] * np.abs(rng.standard_normal(n))
    return bias, extra


def _rows(problem: _Problem, loc: np.ndarray, tau: np.ndarray, slope: np.ndarray | None,
          offset: np.ndarray | float, extra_var: np.ndarray | float,
          rng: np.random.Generator) -> Draws:
    """Latent baselines ``x`` and trial effects ``theta`` from their exact conditionals
    (the formulas of :func:`nutrimeta.models.bayes._marginal_rows`)."""
    v = problem.v
    w = v["weight"]
    y = v["y"] - offset
    s2 = v["se"] ** 2 + extra_var
    t2 = tau[:, None] ** 2
    out: Draws = {}
    prior_theta = loc
    if slope is not None:
        b = slope[:, None]
        cat = v["category_idx"]
        known = v["x_known"] > 0.5
        m = v["latent_mean"][cat]
        var = v["latent_sd"][cat] ** 2
        prec = 1.0 / var + w * b**2 / (s2 + t2)
        x_cond = (m / var + w * b * (y - loc) / (s2 + t2)) / prec
        z_x = rng.standard_normal(loc.shape)
        x = np.where(known, v["x_obs"], x_cond + z_x / np.sqrt(prec))
        out["x_latent_z"] = (z_x, ("study",))
        out["x"] = (x, ("study",))
        prior_theta = loc + b * x
    shrink = s2 / (s2 + w * t2)
    z = rng.standard_normal(loc.shape)
    theta = shrink * prior_theta + (1.0 - shrink) * y + np.sqrt(shrink) * tau[:, None] * z
    out["z"] = (z, ("study",))
    out["theta"] = (theta, ("study",))
    return out
