"""Tests of the command line's progress display and evidence-base selection."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner
from rich.console import Console

from nutrimeta.cli import main
from nutrimeta.progress import NORMAL, QUIET, VERBOSE, FitProgress, fit_end_line, fit_start_line

LINES = [fit_start_line("zinc_testosterone", "total_testosterone", "random_effects", 0),
         fit_end_line("zinc_testosterone", "total_testosterone", "random_effects", "skipped",
                      "no poolable trial"),
         fit_start_line("magnesium_insulin", "homa_ir", "random_effects", 2),
         fit_start_line("magnesium_insulin", "homa_ir", "meta_regression_category", 2),
         fit_end_line("magnesium_insulin", "homa_ir", "meta_regression_category", "failed",
                      "ValueError: boom"),
         "zinc_testosterone: fitted in 0.2 s"]


def _run(verbosity: int) -> tuple[FitProgress, str]:
    buf = io.StringIO()
    progress = FitProgress(3, verbosity, Console(file=buf, width=200, force_terminal=False))
    with progress:
        for line in LINES:
            progress(line)
    return progress, buf.getvalue()


def test_counts_and_labels() -> None:
    progress, text = _run(NORMAL)
    assert progress.summary() == "3 fits: 1 fitted, 1 skipped, 1 failed"
    assert ("zinc_testosterone/total_testosterone: random_effects skipped: no poolable trial"
            in text)
    assert "meta_regression_category failed: ValueError: boom" in text
    assert "(k=2 trials)" not in text  # fit starts are shown on the bar, not printed
    assert "zinc_testosterone: fitted in 0.2 s" in text


def test_quiet_and_verbose() -> None:
    _, quiet = _run(QUIET)
    assert "skipped" not in quiet and "fitted in" not in quiet
    assert "failed: ValueError: boom" in quiet  # problems are always printed
    _, verbose = _run(VERBOSE)
    assert "magnesium_insulin/homa_ir: random_effects (k=2 trials)" in verbose


def test_unknown_base_is_a_one_line_error(tmp_path: object) -> None:
    result = CliRunner().invoke(main, ["fit", "--base", "no_such_base"])
    assert result.exit_code == 1
    assert "unknown evidence base(s) no_such_base; known:" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["fit", "analysis"])
def test_unknown_outcome_is_a_one_line_error_listing_the_valid_ones(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--base", "selenium_thyroid",
                                       "--outcome", "tpo", "--outcome", "tsh"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: unknown outcome(s) tpo; valid: ft3, ft4, tg_ab, "
                                     "tpo_ab, tsh")
