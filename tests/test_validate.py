"""Validation: every malformed fixture yields its specific, located message; valid data pass."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from nutrimeta.cli import main
from nutrimeta.validate import ValidationError, load_evidence, require_valid

FIXTURES = Path(__file__).parent / "fixtures"
MALFORMED = sorted(p for p in (FIXTURES / "malformed").iterdir() if p.is_dir())


def test_valid_fixture_has_no_problems() -> None:
    ev = load_evidence(FIXTURES / "valid_data")
    assert ev.problems == []
    assert len(ev.studies) == 3 and len(ev.results) == 7
    assert set(ev.references) == {"alpha2001", "beta2005", "gamma2010", "delta2020"}


def test_malformed_corpus_size() -> None:
    assert len(MALFORMED) >= 40


@pytest.mark.parametrize("case", MALFORMED, ids=[p.name for p in MALFORMED])
def test_malformed_file_gives_its_specific_error(case: Path) -> None:
    """``nutrimeta validate`` on the case prints its located message (first line of
    ``expected.txt``) and exits 1 on an error, without a traceback. Optional further lines:
    ``errors: N`` (exactly N errors in all, so one fault is not echoed by follow-on errors) and
    ``absent: TEXT`` (no problem mentions TEXT)."""
    first, *rules = (case / "expected.txt").read_text().strip().splitlines()
    severity, expected = first.split(": ", 1)
    result = CliRunner().invoke(main, ["validate", "--data", str(case)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    problems = [line for line in result.output.splitlines()
                if line.startswith(("error: ", "warning: "))]
    errors = [line for line in problems if line.startswith("error: ")]
    assert any(line.startswith(severity) and expected in line for line in problems), problems
    assert result.exit_code == (1 if errors else 0), result.output
    for rule in rules:
        kind, value = rule.split(": ", 1)
        if kind == "errors":
            assert len(errors) == int(value), "\n".join(errors)
        elif kind == "absent":
            assert not any(value in line for line in problems), "\n".join(problems)
        else:
            raise AssertionError(f"unknown rule {rule!r} in {case.name}/expected.txt")


def test_errors_raise_validation_error() -> None:
    with pytest.raises(ValidationError, match="SD of 0"):
        require_valid(load_evidence(FIXTURES / "malformed" / "sd_zero"))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Two independent faults in two files are both reported in one run."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid_data", data)
    studies = data / "zinc_testosterone" / "studies.csv"
    results = data / "zinc_testosterone" / "results.csv"
    studies.write_text(studies.read_text().replace("parallel_rct", "rct", 1))
    results.write_text(results.read_text().replace(",100,", ",-100,", 1))
    ev = load_evidence(data)
    text = "\n".join(map(str, ev.errors))
    assert "studies.csv row 2, column design" in text
    assert "results.csv row 2, column sd: value -100.0 is negative" in text


def test_missing_column_is_reported_once_not_per_row() -> None:
    ev = load_evidence(FIXTURES / "malformed" / "missing_column")
    located = [p for p in ev.errors if p.column == "locator"]
    assert len(located) == 1 and located[0].row == 1


def test_cli_validate_exit_codes() -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", "--data", str(FIXTURES / "valid_data")])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(main, ["validate", "--data", str(FIXTURES / "malformed" / "negative_sd")])
    assert bad.exit_code == 1
    assert "column sd: value -2.1 is negative" in bad.output


def test_shipped_data_validate_without_errors() -> None:
    ev = load_evidence(Path(__file__).parents[1] / "data")
    assert ev.errors == [], "\n".join(map(str, ev.errors))


def test_plausibility_ranges_cover_the_outcomes_in_their_units() -> None:
    """Each outcome has a cited reference interval in its harmonised unit (the T3:T4 ratio,
    whose unit depends on what was divided, is the declared exception)."""
    from nutrimeta.plausibility import REFERENCE_INTERVALS
    from nutrimeta.schema import OUTCOMES

    assert set(OUTCOMES) - set(REFERENCE_INTERVALS) == {"t3_t4_ratio"}
    for outcome, ri in REFERENCE_INTERVALS.items():
        assert ri.unit == OUTCOMES[outcome]["unit"], outcome
        assert 0 <= ri.low < ri.high <= ri.ceiling and ri.source, outcome


def test_shipped_data_levels_are_plausible() -> None:
    """The reference intervals are not so narrow that the shipped trials look implausible."""
    ev = load_evidence(Path(__file__).parents[1] / "data")
    assert not [p for p in ev.problems if "plausible" in p.message]
