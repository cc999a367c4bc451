"""What the command line shows while fitting: a progress bar with counts and elapsed and
remaining time (rich), skipped and failed models on their own lines, and a verbosity level.

The fit stage reports through a plain ``echo(str)`` callable; :class:`FitProgress` is such a
callable. A line ``"  <base>/<outcome>: <model> (k=<n>)"`` announces a fit; a line
``"  <base>/<outcome>: <model> skipped: <reason>"`` (or ``failed: ...``) its outcome.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

FIT_START = re.compile(r"^\s+(?P<what>[\w.-]+/[\w.-]+: \w+) \(k=(?P<k>\d+) trials?\)$")
FIT_END = re.compile(r"^\s+(?P<what>[\w.-]+/[\w.-]+: \w+) (?P<status>skipped|failed): "
                     r"(?P<reason>.*)$")



def fit_start_line(evidence_base: str, outcome: str, kind: str, k_trials: int) -> str:
    """The fit stage's line announcing a model fit (parsed back by :data:`FIT_START`)."""
    return f"  {evidence_base}/{outcome}: {kind} (k={k_trials} trial{'s' if k_trials != 1 else ''})"


def fit_end_line(evidence_base: str, outcome: str, kind: str, status: str, reason: str) -> str:
    """The fit stage's line for a model that was skipped or failed (see :data:`FIT_END`)."""
    return f"  {evidence_base}/{outcome}: {kind} {status}: {reason}"


QUIET, NORMAL, VERBOSE = 0, 1, 2


class FitProgress:
    """An ``echo`` for the fit stage that drives a progress bar.

    Parameters
    ----------
    total
        Number of model fits planned (the bar's length).
    verbosity
        ``QUIET`` (only problems and results), ``NORMAL`` (bar, skipped/failed lines, results)
        or ``VERBOSE`` (also every fit as it starts).
    console
        Where to draw; default standard error, so the command's output stays parseable.
    """

    def __init__(self, total: int, verbosity: int = NORMAL,
                 console: Console | None = None) -> None:
        self.verbosity = verbosity
        self.console = console or Console(stderr=True)
        self.started = 0
        self.skipped = 0
        self.failed = 0
        self._progress = Progress(
            TextColumn("fitting"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"),
            TimeRemainingColumn(), TextColumn("{task.description}"),
            console=self.console, transient=True,
            disable=verbosity == QUIET or not self.console.is_terminal)
        self._task = self._progress.add_task("", total=max(total, 1))

    def __enter__(self) -> FitProgress:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.update(self._task, completed=self.started)
        self._progress.stop()

    def __call__(self, line: str) -> None:
        """Take one line from the fit stage: advance the bar or print it."""
        start = FIT_START.match(line)
        end = FIT_END.match(line)
        if start:
            if self.started:
                self._progress.advance(self._task)
            self.started += 1
            what = start.group("what").split("/", 1)[-1]  # outcome: model
            self._progress.update(self._task, description=what if len(what) <= 34
                                  else what[:33] + "…")
            if self.verbosity >= VERBOSE:
                self.console.print(line.strip(), highlight=False)
        elif end:
            self.skipped += end.group("status") == "skipped"
            self.failed += end.group("status") == "failed"
            if self.verbosity >= NORMAL or end.group("status") == "failed":
                self.console.print(f"  {end.group('what')} {end.group('status')}: "
                                   f"{end.group('reason')}", highlight=False)
        elif self.verbosity >= NORMAL:
            self.console.print(line, highlight=False, markup=False)

    def summary(self) -> str:
        """``"12 fits: 9 fitted, 3 skipped, 0 failed"``."""
        fitted = self.started - self.skipped - self.failed
        return (f"{self.started} fits: {fitted} fitted, {self.skipped} skipped, "
                f"{self.failed} failed")


def line_printer(verbosity: int) -> Callable[[str], None]:
    """An ``echo`` for plain result lines that respects ``-q``."""

    def echo(line: str) -> None:
        if verbosity >= NORMAL:
            print(line, file=sys.stdout, flush=True)

    return echo
