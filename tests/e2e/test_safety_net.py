"""The safety net around the callback, proven by fault injection on the local stack: a lost event is
recovered by the reconciler, a stopped or failed run cancels its SQL, a retried submit re-attaches to
its statement, heartbeats keep long steps alive, and a step nobody looks after fails by heartbeat
timeout. The stack runs the reconciler on the template's schedule, with the short intervals of
conftest.E2E_PARAMETERS (template parameters, not code paths of their own)."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from conftest import E2E_PARAMETERS
from run import follow, start_execution
from test_pipeline import (ALL_STEPS, RUN_DATE, assert_succeeded_once_per_step, dump, execute, original_script,
                           put_script, set_faults, task_events)

GRACE = int(E2E_PARAMETERS["ReconcileGraceSeconds"])
INTERVAL = int(E2E_PARAMETERS["ReconcileRate"].split("(")[1].split()[0])
HEARTBEAT = int(E2E_PARAMETERS["StepHeartbeatSeconds"])
RUNNING = ("SUBMITTED", "PICKED", "STARTED")


@pytest.fixture(scope="module", autouse=True)
def loaded(stack):
    """The run date loaded once by a clean run, so that every test can compare the tables after it."""
    set_faults(stack, None)
    desc, _ = execute(stack)
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))


@pytest.fixture(autouse=True)
def clean(stack):
    set_faults(stack, None)
    stack.faults_file.unlink(missing_ok=True)
    yield
    set_faults(stack, None)
    stack.faults_file.unlink(missing_ok=True)
    for script in ("load_item.sql", "load_customer_address.sql"):
        put_script(stack, script, original_script(stack, script))
    schedule_rule(stack, enabled=True)


def items(stack, execution_name):
    """The rendezvous items of one execution, by step (a test-side scan; the functions never scan)."""
    table = stack.deployment.tables["TokenTable"]
    out = stack.client("dynamodb").scan(TableName=table)["Items"]
    return {i["step"]["S"]: {k: next(iter(v.values())) for k, v in i.items()}
            for i in out if f"/{execution_name}/" in i.get("statementName", {}).get("S", "")}


def statements(stack, execution_name, step=None):
    data = stack.redshift_data()
    found, token = [], None
    while True:
        kw = {"Status": "ALL", "MaxResults": 100, **({"NextToken": token} if token else {})}
        page = data.list_statements(**kw)
        found += [s for s in page["Statements"] if f"/{execution_name}/" in s.get("StatementName", "")
                  and (step is None or s["StatementName"].endswith(f"/{step}"))]
        token = page.get("NextToken")
        if not token:
            return found


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def schedule_rule(stack, enabled: bool):
    events = stack.client("events")
    name = stack.deployment.rules["ReconcilerFunctionReconcile"]
    (events.enable_rule if enabled else events.disable_rule)(Name=name)


def start(stack, prefix):
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix=prefix)
    return sfn, arn, arn.rsplit(":", 1)[-1]


def history(sfn, arn):
    return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def test_a_lost_event_is_recovered_by_the_reconciler(stack):
    before = dump(stack)
    set_faults(stack, {"statement_name_contains": "/LoadItem", "drop_event": True})
    sfn, arn, name = start(stack, "e2e-lost")
    t0 = time.monotonic()
    desc = follow(sfn, arn, echo=print, timeout=GRACE + 4 * INTERVAL + 30)
    assert_succeeded_once_per_step(desc, history(sfn, arn))
    by_step = items(stack, name)
    assert by_step["LoadItem"]["completedBy"] == "reconciler"
    assert by_step["LoadItem"]["outcome"] == "SUCCEEDED"
    assert "pending" not in by_step["LoadItem"]
    assert {s: i["completedBy"] for s, i in by_step.items() if s != "LoadItem"}.keys() == set(ALL_STEPS) - {"LoadItem"}
    # recovered within the grace period plus a reconcile interval (and the rest of the pipeline)
    assert time.monotonic() - t0 < GRACE + 2 * INTERVAL + 15
    assert dump(stack) == before


def test_stop_execution_cancels_the_running_statement_and_rolls_it_back(stack):
    slow = "update customer_address set ca_state = 'ZZ';\nselect pg_sleep(120);\n"
    put_script(stack, "load_customer_address.sql", original_script(stack, "load_customer_address.sql") + slow)
    sfn, arn, name = start(stack, "e2e-stop")
    (running,) = wait_for(lambda: [s for s in statements(stack, name, "LoadCustomerAddress") if s["Status"] in RUNNING],
                          60, "LoadCustomerAddress to run")
    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by the e2e test")
    assert wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", 10, "the stop")
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    data = stack.redshift_data()
    wait_for(lambda: data.describe_statement(Id=running["Id"])["Status"] == "ABORTED", 10, "the statement cancelled")
    item = wait_for(lambda: items(stack, name)["LoadCustomerAddress"].get("outcome") == "TASK_CLOSED"
                    and items(stack, name)["LoadCustomerAddress"], 10, "the item marked TASK_CLOSED")
    assert item["completedBy"] == "reconciler" and "pending" not in item
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from customer_address where ca_state = 'ZZ'").fetchone() == (0,)


def test_a_failing_branch_cancels_the_other_branch_statement(stack):
    put_script(stack, "load_customer_address.sql",
               original_script(stack, "load_customer_address.sql") + "\nselect pg_sleep(120);\n")
    put_script(stack, "load_item.sql", "select no_such_column from item;\n")
    sfn, arn, name = start(stack, "e2e-branch")
    desc = follow(sfn, arn, echo=print, timeout=HEARTBEAT + 60)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Redshift.StatementFailed" and json.loads(desc["cause"])["step"] == "LoadItem"
    (address,) = statements(stack, name, "LoadCustomerAddress")
    data = stack.redshift_data()
    wait_for(lambda: data.describe_statement(Id=address["Id"])["Status"] == "ABORTED", 15, "LoadCustomerAddress cancelled")
    wait_for(lambda: items(stack, name)["LoadCustomerAddress"].get("outcome") == "TASK_CLOSED", 15, "its item closed")
    assert items(stack, name)["LoadItem"]["outcome"] == "FAILED"


def submit_fails_after_it_ran(stack, order):
    """LoadItem's submitter runs, then its invoke answers Lambda.ServiceException (adapter patch 10),
    that answer held until Step Functions handled a callback with the attempt's token; `order` says
    which of the two Step Functions records first (adapter patch 33, local/moto_adapter/lambda_.py). A
    retry waits 1/50 of its Retry's wait (up to 2 s; adapter patch 35)."""
    stack.faults_file.write_text(json.dumps([{"fail_after_invoke": True, "function_contains": "Submitter",
                                              "payload_contains": '"step":"LoadItem"', "order": order,
                                              "times": 1},
                                             {"retry_interval_scale": 0.02, "state": "LoadItem"}]))


