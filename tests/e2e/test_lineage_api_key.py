"""The OpenLineage API key end to end (template parameter OpenLineageApiKeySecretArn, docs/lineage.md, "The
API key"): template.yaml deployed on a stack of its own whose receiver requires `Authorization: Bearer
<key>` (local/openlineage_receiver.py answers 401 `Unauthorized` to a missing or wrong one), with the key's
Secrets Manager secret on moto (LocalStack.lineage_api_key / lineage_secret). The functions read the secret
at their first event, not at start.

- The secret holds the right key (as `{"apiKey": ...}`): every step's START and COMPLETE and the execution's
  own run arrive and validate, as tests/e2e/test_lineage.py checks them; nothing is refused or counted.
- The secret holds a wrong key (the key itself, the other form): the run still SUCCEEDS with every step
  closed once and none slowed, the receiver stores no event and refused only `Unauthorized` ones, and
  every event is logged as not delivered (`LineageRejected`) and counted in `LineageEmitFailures`.
- The secret does not exist: the run SUCCEEDS, no request reaches the receiver, and the failed reads are
  logged (`LineageApiKeyUnreadable`) and counted.

Each stack is checked by local/secret_scan.py when it stops: the key, the secret's value and the receiver's
key appear in no file the run wrote (the functions' logs included).

    .venv/bin/python -m pytest tests/e2e/test_lineage_api_key.py -x -q      # needs `make build`
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from pathlib import Path

import lineage
import pipeline
import secret_scan
from conftest import E2E_PARAMETERS
from stack import LINEAGE_KEY_PARAMETER, LocalStack
from test_lineage import assert_lineage, assert_nothing_refused, run_and_collect
from test_lineage_outage import EMIT_TIMEOUT_SECONDS, step_seconds
from test_pipeline import ALL_STEPS, assert_succeeded_once_per_step, execute

SENDERS = ("SubmitterFunction", "CompleterFunction", "ReconcilerFunction")  # template.yaml's LineageApiKey grants
SECRET_VAR = "OPENLINEAGE_API_KEY_SECRET_ARN"  # etl_callback::lineage::API_KEY_SECRET_VAR
MISSING_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-openlineage-key-AbCdEf"


def new_key() -> str:
    return "ol-" + secrets.token_hex(20)


@contextlib.contextmanager
def key_stack(run_dir: Path, key: str, secret: str | None = None, parameters: dict[str, str] | None = None):
    s = LocalStack(run_dir=run_dir, parameters={**E2E_PARAMETERS, **(parameters or {})},
                   lineage_api_key=key, lineage_secret=secret)
    s.start()
    try:
        arn = s.template_parameters[LINEAGE_KEY_PARAMETER]
        for function in SENDERS:
            assert s.deployment.functions[function].env[SECRET_VAR] == arn, function
        yield s
    finally:
        print("\n" + secret_scan.stop_and_check(s))  # raises SecretLeak when the key is in any file


def log_lines(stack, needle: str) -> list[dict]:
    """The JSON log lines of the functions containing `needle`."""
    found = []
    for log in (stack.run_dir / "logs").glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if needle in line and "{" in line:
                try:
                    found.append(json.loads(line[line.index("{"):]))
                except ValueError:
                    continue
    return found


def emit_failures(stack) -> int:
    """The LineageEmitFailures the functions printed as EMF, under this stack's name."""
    total = 0
    for doc in log_lines(stack, '"LineageEmitFailures"'):
        if "_aws" in doc:
            assert doc["Stack"] == stack.deployment.stack_name, doc
            total += doc["LineageEmitFailures"]
    return total


def not_delivered(stack) -> dict[str, int]:
    """error_type -> how many `lineage event not delivered` warnings name it."""
    counts: dict[str, int] = {}
    for doc in log_lines(stack, "lineage event not delivered"):
        fields = doc.get("fields", doc)
        name = fields.get("error_type") or doc.get("error_type")
        counts[name] = counts.get(name, 0) + 1
    return counts


def wait_for_failures(stack, at_least: int, timeout: float = 15) -> int:
    """The execution's own run is sent by the reconciler after the execution ended: wait for its count."""
    deadline = time.monotonic() + timeout
    while (n := emit_failures(stack)) < at_least and time.monotonic() < deadline:
        time.sleep(0.3)
    return n


def test_with_the_right_key_in_the_secret_every_event_arrives_and_validates(tmp_path):
    key = new_key()
    with key_stack(tmp_path / "stack", key, secret=json.dumps({"apiKey": key, "note": "local"})) as s:
        desc, ours, others = run_and_collect(s, s.lineage_url, "e2e-lineage-key")
        assert desc["status"] == "SUCCEEDED", desc
        definition = pipeline.load()
        assert_lineage(s, definition, ours, {step: "COMPLETE" for step in definition.names}, "COMPLETE")
        assert any(r.parent_run_id is None for r in ours.values()), "the execution's own run arrived too"
        assert others == []
        assert_nothing_refused(s.lineage_url)
        assert emit_failures(s) == 0
        assert not_delivered(s) == {}


def test_with_a_wrong_key_the_run_succeeds_nothing_is_stored_and_every_event_is_counted(tmp_path):
    key = new_key()
    with key_stack(tmp_path / "stack", key, secret=new_key()) as s:
        desc, history = execute(s)
        assert_succeeded_once_per_step(desc, history)
        # a 401 comes at once: no step waits for its events
        took = step_seconds(history)
        assert all(t < EMIT_TIMEOUT_SECONDS for t in took.values()), took

        # every step's START and terminal event, and the execution's own two: refused or skipped, each counted
        failures = wait_for_failures(s, 2 * len(ALL_STEPS) + 2)
        assert failures >= 2 * len(ALL_STEPS) + 2, failures
        got = lineage.received(s.lineage_url)
        assert got["events"] == [], "no event is stored without the right key"
        assert got["rejected"] and {r["error"] for r in got["rejected"]} == {"Unauthorized"}, got["rejected"]
        reasons = not_delivered(s)
        assert reasons.get("LineageRejected", 0) >= 1, reasons
        assert set(reasons) <= {"LineageRejected", "LineageSkipped"}, reasons
        assert sum(reasons.values()) == failures, (reasons, failures)


def test_an_unreadable_secret_fails_no_step_sends_nothing_and_is_counted(tmp_path):
    with key_stack(tmp_path / "stack", new_key(), parameters={LINEAGE_KEY_PARAMETER: MISSING_SECRET}) as s:
        desc, history = execute(s)
        assert_succeeded_once_per_step(desc, history)
        took = step_seconds(history)
        assert all(t < EMIT_TIMEOUT_SECONDS for t in took.values()), took

        failures = wait_for_failures(s, 2 * len(ALL_STEPS) + 2)
        assert failures >= 2 * len(ALL_STEPS) + 2, failures
        got = lineage.received(s.lineage_url)
        assert got["events"] == [] and got["rejected"] == [], "without a key nothing is sent at all"
        reasons = not_delivered(s)
        assert reasons.get("LineageApiKeyUnreadable", 0) >= 1, reasons
        assert set(reasons) <= {"LineageApiKeyUnreadable", "LineageSkipped"}, reasons
        messages = [d.get("fields", d).get("error", "") for d in log_lines(s, "LineageApiKeyUnreadable")]
        assert any("ResourceNotFoundException" in m for m in messages), messages
