"""Every field of ``rma`` and ``egger_test`` against its definition, written out with dense
k x k matrices (``P = W - W X (X'WX)^-1 X'W``) and scipy/statsmodels, independently of the
module's O(k p^2) sums: the estimators' defining equations (DL, HE closed forms; PM's
Q(tau^2) = k - p; the REML and ML score equations), Q-profile bounds (Q(bound) = chi^2
quantile), Knapp-Hartung scaling, the F / chi^2 tests of the moderators and pseudo-R^2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from nutrimeta.models.frequentist import egger_test, rma
from nutrimeta.reference_data import bcg_data

BCG = bcg_data()
Y = BCG["yi"].to_numpy()
V = BCG["vi"].to_numpy()
MODS = {
    "none": None,
    "ablat": BCG["ablat"].to_numpy(dtype=float),
    "ablat+year": np.column_stack([BCG["ablat"], BCG["year"]]).astype(float),
}


def _design(mods: np.ndarray | None) -> np.ndarray:
    ones = np.ones((Y.size, 1))
    return ones if mods is None else np.column_stack([ones, mods])


def _dense(tau2: float, X: np.ndarray) -> dict[str, object]:
    """GLS fit and P matrix at ``tau2`` with dense matrices."""
    W = np.diag(1.0 / (V + tau2))
    A_inv = np.linalg.inv(X.T @ W @ X)
    P = W - W @ X @ A_inv @ X.T @ W
    return {"W": W, "P": P, "b": A_inv @ X.T @ W @ Y, "cov": A_inv, "Q": float(Y @ P @ Y)}


def _expected_tau2_equation(method: str, tau2: float, X: np.ndarray) -> None:
    """Assert the defining equation of ``method``'s estimate of tau^2."""
    k, p = X.shape
    d0 = _dense(0.0, X)
    if method == "EE":
        assert tau2 == 0.0
    elif method == "DL":
        want = (d0["Q"] - (k - p)) / np.trace(d0["P"])
        assert tau2 == pytest.approx(max(0.0, want), rel=1e-10, abs=1e-14)
    elif method == "HE":
        H = X @ np.linalg.inv(X.T @ X) @ X.T
        M = np.eye(k) - H
        want = (Y @ M @ Y - np.trace(M @ np.diag(V))) / (k - p)
        assert tau2 == pytest.approx(max(0.0, want), rel=1e-10, abs=1e-14)
    elif method == "PM":
        assert tau2 > 0
        assert _dense(tau2, X)["Q"] == pytest.approx(k - p, rel=1e-9)
    else:  # score equations at an interior maximum
        assert tau2 > 0
        d = _dense(tau2, X)
        P, W = d["P"], d["W"]
        Py = P @ Y
        if method == "REML":
            score = Py @ Py - np.trace(P)
            scale = np.trace(P @ P)
        else:
            score = Py @ Py - np.trace(W)
            scale = np.trace(W @ W)
        assert abs(score) / scale < 1e-8


