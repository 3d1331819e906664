"""`aigw run` refuses bad settings and parameters before any kernel, twin or run folder exists, and says
how to finish after Ctrl-C."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

import pytest
from aigw import cli, runner
from aigw.cli import main
from aigw.config import VARIABLES
from cftwin.seed import generated_seed

from tests.steps_support import work_elsewhere

_CLEARED = (*VARIABLES, "AIGW_TARGET", "AIGW_RUN_ID", "AIGW_RUN_DIR", "AIGW_ENV_FILE")


@pytest.fixture
def elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working folder and an environment without any aigw variable."""
    return work_elsewhere(monkeypatch, tmp_path, _CLEARED)


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def test_cloudflare_without_settings_stops_before_the_first_notebook(
        elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = elsewhere / "empty.env"
    env_file.write_text("# nothing filled in\nCLOUDFLARE_ACCOUNT_ID=<your account id>\n")
    out = elsewhere / "run"
    assert main(["run", "--target", "cloudflare", "--env-file", str(env_file), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert _last_line(captured.err) == (
        f"aigw: error: CLOUDFLARE_ACCOUNT_ID is not set ({env_file}). Copy .dev.vars.example to .dev.vars and "
        "fill it in, or run `aigw run` to rehearse on the twin")
    assert "running" not in captured.err and "run folder:" not in captured.out
    assert not out.exists()


@pytest.mark.parametrize(("notebooks", "missing"), [
    ("01", "CLOUDFLARE_API_TOKEN is not set"),
    ("03", "Neither CF_AIG_TOKEN nor CLOUDFLARE_API_TOKEN is set"),
])
def test_cloudflare_without_the_token_a_notebook_needs(elsewhere: Path, capsys: pytest.CaptureFixture[str],
                                                       notebooks: str, missing: str) -> None:
    env_file = elsewhere / ".dev.vars"
    env_file.write_text(f"CLOUDFLARE_ACCOUNT_ID={secrets.token_hex(16)}\n")
    out = elsewhere / "run"
    assert main(["run", "--target", "cloudflare", "--notebooks", notebooks, "--out", str(out)]) == 1
    assert _last_line(capsys.readouterr().err).startswith(f"aigw: error: {missing}")
    assert not out.exists()


def test_twin_rehearsal_without_a_run_token_is_refused_in_one_line(
        elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The twin seeds CLOUDFLARE_API_TOKEN with what .dev.vars.example asks (no AI Gateway Run): without
    # CF_AIG_TOKEN every probe would get 401 / 2009, on the twin as on Cloudflare. Said before anything starts.
    seed = generated_seed()
    env_file = elsewhere / ".dev.vars"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in seed.to_environ().items() if k != "CF_AIG_TOKEN"))
    out = elsewhere / "run"
    assert main(["run", "--target", "twin", "--env-file", str(env_file), "--notebooks", "03", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert _last_line(captured.err) == (
        f"aigw: error: CF_AIG_TOKEN is not set in {env_file}: the gateway would get CLOUDFLARE_API_TOKEN, which "
        "holds AI Gateway Read, Write and Secrets Store Write but not Run, so every probe would answer 401 / code "
        "2009. Put a token with AI Gateway Run in CF_AIG_TOKEN (the API token's own value if it holds Run too)")
    assert "twin serving" not in captured.err
    assert not out.exists()


def test_cloudflare_run_without_a_run_token_says_so_in_one_line(
        elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_file = elsewhere / ".dev.vars"
    env_file.write_text(f"CLOUDFLARE_ACCOUNT_ID={secrets.token_hex(16)}\nCLOUDFLARE_API_TOKEN={secrets.token_hex(20)}\n")
    out = elsewhere / "run"
    # A bad -p stops the run right after the settings' preflight, before any request.
    assert main(["run", "--target", "cloudflare", "--notebooks", "03", "--out", str(out),
                 "-p", "max_tokens", "many"]) == 1
    notes = [line for line in capsys.readouterr().err.splitlines() if "CF_AIG_TOKEN" in line]
    assert notes == ["aigw: note: CF_AIG_TOKEN is not set, so the gateway gets CLOUDFLARE_API_TOKEN, which needs AI "
                     "Gateway Run as well (.dev.vars.example asks it for Read, Write and Secrets Store Write only); "
                     "without Run every probe answers 401 / code 2009: put a token with AI Gateway Run in "
                     "CF_AIG_TOKEN"]
    assert not out.exists()


def test_a_parameter_of_the_wrong_type_is_refused_before_the_twin_starts(
        elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = elsewhere / "run"
    assert main(["run", "--target", "twin", "--notebooks", "03", "--out", str(out), "-p", "max_tokens", "many"]) == 1
    captured = capsys.readouterr()
    assert _last_line(captured.err) == ("aigw: error: -p max_tokens 'm…' (4 characters): max_tokens is an int "
                                        "parameter. Use a whole number, e.g. 0")
    assert "twin serving" not in captured.err and "run folder:" not in captured.out
    assert not out.exists()


def test_ctrl_c_says_where_the_partial_run_is_and_how_to_finish(
        elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = elsewhere / "run"

    def interrupted(*_args: object, **_kwargs: object) -> runner.RunResult:
        out.mkdir()  # a folder the stop left unsealed (no manifest): it must not be called sealed
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_plan", interrupted)
    args = argparse.Namespace(env_file=None, target="twin", notebooks="01", parameter=[], out=out, faults=None,
                              twin_state=None)
    with pytest.raises(KeyboardInterrupt):
        cli.run_from_args(args)
    captured = capsys.readouterr()
    assert captured.out.strip() == f"run folder: {out}"
    assert _last_line(captured.err) == (
        f"aigw: stopped: {out} is NOT sealed (the stop came before its evidence was complete); do not use it as "
        "evidence; run the same command again to finish: the notebooks converge on the same state")
