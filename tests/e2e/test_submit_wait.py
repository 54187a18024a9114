"""The submitter's wait (template parameter SubmitWaitSeconds, docs/how-it-works.md "The submitter's
wait") on its own local stack: template.yaml deployed with SubmitWaitSeconds=WAIT, so the submitter
starts each batch with WaitTimeSeconds and the emulator answers when the batch ends or the wait runs
out. Each test checks that every step was completed exactly once (one TaskSucceeded per step, one
statement per step) and who closed it (`completedBy` in the rendezvous item).

The emulator's fault injection orders the status event against the submitter: `event_delay_ms`
publishes it after the submitter is done (so the wait's outcome is recorded first),
`event_before_response` with `hold_response` has the completer record it while the submit call still
waits for its answer (released once the completer handled the event).

    .venv/bin/python -m pytest tests/e2e/test_submit_wait.py -x -q      # needs `make build`
"""

from __future__ import annotations

import json
import time

import pytest

import secret_scan
from conftest import E2E_PARAMETERS
from run import follow, start_execution
from stack import LocalStack
from test_pipeline import (ALL_STEPS, HOLD_BOUND_MS, RUN_DATE, answers_released_once_events_handled,
                           assert_succeeded_once_per_step, original_script, put_script, set_faults, task_events)
from test_safety_net import callbacks, held_fault_logged, history, items, load_item_scheduled, statements

WAIT = 3  # seconds: the pipeline's own statements end in milliseconds, well within it
# The event reaches the completer this long after its statement ended: after the submitter is done.
LATE_EVENT_MS = 2500


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack of its own, deployed with the wait (the session's stack pins SubmitWaitSeconds 0)."""
    s = LocalStack(run_dir=tmp_path_factory.mktemp("local-stack-wait"),
                   parameters={**E2E_PARAMETERS, "SubmitWaitSeconds": str(WAIT)})
    s.start()
    assert s.deployment.functions["SubmitterFunction"].env["SUBMIT_WAIT_SECONDS"] == str(WAIT)
    try:
        yield s
    finally:
        print("\n" + secret_scan.stop_and_check(s))


@pytest.fixture(autouse=True)
def clean(stack):
    set_faults(stack, None)
    stack.faults_file.unlink(missing_ok=True)
    yield
    set_faults(stack, None)
    stack.faults_file.unlink(missing_ok=True)
    put_script(stack, "load_item.sql", original_script(stack, "load_item.sql"))


def run(stack, prefix, timeout=120):
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix=prefix)
    desc = follow(sfn, arn, echo=print, timeout=timeout)
    return desc, history(sfn, arn), arn.rsplit(":", 1)[-1]


def completed_by(stack, name):
    return {step: item.get("completedBy") for step, item in items(stack, name).items()}


def one_statement_per_step(stack, name):
    for step in ALL_STEPS:
        assert len(statements(stack, name, step)) == 1, step


def completer_log(stack):
    return [json.loads(line) for line in (stack.run_dir / "logs" / "completer.log").read_text().splitlines()
            if line.startswith("{")]


def completions_logged(stack, statement_ids):
    """What the completer's handling of each event of these statements decided, in log order."""
    out = {}
    for line in completer_log(stack):
        fields = line.get("fields", line)
        if fields.get("message") == "status event handled" and fields.get("statement_id") in statement_ids:
            out.setdefault(fields["statement_id"], []).append(fields.get("completion"))
    return out


def statement_ids(stack, name):
    return {item["statementId"]: step for step, item in items(stack, name).items()}


def test_statements_ending_within_the_wait_are_closed_by_the_submitter(stack):
    set_faults(stack, {"event_delay_ms": LATE_EVENT_MS})
    desc, events, name = run(stack, "e2e-wait-in")
    assert_succeeded_once_per_step(desc, events)
    one_statement_per_step(stack, name)
    assert completed_by(stack, name) == {step: "submitter-wait" for step in ALL_STEPS}
    assert {i["outcome"] for i in items(stack, name).values()} == {"SUCCEEDED"}
    # every late event found its task completed and did nothing
    ids = statement_ids(stack, name)
    logged = wait_until(lambda: (c := completions_logged(stack, ids)) and len(c) == len(ids) and c, 15,
                        "the late events handled")
    assert all(decisions == ["AlreadyCompleted"] for decisions in logged.values()), logged


