"""Redrive on the local stack (issue 16 part 1): a run that failed at a SQL step, redriven with
`RedriveExecution` (the console's Redrive; locally adapter patch 31, which follows AWS's documented
rules), resumes at the failed step: the steps that succeeded are not run again, the failed one and
what follows are; with the cause fixed it succeeds with the same tables as an unbroken run, without
the fix it fails again with the same error and cause. The redriven run holds the run lock while it
runs (its own holder element, `<ARN>#<redrive count>`, taken by the submitter) and gives it back; a
second run meanwhile waits. Redrive is refused for SUCCEEDED and RUNNING executions, as on AWS."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from botocore.exceptions import ClientError

from run import follow, start_execution, steps_of
from stack import CREDS, REGION
from test_pipeline import ALL_STEPS, RUN_DATE, dump, execute, original_script, put_script, set_faults
from test_safety_net import statements, wait_for
from test_triggers import holders

FAILING = "LoadStoreSales"  # after both dimensions: every step before it surely succeeded first
BROKEN = "select cast('not a number' as integer);\n"
AFTER_FAILING = ("ValidateSalesData", "UniqueSalesTickets", "SalesReferenceCurrentItems")  # the checks


@pytest.fixture(scope="module")
def unbroken(stack):
    """The tables after an unbroken run of the date: what a redriven run that succeeds must leave."""
    set_faults(stack, None)
    desc, _ = execute(stack)
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    return dump(stack)


@pytest.fixture(autouse=True)
def clean(stack):
    set_faults(stack, None)
    yield
    set_faults(stack, None)
    put_script(stack, f"{snake(FAILING)}.sql", original_script(stack, f"{snake(FAILING)}.sql"))


def snake(step: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in step).lstrip("_")


def history(sfn, arn):
    return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def scheduled_by_step(events) -> dict[str, int]:
    """How often each SQL step's Task was entered (every entry submits its own statement)."""
    out: dict[str, int] = {}
    for e in events:
        if e["type"] == "TaskStateEntered":
            name = e["stateEnteredEventDetails"]["name"]
            if name in ALL_STEPS:
                out[name] = out.get(name, 0) + 1
    return out


def failed_run(stack, prefix: str):
    """A run that fails at FAILING (its script broken); the script stays broken."""
    put_script(stack, f"{snake(FAILING)}.sql", BROKEN)
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix=prefix)
    desc = follow(sfn, arn, echo=print, timeout=120)
    assert desc["status"] == "FAILED", desc
    assert desc["error"] == "Redshift.StatementFailed"
    assert json.loads(desc["cause"])["step"] == FAILING
    return sfn, arn, desc


def redrive(sfn, arn, **kw) -> dict:
    return sfn.redrive_execution(executionArn=arn, **kw)


