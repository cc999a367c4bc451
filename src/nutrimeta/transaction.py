"""All-or-nothing replacement of several curated files, safe against a kill at any moment.

Adding a trial report changes up to three files of an evidence base (``studies.csv``,
``results.csv``, ``references.bib``). Replacing each atomically is not enough: a process killed
between two replacements leaves a study without its results. :func:`commit_files` therefore
works like a database journal:

1. take an exclusive lock (``fcntl.flock`` on the data folder itself, so no lock file is left
   behind; the kernel releases it when the process dies, even by SIGKILL) so that two runs
   never interleave; finish or undo any earlier interrupted run (:func:`recover`);
2. check that the files still hold the bytes the caller validated (else nothing is written);
3. *stage*: write every new file, complete and fsynced, into ``data/.nutrimeta-staging/``;
4. *commit point*: write the journal (the list of staged files and their targets) to a
   temporary name, fsync it and rename it to ``journal.json``. Before this rename nothing in
   the data changed; after it the new version is decided;
5. *switch*: rename each staged file over its target (each rename is atomic), rename the
   journal to ``journal.done`` and delete the staging folder.

A run killed before step 4 leaves a staging folder without a journal: the next run deletes it
(rolled back, the data were never touched). A run killed after step 4 leaves a journal: the next
run (of ``add``, or of anything that loads the data) renames the remaining staged files into
place (rolled forward). Either way the data end entirely old or entirely new.

The environment variable :data:`FAULT_ENV` names a step (see :func:`steps`) at which the
process kills itself with SIGKILL; the tests use it to interrupt a run at every step.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

STAGING_DIR = ".nutrimeta-staging"
JOURNAL = "journal.json"
#: The journal's name once every file is in place (the staging folder is then only litter).
FINISHED = "journal.done"
#: Test hook: the name of a step at which the process kills itself (SIGKILL).
FAULT_ENV = "NUTRIMETA_FAULT_AT"
#: Seconds to wait for another run's lock before giving up.
LOCK_TIMEOUT = 10.0


class TransactionError(Exception):
    """The data files could not be switched; the message says what to do."""


class ConflictError(TransactionError):
    """A file changed on disk after it was read and validated."""


class BusyError(TransactionError):
    """Another run holds the lock."""


def steps(n_files: int) -> list[str]:
    """Names of the fault-injection points of a commit of ``n_files`` files, in order."""
    return (["locked"] + [f"staged-{i}" for i in range(1, n_files + 1)]
            + ["journal-written", "committed"]
            + [f"replaced-{i}" for i in range(1, n_files + 1)] + ["journal-removed", "done"])


def _checkpoint(step: str) -> None:
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def locked(data_dir: Path | str, timeout: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of ``data_dir`` (waiting up to ``timeout`` seconds, default
    :data:`LOCK_TIMEOUT`).

    The lock is a ``flock`` on the folder's own descriptor: advisory, released by the kernel
    when the holder exits in any way, and leaving no file behind.
    """
    data_dir = Path(data_dir)
    fd = os.open(data_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        deadline = time.monotonic() + (LOCK_TIMEOUT if timeout is None else timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError(
                        f"another `nutrimeta add` is writing to {data_dir} (it holds the "
                        "folder's lock); nothing was written: run the command again when it "
                        "has finished") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _stray_temporaries(data_dir: Path) -> list[Path]:
    """Temporary files of interrupted atomic writes (``.<name>.<random>.tmp``) in base folders."""
    return sorted(p for p in data_dir.glob("*/.*.tmp") if p.is_file())


def _roll_forward(data_dir: Path, staging: Path, entries: list[dict[str, str]]) -> None:
    for i, entry in enumerate(entries, start=1):
        target, staged = data_dir / entry["target"], staging / entry["staged"]
        if staged.exists():
            os.replace(staged, target)
            _fsync_dir(target.parent)
        elif not target.exists() or _sha256(target.read_bytes()) != entry["sha256"]:
            raise TransactionError(
                f"{data_dir / STAGING_DIR / JOURNAL}: staged file {entry['staged']} for "
                f"{entry['target']} is missing and the target does not hold the new content; "
                "restore the data folder from version control")
        _checkpoint(f"replaced-{i}")


def _recover_locked(data_dir: Path) -> str | None:
    notes: list[str] = []
    staging = data_dir / STAGING_DIR
    if staging.exists():
        journal = staging / JOURNAL
        if journal.exists():
            try:
                entries = json.loads(journal.read_text(encoding="utf-8"))["files"]
            except (ValueError, KeyError, TypeError) as exc:
                raise TransactionError(f"{journal}: unreadable journal ({exc}); restore the data "
                                       "folder from version control") from exc
            _roll_forward(data_dir, staging, entries)
            notes.append("an interrupted `nutrimeta add` was completed (rolled forward: "
                         + ", ".join(e["target"] for e in entries) + ")")
        elif not (staging / FINISHED).exists():
            notes.append("an interrupted `nutrimeta add` was undone (it stopped before its "
                         "commit point; no data file had changed)")
        shutil.rmtree(staging)
        _fsync_dir(data_dir)
    stray = _stray_temporaries(data_dir)
    for path in stray:
        path.unlink()
    if stray:
        notes.append("removed temporary files left by an interrupted write: "
                     + ", ".join(str(p.relative_to(data_dir)) for p in stray))
    return "; ".join(notes) or None


def pending(data_dir: Path | str) -> bool:
    """Whether an interrupted run left anything to finish or clean up."""
    data_dir = Path(data_dir)
    return (data_dir / STAGING_DIR).exists() or bool(_stray_temporaries(data_dir))


def recover(data_dir: Path | str) -> str | None:
    """Finish (journal present) or undo (no journal) an interrupted run; say what was done.

    Returns None when there was nothing to do. Cheap when there is nothing pending (no lock
    is taken).
    """
    data_dir = Path(data_dir)
    if not pending(data_dir):
        return None
    with locked(data_dir):
        return _recover_locked(data_dir)


def commit_files(data_dir: Path | str, new: Mapping[Path, bytes],
                 expected: Mapping[Path, bytes] | None = None) -> list[Path]:
    """Replace the files ``new`` (paths inside ``data_dir`` -> bytes) all or nothing.

    ``expected`` maps each path to the bytes it held when the caller read it (``b""`` for a
    file that did not exist); if any differs now, :class:`ConflictError` is raised and nothing
    is written. Returns the paths written.
    """
    data_dir = Path(data_dir)
    paths = list(new)
    with locked(data_dir):
        _checkpoint("locked")
        _recover_locked(data_dir)
        for path in paths:
            current = path.read_bytes() if path.exists() else b""
            if expected is not None and current != expected.get(path, b""):
                raise ConflictError(f"{path}: the file changed while the record was being "
                                    "checked; nothing was written (run the command again)")
        staging = data_dir / STAGING_DIR
        staging.mkdir()
        entries: list[dict[str, str]] = []
        for i, path in enumerate(paths, start=1):
            name = f"{i}.new"
            _write_synced(staging / name, new[path])
            entries.append({"target": str(path.relative_to(data_dir)), "staged": name,
                            "sha256": _sha256(new[path])})
            _checkpoint(f"staged-{i}")
        tmp = staging / (JOURNAL + ".tmp")
        _write_synced(tmp, json.dumps({"files": entries}, indent=2).encode("utf-8"))
        _checkpoint("journal-written")
        os.replace(tmp, staging / JOURNAL)
        _fsync_dir(staging)
        _checkpoint("committed")
        _roll_forward(data_dir, staging, entries)
        os.replace(staging / JOURNAL, staging / FINISHED)
        _checkpoint("journal-removed")
        shutil.rmtree(staging)
        _fsync_dir(data_dir)
        _checkpoint("done")
    return paths
