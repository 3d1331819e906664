"""Values that could be secrets are never echoed, and a ``-p`` value may not carry part of a secret.

The trial's findings: ``CLOUDFLARE_ACCOUNT_ID 'CFcanaryTok3n…' is not an account id`` printed a token
pasted into the wrong variable; ``-p store_name <the token minus one character>`` was accepted and 39
of 40 characters landed in the notebook, its HTML and evidence.json.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from aigw.config import Secret, masked
from aigw.secrets_scan import SHARED_RUN, shares_secret
from cftwin.seed import generated_seed
from reliability_support import aigw, last_line, write_env_file


def _canary() -> str:
    """Token-like, but not a key shape (so that only the masking, not the key guard, is tested)."""
    return "CFcanary" + secrets.token_hex(16)


def _run(tmp_path: Path, env_file: Path, *args: str) -> tuple[int, str, str, Path]:
    out = tmp_path / "run"
    done = aigw("run", "--target", "twin", "--env-file", str(env_file), "--notebooks", "01,02", "--out", str(out),
                *args, cwd=tmp_path, timeout=120)
    assert "Traceback" not in done.stderr
    return done.returncode, last_line(done.stderr), done.stdout + done.stderr, out


@pytest.mark.parametrize(("variable", "rest"), [
    ("CLOUDFLARE_ACCOUNT_ID", "is not an account id (32 lowercase hex characters)"),
    ("CLOUDFLARE_GATEWAY_ID", "is not a valid gateway id"),
    ("CLOUDFLARE_API_BASE_URL", "is not an http(s) URL"),
    ("AIGW_API_BUDGET", "is not a budget"),
])
def test_a_token_in_the_wrong_variable_is_shown_masked(tmp_path: Path, variable: str, rest: str) -> None:
    seed = generated_seed()
    canary = _canary()
    env_file = write_env_file(tmp_path / "twin.env", seed, **{variable: canary})
    code, line, everything, out = _run(tmp_path, env_file, *(["--target", "cloudflare"]
                                                              if variable.endswith(("_URL", "_BUDGET")) else []))
    assert code == 1
    assert line.startswith(f"aigw: error: {variable} 'CF…' ({len(canary)} characters) {rest}"), line
    assert canary[2:] not in everything and canary[:8] not in everything
    assert not out.exists()


def test_a_parameter_of_the_wrong_type_is_shown_masked(tmp_path: Path) -> None:
    seed = generated_seed()
    canary = _canary()
    code, line, everything, out = _run(tmp_path, write_env_file(tmp_path / "twin.env", seed), "-p", "dry_run", canary)
    assert code == 1
    assert line == (f"aigw: error: -p dry_run 'CF…' ({len(canary)} characters): dry_run is a bool parameter. "
                    "Use True or False")
    assert canary[2:] not in everything
    assert not out.exists()


@pytest.mark.parametrize("part", ["minus-last", "minus-first", "middle-12-in-text"])
def test_a_parameter_sharing_a_long_run_with_a_secret_is_refused(tmp_path: Path, part: str) -> None:
    seed = generated_seed()
    token = seed.api_token
    value = {"minus-last": token[:-1], "minus-first": token[1:],
             "middle-12-in-text": f"store-{token[10:10 + SHARED_RUN]}-x"}[part]
    code, line, everything, out = _run(tmp_path, write_env_file(tmp_path / "twin.env", seed),
                                       "-p", "store_name", value)
    assert code == 1
    assert line == (f"aigw: error: -p store_name ({len(value)} characters, not shown): the value shares {SHARED_RUN} "
                    "or more characters in a row with CLOUDFLARE_API_TOKEN; secrets are never parameters (papermill "
                    "writes parameters into the notebook). Put it in .dev.vars or the environment instead"), line
    assert token[10:10 + SHARED_RUN] not in everything
    assert not out.exists()


def test_shares_secret_counts_runs_not_scattered_characters() -> None:
    secret = Secret("abcdefghijklmnopqrstuvwxyz0123456789ABCD", "CF_AIG_TOKEN")
    assert shares_secret("xx" + "abcdefghijkl" + "yy", [secret]) is secret
    assert shares_secret("abcdefghijk", [secret]) is None  # 11 in a row: not enough
    assert shares_secret("abcdefghijk-lmnopqrstuv", [secret]) is None  # split by a character not in the secret
    assert shares_secret("short-ok", [Secret("short-ok", "X")]) is not None  # a short secret: the whole of it
    assert shares_secret("github-ai-agent", [secret]) is None


def test_masked_shows_two_characters_and_the_length_at_most() -> None:
    assert masked("CFcanaryTok3n0123456789") == "'CF…' (23 characters)"
    assert masked("abc") == "'…' (3 characters)"
    assert masked("ABC123") == "'A…' (6 characters)"
