"""The convergence gate against synthetic traces with known properties, and the retry ladder.

Traces: independent normal draws per chain with chain means offset by ``delta`` have a known
potential scale reduction ``R = sqrt((n - 1) / n + B / (n W))`` (Gelman et al.,
BDA3 §11.4: ``B / n`` the variance of the chain means, ``W`` the within-chain variance); AR(1)
chains with coefficient ``rho`` have ``ESS = N (1 - rho) / (1 + rho)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from nutrimeta.diagnostics import Diagnostics, Thresholds, check, summarise
from nutrimeta.models.bayes import ModelData, Priors
from nutrimeta.models.fitting import Refitter, SamplerSettings, fit_with_retries

CHAINS, DRAWS = 4, 2000


def _tree(x: np.ndarray, diverging: int = 0) -> xr.DataTree:
    rng = np.random.default_rng(1)
    div = np.zeros(x.shape, dtype=bool)
    div.flat[:diverging] = True
    return xr.DataTree.from_dict({
        "/posterior": xr.Dataset({"mu": (("chain", "draw"), x)}),
        "/sample_stats": xr.Dataset({
            "diverging": (("chain", "draw"), div),
            "energy": (("chain", "draw"), rng.normal(size=x.shape)),  # E-BFMI about 2
        }),
    })


def _offset_chains(r_target: float, seed: int = 0) -> np.ndarray:
    """Chains whose classic split R-hat is exactly ``r_target`` (means at +-delta)."""
    n, m = DRAWS // 2, 2 * CHAINS  # split chains
    b_over_n = r_target**2 - (n - 1) / n  # with W = 1
    delta = np.sqrt(b_over_n * (m - 1) / m)  # means +-delta: sample variance m d² / (m - 1)
    rng = np.random.default_rng(seed)
    halves = rng.normal(size=(CHAINS, 2, DRAWS // 2))
    # each split chain standardised exactly: within variance 1, means only from the offsets
    halves = (halves - halves.mean(axis=2, keepdims=True)) / halves.std(axis=2, ddof=1,
                                                                         keepdims=True)
    offsets = np.repeat([delta, -delta], CHAINS // 2)
    return halves.reshape(CHAINS, DRAWS) + offsets[:, None]


def _classic_split_rhat(x: np.ndarray) -> float:
    """BDA3 §11.4 split R-hat, written out."""
    halves = x.reshape(x.shape[0] * 2, -1)
    n = halves.shape[1]
    w = halves.var(axis=1, ddof=1).mean()
    b = n * halves.mean(axis=1).var(ddof=1)
    return float(np.sqrt(((n - 1) / n * w + b / n) / w))


@pytest.mark.parametrize(("r_target", "flagged"), [(1.0, False), (1.03, True), (1.06, True)])
def test_rhat_gate_on_known_traces(r_target, flagged):
    """R-hat between 1.01 and 1.1 is flagged (the gate is 1.01), R-hat 1 is not."""
    x = _offset_chains(r_target)
    assert _classic_split_rhat(x) == pytest.approx(r_target, abs=1e-12)
    d = check(_tree(x))
    # rank-normalised R-hat (max of bulk and folded) sits a little above the classic one
    assert r_target - 1e-3 < d.rhat_max < r_target + 0.015, d.rhat_max
    assert (any("R-hat" in p for p in d.problems)) is flagged, d.problems
    assert d.passed is not flagged


@pytest.mark.parametrize(("rho", "flagged"), [(0.5, False), (0.92, True)])
def test_ess_gate_on_ar1_traces(rho, flagged):
    """ESS = N (1 - rho)/(1 + rho): 2,667 passes, 333 is flagged (limit 400)."""
    rng = np.random.default_rng(2)
    x = np.zeros((CHAINS, DRAWS))
    e = rng.normal(size=(CHAINS, DRAWS)) * np.sqrt(1 - rho**2)
    x[:, 0] = rng.normal(size=CHAINS)
    for t in range(1, DRAWS):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    d = check(_tree(x))
    expected = CHAINS * DRAWS * (1 - rho) / (1 + rho)
    assert 0.7 * expected < d.ess_bulk_min < 1.3 * expected, (d.ess_bulk_min, expected)
    assert any("ESS" in p for p in d.problems) is flagged


def test_one_divergence_fails_the_gate():
    d = check(_tree(np.random.default_rng(3).normal(size=(CHAINS, DRAWS)), diverging=1))
    assert d.divergences == 1 and not d.passed
    assert d.problems == [f"1 divergent transitions of {CHAINS * DRAWS} draws (allowed 0)"]
    assert Thresholds().rhat_max == 1.01 and Thresholds().divergences_max == 0


def test_retry_ladder_escalates_and_records_every_attempt():
    """Failing checks walk the ladder: own settings, longer adaptation at 0.99, alternative
    parameterisation; each attempt is recorded, the last fit is returned."""
    data = ModelData.from_arrays([0.2, -0.1, 0.5], [0.3, 0.2, 0.4],
                                 categories=["deficient", "deficient", "replete"])
    sampler = SamplerSettings(chains=2, draws=50, tune=50, cores=1, target_accept=0.9)
    refitter = Refitter(data, Priors(), "meta_regression_category", sampler=sampler)

    def never(dt: xr.DataTree) -> Diagnostics:
        return Diagnostics(1.5, 1.0, 1.0, 0, 1.0, passed=False, problems=["forced"])

    dt, diag, attempts = fit_with_retries(refitter, seed=1, check=never)
    assert not diag.passed and len(attempts) == 3
    assert [a["parameterisation"] for a in attempts] == ["default", "default", "noncentred"]
    assert attempts[1]["sampler"]["tune"] == 200 and attempts[1]["sampler"]["draws"] == 100
    assert attempts[1]["sampler"]["target_accept"] == 0.99
    assert attempts[2]["sampler"] == attempts[1]["sampler"]
    assert dt.attrs["sampling_attempts"] == attempts
    assert dt.attrs["parameterisation"] == "noncentred"
    assert dt["posterior"].sizes["draw"] == 100 and "effect_category_z" in dt["posterior"]


def test_check_names_the_worst_element_of_each_variable():
    """Per variable, the worst element is named (with its coordinates) and its value given;
    constant elements are skipped; E-BFMI is computed per chain as sum(dE²) / sum((E - Ē)²)
    (Betancourt 2016) and flagged in the chain that has it; ``var_names`` limits the check."""
    rng = np.random.default_rng(5)
    good = rng.normal(size=(CHAINS, DRAWS))
    theta = rng.normal(size=(CHAINS, DRAWS, 3))
    theta[..., 1] = _offset_chains(1.05, seed=6)  # only theta[B] mixes badly
    grid = rng.normal(size=(CHAINS, DRAWS, 2, 2))
    grid[..., 1, 0] = _offset_chains(1.03, seed=7)
    energy = rng.normal(size=(CHAINS, DRAWS))
    energy[2] = np.cumsum(energy[2])  # a random walk: tiny E-BFMI in chain 2 only
    dt = xr.DataTree.from_dict({
        "/posterior": xr.Dataset(
            {"mu": (("chain", "draw"), good),
             "theta": (("chain", "draw", "study"), theta),
             "grid": (("chain", "draw", "row", "col"), grid),
             "fixed": (("chain", "draw", "study"), np.zeros((CHAINS, DRAWS, 3)))},
            coords={"study": ["A", "B", "C"], "row": ["r1", "r2"]}),
        "/sample_stats": xr.Dataset({"energy": (("chain", "draw"), energy),
                                     "diverging": (("chain", "draw"),
                                                   np.zeros((CHAINS, DRAWS), bool))}),
    })
    d = check(dt)
    rhat = {p.split(" for ")[1]: float(p.split()[1]) for p in d.problems if "R-hat" in p}
    assert set(rhat) == {"theta[B]", "grid[r2, 0]"}, d.problems
    assert 1.049 < rhat["theta[B]"] < 1.065
    assert d.rhat_max == pytest.approx(max(rhat.values()), abs=1e-3)
    de = np.diff(energy, axis=1)
    expected = (de**2).sum(axis=1) / ((energy - energy.mean(axis=1, keepdims=True)) ** 2).sum(
        axis=1)
    np.testing.assert_allclose(d.ebfmi, expected, rtol=1e-6)
    assert [p for p in d.problems if "E-BFMI" in p] == [
        f"E-BFMI {expected[2]:.2f} < 0.3 in chain 2"]
    assert d.ebfmi_min == pytest.approx(expected[2])
    only_mu = check(dt, var_names=["mu"])
    assert not any("R-hat" in p for p in only_mu.problems)
    assert only_mu.rhat_max < 1.01 and only_mu.ess_bulk_min > 3000
    lenient = check(dt, Thresholds(rhat_max=1.2, ess_bulk_min=0, ess_tail_min=0, ebfmi_min=0))
    assert lenient.passed, lenient.problems


def test_summarise_matches_numpy_on_a_synthetic_trace():
    """Mean, median, sd, 2.5/97.5% quantiles per element (numpy), MCSE of the mean close to
    sd / sqrt(N) for independent draws; the bundle's diagnostics fields."""
    rng = np.random.default_rng(9)
    theta = rng.normal([0.0, 5.0], [1.0, 2.0], size=(CHAINS, DRAWS, 2))
    dt = xr.DataTree.from_dict({"/posterior": xr.Dataset(
        {"theta": (("chain", "draw", "study"), theta)}, coords={"study": ["A", "B"]})})
    s = summarise(dt)
    assert set(s) == {"theta[A]", "theta[B]"}
    for j, name in enumerate(("theta[A]", "theta[B]")):
        x = theta[..., j].ravel()
        assert s[name]["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert s[name]["median"] == pytest.approx(np.median(x), rel=1e-12)
        assert s[name]["sd"] == pytest.approx(x.std(ddof=1), rel=1e-3)
        assert s[name]["q025"] == pytest.approx(np.quantile(x, 0.025), rel=1e-12)
        assert s[name]["q975"] == pytest.approx(np.quantile(x, 0.975), rel=1e-12)
        assert s[name]["mcse_mean"] == pytest.approx(x.std() / np.sqrt(x.size), rel=0.15)
    d = check(_tree(rng.normal(size=(CHAINS, DRAWS))))
    assert d.to_dict() == {"rhat_max": d.rhat_max, "ess_bulk_min": d.ess_bulk_min,
                           "ess_tail_min": d.ess_tail_min, "divergences": 0,
                           "ebfmi_min": d.ebfmi_min, "passed": True, "problems": []}


def _ar1(rho: float, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros((CHAINS, DRAWS))
    e = rng.normal(size=(CHAINS, DRAWS)) * np.sqrt(1 - rho**2)
    x[:, 0] = rng.normal(size=CHAINS)
    for t in range(1, DRAWS):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    return x


def test_problems_name_the_statistic_the_limit_and_the_worst_variable():
    """Worst values are taken over variables and elements: the smallest ESS is the AR(1)
    element's (rho = 0.95, ESS about 205), not the independent ones'; messages name the
    statistic, the limit and the element."""
    rng = np.random.default_rng(12)
    vec = rng.normal(size=(CHAINS, DRAWS, 3))
    vec[..., 2] = _ar1(0.95, rng)
    vec[..., 0] = 1.5  # a constant element of a varying vector is skipped
    dt = xr.DataTree.from_dict({
        "/posterior": xr.Dataset({"fixed": (("chain", "draw"), np.ones((CHAINS, DRAWS))),
                                  "mu": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS))),
                                  "vec": (("chain", "draw", "k"), vec)}),
        "/sample_stats": xr.Dataset({"energy": (("chain", "draw"),
                                                rng.normal(size=(CHAINS, DRAWS)))}),
    })
    d = check(dt)
    expected_ess = CHAINS * DRAWS * 0.05 / 1.95
    assert 0.6 * expected_ess < d.ess_bulk_min < 1.4 * expected_ess
    assert isinstance(d.ess_tail_min, float) and d.ess_tail_min < 1000  # iid: about 8,000
    assert d.divergences == 0  # no ``diverging`` statistic recorded: none counted
    assert d.problems[0] == f"R-hat {d.rhat_max:.3f} > 1.01 for vec[2]"
    bulk = [p for p in d.problems if p.startswith("bulk ESS")]
    assert bulk == [f"bulk ESS {d.ess_bulk_min:.0f} < 400 for vec[2]"]
    assert not any("vec[0]" in p or "fixed" in p for p in d.problems)


