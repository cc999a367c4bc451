"""Versions that determine the numbers of a fit: installed packages and the install lock.

One definition for every results bundle and posterior: :func:`package_versions` (what is
installed) and :func:`lock_hash` (SHA-256 of ``requirements.lock``, the hash-pinned list of
every dependency that ``make venv`` installs), so a result names the exact environment that
``make`` can rebuild, and :func:`lock_mismatches` says where the running environment departs
from that lock.
"""

from __future__ import annotations

import hashlib
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from nutrimeta import __version__

LOCK_FILE = "requirements.lock"

#: Packages whose versions are recorded with every fit.
RECORDED = ("pymc", "pytensor", "nutpie", "arviz", "arviz-base", "arviz-stats", "numpy",
            "scipy", "pandas", "pandera", "pint", "statsmodels", "matplotlib", "xarray")

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def package_versions() -> dict[str, str]:
    """Python, nutrimeta and :data:`RECORDED` package versions ("not installed" if absent)."""
    out = {"python": sys.version.split()[0], "nutrimeta": __version__}
    for name in RECORDED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def lock_path() -> Path | None:
    """The project's ``requirements.lock`` (source checkout, else the working directory)."""
    for folder in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (folder / LOCK_FILE).is_file():
            return folder / LOCK_FILE
    return None


def lock_hash() -> str:
    """``sha256:<hex>`` of the lock file's bytes, or ``"unavailable"`` without one."""
    path = lock_path()
    if path is None:
        return "unavailable"
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def lock_pins(text: str) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of a lock (names normalised)."""
    pins = {}
    for line in text.splitlines():
        m = _PIN.match(line.strip())
        if m:
            pins[_normalise(m.group(1))] = m.group(2)
    return pins


def lock_mismatches() -> dict[str, str]:
    """Locked packages whose installed version differs: ``name -> "locked X, installed Y"``."""
    path = lock_path()
    if path is None:
        return {}
    out = {}
    for name, pinned in lock_pins(path.read_text()).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # platform-specific pins (e.g. colorama) need not be installed
        if installed != pinned:
            out[name] = f"locked {pinned}, installed {installed}"
    return out


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
