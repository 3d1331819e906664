"""aigw.secrets_scan: configured values and key shapes, in files and notebooks, never echoed."""

from __future__ import annotations

import argparse
import json
import secrets
import string
from pathlib import Path

import nbformat
import pytest
from aigw.cli import scan_from_args
from aigw.config import Secret
from aigw.secrets_scan import find_key_shapes, mask, scan_paths, scan_text

_ALNUM = string.ascii_letters + string.digits


def _random(n: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _cloudflare_token() -> str:
    # Mixed case and digits, as the scanner requires of a 40-character token.
    return "aB3" + _random(37, _ALNUM + "-_")


@pytest.fixture
def canary() -> Secret:
    return Secret("canary-" + _random(24), "OPENAI_API_KEY")


def test_finds_configured_value_with_line_and_masked_preview(tmp_path: Path, canary: Secret) -> None:
    target = tmp_path / "notes.txt"
    target.write_text(f"first line\nsecond {canary.reveal()} line\n")
    findings = scan_paths([tmp_path], [canary], shapes=False)
    assert len(findings) == 1
    finding = findings[0]
    assert finding.path == str(target)
    assert finding.location == "line 2"
    assert finding.kind == "value of OPENAI_API_KEY"
    assert canary.reveal() not in str(finding)
    assert len(finding.preview.rstrip("…")) <= 4


def test_clean_file_has_no_findings(tmp_path: Path, canary: Secret) -> None:
    (tmp_path / "clean.md").write_text("nothing to see; commit " + secrets.token_hex(20) + "\n")
    assert scan_paths([tmp_path], [canary]) == []


def test_notebook_metadata_and_outputs_are_searched(tmp_path: Path, canary: Secret) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("print(x)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"key {canary.reveal()}\n")]
    nb.metadata["papermill"] = {"parameters": {"api_key": canary.reveal()}}
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    locations = {f.location.split(" line")[0] for f in scan_paths([path], [canary], shapes=False)}
    assert locations == {"notebook metadata", "cell 1 output 0"}


def test_json_escaped_value_is_found(tmp_path: Path) -> None:
    odd = Secret('va"l/ue\\' + _random(20), "CF_AIG_TOKEN")
    (tmp_path / "e.json").write_text(json.dumps({"v": odd.reveal()}))
    assert [f.kind for f in scan_paths([tmp_path], [odd], shapes=False)] == ["value of CF_AIG_TOKEN"]


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: "sk-proj-" + _random(48), "openai-key shape"),
        (lambda: "sk-ant-api03-" + _random(60), "anthropic-key shape"),
        (lambda: "AIza" + _random(35), "google-key shape"),
        (_cloudflare_token, "cloudflare-token shape"),
    ],
)
def test_key_shapes(make: object, kind: str) -> None:
    value = make()  # type: ignore[operator]
    found = scan_text(f"token: {value}\n", where="f")
    assert [f.kind for f in found] == [kind]
    assert value not in str(found[0])


def test_git_commits_hashes_and_images_are_not_tokens() -> None:
    commit, digest = secrets.token_hex(20), secrets.token_hex(32)
    image = "data:image/png;base64," + _cloudflare_token() + "+" + _random(80)
    assert list(find_key_shapes(f"commit {commit}\nsha256 {digest}\n<img src='{image}'>")) == []


def test_mask_keeps_at_most_four_characters() -> None:
    assert mask("sk-abcdefghijklmn") == "sk-a…"
    assert mask("short") == "s…"


def test_scan_from_args_exit_codes_and_no_echo(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    value = "sk-" + _random(40)
    env_file = tmp_path / "vars.env"
    env_file.write_text(f"OPENAI_API_KEY={value}\n")
    leaky = tmp_path / "out" / "leak.txt"
    leaky.parent.mkdir()
    leaky.write_text(value)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert scan_from_args(argparse.Namespace(paths=[leaky.parent], env_file=env_file)) == 1
    out = capsys.readouterr().out
    assert "leak.txt" in out and value not in out
    leaky.write_text("clean")
    assert scan_from_args(argparse.Namespace(paths=[leaky.parent], env_file=env_file)) == 0
