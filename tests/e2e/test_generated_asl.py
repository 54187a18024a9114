"""The generated state machine (statemachine/etl.asl.json from scripts/pipeline.toml) on the local stack,
for the three ways it differs from the hand-written one before it:

- execution input hygiene: a non-object input fails at once with InvalidInput (no lock, no SQL); extra
  input fields are not carried into the run's state; an execution name with a `.` runs;
- an idempotent run lock acquire: a holders string set, so an acquire or release whose write took
  effect but answered HTTP 500 (local/moto_adapter patch 25) is retried harmlessly;
- SQL Tasks retried after a submitter that ran and then timed out or crashed (patch 10 with an error
  name), re-attaching to the statement the first attempt started.

Run against the previous definition (commit 313e566's etl.asl.json), the non-object input, `"steps": []`,
applied-then-500 acquire and timed-out submit tests fail; the dotted execution name is the submitter's
change, and the release test guards a release that was already idempotent.

Locally RunConcurrency is 1 (the template's default). The runs load other dates than 2021-06-26, so the
module drops the ETL tables when it is done: the files after it (test_pipeline.py) expect a fresh
database.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from conftest import ETL_TABLES
from run import follow, steps_of

ALL_STEPS = ["SetupSalesDataPipeline", "LoadCustomerAddress", "LoadItem", "LoadStoreSales", "ValidateSalesData",
             "UniqueSalesTickets", "SalesReferenceCurrentItems"]


@pytest.fixture(scope="module", autouse=True)
def fresh_database_afterwards(stack):
    yield
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        for t in ETL_TABLES:
            conn.execute(f"drop table if exists {t} cascade")


@pytest.fixture(autouse=True)
def no_adapter_faults(stack):
    stack.faults_file.unlink(missing_ok=True)
    yield
    stack.faults_file.unlink(missing_ok=True)


# --- helpers -----------------------------------------------------------------------------------

def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(stack, name: str, execution_input: str, timeout: float = 120):
    """StartExecution with this name and raw input text; DescribeExecution when it ended, and its history."""
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn, name=name,
                              input=execution_input)["executionArn"]
    desc = follow(sfn, arn, echo=print, timeout=timeout)
    return desc, sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def entered(history) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def task_results(history, state: str) -> list[str]:
    """The outcomes of the run lock's task attempts of one state (outside the Parallel, so its events
    follow its StateEntered), in order: "succeeded" or the error name."""
    out, current = [], None
    for e in history:
        if e["type"].endswith("StateEntered"):
            current = e["stateEnteredEventDetails"]["name"]
        details = next((v for k, v in e.items() if k.endswith("EventDetails")), {})
        if current != state or details.get("resourceType") != "dynamodb":
            continue
        if e["type"] == "TaskSucceeded":
            out.append("succeeded")
        elif e["type"] == "TaskFailed":
            out.append(details["error"])
    return out


def lambda_task_events(history, kind: str) -> list[dict]:
    """The SQL steps' Task events of one kind (lambda:invoke.waitForTaskToken; not ResolveVars' plain invoke)."""
    return [e for e in history if e["type"] == kind
            and next(v for k, v in e.items() if k.endswith("EventDetails")).get("resourceType") == "lambda"
            and "waitForTaskToken" in next(v for k, v in e.items() if k.endswith("EventDetails")).get("resource", "")]


def attempts_by_step(history) -> dict[str, int]:
    """How many times each SQL step's Task was scheduled (its first attempt and every retry)."""
    out: dict[str, int] = {}
    for e in lambda_task_events(history, "TaskScheduled"):
        step = json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["step"]
        out[step] = out.get(step, 0) + 1
    return out


def statements(stack, execution_name: str, step: str | None = None) -> list[dict]:
    data = stack.redshift_data()
    found, token = [], None
    while True:
        page = data.list_statements(Status="ALL", MaxResults=100, **({"NextToken": token} if token else {}))
        found += [s for s in page["Statements"] if f"/{execution_name}/" in s.get("StatementName", "")
                  and (step is None or s["StatementName"].endswith(f"/{step}"))]
        token = page.get("NextToken")
        if not token:
            return found


def lock_item(stack) -> dict:
    table = stack.deployment.outputs["RunLockTableName"]
    name = stack.deployment.functions["ReconcilerFunction"].env["RUN_LOCK_NAME"]
    return stack.client("dynamodb").get_item(TableName=table, Key={"lockName": {"S": name}},
                                             ConsistentRead=True).get("Item", {})