def test_a_redriven_run_resumes_at_the_failed_step_fails_the_same_unfixed_and_succeeds_fixed(stack, unbroken):
    sfn, arn, first = failed_run(stack, "e2e-redrive")
    name = first["name"]
    described = sfn.describe_execution(executionArn=arn)
    assert (described["redriveCount"], described["redriveStatus"]) == (0, "REDRIVABLE")
    # the failed step is the execution's last state: nothing after it catches (a Fail state reached
    # through a Catch would be what a redrive re-enters, failing again at once)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history(sfn, arn) if e["type"].endswith("StateEntered")]
    assert entered[-1] == FAILING, entered

    # not fixed: the redrive reruns the failed step only, and fails again with the same error and cause
    wait_for(lambda: holders(stack) == [], 30, "the reconciler to give the failed attempt's slot back")
    redrive(sfn, arn)
    again = follow(sfn, arn, echo=print, timeout=120)
    assert again["status"] == "FAILED"
    assert again["error"] == first["error"]
    cause, first_cause = json.loads(again["cause"]), json.loads(first["cause"])
    for field in ("step", "runDate", "status", "error", "failedStatement"):
        assert cause.get(field) == first_cause.get(field), field
    assert cause["statementId"] != first_cause["statementId"], "a new statement, not the failed one re-attached"
    assert scheduled_by_step(history(sfn, arn)) == {**{s: 1 for s in ALL_STEPS if s not in AFTER_FAILING},
                                                    FAILING: 2}

    # fixed: the second redrive reruns the failed step and what follows, and succeeds
    put_script(stack, f"{snake(FAILING)}.sql", original_script(stack, f"{snake(FAILING)}.sql"))
    wait_for(lambda: holders(stack) == [], 30, "the reconciler to give the slot back")
    out = redrive(sfn, arn, clientToken=f"fix-{name}"[:64])
    assert redrive(sfn, arn, clientToken=f"fix-{name}"[:64])["redriveDate"] == out["redriveDate"], \
        "the same client token within 15 minutes answers the same redrive"
    done = follow(sfn, arn, echo=print, timeout=120)
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    described = sfn.describe_execution(executionArn=arn)
    assert described["redriveCount"] == 2 and "redriveDate" in described
    assert (described["redriveStatus"], described["redriveStatusReason"]) == (
        "NOT_REDRIVABLE", "Execution is SUCCEEDED and cannot be redriven.")
    events = history(sfn, arn)
    assert [e["executionRedrivenEventDetails"]["redriveCount"] for e in events
            if e["type"] == "ExecutionRedriven"] == [1, 2]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1)), "one history, continued"
    # the steps that succeeded ran once; the failed one three times (two failures, then the fix)
    assert scheduled_by_step(events) == {**{s: 1 for s in ALL_STEPS}, FAILING: 3}
    for step in ALL_STEPS:
        assert len(statements(stack, name, step)) == (3 if step == FAILING else 1), step
    # the output has every step's result, the replayed ones included; the tables are an unbroken run's
    assert sorted(s["step"] for s in steps_of(json.loads(done["output"]))) == sorted(ALL_STEPS)
    assert dump(stack) == unbroken
    assert holders(stack) == []  # ReleaseRunLock gave the redriven attempt's slot back
    # the succeeded execution cannot be redriven again, with the documented error
    with pytest.raises(ClientError) as refused:
        redrive(sfn, arn)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"


def test_a_redriven_run_holds_the_run_lock_and_a_second_run_waits_for_it(stack, unbroken):
    sfn, arn, first = failed_run(stack, "e2e-redrive-lock")
    name = first["name"]
    wait_for(lambda: holders(stack) == [], 30, "the reconciler to give the failed attempt's slot back")
    put_script(stack, f"{snake(FAILING)}.sql", original_script(stack, f"{snake(FAILING)}.sql"))
    set_faults(stack, {"statement_name_contains": f"/{name}/{FAILING}", "delay_ms": 6000})
    redrive(sfn, arn)
    # the submitter took the redriven attempt's own slot before it submitted anything
    wait_for(lambda: holders(stack) == [f"{name}#1"], 30, "the redriven attempt to hold the lock")
    second = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix="e2e-redrive-second")
    done = follow(sfn, arn, echo=print, timeout=120)
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    other = follow(sfn, second, echo=print, timeout=180)
    assert other["status"] == "SUCCEEDED", (other.get("error"), other.get("cause"))
    # no overlap: the second run entered its Pipeline only after the redriven run had ended
    ended = next(e["timestamp"] for e in history(sfn, arn) if e["type"] == "ExecutionSucceeded")
    entered = next(e["timestamp"] for e in history(sfn, second)
                   if e["type"] == "ParallelStateEntered" and e["stateEnteredEventDetails"]["name"] == "Pipeline")
    assert entered > ended, (entered, ended)
    waited = [e for e in history(sfn, second) if e["type"] == "TaskFailed"
              and e["taskFailedEventDetails"]["error"] == "DynamoDB.ConditionalCheckFailedException"]
    assert waited, "the second run found the lock taken and waited"
    assert holders(stack) == []
    assert dump(stack) == unbroken


