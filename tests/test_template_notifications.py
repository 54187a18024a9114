"""A failed run tells someone (template parameter FailureTopicArn): what template.yaml deploys for it, read
from the SAM translator's output as CloudFormation would create it.

- Off by default: with FailureTopicArn empty nothing of it exists (every resource has the condition).
- The rule matches exactly the ETL state machine's FAILED, TIMED_OUT and ABORTED executions and starts the
  notifier (retries for a day, then the dead-letter queue, whose policy names it).
- Least privilege: the rule's role may only start the notifier; the notifier's role may only publish to
  the topic given; nothing changes the topic's own policy.
- The notifier's definition publishes to the substituted topic and reads only fields that the
  "Step Functions Execution Status Change" event has.

The local stack runs it end to end (tests/e2e/test_failure_notification.py).

Run: .venv/bin/python -m pytest tests/test_template_notifications.py -q
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from deploy import load_template  # noqa: E402

TEMPLATE = load_template(ROOT / "template.yaml")
ASL = json.loads((ROOT / "statemachine" / "failure-notifier.asl.json").read_text())
# The detail of the event (Step Functions Developer Guide, cw-events.html) and its envelope.
EVENT_DETAIL = {"executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "input",
                "inputDetails", "output", "outputDetails", "error", "cause"}
EVENT_TOP = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


class _NoManagedPolicies:
    def load(self):
        return {}


@pytest.fixture(scope="module")
def translated() -> dict:
    from samtranslator.translator.transform import transform

    tpl = copy.deepcopy(TEMPLATE)
    for res in tpl["Resources"].values():
        props = res.get("Properties") or {}
        if res["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = "s3://code/function.zip"
        if res["Type"] == "AWS::Serverless::StateMachine":
            props.pop("DefinitionUri", None)
            props["Definition"] = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(tpl, {}, _NoManagedPolicies())


def resources_of(translated: dict, condition: str) -> dict[str, dict]:
    return {lid: r for lid, r in translated["Resources"].items() if r.get("Condition") == condition}


def test_the_parameter_is_optional_and_everything_it_adds_is_conditional(translated):
    param = TEMPLATE["Parameters"]["FailureTopicArn"]
    assert param["Default"] == ""
    pattern = param["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "arn:aws:sns:us-east-1:123456789012:etl-failures")
    assert not re.fullmatch(pattern, "etl-failures") and not re.fullmatch(pattern, "arn:aws:sqs:us-east-1:123456789012:q")
    assert TEMPLATE["Conditions"]["HasFailureTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "FailureTopicArn"}, ""]}]}
    added = resources_of(translated, "HasFailureTopic")
    assert sorted((lid, r["Type"]) for lid, r in added.items()) == [
        ("FailureNotifier", "AWS::StepFunctions::StateMachine"),
        ("FailureNotifierFailedRun", "AWS::Events::Rule"),
        ("FailureNotifierFailedRunRole", "AWS::IAM::Role"),
        ("FailureNotifierRole", "AWS::IAM::Role"),
    ]
    # every other resource that mentions the topic is one of these
    for lid, res in translated["Resources"].items():
        if "FailureTopicArn" in json.dumps(res) or "FailureNotifier" in json.dumps(res):
            assert lid in added or lid == "StatementEventsDeadLetterQueuePolicy", lid
    assert not [r for r in translated["Resources"].values() if r["Type"] == "AWS::SNS::TopicPolicy"]


def test_the_rule_matches_the_etl_state_machines_failed_runs_only(translated):
    rule = translated["Resources"]["FailureNotifierFailedRun"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [{"Ref": "EtlStateMachine"}]},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "FailureNotifier"}
    assert target["RoleArn"] == {"Fn::GetAtt": ["FailureNotifierFailedRunRole", "Arn"]}
    assert "InputTransformer" not in target and "Input" not in target  # the whole event is the input
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["StatementEventsDeadLetterQueue", "Arn"]}}


def _statements(translated: dict, role: str) -> list[dict]:
    props = translated["Resources"][role]["Properties"]
    return [s for p in props.get("Policies") or [] for s in p["PolicyDocument"]["Statement"]]


def test_each_role_may_do_one_thing(translated):
    assert not translated["Resources"]["FailureNotifierFailedRunRole"]["Properties"].get("ManagedPolicyArns")
    (start,) = _statements(translated, "FailureNotifierFailedRunRole")
    assert start["Effect"] == "Allow" and start["Action"] == "states:StartExecution"
    assert start["Resource"] == {"Ref": "FailureNotifier"}
    trust = translated["Resources"]["FailureNotifierFailedRunRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": ["events.amazonaws.com"]}]

    statements = _statements(translated, "FailureNotifierRole")
    assert statements == [{"Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": "FailureTopicArn"}}]
    assert not translated["Resources"]["FailureNotifierRole"]["Properties"].get("ManagedPolicyArns")


def test_the_notifier_publishes_once_to_the_topic_from_fields_the_event_has(translated):
    machine = TEMPLATE["Resources"]["FailureNotifier"]["Properties"]
    assert machine["Type"] == "EXPRESS"
    assert machine["DefinitionSubstitutions"] == {"FailureTopicArn": {"Ref": "FailureTopicArn"}}
    publishes = [s for s in ASL["States"].values() if s.get("Resource") == "arn:aws:states:::sns:publish"]
    (publish,) = publishes
    assert publish["Parameters"]["TopicArn"] == "${FailureTopicArn}"
    assert "Retry" not in publish  # one message: a retry could repeat one SNS may have accepted
    text = json.dumps(ASL)
    used = set(re.findall(r"\$\.detail\.([A-Za-z]+)", text))
    assert used and used <= EVENT_DETAIL, used - EVENT_DETAIL
    top = set(re.findall(r"\$\.([a-z-]+)", text)) - {"detail", "failure", "cause"}
    assert top <= EVENT_TOP, top - EVENT_TOP
    # every way into Publish, parsed or not, sets what the message reads
    assert ASL["States"]["ReadCause"]["Catch"][0]["Next"] == "NotAStepFailure"
    assert {k.removesuffix(".$") for k in ASL["States"]["NotAStepFailure"]["Parameters"]["parsed"]} == \
        {"step", "runDate", "sqlError"}
    fields = ASL["States"]["ReadCause"]["Branches"][0]["States"]["StepFields"]["Parameters"]
    assert {k.removesuffix(".$") for k in fields} == {"step", "runDate", "sqlError"}