def holders(stack) -> list[str]:
    """The execution ARNs in the lock's `holders` set (DynamoDB removes a set emptied by DELETE)."""
    return sorted(lock_item(stack).get("holders", {}).get("SS", []))


def set_adapter_faults(stack, *faults: dict) -> None:
    stack.faults_file.write_text(json.dumps(list(faults)))


def assert_succeeded(desc, history, run_date: str | None = None) -> dict:
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    output = json.loads(desc["output"])
    assert sorted(s["step"] for s in steps_of(output)) == sorted(ALL_STEPS)
    if run_date:
        assert output["runDate"] == run_date and all(s["runDate"] == run_date for s in steps_of(output))
    return output


# --- (a) execution input hygiene ---------------------------------------------------------------

@pytest.mark.parametrize("execution_input", ["[]", '"x"', "5", "null"])
def test_a_non_object_input_fails_at_once_with_invalid_input_before_the_lock_and_any_sql(stack, execution_input):
    """The old first state, a Choice on `$.runDate`, let an array or a scalar through to DefaultRunDate (the
    Variable is just absent), so such a run took the lock and ran every script for today's date (it
    SUCCEEDED when this test was run against the old definition)."""
    name = new_name("e2e-badinput")
    desc, history = run(stack, name, execution_input, timeout=30)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "InvalidInput", desc.get("cause")
    states = entered(history)
    assert states[:2] == ["ReadInput", "CheckInput"]
    assert "AcquireRunLock" not in states
    assert [e for e in history if e["type"] == "TaskScheduled"] == []
    assert statements(stack, name) == []


def test_executions_started_without_a_name_get_their_own_names(stack):
    """As on AWS, an unnamed StartExecution gets a generated name (adapter patch 28: moto named every one
    `None`, so the second was ExecutionAlreadyExists once the first had ended). The input `[]` keeps the
    runs cheap: they fail at once, before the lock and any SQL."""
    sfn = stack.client("stepfunctions")
    arns = []
    for _ in range(2):
        arn = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn, input="[]")["executionArn"]
        follow(sfn, arn, echo=lambda _line: None, timeout=30)
        arns.append(arn)
    names = [arn.rsplit(":", 1)[-1] for arn in arns]
    assert len(set(names)) == 2 and "None" not in names, names
    assert [sfn.describe_execution(executionArn=a)["error"] for a in arns] == ["InvalidInput", "InvalidInput"]


@pytest.mark.parametrize("execution_input,run_date", [
    ({"runDate": "2021-07-03", "steps": []}, "2021-07-03"),
    ({"runDate": "2021-06-26", "settings": "x", "error": 1}, "2021-06-26"),
])
def test_extra_input_fields_are_not_carried_into_the_run(stack, execution_input, run_date):
    """The old design ran on the execution input itself: with `"steps": []` the first step's result could
    not be written to `$.steps.SetupSalesDataPipeline` inside an array and the run failed (locally
    States.Runtime), and RunOutcome would read an input `error` field as a failed step. Now the run's
    state is rebuilt from the validated run date alone."""
    name = new_name("e2e-extra")
    desc, history = run(stack, name, json.dumps(execution_input))
    output = assert_succeeded(desc, history, run_date)
    assert "error" not in output
    assert isinstance(output["steps"], dict)
    assert isinstance(output["settings"], dict) and output["settings"] != "x"
    for step in ALL_STEPS:
        assert len(statements(stack, name, step)) == 1, step
    assert holders(stack) == []


def test_an_execution_name_with_a_dot_runs_and_succeeds(stack):
    """Execution names may contain `.` (e.g. a date written 2021.06.26); the submitter refused them as
    InvalidInput, since statement names and client tokens are built from the execution name."""
    name = new_name("e2e-2021.06.26")
    desc, history = run(stack, name, json.dumps({"runDate": "2021-06-26"}))
    assert_succeeded(desc, history, "2021-06-26")
    for step in ALL_STEPS:
        (st,) = statements(stack, name, step)
        assert st["StatementName"].endswith(f"/{name}/{step}")


# --- (b) the run lock's acquire and release are idempotent per execution -------------------------

