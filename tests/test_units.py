"""Tests for nutrimeta.units: label normalisation and mass/molar/activity conversions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nutrimeta.units import (
    INSULIN_PMOL_PER_UIU,
    INSULIN_PMOL_PER_UIU_ALT,
    MOLAR_MASS_G_PER_MOL,
    UnitConversionError,
    can_convert,
    conversion_factor,
    convert,
    harmonise_unit_label,
    resolve_analyte,
)

# Independent molar masses: chemical formulas (PubChem: testosterone C19H28O2, CID 6013;
# D-glucose C6H12O6, CID 5793; thyroxine C15H11I4NO4, CID 5819; triiodothyronine
# C15H12I3NO4, CID 5920) with the CIAAW Standard Atomic Weights 2021
# (https://www.ciaaw.org/atomic-weights.htm): intervals for H, C, N, O and Mg, value ± its
# uncertainty for Zn 65.38(2), Se 78.971(8) and I 126.90447(3).
ATOMIC_WEIGHT_RANGE = {
    "H": (1.00784, 1.00811), "C": (12.0096, 12.0116), "N": (14.00643, 14.00728),
    "O": (15.99903, 15.99977), "Mg": (24.304, 24.307), "Zn": (65.36, 65.40),
    "Se": (78.963, 78.979), "I": (126.90444, 126.90450),
}
FORMULA = {
    "testosterone": {"C": 19, "H": 28, "O": 2}, "glucose": {"C": 6, "H": 12, "O": 6},
    "thyroxine": {"C": 15, "H": 11, "I": 4, "N": 1, "O": 4},
    "triiodothyronine": {"C": 15, "H": 12, "I": 3, "N": 1, "O": 4},
    "zinc": {"Zn": 1}, "selenium": {"Se": 1}, "magnesium": {"Mg": 1},
}


def molar_mass_range(analyte: str) -> tuple[float, float]:
    """Smallest and largest molar mass the atomic-weight ranges allow (g/mol)."""
    f = FORMULA[analyte]
    return (sum(n * ATOMIC_WEIGHT_RANGE[e][0] for e, n in f.items()),
            sum(n * ATOMIC_WEIGHT_RANGE[e][1] for e, n in f.items()))


M = {a: sum(molar_mass_range(a)) / 2 for a in FORMULA}
M_T, M_ZN, M_SE, M_MG = M["testosterone"], M["zinc"], M["selenium"], M["magnesium"]
M_GLU, M_T4, M_T3 = M["glucose"], M["thyroxine"], M["triiodothyronine"]
#: relative tolerance of a factor built from the midpoint molar masses (largest half-width)
REL = max((hi - lo) / (hi + lo) for lo, hi in map(molar_mass_range, FORMULA)) * 1.01


@pytest.fixture(autouse=True)
def _fresh_factor_cache():
    """Each test computes its factors afresh rather than reading another test's cached ones."""
    conversion_factor.cache_clear()
    yield
    conversion_factor.cache_clear()


# Every pair the pipeline must support: (from, to, analyte).
SUPPORTED_PAIRS = [
    ("ng/dL", "nmol/L", "total_testosterone"),
    ("ng/mL", "nmol/L", "total_testosterone"),
    ("ng/dL", "ng/mL", "testosterone"),
    ("pg/mL", "pmol/L", "free_testosterone"),
    ("ug/dL", "umol/L", "zinc"),
    ("ug/mL", "umol/L", "zinc"),
    ("mg/L", "umol/L", "serum_zinc"),
    ("ug/L", "umol/L", "selenium"),
    ("ng/mL", "umol/L", "serum_selenium"),
    ("ug/L", "ng/mL", "selenium"),
    ("mg/dL", "mmol/L", "magnesium"),
    ("mEq/L", "mmol/L", "serum_magnesium"),
    ("mEq/L", "mg/dL", "magnesium"),
    ("uIU/mL", "pmol/L", "fasting_insulin"),
    ("mU/L", "pmol/L", "insulin"),
    ("uU/mL", "pmol/L", "insulin"),
    ("mg/dL", "mmol/L", "fasting_glucose"),
    ("ng/dL", "pmol/L", "ft4"),
    ("pg/mL", "pmol/L", "ft3"),
    ("ug/dL", "nmol/L", "tt4"),
    ("ng/dL", "nmol/L", "tt3"),
    ("mIU/L", "uIU/mL", "tsh"),
    ("kIU/L", "IU/mL", "tpo_ab"),
    ("U/mL", "IU/mL", "tg_ab"),
]


