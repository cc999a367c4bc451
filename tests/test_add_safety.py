"""Adding a record is all or nothing, even when the process is killed; bad record files and a
missing project folder give one located error, never a traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from nutrimeta import transaction
from nutrimeta.cli import main
from nutrimeta.living import add_record, load_record
from nutrimeta.validate import load_evidence

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"
FIXTURES = TESTS / "fixtures"
RECORD = FIXTURES / "living" / "new_trial.yaml"
SPEC = TESTS.parent / "analyses" / "zinc_testosterone.toml"
BASE = "zinc_testosterone"
CHANGED = ("studies.csv", "results.csv", "references.bib")


def _project(folder: Path) -> Path:
    shutil.copytree(FIXTURES / "valid_data", folder / "data")
    (folder / "analyses").mkdir()
    shutil.copy(SPEC, folder / "analyses" / SPEC.name)
    return folder


def _state(data: Path) -> dict[str, bytes]:
    return {name: (data / BASE / name).read_bytes() for name in CHANGED}


def _litter(data: Path) -> list[str]:
    """Files of the data folder other than the curated ones (staging, temporaries)."""
    curated = {"studies.csv", "results.csv", "syntheses.csv", "references.bib"}
    return sorted(str(p.relative_to(data)) for p in data.rglob("*")
                  if p.is_file() and p.name not in curated)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The three changed files before and after a successful addition of the record."""
    folder = _project(tmp_path_factory.mktemp("reference"))
    before = _state(folder / "data")
    out = add_record(load_record(RECORD), folder / "data")
    assert out.ok, out.describe()
    after = _state(folder / "data")
    assert all(after[n] != before[n] for n in CHANGED)
    return before, after


_COMMIT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from nutrimeta.transaction import commit_files
    data, new = Path(sys.argv[1]), Path(sys.argv[2])
    commit_files(data, {data / "zinc_testosterone" / p.name: p.read_bytes()
                        for p in sorted(new.iterdir())})