def test_an_acquire_applied_then_answered_500_is_retried_and_the_run_succeeds(stack):
    """AcquireRunLock's write takes effect and then answers HTTP 500 (DynamoDB.InternalServerErrorException),
    which its Retry repeats. `ADD holders :me` with `contains(holders, :id)` in the condition finds the
    execution already in the set and changes nothing, so the run goes on holding one slot.

    With the old counter design (`SET runCount = if_not_exists(runCount, :zero) + :one, #holder =
    :execution` on `attribute_not_exists(runCount) OR runCount < :limit`) the first write had made
    runCount 1 = RunConcurrency and written `holder:<this execution>`; every retry then failed
    DynamoDB.ConditionalCheckFailedException, retried for about two minutes while the execution
    blocked itself, and the run failed RunAlreadyInProgress with the cause "... it is held by:
    {...holder:<its own name>...}". No other run held the lock.
    """
    assert holders(stack) == []
    name = new_name("e2e-acquire500")
    set_adapter_faults(stack, {"dynamodb_error_after_apply": True, "execution_contains": name,
                               "state": "AcquireRunLock", "action": "updateItem", "times": 1})
    desc, history = run(stack, name, json.dumps({"runDate": "2021-06-26"}))
    assert_succeeded(desc, history, "2021-06-26")
    assert task_results(history, "AcquireRunLock") == ["DynamoDB.InternalServerErrorException", "succeeded"]
    (failed,) = [e for e in history if e["type"] == "TaskFailed"
                 and e["taskFailedEventDetails"]["resourceType"] == "dynamodb"]
    assert "Status Code: 500; Error Code: InternalServerError" in failed["taskFailedEventDetails"]["cause"]
    assert "DescribeRunLock" not in entered(history)
    assert task_results(history, "ReleaseRunLock") == ["succeeded"]
    assert holders(stack) == []


def test_a_release_applied_then_answered_500_changes_nothing_and_leaves_the_lock_free(stack):
    """ReleaseRunLock's `DELETE holders :me` takes effect and answers HTTP 500; the retry's condition
    (`contains(holders, :id)`) fails, so it changes nothing (no other holder could be removed), the
    Catch records it, and the run still succeeds with the lock free."""
    assert holders(stack) == []
    name = new_name("e2e-release500")
    set_adapter_faults(stack, {"dynamodb_error_after_apply": True, "execution_contains": name,
                               "state": "ReleaseRunLock", "action": "updateItem", "times": 1})
    desc, history = run(stack, name, json.dumps({"runDate": "2021-06-26"}))
    output = assert_succeeded(desc, history, "2021-06-26")
    assert task_results(history, "AcquireRunLock") == ["succeeded"]
    assert task_results(history, "ReleaseRunLock") == [
        "DynamoDB.InternalServerErrorException", "DynamoDB.ConditionalCheckFailedException"]
    assert output["releaseError"]["Error"] == "DynamoDB.ConditionalCheckFailedException"
    assert holders(stack) == []


# --- (c) a submit retried after the submitter ran and then timed out or crashed ----------------

FAULT_BY_STEP = {  # every error of the SQL Tasks' Retry that the old one did not list, one per step
    "SetupSalesDataPipeline": "Lambda.ClientExecutionTimeoutException",
    "LoadCustomerAddress": "Runtime.ExitError",
    "LoadItem": "Sandbox.Timedout",
    "LoadStoreSales": "Lambda.Unknown",
}


def test_a_submit_that_ran_and_then_timed_out_or_crashed_is_retried_and_reattaches_to_its_statement(stack):
    """Each step's first submit runs to the end (statement started, token stored) and then its invoke
    fails as a timed-out (Sandbox.Timedout), exited (Runtime.ExitError) or unanswered function would.
    The old Retry listed only the Lambda.ServiceException family, so the first of these failed the run.
    Now each is retried, and the retry (same ClientToken) re-attaches to the first attempt's statement:
    one statement per step, each step completed once."""
    name = new_name("e2e-timedout")
    set_adapter_faults(stack, *({"fail_after_invoke": True, "function_contains": "Submitter", "error": error,
                                 "payload_contains": [f'"executionName":"{name}"', f'"step":"{step}"'], "times": 1}
                                for step, error in FAULT_BY_STEP.items()),
                       # each retry as deployed, its wait (up to 2 s) 1/50 as long (adapter patch 35)
                       {"retry_interval_scale": 0.02, "execution_contains": name})
    desc, history = run(stack, name, json.dumps({"runDate": "2021-06-26"}))
    assert_succeeded(desc, history, "2021-06-26")
    assert attempts_by_step(history) == {step: 2 if step in FAULT_BY_STEP else 1 for step in ALL_STEPS}
    assert sorted(e["taskFailedEventDetails"]["error"] for e in lambda_task_events(history, "TaskFailed")) == sorted(
        FAULT_BY_STEP.values())
    assert len(lambda_task_events(history, "TaskSucceeded")) == len(ALL_STEPS)  # each step completed once
    for step in ALL_STEPS:
        assert len(statements(stack, name, step)) == 1, step
    assert holders(stack) == []
