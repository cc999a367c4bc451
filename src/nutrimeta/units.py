"""Unit harmonisation for reported laboratory values.

Curated tables record units exactly as printed (``ug/dl``, ``µg/dL``, ``mcg/dL``, ``uU/mL``...).
This module normalises those labels and converts values between units with :mod:`pint`, adding
what pint cannot know on its own: the molar mass of each analyte (mass <-> amount of
substance), the insulin activity-to-amount factor, the valence of magnesium (mEq <-> mmol) and
the convention that immunoassay "units" are international units.

All supported conversions are multiplicative, so :func:`convert` works on scalars and numpy
arrays alike and applies equally to means, SDs, SEs and mean differences.

Notes
-----
Caveats that a reader of a pooled estimate should know:

* ``U/mL`` is assumed equal to ``IU/mL``. Antibody assays (TPO-Ab, Tg-Ab) report in IU/mL
  calibrated against WHO reference preparations (NIBSC 66/387 for TPO-Ab, 65/093 for Tg-Ab);
  some kits print ``U/mL`` for the same calibration. Results from different kits are not strictly
  commensurable even in the same unit.
* Insulin ``1 uIU/mL = 6.00 pmol/L`` (:data:`INSULIN_PMOL_PER_UIU`); the older factor 6.945 is
  also in use (:data:`INSULIN_PMOL_PER_UIU_ALT`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pint

__all__ = [
    "ANALYTE_ALIASES",
    "INSULIN_PMOL_PER_UIU",
    "INSULIN_PMOL_PER_UIU_ALT",
    "MOLAR_MASS_G_PER_MOL",
    "UNITLESS",
    "VALENCE",
    "UnitConversionError",
    "can_convert",
    "conversion_factor",
    "convert",
    "harmonise_unit_label",
    "registry",
    "resolve_analyte",
]

#: Molar masses (g/mol) used for mass <-> molar conversions.
MOLAR_MASS_G_PER_MOL: dict[str, float] = {
    # PubChem CID 6013 (testosterone, C19H28O2), computed molecular weight 288.4 g/mol;
    # 288.42 from the standard atomic weights.
    "testosterone": 288.42,
    # IUPAC CIAAW standard atomic weight of zinc, Ar(Zn) = 65.38.
    "zinc": 65.38,
    # IUPAC CIAAW standard atomic weight of selenium, Ar(Se) = 78.971.
    "selenium": 78.971,
    # IUPAC CIAAW conventional atomic weight of magnesium, Ar(Mg) = 24.305.
    "magnesium": 24.305,
    # PubChem CID 5793 (D-glucose, C6H12O6), molecular weight 180.156 g/mol.
    "glucose": 180.156,
    # PubChem CID 5819 (levothyroxine / thyroxine, C15H11I4NO4), molecular weight 776.87 g/mol.
    "thyroxine": 776.87,
    # PubChem CID 5920 (liothyronine / triiodothyronine, C15H12I3NO4), molecular weight
    # 650.97 g/mol.
    "triiodothyronine": 650.97,
}

#: pmol/L of insulin per uIU/mL: the factor recommended by the IFCC/ADA/EASD insulin
#: standardisation work group (Heinemann 2010, doi:10.2337/dc10-0056), 1 uIU/mL = 6.00 pmol/L.
INSULIN_PMOL_PER_UIU: float = 6.00
#: The older factor (1 uIU/mL = 6.945 pmol/L, from 26 IU/mg of the first WHO international
#: standard) still printed by many laboratories; not used unless passed explicitly.
INSULIN_PMOL_PER_UIU_ALT: float = 6.945

#: Charge number of the ions whose concentrations may be printed in equivalents.
VALENCE: dict[str, int] = {"magnesium": 2, "zinc": 2}

#: Labels without a physical unit: converted only to themselves.
UNITLESS: frozenset[str] = frozenset({"ratio", "index", "%"})

#: Analyte names accepted by :func:`convert` (outcome ids and nutrient names) -> canonical.
ANALYTE_ALIASES: dict[str, str] = {
    "testosterone": "testosterone",
    "total_testosterone": "testosterone",
    "free_testosterone": "testosterone",
    "zinc": "zinc",
    "serum_zinc": "zinc",
    "selenium": "selenium",
    "serum_selenium": "selenium",
    "magnesium": "magnesium",
    "serum_magnesium": "magnesium",
    "glucose": "glucose",
    "fasting_glucose": "glucose",
    "insulin": "insulin",
    "fasting_insulin": "insulin",
    "thyroxine": "thyroxine",
    "ft4": "thyroxine",
    "tt4": "thyroxine",
    "free_t4": "thyroxine",
    "total_t4": "thyroxine",
    "t4": "thyroxine",
    "triiodothyronine": "triiodothyronine",
    "ft3": "triiodothyronine",
    "tt3": "triiodothyronine",
    "free_t3": "triiodothyronine",
    "total_t3": "triiodothyronine",
    "t3": "triiodothyronine",
    "tsh": "tsh",
    "tpo_ab": "antibody",
    "tg_ab": "antibody",
    "antibody": "antibody",
    "homa_ir": "homa_ir",
    "hba1c": "hba1c",
    "t3_t4_ratio": "t3_t4_ratio",
}


class UnitConversionError(ValueError):
    """Raised when a value cannot be converted between two units for an analyte."""

    def __init__(self, from_unit: str, to_unit: str, analyte: str, detail: str = "") -> None:
        self.from_unit = from_unit
        self.to_unit = to_unit
        self.analyte = analyte
        msg = f"cannot convert {analyte!r} from {from_unit!r} to {to_unit!r}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """The package's unit registry (also ``nutrimeta.units.ureg``), built on first use: building
    it takes most of a second, which commands that convert nothing should not pay.

    ``IU`` gets its own dimension (biological activity is not an amount of substance); ``Eq``
    (equivalent) gets its own dimension, linked to mol by the valence.
    """
    import pint

    reg = pint.UnitRegistry()
    reg.define("international_unit = [immunoassay_activity] = IU")
    reg.define("equivalent = [charge_equivalent] = Eq")
    return reg


def __getattr__(name: str) -> Any:
    """``ureg``, the registry under its earlier module-level name, built on first access."""
    if name == "ureg":
        return registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_CONC_SUBSTANCE = "[substance] / [length] ** 3"
_CONC_MASS = "[mass] / [length] ** 3"
_CONC_IU = "[immunoassay_activity] / [length] ** 3"
_CONC_EQ = "[charge_equivalent] / [length] ** 3"


def _mass_context(molar_mass: float) -> pint.Context:
    import pint

    ctx = pint.Context(f"molar_mass_{molar_mass}")  # pragma: no mutate (name only labels it)
    mw = registry().Quantity(molar_mass, "g/mol")
    ctx.add_transformation(_CONC_MASS, _CONC_SUBSTANCE, lambda _u, x: x / mw)
    ctx.add_transformation(_CONC_SUBSTANCE, _CONC_MASS, lambda _u, x: x * mw)
    return ctx


def _valence_context(valence: int) -> pint.Context:
    import pint

    ctx = pint.Context(f"valence_{valence}")  # pragma: no mutate (name only labels it)
    eq_per_mol = registry().Quantity(valence, "Eq/mol")
    ctx.add_transformation(_CONC_EQ, _CONC_SUBSTANCE, lambda _u, x: x / eq_per_mol)
    ctx.add_transformation(_CONC_SUBSTANCE, _CONC_EQ, lambda _u, x: x * eq_per_mol)
    return ctx


def _insulin_context(pmol_per_uiu: float) -> pint.Context:
    import pint

    ctx = pint.Context(f"insulin_{pmol_per_uiu}")  # pragma: no mutate (name only labels it)
    # 1 uIU/mL = 1 mIU/L, so "pmol/L per uIU/mL" is pmol per mIU.
    factor = registry().Quantity(pmol_per_uiu, "pmol/mIU")
    ctx.add_transformation(_CONC_IU, _CONC_SUBSTANCE, lambda _u, x: x * factor)
    ctx.add_transformation(_CONC_SUBSTANCE, _CONC_IU, lambda _u, x: x / factor)
    return ctx


# ----------------------------------------------------------------------------- labels

_MICRO = ("µ", "μ")  # micro sign U+00B5, greek mu U+03BC
_MASS = {"g": "g", "kg": "kg", "mg": "mg", "ug": "ug", "ng": "ng", "pg": "pg"}
_SUBSTANCE = {"mol": "mol", "mmol": "mmol", "umol": "umol", "nmol": "nmol", "pmol": "pmol"}
_ACTIVITY = {"iu": "IU", "u": "IU", "miu": "mIU", "mu": "mIU", "uiu": "uIU", "uu": "uIU",
             "kiu": "kIU", "ku": "kIU"}
_EQUIV = {"eq": "Eq", "meq": "mEq", "ueq": "uEq"}
_VOLUME = {"l": "L", "dl": "dL", "ml": "mL", "ul": "uL", "cl": "cL"}
_WORDS = {"ratio": "ratio", "index": "index", "%": "%", "percent": "%", "units": "index"}


def _norm_part(part: str, table: dict[str, str]) -> str | None:
    return table.get(part)


def harmonise_unit_label(s: str) -> str:
    """Normalise a printed unit label to this package's canonical spelling.

    Micro is written ``u`` (``µ``, ``μ`` and ``mcg`` all become ``u``), litres ``L``, and
    immunoassay units ``IU`` (``uU/mL`` -> ``uIU/mL``, ``mU/L`` -> ``mIU/L``, ``U/mL`` ->
    ``IU/mL``: see the module notes for the U = IU caveat). Labels that are not recognised
    are returned stripped but otherwise unchanged, so that :func:`convert` can report them.

    Parameters
    ----------
    s : str
        Unit as printed, e.g. ``'µg/dL'``, ``'ug/dl'``, ``'mcg/dL'``, ``'μIU/mL'``,
        ``'nmol l-1'``.

    Returns
    -------
    str
        Canonical label, e.g. ``'ug/dL'``, ``'uIU/mL'``, ``'nmol/L'``.
    """
    if s is None:
        raise TypeError("unit label is None")
    raw = str(s).strip()
    t = raw.lower()  # before the replacements, so that "MCG/dL" is read like "mcg/dL"
    for m in _MICRO:
        t = t.replace(m, "u")
    t = t.replace("mcg", "ug").replace("mcmol", "umol")
    t = re.sub(r"\s+", " ", t)
    low = t.replace("per cent", "%")
    if low in _WORDS:
        return _WORDS[low]
    # "nmol l-1", "nmol·L⁻¹", "nmol L^-1" -> "nmol/L"
    low = low.replace("⁻¹", "-1").replace("·", " ").replace("^", "")
    m = re.fullmatch(r"([a-z%]+)\s*([a-z]+)-1", low)
    if m:
        low = f"{m.group(1)}/{m.group(2)}"
    low = low.replace(" ", "")
    parts = low.split("/")
    if len(parts) != 2:
        return raw
    num, den = parts
    vol = _norm_part(den, _VOLUME)
    if vol is None:
        return raw
    for table in (_MASS, _SUBSTANCE, _ACTIVITY, _EQUIV):
        n = _norm_part(num, table)
        if n is not None:
            return f"{n}/{vol}"
    return raw


def resolve_analyte(analyte: str) -> str:
    """Map an outcome id or nutrient name to the canonical analyte used for conversions."""
    key = str(analyte).strip().lower()
    return ANALYTE_ALIASES.get(key, key)


def _pint_unit(label: str) -> pint.Unit:
    return registry().Unit(label)


@lru_cache(maxsize=512)
def conversion_factor(
    from_unit: str, to_unit: str, analyte: str,
    insulin_pmol_per_uiu: float = INSULIN_PMOL_PER_UIU,
) -> float:
    """Multiplicative factor ``f`` such that ``value_in_to_unit = f * value_in_from_unit``.

    Raises
    ------
    UnitConversionError
        If either unit is unknown or the pair is not convertible for ``analyte``.
    """
    f = harmonise_unit_label(from_unit)
    t = harmonise_unit_label(to_unit)
    a = resolve_analyte(analyte)
    if f == t:
        return 1.0
    import pint

    ureg = registry()
    if f in UNITLESS or t in UNITLESS:
        raise UnitConversionError(from_unit, to_unit, analyte,
                                  "unitless labels convert only to themselves")
    try:
        fu, tu = _pint_unit(f), _pint_unit(t)
    except (pint.UndefinedUnitError, pint.DefinitionSyntaxError, AttributeError,
            TypeError, ValueError) as exc:
        raise UnitConversionError(from_unit, to_unit, analyte, "unknown unit") from exc
    if fu.dimensionality == tu.dimensionality:
        return float(ureg.Quantity(1.0, fu).to(tu).magnitude)
    contexts: list[pint.Context] = []
    if a in MOLAR_MASS_G_PER_MOL:
        contexts.append(_mass_context(MOLAR_MASS_G_PER_MOL[a]))
    if a in VALENCE:
        contexts.append(_valence_context(VALENCE[a]))
    if a == "insulin":
        contexts.append(_insulin_context(insulin_pmol_per_uiu))
    if contexts:
        try:
            # pint searches the graph of enabled transformations, so chains such as
            # mEq/L -> mmol/L -> mg/dL are found.
            with ureg.context(*contexts):
                return float(ureg.Quantity(1.0, fu).to(tu).magnitude)
        except pint.DimensionalityError:
            pass
    raise UnitConversionError(from_unit, to_unit, analyte,
                              "no conversion known for this analyte")


def can_convert(from_unit: str, to_unit: str, analyte: str) -> bool:
    """Whether :func:`convert` can map ``from_unit`` to ``to_unit`` for ``analyte``."""
    try:
        conversion_factor(from_unit, to_unit, analyte)
    except UnitConversionError:
        return False
    return True


def convert(value, from_unit: str, to_unit: str, analyte: str):
    """Convert a value (scalar or numpy array) from one unit to another for an analyte.

    Parameters
    ----------
    value : float or array_like
        Value(s) in ``from_unit``. Means, SDs, SEs and differences all scale the same way,
        because every supported conversion is multiplicative.
    from_unit, to_unit : str
        Unit labels as printed; normalised with :func:`harmonise_unit_label`.
    analyte : str
        Outcome id (e.g. ``'total_testosterone'``) or analyte/nutrient name
        (``'testosterone'``, ``'zinc'``); selects the molar mass, valence or insulin factor.

    Returns
    -------
    float or numpy.ndarray
        Converted value(s); a float for scalar input.

    Raises
    ------
    UnitConversionError
        If the pair cannot be converted for this analyte.

    Examples
    --------
    >>> round(convert(100.0, "ng/dL", "nmol/L", "testosterone"), 4)
    3.4672
    """
    factor = conversion_factor(from_unit, to_unit, analyte)
    arr = np.asarray(value, dtype=float) * factor
    if arr.ndim == 0:
        return float(arr)
    return arr
