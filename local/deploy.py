"""Create the resources of template.yaml in moto: the one wiring, read from the template itself.

Created: DynamoDB tables (key schema, billing, SSE, TTL), S3 buckets (+ scripts/*.sql uploaded where
a function's SCRIPTS_BUCKET/SCRIPTS_PREFIX point), SQS queues, Lambda functions (name = Cargo binary
of CodeUri, the template's environment), EventBridge rules (standalone or SAM `EventBridgeRule`
events) with their real EventPattern and targets (RetryPolicy, DeadLetterConfig), Step Functions
state machines from their ASL file with DefinitionSubstitutions, and the IAM roles moto needs to
accept a function. Everything else (policies, permissions, schedules, log groups) is skipped with a
note, because moto would not enforce it anyway.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfn import Resource, Template, TemplateError

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
SKIPPED_TYPES = {
    "AWS::Lambda::Permission": "moto does not enforce resource policies",
    "AWS::SQS::QueuePolicy": "moto does not enforce resource policies",
    "AWS::S3::BucketPolicy": "moto does not enforce resource policies",
    "AWS::IAM::Policy": "moto does not enforce IAM",
    "AWS::IAM::ManagedPolicy": "moto does not enforce IAM",
    "AWS::Scheduler::Schedule": "schedules are off locally; start runs explicitly",
    "AWS::Scheduler::ScheduleGroup": "schedules are off locally",
    "AWS::Logs::LogGroup": "logs go to the process log files under the run dir",
    "AWS::Lambda::EventInvokeConfig": "async invoke settings are not emulated",
}
TRUST = {
    "lambda": "lambda.amazonaws.com",
    "states": "states.amazonaws.com",
    "scheduler": "scheduler.amazonaws.com",
}


@dataclass
class Function:
    logical_id: str
    name: str
    arn: str
    env: dict[str, str]


@dataclass
class Deployment:
    functions: dict[str, Function] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    tables: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> URL
    rules: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def state_machine_arn(self) -> str:
        if len(self.state_machines) != 1:
            raise TemplateError(f"expected exactly one state machine in the template, found {sorted(self.state_machines)}")
        return next(iter(self.state_machines.values()))


def function_envs(tpl: Template) -> dict[str, Function]:
    """Each function's binary name and environment, resolved from the template (no AWS calls)."""
    out = {}
    for res in tpl.of_type(*FUNCTION_TYPES):
        props = tpl.props(res)
        env = ((props.get("Environment") or {}).get("Variables")) or {}
        out[res.logical_id] = Function(res.logical_id, res.ref, res.attrs["Arn"], {k: str(v) for k, v in env.items()})
    return out


def deploy(tpl: Template, clients, scripts_dir: Path) -> Deployment:
    """Create every supported resource in moto. `clients(service)` returns a boto3 client."""
    dep = Deployment()
    handled = set(FUNCTION_TYPES) | set(STATE_MACHINE_TYPES) | {
        "AWS::IAM::Role", "AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Events::Rule"}
    for res in tpl.resources.values():
        if res.type in SKIPPED_TYPES:
            dep.notes.append(f"skipped {res.logical_id} ({res.type}): {SKIPPED_TYPES[res.type]}")
        elif res.type not in handled:
            dep.notes.append(f"skipped {res.logical_id} ({res.type}): not emulated by the local stack")

    for res in tpl.of_type("AWS::IAM::Role"):
        _role(tpl, res, clients("iam"))
    for res in tpl.of_type("AWS::DynamoDB::Table"):
        dep.tables[res.logical_id] = _table(tpl.props(res), res.ref, clients("dynamodb"))
    for res in tpl.of_type("AWS::S3::Bucket"):
        clients("s3").create_bucket(Bucket=res.ref)
        dep.buckets[res.logical_id] = res.ref
    for res in tpl.of_type("AWS::SQS::Queue"):
        dep.queues[res.logical_id] = _queue(tpl.props(res), res, clients("sqs"))

    dep.functions = function_envs(tpl)
    for res in tpl.of_type(*FUNCTION_TYPES):
        _function(tpl, res, dep, clients)
    _upload_scripts(dep, clients("s3"), scripts_dir)

    for res in tpl.of_type(*STATE_MACHINE_TYPES):
        dep.state_machines[res.logical_id] = _state_machine(tpl, res, clients("stepfunctions"), dep)
    for res in tpl.of_type("AWS::Events::Rule"):
        props = tpl.props(res)
        if "ScheduleExpression" in props:
            dep.notes.append(f"skipped {res.logical_id}: scheduled rules are off locally")
            continue
        _rule(clients("events"), res.ref, props.get("EventPattern"), props.get("EventBusName"),
              props.get("State", "ENABLED"), props.get("Targets") or [])
        dep.rules[res.logical_id] = res.ref
    dep.outputs = tpl.outputs()
    return dep