@pytest.mark.parametrize("mods", list(MODS))
@pytest.mark.parametrize("knha", [False, True])
@pytest.mark.parametrize("method", ["REML", "ML", "DL", "PM", "HE", "EE"])
def test_every_field_follows_its_definition(method: str, knha: bool, mods: str) -> None:
    X = _design(MODS[mods])
    k, p = X.shape
    df = k - p
    r = rma(Y, V, MODS[mods], method=method, knha=knha, level=0.9)
    assert (r.method, r.k, r.p, r.level, r.knha, r.Q_df) == (method, k, p, 0.9, knha, df)
    assert r.df == (df if knha else None)
    assert r.converged is True
    _expected_tau2_equation(method, r.tau2, X)
    assert r.tau == pytest.approx(math.sqrt(r.tau2), rel=1e-14)

    d0, d = _dense(0.0, X), _dense(r.tau2, X)
    assert pytest.approx(d0["Q"], rel=1e-10) == r.Q
    assert r.Q_p == pytest.approx(stats.chi2.sf(d0["Q"], df), rel=1e-8)
    vb = d["cov"] * (d["Q"] / df if knha else 1.0)
    np.testing.assert_allclose(r.vcov, vb, rtol=1e-8)
    crit = stats.t.ppf(0.95, df) if knha else stats.norm.ppf(0.95)
    dist = stats.t(df) if knha else stats.norm
    for j, c in enumerate(r.coefficients):
        se = math.sqrt(vb[j, j])
        assert c["estimate"] == pytest.approx(d["b"][j], rel=1e-9, abs=1e-12)
        assert c["se"] == pytest.approx(se, rel=1e-8)
        assert c["p_value"] == pytest.approx(2 * dist.sf(abs(d["b"][j] / se)), rel=1e-7)
        assert c["ci_upper"] - c["ci_lower"] == pytest.approx(2 * crit * se, rel=1e-8)
    assert [c["name"] for c in r.coefficients] == ["intrcpt"] + [f"mod{j}" for j in range(1, p)]
    assert (r.estimate, r.se) == (r.coefficients[0]["estimate"], r.coefficients[0]["se"])
    half = crit * math.sqrt(r.se**2 + r.tau2)
    assert (r.pi_lower, r.pi_upper) == pytest.approx((r.estimate - half, r.estimate + half))

    if method == "EE":
        assert r.i2 == pytest.approx(max(0.0, 100 * (d0["Q"] - df) / d0["Q"]), rel=1e-10)
        assert r.h2 == pytest.approx(d0["Q"] / df, rel=1e-10)
        assert math.isnan(r.tau2_se)
        assert all(math.isnan(b) for b in r.tau2_ci)
    else:
        s2 = df / np.trace(d0["P"])
        assert r.i2 == pytest.approx(100 * r.tau2 / (r.tau2 + s2), rel=1e-9)
        assert r.h2 == pytest.approx((r.tau2 + s2) / s2, rel=1e-9)
        lo, hi = r.tau2_ci
        assert 0 < lo < hi  # (ML's estimate, biased low, may fall below the Q-profile bound)
        assert _dense(lo, X)["Q"] == pytest.approx(stats.chi2.ppf(0.95, df), rel=1e-8)
        assert _dense(hi, X)["Q"] == pytest.approx(stats.chi2.ppf(0.05, df), rel=1e-8)

    if p == 1:
        assert (r.QM, r.QM_df, r.QM_p, r.R2) == (None, None, None, None)
        return
    m = p - 1
    bm = d["b"][1:]
    qm = float(bm @ np.linalg.solve(vb[1:, 1:], bm))
    assert r.QM_df == m
    if knha:
        assert pytest.approx(qm / m, rel=1e-8) == r.QM
        assert r.QM_p == pytest.approx(stats.f.sf(qm / m, m, df), rel=1e-7)
    else:
        assert pytest.approx(qm, rel=1e-8) == r.QM
        assert r.QM_p == pytest.approx(stats.chi2.sf(qm, m), rel=1e-7)
    if method == "EE":
        assert r.R2 is None
    else:
        base = rma(Y, V, method=method).tau2
        assert pytest.approx(max(0.0, 100 * (base - r.tau2) / base), rel=1e-8, abs=1e-10) == r.R2


def test_no_heterogeneity_left_gives_zero_r2_and_i2() -> None:
    """Estimates that agree perfectly: tau^2 = 0 for every estimator, converged, I^2 = 0."""
    y = np.array([0.2, 0.2, 0.2, 0.2, 0.2])
    v = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    for method in ("REML", "ML", "DL", "PM", "HE"):
        r = rma(y, v, x, method=method)
        assert (r.tau2, r.converged, r.i2, r.R2) == (0.0, True, 0.0, 0.0)
    ee = rma(y, v, method="EE")
    assert pytest.approx(0.0, abs=1e-25) == ee.Q
    assert ee.i2 == 0.0


def test_single_study_equal_effects() -> None:
    r = rma([0.3], [0.04], method="EE")
    assert r.estimate == pytest.approx(0.3)
    assert r.se == pytest.approx(0.2)
    assert math.isnan(r.Q_p) and math.isnan(r.i2) and math.isnan(r.h2)
    with pytest.raises(ValueError, match="more columns than studies"):
        rma([0.3], [0.04], method="DL")