def callbacks(stack):
    """What Step Functions answered to each task callback so far (the adapter's callbacks probe)."""
    path = stack.callbacks_log
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def load_item_scheduled(events):
    return [e for e in task_events(events, "TaskScheduled")
            if '"step":"LoadItem"' in e["taskScheduledEventDetails"]["parameters"].replace(" ", "")]


def held_fault_logged(stack, order):
    log = (stack.run_dir / "logs" / "moto.log").read_text()
    return f"its failure is answered after the task's callback was handled ({order})" in log


def test_a_callback_in_before_a_submit_s_failure_completes_the_step_and_the_failure_is_dropped(stack):
    """The order of issue 22: the statement finished, and its callback with the first attempt's token
    was in, while the submitter's invoke was still answering with a failure. The attempt has one
    outcome, the callback's: the step succeeds once, nothing is retried, one statement per step."""
    before = dump(stack)
    submit_fails_after_it_ran(stack, "callback_first")
    sfn, arn, name = start(stack, "e2e-cbfirst")
    desc = follow(sfn, arn, echo=print, timeout=120)
    events = history(sfn, arn)
    assert_succeeded_once_per_step(desc, events)
    assert held_fault_logged(stack, "callback_first"), "the fault did not happen"
    assert len(load_item_scheduled(events)) == 1, "the failure after the callback retried the step"
    for step in ALL_STEPS:
        assert len(statements(stack, name, step)) == 1, step
    item = items(stack, name)["LoadItem"]
    assert (item["outcome"], item["attempt"]) == ("SUCCEEDED", "0")
    assert dump(stack) == before


