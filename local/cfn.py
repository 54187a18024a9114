"""Read template.yaml (SAM/CloudFormation, short-form tags included) and resolve it for the local stack.

The local stack has no CloudFormation: this module decides each resource's physical name the way the
local deployment will create it, then resolves parameters, pseudo parameters, Conditions, `Ref`,
`Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::If`/`Equals`/`Not`/`And`/`Or`
and `AWS::NoValue` so that deploy.py can create the resources from the template itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NO_VALUE = object()
NAME_KEYS = ("TableName", "BucketName", "QueueName", "Name", "StateMachineName", "RoleName", "LogGroupName")


class TemplateError(Exception):
    pass


# --- loading -----------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    pass


def _short_tag(tag: str):
    name = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in ("Ref", "Condition", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not",
             "And", "Or", "FindInMap", "Base64", "GetAZs", "ImportValue", "Cidr", "Length", "ToJsonString"):
    _Loader.add_constructor(f"!{_tag}", _short_tag(_tag))


def load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


# --- physical names and attributes -------------------------------------------------------------

@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict
    ref: str = ""
    attrs: dict = field(default_factory=dict)


@dataclass
class Context:
    stack_name: str
    region: str
    account: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account if account else ''}:{resource}")


def function_binary(properties: dict) -> str:
    """The Cargo binary of a rust-cargolambda function: the last component of CodeUri."""
    code_uri = properties.get("CodeUri")
    if not isinstance(code_uri, str) or not code_uri.strip("/"):
        raise TemplateError(f"function without a local CodeUri directory: {code_uri!r}")
    return code_uri.rstrip("/").rsplit("/", 1)[-1]


def _name(props: dict, key: str, default: str) -> str:
    value = props.get(key)
    return value if isinstance(value, str) else default


def describe(logical_id: str, rtype: str, props: dict, ctx: Context) -> Resource:
    """Physical id (`Ref`) and `GetAtt` attributes the local deployment gives this resource."""
    r = Resource(logical_id, rtype, props)
    default = f"{ctx.stack_name}-{logical_id}"
    if rtype == "AWS::DynamoDB::Table":
        r.ref = _name(props, "TableName", default)
        r.attrs = {"Arn": ctx.arn("dynamodb", f"table/{r.ref}")}
    elif rtype == "AWS::S3::Bucket":
        r.ref = _name(props, "BucketName", default.lower())
        r.attrs = {"Arn": ctx.arn("s3", r.ref, region=False, account=False),
                   "DomainName": f"{r.ref}.s3.amazonaws.com"}
    elif rtype == "AWS::SQS::Queue":
        name = _name(props, "QueueName", default)
        r.ref = f"http://sqs.{ctx.region}.localhost/{ctx.account}/{name}"  # replaced by the real URL on create
        r.attrs = {"Arn": ctx.arn("sqs", name), "QueueName": name, "QueueUrl": r.ref}
    elif rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        r.ref = function_binary(props)
        r.attrs = {"Arn": ctx.arn("lambda", f"function:{r.ref}")}
    elif rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
        name = _name(props, "Name", _name(props, "StateMachineName", default))
        r.ref = ctx.arn("states", f"stateMachine:{name}")
        r.attrs = {"Arn": r.ref, "Name": name}
    elif rtype == "AWS::Events::Rule":
        r.ref = _name(props, "Name", default)
        r.attrs = {"Arn": ctx.arn("events", f"rule/{r.ref}")}
    elif rtype == "AWS::IAM::Role":
        r.ref = _name(props, "RoleName", default)
        r.attrs = {"Arn": ctx.arn("iam", f"role/{r.ref}", region=False), "RoleId": r.ref}
    elif rtype == "AWS::Logs::LogGroup":
        r.ref = _name(props, "LogGroupName", f"/local/{default}")
        r.attrs = {"Arn": ctx.arn("logs", f"log-group:{r.ref}:*")}
    else:
        r.ref = default
        r.attrs = {"Arn": ctx.arn("local", default)}
    return r


# --- the resolved template ---------------------------------------------------------------------

class Template:
    """template.yaml with parameters and conditions applied; `resolve()` evaluates intrinsics."""

    def __init__(self, path: Path, ctx: Context, parameters: dict[str, str] | None = None):
        self.path = Path(path)
        self.root = self.path.parent
        self.ctx = ctx
        self.doc = load_yaml(self.path)
        if not isinstance(self.doc, dict) or "Resources" not in self.doc:
            raise TemplateError(f"{self.path}: no Resources section")
        self.parameters = self._parameters(parameters or {})
        self.conditions: dict[str, bool] = {}
        for name in (self.doc.get("Conditions") or {}):
            self.condition(name)
        self.resources: dict[str, Resource] = {}
        globals_fn = (self.doc.get("Globals") or {}).get("Function") or {}
        for logical_id, body in self.doc["Resources"].items():
            if "Condition" in body and not self.condition(body["Condition"]):
                continue
            props = dict(body.get("Properties") or {})
            if body["Type"] == "AWS::Serverless::Function":
                props = _merge_globals(globals_fn, props)
            self.resources[logical_id] = describe(logical_id, body["Type"], props, self.ctx)
        # Explicit names may use !Sub/!Ref (parameters, pseudo parameters): describe again, resolved.
        for res in self.resources.values():
            names = {k: self.resolve(v) for k, v in res.properties.items() if k in NAME_KEYS and not isinstance(v, str)}
            if names:
                self.resources[res.logical_id] = describe(res.logical_id, res.type, {**res.properties, **names}, self.ctx)
        self._add_sam_implicit_resources()

    def _parameters(self, given: dict[str, str]) -> dict[str, Any]:
        declared = self.doc.get("Parameters") or {}
        unknown = set(given) - set(declared)
        if unknown:
            raise TemplateError(f"unknown template parameters: {', '.join(sorted(unknown))}")
        values, missing = {}, []
        for name, spec in declared.items():
            if name in given:
                values[name] = given[name]
            elif "Default" in spec:
                values[name] = spec["Default"]
            else:
                missing.append(name)
            if spec.get("Type", "String").startswith("List<") or spec.get("Type") == "CommaDelimitedList":
                if isinstance(values.get(name), str):
                    values[name] = values[name].split(",")
        if missing:
            raise TemplateError(f"template parameters without a value or Default: {', '.join(missing)}")
        return values

    def _add_sam_implicit_resources(self) -> None:
        """SAM creates `<Function>Role` / `<StateMachine>Role` when no Role is given."""
        for r in list(self.resources.values()):
            if r.type in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine") and "Role" not in r.properties:
                role_id = f"{r.logical_id}Role"
                self.resources.setdefault(role_id, describe(role_id, "AWS::IAM::Role", {}, self.ctx))

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            conds = self.doc.get("Conditions") or {}
            if name not in conds:
                raise TemplateError(f"unknown condition {name!r}")
            self.conditions[name] = bool(self.resolve(conds[name]))
        return self.conditions[name]

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::StackName": self.ctx.stack_name,
            "AWS::Region": self.ctx.region,
            "AWS::AccountId": self.ctx.account,
            "AWS::Partition": self.ctx.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": self.ctx.arn("cloudformation", f"stack/{self.ctx.stack_name}/local"),
            "AWS::NoValue": NO_VALUE,
        }.get(name)

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name.startswith("AWS::"):
            value = self.pseudo(name)
            if value is None:
                raise TemplateError(f"unsupported pseudo parameter {name}")
            return value
        if name in self.resources:
            return self.resources[name].ref
        raise TemplateError(f"Ref to unknown parameter or resource {name!r}")

    def get_att(self, logical_id: str, attr: str) -> Any:
        res = self.resources.get(logical_id)
        if res is None:
            raise TemplateError(f"GetAtt on unknown resource {logical_id!r}")
        if attr not in res.attrs:
            raise TemplateError(f"GetAtt {logical_id}.{attr}: attribute not known locally ({res.type})")
        return res.attrs[attr]

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def repl(m: re.Match) -> str:
            key = m.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in variables:
                return str(variables[key])
            if "." in key and key.split(".", 1)[0] in self.resources:
                return str(self.get_att(*key.split(".", 1)))
            return str(self.ref(key))

        return re.sub(r"\$\{([^}]+)\}", repl, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._fn(key[4:], arg)
        out = {}
        for k, v in node.items():
            value = self.resolve(v)
            if value is not NO_VALUE:
                out[k] = value
        return out

    def _fn(self, fn: str, arg: Any) -> Any:
        if fn == "GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(parts[0], self.resolve(parts[1]))
        if fn == "Sub":
            if isinstance(arg, list):
                text, variables = arg[0], self.resolve(arg[1])
            else:
                text, variables = arg, {}
            return self.sub(text, variables)
        if fn == "Join":
            sep, items = arg
            return str(sep).join(str(x) for x in self.resolve(items))
        if fn == "Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if fn == "Split":
            sep, text = self.resolve(arg)
            return text.split(sep)
        if fn == "If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if fn == "Equals":
            a, b = self.resolve(arg)
            return str(a) == str(b)
        if fn == "Not":
            return not self.resolve(arg[0])
        if fn == "And":
            return all(self.resolve(x) for x in arg)
        if fn == "Or":
            return any(self.resolve(x) for x in arg)
        if fn == "ToJsonString":
            import json
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        raise TemplateError(f"Fn::{fn} is not supported by the local stack")

    # convenience ------------------------------------------------------------------------------
    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types]

    def props(self, res: Resource) -> dict:
        return self.resolve(res.properties)

    def outputs(self) -> dict[str, Any]:
        out = {}
        for name, spec in (self.doc.get("Outputs") or {}).items():
            if "Condition" in spec and not self.condition(spec["Condition"]):
                continue
            try:
                out[name] = self.resolve(spec["Value"])
            except TemplateError as err:
                out[name] = f"(not available locally: {err})"
        return out


def _merge_globals(globals_fn: dict, props: dict) -> dict:
    merged = {k: v for k, v in globals_fn.items() if k not in props}
    merged.update(props)
    g_env = ((globals_fn.get("Environment") or {}).get("Variables")) or {}
    p_env = ((props.get("Environment") or {}).get("Variables")) or {}
    if g_env or p_env:
        merged["Environment"] = {"Variables": {**g_env, **p_env}}
    return merged
