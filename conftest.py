"""Repository-wide pytest hooks.

With ``NUTRIMETA_NO_SKIPS=1`` (set by CI) a skipped test fails instead: a test that could not
run (say, for a missing browser) must never pass as a pass in CI. Tests deselected by marker
(``-m "not slow"``) are not skipped, so they are unaffected.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("NUTRIMETA_NO_SKIPS") == "1" and report.skipped and not hasattr(
            report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, which counts as a failure: {reason}"
