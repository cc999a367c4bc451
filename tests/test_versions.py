"""The install lock: hash-pinned, PyPI only, and recorded by its SHA-256."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from nutrimeta import versions

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"


def test_lock_hash_is_the_sha256_of_the_lock_file():
    assert versions.lock_path() == LOCK
    assert versions.lock_hash() == "sha256:" + hashlib.sha256(LOCK.read_bytes()).hexdigest()


def test_lock_pins_every_dependency_with_hashes_and_no_other_index():
    text = LOCK.read_text()
    assert not re.search(r"--(extra-)?index-url|--find-links|file:|^-e ", text, re.M)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    pins = versions.lock_pins(text)
    assert len(blocks) == len(pins) > 50
    for block in blocks:
        assert "==" in block.splitlines()[0] and "--hash=sha256:" in block, block[:80]
    for name in ("pymc", "pytensor", "nutpie", "numpy", "scipy", "pandas", "arviz-stats",
                 "pytest", "hypothesis"):
        assert name in pins


def test_lock_pins_parse_normalised_names():
    assert versions.lock_pins("Foo_Bar.baz==1.2 \\\n    --hash=sha256:00\nx==2 ; os_name == 'nt'") \
        == {"foo-bar-baz": "1.2", "x": "2"}


def test_lock_mismatches_report_departures(tmp_path, monkeypatch):
    lock = tmp_path / "requirements.lock"
    lock.write_text("pytest==0.0.1\nnot-a-real-package-xyz==1.0\n")
    monkeypatch.setattr(versions, "lock_path", lambda: lock)
    assert versions.lock_mismatches() == {
        "pytest": f"locked 0.0.1, installed {pytest.__version__}"}
