"""The quadrature path of the low-dimensional models against independent references.

- the integrated likelihood given the hyperparameters equals the multivariate normal density
  of the generative model written out (covariance form, scipy), for every kind;
- the random-effects model and the meta-regression with known levels equal the exact
  one-dimensional posterior of :mod:`nutrimeta.models.exact` (a different algorithm: the
  slope is integrated there analytically, here on the grid);
- the continuous meta-regression with latent baselines and the category model equal the same
  models sampled with NUTS, within Monte Carlo error (4 combined MCSE; the category model in
  ``tests/test_bayes.py::test_other_kinds_sample_cleanly``, which samples it anyway).
"""

from __future__ import annotations

from dataclasses import replace

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from nutrimeta.models import quadrature
from nutrimeta.models.bayes import ModelData, Priors, build_model
from nutrimeta.models.exact import TauPrior, exact_posterior
from nutrimeta.schema import DESIGNS

N_MCSE = 4.0
PRIORS = Priors(mu_sd=1.0, tau_scale=0.5, slope_sd=1.0, category_sd=0.4, design_bias_sd=0.5,
                design_extra_scale=0.4)


def _data(designs: list[str] | None = None, weights: list[float] | None = None) -> ModelData:
    y = [-0.3, 0.1, -0.5, 0.2, -0.1, 0.4]
    se = [0.2, 0.3, 0.25, 0.4, 0.15, 0.35]
    x = [-1.0, np.nan, -0.7, 1.2, np.nan, 0.3]
    cats = ["deficient", "replete", "deficient", "replete", "unknown", "marginal"]
    d = ModelData.from_arrays(y, se, x=x, categories=cats, designs=designs)
    return d.with_weights(weights) if weights is not None else d


def _mvn_loglik(problem: quadrature._Problem, h: dict[str, float]) -> float:
    """log p(y | hyperparameters) from the generative model: covariance form, rows with
    weight 1 only (weight-0 rows are left out)."""
    v = problem.v
    keep = v["weight"] > 0.5
    n = len(v["y"])
    mean = np.full(n, float(v["mu_mean"]))
    cov = np.diag(v["se"] ** 2 + h["tau"] ** 2) + float(v["mu_sd"]) ** 2
    if "slope" in h:
        b = h["slope"]
        known = v["x_known"] > 0.5
        cat = v["category_idx"]
        mean += b * np.where(known, v["x_obs"], v["latent_mean"][cat])
        cov += np.diag(np.where(known, 0.0, b**2 * v["latent_sd"][cat] ** 2))
    if problem.kind == "meta_regression_category":
        same = v["category_idx"][:, None] == v["category_idx"][None, :]
        cov += h["sigma_category"] ** 2 * same
    if problem.kind == "all_evidence":
        di = v["design_idx"]
        for name in ("controlled_nonrandomised", "single_arm_prepost"):
            rows = di == DESIGNS.index(name)
            cov += float(v["bias_sd"]) ** 2 * np.outer(rows, rows)
            if f"extra_{name}" in h:
                cov += np.diag(rows * h[f"extra_{name}"] ** 2)
    return float(stats.multivariate_normal(mean[keep], cov[np.ix_(keep, keep)]).logpdf(
        v["y"][keep]))


@pytest.mark.parametrize(("kind", "moderator", "designs", "weights"), [
    ("random_effects_marginal", False, None, None),
    ("meta_regression_continuous", False, None, None),
    ("meta_regression_continuous", False, None, [1, 1, 0, 1, 1, 1]),
    ("meta_regression_category", False, None, None),
    ("all_evidence", False, ["parallel_rct", "single_arm_prepost", "parallel_rct",
                             "crossover_rct", "controlled_nonrandomised", "single_arm_prepost"],
     None),
    ("all_evidence", True, ["parallel_rct", "single_arm_prepost", "parallel_rct",
                            "crossover_rct", "controlled_nonrandomised", "parallel_rct"],
     [1, 1, 1, 1, 0, 1]),
])
def test_integrated_likelihood_is_the_generative_normal(kind, moderator, designs, weights):
    problem = quadrature.problem_for(_data(designs, weights), PRIORS, kind, moderator=moderator)
    assert problem is not None
    rng = np.random.default_rng(7)
    u = rng.uniform(0.05, 0.95, (5, len(problem.axes)))
    h = problem.hyper(u)
    loglik, _, _ = quadrature._conditional(problem, h)
    for i in range(len(u)):
        ref = _mvn_loglik(problem, {a: float(h[a][i]) for a in problem.axes})
        assert loglik[i] == pytest.approx(ref, rel=1e-10, abs=1e-10)


