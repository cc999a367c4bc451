"""Analysis specs: the shipped ones load; malformed ones fail naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nutrimeta.spec import SpecError, load_spec, load_specs
from nutrimeta.units import convert

ANALYSES = Path(__file__).parents[1] / "analyses"


def test_shipped_specs_load_and_cover_every_evidence_base() -> None:
    specs = load_specs(ANALYSES)
    assert {s.evidence_base for s in specs} == {"zinc_testosterone", "selenium_thyroid",
                                                "magnesium_insulin"}
    for s in specs:
        assert s.moderator.cutoff_source and all(o.mid_source for o in s.outcomes)
        assert sum(o.primary for o in s.outcomes) == 1
        assert s.claims, "every evidence base states the claims it checks"


def test_cutoff_is_converted_in_code_from_the_published_unit() -> None:
    zinc = load_spec(ANALYSES / "zinc_testosterone.toml")
    assert zinc.moderator.cutoff_value == 74.0 and zinc.moderator.cutoff_unit == "ug/dL"
    # 74 ug/dL / 65.38 g/mol * 10 (dL -> L) = 11.318 umol/L, independent of the units module
    assert zinc.moderator.cutoff == pytest.approx(74.0 * 10 / 65.38, rel=1e-6)
    assert zinc.moderator.cutoff == pytest.approx(convert(74.0, "ug/dL", "umol/L", "zinc"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('measure = "MD"', 'measure = "OR"', 1), "measure must be MD, SMD or ROM"),
        (('family = "half_normal", scale_multiple = 0.5 }', 'family = "gamma", scale = 5.0 }', 1),
         "tau prior family 'gamma'"),
        (('cutoff_unit = "ug/dL"', 'cutoff_unit = "furlongs"', 1), "cutoff_unit"),
        (('id = "total_testosterone"', 'id = "total_t"', 1), "unknown outcome 'total_t'"),
        (('seed = 20261129', 'seed = "x"', 1), "'seed' must be int"),
    ],
)
def test_malformed_spec_names_file_and_key(tmp_path: Path, edit: tuple[str, str, int],
                                           message: str) -> None:
    text = (ANALYSES / "zinc_testosterone.toml").read_text(encoding="utf-8")
    old, new, count = edit
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new, count), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    assert str(bad) in str(err.value) and message in str(err.value)


def test_spec_hash_changes_with_the_text(tmp_path: Path) -> None:
    text = (ANALYSES / "zinc_testosterone.toml").read_text(encoding="utf-8")
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(text, encoding="utf-8")
    b.write_text(text.replace("draws = 1000", "draws = 1500"), encoding="utf-8")
    assert load_spec(a).spec_hash != load_spec(b).spec_hash


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("draws = 1000", "draw = 1000"), "[sampler]: unknown key 'draw'"),
        (("seed = 20261129", "seed = true"), "[analysis]: 'seed' must be int, got True"),
        (("[analysis]", "[analyses]"), ": missing key 'analysis'"),
        (("leave_one_out = true", 'leave_one_out = "yes"'), "'leave_one_out' must be bool"),
    ],
)
def test_spec_checking_is_strict(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    """Unknown keys and wrong types (a bool for an int, text for a bool) are errors."""
    text = (ANALYSES / "zinc_testosterone.toml").read_text(encoding="utf-8")
    assert edit[0] in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    assert str(bad) in str(err.value) and message in str(err.value)
