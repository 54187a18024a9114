"""The local deployment reads template.yaml + the ASL and nothing else (fast: moto in-process, no processes)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cfn import Context, Template, TemplateError, load_yaml
from deploy import deploy
from stack import ACCOUNT, LOCAL_PARAMETERS, REGION, ROOT, STACK_NAME

CTX = Context(STACK_NAME, REGION, ACCOUNT)


@pytest.fixture()
def deployed():
    with mock_aws(config={"lambda": {"use_docker": False}}):
        tpl = Template(ROOT / "template.yaml", CTX, LOCAL_PARAMETERS)

        def client(service):
            return boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")

        yield tpl, deploy(tpl, client, ROOT / "scripts"), client


def test_short_tags_and_intrinsics_resolve(tmp_path: Path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""
        Parameters:
          Env: {Type: String, Default: ""}
        Conditions:
          HasEnv: !Not [!Equals [!Ref Env, ""]]
        Resources:
          Q: {Type: AWS::SQS::Queue}
          F:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: functions/thing/
              Environment:
                Variables:
                  A: !GetAtt Q.Arn
                  B: !Sub "${AWS::StackName}/${Q.QueueName}/${X}"
                  C: !Sub ["${Y}-x", {Y: !Ref AWS::Region}]
                  D: !If [HasEnv, !Ref Env, !Ref AWS::NoValue]
                  E: !Join ["-", [a, !Select [1, !Split [",", "p,q"]]]]
    """).replace("${X}", "${!X}"))
    tpl = Template(path, CTX, {})
    fn = tpl.resources["F"]
    assert fn.ref == "thing"
    env = tpl.props(fn)["Environment"]["Variables"]
    assert env == {
        "A": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK_NAME}-Q",
        "B": f"{STACK_NAME}/{STACK_NAME}-Q/${{X}}",
        "C": f"{REGION}-x",
        "E": "a-q",
    }
    assert "FRole" in tpl.resources  # SAM's implicit role
    with pytest.raises(TemplateError, match="unknown template parameters"):
        Template(path, CTX, {"Nope": "1"})


def test_functions_get_the_template_environment(deployed):
    tpl, dep, client = deployed
    assert set(dep.functions) == {"SubmitterFunction", "CompleterFunction"}
    lam = client("lambda")
    sub = lam.get_function(FunctionName="submitter")["Configuration"]
    env = sub["Environment"]["Variables"]
    assert env["STATEMENT_NAME_PREFIX"] == STACK_NAME
    assert env["REDSHIFT_CLUSTER_ID"] == "local-cluster" and env["REDSHIFT_DB_USER"] == "awsuser"
    assert env["TOKEN_TABLE"] == dep.tables["TokenTable"]
    assert lam.get_function(FunctionName="completer")["Configuration"]["Environment"]["Variables"] == {
        "TOKEN_TABLE": dep.tables["TokenTable"]}


def test_table_bucket_and_scripts_follow_the_template(deployed):
    tpl, dep, client = deployed
    ddb = client("dynamodb")
    table = ddb.describe_table(TableName=dep.tables["TokenTable"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "statementId", "KeyType": "HASH"}]
    assert ddb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]["AttributeName"] == "expiresAt"
    env = dep.functions["SubmitterFunction"].env
    keys = [o["Key"] for o in client("s3").list_objects_v2(Bucket=env["SCRIPTS_BUCKET"])["Contents"]]
    assert sorted(keys) == sorted(env["SCRIPTS_PREFIX"] + p.name for p in (ROOT / "scripts").glob("*.sql"))


def test_rule_has_the_real_pattern_and_target(deployed):
    tpl, dep, client = deployed
    raw = load_yaml(ROOT / "template.yaml")["Resources"]["StatementStatusChangeRule"]["Properties"]
    events = client("events")
    rule = events.describe_rule(Name=dep.rules["StatementStatusChangeRule"])
    assert json.loads(rule["EventPattern"]) == tpl.resolve(raw["EventPattern"])
    assert json.loads(rule["EventPattern"])["detail"]["statementName"] == [{"prefix": f"{STACK_NAME}/"}]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == dep.functions["CompleterFunction"].arn
    assert target["DeadLetterConfig"]["Arn"].endswith(":" + dep.queues["StatementEventsDeadLetterQueue"].rsplit("/", 1)[-1])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 185


def test_state_machine_is_the_asl_with_substitutions(deployed):
    tpl, dep, client = deployed
    definition = client("stepfunctions").describe_state_machine(stateMachineArn=dep.state_machine_arn)["definition"]
    asl = (ROOT / "statemachine" / "etl.asl.json").read_text()
    assert "${" not in definition
    assert json.loads(definition) == json.loads(asl.replace("${SubmitterFunctionArn}", dep.functions["SubmitterFunction"].arn))
    assert dep.state_machine_arn.endswith(f":stateMachine:{STACK_NAME}-etl")