def test_a_statement_outlasting_the_wait_is_closed_by_its_event_or_the_reconciler(stack):
    slow = original_script(stack, "load_item.sql") + f"\nselect pg_sleep({WAIT + 2});\n"
    put_script(stack, "load_item.sql", slow)
    set_faults(stack, {"event_delay_ms": LATE_EVENT_MS})
    desc, events, name = run(stack, "e2e-wait-out")
    assert_succeeded_once_per_step(desc, events)
    one_statement_per_step(stack, name)
    by = completed_by(stack, name)
    # The wait ran out, so the step was closed the way it is without the wait: by its status event, or
    # by the reconciler when its sweep (every 2 s, grace 3 s on this stack) finds the ended statement
    # in the 2.5 s before the late event arrives (a CI run on a loaded machine saw the reconciler win).
    assert by.pop("LoadItem") in ("completer", "reconciler")
    assert by == {step: "submitter-wait" for step in ALL_STEPS if step != "LoadItem"}
    (st,) = statements(stack, name, "LoadItem")
    assert (st["UpdatedAt"] - st["CreatedAt"]).total_seconds() > WAIT


def test_an_event_arriving_during_the_wait_is_recorded_first_and_the_submitter_closes_once(stack):
    # The emulator runs each batch and publishes its event, then holds the submit's answer back until
    # the completer has handled it: the completer records every event while the submitter still waits,
    # finds no token and does nothing.
    set_faults(stack, {"event_before_response": True, "hold_response": True, "response_delay_ms": HOLD_BOUND_MS})
    with answers_released_once_events_handled(stack) as released:
        desc, events, name = run(stack, "e2e-wait-during")
    assert_succeeded_once_per_step(desc, events)
    one_statement_per_step(stack, name)
    assert completed_by(stack, name) == {step: "submitter-wait" for step in ALL_STEPS}
    assert released == set(statement_ids(stack, name))  # every answer let go by its handled event
    logged = completions_logged(stack, statement_ids(stack, name))
    assert len(logged) == len(ALL_STEPS)
    assert all(decisions == ["WaitingForToken"] for decisions in logged.values()), logged


def test_duplicate_events_after_the_wait_complete_nothing_twice(stack):
    set_faults(stack, {"event_delay_ms": LATE_EVENT_MS, "duplicate_event_count": 2})
    desc, events, name = run(stack, "e2e-wait-dup")
    assert_succeeded_once_per_step(desc, events)
    one_statement_per_step(stack, name)
    assert completed_by(stack, name) == {step: "submitter-wait" for step in ALL_STEPS}
    ids = statement_ids(stack, name)
    logged = wait_until(lambda: (c := completions_logged(stack, ids))
                        and sum(map(len, c.values())) == 3 * len(ids) and c, 20, "the duplicates handled")
    assert all(decisions == ["AlreadyCompleted"] * 3 for decisions in logged.values()), logged
    dlq_url = stack.deployment.queues["StatementEventsDeadLetterQueue"]
    assert stack.client("sqs").receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0).get("Messages") is None


def test_a_submit_retried_after_its_wait_closed_the_task_reattaches_and_closes_the_retry_once(stack):
    """LoadItem's first submit waits, sees its batch finish and sends the callback itself; the
    adapter records the invoke's failure first (adapter patch 33, "failure_first"), so that callback is
    refused (TaskTimedOut) and the Task retries. The retry's waited submit carries the same ClientToken:
    the same statement, already FINISHED; it re-attaches its token and closes its own task."""
    set_faults(stack, {"event_delay_ms": LATE_EVENT_MS})
    seen = len(callbacks(stack))
    stack.faults_file.write_text(json.dumps([{"fail_after_invoke": True, "function_contains": "Submitter",
                                              "payload_contains": '"step":"LoadItem"', "order": "failure_first",
                                              "times": 1},
                                             {"retry_interval_scale": 0.02, "state": "LoadItem"}]))  # patch 35
    desc, events, name = run(stack, "e2e-wait-retry")
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    assert held_fault_logged(stack, "failure_first"), "the fault did not happen"
    assert len(load_item_scheduled(events)) == 2
    assert "TaskTimedOut" in [c["error"] for c in callbacks(stack)[seen:]], "no callback was refused"
    one_statement_per_step(stack, name)
    assert len(task_events(events, "TaskSucceeded")) == len(ALL_STEPS)
    item = items(stack, name)["LoadItem"]
    assert (item["outcome"], item["attempt"], item["completedBy"]) == ("SUCCEEDED", "1", "submitter-wait")
    assert completed_by(stack, name) == {step: "submitter-wait" for step in ALL_STEPS}


