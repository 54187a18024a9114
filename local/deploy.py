"""Deploy template.yaml into moto the way `sam deploy` does: the SAM translator (aws-sam-translator,
the transform `sam deploy` runs) turns it into plain CloudFormation, and moto's CloudFormation
(`CreateStack`) creates the resources. What the stack is made of (physical names, ARNs, each
function's resolved environment, the Outputs) is read back from moto, never computed here.

Local-only changes are made to an in-memory copy, as `sam package` would: each function's `CodeUri`
points at a package `s3://local-stack-code/<Cargo binary>.zip` in moto's S3 (the binary named by
`Metadata.BuildProperties.Binary`, which `sam build` builds; local/moto_adapter routes an invoke of the
function to that binary under `cargo lambda`, whatever name CloudFormation generated; a stack deployed
with a `route_suffix`, e.g. a second copy of the product next to the first, gets
`<Cargo binary>.<suffix>.zip`, so that its invocations reach its own processes and never the other
copy's, which run the same binary with another environment), and a state
machine's `DefinitionUri` file is inlined as its `Definition` (or another file, when `definitions`
names one for that state machine: `stack.py --pipeline` deploys a generated state machine that way).
template.yaml itself is never changed.

What CloudFormation cannot do, and this module therefore does after CreateStack:
- upload `scripts/*.sql` where a function's SCRIPTS_BUCKET / SCRIPTS_PREFIX point, under the
  scripts' content version the deployed definition names (`<prefix><scriptsVersion>/<script>`, read
  from the SQL Tasks' payloads; `<prefix><script>` for a definition without one). Nothing is ever
  deleted: a run started before a later deploy keeps reading its own version;
- apply the properties moto's CloudFormation drops although they change behaviour locally
  (`FIXUPS`: a table's TimeToLiveSpecification; a function's LoggingConfig, which the local
  processes need for their log format and level);
- refuse a template that uses a resource type moto cannot create unless `SKIPPED` says why the
  local stack can do without it (each one is printed as a note).

`redeploy` deploys a changed project onto a running stack as `sam deploy` does (UpdateStack of the
new translation; moto_adapter patch 27 updates the state machine in place), after uploading the
new scripts' version, so that a run started once the update is done finds its scripts. Executions
already running keep the definition they started with (moto snapshots it at StartExecution, as Step
Functions does for a Standard execution) and so the scripts' version of that definition.

    python local/deploy.py scripts-version statemachine/etl.asl.json   # prints the version, or nothing
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

CODE_BUCKET = "local-stack-code"  # moto_adapter (lambda_.py) reads the binary from a function's key in it
# Between a Cargo binary and a stack's route suffix in a package key (Cargo target names have no '.').
ROUTE_SEP = "."
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# Resource types moto's CloudFormation skips (with a warning), and why the local stack runs without them.
SKIPPED = {
    "AWS::S3::BucketPolicy": "moto does not enforce resource policies",
    "AWS::SQS::QueuePolicy": "moto does not enforce resource policies",
    "AWS::Lambda::EventInvokeConfig": "Lambda's asynchronous retries and on-failure destination are not "
                                      "emulated (the adapter retries EventBridge deliveries and dead-letters them)",
    "AWS::Scheduler::Schedule": "EventBridge Scheduler is not emulated; start runs explicitly",
    "AWS::CloudWatch::Alarm": "moto's CloudFormation has no alarms, and the local functions publish no "
                              "CloudWatch metrics to evaluate them on",
}


class TemplateError(Exception):
    """The template cannot be deployed locally; the message names the resource and the reason."""


@dataclass
class Function:
    logical_id: str
    name: str  # the physical name CloudFormation generated
    binary: str  # the Cargo binary sam build builds for it (Metadata.BuildProperties.Binary)
    arn: str
    env: dict[str, str]
    timeout: int
    memory: int
    log_format: str
    log_level: str
    route: str = ""  # the name invokes reach it by (cargo lambda's function name): binary[.suffix]

    def __post_init__(self) -> None:
        self.route = self.route or self.binary


@dataclass
class Deployment:
    stack_name: str
    translated: dict
    functions: dict[str, Function] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    types: dict[str, str] = field(default_factory=dict)  # logical id -> resource type (translated)
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def scripts_version(self) -> str | None:
        """The scripts' content version the deployed state machines' SQL Tasks send (None: unversioned)."""
        return stack_scripts_version(self.translated)

    def script_location(self, name: str, function: str = "SubmitterFunction") -> tuple[str, str]:
        """(bucket, key) where `function` reads script `name` for a run of the deployed definition."""
        env = self.functions[function].env
        return env["SCRIPTS_BUCKET"], script_key(env.get("SCRIPTS_PREFIX", ""), self.scripts_version, name)

    def of_type(self, rtype: str) -> dict[str, str]:
        return {lid: self.physical[lid] for lid, t in self.types.items() if t == rtype and lid in self.physical}

    @property
    def state_machine_arn(self) -> str:
        """The pipeline's state machine: the stack's `StateMachineArn` output, or its only state machine."""
        if "StateMachineArn" in self.outputs:
            return self.outputs["StateMachineArn"]
        machines = self.of_type("AWS::StepFunctions::StateMachine")
        if len(machines) != 1:
            raise TemplateError(f"no StateMachineArn output and not exactly one state machine: {sorted(machines)}")
        return next(iter(machines.values()))

    @property
    def tables(self) -> dict[str, str]:
        return self.of_type("AWS::DynamoDB::Table")

    @property
    def queues(self) -> dict[str, str]:
        return self.of_type("AWS::SQS::Queue")

    @property
    def rules(self) -> dict[str, str]:
        return self.of_type("AWS::Events::Rule")


def script_key(prefix: str, version: str | None, script: str) -> str:
    """The submitter's key of a script (etl_callback::task::script_key): `<prefix><version>/<script>`."""
    return f"{prefix}{version}/{script}" if version else f"{prefix}{script}"


