"""Bayesian meta-analysis models (PyMC): random effects, baseline-status meta-regression,
design-aware pooling of all evidence, multilevel contrasts and cross-nutrient pooling.

Every model is built by a pure function of a :class:`ModelData` (the effect-size table in
array form) and a :class:`Priors`. Data and prior scales enter as ``pm.Data`` so that one
compiled model can be refitted on swapped data (leave-one-out via a 0/1 ``weight`` vector on
each likelihood term, prior sensitivity via new prior scales) without recompiling; see
:func:`model_inputs` for the names.

Hierarchical parts are non-centred, and wherever the model is linear-Gaussian in the
study-level quantities they are integrated out of the likelihood (``theta_i`` and latent
baseline levels), then drawn from their exact conditionals (:func:`_marginal_rows`); the
category and multilevel models integrate their group effects and ``mu`` out too
(:func:`_marginal_groups`), and the cross-nutrient slopes are sampled as contrasts
(:func:`_pooled_groups`). This
removes the funnels between ``tau`` and ``theta`` and between the slope and latent baselines
that make non-centred samplers diverge, while the posterior keeps ``theta`` and ``x``.

Dimensions: ``study`` (one row per study, or the unique studies in the multilevel model),
``contrast`` (rows of the multilevel model), ``category`` (baseline-status categories),
``design`` (study designs) and ``nutrient`` (cross-nutrient model).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from nutrimeta.models.inputs import (  # noqa: F401 (re-exported)
    _KIND_KEYS,
    ALTERNATIVE_PARAMETERISATION,
    CATEGORY_INPUTS,
    DEFAULT_PARAMETERISATION,
    MODEL_KINDS,
    NONRANDOMISED_DESIGNS,
    PARAMETERISATIONS,
    ROW_INPUTS,
    TAU_FAMILIES,
    ModelKind,
    Parameterisation,
    Priors,
    TauFamily,
    data_dims,
    model_coords,
    model_inputs,
)
from nutrimeta.models.model_data import ModelData
from nutrimeta.schema import RANDOMISED_DESIGNS, STATUS_CATEGORIES

# ----------------------------------------------------------------------------- building


def _half(name: str, family: TauFamily, nu: float, dims: str | None = None) -> pt.TensorVariable:
    """Unit-scale positive variable of the given family (multiplied by a data scale)."""
    if family == "half_normal":
        return pm.HalfNormal(name, sigma=1.0, dims=dims)
    if family == "half_cauchy":
        return pm.HalfCauchy(name, beta=1.0, dims=dims)
    if family == "half_student_t":
        return pm.HalfStudentT(name, nu=nu, sigma=1.0, dims=dims)
    return pm.Exponential(name, lam=1.0, dims=dims)


def _weighted_normal(name: str, d: dict[str, pt.TensorVariable], mean: pt.TensorVariable,
                     sd: pt.TensorVariable, y: pt.TensorVariable | None = None) -> None:
    """Likelihood of the effect estimates, each term multiplied by its weight."""
    y = d["y"] if y is None else y
    terms = d["weight"] * pm.logp(pm.Normal.dist(mu=mean, sigma=sd), y)
    pm.Potential(name, terms.sum())


def _i2(d: dict[str, pt.TensorVariable], tau: pt.TensorVariable) -> None:
    """I² with the Higgins–Thompson typical within-study variance (weighted rows only)."""
    w = d["weight"] / d["se"] ** 2
    k = d["weight"].sum()
    s2 = (k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    pm.Deterministic("i2", tau**2 / (tau**2 + s2))


def _marginal_rows(
    d: dict[str, pt.TensorVariable],
    loc: pt.TensorVariable,
    tau: pt.TensorVariable,
    *,
    slope: pt.TensorVariable | None = None,
    offset: pt.TensorVariable | float = 0.0,
    extra_var: pt.TensorVariable | float = 0.0,
    dim: str = "study",
    likelihood: bool = True,
) -> pt.TensorVariable:
    """Likelihood with ``theta`` (and latent baselines) integrated out, plus exact draws of both.

    Row ``i`` has ``theta_i = loc_i + slope x_i + tau z_i`` and
    ``y_i ~ N(theta_i + offset_i, se_i^2 + extra_var_i)``. Where the baseline level is
    unknown, ``x_i ~ N(m_c, s_c^2)`` (category ``c``), so marginally
    ``y_i ~ N(loc_i + slope m_c + offset_i, se_i^2 + extra_var_i + tau^2 + slope^2 s_c^2)``.
    Sampling only the hyperparameters from this marginal removes both the ``tau`` funnel and the
    ``slope`` x latent-baseline funnel; ``x`` and ``theta`` are then drawn from their exact
    conditionals ``p(x | y, ...)`` and ``p(theta | x, y, ...)`` through independent
    standard normals (``x_latent_z``, ``z``), so the joint posterior is unchanged. The
    likelihood weight acts as a power on each row (weight 0: ``x`` and ``theta`` follow the
    prior, as for a left-out study). ``likelihood=False``: only the draws (the caller has
    put the marginal likelihood of ``y`` in the model).
    """
    w = d["weight"]
    y = d["y"] - offset
    s2 = d["se"] ** 2 + extra_var  # sampling variance given theta
    if slope is None:
        mean, var_x, prior_theta = loc, 0.0, loc
    else:
        cat = d["category_idx"]
        known = d["x_known"] > 0.5
        m = d["latent_mean"][cat]
        v = d["latent_sd"][cat] ** 2
        xbar = pt.switch(known, d["x_obs"], m)
        var_x = pt.switch(known, 0.0, slope**2 * v)
        mean = loc + slope * xbar
        # x | y: prior N(m, v) and y - loc ~ N(slope x, s2 + tau^2) raised to the power w
        prec = 1.0 / v + w * slope**2 / (s2 + tau**2)
        x_cond = (m / v + w * slope * (y - loc) / (s2 + tau**2)) / prec
        z_x = pm.Normal("x_latent_z", 0.0, 1.0, dims=dim)
        x = pm.Deterministic("x", pt.switch(known, d["x_obs"], x_cond + z_x / pt.sqrt(prec)),
                             dims=dim)
        prior_theta = loc + slope * x
    if likelihood:
        _weighted_normal("loglik", d, mean, pt.sqrt(s2 + tau**2 + var_x), y)
    shrink = s2 / (s2 + w * tau**2)  # weight of the prior mean in theta | x, y
    z = pm.Normal("z", 0.0, 1.0, dims=dim)
    theta = shrink * prior_theta + (1.0 - shrink) * y + pt.sqrt(shrink) * tau * z
    return pm.Deterministic("theta", theta, dims=dim)


def _pooled_groups(
    name: str,
    centre_name: str,
    centre_mean: pt.TensorVariable | float,
    centre_sd: pt.TensorVariable,
    spread: pt.TensorVariable,
    dim: str,
    n_groups: int,
    parameterisation: Parameterisation,
) -> pt.TensorVariable:
    """Group values ``v_j ~ N(c, spread^2)`` around a centre ``c ~ N(centre_mean, centre_sd^2)``.

    ``"noncentred"``: ``v_j = c + spread z_j`` with ``c`` and ``z_j`` sampled. With few groups
    the data pin ``c + spread z_j`` of informed groups, which leaves a ridge between ``c``
    and the mean of ``z`` whose width depends on ``spread``. ``"contrasts"`` removes it: the
    centre is integrated out, ``v ~ N(centre_mean 1, centre_sd^2 11' + spread^2 I)`` is
    written as ``centre_mean + (m / sqrt(J)) 1 + spread H e`` with ``H`` an orthonormal basis
    of the contrasts, ``m ~ N(0, J centre_sd^2 + spread^2)`` sampled centred (its scale hardly
    depends on ``spread``) and the contrasts ``e ~ N(0, I)`` non-centred; ``c`` is then drawn
    from its exact conditional ``N((centre_mean / centre_sd^2 + sum(v) / spread^2) / P,
    1 / P)``, ``P = 1 / centre_sd^2 + J / spread^2`` (given ``v``, ``c`` does not depend on the
    data). Both define the same joint distribution and record ``{name}`` and ``{centre_name}``.
    """
    if parameterisation == "noncentred":
        centre = pm.Normal(centre_name, centre_mean, centre_sd)
        z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=dim)
        return pm.Deterministic(name, centre + spread * z, dims=dim)
    if parameterisation != "contrasts":
        raise ValueError(f"parameterisation {parameterisation!r} does not apply here")
    m = pm.Normal(f"{name}_sum", 0.0, pt.sqrt(n_groups * centre_sd**2 + spread**2))
    e = pm.Normal(f"{name}_contrast_z", 0.0, 1.0, shape=n_groups - 1)
    values = pm.Deterministic(
        name, centre_mean + m / np.sqrt(n_groups) + spread * pt.dot(_contrast_basis(n_groups), e),
        dims=dim,
    )
    _draw_centre(centre_name, values, centre_mean, centre_sd, spread, n_groups)
    return values


def _draw_centre(name: str, values: pt.TensorVariable, centre_mean: pt.TensorVariable | float,
                 centre_sd: pt.TensorVariable, spread: pt.TensorVariable, n_groups: int) -> None:
    """Exact conditional draw of the centre ``c`` of group values ``v_j ~ N(c, spread^2)``."""
    prec = 1.0 / centre_sd**2 + n_groups / spread**2
    mean = (centre_mean / centre_sd**2 + values.sum() / spread**2) / prec
    pm.Deterministic(name, mean + pm.Normal(f"{name}_z", 0.0, 1.0) / pt.sqrt(prec))


def _marginal_groups(
    d: dict[str, pt.TensorVariable],
    group_idx: pt.TensorVariable,
    n_groups: int,
    spread: pt.TensorVariable,
    row_var: pt.TensorVariable,
    name: str,
    dim: str,
) -> pt.TensorVariable:
    """Group effects and their centre ``mu`` integrated out of the likelihood (exact).

    Row ``i`` of group ``c_i`` has ``y_i ~ N(v_{c_i}, V_i)`` (``V_i = row_var_i``, the row's own
    random effect already integrated out) raised to the power ``w_i``; group effects
    ``v_c ~ N(mu, spread^2)`` and ``mu ~ N(m0, s^2)``, so ``v = m0 + u`` with
    ``u ~ N(0, A)``, ``A = s^2 11' + spread^2 I``. Per group ``q_c = sum w_i / V_i`` and
    ``b_c = sum w_i (y_i - m0) / V_i``; with ``d_c = 1 + spread^2 q_c`` and
    ``g = 1 + s^2 sum(q / d)`` the log marginal likelihood is

    ``sum_i w_i (-log(2 pi V_i) - (y_i - m0)^2 / V_i) / 2 - (sum log d + log g) / 2
    + spread^2 sum(b^2 / d) / 2 + s^2 (sum(b / d))^2 / (2 g)``

    (Sherman–Morrison on ``I + Q^1/2 A Q^1/2``: nothing is inverted, so a tiny ``spread`` or a
    group without rows is harmless). Only the variance parameters are sampled, so no funnel
    remains. ``u | y`` has mean ``A t``, ``t = (b - s^2 beta q) / d``,
    ``beta = sum(b / d) / g``, and is drawn exactly by Matheron's rule from a prior draw
    ``u0 = s e0 1 + spread e`` and pseudo-noise ``xi ~ N(0, Q)``: ``u = A t + u0 - A t'``,
    ``t'`` the same map applied to ``q u0 + xi`` in place of ``b``; ``mu`` is drawn from its
    exact conditional given ``v``.
    """
    w = d["weight"]
    m0, s2, sig2 = d["mu_mean"], d["mu_sd"] ** 2, spread**2
    resid = d["y"] - m0
    onehot = pt.eq(group_idx[:, None], pt.arange(n_groups)[None, :])
    q = pt.dot(w / row_var, onehot)
    b = pt.dot(w * resid / row_var, onehot)
    dd = 1.0 + sig2 * q
    g = 1.0 + s2 * (q / dd).sum()
    rows = (w * (-pt.log(2 * np.pi * row_var) - resid**2 / row_var)).sum()
    pm.Potential("loglik", 0.5 * (rows - pt.log(dd).sum() - pt.log(g)
                                  + sig2 * (b**2 / dd).sum() + s2 * (b / dd).sum() ** 2 / g))

    def gain(rhs: pt.TensorVariable) -> pt.TensorVariable:  # A Q^1/2 B^-1 Q^-1/2 rhs
        t = (rhs - s2 * (rhs / dd).sum() / g * q) / dd
        return s2 * t.sum() + sig2 * t

    e0 = pm.Normal(f"{name}_e0", 0.0, 1.0)
    e = pm.Normal(f"{name}_e", 0.0, 1.0, dims=dim)
    xi = pt.sqrt(pt.maximum(q, 1e-300)) * pm.Normal(f"{name}_xi", 0.0, 1.0, dims=dim)
    u0 = pt.sqrt(s2) * e0 + spread * e
    values = pm.Deterministic(name, m0 + gain(b) + u0 - gain(q * u0 + xi), dims=dim)
    _draw_centre("mu", values, m0, d["mu_sd"], spread, n_groups)
    return values


def _contrast_basis(n: int) -> np.ndarray:
    """``n x (n - 1)`` orthonormal basis of the contrasts (columns orthogonal to ``1``)."""
    basis = np.zeros((n, n - 1))
    for j in range(1, n):  # normalised Helmert contrasts
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -float(j)
        basis[:, j - 1] /= np.sqrt(j * (j + 1))
    return basis


def _nutrient_slopes(d: dict[str, pt.TensorVariable], n_nutrients: int,
                     parameterisation: Parameterisation) -> pt.TensorVariable:
    """Nutrient slopes partially pooled around ``slope_global`` with SD ``sigma_slope``."""
    sig = pm.Deterministic(
        "sigma_slope", d["slope_between_sd"] * pm.HalfNormal("sigma_slope_raw", 1.0)
    )
    return _pooled_groups("slope", "slope_global", 0.0, d["slope_sd"], sig, "nutrient",
                          n_nutrients, parameterisation)


def _reference_effects(intercept: pt.TensorVariable, slope: pt.TensorVariable,
                       x_ref: pt.TensorVariable, dims: str | None = None) -> None:
    dep = pm.Deterministic("effect_deficient", intercept + slope * x_ref[0], dims=dims)
    rep = pm.Deterministic("effect_replete", intercept + slope * x_ref[1], dims=dims)
    pm.Deterministic("deficient_minus_replete", dep - rep, dims=dims)


def build_model(
    data: ModelData,
    priors: Priors | None = None,
    kind: ModelKind = "random_effects",
    *,
    moderator: bool = False,
    parameterisation: Parameterisation | None = None,
) -> pm.Model:
    """Build a PyMC model of the effect sizes in ``data``.

    Parameters
    ----------
    data
        Effect sizes and moderators.
    priors
        Prior choices; defaults to :class:`Priors()`.
    kind
        ``random_effects``: ``theta_i = mu + tau z_i`` (non-centred, sampled jointly).
        ``random_effects_marginal``: the same with ``theta`` integrated out,
        ``y_i ~ N(mu, sqrt(se_i^2 + tau^2))``, and drawn afterwards from its conditional.
        All other kinds integrate ``theta`` (and latent baselines) out in the same way.
        ``meta_regression_continuous``: ``theta_i = mu + slope x_i + tau z_i`` with ``x`` the
        baseline level minus the cut-off (latent where unknown), so ``mu`` is the effect at
        the cut-off. ``meta_regression_category``: partially pooled category effects
        (deficient, marginal, replete, unknown). ``all_evidence``: random effects (plus the
        continuous moderator if ``moderator``) where non-randomised designs get a bias and an
        extra variance term. ``multilevel``: study- and contrast-level random effects.
        ``cross_nutrient``: per-nutrient intercepts and heterogeneity with the deficiency
        slope partially pooled across nutrients (pass standardised effects and moderator).
    moderator
        Add the continuous baseline moderator to ``all_evidence``.
    parameterisation
        How partially pooled group values are sampled (see :func:`_pooled_groups` and
        :func:`_marginal_groups`), for the
        kinds that have a choice (:data:`DEFAULT_PARAMETERISATION`); ``None``: the kind's
        default. Both choices define the same model, so a fit that does not converge in one
        can be retried in the other.

    Returns
    -------
    pymc.Model
        Model whose ``pm.Data`` containers are named as in :func:`model_inputs`.
    """
    priors = priors or Priors()
    if kind not in _KIND_KEYS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    if parameterisation is None:
        parameterisation = DEFAULT_PARAMETERISATION.get(kind, "noncentred")
    elif kind not in DEFAULT_PARAMETERISATION:
        raise ValueError(f"{kind} has no choice of parameterisation")
    elif kind == "cross_nutrient" and parameterisation == "marginal":
        raise ValueError("cross_nutrient cannot integrate its slopes out (latent baselines)")
    if kind not in ("multilevel",) and not data.one_row_per_study:
        raise ValueError(f"{kind} needs one row per study; use kind='multilevel' for "
                         "several contrasts per study")
    values = model_inputs(data, priors, kind, moderator=moderator)
    row = "contrast" if kind == "multilevel" else "study"
    with pm.Model(coords=model_coords(data, kind)) as model:
        d = {k: pm.Data(k, v, dims=data_dims({k: v}, row).get(k) or None)
             for k, v in values.items()}
        fam, nu = priors.tau_family, priors.tau_nu
        if kind == "cross_nutrient":
            mu = pm.Normal("mu", d["mu_mean"], d["mu_sd"], dims="nutrient")
            tau = pm.Deterministic("tau", d["tau_scale"] * _half("tau_raw", fam, nu, "nutrient"),
                                   dims="nutrient")
        elif kind in ("meta_regression_category", "multilevel"):
            mu = None  # the centre of the group effects, defined with them
            tau = pm.Deterministic("tau", d["tau_scale"] * _half("tau_raw", fam, nu))
        else:
            mu = pm.Normal("mu", d["mu_mean"], d["mu_sd"])
            tau = pm.Deterministic("tau", d["tau_scale"] * _half("tau_raw", fam, nu))

        if kind == "multilevel":
            tau_c = pm.Deterministic(
                "tau_contrast", d["tau_contrast_scale"] * pm.HalfNormal("tau_contrast_raw", 1.0)
            )
            si = d["study_idx"]
            if parameterisation == "marginal":  # study and contrast levels integrated out
                theta_s = _marginal_groups(d, si, data.n_studies, tau, d["se"] ** 2 + tau_c**2,
                                           "theta_study", "study")
                mu = model["mu"]
                _marginal_rows(d, theta_s[si], tau_c, dim="contrast", likelihood=False)
            else:  # contrast level integrated out (exact conditional draws of theta)
                mu = pm.Normal("mu", d["mu_mean"], d["mu_sd"])
                z_s = pm.Normal("z_study", 0.0, 1.0, dims="study")
                theta_s = pm.Deterministic("theta_study", mu + tau * z_s, dims="study")
                _marginal_rows(d, theta_s[si], tau_c, dim="contrast")
            pm.Deterministic("theta_new", mu + pt.sqrt(tau**2 + tau_c**2)
                             * pm.Normal("z_new", 0.0, 1.0))

        elif kind == "random_effects":
            z = pm.Normal("z", 0.0, 1.0, dims="study")
            theta = pm.Deterministic("theta", mu + tau * z, dims="study")
            _weighted_normal("loglik", d, theta, d["se"])
            _i2(d, tau)
            pm.Deterministic("theta_new", mu + tau * pm.Normal("z_new", 0.0, 1.0))

        elif kind == "random_effects_marginal":
            _marginal_rows(d, mu, tau)
            _i2(d, tau)
            pm.Deterministic("theta_new", mu + tau * pm.Normal("z_new", 0.0, 1.0))

        elif kind == "meta_regression_continuous":
            slope = pm.Normal("slope", 0.0, d["slope_sd"])
            _marginal_rows(d, mu, tau, slope=slope)
            _reference_effects(mu, slope, d["x_ref"])

        elif kind == "meta_regression_category":
            sigma_c = pm.Deterministic(
                "sigma_category", d["category_sd"] * pm.HalfNormal("sigma_category_raw", 1.0)
            )
            if parameterisation == "marginal":
                cat = d["category_idx"]
                eff = _marginal_groups(d, cat, len(STATUS_CATEGORIES), sigma_c,
                                       d["se"] ** 2 + tau**2, "effect_category", "category")
                _marginal_rows(d, eff[cat], tau, likelihood=False)
            else:
                eff = _pooled_groups("effect_category", "mu", d["mu_mean"], d["mu_sd"],
                                     sigma_c, "category", len(STATUS_CATEGORIES),
                                     parameterisation)
                _marginal_rows(d, eff[d["category_idx"]], tau)
            dep = pm.Deterministic("effect_deficient", eff[STATUS_CATEGORIES.index("deficient")])
            rep = pm.Deterministic("effect_replete", eff[STATUS_CATEGORIES.index("replete")])
            pm.Deterministic("deficient_minus_replete", dep - rep)

        elif kind == "all_evidence":
            zeros = pt.zeros(len(RANDOMISED_DESIGNS))
            b_raw = pm.Normal("bias_z", 0.0, 1.0, dims="nonrandomised_design")
            bias = pm.Deterministic(
                "bias", pt.concatenate([zeros, d["bias_sd"] * b_raw]), dims="design"
            )
            e_raw = pm.HalfNormal("extra_sd_raw", 1.0, dims="nonrandomised_design")
            extra = pm.Deterministic(
                "extra_sd", pt.concatenate([zeros, d["extra_scale"] * e_raw]), dims="design"
            )
            di = d["design_idx"]
            if moderator:
                slope = pm.Normal("slope", 0.0, d["slope_sd"])
                _marginal_rows(d, mu, tau, slope=slope, offset=bias[di],
                               extra_var=extra[di] ** 2)
                _reference_effects(mu, slope, d["x_ref"])
            else:
                _marginal_rows(d, mu, tau, offset=bias[di], extra_var=extra[di] ** 2)
                pm.Deterministic("theta_new", mu + tau * pm.Normal("z_new", 0.0, 1.0))

        elif kind == "cross_nutrient":
            slope = _nutrient_slopes(d, len(data.nutrient_labels), parameterisation)
            b = d["nutrient_idx"]
            _marginal_rows(d, mu[b], tau[b], slope=slope[b])
            _reference_effects(mu, slope, d["x_ref"], dims="nutrient")
    return model


def check_initial_point(model: pm.Model) -> tuple[float, np.ndarray]:
    """Log density and gradient at the model's initial point (both should be finite)."""
    point = model.initial_point()
    logp = float(model.compile_logp()(point))
    grads = model.compile_dlogp()(point)
    return logp, np.asarray(grads, dtype=float)
