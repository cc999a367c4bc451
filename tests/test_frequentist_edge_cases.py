"""Edge cases of ``rma`` and ``egger_test`` checked against closed forms written out here
(dense k x k matrices, the equal-variance DerSimonian-Laird formula), statsmodels and the
metafor values cited in tests/test_frequentist.py: object-dtype input, a tau^2 of exactly 1,
Knapp-Hartung without residual degrees of freedom, effects on a small scale, a design without
an intercept, the profile likelihood with a moderator, Paule-Mandel data on which Newton's
step from the DL start leaves the bracket (so the bisection fallback must find the root), and
the bounded-search fallback of the likelihood estimators when Fisher scoring fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from nutrimeta.models import frequentist
from nutrimeta.models.frequentist import _loglik_profile, _q_gen, egger_test, rma
from nutrimeta.reference_data import bcg_data

BCG = bcg_data()
Y = BCG["yi"].to_numpy(dtype=float)
V = BCG["vi"].to_numpy(dtype=float)
SE = BCG["sei"].to_numpy(dtype=float)
ABLAT = BCG["ablat"].to_numpy(dtype=float)


def _dense_q(tau2: float, y: np.ndarray, v: np.ndarray, X: np.ndarray) -> tuple[float, float]:
    """``(Q, dQ/dtau^2)`` at ``tau2`` with dense matrices: ``Q = y'Py``, ``dQ = -y'PPy``."""
    W = np.diag(1.0 / (v + tau2))
    P = W - W @ X @ np.linalg.inv(X.T @ W @ X) @ X.T @ W
    return float(y @ P @ y), -float(y @ P @ P @ y)


def test_object_dtype_columns_are_read_as_numbers() -> None:
    """Object-dtype arrays (pandas gives them for columns that held text) fit as the floats
    they hold: metafor's REML values for dat.bcg (tests/test_frequentist.py) and, with the
    latitude moderator, the dense GLS coefficients; Egger's test equals statsmodels' OLS."""
    yo, vo = Y.astype(object), V.astype(object)
    r = rma(yo, vo)
    assert (r.tau2, r.estimate, r.se) == pytest.approx((0.3132, -0.7145, 0.1798), abs=5e-5)
    m = rma(yo, vo, ABLAT.astype(object), method="DL")
    X = np.column_stack([np.ones(Y.size), ABLAT])
    W = np.diag(1.0 / (V + m.tau2))
    b = np.linalg.solve(X.T @ W @ X, X.T @ W @ Y)
    assert [c["estimate"] for c in m.coefficients] == pytest.approx(list(b), rel=1e-10)
    e = egger_test(yo, SE.astype(object))
    ols = sm.OLS(Y / SE, sm.add_constant(1.0 / SE)).fit()
    assert (e.intercept, e.slope) == pytest.approx(tuple(ols.params), rel=1e-9)
    assert e.se == pytest.approx(ols.bse[0], rel=1e-9)


@pytest.mark.parametrize(("y", "v"), [([-3.0, 0.0, 3.0], 8.0), ([0.1, 0.5, 0.9, 1.3], 0.02)])
def test_dl_with_equal_variances_is_the_excess_sample_variance(y: list[float], v: float) -> None:
    """With equal v, Q = (k - 1) s^2 / v and tr(P) = (k - 1) / v, so DL's tau^2 = s^2 - v and
    the pooled SE is sqrt((v + tau^2) / k). The first data set gives tau^2 = 1 exactly
    (w = 1/8, Q = 2.25, tr(P) = 0.25 are exact in binary floating point)."""
    ya = np.array(y)
    k = ya.size
    want = max(0.0, float(ya.var(ddof=1)) - v)
    r = rma(ya, np.full(k, v), method="DL")
    assert r.tau2 == pytest.approx(want, rel=1e-12)
    assert r.estimate == pytest.approx(float(ya.mean()), abs=1e-12)
    assert r.se == pytest.approx(math.sqrt((v + want) / k), rel=1e-12)
    assert r.tau2 > 0.0


def test_knapp_hartung_without_residual_degrees_of_freedom_is_undefined() -> None:
    """k = p: the Knapp-Hartung scale Q / (k - p) and the t quantile on 0 df do not exist, so
    the standard error and interval are NaN (not a division error); the estimate is the
    study's own."""
    r = rma([0.3], [0.04], method="EE", knha=True)
    assert r.estimate == pytest.approx(0.3, abs=1e-15)
    assert r.df == 0
    assert math.isnan(r.se) and math.isnan(r.ci_lower) and math.isnan(r.ci_upper)


