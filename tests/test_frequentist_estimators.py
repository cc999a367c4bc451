"""Estimator details of ``rma``: O(k) algebra against dense matrices, equal-effects I^2/H^2,
SE(tau^2) of every estimator (metafor's formulas, evaluated here with explicit matrices)."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from nutrimeta.models.frequentist import _Fit, rma
from nutrimeta.reference_data import bcg_data


def _dense_p(v: np.ndarray, X: np.ndarray) -> np.ndarray:
    """metafor's ``P = W - W X (X'WX)^-1 X'W`` with explicit k x k matrices."""
    W = np.diag(1.0 / v)
    return W - W @ X @ np.linalg.inv(X.T @ W @ X) @ X.T @ W


@pytest.fixture(scope="module")
def meta_regression() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    k = 23
    X = np.column_stack([np.ones(k), rng.normal(size=k), rng.uniform(size=k)])
    v = rng.uniform(0.02, 0.6, k)
    y = X @ np.array([0.2, 0.3, -0.5]) + rng.normal(0, 0.4, k) + rng.normal(0, np.sqrt(v))
    return y, v, X


@pytest.mark.parametrize("tau2", [0.0, 0.07, 1.3])
@pytest.mark.parametrize("columns", [1, 3])
def test_traces_and_q_match_dense_matrices(meta_regression, tau2: float, columns: int) -> None:
    y, v, X = meta_regression
    Xc = X[:, :columns]
    P = _dense_p(v + tau2, Xc)
    f = _Fit(tau2, y, v, Xc, columns == 1)
    trp, trpp = f.traces(Xc)
    assert trp == pytest.approx(np.trace(P), rel=1e-12)
    assert trpp == pytest.approx(np.sum(P * P.T), rel=1e-12)
    assert f.rss == pytest.approx(y @ P @ y, rel=1e-12)
    pyy, _, _ = f.score_terms()
    assert pyy == pytest.approx(y @ P @ P @ y, rel=1e-12)


def test_tau2_standard_errors_follow_metafor(meta_regression) -> None:
    y, v, X = meta_regression
    mods = X[:, 1:]
    k, p = X.shape
    # REML: sqrt(2 / sum(P * P)) at the estimate; ML: sqrt(2 / sum(w^2))
    r = rma(y, v, mods, method="REML")
    P = _dense_p(v + r.tau2, X)
    assert r.tau2_se == pytest.approx(math.sqrt(2.0 / np.sum(P * P)), rel=1e-10)
    r = rma(y, v, mods, method="ML")
    assert r.tau2_se == pytest.approx(math.sqrt(2.0 / np.sum((v + r.tau2) ** -2.0)), rel=1e-10)
    # DL: sqrt(2 tr(P V* P V*)) / tr(P), P at tau^2 = 0 and V* = diag(v + tau^2)
    r = rma(y, v, mods, method="DL")
    P0 = _dense_p(v, X)
    PV = P0 @ np.diag(v + r.tau2)
    assert r.tau2_se == pytest.approx(math.sqrt(2.0 * np.trace(PV @ PV)) / np.trace(P0), rel=1e-10)
    # PM: sqrt(2 k^2 / (k - p)) / sum(w), w = 1/(v + tau^2) (metafor's rma.uni)
    r = rma(y, v, mods, method="PM")
    assert r.tau2 > 0
    expected = math.sqrt(2.0 * k**2 / (k - p)) / np.sum(1.0 / (v + r.tau2))
    assert r.tau2_se == pytest.approx(expected, rel=1e-12)
    assert math.isnan(rma(y, v, mods, method="EE").tau2_se)


def test_equal_effects_heterogeneity_is_q_based() -> None:
    bcg = bcg_data()
    y, v = bcg["yi"].to_numpy(), bcg["vi"].to_numpy()
    w = 1.0 / v
    q = float(np.sum(w * (y - np.sum(w * y) / np.sum(w)) ** 2))  # Cochran's Q by hand
    r = rma(y, v, method="EE")
    q_stat = r.Q
    assert q_stat == pytest.approx(q, rel=1e-12)
    assert q_stat == pytest.approx(152.2330, abs=5e-4)  # metafor's printout for dat.bcg
    assert r.i2 == pytest.approx(100.0 * (q - 12) / q, rel=1e-12)  # 92.12 %
    assert r.h2 == pytest.approx(q / 12, rel=1e-12)  # 12.69
    assert r.tau2 == 0.0
    # below its df Q gives I^2 = 0 (truncated) and H^2 = Q / df < 1
    r = rma([0.10, 0.11, 0.09, 0.10], np.full(4, 0.04), method="EE")
    assert r.i2 == 0.0
    assert r.h2 == pytest.approx(r.Q / 3, rel=1e-12) and r.h2 < 1