def scripts_version(definition: Any) -> str | None:
    """The `scriptsVersion` a state machine definition (ASL as JSON text or parsed) bakes into its
    SQL Tasks' payloads, as the generator wrote it; None when it names none. Several different
    versions in one definition are an error (the generator writes one)."""
    if isinstance(definition, str):
        definition = json.loads(definition)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "scriptsVersion" and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(definition)
    if len(found) > 1:
        raise TemplateError(f"the definition names several scripts versions: {sorted(found)}")
    return next(iter(found), None)


def _definition_of(lid: str, props: dict) -> Any:
    """A translated state machine's definition: `Definition`, or the `DefinitionString` the SAM
    translator writes (JSON text, or an `Fn::Join` of its lines; substitutions stay `${...}`)."""
    if "Definition" in props:
        return props["Definition"]
    text = props.get("DefinitionString", "{}")
    if isinstance(text, dict) and set(text) == {"Fn::Join"}:
        separator, parts = text["Fn::Join"]
        if all(isinstance(p, str) for p in parts):
            text = separator.join(parts)
    if not isinstance(text, str):
        raise TemplateError(f"{lid}: cannot read its definition locally ({str(text)[:80]})")
    return json.loads(text)


def stack_scripts_version(translated: dict) -> str | None:
    """The one scripts version of a translated template's state machines (None: unversioned)."""
    versions = {lid: v for lid, res in translated.get("Resources", {}).items()
                if res.get("Type") == "AWS::StepFunctions::StateMachine"
                and (v := scripts_version(_definition_of(lid, res.get("Properties") or {})))}
    if len(set(versions.values())) > 1:
        raise TemplateError(f"the state machines name different scripts versions: {versions}")
    return next(iter(versions.values()), None)


def load_template(path: Path) -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text(encoding="utf-8"))


