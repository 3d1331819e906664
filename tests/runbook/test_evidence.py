"""aigw.evidence: checks in notebooks, criteria, criterion 6, HTML exports, sealing and verifying."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

import nbformat
import pytest
from aigw import evidence
from aigw.config import Secret
from aigw.errors import EvidenceError
from aigw.evidence import (
    CHECK_MIMETYPE,
    Check,
    check_setup_documented,
    criteria,
    read_checks,
    recording,
    summarize_criteria,
    summary,
)
from aigw.evidence.export_worker import ExportWorker


def _check_output(criterion: int | None, check: str, status: str, detail: str = "") -> nbformat.NotebookNode:
    payload = {"criterion": criterion, "check": check, "status": status, "detail": detail, "time": "t"}
    return nbformat.v4.new_output("display_data", data={CHECK_MIMETYPE: payload, "text/plain": check})


def _executed_notebook(path: Path, extra_output: str = "") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("evidence.record_all(result)"),
        nbformat.v4.new_code_cell("print('see https://example.com/docs')"),
    ]
    nb.cells[2].outputs = [_check_output(1, "gateway listed", "pass", "ok"), _check_output(2, "keys", "fail", "x")]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"done {extra_output}\n")]
    nbformat.write(nb, path)
    return path


def _repo(root: Path, *, docs: bool, example_vars: list[str]) -> Path:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    if docs:
        for name in evidence.REQUIRED_DOCS:
            (root / name).write_text("# Doc\n\n" + "Step by step, with the commands to run. " * 20)
    (root / ".dev.vars.example").write_text("".join(f"# about {v}\n{v}=<value>\n" for v in example_vars))
    return root


def _all_config_vars() -> list[str]:
    return criteria._config_variables()


def test_record_outside_a_kernel_prints_and_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    value = "canary-" + secrets.token_urlsafe(20)
    evidence.use_secrets([Secret(value, "CF_AIG_TOKEN")])
    check = evidence.record(3, "unified endpoint", "pass", f"sent with {value}")
    assert check.detail == "sent with ***"
    assert check.criterion == 3 and check.status == "pass" and check.time.endswith("Z")
    out = capsys.readouterr().out
    assert "PASS" in out and value not in out


def test_record_rejects_bad_status_and_criterion() -> None:
    with pytest.raises(ValueError, match="status"):
        evidence.record(1, "x", "ok")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="criterion"):
        evidence.record(7, "x", "pass")


def test_record_all_raises_after_recording_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    checks = [Check(1, "listed", "pass"), Check(1, "settings", "fail", "cache_ttl 0"), Check(1, "auth", "pass")]
    with pytest.raises(evidence.CheckFailed, match="criterion 1 check failed: settings: cache_ttl 0"):
        evidence.record_all(checks)
    assert capsys.readouterr().out.count("\n") == 3


def test_read_checks_with_cell_index(tmp_path: Path) -> None:
    path = _executed_notebook(tmp_path / "01_demo.ipynb")
    checks = read_checks(path)
    assert [(c.criterion, c.status, c.cell, c.notebook) for c in checks] == [
        (1, "pass", 2, "01_demo"), (2, "fail", 2, "01_demo")]


def test_summarize_criteria() -> None:
    checks = [Check(1, "a", "pass"), Check(1, "b", "pass"), Check(2, "c", "pass"), Check(2, "d", "fail"),
              Check(3, "e", "skip"), Check(None, "note", "fail")]
    statuses = {c.number: c.status for c in summarize_criteria(checks)}
    # A skipped check makes its criterion incomplete (issue 11: it used to read "skip" and count for nothing).
    assert statuses == {1: "pass", 2: "fail", 3: "incomplete", 4: "not run", 5: "not run", 6: "not run"}


_PROVIDERS = ("google-ai-studio/gemini-2.5-flash", "openai/gpt-4o", "anthropic/claude-sonnet-4-5")


def _by_number(checks: list[Check]) -> dict[int, evidence.Criterion]:
    return {c.number: c for c in summarize_criteria(checks)}


def test_criteria_3_and_4_pass_only_with_a_passing_check_for_each_provider() -> None:
    every = [Check(n, f"{m} answers", "pass", subject=m) for n in (3, 4) for m in _PROVIDERS]
    assert {n: _by_number(every)[n].status for n in (3, 4)} == {3: "pass", 4: "pass"}
    one = [Check(n, "openai answers", "pass", subject="openai/gpt-4o") for n in (3, 4)]
    for criterion in _by_number(one)[3], _by_number(one)[4]:
        assert criterion.status == "incomplete"
        assert "not checked: google-ai-studio, anthropic" in criterion.reason


def test_a_skip_makes_a_criterion_incomplete_and_says_why() -> None:
    checks = [Check(4, f"{m} answers", "pass", subject=m) for m in _PROVIDERS[:2]]
    checks.append(Check(4, "anthropic answers", "skip", "not sent: its worst case $0.001 would pass probe_budget_usd",
                        subject=_PROVIDERS[2]))
    criterion = _by_number(checks)[4]
    assert criterion.status == "incomplete"
    assert criterion.reason == "skipped: probe budget (anthropic/claude-sonnet-4-5)"


def test_a_failed_check_fails_its_criterion_even_with_every_provider_passing() -> None:
    checks = [Check(4, f"{m} answers", "pass", subject=m) for m in _PROVIDERS]
    checks.append(Check(4, "log ids", "fail", "no cf-aig-log-id"))
    assert _by_number(checks)[4].status == "fail" and "log ids (no cf-aig-log-id)" in _by_number(checks)[4].reason


def test_run_status_words() -> None:
    passing = [Check(n, "c", "pass", subject=m) for n in range(1, 7) for m in _PROVIDERS]
    criteria = summarize_criteria(passing)
    assert evidence.run_status(criteria, passing, target="twin") == "rehearsal-passed"
    assert evidence.run_status(criteria, passing, target="cloudflare") == "passed"
    assert evidence.run_status(criteria, passing, target="cloudflare", notebook_failed=True) == "failed"
    assert evidence.run_status(criteria, passing, target="cloudflare", leaked=True) == "failed"
    noted = [*passing, Check(None, "cache MISS then HIT", "fail")]
    assert evidence.run_status(summarize_criteria(noted), noted, target="cloudflare") == "failed"
    skipped = [*passing, Check(3, "unified", "skip", "budget", subject=_PROVIDERS[0])]
    assert evidence.run_status(summarize_criteria(skipped), skipped, target="cloudflare") == "incomplete"


def test_raise_failures_lists_every_failure_once(capsys: pytest.CaptureFixture[str]) -> None:
    recording._recorded.clear()
    evidence.raise_failures()  # nothing failed: nothing raised
    checks = [Check(4, "openai", "fail", "503 server_error"), Check(3, "unified", "pass"),
              Check(None, "cache", "fail", "MISS then MISS")]
    evidence.record_all(checks, raise_on_fail=False)
    with pytest.raises(evidence.CheckFailed) as caught:
        evidence.raise_failures()
    assert str(caught.value) == ("2 checks failed: (1) criterion 4: openai: 503 server_error; "
                                 "(2) note: cache: MISS then MISS")
    # A cell run again (JupyterLab) replaces its earlier result: only what is still failing is listed.
    evidence.record(4, "openai", "pass", "200")
    with pytest.raises(evidence.CheckFailed, match=r"^check failed: cache: MISS then MISS$"):
        evidence.raise_failures()
    recording._recorded.clear()


def test_criterion_6_fails_without_docs_and_passes_with_them(tmp_path: Path) -> None:
    bare = _repo(tmp_path / "bare", docs=False, example_vars=_all_config_vars())
    results = check_setup_documented(bare)
    assert [c.status for c in results] == ["fail", "fail", "fail", "pass"]
    full = _repo(tmp_path / "full", docs=True, example_vars=_all_config_vars())
    assert {c.status for c in check_setup_documented(full)} == {"pass"}


def test_criterion_6_names_a_variable_missing_from_the_example(tmp_path: Path) -> None:
    variables = _all_config_vars()
    assert {"CLOUDFLARE_ACCOUNT_ID", "CF_AIG_TOKEN", "OPENAI_API_KEY", "AIGW_PROVIDER_BASE_URL"} <= set(variables)
    root = _repo(tmp_path, docs=True, example_vars=[v for v in variables if v != "CF_AIG_TOKEN"])
    last = check_setup_documented(root)[-1]
    assert last.status == "fail" and "CF_AIG_TOKEN" in last.detail


def test_criterion_6_rejects_stub_documents(tmp_path: Path) -> None:
    root = _repo(tmp_path, docs=True, example_vars=_all_config_vars())
    (root / evidence.REQUIRED_DOCS[0]).write_text("# TODO\n")
    assert check_setup_documented(root)[0].status == "fail"


def test_html_export_is_self_contained_with_cell_anchors(tmp_path: Path) -> None:
    path = _executed_notebook(tmp_path / "01_demo.ipynb")
    html = evidence.export_html(path, tmp_path / "01_demo.html").read_text()
    remote = re.findall(r"""\b(?:src|href)\s*=\s*["']?https?://""", html, flags=re.I)
    assert remote == []
    assert "import mermaid" not in html and "cdnjs" not in html.split("</style>")[-1]
    for index in range(4):
        assert f'id="cell-{index}"' in html