def test_tau2_interval_on_first_access_and_in_dict() -> None:
    bcg = bcg_data()
    r = rma(bcg["yi"], bcg["vi"])
    assert "tau2_ci" not in r.__dict__  # not computed by the fit itself
    d = r.to_dict()
    assert d["tau2_ci"] == pytest.approx([0.1197, 1.1115], abs=5e-5)  # metafor confint()
    keys = list(d)
    assert keys[keys.index("tau2_se") + 1] == "tau2_ci"
    json.dumps(d)
    # picklable (e.g. returned from a worker process), interval included
    again = pickle.loads(pickle.dumps(rma(bcg["yi"], bcg["vi"])))
    assert again.tau2_ci == r.tau2_ci
    off = rma(bcg["yi"], bcg["vi"], tau2_ci=False)
    assert all(math.isnan(x) for x in off.tau2_ci)
    assert off.tau2 == r.tau2


def test_hedges_estimator_by_hand() -> None:
    bcg = bcg_data()
    y, v = bcg["yi"].to_numpy(), bcg["vi"].to_numpy()
    k = y.size
    # HE: sum of squared OLS residuals minus its expectation under tau^2 = 0, over k - 1
    expected = (np.sum((y - y.mean()) ** 2) - np.sum(v) * (k - 1) / k) / (k - 1)
    assert rma(y, v, method="HE").tau2 == pytest.approx(max(expected, 0.0), rel=1e-12)


def _dense_loglik(t2: float, y: np.ndarray, v: np.ndarray, reml: bool) -> float:
    """Profiled (restricted) log-likelihood of the intercept-only model, up to a constant."""
    V = v + t2
    P = _dense_p(V, np.ones((y.size, 1)))
    out = -0.5 * (np.sum(np.log(V)) + y @ P @ y)
    return out - 0.5 * math.log(np.sum(1.0 / V)) if reml else out


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_likelihood_estimate_is_the_global_maximum_on_random_data(method: str) -> None:
    """The estimate beats a fine scan of the profiled likelihood (dense-matrix reference)."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        k = int(rng.integers(3, 9))
        v = np.exp(rng.uniform(-4, 2, k))
        y = rng.standard_t(2, k) * 2.0
        r = rma(y, v, method=method)
        grid = np.concatenate([[0.0], np.geomspace(1e-6, 1e3, 2000)])
        scan = max(_dense_loglik(t, y, v, method == "REML") for t in grid)
        assert _dense_loglik(r.tau2, y, v, method == "REML") >= scan - 1e-9


@pytest.mark.parametrize("columns", [1, 3])
def test_hedges_estimator_and_se_match_dense_matrices(meta_regression, columns: int) -> None:
    """HE (metafor's rma.uni): tau^2 = (y'Py - tr(PV)) / (k - p) with the OLS projection
    P = I - X(X'X)^-1 X', truncated at 0, and SE = sqrt(2 tr(PVPV) + 4 tau^2 tr(PV)
    + 2 tau^4 (k - p)) / (k - p), here with explicit k x k matrices."""
    y, v, X = meta_regression
    Xc = X[:, :columns]
    k, p = Xc.shape
    P = np.eye(k) - Xc @ np.linalg.inv(Xc.T @ Xc) @ Xc.T
    PV = P @ np.diag(v)
    tau2 = max(0.0, (y @ P @ y - np.trace(PV)) / (k - p))
    assert tau2 > 0
    se = math.sqrt(2 * np.trace(PV @ PV) + 4 * tau2 * np.trace(PV) + 2 * tau2**2 * (k - p)) / (
        k - p)
    r = rma(y, v, Xc[:, 1:] if columns > 1 else None, method="HE")
    assert r.tau2 == pytest.approx(tau2, rel=1e-12)
    assert r.tau2_se == pytest.approx(se, rel=1e-12)
    # homogeneous estimates: the moment estimate is negative and truncated at 0
    flat = rma(np.full(k, 0.3) + 1e-3 * np.arange(k), v, Xc[:, 1:] if columns > 1 else None,
               method="HE")
    assert flat.tau2 == 0.0
    P_se = math.sqrt(2 * np.trace(PV @ PV)) / (k - p)
    assert flat.tau2_se == pytest.approx(P_se, rel=1e-12)