def test_a_submit_retried_after_it_submitted_reattaches_to_its_statement(stack):
    """The opposite order: the invoke's failure is recorded first, so the callback with the failed
    attempt's token is refused (TaskTimedOut); the retry gets the same statement back (ClientToken),
    re-attaches its new token and completes the step with the statement's outcome."""
    before = dump(stack)
    seen = len(callbacks(stack))
    submit_fails_after_it_ran(stack, "failure_first")
    sfn, arn, name = start(stack, "e2e-retry")
    desc = follow(sfn, arn, echo=print, timeout=120)
    events = history(sfn, arn)
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    assert held_fault_logged(stack, "failure_first"), "the fault did not happen"
    failed = [e for e in task_events(events, "TaskFailed")]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["Lambda.ServiceException"]
    assert len(load_item_scheduled(events)) == 2
    assert "TaskTimedOut" in [c["error"] for c in callbacks(stack)[seen:]], "no callback was refused"
    # the retry got the first statement back (ClientToken): one statement per step, each completed once
    for step in ALL_STEPS:
        assert len(statements(stack, name, step)) == 1, step
    assert len(task_events(events, "TaskSucceeded")) == len(ALL_STEPS)
    item = items(stack, name)["LoadItem"]
    assert (item["outcome"], item["attempt"]) == ("SUCCEEDED", "1")
    assert dump(stack) == before


def test_heartbeats_keep_a_statement_longer_than_heartbeat_seconds_alive(stack):
    set_faults(stack, {"statement_name_contains": "/LoadItem", "delay_ms": (HEARTBEAT + 2 * INTERVAL) * 1000})
    sfn, arn, name = start(stack, "e2e-long")
    desc = follow(sfn, arn, echo=print, timeout=HEARTBEAT * 3 + 60)
    assert_succeeded_once_per_step(desc, history(sfn, arn))
    (st,) = statements(stack, name, "LoadItem")
    assert (st["UpdatedAt"] - st["CreatedAt"]).total_seconds() > HEARTBEAT


def test_without_the_reconciler_a_lost_event_fails_the_step_by_heartbeat_timeout(stack):
    schedule_rule(stack, enabled=False)
    set_faults(stack, {"statement_name_contains": "/LoadItem", "drop_event": True})
    sfn, arn, name = start(stack, "e2e-noreconcile")
    t0 = time.monotonic()
    desc = follow(sfn, arn, echo=print, timeout=HEARTBEAT + 60)
    assert desc["status"] == "FAILED"
    assert time.monotonic() - t0 < HEARTBEAT + 20
    (timed_out,) = [e for e in history(sfn, arn) if e["type"] == "TaskTimedOut"]
    # as AWS records a missed heartbeat (tests/fixtures/aws_recorded/heartbeat_timeout.json): the Task's
    # TaskTimedOut and the run carry States.Timeout, and neither has a cause
    assert timed_out["taskTimedOutEventDetails"]["error"] == "States.Timeout"
    assert "cause" not in timed_out["taskTimedOutEventDetails"]
    assert desc.get("cause") is None, desc
    # the timed-out step fails the run with Step Functions' own error, through its Parallels (adapter
    # patch 26: the branch's own name, not States.Runtime), and stays the last state entered: nothing
    # catches it, so a Redrive resumes at that step; the reconciler gives the lock back on the
    # execution's FAILED event
    assert desc["error"] == timed_out["taskTimedOutEventDetails"]["error"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history(sfn, arn) if e["type"].endswith("StateEntered")]
    assert set(entered[-2:]) == {"LoadItem", "LoadCustomerAddress"}, entered  # the two branches, any order
    assert not {"LoadStoreSales", "ReleaseRunLock", "RunFailed"} & set(entered), entered
