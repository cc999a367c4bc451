"""Versions of the packages that determine the numbers (one definition, recorded in every
results bundle and posterior file)."""

from __future__ import annotations

import sys

from nutrimeta import __version__

#: Packages whose versions every bundle records.
RECORDED_PACKAGES = ("pymc", "pytensor", "nutpie", "arviz", "arviz-base", "arviz-stats",
                     "numpy", "scipy", "pandas", "pandera", "pint", "statsmodels", "matplotlib",
                     "xarray")


def package_versions() -> dict[str, str]:
    """Python, nutrimeta and :data:`RECORDED_PACKAGES` versions of this run."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "nutrimeta": __version__}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