def test_axes_follow_the_data():
    """A design without weighted rows adds no axis; a weight-0 row's design is unused."""
    designs = ["parallel_rct"] * 4 + ["single_arm_prepost", "parallel_rct"]
    p = quadrature.problem_for(_data(designs), PRIORS, "all_evidence", moderator=True)
    assert p is not None and p.axes == ("tau", "slope", "extra_single_arm_prepost")
    p = quadrature.problem_for(_data(designs, [1, 1, 1, 1, 0, 1]), PRIORS, "all_evidence")
    assert p is not None and p.axes == ("tau",)
    many = ["controlled_nonrandomised", "single_arm_prepost"] + ["parallel_rct"] * 4
    assert quadrature.problem_for(_data(many), PRIORS, "all_evidence", moderator=True) is None
    assert quadrature.problem_for(_data(), PRIORS, "multilevel") is None


def _exact_tau(priors: Priors) -> TauPrior:
    return {"half_normal": TauPrior.half_normal(priors.tau_scale),
            "half_cauchy": TauPrior.half_cauchy(priors.tau_scale),
            "exponential": TauPrior.exponential(1.0 / priors.tau_scale)}[priors.tau_family]


@pytest.mark.parametrize("family", ["half_normal", "half_cauchy", "exponential"])
def test_random_effects_equals_exact_posterior(family):
    priors = replace(PRIORS, tau_family=family)
    data = _data()
    grid, error = quadrature._integrate(quadrature.problem_for(data, priors,
                                                               "random_effects_marginal"))
    ex = exact_posterior(data.yi, data.sei, _exact_tau(priors), mu_prior=(0.0, priors.mu_sd))
    s = ex.mu.summary()
    mean, sd = grid.moments["mu"]
    assert error < quadrature.TOLERANCE
    assert mean == pytest.approx(s["mean"], abs=2e-4 * s["sd"])
    assert sd == pytest.approx(s["sd"], rel=2e-4)
    fitted = quadrature.fit(data, priors, "random_effects_marginal", seed=3)
    assert fitted is not None and fitted.passed
    post = fitted.tree["posterior"]
    draws = post["mu"].values.ravel()
    assert abs(draws.mean() - s["mean"]) < N_MCSE * s["sd"] / np.sqrt(draws.size)
    tau = post["tau"].values.ravel()
    ts = ex.summary()["parameters"]["tau"]
    assert abs(tau.mean() - ts["mean"]) < N_MCSE * ts["sd"] / np.sqrt(tau.size)
    # independent draws: no autocorrelation to speak of
    ess = float(azs.ess(xr.Dataset({"mu": post["mu"]}), method="bulk")["mu"])
    assert ess > 0.8 * draws.size


