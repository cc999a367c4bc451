"""The alternative parameterisations of a model define the same distribution.

Deterministic checks against dense linear algebra (scipy): the category and multilevel
models with ``mu`` and the group effects integrated out have the multivariate-normal
marginal likelihood and draw from the exact Gaussian conditional; the cross-nutrient
model's contrast parameterisation gives the slopes the prior of the non-centred one.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from nutrimeta.models.bayes import (
    ALTERNATIVE_PARAMETERISATION,
    DEFAULT_PARAMETERISATION,
    ModelData,
    Priors,
    build_model,
)
from nutrimeta.schema import STATUS_CATEGORIES

CATS = ["deficient", "deficient", "replete", "unknown", "replete", "deficient"]
Y = np.array([0.2, -0.1, 0.5, 0.3, 0.9, 0.05])
SE = np.array([0.3, 0.2, 0.4, 0.25, 0.5, 0.35])
PRIORS = Priors(mu_mean=0.1, mu_sd=1.5, category_sd=0.7, tau_scale=0.4)


STUDIES = ["a", "a", "b", "c", "c", "d"]
#: kind -> (parameter of the spread of group effects, of the row-level SD, group variable)
KINDS = {
    "meta_regression_category": ("sigma_category", "tau", "effect_category"),
    "multilevel": ("tau", "tau_contrast", "theta_study"),
}


def _functions(kind: str, weights: np.ndarray):
    data = ModelData.from_arrays(Y, SE, categories=CATS, labels=[f"r{i}" for i in range(6)],
                                 study_ids=STUDIES if kind == "multilevel" else None)
    data = data.with_weights(weights)
    model = build_model(data, PRIORS, kind, parameterisation="marginal")
    outs = model.replace_rvs_by_values([model["loglik"], model[KINDS[kind][2]]])
    return model, model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")


def _dense_reference(kind: str, spread: float, row_sd: float, weights: np.ndarray):
    """Marginal likelihood and conditional of the group effects by dense algebra."""
    keep = weights > 0
    groups = STATUS_CATEGORIES if kind == "meta_regression_category" else sorted(set(STUDIES))
    labels = CATS if kind == "meta_regression_category" else STUDIES
    z = np.array([[c == s for s in groups] for c in labels], dtype=float)[keep]
    n = len(groups)
    a = PRIORS.mu_sd**2 * np.ones((n, n)) + spread**2 * np.eye(n)
    v = np.diag(SE[keep] ** 2 + row_sd**2)
    m0 = PRIORS.mu_mean * np.ones(n)
    cov_y = z @ a @ z.T + v
    loglik = stats.multivariate_normal(z @ m0, cov_y).logpdf(Y[keep])
    gain = a @ z.T @ np.linalg.inv(cov_y)
    return loglik, m0 + gain @ (Y[keep] - z @ m0), a - gain @ z @ a


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("weights", [np.ones(6), np.array([1, 0, 1, 1, 0, 1.0])])
def test_marginal_group_models_are_exact(kind, weights):
    """Log likelihood = multivariate normal of y; group effect draws = exact conditional,
    for a large, a moderate and a vanishing spread of the group effects.

    The draw is linear in its standard normals, so its value at zero noise is the
    conditional mean and its Jacobian J gives the conditional covariance J J'.
    """
    spread_name, row_name, group = KINDS[kind]
    row_sd = 0.3
    model, f = _functions(kind, weights)
    scale = {"tau": PRIORS.tau_scale, "sigma_category": PRIORS.category_sd,
             "tau_contrast": PRIORS.tau_contrast_scale}
    noise = [f"{group}_e0", f"{group}_e", f"{group}_xi"]
    for spread in (1.3, 0.2, 1e-5):
        point = model.initial_point()
        point[f"{spread_name}_raw_log__"] = np.log(spread / scale[spread_name])
        point[f"{row_name}_raw_log__"] = np.log(row_sd / scale[row_name])
        for name in noise:
            point[name] = np.zeros_like(point[name])
        loglik, mean_ref, cov_ref = _dense_reference(kind, spread, row_sd, weights)
        ll, mean = f(point)
        np.testing.assert_allclose(ll, loglik, rtol=1e-9)
        np.testing.assert_allclose(mean, mean_ref, rtol=1e-7, atol=1e-9)
        columns = []
        for name in noise:
            for i in range(np.size(point[name])):
                unit = dict(point)
                unit[name] = np.zeros_like(point[name])
                np.put(unit[name], i, 1.0)
                columns.append(f(unit)[1] - mean)
        jac = np.array(columns).T
        np.testing.assert_allclose(jac @ jac.T, cov_ref, atol=1e-9 * max(1.0, cov_ref.max()))


def test_contrast_slopes_have_the_noncentred_prior():
    """Nutrient slopes: var(global) = slope_sd², cov(global, slope_j) = slope_sd²,
    var(slope_j - global) = E[sigma²] = slope_between_sd², deviations uncorrelated; in both
    parameterisations (40,000 forward draws, 5 standard errors of each moment)."""
    data = ModelData.from_arrays(Y[:3], SE[:3], x=[0.1, -0.5, 1.0],
                                 nutrients=["zinc", "selenium", "magnesium"])
    priors = Priors(slope_sd=0.8, slope_between_sd=0.6)
    n = 40_000
    for p in ("contrasts", "noncentred"):
        model = build_model(data, priors, "cross_nutrient", parameterisation=p)
        g, slope = pm.draw([model["slope_global"], model["slope"]], draws=n, random_seed=1)
        dev = slope - g[:, None]
        for est, ref, sd_ref in (
            (np.var(g), 0.8**2, 0.8**2 * np.sqrt(2 / n)),
            (np.mean(g[:, None] * slope, axis=0), 0.8**2, 0.8**2 * np.sqrt(2 / n) * 2),
            (np.mean(dev**2, axis=0), 0.6**2, 0.6**2 * np.sqrt(3 * 3 / n)),  # kurtosis of
            (np.mean(dev[:, 0] * dev[:, 1]), 0.0, 0.6**2 * np.sqrt(3 / n)),  # a scale mixture
        ):
            assert np.all(np.abs(np.asarray(est) - ref) <= 5 * sd_ref), (p, est, ref)


def test_declared_parameterisations():
    """Every kind with a choice has a default and a different declared alternative."""
    assert set(DEFAULT_PARAMETERISATION) == set(ALTERNATIVE_PARAMETERISATION)
    for kind, p in DEFAULT_PARAMETERISATION.items():
        assert ALTERNATIVE_PARAMETERISATION[kind] != p
    with pytest.raises(ValueError, match="no choice"):
        build_model(ModelData.from_arrays(Y, SE), None, "random_effects",
                    parameterisation="noncentred")
