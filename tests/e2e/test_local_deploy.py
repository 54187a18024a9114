"""The local stack deploys template.yaml the way AWS does (SAM translator, then moto's CloudFormation):
every resource of the translated template is created in moto with the properties that matter, or
skipped for a written-down reason. Checked against an independent translation of template.yaml, so a
template change the local stack silently ignores fails here."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from deploy import SKIPPED, TemplateError, deploy, load_template, parameter_notes, scripts_version, translate
from procs import _group_alive
from stack import LOCAL_PARAMETERS, ROOT, LocalStack
from template_env import function_envs


@pytest.fixture(scope="module")
def translated(stack):
    return translate(load_template(ROOT / "template.yaml"), LOCAL_PARAMETERS, stack.client("iam"), ROOT)


NO_VALUE = object()  # AWS::NoValue


class Resolver:
    """Just enough CloudFormation to read the translated template's values back from the live stack."""

    def __init__(self, stack, translated):
        self.stack, self.dep, self.tpl = stack, stack.deployment, translated

    def __call__(self, value):
        if isinstance(value, list):  # AWS::NoValue drops the item, as CloudFormation does
            return [r for r in (self(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Fn::If"}:
            condition, yes, no = value["Fn::If"]
            return self(yes) if self.condition(condition) else self(no)
        if set(value) == {"Ref"}:
            return self.ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            lid, attr = value["Fn::GetAtt"]
            return self.get_att(lid, attr)
        if set(value) == {"Fn::FindInMap"}:
            mapping, top, second = (self(v) for v in value["Fn::FindInMap"])
            return self.tpl["Mappings"][mapping][top][second]
        if set(value) == {"Fn::Sub"}:
            text, names = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]

            def sub(m):
                name = m.group(1)
                if name in names:
                    return str(self(names[name]))
                return str(self.get_att(*name.split(".", 1)) if "." in name else self.ref(name))
            return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", sub, text)
        return {k: self(v) for k, v in value.items()}

    def condition(self, name):
        return self.truth(self.tpl["Conditions"][name])

    def truth(self, spec):
        (key, arg), = spec.items()
        if key == "Fn::Equals":
            left, right = (self(v) for v in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.truth(arg[0])
        if key == "Fn::And":
            return all(self.truth(a) for a in arg)
        if key == "Fn::Or":
            return any(self.truth(a) for a in arg)
        assert key == "Condition", spec
        return self.condition(arg)

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        pseudo = {"AWS::StackName": self.dep.stack_name, "AWS::Region": "us-east-1",
                  "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name in self.dep.parameters:
            return self.dep.parameters[name]
        if name in self.tpl.get("Parameters", {}):
            return self.tpl["Parameters"][name].get("Default", "")
        return self.dep.physical[name]

    def get_att(self, lid, attr):
        rtype, phys = self.tpl["Resources"][lid]["Type"], self.dep.physical[lid]
        if (rtype, attr) == ("AWS::StepFunctions::StateMachine", "Name"):
            return self.stack.client("stepfunctions").describe_state_machine(stateMachineArn=phys)["name"]
        if (rtype, attr) == ("AWS::SQS::Queue", "QueueName"):
            return phys.rsplit("/", 1)[-1]
        assert attr == "Arn", (lid, attr)
        if rtype == "AWS::Lambda::Function":
            return self.dep.functions[lid].arn
        if rtype == "AWS::SQS::Queue":
            return self.stack.client("sqs").get_queue_attributes(QueueUrl=phys, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if rtype == "AWS::Events::Rule":
            return self.stack.client("events").describe_rule(Name=phys)["Arn"]
        if rtype == "AWS::DynamoDB::Table":
            return self.stack.client("dynamodb").describe_table(TableName=phys)["Table"]["TableArn"]
        if rtype == "AWS::IAM::Role":
            return self.stack.client("iam").get_role(RoleName=phys)["Role"]["Arn"]
        return phys


def of_type(translated, rtype):
    return {lid: r.get("Properties") or {} for lid, r in translated["Resources"].items() if r["Type"] == rtype}


def test_every_translated_resource_is_created_or_skipped_with_a_reason(stack, translated):
    dep = stack.deployment
    for lid, res in translated["Resources"].items():
        if res["Type"] in SKIPPED:
            assert lid not in dep.physical
            assert f"skipped {lid} ({res['Type']}): {SKIPPED[res['Type']]}" in dep.notes
        else:
            assert lid in dep.physical, f"{lid} ({res['Type']}) was not created"
    assert set(dep.types) == set(translated["Resources"])


def test_tables_have_the_template_keys_indexes_and_ttl(stack, translated):
    ddb = stack.client("dynamodb")
    for lid, props in of_type(translated, "AWS::DynamoDB::Table").items():
        name = stack.deployment.physical[lid]
        table = ddb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == props["KeySchema"]
        assert sorted(table["AttributeDefinitions"], key=str) == sorted(props["AttributeDefinitions"], key=str)
        assert table["BillingModeSummary"]["BillingMode"] == props.get("BillingMode", "PROVISIONED")
        want_gsis = {g["IndexName"]: g["KeySchema"] for g in props.get("GlobalSecondaryIndexes", [])}
        assert {g["IndexName"]: g["KeySchema"] for g in table.get("GlobalSecondaryIndexes", [])} == want_gsis
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if props.get("TimeToLiveSpecification", {}).get("Enabled"):
            assert ttl["TimeToLiveStatus"] == "ENABLED"
            assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"]


def test_functions_get_the_environment_cloudformation_resolved(stack, translated):
    resolve = Resolver(stack, translated)
    functions = of_type(translated, "AWS::Lambda::Function")
    assert set(stack.deployment.functions) == set(functions)
    lam = stack.client("lambda")
    for lid, props in functions.items():
        fn = stack.deployment.functions[lid]
        cfg = lam.get_function_configuration(FunctionName=fn.name)
        # (moto keeps a Number parameter as a number; Lambda would hold the string)
        assert {k: str(v) for k, v in cfg["Environment"]["Variables"].items()} == resolve(props["Environment"]["Variables"])
        assert fn.env == resolve(props["Environment"]["Variables"])
        assert (cfg["Timeout"], cfg["MemorySize"]) == (props["Timeout"], props["MemorySize"])
        assert fn.binary == translated["Resources"][lid]["Metadata"]["BuildProperties"]["Binary"]
        assert fn.log_format == props["LoggingConfig"]["LogFormat"]
    sub = stack.deployment.functions["SubmitterFunction"].env
    assert sub["REDSHIFT_CLUSTER_ID"] == LOCAL_PARAMETERS["RedshiftClusterId"]
    assert sub["STATEMENT_NAME_PREFIX"] == stack.stack_name


def test_a_standalone_start_gets_the_environment_cloudformation_resolves(stack):
    """local/template_env.py (what make bench and tests/test_function_env.py start the binaries with)
    resolves template.yaml as CloudFormation did for this stack, given its parameters and physical ids."""
    dep = stack.deployment
    resolved = function_envs(ROOT / "template.yaml", stack.template_parameters, stack_name=stack.stack_name,
                             physical=dep.physical)
    assert resolved == {fn.binary: fn.env for fn in dep.functions.values()}


def test_rules_have_the_template_pattern_and_targets(stack, translated):
    resolve = Resolver(stack, translated)
    events = stack.client("events")
    rules = of_type(translated, "AWS::Events::Rule")
    assert rules
    for lid, props in rules.items():
        rule = events.describe_rule(Name=stack.deployment.physical[lid])
        assert rule["State"] == resolve(props.get("State", "ENABLED"))
        if "EventPattern" in props:
            assert json.loads(rule["EventPattern"]) == resolve(props["EventPattern"])
        else:
            assert rule["ScheduleExpression"] == resolve(props["ScheduleExpression"])
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        want = resolve(props["Targets"])
        assert [(t["Id"], t["Arn"]) for t in targets] == [(t["Id"], t["Arn"]) for t in want]
        for got, exp in zip(targets, want):
            for key in ("RetryPolicy", "DeadLetterConfig", "Input"):
                assert got.get(key) == exp.get(key), (lid, key)


def test_state_machine_is_the_asl_with_its_substitutions(stack, translated):
    resolve = Resolver(stack, translated)
    sfn = stack.client("stepfunctions")
    machines = of_type(translated, "AWS::StepFunctions::StateMachine")
    # ListStateMachines promises no order
    assert sorted(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]) == \
        sorted(stack.deployment.physical[lid] for lid in machines)
    for lid, props in machines.items():
        got = sfn.describe_state_machine(stateMachineArn=stack.deployment.physical[lid])
        asl = (ROOT / load_template(ROOT / "template.yaml")["Resources"][lid]["Properties"]["DefinitionUri"]).read_text()
        for key, value in resolve(props["DefinitionSubstitutions"]).items():
            asl = asl.replace("${" + key + "}", value)
        assert "${" not in got["definition"]
        assert json.loads(got["definition"]) == json.loads(asl)
        assert got["type"] == props["StateMachineType"]
        assert got["name"] == resolve(props["StateMachineName"])


def test_scripts_are_uploaded_where_the_submitter_reads_them(stack):
    """Under the scripts version the deployed definition's SQL Tasks send (read back from Step
    Functions here); other keys are older versions a redeploy left for the runs still reading them."""
    env = stack.deployment.functions["SubmitterFunction"].env
    deployed = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.deployment.state_machine_arn)["definition"]
    version = scripts_version(deployed)
    assert version == stack.deployment.scripts_version
    if version is not None:  # the generator bakes one into every SQL Task (unversioned: an older ASL)
        assert re.fullmatch(r"[0-9a-f]{16}", version), version
        # every SQL Task names its script, or is a check carrying its SELECT (`check.sql`)
        assert deployed.count('"scriptsVersion"') == deployed.count('"script"') + deployed.count('"sql"')
        assert deployed.count('"script"') > 0
    folder = env["SCRIPTS_PREFIX"] + (f"{version}/" if version else "")
    keys = [o["Key"] for o in stack.client("s3").list_objects_v2(Bucket=env["SCRIPTS_BUCKET"])["Contents"]]
    assert all(k.startswith(env["SCRIPTS_PREFIX"]) for k in keys), keys
    mine = [k for k in keys if k.startswith(folder) and "/" not in k.removeprefix(folder)]
    assert sorted(mine) == sorted(folder + p.name for p in (ROOT / "scripts").glob("*.sql"))
    for p in (ROOT / "scripts").glob("*.sql"):
        body = stack.client("s3").get_object(Bucket=env["SCRIPTS_BUCKET"], Key=folder + p.name)["Body"].read()
        assert body == p.read_bytes(), p.name


def test_parameters_cloudformation_would_refuse_are_named_not_silently_used(stack):
    """The e2e stack runs the reconciler every 2 s with an 8 s heartbeat, which template.yaml's
    constraints refuse on AWS (moto checks none): the deploy says so, and AWS-valid values say nothing."""
    notes = [n for n in stack.deployment.notes if n.startswith("parameter ")]
    assert any(n.startswith("parameter ReconcileRate=rate(2 seconds) is not one of") for n in notes), notes
    assert any(n.startswith("parameter StepHeartbeatSeconds=8 is below MinValue 600") for n in notes), notes
    template = load_template(ROOT / "template.yaml")
    assert parameter_notes(template, {**LOCAL_PARAMETERS, "ReconcileRate": "rate(2 minutes)",
                                      "StepHeartbeatSeconds": "600", "ReconcileGraceSeconds": "60"}) == []
    assert parameter_notes(template, {"ReconcileGraceSeconds": "0"}) == [
        "parameter ReconcileGraceSeconds=0 is below MinValue 1: CloudFormation would refuse it; "
        "the local stack uses it (moto does not check parameter constraints)"]


def test_outputs_come_from_the_stack(stack):
    out = stack.deployment.outputs
    assert out["StateMachineArn"] == stack.deployment.state_machine_arn
    assert out["TokenTableName"] == stack.deployment.functions["SubmitterFunction"].env["TOKEN_TABLE"]


def _copy_project(tmp_path: Path, extra_resources: str) -> Path:
    """template.yaml plus resources, beside a copy of the ASL it references."""
    (tmp_path / "statemachine").mkdir()
    for asl in (ROOT / "statemachine").glob("*.json"):
        (tmp_path / "statemachine" / asl.name).write_text(asl.read_text())
    text = (ROOT / "template.yaml").read_text()
    text = text.replace("\nResources:\n", "\nResources:\n" + textwrap.indent(textwrap.dedent(extra_resources), "  "), 1)
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def test_a_resource_type_moto_cannot_create_stops_the_deploy_naming_it(stack, tmp_path):
    path = _copy_project(tmp_path, """
        UpstreamCrawler:
          Type: AWS::Glue::Crawler
          Properties: {Role: x, DatabaseName: y, Targets: {S3Targets: [{Path: s3://b/p}]}}
    """)
    with pytest.raises(TemplateError, match=r"UpstreamCrawler \(AWS::Glue::Crawler\)"):
        deploy(stack.client, path, LOCAL_PARAMETERS, "bad-type", ROOT / "scripts")


def test_a_failing_create_stack_names_the_resource_and_the_reason(stack, tmp_path):
    path = _copy_project(tmp_path, """
        BrokenTable:
          Type: AWS::DynamoDB::Table
          Properties:
            BillingMode: PAY_PER_REQUEST
            AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
            KeySchema: [{AttributeName: id, KeyType: HASH}, {AttributeName: nope, KeyType: RANGE}]
    """)
    with pytest.raises(TemplateError, match=r"CreateStack bad-stack failed: BrokenTable \(AWS::DynamoDB::Table\) could not be created"):
        deploy(stack.client, path, LOCAL_PARAMETERS, "bad-stack", ROOT / "scripts")


def test_a_template_the_translator_rejects_is_a_clear_error(stack, tmp_path):
    path = _copy_project(tmp_path, """
        BadEvent:
          Type: AWS::Serverless::Function
          Metadata: {BuildProperties: {Binary: completer}}
          Properties: {Events: {E: {Type: NotAnEventType}}}
    """)
    with pytest.raises(TemplateError, match="SAM translator rejected(.|\n)*BadEvent"):
        deploy(stack.client, path, LOCAL_PARAMETERS, "bad-sam", ROOT / "scripts")


def test_a_bad_template_stops_the_start_up_and_leaves_no_process_running(tmp_path):
    path = _copy_project(tmp_path, """
        UpstreamCrawler:
          Type: AWS::Glue::Crawler
          Properties: {Role: x, DatabaseName: y, Targets: {S3Targets: [{Path: s3://b/p}]}}
    """)
    bad = LocalStack(run_dir=tmp_path / "run", template_path=path)
    started = []
    original = bad.procs.start
    bad.procs.start = lambda *a, **kw: started.append(original(*a, **kw)) or started[-1]
    with pytest.raises(TemplateError, match="UpstreamCrawler"):
        bad.start()
    assert {c.name for c in started} >= {"moto", "emulator", "cargo-lambda"}
    assert [c.name for c in started if _group_alive(c.pid)] == []
    assert not (tmp_path / "run" / "state.json").exists()