@pytest.mark.parametrize("scale", [1e-2, 1e2])
def test_likelihood_estimates_follow_the_scale_of_the_effects(scale: float) -> None:
    """Effects multiplied by c (variances by c^2) give tau^2 times c^2: metafor's REML
    tau^2 = 0.3132 and estimate -0.7145 for dat.bcg, rescaled; the ML estimate rescales too
    and solves its score equation sum(w^2 r^2) = sum(w) on the new scale."""
    c = scale
    r = rma(c * Y, c * c * V, method="REML")
    assert r.tau2 == pytest.approx(0.3132 * c * c, abs=5e-5 * c * c)
    assert r.estimate == pytest.approx(-0.7145 * c, abs=5e-5 * c)
    ml = rma(c * Y, c * c * V, method="ML")
    w = 1.0 / (c * c * V + ml.tau2)
    resid = c * Y - float(w @ (c * Y)) / float(w.sum())
    assert float((w * w) @ (resid * resid)) == pytest.approx(float(w.sum()), rel=1e-6)
    assert ml.tau2 > 0.0


def test_generalised_q_of_a_design_without_intercept() -> None:
    """A single non-constant column (regression through the origin) is not the intercept-only
    model: Q(tau^2) = y'Py with the dense P of that column."""
    X = (ABLAT / 10.0)[:, None]
    assert not np.any(X == 1.0)
    for tau2 in (0.0, 0.1, 1.0):
        assert _q_gen(tau2, Y, V, X) == pytest.approx(_dense_q(tau2, Y, V, X)[0], rel=1e-10)


@pytest.mark.parametrize("reml", [True, False])
def test_profile_loglik_with_a_moderator_matches_dense_matrices(reml: bool) -> None:
    """The profiled (restricted) log-likelihood with the latitude moderator, up to the
    documented constant: -0.5 [sum log(v + tau^2) + y'Py (+ log|X'WX|)]."""
    X = np.column_stack([np.ones(Y.size), ABLAT])
    grid = np.array([0.0, 0.05, 0.3, 2.0])
    ll = _loglik_profile(grid, Y, V, X, False, reml)
    for t, got in zip(grid, ll, strict=True):
        W = np.diag(1.0 / (V + t))
        A = X.T @ W @ X
        want = -0.5 * (np.log(V + t).sum() + _dense_q(float(t), Y, V, X)[0])
        if reml:
            want -= 0.5 * np.linalg.slogdet(A)[1]
        assert got == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize(("y", "v"), [
    ([-0.78, -0.26, 0.01, -0.28], [1.8007, 1.0136, 0.0007, 0.0032]),
    ([-0.17, -0.42, 0.21, 0.22], [9.3529, 0.0147, 0.0637, 8.0491]),
])
def test_pm_root_when_newton_from_the_dl_start_overshoots(y: list[float], v: list[float]) -> None:
    """Data on which DL exceeds the Paule-Mandel root and the Newton step from the DL start
    lands below tau^2 = 0 (checked here with dense matrices), so the root must come from the
    bracket's bisection: PM's tau^2 solves Q(tau^2) = k - 1."""
    ya, va = np.array(y), np.array(v)
    X = np.ones((ya.size, 1))
    df = ya.size - 1
    q0 = _dense_q(0.0, ya, va, X)[0]
    w = 1.0 / va
    dl = (q0 - df) / (w.sum() - (w @ w) / w.sum())
    q_dl, dq_dl = _dense_q(dl, ya, va, X)
    assert q_dl < df and dl - (q_dl - df) / dq_dl < 0.0  # the data do what is claimed
    r = rma(ya, va, method="PM")
    assert 0.0 < r.tau2 < dl
    assert _dense_q(r.tau2, ya, va, X)[0] == pytest.approx(df, rel=1e-9)


@pytest.mark.parametrize(("method", "mods"), [("ML", None), ("REML", ABLAT)])
def test_bounded_search_when_fisher_scoring_never_converges(
    monkeypatch: pytest.MonkeyPatch, method: str, mods: np.ndarray | None
) -> None:
    """Should Fisher scoring fail everywhere, each grid peak is refined by bounded search
    instead: the estimate still solves the score equation, written out with dense matrices
    (REML: y'PPy = tr(P); ML: y'PPy = sum(w)), and the fit reports that it did not converge."""
    monkeypatch.setattr(frequentist, "_fisher_scoring",
                        lambda start, *args, **kwargs: (max(start, 0.0), False))
    r = rma(Y, V, mods, method=method)
    assert r.converged is False
    X = np.ones((Y.size, 1)) if mods is None else np.column_stack([np.ones(Y.size), mods])
    W = np.diag(1.0 / (V + r.tau2))
    P = W - W @ X @ np.linalg.inv(X.T @ W @ X) @ X.T @ W
    want = float(np.trace(P)) if method == "REML" else float(np.trace(W))
    assert r.tau2 > 0.0
    assert float(Y @ P @ P @ Y) == pytest.approx(want, rel=1e-7)