@pytest.mark.parametrize(
    ("printed", "canonical"),
    [
        ("µg/dL", "ug/dL"),  # micro sign U+00B5
        ("μg/dL", "ug/dL"),  # greek mu U+03BC
        ("ug/dl", "ug/dL"),
        ("mcg/dL", "ug/dL"),
        ("μIU/mL", "uIU/mL"),
        ("uIU/ml", "uIU/mL"),
        ("µU/mL", "uIU/mL"),
        ("uU/mL", "uIU/mL"),
        ("mU/L", "mIU/L"),
        ("ng/ml", "ng/mL"),
        ("NMOL/L", "nmol/L"),
        ("nmol l-1", "nmol/L"),
        ("pmol·L⁻¹", "pmol/L"),
        ("mEq/l", "mEq/L"),
        ("U/mL", "IU/mL"),
        ("kU/L", "kIU/L"),
        (" mg/dL ", "mg/dL"),
        ("%", "%"),
        ("Index", "index"),
        ("MCG/DL", "ug/dL"),  # upper case throughout
        ("µG/DL", "ug/dL"),
        ("mcmol/L", "umol/L"),
        ("MCMOL/L", "umol/L"),
        ("per  cent", "%"),  # runs of blanks collapse
        ("Per Cent", "%"),
        ("nmol L^-1", "nmol/L"),
        ("ng / mL", "ng/mL"),
        ("mg\t/ dL", "mg/dL"),
    ],
)
def test_harmonise_unit_label(printed: str, canonical: str) -> None:
    assert harmonise_unit_label(printed) == canonical


def test_unknown_label_returned_unchanged() -> None:
    assert harmonise_unit_label("furlongs/fortnight") == "furlongs/fortnight"
    assert harmonise_unit_label(" MCG per dL ") == "MCG per dL"  # stripped only


def test_missing_label_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^unit label is None$"):
        harmonise_unit_label(None)  # type: ignore[arg-type]


def test_resolve_analyte_aliases_and_unknown_names() -> None:
    assert resolve_analyte(" FT4 ") == "thyroxine"
    assert resolve_analyte("Serum_Zinc") == "zinc"
    # a name without an alias passes through normalised, so messages can name it
    assert resolve_analyte("  LDL_Cholesterol ") == "ldl_cholesterol"


def test_conversion_error_names_the_pair_and_the_reason() -> None:
    plain = UnitConversionError("ng/dL", "IU/mL", "testosterone")
    assert str(plain) == "cannot convert 'testosterone' from 'ng/dL' to 'IU/mL'"
    assert (plain.from_unit, plain.to_unit, plain.analyte) == ("ng/dL", "IU/mL", "testosterone")
    detailed = UnitConversionError("a", "b", "zinc", "unknown unit")
    assert str(detailed) == "cannot convert 'zinc' from 'a' to 'b': unknown unit"
    assert isinstance(detailed, ValueError)


