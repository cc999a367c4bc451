"""``rma`` against metafor's published reference grid as pinned by PyMARE.

The data and expected values in ``fixtures/pymare_metafor_reference.json`` are copied from
PyMARE 0.0.13 (github.com/neurostuff/PyMARE, MIT licence): the data from
``pymare/tests/data/metafor_small_sample.csv``, the expected values from
``pymare/tests/data/metafor_reference.json`` (``rma.uni(y, v, mods, method, test)`` and
``confint(fit, control = list(tol = 1e-12))`` in metafor 4.6.0 / R 4.4.1). Four designs
(k = 5, 5, 10, 20) x three models (intercept only, one, two moderators) x the estimators
shared with metafor (FE/EE, DL, HE, ML, REML) x Wald (``test = "z"``) or Knapp-Hartung
(``test = "knha"``) inference: 120 cases. The ``test = "adhoc"`` cases are not copied (no
such option here). PyMARE is not needed to run these tests.

Closed-form estimators agree with metafor to rounding error. ML and REML are iterated in
both programs and metafor stops once tau^2 changes by less than 1e-5, so those cases are
compared at that precision. Two cells have a likelihood with two peaks:

* ``unequal_k5`` (intercept only, REML): Fisher scoring from the DL value stops at the lower
  peak (tau^2 = 0.195); metafor and PyMARE report the global maximum (3.054), as does
  :func:`rma` now;
* ``extreme_k10`` (one moderator, ML): metafor stops at the boundary peak tau^2 = 0, PyMARE
  reports 0.0114 (documented as ``ML_BOUNDARY_CASE`` in PyMARE's
  ``test_metafor_random_effects.py``); the likelihood is higher there, and :func:`rma`
  reports the global maximum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nutrimeta.models.frequentist import _Fit, _loglik_profile, rma

REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "pymare_metafor_reference.json").read_text()
)
MODELS = {"intercept": [], "one": ["mod1"], "two": ["mod1", "mod2"]}
METHOD = {"FE": "EE", "DL": "DL", "HE": "HE", "ML": "ML", "REML": "REML"}
ML_BOUNDARY_CASE = ("extreme_k10", "one", "ML")


def _design(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    d = REFERENCE["data"][case["design"]]
    cols = MODELS[case["model"]]
    X = np.column_stack([d[c] for c in cols]) if cols else None
    return np.asarray(d["y"]), np.asarray(d["v"]), X


def _fit(case: dict):
    y, v, X = _design(case)
    return rma(y, v, X, method=METHOD[case["method"]], knha=case["test"] == "knha")


def _case_id(case: dict) -> str:
    return "-".join(case[k] for k in ("design", "model", "method", "test"))


def test_reference_grid_is_complete() -> None:
    cases = REFERENCE["cases"]
    assert len(cases) == 120
    assert {c["method"] for c in cases} == set(METHOD)
    assert {len(REFERENCE["data"][c["design"]]["y"]) for c in cases} == {5, 10, 20}


@pytest.mark.parametrize(
    "case",
    [c for c in REFERENCE["cases"] if (c["design"], c["model"], c["method"]) != ML_BOUNDARY_CASE],
    ids=_case_id,
)
def test_rma_matches_metafor(case: dict) -> None:
    r = _fit(case)
    profiled = case["method"] in ("ML", "REML")
    # metafor iterates ML/REML until tau^2 changes by < 1e-5; closed forms to rounding error
    tol = {"rtol": 3e-4, "atol": 2e-5} if profiled else {"rtol": 1e-9, "atol": 1e-12}
    coefs = r.coefficients
    got = {
        "tau2": r.tau2,
        "beta": [c["estimate"] for c in coefs],
        "se": [c["se"] for c in coefs],
        "pval": [c["p_value"] for c in coefs],
        "ci_lb": [c["ci_lower"] for c in coefs],
        "ci_ub": [c["ci_upper"] for c in coefs],
        "I2": r.i2,
        "H2": r.h2,
    }
    for key, value in got.items():
        np.testing.assert_allclose(value, case[key], **tol, err_msg=key)
    # Q and the Q-profile interval do not depend on the tau^2 estimate: rounding error only
    np.testing.assert_allclose([r.Q, r.Q_p], [case["QE"], case["QEp"]], rtol=1e-9)
    if case["tau2_ci_lb"] is not None:
        np.testing.assert_allclose(
            r.tau2_ci, [case["tau2_ci_lb"], case["tau2_ci_ub"]], rtol=1e-9, atol=1e-12
        )
    assert r.df == case["dof"]


def test_unequal_k5_reml_finds_the_global_maximum() -> None:
    case = next(
        c for c in REFERENCE["cases"]
        if (c["design"], c["model"], c["method"], c["test"])
        == ("unequal_k5", "intercept", "REML", "z")
    )
    y, v, _ = _design(case)
    r = rma(y, v, method="REML")
    assert r.converged
    assert r.tau2 == pytest.approx(3.054, abs=5e-4)
    assert r.estimate == pytest.approx(0.185, abs=5e-4)
    assert r.se == pytest.approx(0.888, abs=5e-4)
    # two peaks: the lower one (where scoring from the DL start stops) is 0.18 lower
    X = np.ones((y.size, 1))
    ll = _loglik_profile(np.array([0.195, r.tau2]), y, v, X, True, True)
    assert ll[1] - ll[0] == pytest.approx(-6.474 + 6.656, abs=2e-3)


def test_ml_boundary_case_is_the_global_maximum() -> None:
    case = next(
        c for c in REFERENCE["cases"]
        if (c["design"], c["model"], c["method"]) == ML_BOUNDARY_CASE and c["test"] == "z"
    )
    assert case["tau2"] == 0  # metafor's answer: the boundary peak
    y, v, X = _design(case)
    r = rma(y, v, X, method="ML")
    assert r.tau2 == pytest.approx(0.0114, abs=5e-5)  # PyMARE's value
    Xd = np.column_stack([np.ones(y.size), X])
    ll = _loglik_profile(np.array([0.0, r.tau2]), y, v, Xd, False, False)
    assert ll[1] > ll[0] + 0.25
    # an interior maximum: the ML score |Py|^2 - sum(w) vanishes there
    pyy, sw, _ = _Fit(r.tau2, y, v, Xd, False).score_terms()
    assert pyy - sw == pytest.approx(0.0, abs=1e-6 * sw)
