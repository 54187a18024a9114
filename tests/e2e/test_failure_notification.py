"""A failed run tells someone, end to end on the local stack: the e2e stack is deployed with FailureTopicArn
(conftest.E2E_PARAMETERS); this test creates that topic on moto's SNS, subscribes an SQS queue to it, fails
a run and stops another, and reads exactly one message for each: the pipeline (the ETL state machine),
the run date, the execution and its console link, the failed step, its error and the first line of the
SQL error, all compared with what the execution itself reports (DescribeExecution), not with literals.

Path: the moto adapter's "Execution Status Change" event (patch 9) -> the template's
FailureNotifierFailedRun rule -> the FailureNotifier Express state machine (adapter patch 14 starts it)
-> moto's SNS -> the SQS subscription.
"""

from __future__ import annotations

import json
import time

import pytest

from conftest import E2E_PARAMETERS
from run import follow, start_execution
from test_pipeline import RUN_DATE, original_script, replaced_script, set_faults
from test_safety_net import statements, wait_for

TOPIC_ARN = E2E_PARAMETERS["FailureTopicArn"]


@pytest.fixture(scope="module")
def inbox(stack):
    """The topic (its ARN is the deployed parameter) and an SQS queue subscribed to it."""
    sns, sqs = stack.client("sns"), stack.client("sqs")
    assert sns.create_topic(Name=TOPIC_ARN.rsplit(":", 1)[-1])["TopicArn"] == TOPIC_ARN
    url = sqs.create_queue(QueueName="e2e-failed-runs")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=TOPIC_ARN, Protocol="sqs", Endpoint=arn)
    sqs.purge_queue(QueueUrl=url)
    return url


def messages_about(stack, inbox: str, execution_arn: str, settle: float = 2.0, timeout: float = 30) -> list[dict]:
    """Every message on the queue naming this execution: waits for the first, then `settle` seconds more
    for any duplicate. Messages of other executions are left alone (deleted only when read here)."""
    sqs = stack.client("sqs")
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    while time.monotonic() < deadline and (quiet_until is None or time.monotonic() < quiet_until):
        for m in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(m["Body"])
            if execution_arn in body.get("Message", ""):
                found.append(body)
                sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])
                quiet_until = time.monotonic() + settle
    return found


def lines(message: str) -> dict[str, str]:
    out = {}
    for line in message.splitlines()[1:]:
        key, _, value = line.partition(": ")
        out[key] = value
    return out


def test_a_failed_sql_step_sends_one_message_with_its_step_and_sql_error(stack, inbox):
    broken = original_script(stack, "load_item.sql") + "\nselect cast('not a number' as integer);\n"
    sfn = stack.client("stepfunctions")
    with replaced_script(stack, "load_item.sql", broken):
        arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix="e2e-notify")
        desc = follow(sfn, arn, echo=print, timeout=120)
    assert desc["status"] == "FAILED", desc
    cause = json.loads(desc["cause"])

    (msg,) = messages_about(stack, inbox, arn)
    print(f"{msg['Subject']}\n{msg['Message']}")
    machine = desc["stateMachineArn"].rsplit(":", 1)[-1]
    assert msg["Subject"] == f"ETL run FAILED: {desc['name']}"
    assert msg["Message"].splitlines()[0] == f"Pipeline {machine} run {RUN_DATE} ended FAILED."
    got = lines(msg["Message"])
    assert got["Execution"] == arn
    assert got["Console"] == ("https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
                              f"#/v2/executions/details/{arn}")
    assert got["Failed step"] == cause["step"] == "LoadItem"
    assert got["Error"] == desc["error"] == "Redshift.StatementFailed"
    assert got["SQL error"] == cause["error"].splitlines()[0] and "not a number" in got["SQL error"]
    assert msg["MessageAttributes"]["status"]["Value"] == "FAILED"


def test_a_stopped_run_sends_one_message_without_a_step(stack, inbox):
    """An ABORTED execution: no step's SQL failed, so the message says so and carries the execution input."""
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix="e2e-notify-stop")
    name = arn.rsplit(":", 1)[-1]
    set_faults(stack, {"statement_name_contains": f"/{name}/", "delay_ms": 60_000})
    try:
        wait_for(lambda: statements(stack, name), 60, "the run's first statement")
        sfn.stop_execution(executionArn=arn, error="Operator.Stopped", cause="stopped by the e2e test")
        desc = follow(sfn, arn, echo=print, timeout=60)
    finally:
        set_faults(stack, None)
    assert desc["status"] == "ABORTED", desc

    (msg,) = messages_about(stack, inbox, arn)
    assert msg["Subject"] == f"ETL run ABORTED: {name}"
    first = msg["Message"].splitlines()[0]
    assert first.endswith(" ended ABORTED.") and RUN_DATE in first, first
    got = lines(msg["Message"])
    assert got["Execution"] == arn
    assert got["Failed step"] == "none (no step's SQL failed)"
    assert got["SQL error"] == "none"


def test_a_succeeded_run_sends_nothing(stack, inbox):
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix="e2e-notify-ok")
    assert follow(sfn, arn, echo=print, timeout=120)["status"] == "SUCCEEDED"
    assert messages_about(stack, inbox, arn, timeout=4) == []