def test_meta_regression_with_known_levels_equals_exact_regression():
    data = _data()
    x = np.array([-1.0, 0.8, -0.7, 1.2, 0.1, 0.3])
    data = replace(data, x=x)
    problem = quadrature.problem_for(data, PRIORS, "meta_regression_continuous")
    grid, error = quadrature._integrate(problem)
    ex = exact_posterior(data.yi, data.sei, TauPrior.half_normal(PRIORS.tau_scale),
                         mu_prior=[(0.0, PRIORS.mu_sd), (0.0, PRIORS.slope_sd)],
                         X=np.column_stack([np.ones(6), x]))
    assert error < quadrature.TOLERANCE
    b0 = ex.coef(0).summary()
    mean, sd = grid.moments["mu"]
    assert mean == pytest.approx(b0["mean"], abs=5e-4 * b0["sd"])
    assert sd == pytest.approx(b0["sd"], rel=5e-4)
    fitted = quadrature.fit(data, PRIORS, "meta_regression_continuous", seed=5)
    assert fitted is not None
    slope = fitted.tree["posterior"]["slope"].values.ravel()
    b1 = ex.coef(1).summary()
    assert abs(slope.mean() - b1["mean"]) < N_MCSE * b1["sd"] / np.sqrt(slope.size)
    assert np.quantile(slope, 0.025) == pytest.approx(b1["q025"], abs=0.05 * b1["sd"])


def agree(q_dt: xr.DataTree, s_dt: xr.DataTree, var: str, **sel: str) -> None:
    """Mean and 5%/95% quantiles of the quadrature and NUTS draws agree within 4 combined
    MCSE (the quadrature draws are independent)."""
    a, b = q_dt["posterior"][var], s_dt["posterior"][var]
    if sel:
        a, b = a.sel(sel), b.sel(sel)
    for stat in ("mean", 0.05, 0.95):
        vals, errs = [], []
        for da in (a, b):
            ds = xr.Dataset({var: da.drop_vars(list(sel)) if sel else da})
            if stat == "mean":
                vals.append(float(da.mean()))
                errs.append(float(azs.mcse(ds, method="mean")[var]))
            else:
                vals.append(float(np.quantile(da.values, stat)))
                errs.append(float(azs.mcse(ds, method="quantile", prob=stat)[var]))
        assert abs(vals[0] - vals[1]) < N_MCSE * np.hypot(*errs), (var, sel, stat, vals, errs)


def test_latent_baseline_regression_equals_nuts(regression_refitter):
    """The continuous meta-regression with hidden levels: quadrature = NUTS (same model)."""
    nuts = regression_refitter.fit(seed=13)
    fitted = quadrature.fit(regression_refitter.data, regression_refitter.priors,
                            "meta_regression_continuous", seed=13)
    assert fitted is not None and fitted.passed
    for var in ("mu", "tau", "slope", "deficient_minus_replete"):
        agree(fitted.tree, nuts, var)
    hidden = np.flatnonzero(~np.isfinite(regression_refitter.data.x))
    for i in hidden[:3]:
        label = regression_refitter.data.labels[i]
        agree(fitted.tree, nuts, "x", study=label)
        agree(fitted.tree, nuts, "theta", study=label)


def test_a_failed_error_check_is_reported(monkeypatch):
    monkeypatch.setattr(quadrature, "TOLERANCE", 0.0)
    fitted = quadrature.fit(_data(), PRIORS, "meta_regression_category", seed=1)
    assert fitted is not None and not fitted.passed
    assert "integration error" in fitted.problems[0]
    assert fitted.to_dict()["method"] == "quadrature"


def test_layout_matches_the_sampled_model():
    """The posterior holds every variable of the sampled model with the same dimensions."""
    designs = ["parallel_rct"] * 4 + ["single_arm_prepost", "parallel_rct"]
    data = _data(designs)
    for kind in ("meta_regression_continuous", "meta_regression_category", "all_evidence"):
        model = build_model(data, PRIORS, kind, moderator=True)
        fitted = quadrature.fit(data, PRIORS, kind, moderator=True, seed=2, chains=2, draws=50)
        assert fitted is not None
        post = fitted.tree["posterior"]
        wanted = {v.name for v in model.free_RVs + model.deterministics} - {
            "effect_category_e0", "effect_category_e", "effect_category_xi", "mu_z"}
        assert wanted <= set(post.data_vars), wanted - set(post.data_vars)
        for name in wanted:
            dims = tuple(model.named_vars_to_dims.get(name, ()))
            assert post[name].dims == ("chain", "draw", *dims), name
        assert dict(post.sizes)["chain"] == 2 and dict(post.sizes)["draw"] == 50
