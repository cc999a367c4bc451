"""Finding the project folder, so that commands work from any folder inside it.

A project folder holds ``data/`` with at least one evidence base (a folder with
``studies.csv``) or the data dictionary ``data/datapackage.json``. The commands' default paths
(``data``, ``analyses``, ``build``, ``reports``, ``releases``) are taken relative to it.
"""

from __future__ import annotations

from pathlib import Path


class NoProjectError(Exception):
    """No project folder in the working directory or above it."""


def is_project(folder: Path) -> bool:
    """Whether ``folder`` holds curated data (``data/datapackage.json`` or an evidence base)."""
    data = folder / "data"
    return data.is_dir() and ((data / "datapackage.json").is_file()
                              or any(data.glob("*/studies.csv")))


def find_project(start: Path | str | None = None) -> Path:
    """The nearest project folder at or above ``start`` (default: the working directory)."""
    here = Path.cwd() if start is None else Path(start)
    for folder in (here.resolve(), *here.resolve().parents):
        if is_project(folder):
            return folder
    raise NoProjectError(f"no nutrimeta project in {here} or any folder above it (a project "
                         "holds data/<evidence base>/studies.csv); run the command inside a "
                         "project or give --project DIR")


def project_path(name: str, project: Path | str | None = None) -> Path:
    """``name`` inside the project: relative when the project is the working directory."""
    if project is None and is_project(Path.cwd()):
        return Path(name)
    root = find_project(project) if project is None else Path(project)
    if project is not None and not is_project(root):
        raise NoProjectError(f"--project {project}: not a nutrimeta project (no "
                             "data/<evidence base>/studies.csv)")
    return root / name
