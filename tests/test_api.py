"""The public API (nutrimeta.escalc / rma / bayes_rma / bayes_sampled) and the README example."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nutrimeta as nm
from nutrimeta.models import frequentist
from nutrimeta.models.exact import TauPrior, exact_posterior

README = Path(__file__).parent.parent / "README.md"


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Meta-analysis of your own data"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs() -> None:
    code = _readme_example()
    assert len(code.strip().splitlines()) <= 12
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    dat, freq, bayes = ns["dat"], ns["freq"], ns["bayes"]
    # MD = m1 - m2 and vi = sd1²/n1 + sd2²/n2, by hand for the first trial
    assert dat["yi"].iloc[0] == pytest.approx(14.2 - 12.9)
    assert dat["vi"].iloc[0] == pytest.approx(3.1**2 / 30 + 3.0**2 / 30)
    ref = frequentist.rma(dat["yi"], dat["vi"], method="REML")
    assert freq.summary()["estimate"].iloc[0] == ref.estimate
    post = exact_posterior(dat["yi"], np.sqrt(dat["vi"]), TauPrior.half_normal(1.0),
                           mu_prior=(0.0, 10.0))
    assert bayes.summary().loc["mu", "mean"] == pytest.approx(post.mu.mean, rel=1e-12)
    pred = bayes.predict().iloc[0]
    assert pred["pi_lower"] < pred["ci_lower"] < pred["estimate"] < pred["ci_upper"] \
        < pred["pi_upper"]
    assert len(ns["fig"].axes) == 1


def test_escalc_measures_match_the_formulas() -> None:
    d = nm.escalc("SMD", [10.0], [2.0], [20], [9.0], [2.0], [20])
    j = 1 - 3 / (4 * 38 - 1)  # Hedges' approximate J; the exact J is within 1e-4 here
    assert d["yi"].iloc[0] == pytest.approx(j * 0.5, rel=1e-4)
    r = nm.escalc("ROM", [10.0], [2.0], [20], [8.0], [2.0], [20])
    assert r["yi"].iloc[0] == pytest.approx(np.log(10 / 8))
    with pytest.raises(ValueError, match="measure"):
        nm.escalc("OR", [1], [1], [1], [1], [1], [1])
    with pytest.raises(KeyError, match="m1"):
        nm.escalc("MD", "m1", "sd1", "n1", "m2", "sd2", "n2", data=pd.DataFrame({"x": [1]}))


def test_rma_methods_and_prediction_interval() -> None:
    y, v = np.array([0.1, 0.5, 0.3, 0.9]), np.array([0.04, 0.05, 0.02, 0.08])
    dl = nm.rma(y, v, method="DL")
    assert dl.fit.method == "DL"
    p = dl.predict().iloc[0]
    assert p["pi_lower"] <= p["ci_lower"] and p["pi_upper"] >= p["ci_upper"]


def test_bayes_rma_tau_prior_by_name() -> None:
    y, v = [0.1, 0.5, 0.3], [0.04, 0.05, 0.02]
    a = nm.bayes_rma(y, v, tau_prior="half_cauchy", tau_scale=0.5)
    b = nm.bayes_rma(y, v, tau_prior="half_normal", tau_scale=0.5)
    assert a.summary().loc["tau", "mean"] != b.summary().loc["tau", "mean"]
    assert 0.5 < a.prob(0.0) <= 1.0
    with pytest.raises(ValueError, match="tau_prior"):
        nm.bayes_rma(y, v, tau_prior="uniform")


@pytest.mark.slow
def test_sampled_model_agrees_with_exact() -> None:
    y, v = [0.1, 0.5, 0.3, 0.9, 0.2], [0.04, 0.05, 0.02, 0.08, 0.03]
    exact = nm.bayes_rma(y, v, tau_scale=0.5).summary()
    sampled = nm.bayes_sampled(y, v, tau_scale=0.5, seed=1)
    assert sampled.diagnostics["passed"]
    s = sampled.summary()
    assert abs(s.loc["mu", "mean"] - exact.loc["mu", "mean"]) < 0.05 * exact.loc["mu", "sd"] * 4
    assert s.loc["mu", "sd"] == pytest.approx(exact.loc["mu", "sd"], rel=0.1)
