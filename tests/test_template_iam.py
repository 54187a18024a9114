"""Least privilege as AWS evaluates it, read from template.yaml after the SAM transform (no stack needed):

- the Data API actions that take a statement id (DescribeStatement, CancelStatement, GetStatementResult
  (a check's rows), ListStatements (granted to nobody)) have no resource type, so they are granted on "*" only with the statement-owner condition:
  the submitter's own statements (`${aws:userid}`), or, for the completer and the reconciler, the statements
  of the submitter's role (`<its RoleId>:*`);
- the dead-letter queue accepts messages from exactly the rules that name it, by ARN, not from every rule
  whose name starts with the stack's name (which would include the rules of a stack named "<stack>-dev");
- the submitter may read and list only the scripts prefix it reads from, and may list it (without
  s3:ListBucket, S3 answers a missing script with 403 AccessDenied instead of 404 NoSuchKey);
- the functions that send OpenLineage events may read exactly the API key's secret, and only when
  OpenLineageApiKeySecretArn and OpenLineageUrl are set; nothing else may.

Run: .venv/bin/python -m pytest tests/test_template_iam.py -q
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from deploy import load_template  # noqa: E402

STATEMENT_ACTIONS = {"redshift-data:DescribeStatement", "redshift-data:CancelStatement",
                     "redshift-data:GetStatementResult", "redshift-data:ListStatements"}
OWNER_KEY = "redshift-data:statement-owner-iam-userid"
SUBMITTER_ROLE_SESSIONS = {"Fn::Sub": "${SubmitterFunctionRole.RoleId}:*"}


class _NoManagedPolicies:
    def load(self):
        return {}


@pytest.fixture(scope="module")
def translated() -> dict:
    from samtranslator.translator.transform import transform

    tpl = copy.deepcopy(load_template(ROOT / "template.yaml"))
    for res in tpl["Resources"].values():
        props = res.get("Properties") or {}
        if res["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = "s3://code/function.zip"
        if res["Type"] == "AWS::Serverless::StateMachine":
            props.pop("DefinitionUri", None)
            props["Definition"] = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(tpl, {}, _NoManagedPolicies())


def as_list(value):
    return value if isinstance(value, list) else [value]


def branches(statement) -> list[dict]:
    """A statement, or every statement a Fn::If may give (AWS::NoValue gives none)."""
    if statement == {"Ref": "AWS::NoValue"}:
        return []
    if set(statement) == {"Fn::If"}:
        _, present, absent = statement["Fn::If"]
        return branches(present) + branches(absent)
    return [statement]


def role_statements(translated: dict, role: str) -> list[dict]:
    props = translated["Resources"][role]["Properties"]
    return [b for p in props.get("Policies") or [] for s in as_list(p["PolicyDocument"]["Statement"])
            for b in branches(s)]


def function_env(translated: dict, function: str) -> dict:
    return translated["Resources"][function]["Properties"]["Environment"]["Variables"]


def test_statement_actions_are_granted_only_on_statements_the_submitter_s_role_owns(translated):
    expected = {
        "SubmitterFunctionRole": ("StringEquals", "${aws:userid}"),
        "CompleterFunctionRole": ("StringLike", SUBMITTER_ROLE_SESSIONS),
        "ReconcilerFunctionRole": ("StringLike", SUBMITTER_ROLE_SESSIONS),
    }
    granted = {}
    for lid, res in translated["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for s in role_statements(translated, lid):
            actions = set(as_list(s["Action"]))
            if s["Effect"] != "Allow" or not actions & STATEMENT_ACTIONS:
                continue
            assert lid in expected, f"{lid} may use {actions & STATEMENT_ACTIONS}"
            operator, owner = expected[lid]
            assert s.get("Condition") == {operator: {OWNER_KEY: owner}}, (lid, s.get("Sid"))
            assert "redshift-data:ListStatements" not in actions, lid
            granted.setdefault(lid, set()).update(actions & STATEMENT_ACTIONS)
    # GetStatementResult: a check's rows, read by whichever function closes its task
    assert granted == {
        "SubmitterFunctionRole": {"redshift-data:DescribeStatement", "redshift-data:GetStatementResult"},
        "CompleterFunctionRole": {"redshift-data:DescribeStatement", "redshift-data:GetStatementResult"},
        "ReconcilerFunctionRole": {"redshift-data:DescribeStatement", "redshift-data:CancelStatement",
                                   "redshift-data:GetStatementResult"},
    }
    # The owner of a statement is the session that submitted it: the submitter's role, nobody else's.
    assert "BatchExecuteStatement" not in str(role_statements(translated, "CompleterFunctionRole"))
    assert "BatchExecuteStatement" not in str(role_statements(translated, "ReconcilerFunctionRole"))
    # Only the submitter's function assumes the role the condition names.
    trust = translated["Resources"]["SubmitterFunctionRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": ["lambda.amazonaws.com"]}]
    users = [lid for lid, res in translated["Resources"].items() if res["Type"] == "AWS::Lambda::Function"
             and res["Properties"]["Role"] == {"Fn::GetAtt": ["SubmitterFunctionRole", "Arn"]}]
    assert users == ["SubmitterFunction"]


def test_the_dead_letter_queue_accepts_exactly_the_rules_that_name_it(translated):
    dlq = {"Fn::GetAtt": ["StatementEventsDeadLetterQueue", "Arn"]}
    naming = sorted(
        lid for lid, res in translated["Resources"].items() if res["Type"] == "AWS::Events::Rule"
        and any((t.get("DeadLetterConfig") or {}).get("Arn") == dlq for t in res["Properties"]["Targets"]))
    assert naming == ["FailureNotifierFailedRun", "ObjectCreatedTriggerRule", "ReconcilerFunctionExecutionEnded",
                      "StatementStatusChangeRule"]

    policy = translated["Resources"]["StatementEventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert list(statement["Condition"]) == ["ArnEquals"]
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    exact = []
    for source in sources:
        if "Fn::If" in source:  # a conditional rule: its ARN when it exists, nothing otherwise
            condition, present, absent = source["Fn::If"]
            lid = present["Fn::GetAtt"][0]
            assert condition == translated["Resources"][lid]["Condition"]
            assert absent == {"Ref": "AWS::NoValue"}
            source = present
        assert set(source) == {"Fn::GetAtt"} and source["Fn::GetAtt"][1] == "Arn", source
        exact.append(source["Fn::GetAtt"][0])
    assert sorted(exact) == naming


def test_the_submitter_reads_and_lists_only_the_scripts_prefix_and_may_list_it(translated):
    prefix = function_env(translated, "SubmitterFunction")["SCRIPTS_PREFIX"]
    assert prefix.endswith("/")
    statements = role_statements(translated, "SubmitterFunctionRole")
    s3 = [s for s in statements if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    by_action = {a: s for s in s3 for a in as_list(s["Action"])}
    assert set(by_action) == {"s3:GetObject", "s3:ListBucket"}
    assert by_action["s3:GetObject"]["Resource"] == {"Fn::Sub": "${ScriptsBucket.Arn}/" + prefix + "*"}
    assert "Condition" not in by_action["s3:GetObject"]
    listing = by_action["s3:ListBucket"]
    assert listing["Resource"] == {"Fn::GetAtt": ["ScriptsBucket", "Arn"]}
    # S3 evaluates the ListBucket that turns a 403 into a 404 with the requested key as s3:prefix.
    assert listing["Condition"] == {"StringLike": {"s3:prefix": prefix + "*"}}


def test_the_backfill_starts_etl_runs_and_looks_after_its_own_runs_only(translated):
    """The Backfill role: invoke its plan function, start ETL runs, describe and stop only the runs it
    names (bf-*, statemachine/backfill.asl.json), and the managed rule `.sync` needs; nothing else. The
    plan function calls no AWS API: its role has no policy of its own."""
    statements = role_statements(translated, "BackfillStateMachineRole")
    by_action = {}
    for s in statements:
        assert s["Effect"] == "Allow" and "Condition" not in s, s
        for action in as_list(s["Action"]):
            by_action.setdefault(action, []).extend(as_list(s["Resource"]))
    etl_runs = {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
                           "${EtlStateMachine.Name}:bf-*"}
    sync_rule = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
                            "StepFunctionsGetEventsForStepFunctionsExecutionRule"}
    assert by_action == {
        "lambda:InvokeFunction": [{"Fn::GetAtt": ["BackfillPlanFunction", "Arn"]}],  # not "<name>*"
        "states:StartExecution": [{"Ref": "EtlStateMachine"}],
        "states:DescribeExecution": [etl_runs],
        "states:StopExecution": [etl_runs],
        "events:PutTargets": [sync_rule],
        "events:PutRule": [sync_rule],
        "events:DescribeRule": [sync_rule],
    }
    assert not translated["Resources"]["BackfillPlanFunctionRole"]["Properties"].get("Policies")
    # the names the role covers are the names the plan gives (bf-<backfillId>-<date>, then -<attempt>)
    definition = (ROOT / "statemachine" / "backfill.asl.json").read_text()
    assert "${EtlExecutionArnPrefix}:{}-{}" in definition
    plan = (ROOT / "functions" / "backfill" / "src" / "lib.rs").read_text()
    assert 'format!("bf-{backfill_id}-{date}")' in plan


LINEAGE_SENDERS = ("SubmitterFunction", "CompleterFunction", "ReconcilerFunction")


def test_only_the_lineage_senders_may_read_exactly_the_api_key_secret_and_only_with_lineage_on(translated):
    conditions = load_template(ROOT / "template.yaml")["Conditions"]
    assert conditions["HasLineageApiKey"] == {"Fn::And": [
        {"Condition": "HasLineage"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "OpenLineageApiKeySecretArn"}, ""]}]}]}
    roles = {lid for lid, r in translated["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    for role in sorted(roles):
        props = translated["Resources"][role]["Properties"]
        for policy in props.get("Policies") or []:
            for statement in as_list(policy["PolicyDocument"]["Statement"]):
                readers = [b for b in branches(statement) if b.get("Sid") == "LineageApiKey"]
                if not readers:
                    continue
                assert role.removesuffix("Role") in LINEAGE_SENDERS, role
                # present only under the condition, absent otherwise
                assert statement["Fn::If"][0] == "HasLineageApiKey" and statement["Fn::If"][2] == {"Ref": "AWS::NoValue"}
                (reader,) = readers
                assert reader["Action"] == "secretsmanager:GetSecretValue"
                assert reader["Resource"] == {"Ref": "OpenLineageApiKeySecretArn"}
    for function in LINEAGE_SENDERS:
        statements = role_statements(translated, f"{function}Role")
        assert [s["Sid"] for s in statements if s.get("Sid") == "LineageApiKey"] == ["LineageApiKey"], function
        assert function_env(translated, function)["OPENLINEAGE_API_KEY_SECRET_ARN"] == {"Ref": "OpenLineageApiKeySecretArn"}
    # no other statement grants the secret (the submitter's DatabaseSecret names RedshiftSecretArn)
    for role in roles:
        for s in role_statements(translated, role):
            if "secretsmanager:GetSecretValue" in as_list(s.get("Action")):
                assert s["Resource"] in ({"Ref": "OpenLineageApiKeySecretArn"}, {"Ref": "RedshiftSecretArn"}), (role, s)