# Expected values below are computed by hand from the definitions: mass concentration
# (g/L) / molar mass (g/mol) = mol/L, with 1 dL = 0.1 L; molar masses from the formulas and
# atomic weights above (not from units.py).
@pytest.mark.parametrize(
    ("value", "frm", "to", "analyte", "expected"),
    [
        (100.0, "ng/dL", "nmol/L", "testosterone", 100 * 10 / M_T),
        (5.0, "ng/mL", "nmol/L", "testosterone", 5 * 1000 / M_T),
        (100.0, "pg/mL", "pmol/L", "free_testosterone", 100 * 1000 / M_T),
        (90.0, "µg/dL", "umol/L", "zinc", 90 * 10 / M_ZN),
        (0.9, "mg/L", "umol/L", "zinc", 0.9 * 1000 / M_ZN),
        (0.9, "ug/mL", "umol/L", "zinc", 0.9 * 1000 / M_ZN),
        (80.0, "ug/L", "umol/L", "selenium", 80 / M_SE),
        (80.0, "ng/mL", "umol/L", "selenium", 80 / M_SE),
        (2.0, "mg/dL", "mmol/L", "magnesium", 2 * 10 / M_MG),
        (1.6, "mEq/L", "mmol/L", "magnesium", 0.8),  # divalent: 1 mmol/L = 2 mEq/L
        (1.6, "mEq/L", "mg/dL", "magnesium", 0.8 * M_MG / 10),
        (90.0, "mg/dL", "mmol/L", "glucose", 90 * 10 / M_GLU),
        (1.2, "ng/dL", "pmol/L", "ft4", 1.2 * 10_000 / M_T4),
        (3.0, "pg/mL", "pmol/L", "ft3", 3 * 1000 / M_T3),
        (8.0, "ug/dL", "nmol/L", "tt4", 8 * 10_000 / M_T4),
        (120.0, "ng/dL", "nmol/L", "tt3", 120 * 10 / M_T3),
        (10.0, "uIU/mL", "pmol/L", "insulin", 60.0),
        (10.0, "mU/L", "pmol/L", "fasting_insulin", 60.0),
        (10.0, "µU/mL", "pmol/L", "insulin", 60.0),
        (2.5, "mIU/L", "uIU/mL", "tsh", 2.5),
        (350.0, "kIU/L", "IU/mL", "tpo_ab", 350.0),
        (350.0, "U/mL", "IU/mL", "tpo_ab", 350.0),
        (7.0, "%", "%", "hba1c", 7.0),
        (2.1, "index", "index", "homa_ir", 2.1),
    ],
)
def test_known_conversions(value, frm, to, analyte, expected) -> None:
    assert convert(value, frm, to, analyte) == pytest.approx(expected, rel=REL)


def test_clinical_sanity_factors() -> None:
    # Widely printed laboratory factors (e.g. SI conversion tables): testosterone
    # ng/dL x 0.0347 = nmol/L, glucose mg/dL x 0.0555 = mmol/L, zinc ug/dL x 0.153 = umol/L.
    assert conversion_factor("ng/dL", "nmol/L", "testosterone") == pytest.approx(0.0347, rel=2e-3)
    assert conversion_factor("mg/dL", "mmol/L", "glucose") == pytest.approx(0.0555, rel=2e-3)
    assert conversion_factor("ug/dL", "umol/L", "zinc") == pytest.approx(0.153, rel=2e-3)


def test_insulin_factor_is_named_constant() -> None:
    assert INSULIN_PMOL_PER_UIU == 6.00
    assert INSULIN_PMOL_PER_UIU_ALT == 6.945
    assert conversion_factor("uIU/mL", "pmol/L", "insulin",
                             INSULIN_PMOL_PER_UIU_ALT) == pytest.approx(6.945)


def test_molar_masses_within_published_atomic_weights() -> None:
    """Every molar mass lies in the range its formula and the CIAAW atomic weights allow."""
    assert set(MOLAR_MASS_G_PER_MOL) == set(FORMULA)
    for analyte, mass in MOLAR_MASS_G_PER_MOL.items():
        lo, hi = molar_mass_range(analyte)
        assert lo <= mass <= hi, (analyte, mass, lo, hi)


def test_vectorised() -> None:
    x = np.array([100.0, 200.0, 300.0])
    out = convert(x, "ng/dL", "nmol/L", "testosterone")
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, x * 10 / M_T, rtol=REL)
    assert isinstance(convert(1.0, "ng/dL", "nmol/L", "testosterone"), float)


def test_missing_values_in_an_object_column_become_nan() -> None:
    """A column read with gaps (object dtype holding None) converts with NaN in the gaps."""
    x = np.array([100.0, None], dtype=object)
    out = convert(x, "ng/dL", "nmol/L", "testosterone")
    assert out.dtype == np.float64
    assert out[0] == pytest.approx(100 * 10 / M_T, rel=REL) and np.isnan(out[1])


