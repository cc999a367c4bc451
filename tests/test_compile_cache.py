"""One compiled model per model structure: rows are padded with weight-0 rows, so data sets
of different sizes, outcomes and prior scales share a compilation, and the padding changes
neither the posterior nor the output."""

from __future__ import annotations

import numpy as np
import pytest

from nutrimeta.models.bayes import ModelData, Priors
from nutrimeta.models.exact import TauPrior, exact_posterior
from nutrimeta.models.fitting import (
    PAD_BLOCK,
    Refitter,
    SamplerSettings,
    Structure,
    compile_cache_info,
    padded_size,
)

SAMPLER = SamplerSettings(chains=4, draws=1000, tune=1000, cores=2)


def _data(y: list[float], se: list[float]) -> ModelData:
    return ModelData.from_arrays(y, se, labels=[f"t{i}" for i in range(len(y))])


def test_padded_size_classes() -> None:
    assert [padded_size(n) for n in (0, 1, 8, 9, 16, 17)] == [8, 8, 8, 16, 16, 24]
    assert PAD_BLOCK == 8


def test_padding_adds_weight_zero_rows_only() -> None:
    d = ModelData.from_arrays([0.1, 0.2], [0.3, 0.4], x=[np.nan, 1.0],
                              categories=["deficient", "replete"])
    p = d.padded(8)
    assert p.n == 8 and p.one_row_per_study and p.labels[:2] == d.labels
    np.testing.assert_array_equal(p.weights, [1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(p.yi[:2], d.yi)
    np.testing.assert_array_equal(p.x[:2], d.x)
    assert np.all(p.sei[2:] == 1.0) and np.all(p.x[2:] == 0.0)
    multi = ModelData.from_arrays([0.1, 0.2, 0.3], [0.3, 0.4, 0.2], study_ids=["a", "a", "b"])
    m = multi.padded(8, studies=8)
    assert m.n_studies == 8 and m.n == 8 and list(m.study_idx[3:]) == [0] * 5
    with pytest.raises(ValueError, match="cannot pad"):
        d.padded(1)


@pytest.fixture(scope="module")
def two_fits() -> tuple[dict[str, int], dict[str, int], dict[str, int], list]:
    """Two data sets of different size and prior scale fitted through one structure, then a
    third with another tau family (a structural change)."""
    a = _data([0.1, 0.4, -0.2], [0.2, 0.3, 0.25])
    b = _data([1.0, 1.4, 0.8, 1.1, 0.9], [0.2, 0.3, 0.25, 0.2, 0.3])
    pa, pb = Priors(mu_sd=1.0, tau_scale=0.5), Priors(mu_sd=3.0, tau_scale=0.4)
    start = compile_cache_info()
    ra = Refitter(a, pa, "random_effects_marginal", sampler=SAMPLER)
    rb = Refitter(b, pb, "random_effects_marginal", sampler=SAMPLER)
    after_two = compile_cache_info()
    fa, fb = ra.fit(seed=3), rb.fit(seed=3)
    rc = Refitter(b, Priors(mu_sd=3.0, tau_family="half_cauchy", tau_scale=0.4),
                  "random_effects_marginal", sampler=SAMPLER)
    after_three = compile_cache_info()
    return start, after_two, after_three, [(a, pa, fa), (b, pb, fb), rc, ra, rb]


def test_same_structure_compiles_once(two_fits) -> None:
    start, after_two, after_three, (_, _, rc, ra, rb) = two_fits
    assert ra.structure == rb.structure and ra.compiled is rb.compiled
    compiled_now = after_two["compiles"] - start["compiles"]
    assert compiled_now <= 1  # 0 when an earlier test compiled this structure already
    assert after_two["hits"] - start["hits"] >= 1
    # a different tau family is another graph: a new compilation
    assert rc.structure != ra.structure and rc.compiled is not ra.compiled
    assert after_three["compiles"] == after_two["compiles"] + 1


def test_shared_compilation_gives_each_data_set_its_own_posterior(two_fits) -> None:
    """Each fit matches its own exact posterior (within 4 Monte Carlo SEs) and carries
    only its own rows."""
    _, _, _, ((a, pa, fa), (b, pb, fb), *_) = two_fits
    for data, priors, dt in ((a, pa, fa), (b, pb, fb)):
        exact = exact_posterior(data.yi, data.sei, TauPrior.half_normal(priors.tau_scale),
                                mu_prior=(0.0, priors.mu_sd))
        mu = dt["posterior"]["mu"].values.ravel()
        ess_mcse = mu.std() / np.sqrt(len(mu) / 4)  # conservative: ESS at least N / 4
        assert abs(mu.mean() - exact.mu.mean) < 4 * ess_mcse
        assert dt["posterior"].sizes["study"] == data.n
        assert list(dt["posterior"]["study"].values) == list(data.labels)
        assert dt["observed_data"].sizes["study"] == data.n
        assert dt.attrs["data_hash"] == data.data_hash()
    assert abs(fa["posterior"]["mu"].mean() - fb["posterior"]["mu"].mean()) > 0.5


def test_structure_key_ignores_data_but_not_graph() -> None:
    a = _data([0.1, 0.4], [0.2, 0.3])
    b = _data([5.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0] * 7)
    base = Structure.of(a, Priors(), "meta_regression_continuous", False, None, "nutpie")
    assert Structure.of(b, Priors(mu_sd=9.0, slope_sd=3.0), "meta_regression_continuous",
                        False, None, "nutpie") == base
    for other in (
        Structure.of(_data([0.0] * 9, [1.0] * 9), Priors(), "meta_regression_continuous",
                     False, None, "nutpie"),
        Structure.of(a, Priors(), "all_evidence", False, None, "nutpie"),
        Structure.of(a, Priors(), "all_evidence", True, None, "nutpie"),
        Structure.of(a, Priors(tau_family="exponential"), "meta_regression_continuous",
                     False, None, "nutpie"),
        Structure.of(a, Priors(), "meta_regression_continuous", False, None, "pymc"),
    ):
        assert other != base
    t3 = Structure.of(a, Priors(tau_family="half_student_t", tau_nu=3.0), "random_effects",
                      False, None, "nutpie")
    t5 = Structure.of(a, Priors(tau_family="half_student_t", tau_nu=5.0), "random_effects",
                      False, None, "nutpie")
    assert t3 != t5


def test_cross_mv_compiles_once_for_every_rho() -> None:
    """The multivariate cross-nutrient model takes rho as data: one compilation serves every
    declared rho, each fit carries its own rho and a rho-free prior group."""
    from nutrimeta.models import cross_mv
    from test_cross_mv import simulate

    data = simulate(np.random.default_rng(5), trials_per_pair=3)
    sampler = SamplerSettings(chains=2, draws=300, tune=300, cores=2, target_accept=0.99)
    before = len(cross_mv._COMPILED_MV)
    fits = {rho: cross_mv.fit_cross_mv(data, cross_mv.CrossPriors(rho=rho), seed=2,
                                       sampler=sampler, prior_draws=500)
            for rho in (0.0, 0.8)}
    assert len(cross_mv._COMPILED_MV) == before + 1
    for rho, dt in fits.items():
        assert float(dt["constant_data"]["rho"]) == rho
        assert dt["posterior"].sizes["outcome"] == len(data.outcome_labels)
    a, b = (fits[r]["posterior"]["slope_global"].values for r in (0.0, 0.8))
    assert not np.array_equal(a, b)  # another likelihood, another chain
    np.testing.assert_array_equal(fits[0.0]["prior"]["slope_global"].values,
                                  fits[0.8]["prior"]["slope_global"].values)