def test_chains_that_disagree_in_scale_fail_on_tail_ess():
    """Equal centres but chain SDs 0.5 to 3: bulk ESS stays high, tail ESS collapses (the
    tails come from one chain), so the tail limit is what flags it."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(CHAINS, DRAWS)) * np.array([0.5, 1.0, 1.5, 3.0])[:, None]
    d = check(_tree(x))
    assert d.ess_bulk_min > 2000 and d.ess_tail_min < 100
    assert f"tail ESS {d.ess_tail_min:.0f} < 400 for mu" in d.problems
    assert not any(p.startswith("bulk ESS") for p in d.problems)


def test_limits_are_inclusive():
    """A value equal to its limit passes (R-hat <= max, ESS >= min, E-BFMI >= min)."""
    d = check(_tree(_offset_chains(1.03)))
    at = Thresholds(rhat_max=d.rhat_max, ess_bulk_min=d.ess_bulk_min,
                    ess_tail_min=d.ess_tail_min, ebfmi_min=d.ebfmi_min)
    assert check(_tree(_offset_chains(1.03)), at).passed


def test_without_energy_e_bfmi_is_reported_missing():
    """A fit without the ``energy`` statistic cannot show E-BFMI and does not pass silently."""
    rng = np.random.default_rng(14)
    dt = xr.DataTree.from_dict({
        "/posterior": xr.Dataset({"mu": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS)))}),
        "/sample_stats": xr.Dataset({"lp": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS)))}),
    })
    d = check(dt)
    assert d.divergences == 0 and np.isnan(d.ebfmi_min)
    assert d.problems == ["E-BFMI nan < 0.3 in chain 0"]


def test_constant_elements_raise_no_numpy_warnings():
    import warnings

    rng = np.random.default_rng(15)
    theta = rng.normal(size=(CHAINS, DRAWS, 2))
    theta[..., 1] = 0.0
    dt = _tree(rng.normal(size=(CHAINS, DRAWS)))
    dt["posterior"] = xr.DataTree(dt["posterior"].to_dataset().assign(
        theta=(("chain", "draw", "k"), theta)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert check(dt).passed


def test_undefined_statistic_of_a_varying_element_is_the_worst():
    """NaN R-hat or ESS of an element that varies counts as infinitely bad; of a constant
    element (masked out) it is ignored."""
    from nutrimeta.diagnostics import _worst

    stat = xr.Dataset({"a": (("k",), [1.2, np.nan, 1.1])})
    varying = {"a": xr.DataArray([True, True, True], dims="k")}
    assert _worst(stat, varying, largest=True) == (np.inf, {"a": (np.inf, "a[1]")})
    assert _worst(stat, varying, largest=False) == (0.0, {"a": (0.0, "a[1]")})
    masked = {"a": xr.DataArray([True, False, True], dims="k")}
    assert _worst(stat, masked, largest=True) == (1.2, {"a": (1.2, "a[0]")})
    assert _worst(stat, masked, largest=False) == (1.1, {"a": (1.1, "a[2]")})


def test_summarise_one_chain_and_chosen_variables():
    rng = np.random.default_rng(16)
    dt = xr.DataTree.from_dict({"/posterior": xr.Dataset(
        {"a": (("chain", "draw"), rng.normal(size=(1, 500))),
         "b": (("chain", "draw", "k"), rng.normal(size=(1, 500, 2)))})})
    s = summarise(dt, var_names=["b"])
    assert set(s) == {"b[0]", "b[1]"}
    x = dt["posterior"]["b"].values[0, :, 1]
    assert s["b[1]"]["mean"] == pytest.approx(x.mean(), rel=1e-12)