@pytest.mark.parametrize(
    ("frm", "to", "analyte"),
    [
        ("ng/dL", "IU/mL", "testosterone"),  # mass vs activity
        ("ng/dL", "pmol/L", "tsh"),  # no molar mass for TSH
        ("uIU/mL", "pmol/L", "tsh"),  # the insulin factor is insulin-only
        ("mEq/L", "mmol/L", "selenium"),  # no valence for selenium
        ("%", "mmol/mol", "hba1c"),  # affine, not supported
        ("furlongs/dL", "nmol/L", "testosterone"),  # unknown unit
        ("index", "ratio", "homa_ir"),
    ],
)
def test_inconvertible_pairs_raise(frm: str, to: str, analyte: str) -> None:
    with pytest.raises(UnitConversionError) as exc:
        convert(1.0, frm, to, analyte)
    msg = str(exc.value)
    assert frm in msg and to in msg and analyte in msg
    assert not can_convert(frm, to, analyte)


@pytest.mark.parametrize(("frm", "to", "analyte"), SUPPORTED_PAIRS)
def test_can_convert_supported(frm: str, to: str, analyte: str) -> None:
    assert can_convert(frm, to, analyte)
    assert can_convert(to, frm, analyte)


@settings(max_examples=60, deadline=None)
@given(
    pair=st.sampled_from(SUPPORTED_PAIRS),
    x=st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
def test_round_trip_every_pair(pair: tuple[str, str, str], x: float) -> None:
    """Forward conversion by the independent factor, and back again exactly."""
    frm, to, analyte = pair
    y = convert(x, frm, to, analyte)
    assert y == pytest.approx(x * FACTOR[pair], rel=REL)
    assert convert(y, to, frm, analyte) == pytest.approx(x, rel=1e-12)


#: Independent factor of every supported pair (unit definitions and the molar masses above;
#: insulin 6.00 pmol/L per uIU/mL from Heinemann 2010, doi:10.2337/dc10-0056; magnesium is
#: divalent, 2 mEq = 1 mmol).
FACTOR = dict(zip(SUPPORTED_PAIRS, [
    10 / M_T, 1000 / M_T, 0.01, 1000 / M_T,
    10 / M_ZN, 1000 / M_ZN, 1000 / M_ZN,
    1 / M_SE, 1 / M_SE, 1.0,
    10 / M_MG, 0.5, 0.5 * M_MG / 10,
    6.0, 6.0, 6.0,
    10 / M_GLU, 10_000 / M_T4, 1000 / M_T3, 10_000 / M_T4, 10 / M_T3,
    1.0, 1.0, 1.0,
], strict=True))


@settings(max_examples=40, deadline=None)
@given(x=st.floats(min_value=1e-3, max_value=1e4, allow_nan=False))
def test_chained_conversions_commute(x: float) -> None:
    # mEq/L -> mmol/L -> mg/dL equals the direct mEq/L -> mg/dL conversion.
    via = convert(convert(x, "mEq/L", "mmol/L", "magnesium"), "mmol/L", "mg/dL", "magnesium")
    assert convert(x, "mEq/L", "mg/dL", "magnesium") == pytest.approx(via, rel=1e-12)
    # ng/dL -> ng/mL -> nmol/L equals ng/dL -> nmol/L.
    via = convert(convert(x, "ng/dL", "ng/mL", "testosterone"), "ng/mL", "nmol/L",
                  "testosterone")
    assert convert(x, "ng/dL", "nmol/L", "testosterone") == pytest.approx(via, rel=1e-12)


def test_linear_so_spreads_scale_like_means() -> None:
    f = conversion_factor("ng/dL", "nmol/L", "testosterone")
    assert convert(0.0, "ng/dL", "nmol/L", "testosterone") == 0.0
    assert convert(-50.0, "ng/dL", "nmol/L", "testosterone") == pytest.approx(-50 * f)
    assert math.isclose(convert(350.0, "ng/dL", "nmol/L", "testosterone")
                        - convert(300.0, "ng/dL", "nmol/L", "testosterone"), 50 * f)
