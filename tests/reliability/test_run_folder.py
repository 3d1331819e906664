"""``--out DIR``: a new or empty folder only; sealing lists, scans and deletes only the run's own files.

The trial's finding: ``--out`` on an existing folder sealed the user's files into the manifest and
deleted any of them that held a configured secret (a ``.dev.vars``, notes), and a previous run's files
were sealed into the new run.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import nbformat
import pytest
from aigw.config import Secret
from aigw.errors import EvidenceError
from aigw.evidence import own_files, seal_bundle, verify_bundle
from aigw.runner import EXIT_INCOMPLETE
from cftwin.seed import generated_seed
from reliability_support import aigw, last_line, write_env_file

_HINT = "Choose a new or empty folder, or leave --out out for a fresh outputs/<UTC time>-<target>"


def _user_folder(folder: Path, token: str) -> dict[Path, bytes]:
    """A folder as a user has it: settings holding the token, notes, a sub-folder."""
    folder.mkdir()
    (folder / "sub").mkdir()
    files = {folder / ".dev.vars": f"CLOUDFLARE_API_TOKEN={token}\n".encode(),
             folder / "notes.txt": f"the token is {token}\n".encode(),
             folder / "sub" / "keep.md": b"mine\n"}
    for path, data in files.items():
        path.write_bytes(data)
    return files


def test_out_on_a_folder_with_the_users_files_is_refused_and_nothing_is_touched(tmp_path: Path) -> None:
    seed = generated_seed()
    env_file = write_env_file(tmp_path / "twin.env", seed)
    out = tmp_path / "mine"
    files = _user_folder(out, seed.api_token)
    done = aigw("run", "--target", "twin", "--env-file", str(env_file), "--notebooks", "01", "--out", str(out),
                cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert last_line(done.stderr) == (f"aigw: error: --out {str(out)!r} is not empty (3 entries): the run would "
                                      f"seal them into its evidence. {_HINT}")
    assert "run folder:" not in done.stdout  # the user's folder is not named as the run's
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(files)
    assert all(path.read_bytes() == data for path, data in files.items())
    assert "twin serving" not in done.stderr  # refused before anything ran


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "a-file"
    out.write_text("mine\n")
    done = aigw("run", "--target", "twin", "--notebooks", "01", "--out", str(out), cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert last_line(done.stderr) == f"aigw: error: --out {str(out)!r} is not a folder. {_HINT}"
    assert out.read_text() == "mine\n"


def test_twin_state_inside_the_run_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    state = out / "twin.sqlite"
    done = aigw("run", "--target", "twin", "--notebooks", "01", "--out", str(out), "--twin-state", str(state),
                cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert last_line(done.stderr).startswith(f"aigw: error: --twin-state {str(state)!r} is inside the run folder")
    assert not out.exists()


@pytest.mark.slow
def test_an_empty_folder_is_used_and_a_sealed_run_folder_is_not_sealed_again(tmp_path: Path) -> None:
    seed = generated_seed()
    env_file = write_env_file(tmp_path / "twin.env", seed)
    out = tmp_path / "empty"
    out.mkdir()
    first = aigw("run", "--target", "twin", "--env-file", str(env_file), "--notebooks", "01", "--out", str(out),
                 cwd=tmp_path)
    # One notebook of five: incomplete (exit 3), and sealed.
    assert first.returncode == EXIT_INCOMPLETE, first.stderr[-2000:]
    sealed = verify_bundle(out)
    assert "01_create_gateway.ipynb" in sealed and "evidence.json" in sealed
    # The same folder again (a previous run's): refused, and the first run's evidence still verifies.
    again = aigw("run", "--target", "twin", "--env-file", str(env_file), "--notebooks", "01", "--out", str(out),
                 cwd=tmp_path, timeout=120)
    assert again.returncode == 1
    assert last_line(again.stderr).startswith(f"aigw: error: --out {str(out)!r} is not empty (")
    assert verify_bundle(out) == sealed


def test_sealing_scans_lists_and_deletes_only_the_runs_own_files(tmp_path: Path) -> None:
    """A file that was in the folder before the run took it (``preexisting``) is neither listed nor
    deleted, even when it holds a secret; the run's own file that holds one is deleted."""
    canary = Secret("canary-" + secrets.token_urlsafe(24), "OPENAI_API_KEY")
    run = tmp_path / "run"
    run.mkdir()
    theirs = run / "notes.txt"
    theirs.write_text(f"key {canary.reveal()}\n")
    notebook = run / "02_provider_keys.ipynb"
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    cell = nbformat.v4.new_code_cell("1")  # type: ignore[no-untyped-call]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=canary.reveal())]  # type: ignore[no-untyped-call]
    nb.cells = [cell]
    nbformat.write(nb, notebook)  # type: ignore[no-untyped-call]
    assert own_files(run, {"notes.txt"}) == [notebook]
    with pytest.raises(EvidenceError,
                       match=r"found in 02_provider_keys\.html, 02_provider_keys\.ipynb; the file\(s\) were deleted"):
        seal_bundle(run, run_id="run", target="twin", settings=None, parameters={}, notebooks=[notebook],
                    status="failed", secrets=[canary], preexisting={"notes.txt"})
    assert not notebook.exists()
    assert theirs.read_text() == f"key {canary.reveal()}\n"
    listed = json.loads((run / "manifest.json").read_text())["files"]
    assert "notes.txt" not in listed and "evidence.json" in listed