# --- resource creators ---------------------------------------------------------------------------

def _role(tpl: Template, res: Resource, iam) -> None:
    props = tpl.props(res)
    doc = props.get("AssumeRolePolicyDocument")
    if doc is None:  # SAM implicit role: trust the service that owns the resource
        owner = tpl.resources.get(res.logical_id[: -len("Role")])
        service = TRUST["states"] if owner and owner.type in STATE_MACHINE_TYPES else TRUST["lambda"]
        doc = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=res.ref, AssumeRolePolicyDocument=json.dumps(doc))


def _table(props: dict, name: str, ddb) -> str:
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = props.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    if props.get("SSESpecification"):
        kwargs["SSESpecification"] = {"Enabled": _bool(props["SSESpecification"].get("SSEEnabled", False))}
    ddb.create_table(**kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and _bool(ttl.get("Enabled", False)):
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
    return name


def _queue(props: dict, res: Resource, sqs) -> str:
    name = res.attrs["QueueName"]
    attrs = {k: str(v) for k, v in props.items() if k in (
        "MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds", "ReceiveMessageWaitTimeSeconds",
        "SqsManagedSseEnabled", "FifoQueue", "ContentBasedDeduplication")}
    url = sqs.create_queue(QueueName=name, Attributes={k: v.lower() if v in ("True", "False") else v for k, v in attrs.items()})["QueueUrl"]
    res.ref = res.attrs["QueueUrl"] = url
    return url


def _function(tpl: Template, res: Resource, dep: Deployment, clients) -> None:
    props = tpl.props(res)
    fn = dep.functions[res.logical_id]
    role = props.get("Role") or tpl.get_att(f"{res.logical_id}Role", "Arn")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # moto needs a package; cargo lambda runs the real binary
        zf.writestr("bootstrap", "served by cargo lambda watch\n")
    kwargs: dict[str, Any] = {
        "FunctionName": fn.name,
        "Runtime": props.get("Runtime", "provided.al2023"),
        "Role": role,
        "Handler": props.get("Handler", "bootstrap"),
        "Code": {"ZipFile": buf.getvalue()},
        "Environment": {"Variables": fn.env},
        "Timeout": int(props.get("Timeout", 3)),
        "MemorySize": int(props.get("MemorySize", 128)),
        "Architectures": props.get("Architectures") or ["x86_64"],
    }
    clients("lambda").create_function(**kwargs)
    for event_id, event in (props.get("Events") or {}).items():
        etype, eprops = event.get("Type"), event.get("Properties") or {}
        if etype not in ("EventBridgeRule", "CloudWatchEvent"):
            dep.notes.append(f"skipped {res.logical_id} event {event_id} ({etype}): not emulated locally")
            continue
        target = {"Id": (eprops.get("Target") or {}).get("Id") or f"{res.logical_id}{event_id}LambdaTarget", "Arn": fn.arn}
        if eprops.get("RetryPolicy"):
            target["RetryPolicy"] = eprops["RetryPolicy"]
        dlq = eprops.get("DeadLetterConfig") or {}
        if dlq:
            target["DeadLetterConfig"] = {"Arn": _sam_dlq_arn(tpl, res, event_id, dlq, dep, clients("sqs"))}
        if "Input" in eprops:
            target["Input"] = eprops["Input"]
        rule_name = eprops.get("RuleName") or f"{tpl.ctx.stack_name}-{res.logical_id}{event_id}"
        _rule(clients("events"), rule_name, eprops.get("Pattern"), eprops.get("EventBusName"),
              eprops.get("State", "ENABLED"), [target])
        dep.rules[f"{res.logical_id}.{event_id}"] = rule_name


def _sam_dlq_arn(tpl: Template, res: Resource, event_id: str, dlq: dict, dep: Deployment, sqs) -> str:
    if dlq.get("Arn"):
        return dlq["Arn"]
    name = dlq.get("QueueLogicalId") or f"{res.logical_id}{event_id}Queue"
    url = sqs.create_queue(QueueName=f"{tpl.ctx.stack_name}-{name}")["QueueUrl"]
    dep.queues[name] = url
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _rule(events, name: str, pattern: Any, bus: str | None, state: str, targets: list[dict]) -> None:
    if not pattern:
        raise TemplateError(f"rule {name}: no EventPattern")
    kwargs: dict[str, Any] = {"Name": name, "EventPattern": pattern if isinstance(pattern, str) else json.dumps(pattern), "State": state}
    if bus:
        kwargs["EventBusName"] = bus
    events.put_rule(**kwargs)
    clean = []
    for t in targets:
        t = {k: v for k, v in t.items() if k in ("Id", "Arn", "RetryPolicy", "DeadLetterConfig", "Input", "InputPath", "InputTransformer")}
        if "RetryPolicy" in t:
            t["RetryPolicy"] = {k: int(v) for k, v in t["RetryPolicy"].items()}
        clean.append(t)
    put = {"Rule": name, "Targets": clean}
    if bus:
        put["EventBusName"] = bus
    events.put_targets(**put)


def _state_machine(tpl: Template, res: Resource, sfn, dep: Deployment) -> str:
    props = tpl.props(res)
    if "DefinitionUri" in props:
        uri = props["DefinitionUri"]
        if not isinstance(uri, str):
            raise TemplateError(f"{res.logical_id}: DefinitionUri must be a local file locally, got {uri!r}")
        text = (tpl.root / uri).read_text(encoding="utf-8")
    elif "Definition" in props:
        text = json.dumps(props["Definition"])
    elif "DefinitionString" in props:
        text = props["DefinitionString"]
    else:
        raise TemplateError(f"{res.logical_id}: no DefinitionUri/Definition")
    subs = props.get("DefinitionSubstitutions") or {}
    text = re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: str(subs.get(m.group(1), m.group(0))), text)
    left = sorted(set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text)))
    if left:
        raise TemplateError(f"{res.logical_id}: DefinitionSubstitutions missing for {', '.join(left)}")
    json.loads(text)  # fail here, with the file named, rather than inside moto
    role = props.get("Role") or tpl.get_att(f"{res.logical_id}Role", "Arn")
    for event_id, event in (props.get("Events") or {}).items():
        dep.notes.append(f"skipped {res.logical_id} event {event_id} ({event.get('Type')}): schedules are off locally")
    return sfn.create_state_machine(
        name=res.attrs["Name"], definition=text, roleArn=role, type=props.get("Type", "STANDARD"))["stateMachineArn"]


def _upload_scripts(dep: Deployment, s3, scripts_dir: Path) -> None:
    targets = {(f.env["SCRIPTS_BUCKET"], f.env.get("SCRIPTS_PREFIX", "")) for f in dep.functions.values() if f.env.get("SCRIPTS_BUCKET")}
    if not targets:
        dep.notes.append("no function has SCRIPTS_BUCKET: SQL scripts not uploaded")
    scripts = sorted(scripts_dir.glob("*.sql"))
    if targets and not scripts:
        raise TemplateError(f"no SQL scripts in {scripts_dir}")
    for bucket, prefix in sorted(targets):
        for path in scripts:
            s3.put_object(Bucket=bucket, Key=f"{prefix}{path.name}", Body=path.read_bytes())


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
