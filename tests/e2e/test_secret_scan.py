"""The session's secret scan (local/secret_scan.py, run by conftest.py when the session's stack stops,
and by local/soak.py) can fail: a task token this stack issued, planted in a copy of one of its real
logs, is found as is, JSON-escaped and by its first half, and named by file, line and fingerprint only;
a callback whose token the collection misses makes the collection refuse to vouch for the scan."""

from __future__ import annotations

import json
import shutil

import pytest

import secret_scan
from run import run_once


@pytest.fixture(scope="module")
def secrets(stack):
    """The secrets of the session's stack as collected at its end; one run first if none was issued
    yet (this file run on its own)."""
    collected = secret_scan.collect(stack)
    if not collected.tokens:
        assert run_once(stack, "2021-06-26", timeout=120, echo=lambda *_: None) == 0
        collected = secret_scan.collect(stack)
    return collected


def test_the_tokens_come_from_the_histories_and_the_token_items(secrets, stack):
    assert secrets.sources["execution histories"] > 0 and secrets.sources["token items"] > 0, secrets.sources
    # every token a callback was accepted for is among them (collect() checks it, this is its input)
    called = secret_scan.called_back(stack.callbacks_log)
    assert called and called <= {secret_scan.fingerprint(t) for t in secrets.tokens}


def test_a_planted_token_is_found_in_every_form(secrets, stack, tmp_path):
    token = sorted(secrets.tokens)[0]
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "completer.log"
    shutil.copy(stack.run_dir / "logs" / "completer.log", log)
    real_lines = len(log.read_text().splitlines())
    assert secret_scan.scan(tmp_path, secrets) == [], "the real log is clean"

    with log.open("a") as fh:
        fh.write(json.dumps({"level": "INFO", "fields": {"message": "completed", "task_token": token}}) + "\n")
        fh.write(json.dumps({"message": json.dumps({"taskToken": token})}) + "\n")  # JSON in JSON
        fh.write(f"token prefix {token[: len(token) // 2]}\n")
    findings = secret_scan.scan(tmp_path, secrets)
    print_ = secret_scan.fingerprint(token)
    assert [f.split(":")[1] for f in findings] == [str(real_lines + 1), str(real_lines + 2), str(real_lines + 3)]
    assert all(f.startswith("logs/completer.log:") and f"task token {print_}" in f for f in findings), findings
    assert "(its first half)" in findings[2]
    assert token not in "".join(findings), "a finding never shows the secret"


def test_an_uncollected_callback_token_makes_the_scan_refuse(secrets, stack):
    called = secret_scan.called_back(stack.callbacks_log)
    dropped = {t for t in secrets.tokens if secret_scan.fingerprint(t) == sorted(called)[0]}
    with pytest.raises(secret_scan.SecretScanError, match="not collected"):
        secret_scan.check_complete(secrets.tokens - dropped, stack.callbacks_log)