def test_redrive_is_refused_for_running_executions_and_unknown_ones_as_on_aws(stack, unbroken):
    sfn = stack.client("stepfunctions")
    set_faults(stack, {"statement_name_contains": "/e2e-redrive-running", "delay_ms": 60_000})
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix="e2e-redrive-running")
    try:
        wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", 10, "the run to start")
        described = sfn.describe_execution(executionArn=arn)
        assert (described["redriveStatus"], described["redriveStatusReason"]) == (
            "NOT_REDRIVABLE", "Execution is RUNNING and cannot be redriven.")
        with pytest.raises(ClientError) as running:
            redrive(sfn, arn)
        assert running.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
        if shutil.which("aws"):  # the AWS CLI too, as an operator would call it (not part of make setup)
            cli = subprocess.run(
                ["aws", "stepfunctions", "redrive-execution", "--execution-arn", arn,
                 "--endpoint-url", stack.endpoints.moto, "--region", REGION],
                capture_output=True, text=True, timeout=60, env={**os.environ, **CREDS})
            assert cli.returncode != 0 and "ExecutionNotRedrivable" in cli.stderr, (cli.stdout, cli.stderr)
    finally:
        sfn.stop_execution(executionArn=arn, error="Test.Stopped", cause="the refusal was checked")
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", 30, "the stop")
    # an aborted execution is redrivable (it is not redriven here)
    assert sfn.describe_execution(executionArn=arn)["redriveStatus"] == "REDRIVABLE"
    unknown = arn.rsplit(":", 1)[0] + ":e2e-never-started"
    with pytest.raises(ClientError) as missing:
        redrive(sfn, unknown)
    assert missing.value.response["Error"]["Code"] == "ExecutionDoesNotExist"
    wait_for(lambda: holders(stack) == [], 30, "the stopped run's slot to be given back")


def test_only_the_failed_branch_of_a_parallel_reruns(stack, unbroken):
    """LoadItem fails (its script broken, after a delay, so LoadCustomerAddress has surely succeeded in
    the other branch of LoadDimensions); the redrive reruns LoadItem's branch only."""
    step, script = "LoadItem", "load_item.sql"
    put_script(stack, script, BROKEN)
    set_faults(stack, {"statement_name_contains": f"/{step}", "delay_ms": 1500})
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix="e2e-redrive-branch")
    try:
        first = follow(sfn, arn, echo=print, timeout=120)
    finally:
        put_script(stack, script, original_script(stack, script))
        set_faults(stack, None)
    assert (first["status"], json.loads(first["cause"])["step"]) == ("FAILED", step)
    assert scheduled_by_step(history(sfn, arn)) == {"SetupSalesDataPipeline": 1, "LoadCustomerAddress": 1, step: 1}
    wait_for(lambda: holders(stack) == [], 30, "the reconciler to give the failed attempt's slot back")
    redrive(sfn, arn)
    done = follow(sfn, arn, echo=print, timeout=120)
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    assert scheduled_by_step(history(sfn, arn)) == {**{s: 1 for s in ALL_STEPS}, step: 2}
    assert len(statements(stack, first["name"], "LoadCustomerAddress")) == 1
    assert dump(stack) == unbroken


def test_a_run_failed_through_a_catch_and_a_fail_state_fails_there_again_when_redriven(stack):
    """AWS restarts a redrive at the unsuccessful state: for a failure routed to a Fail state, that Fail
    state. A non-object input ends at RunFailed (through the InvalidInput Pass state, before the lock);
    redriven, the execution re-enters RunFailed only and fails again at once: start a new run instead."""
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn,
                              name=f"e2e-redrive-input-{os.urandom(4).hex()}", input="[]")["executionArn"]
    first = follow(sfn, arn, echo=print, timeout=30)
    assert (first["status"], first["error"]) == ("FAILED", "InvalidInput")
    before = len(history(sfn, arn))
    redrive(sfn, arn)
    again = follow(sfn, arn, echo=print, timeout=30)
    assert (again["status"], again["error"], again["cause"]) == ("FAILED", "InvalidInput", first["cause"])
    resumed = [e["type"] for e in history(sfn, arn)[before:]]
    assert resumed == ["ExecutionRedriven", "FailStateEntered", "ExecutionFailed"], resumed