def test_located_input_errors() -> None:
    with pytest.raises(ValueError, match=r"^y and v must be non-empty and of equal length$"):
        rma([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match=r"^y and v must be non-empty and of equal length$"):
        rma([], [])
    with pytest.raises(ValueError, match=r"^y must be finite and v finite and positive$"):
        rma([0.1, 0.2, 0.3], [0.1, 0.0, 0.1])
    rank = r"^design matrix is rank deficient or has more columns than studies$"
    with pytest.raises(ValueError, match=rank):
        rma(Y, V, np.column_stack([BCG["ablat"], 2.0 * BCG["ablat"]]))
    with pytest.raises(ValueError, match="unknown method 'XX'"):
        rma(Y, V, method="XX")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^Egger's test needs at least 3 studies$"):
        egger_test([0.1, 0.2], [0.1, 0.1])
    with pytest.raises(ValueError, match="unknown method 'XX'"):
        egger_test(Y, BCG["sei"], method="XX")  # type: ignore[arg-type]


def test_egger_rma_reports_the_se_coefficient_of_the_meta_regression() -> None:
    se = BCG["sei"].to_numpy()
    e = egger_test(Y, se, method="rma")
    fit = rma(Y, se**2, se, method="REML")
    c_int, c_se = fit.coefficients
    assert e.method.startswith("rma (REML")
    assert (e.k, e.df) == (13, None)
    assert (e.intercept, e.se, e.statistic, e.p_value) == pytest.approx(
        (c_se["estimate"], c_se["se"], c_se["statistic"], c_se["p_value"]), rel=1e-12)
    assert (e.slope, e.slope_se) == pytest.approx((c_int["estimate"], c_int["se"]), rel=1e-12)
    assert e.caveat == ""
    assert e.to_dict()["intercept"] == e.intercept


def test_egger_classical_every_field_and_caveat_boundary() -> None:
    se = BCG["sei"].to_numpy()
    for k in (3, 9, 10):
        e = egger_test(Y[:k], se[:k])
        ols = sm.OLS(Y[:k] / se[:k], sm.add_constant(1.0 / se[:k])).fit()
        assert e.method.startswith("classical (OLS")
        assert (e.k, e.df) == (k, k - 2)
        assert (e.intercept, e.slope) == pytest.approx(tuple(ols.params), rel=1e-9)
        assert (e.se, e.slope_se) == pytest.approx(tuple(ols.bse), rel=1e-9)
        assert e.statistic == pytest.approx(ols.tvalues[0], rel=1e-9)
        assert e.p_value == pytest.approx(ols.pvalues[0], rel=1e-8)
        if k < 10:
            assert e.caveat == (
                f"Only {k} studies: Egger's test has low power for k < 10 and asymmetry can "
                "arise from heterogeneity rather than small-study bias; interpret with caution.")
        else:
            assert e.caveat == ""
        d = e.to_dict()
        assert (d["k"], d["slope"], d["caveat"]) == (k, e.slope, e.caveat)
    er = egger_test(Y[:9], se[:9], method="rma")
    assert er.caveat.startswith("Only 9 studies")


def _dense_loglik(tau2: float, y: np.ndarray, v: np.ndarray, reml: bool) -> float:
    """Profiled (restricted) log-likelihood of the intercept-only model, up to a constant."""
    V = v + tau2
    w = 1.0 / V
    r = y - (w @ y) / w.sum()
    out = -0.5 * (np.log(V).sum() + (w * r * r).sum())
    return out - 0.5 * math.log(w.sum()) if reml else out


@pytest.mark.parametrize(("method", "y", "v"), [
    ("REML", [0.6429, -2.7022, 2.023], [0.05904, 3.59031, 1.69402]),
    ("ML", [-2.2544, -2.0701, -0.2443], [0.02159, 0.68717, 0.55478]),
    ("ML", [-3.6368, -4.018, -1.2364], [1.17019, 4.15079, 0.03945]),
    ("ML", [0.2058, 2.3742, -5.381, 3.5906], [6.82593, 0.06379, 6.35033, 1.36347]),
])
def test_boundary_maximum_beats_an_interior_local_peak(method: str, y: list[float],
                                                       v: list[float]) -> None:
    """Likelihoods with a local peak inside (where Fisher scoring from the DL estimate
    stops) and the global maximum at tau^2 = 0, found by a dense scan."""
    ya, va, reml = np.array(y), np.array(v), method == "REML"
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 1e3, 3000)])
    ll = np.array([_dense_loglik(t, ya, va, reml) for t in grid])
    peaks = np.r_[True, ll[1:] >= ll[:-1]] & np.r_[ll[:-1] >= ll[1:], True]
    assert peaks.sum() == 2 and peaks[0] and ll.argmax() == 0  # the data do what is claimed
    r = rma(ya, va, method=method)
    assert (r.tau2, r.converged) == (0.0, True)


def test_one_residual_degree_of_freedom() -> None:
    """k - p = 1: Knapp-Hartung scale Q/1, the chi^2(1) p value of Q and a Q-profile
    interval (Q(0) below the lower quantile gives 0; the upper bound solves Q = chi^2_0.025)."""
    y, v = np.array([0.1, 0.5]), np.array([0.04, 0.09])
    q = (y[0] - y[1]) ** 2 / (v[0] + v[1])  # the two-study Q
    ee = rma(y, v, method="EE", knha=True)
    assert pytest.approx(q, rel=1e-12) == ee.Q
    assert ee.Q_p == pytest.approx(stats.chi2.sf(q, 1), rel=1e-10)
    assert ee.se == pytest.approx(math.sqrt(q / (1 / v[0] + 1 / v[1])), rel=1e-12)
    lo, hi = rma(y, v, method="DL").tau2_ci
    assert lo == 0.0
    assert (y[0] - y[1]) ** 2 / (v.sum() + 2 * hi) == pytest.approx(stats.chi2.ppf(0.025, 1),
                                                                     rel=1e-8)


def test_identical_estimates_give_zero_q_and_i2() -> None:
    """Exactly equal estimates and variances: Q = 0 exactly, and I^2 = 0 (not 0/0)."""
    r = rma([0.5] * 4, [0.25] * 4, method="EE")
    assert (r.Q, r.i2, r.h2) == (0.0, 0.0, 0.0)


def test_pseudo_r2_is_truncated_at_zero() -> None:
    """A moderator unrelated to the effects can raise the residual tau^2 above the model
    without moderators; metafor's pseudo-R^2 is then 0, not negative."""
    noise = [-0.16, -0.48, 0.6, 0.04, -0.29, -0.78, -0.26, 0.01, -0.28, 1.29, 1.01, -2.71, -1.89]
    r = rma(Y, V, noise, method="DL")
    assert r.tau2 > rma(Y, V, method="DL").tau2
    assert r.R2 == 0.0