def test_the_export_worker_makes_the_same_html_in_its_own_process(tmp_path: Path) -> None:
    path = _executed_notebook(tmp_path / "01_demo.ipynb")
    worker = ExportWorker(environ={k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")})
    try:
        made = worker.export(path, tmp_path, "run-x")
        assert made == evidence.run_html_path(tmp_path, path)
        html = made.read_text()
        assert all(f'id="cell-{index}"' in html for index in range(4)) and "01_demo — run run-x" in html
        with pytest.raises(EvidenceError, match=re.escape("HTML export of missing.ipynb failed: FileNotFoundError")):
            worker.export(tmp_path / "missing.ipynb", tmp_path, "run-x")
        assert worker.export(path, tmp_path, "run-y").read_text().count("run run-y") >= 1  # still serving
        worker_pid = worker._process.pid if worker._process else 0
        assert worker_pid > 0 and os.getpriority(os.PRIO_PROCESS, worker_pid) > os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        worker.close()
    worker.close()  # a second close is nothing
    assert worker._process is None


def test_an_export_worker_that_died_is_one_error(tmp_path: Path) -> None:
    path = _executed_notebook(tmp_path / "01_demo.ipynb")
    worker = ExportWorker()
    try:
        worker.export(path, tmp_path, "run-x")
        assert worker._process is not None
        worker._process.kill()
        worker._process.wait()
        with pytest.raises(EvidenceError, match="the HTML export worker stopped"):
            worker.export(path, tmp_path, "run-x")
    finally:
        worker.close()


def _seal(run_dir: Path, root: Path, **kwargs: object) -> evidence.Bundle:
    notebooks = sorted(run_dir.glob("*.ipynb"))
    return evidence.seal_bundle(run_dir, run_id=run_dir.name, target="twin", settings=None,
                                parameters={"dry_run": False}, notebooks=notebooks, status="completed",
                                root=root, **kwargs)  # type: ignore[arg-type]


def test_seal_then_verify_and_tamper(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", docs=False, example_vars=_all_config_vars())
    run = tmp_path / "run"
    run.mkdir()
    _executed_notebook(run / "01_demo.ipynb")
    bundle = _seal(run, root)
    # A failed check (criterion 2 "keys") fails the bundle (issue 11: it used to read "incomplete").
    assert bundle.status == "failed"
    names = {p.name for p in run.iterdir()}
    assert {"01_demo.ipynb", "01_demo.html", "evidence.json", "SUMMARY.md", "manifest.json"} <= names
    doc = json.loads((run / "evidence.json").read_text())
    assert doc["criteria"][0]["status"] == "pass" and doc["criteria"][0]["links"] == ["01_demo.html#cell-2"]
    assert doc["criteria"][5]["status"] == "fail"
    assert doc["tools"]["papermill"] and doc["parameters"] == {"dry_run": False}
    summary = (run / "SUMMARY.md").read_text()
    assert "[01_demo cell 2](01_demo.html#cell-2)" in summary and "- [ ] Ready to execute Stage 1" in summary
    assert len(evidence.verify_bundle(run)) == len(names) - 1

    changed = tmp_path / "changed"
    shutil.copytree(run, changed)
    with (changed / "SUMMARY.md").open("a") as handle:
        handle.write("all criteria pass\n")
    with pytest.raises(EvidenceError, match=r"changed: SUMMARY\.md"):
        evidence.verify_bundle(changed)

    added = tmp_path / "added"
    shutil.copytree(run, added)
    (added / "extra.txt").write_text("x")
    (added / "01_demo.html").unlink()
    with pytest.raises(EvidenceError, match=r"missing: 01_demo\.html; added: extra\.txt"):
        evidence.verify_bundle(added)


def test_a_planted_secret_is_quarantined_and_fails_the_seal(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", docs=True, example_vars=_all_config_vars())
    value = "sk-" + secrets.token_urlsafe(30)
    run = tmp_path / "run"
    run.mkdir()
    _executed_notebook(run / "01_clean.ipynb")
    _executed_notebook(run / "02_leaky.ipynb", extra_output=value)
    with pytest.raises(EvidenceError, match="02_leaky"):
        _seal(run, root, secrets=[Secret(value, "OPENAI_API_KEY")])
    assert not (run / "02_leaky.ipynb").exists() and not (run / "02_leaky.html").exists()
    assert (run / "01_clean.html").exists()
    for path in run.rglob("*"):
        assert value.encode() not in path.read_bytes(), path
    doc = json.loads((run / "evidence.json").read_text())
    assert doc["status"] == "failed"
    assert {q["file"] for q in doc["quarantined"]} == {"02_leaky.ipynb", "02_leaky.html"}
    evidence.verify_bundle(run)


def test_the_retries_note_reads_as_a_sentence_and_keeps_its_json() -> None:
    stats = {"requests": 34, "retries": 2, "retries_by_reason": {"429": 2}, "recoveries": 0,
             "recoveries_by_outcome": {}, "budget_waits": 1, "budget_wait_s": 0.25,
             "data_plane": {"requests": 30, "retries": 0}}
    check = Check(None, "retries", "pass", data=stats)
    assert check.markdown() == ("✅ **PASS** · note · retries — 34 requests (30 through the gateway), 2 (429 2) "
                                "retried, 1 waits for the API budget (0.2 s)")
    assert check.payload()["data"] == stats  # evidence.json keeps the numbers
    # Any other check, or a retries note that is not statistics, is shown as recorded.
    assert Check(None, "retries", "pass", "not json").markdown().endswith("retries — not json")
    assert Check(None, "gateway change", "pass", '{"requests": 1}').markdown().endswith('{"requests": 1}')


def test_links_are_labelled_as_the_reader_sees_the_cell(tmp_path: Path) -> None:
    path = _executed_notebook(tmp_path / "01_demo.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].execution_count = 7  # the HTML shows "In [7]" for notebook cell index 2
    nbformat.write(nb, path)
    checks = evidence.read_checks(path)
    assert checks[0].where == "01_demo In [7]" and checks[0].cell == 2
    summary = evidence.summarize_criteria(checks)
    assert summary[0].links() == [("01_demo In [7]", "01_demo.html#cell-2")]


def _overhead_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("evidence.record_all(overhead)")]
    nb.cells[0].outputs = [_check_output(None, "gateway overhead within the contract's budget", "pass",
                                         "median 121.0 ms")]
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("target", ["twin", "cloudflare"])
def test_a_failed_bundle_says_why_at_the_top(tmp_path: Path, target: str) -> None:
    root = _repo(tmp_path / "repo", docs=True, example_vars=_all_config_vars())
    run = tmp_path / "run"
    run.mkdir()
    _overhead_notebook(run / "03_demo.ipynb")
    # Where the requests went, as a kernel records it (issue 11: production evidence needs Cloudflare's hosts).
    (run / ".hosts").mkdir()
    host = "gateway.ai.cloudflare.com" if target == "cloudflare" else "127.0.0.1:8787"
    (run / ".hosts" / "1-kernel.log").write_text(f"{host}\n" * 3)
    failure = {"notebook": "03_demo", "cell": 0, "error": "CheckFailed: criterion 4 check failed: openai: 503"}
    evidence.seal_bundle(run, run_id="r1", target=target, settings=None, parameters={"models": "openai/gpt-4o"},
                         notebooks=[run / "03_demo.ipynb"], status="failed", root=root, failure=failure)
    doc = json.loads((run / "evidence.json").read_text())
    assert doc["status"] == "failed" and doc["failure"] == failure
    assert doc["production_evidence"] is (target == "cloudflare")
    assert doc["why"] == "03_demo cell 0 failed: CheckFailed: criterion 4 check failed: openai: 503"
    lines = (run / "SUMMARY.md").read_text().splitlines()
    assert lines[2].startswith("**Status: FAILED**")
    assert ("REHEARSAL on the local twin: not production evidence" in lines[2]) is (target == "twin")
    assert lines[4] == ("**Why:** 03\\_demo cell 0 failed: CheckFailed: criterion 4 check failed: openai: 503 "
                        "([03_demo cell 0](03_demo.html#cell-0))")
    assert lines[6] == '* **Parameters:** `models` = `"openai/gpt-4o"`'
    assert lines[7] == "* **Contract differences:**" and "`google/gemini-2.5-flash`" in lines[8]
    overhead = next(line for line in lines if "gateway overhead" in line)
    assert ("rehearsal: shows the measurement works" in overhead) is (target == "twin")


def test_an_incomplete_bundle_names_the_criteria_and_a_passed_one_has_no_why(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo", docs=True, example_vars=_all_config_vars())
    run = tmp_path / "run"
    run.mkdir()
    _overhead_notebook(run / "03_demo.ipynb")
    bundle = evidence.seal_bundle(run, run_id="r2", target="twin", settings=None, parameters={},
                                  notebooks=[run / "03_demo.ipynb"], status="completed", root=root)
    doc = json.loads((run / "evidence.json").read_text())
    assert bundle.status == doc["status"] == "incomplete" and doc["failure"] is None
    assert doc["why"].startswith("criterion 1 not run: no check of it ran")
    assert "criterion 6" not in doc["why"]
    assert "**Why:** criterion 1 not run" in (run / "SUMMARY.md").read_text()
    assert "none given (every notebook's defaults)" in (run / "SUMMARY.md").read_text()


def test_verify_evidence_states_the_sealed_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from aigw.cli import main

    root = _repo(tmp_path / "repo", docs=True, example_vars=_all_config_vars())
    run = tmp_path / "run"
    run.mkdir()
    _overhead_notebook(run / "03_demo.ipynb")
    evidence.seal_bundle(run, run_id="r3", target="twin", settings=None, parameters={},
                         notebooks=[run / "03_demo.ipynb"], status="completed", root=root)
    assert main(["verify-evidence", str(run)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("aigw: status incomplete (rehearsal: not production evidence); why: criterion 1 not run")


def test_a_rest_parity_note_has_its_own_summary_row_and_never_the_verdict() -> None:
    from aigw import evidence

    failed = Check(None, f"{evidence.PARITY_CHECK}: openai/gpt-4o answers like compat", "fail", "402 gateway_error",
                   subject="openai/gpt-4o")
    passed = Check(None, f"{evidence.PARITY_CHECK}: google/gemini-2.5-flash answers like compat", "pass",
                   subject="google-ai-studio/gemini-2.5-flash")
    lock = Check(None, "gateway refuses a request without cf-aig-authorization (401, code 2009)", "fail")
    assert not evidence.counts_for_verdict(failed) and evidence.counts_for_verdict(lock)
    rows = summary._parity_rows([passed, failed], {"pass": "PASS", "fail": "FAIL", "incomplete": "INC"})
    assert len(rows) == 1 and rows[0].startswith("| — | REST API parity") and "| FAIL —" in rows[0]
    assert r"openai/gpt-4o: fail (402 gateway\_error)" in rows[0]  # escaped for Markdown
    assert summary._parity_rows([lock], {}) == []
    criteria = summarize_criteria([failed])
    assert evidence.run_status(criteria, [failed], target="twin") == "incomplete"  # criteria not run, not failed
    assert evidence.run_status(criteria, [failed, lock], target="twin") == "failed"


def test_a_failed_parity_note_alone_never_stops_a_notebook(capsys: pytest.CaptureFixture[str]) -> None:
    recording._recorded.clear()
    parity = Check(None, f"{evidence.PARITY_CHECK}: openai/gpt-4o answers like compat", "fail", "402")
    evidence.record_all([parity])  # raise_on_fail: nothing raised for the note alone
    evidence.raise_failures()
    evidence.record_all([Check(3, "unified", "fail", "503")], raise_on_fail=False)
    with pytest.raises(evidence.CheckFailed, match=r"^2 checks failed: .*REST API parity.*: 402; .*unified: 503$"):
        evidence.raise_failures()
    recording._recorded.clear()