def translate(template: dict, parameters: dict[str, str], iam, root: Path,
              definitions: dict[str, Path] | None = None, route_suffix: str = "") -> dict:
    """The SAM transform of an in-memory copy whose code and definition locations are local.
    `definitions`: state machine logical id -> the definition file to use instead of its DefinitionUri.
    `route_suffix`: the functions' packages are `<binary>.<suffix>.zip` (see the module docstring)."""
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    tpl = copy.deepcopy(template)
    definitions = dict(definitions or {})
    for lid in definitions:
        res = (tpl.get("Resources") or {}).get(lid) or {}
        if res.get("Type") != "AWS::Serverless::StateMachine" or "DefinitionUri" not in (res.get("Properties") or {}):
            raise TemplateError(f"{lid}: no AWS::Serverless::StateMachine with a DefinitionUri in the template "
                                f"(cannot deploy another definition for it)")
        res["Properties"]["DefinitionUri"] = str(Path(definitions[lid]).resolve())
    for lid, res in (tpl.get("Resources") or {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function":
            binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
            if not binary:
                raise TemplateError(f"{lid}: Metadata.BuildProperties.Binary names no Cargo binary")
            if ROUTE_SEP in binary or ROUTE_SEP in route_suffix or "/" in route_suffix:
                raise TemplateError(f"{lid}: '{ROUTE_SEP}' or '/' in the binary {binary!r} or the route suffix "
                                    f"{route_suffix!r}")
            route = f"{binary}{ROUTE_SEP}{route_suffix}" if route_suffix else binary
            props["CodeUri"] = f"s3://{CODE_BUCKET}/{route}.zip"
        if res.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            path = root / props.pop("DefinitionUri")
            try:
                props["Definition"] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise TemplateError(f"{lid}: DefinitionUri {path}: {err}") from err
    os.environ.setdefault("AWS_DEFAULT_REGION", iam.meta.region_name)  # the translator needs a region
    try:
        return transform(tpl, dict(parameters), ManagedPolicyLoader(iam))
    except InvalidDocumentException as err:
        raise TemplateError("the SAM translator rejected template.yaml:\n  " +
                            "\n  ".join(str(e) for e in err.causes)) from err


def deploy(clients, template_path: Path, parameters: dict[str, str], stack_name: str,
           scripts_dir: Path, timeout: float = 60, definitions: dict[str, Path] | None = None,
           route_suffix: str = "") -> Deployment:
    """Translate, CreateStack, wait, read the stack back and apply the fix-ups. `clients(service)`
    returns a boto3 client for moto; `definitions` overrides state machines' DefinitionUri, `route_suffix`
    the functions' package keys (see translate)."""
    translated = translate(load_template(template_path), parameters, clients("iam"), template_path.parent,
                           definitions, route_suffix)
    _upload_code(clients("s3"), translated)
    cfn = clients("cloudformation")
    try:
        cfn.create_stack(
            StackName=stack_name, TemplateBody=json.dumps(translated), Capabilities=CAPABILITIES,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    except ClientError as err:
        raise TemplateError(f"CreateStack {stack_name} failed: {err.response['Error'].get('Message')}") from err
    _wait(cfn, stack_name, timeout)
    dep = _read_back(clients, stack_name, translated)
    for rtype, fixup in FIXUPS.items():
        for lid in dep.of_type(rtype):
            fixup(dep, lid, clients)
    _upload_scripts(dep, clients("s3"), scripts_dir)
    dep.notes.extend(parameter_notes(load_template(template_path), parameters))
    return dep


def parameter_notes(template: dict, parameters: dict[str, str]) -> list[str]:
    """What CloudFormation would refuse in `parameters` (AllowedValues, AllowedPattern, MinValue,
    MaxValue), which moto does not check: the local stack runs faster rates and heartbeats than AWS
    allows, and says so instead of disagreeing with template.yaml silently. The `Rules` are checked
    by tests/test_template_rules.py."""
    notes = []
    for name, value in parameters.items():
        spec = (template.get("Parameters") or {}).get(name) or {}
        problems = []
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            problems.append(f"not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            problems.append(f"does not match {spec['AllowedPattern']}")
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and "MinValue" in spec and number < float(spec["MinValue"]):
            problems.append(f"below MinValue {spec['MinValue']}")
        if number is not None and "MaxValue" in spec and number > float(spec["MaxValue"]):
            problems.append(f"above MaxValue {spec['MaxValue']}")
        if problems:
            notes.append(f"parameter {name}={value} is {', '.join(problems)}: CloudFormation would refuse it; "
                         "the local stack uses it (moto does not check parameter constraints)")
    return notes


def redeploy(clients, template_path: Path, stack_name: str, scripts_dir: Path,
             parameters: dict[str, str] | None = None, timeout: float = 60,
             definitions: dict[str, Path] | None = None) -> Deployment:
    """Deploy a changed project onto the running stack `stack_name`, as `sam deploy` updates it:
    translate (parameters: the stack's own when None), upload the scripts under the new definition's
    version FIRST (older versions stay: running executions still read theirs), then UpdateStack and
    wait. What CloudFormation updates is what changes: here the state machines' definitions (patch 27
    of local/moto_adapter); the functions' processes are not restarted, so a change of a function's
    configuration is reported as a note. An unchanged template ("No updates are to be performed") is
    no error. Returns the stack as read back after the update."""
    cfn = clients("cloudformation")
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    if parameters is None:
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters") or []}
    translated = translate(load_template(template_path), parameters, clients("iam"), template_path.parent,
                           definitions)
    before = _read_back(clients, stack_name, translated, check=False)  # where the functions read scripts
    _upload_scripts(before, clients("s3"), scripts_dir)
    updated = True
    try:
        cfn.update_stack(
            StackName=stack_name, TemplateBody=json.dumps(translated), Capabilities=CAPABILITIES,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    except ClientError as err:
        message = err.response["Error"].get("Message") or ""
        if "No updates are to be performed" not in message:
            raise TemplateError(f"UpdateStack {stack_name} failed: {message}") from err
        updated = False
    if updated:
        _wait(cfn, stack_name, timeout, "UPDATE_COMPLETE", "UpdateStack")
    dep = _read_back(clients, stack_name, translated)
    dep.notes.append(f"UpdateStack {stack_name}: " + ("updated" if updated else "no changes") +
                     f"; scripts version {dep.scripts_version or '(unversioned)'}")
    for lid, fn in dep.functions.items():
        old = before.functions.get(lid)
        if old and (old.env, old.timeout, old.memory) != (fn.env, fn.timeout, fn.memory):
            dep.notes.append(f"{lid}: its configuration changed; the running process keeps the old one "
                             f"(restart the local stack to apply it)")
    dep.notes.extend(parameter_notes(load_template(template_path), parameters))
    return dep


# --- CreateStack -------------------------------------------------------------------------------

def _upload_code(s3, translated: dict) -> None:
    """The package every function's Code points at (moto needs one; cargo lambda runs the binary)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bootstrap", "served by cargo lambda watch\n")
    s3.create_bucket(Bucket=CODE_BUCKET)
    for lid, res in translated["Resources"].items():
        code = (res.get("Properties") or {}).get("Code") or {}
        if res["Type"] == "AWS::Lambda::Function" and code.get("S3Bucket") == CODE_BUCKET:
            s3.put_object(Bucket=CODE_BUCKET, Key=code["S3Key"], Body=buf.getvalue())


def _wait(cfn, stack_name: str, timeout: float, done: str = "CREATE_COMPLETE",
          action: str = "CreateStack") -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == done:
            return stack
        if not status.endswith("_IN_PROGRESS"):
            failures = [f"{e['LogicalResourceId']} ({e.get('ResourceType')}): {e.get('ResourceStatusReason')}"
                        for e in cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
                        if e["ResourceStatus"].endswith("FAILED")]
            reason = "\n  ".join(failures) or stack.get("StackStatusReason") or "no reason given"
            raise TemplateError(f"{action} {stack_name} ended {status}:\n  {reason}")
        if time.monotonic() > deadline:
            raise TemplateError(f"{action} {stack_name} still {status} after {timeout:.0f}s")
        time.sleep(0.1)


def _stack_resources(cfn, stack_name: str) -> list[dict]:
    return cfn.describe_stack_resources(StackName=stack_name)["StackResources"]


def _check_skipped(dep: Deployment) -> None:
    """Every translated resource is created, or skipped for a reason written down in SKIPPED."""
    unexplained = []
    for lid, rtype in sorted(dep.types.items()):
        if lid in dep.physical:
            continue
        condition = dep.translated["Resources"][lid].get("Condition")
        if condition:
            dep.notes.append(f"not created {lid} ({rtype}): its Condition {condition} is false for these parameters")
        elif rtype in SKIPPED:
            dep.notes.append(f"skipped {lid} ({rtype}): {SKIPPED[rtype]}")
        else:
            unexplained.append(f"{lid} ({rtype})")
    if unexplained:
        raise TemplateError("moto's CloudFormation did not create " + ", ".join(unexplained) +
                            " (resource type not supported by moto); the local stack cannot run without it")


# --- reading the stack back ----------------------------------------------------------------------

def _read_back(clients, stack_name: str, translated: dict, check: bool = True) -> Deployment:
    """What the stack is made of, as moto's CloudFormation and Lambda report it (check: every
    resource of `translated` was created or skipped for a written-down reason)."""
    cfn = clients("cloudformation")
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    dep = Deployment(stack_name, translated)
    dep.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    dep.parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters") or []}
    dep.types = {lid: r["Type"] for lid, r in translated["Resources"].items()}
    for res in _stack_resources(cfn, stack_name):
        if res.get("LogicalResourceId"):
            dep.physical[res["LogicalResourceId"]] = res.get("PhysicalResourceId") or ""
    if check:
        _check_skipped(dep)
    for lid in dep.of_type("AWS::Lambda::Function"):
        dep.functions[lid] = _function(dep, lid, clients("lambda"))
    return dep


def _function(dep: Deployment, lid: str, lam) -> Function:
    cfg = lam.get_function_configuration(FunctionName=dep.physical[lid])
    res = dep.translated["Resources"][lid]
    code = (res.get("Properties") or {}).get("Code") or {}
    if code.get("S3Bucket") != CODE_BUCKET:
        raise TemplateError(f"{lid}: a plain AWS::Lambda::Function is not run locally (no Cargo binary)")
    route = code["S3Key"].removesuffix(".zip")
    binary = route.split(ROUTE_SEP, 1)[0]
    logging_cfg = _resolve((res.get("Properties") or {}).get("LoggingConfig") or {}, dep, lid)
    return Function(
        logical_id=lid, name=cfg["FunctionName"], binary=binary, route=route, arn=cfg["FunctionArn"],
        # moto keeps a Number parameter's Ref as a number; Lambda environment values are strings
        env={k: str(v) for k, v in ((cfg.get("Environment") or {}).get("Variables") or {}).items()},
        timeout=int(cfg.get("Timeout") or 3), memory=int(cfg.get("MemorySize") or 128),
        log_format=logging_cfg.get("LogFormat", "Text"), log_level=logging_cfg.get("ApplicationLogLevel", "INFO"))


def _resolve(value: Any, dep: Deployment, lid: str) -> Any:
    """A dropped property's value: literals and `Ref`s to stack parameters (as DescribeStacks resolved them)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in dep.parameters:
            return dep.parameters[value["Ref"]]
        if any(k == "Ref" or k.startswith("Fn::") for k in value):
            raise TemplateError(f"{lid}: cannot apply {value} locally (only parameter Refs are resolved)")
        return {k: _resolve(v, dep, lid) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, dep, lid) for v in value]
    return value


# --- fix-ups: what moto's CloudFormation drops -----------------------------------------------------

def _table_ttl(dep: Deployment, lid: str, clients) -> None:
    props = dep.translated["Resources"][lid].get("Properties") or {}
    ttl = _resolve(props.get("TimeToLiveSpecification"), dep, lid)
    if ttl and str(ttl.get("Enabled")).lower() == "true":
        clients("dynamodb").update_time_to_live(
            TableName=dep.physical[lid],
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
        dep.notes.append(f"applied {lid}.TimeToLiveSpecification after CreateStack (moto's CloudFormation drops it)")


FIXUPS = {"AWS::DynamoDB::Table": _table_ttl}


def _upload_scripts(dep: Deployment, s3, scripts_dir: Path) -> None:
    """Every `*.sql` of scripts_dir under `<prefix><version>/`, the version the deployed definition's
    SQL Tasks send (read from the definition, never recomputed here: one source of truth), or under
    `<prefix>` for a definition without one. Nothing is deleted (make deploy: no --delete)."""
    targets = {(f.env["SCRIPTS_BUCKET"], f.env.get("SCRIPTS_PREFIX", ""))
               for f in dep.functions.values() if f.env.get("SCRIPTS_BUCKET")}
    if not targets:
        dep.notes.append("no function has SCRIPTS_BUCKET: SQL scripts not uploaded")
    scripts = sorted(scripts_dir.glob("*.sql"))
    if targets and not scripts:
        raise TemplateError(f"no SQL scripts in {scripts_dir}")
    version = dep.scripts_version
    for bucket, prefix in sorted(targets):
        for path in scripts:
            s3.put_object(Bucket=bucket, Key=script_key(prefix, version, path.name), Body=path.read_bytes())


def function_binaries(template: dict) -> list[str]:
    """The Cargo binary of every function `sam build` builds (`Metadata.BuildProperties.Binary`), in
    template order: what `make sam-build` builds at once before sam build packages each."""
    return [b for res in (template.get("Resources") or {}).values()
            if res.get("Type") == "AWS::Serverless::Function"
            and (b := ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary"))]


if __name__ == "__main__":
    import sys

    usage = "usage: deploy.py scripts-version ASL_FILE | deploy.py binaries TEMPLATE"
    if len(sys.argv) != 3 or sys.argv[1] not in ("scripts-version", "binaries"):
        sys.exit(usage)
    try:
        if sys.argv[1] == "binaries":
            print(" ".join(function_binaries(load_template(Path(sys.argv[2])))))
        else:
            print(scripts_version(Path(sys.argv[2]).read_text(encoding="utf-8")) or "")
    except (OSError, ValueError, TemplateError) as err:
        sys.exit(f"deploy.py {sys.argv[1]}: {err}")