def test_an_sdk_retry_of_the_waited_submit_gets_the_same_statement(stack):
    """The emulator starts LoadItem's batch, then answers the waited submit with HTTP 500; the SDK
    retries it with the same ClientToken and gets the same statement, with its end state."""
    set_faults(stack, {"rules": [
        {"statement_name_contains": "/LoadItem", "fail_response_after_submit": True, "response_fault_times": 1,
         "event_delay_ms": LATE_EVENT_MS},
        {"event_delay_ms": LATE_EVENT_MS}]})
    desc, events, name = run(stack, "e2e-wait-sdkretry")
    assert_succeeded_once_per_step(desc, events)
    one_statement_per_step(stack, name)
    assert completed_by(stack, name) == {step: "submitter-wait" for step in ALL_STEPS}
    (st,) = statements(stack, name, "LoadItem")
    log = (stack.run_dir / "logs" / "emulator.log").read_text().splitlines()
    mine = [line for line in log if f"statement_id={st['Id']}" in line]
    assert any("fault: statement submitted, failing the answer" in line for line in mine), "the fault did not happen"
    assert any("ClientToken seen before" in line for line in mine), "the SDK did not retry the submit"


def test_a_throttled_callback_after_the_wait_leaves_the_task_to_the_reconciler_and_closes_it_once(stack):
    """Step Functions refuses LoadItem's callbacks with ThrottlingException as often as the SDK tries
    (3 attempts, adapter fault `callback_error`): the submitter, whose one write had marked the task
    completed, takes the mark back and answers without failing the step. Its status event came during
    the submitter's tries and found the mark; the reconciler's lost-event recovery closes the task,
    once."""
    seen = len(callbacks(stack))
    stack.faults_file.write_text(json.dumps([{"callback_error": "ThrottlingException",
                                              "output_contains": '"step":"LoadItem"', "times": 3}]))
    desc, events, name = run(stack, "e2e-wait-throttled")
    assert_succeeded_once_per_step(desc, events)
    one_statement_per_step(stack, name)
    by = completed_by(stack, name)
    assert by.pop("LoadItem") in ("reconciler", "completer")
    assert by == {step: "submitter-wait" for step in ALL_STEPS if step != "LoadItem"}
    refused = [c for c in callbacks(stack)[seen:] if c["error"] == "ThrottlingException"]
    assert len(refused) == 3, "the fault did not refuse the submitter's three tries"
    log = (stack.run_dir / "logs" / "submitter.log").read_text()
    assert "the callback failed; the task waits again for its status event or the reconciler" in log
    assert items(stack, name)["LoadItem"]["outcome"] == "SUCCEEDED"


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_a_failing_check_that_ends_within_the_wait_is_failed_by_the_submitter_with_its_rows(stack):
    """The submitter closes a check itself as the completer would: it reads the rows and fails the task
    with the check's error name and record (the outcome logic is the shared library's, once)."""
    nothing = ("delete from store_sales where ss_sold_date_sk in "
               "(select d_date_sk from date_dim where d_date = {{run_date}}::date);\n")
    set_faults(stack, {"event_delay_ms": LATE_EVENT_MS})
    put_script(stack, "load_store_sales.sql", nothing)
    try:
        desc, _, name = run(stack, "e2e-wait-check")
    finally:
        put_script(stack, "load_store_sales.sql", original_script(stack, "load_store_sales.sql"))
    assert (desc["status"], desc["error"]) == ("FAILED", "Validation.NoSalesLoaded")
    cause = json.loads(desc["cause"])
    assert (cause["check"], cause["violations"], cause["rows"]) == ("ValidateSalesData", 1, [[0]])
    assert completed_by(stack, name)["ValidateSalesData"] == "submitter-wait"
    assert items(stack, name)["ValidateSalesData"]["outcome"] == "FAILED"
