"""Runs started by EventBridge triggers, and one run at a time, on the local stack: a marker object in
the upstream bucket starts exactly one run for the date in its key (also when its event is delivered
twice); a bad date fails with InvalidRunDate naming the key; the daily schedule starts one run per day;
concurrent starts never overlap their SQL; a run that cannot get the lock fails with
RunAlreadyInProgress naming the holder; a stopped run gives the lock back."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

import pipeline
from run import follow, start_execution
from stack import UPSTREAM_BUCKET
from test_generated_asl import set_adapter_faults, task_results
from test_pipeline import set_faults
from test_safety_net import history, statements, wait_for

PREFIX = "markers/"


@pytest.fixture(autouse=True)
def clean(stack):
    set_faults(stack, None)
    stack.faults_file.unlink(missing_ok=True)
    yield
    set_faults(stack, None)
    stack.faults_file.unlink(missing_ok=True)


def etl_runs(stack, predicate=lambda desc_input: True):
    sfn = stack.client("stepfunctions")
    out = []
    for e in sfn.list_executions(stateMachineArn=stack.deployment.state_machine_arn, maxResults=1000)["executions"]:
        desc = sfn.describe_execution(executionArn=e["executionArn"])
        input_ = json.loads(desc.get("input") or "{}")
        if isinstance(input_, dict) and predicate(input_):  # other tests start runs with non-object inputs
            out.append(desc)
    return out


def runs_for_key(stack, key):
    return etl_runs(stack, lambda i: (i.get("trigger") or {}).get("key") == key)


def lock_item(stack):
    table = stack.deployment.outputs["RunLockTableName"]
    name = stack.deployment.functions["ReconcilerFunction"].env["RUN_LOCK_NAME"]  # the template's one lock name
    return stack.client("dynamodb").get_item(TableName=table, Key={"lockName": {"S": name}}, ConsistentRead=True).get("Item", {})


def holders(stack):
    """The names of the executions holding the run lock: its `holders` string set of execution ARNs
    (DynamoDB keeps no empty set: a free lock has no `holders` attribute)."""
    return sorted(arn.rsplit(":", 1)[-1] for arn in lock_item(stack).get("holders", {}).get("SS", []))


def test_a_marker_object_starts_exactly_one_run_for_the_date_in_its_key(stack):
    key = f"{PREFIX}2021-06-27.ready"
    stack.client("s3").put_object(Bucket=UPSTREAM_BUCKET, Key=key, Body=b"")
    (run,) = wait_for(lambda: runs_for_key(stack, key), 30, "the marker's run to start")
    sfn = stack.client("stepfunctions")
    desc = follow(sfn, run["executionArn"], echo=print, timeout=120)
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    run_input = json.loads(desc["input"])
    assert run_input["runDate"] == "2021-06-27"
    assert run_input["trigger"]["bucket"] == UPSTREAM_BUCKET and run_input["trigger"]["source"] == "s3"
    assert desc["name"].startswith("s3-") and len(desc["name"]) == 3 + 64

    # the same S3 event delivered again (same sequencer) starts the trigger workflow, which starts nothing
    trigger_arn = stack.deployment.outputs["TriggerStateMachineArn"]
    before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=trigger_arn)["executions"]}
    detail = {"version": "0", "bucket": {"name": UPSTREAM_BUCKET},
              "object": {"key": key, "size": 0, "sequencer": run_input["trigger"]["sequencer"]},
              "reason": "PutObject"}
    stack.client("events").put_events(Entries=[{"Source": "aws.s3", "DetailType": "Object Created",
                                                "Detail": json.dumps(detail), "Resources": []}])
    (again,) = wait_for(lambda: [e for e in sfn.list_executions(stateMachineArn=trigger_arn)["executions"]
                                 if e["executionArn"] not in before], 30, "the redelivered trigger")
    assert follow(sfn, again["executionArn"], echo=print, timeout=60)["status"] == "SUCCEEDED"
    assert len(runs_for_key(stack, key)) == 1


def test_a_marker_without_a_valid_date_fails_the_run_with_invalid_run_date_naming_the_key(stack):
    key = f"{PREFIX}2021-13-01.ready"
    stack.client("s3").put_object(Bucket=UPSTREAM_BUCKET, Key=key, Body=b"")
    (run,) = wait_for(lambda: runs_for_key(stack, key), 30, "the marker's run to start")
    desc = follow(stack.client("stepfunctions"), run["executionArn"], echo=print, timeout=120)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "InvalidRunDate"
    assert f"s3://{UPSTREAM_BUCKET}/{key}" in desc["cause"]
    assert statements(stack, desc["name"]) == []  # nothing ran
    # and the lock was given back: a failed step ends the run where it is (Redrive), the reconciler
    # releases the slot on the execution's FAILED event
    wait_for(lambda: holders(stack) == [], 30, "the reconciler to release the failed run's lock")


def test_the_schedule_starts_one_run_per_day(stack):
    sfn = stack.client("stepfunctions")
    trigger_arn = stack.deployment.outputs["TriggerStateMachineArn"]
    starts = [sfn.start_execution(stateMachineArn=trigger_arn, input=json.dumps({"source": "schedule"}))["executionArn"]
              for _ in range(2)]
    for arn in starts:
        assert follow(sfn, arn, echo=print, timeout=60)["status"] == "SUCCEEDED"
    today = datetime.now(timezone.utc).date().isoformat()
    daily = [e for e in sfn.list_executions(stateMachineArn=stack.deployment.state_machine_arn, maxResults=1000)["executions"]
             if e["name"] == f"daily-{today}"]
    assert len(daily) == 1
    assert follow(sfn, daily[0]["executionArn"], echo=print, timeout=120)["status"] == "SUCCEEDED"


def test_two_runs_started_at_once_never_overlap_their_sql_and_both_finish(stack):
    sfn = stack.client("stepfunctions")
    arns = [start_execution(sfn, stack.deployment.state_machine_arn, d, prefix="e2e-lock") for d in ("2021-06-28", "2021-06-29")]
    descs = [follow(sfn, arn, echo=print, timeout=240) for arn in arns]
    assert [d["status"] for d in descs] == ["SUCCEEDED", "SUCCEEDED"], [(d.get("error"), d.get("cause")) for d in descs]
    spans = []
    for d in descs:
        sts = statements(stack, d["name"])
        assert len(sts) == len(pipeline.load().names)  # one statement per step and check
        spans.append((min(s["CreatedAt"] for s in sts), max(s["UpdatedAt"] for s in sts)))
    (a_start, a_end), (b_start, b_end) = sorted(spans)
    assert a_end <= b_start, f"the runs' SQL overlapped: {spans}"
    assert holders(stack) == []


def test_a_run_that_cannot_get_the_lock_fails_naming_the_holder_and_a_stopped_run_releases_it(stack):
    sfn = stack.client("stepfunctions")
    set_faults(stack, {"statement_name_contains": "/e2e-holder", "delay_ms": 300_000})
    holder = start_execution(sfn, stack.deployment.state_machine_arn, "2021-06-30", prefix="e2e-holder")
    holder_name = holder.rsplit(":", 1)[-1]
    wait_for(lambda: holders(stack) == [holder_name], 30, "the first run to take the lock")
    # The waiter's AcquireRunLock retries as deployed, every attempt made, but each wait 1/50 as long
    # (the adapter's patch 35): about 2.4 s at most instead of about two minutes.
    set_adapter_faults(stack, {"retry_interval_scale": 0.02, "state": "AcquireRunLock", "execution_contains": "e2e-waiter"})
    waiter = start_execution(sfn, stack.deployment.state_machine_arn, "2021-07-01", prefix="e2e-waiter")
    desc = follow(sfn, waiter, echo=print, timeout=60)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "RunAlreadyInProgress"
    assert holder_name in desc["cause"]
    assert statements(stack, desc["name"]) == []
    held = "DynamoDB.ConditionalCheckFailedException"
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=stack.deployment.state_machine_arn)["definition"])
    (retry,) = [r for r in definition["States"]["AcquireRunLock"]["Retry"] if held in r["ErrorEquals"]]
    assert task_results(history(sfn, waiter), "AcquireRunLock") == [held] * (retry["MaxAttempts"] + 1)

    sfn.stop_execution(executionArn=holder, error="Operator", cause="e2e")
    wait_for(lambda: holders(stack) == [], 20, "the stopped run's lock to be released by the reconciler")
    assert not lock_item(stack).get("holders", {}).get("SS")  # no holders attribute (or an empty set)
    assert any(e["type"] == "ExecutionAborted" for e in history(sfn, holder))