""")


@pytest.mark.parametrize("step", transaction.steps(len(CHANGED)))
def test_kill_at_every_step_leaves_all_old_or_all_new(
        tmp_path: Path, versions: tuple[dict[str, bytes], dict[str, bytes]], step: str) -> None:
    """A process committing the three files kills itself (SIGKILL) at ``step``; the next load
    of the data rolls the journal forward or back, and the files are entirely old or new."""
    before, after = versions
    data = _project(tmp_path) / "data"
    staged = tmp_path / "new"
    staged.mkdir()
    for name in CHANGED:
        (staged / name).write_bytes(after[name])
    env = {**os.environ, transaction.FAULT_ENV: step, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", _COMMIT, str(data), str(staged)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr  # the hook fired at this step
    ev = load_evidence(data)
    assert ev.errors == [], "\n".join(map(str, ev.errors))
    state = _state(data)
    committed = transaction.steps(len(CHANGED)).index(step) >= \
        transaction.steps(len(CHANGED)).index("committed")
    assert state == (after if committed else before)
    assert _litter(data) == []


@pytest.mark.slow
@pytest.mark.parametrize("step", transaction.steps(len(CHANGED)))
def test_cli_add_killed_at_every_step(
        tmp_path: Path, versions: tuple[dict[str, bytes], dict[str, bytes]], step: str) -> None:
    """End to end: `nutrimeta add` killed at ``step``; `nutrimeta validate` passes afterwards
    and the record is fully present or fully absent; a second `add` then completes it."""
    before, after = versions
    folder = _project(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cli = [sys.executable, "-m", "nutrimeta.cli"]
    killed = subprocess.run([*cli, "add", str(RECORD)], cwd=folder, capture_output=True,
                            text=True, env={**env, transaction.FAULT_ENV: step}, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    check = subprocess.run([*cli, "validate"], cwd=folder, capture_output=True, text=True,
                           env=env, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    state = _state(folder / "data")
    assert state in (before, after)
    assert _litter(folder / "data") == []
    again = subprocess.run([*cli, "add", str(RECORD)], cwd=folder, capture_output=True,
                           text=True, env=env, timeout=300)
    if state == before:
        assert again.returncode == 0, again.stdout + again.stderr
    else:
        assert again.returncode == 1 and "already recorded" in again.stdout
    assert _state(folder / "data") == after


def test_a_second_run_waits_for_the_lock_then_gives_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _project(tmp_path) / "data"
    before = _state(data)
    monkeypatch.setattr(transaction, "LOCK_TIMEOUT", 0.2)
    with transaction.locked(data):
        out = add_record(load_record(RECORD), data)
    assert not out.ok
    assert any("another `nutrimeta add` is writing" in p.message for p in out.errors)
    assert _state(data) == before and _litter(data) == []


def test_file_changed_after_validation_is_a_conflict(tmp_path: Path) -> None:
    data = _project(tmp_path) / "data"
    target = data / BASE / "studies.csv"
    with pytest.raises(transaction.ConflictError, match="changed while"):
        transaction.commit_files(data, {target: b"new"}, expected={target: b"something else"})
    assert target.read_bytes() != b"new" and _litter(data) == []


def test_left_over_temporaries_are_removed_on_the_next_run(tmp_path: Path) -> None:
    data = _project(tmp_path) / "data"
    stray = data / BASE / ".studies.csv.k2j4.tmp"
    stray.write_bytes(b"half a file")
    (data / transaction.STAGING_DIR).mkdir()
    (data / transaction.STAGING_DIR / "1.new").write_bytes(b"staged, never committed")
    ev = load_evidence(data)
    assert ev.errors == []
    notes = " ".join(p.message for p in ev.warnings)
    assert "was undone" in notes and ".studies.csv.k2j4.tmp" in notes
    assert _litter(data) == []


def test_gitignore_covers_what_an_interrupted_run_leaves() -> None:
    ignore = (TESTS.parent / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert f"data/{transaction.STAGING_DIR}/" in ignore
    assert "data/**/.*.tmp" in ignore


# ------------------------------------------------------------------------ record files

@pytest.mark.parametrize(("content", "expected"), [
    (b"", "new.yaml: the file is empty"),
    (b"# nothing but a comment\n\n", "new.yaml: the file is empty"),
    (b"study: [a, b\n", "new.yaml line 2, column 1: not valid YAML"),
    (b"study:\n  population: \"Montr\xe9al\"\n", "new.yaml line 2: not UTF-8 text (byte 0xE9)"),
])
def test_unreadable_record_is_one_located_error(tmp_path: Path, content: bytes,
                                                 expected: str) -> None:
    folder = _project(tmp_path)
    before = _state(folder / "data")
    (folder / "new.yaml").write_bytes(content)
    result = CliRunner().invoke(main, ["add", str(folder / "new.yaml"),
                                       "--data", str(folder / "data")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert expected in result.output
    assert "Traceback" not in result.output
    assert _state(folder / "data") == before


def test_duplicate_key_in_record_is_refused_not_last_wins(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    before = _state(folder / "data")
    text = RECORD.read_text(encoding="utf-8")
    text = text.replace('    mean: "16.0"\n', '    mean: "16.0"\n    mean: "61.0"\n', 1)
    (folder / "dup.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["add", str(folder / "dup.yaml"),
                                       "--data", str(folder / "data")])
    assert result.exit_code == 1
    line = text.splitlines().index('    mean: "61.0"') + 1
    assert f"dup.yaml line {line}, column 5: not valid YAML: found the key 'mean' twice" \
        in result.output
    assert _state(folder / "data") == before


# ---------------------------------------------------------------------- project folder

def test_commands_find_the_project_from_a_subfolder(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _project(tmp_path / "proj")
    (folder / "docs" / "deep").mkdir(parents=True)
    monkeypatch.chdir(folder / "docs" / "deep")
    result = CliRunner().invoke(main, ["validate"])
    assert result.exit_code == 0, result.output
    assert "3 studies, 7 result rows" in result.output


def test_outside_a_project_is_a_one_line_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["validate"], ["report"], ["analysis"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, command
        assert "no nutrimeta project in" in result.output
        assert "Traceback" not in result.output and len(result.output.splitlines()) == 1


def test_project_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _project(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)
    ok = CliRunner().invoke(main, ["--project", str(folder), "validate"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(main, ["--project", str(tmp_path), "validate"])
    assert bad.exit_code == 1 and "not a nutrimeta project" in bad.output


def test_non_finite_yaml_number_is_refused_not_dropped(tmp_path: Path) -> None:
    """YAML's .inf/.nan are refused with a located error instead of becoming an empty cell."""
    folder = _project(tmp_path)
    before = _state(folder / "data")
    text = RECORD.read_text(encoding="utf-8").replace('    sd: "4.0"\n', "    sd: .inf\n", 1)
    (folder / "inf.yaml").write_text(text, encoding="utf-8")
    out = add_record(load_record(folder / "inf.yaml"), folder / "data")
    assert not out.ok
    assert any(p.file == "inf.yaml" and p.column == "sd" and "not a finite number: 'inf'"
               in p.message for p in out.errors), out.describe()
    assert _state(folder / "data") == before
