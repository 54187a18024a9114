"""Each function's environment as a SAM template sets it, for a function process started without a
stack (bench/lambda_runtime.py; tests/test_function_env.py proves every binary starts with it).

The local stack reads the environment back from moto after CloudFormation resolved it
(local/deploy.py). A standalone start has no stack, so this module resolves the template itself, with
the rules CloudFormation applies: `Globals.Function.Environment.Variables` under each function's own
(SAM merges the two maps, the function's value wins); parameter `Ref`s to the given overrides, else the
parameter's `Default`; pseudo parameters; `Ref`/`Fn::GetAtt` of a resource to the physical id or ARN
CloudFormation would report for it (the resource's own name property when it sets one, else the
placeholder `<stack name>-<logical id>`, or `physical` when a deployed stack's ids are known);
`Fn::FindInMap`, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::If` over the template's `Conditions`, and
`AWS::NoValue`. Anything else is a TemplateError naming the function and the variable: a new variable
is never dropped or guessed silently.

    python local/template_env.py [template.yaml] [Name=Value ...]   # prints each binary's environment
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy import TemplateError, load_template  # noqa: E402

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# The property that names a resource, when the template sets it (else CloudFormation generates a name).
NAME_PROPERTY = {
    "AWS::Serverless::Function": "FunctionName", "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::StateMachine": "Name", "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::DynamoDB::Table": "TableName", "AWS::Serverless::SimpleTable": "TableName",
    "AWS::S3::Bucket": "BucketName", "AWS::SQS::Queue": "QueueName", "AWS::SNS::Topic": "TopicName",
    "AWS::Events::Rule": "Name", "AWS::IAM::Role": "RoleName",
}
_NO_VALUE = object()  # AWS::NoValue: the variable is not set


def function_envs(template_path: Path, parameters: dict[str, str] | None = None, *,
                  stack_name: str = "standalone", region: str = REGION, account: str = ACCOUNT,
                  physical: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Cargo binary (`Metadata.BuildProperties.Binary`) -> the environment template_path gives the
    function that runs it. `parameters` override Defaults (a name the template does not declare, or a
    parameter left without a value, is a TemplateError, as CloudFormation refuses both); `physical`:
    logical id -> physical id of a deployed stack, used instead of the placeholders."""
    template = load_template(Path(template_path))
    declared = template.get("Parameters") or {}
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise TemplateError(f"{template_path}: parameters {unknown} are not declared in the template")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        value = (parameters or {}).get(name, (spec or {}).get("Default"))
        if value is None:
            raise TemplateError(f"{template_path}: parameter {name} has no Default and no value was given")
        values[name] = _text(value)
    resolver = _Resolver(template, values, stack_name, region, account, physical or {})
    globals_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
    out: dict[str, dict[str, str]] = {}
    for lid, res in (template.get("Resources") or {}).items():
        if res.get("Type") not in FUNCTION_TYPES:
            continue
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        if not binary:
            raise TemplateError(f"{lid}: Metadata.BuildProperties.Binary names no Cargo binary")
        if binary in out:
            raise TemplateError(f"{lid}: binary {binary} is named by another function too")
        own = ((res.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        merged = {**globals_env, **own} if res["Type"] == "AWS::Serverless::Function" else dict(own)
        env = {}
        for var, value in merged.items():
            try:
                resolved = resolver(value)
            except TemplateError as err:
                raise TemplateError(f"{lid}: environment variable {var}: {err}") from err
            if resolved is not _NO_VALUE:
                env[var] = _text(resolved)
        out[binary] = env
    return out


def _text(value: Any) -> str:
    """A Lambda environment value: CloudFormation writes numbers and booleans as their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError(f"not a scalar value: {json.dumps(value)[:120]}")


class _Resolver:
    def __init__(self, template: dict, parameters: dict[str, str], stack_name: str, region: str,
                 account: str, physical: dict[str, str]) -> None:
        self.tpl, self.params, self.physical = template, parameters, physical
        self.region, self.account = region, account
        self.pseudo = {"AWS::StackName": stack_name, "AWS::Region": region, "AWS::AccountId": account,
                       "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
                       "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/standalone"}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(v) for k, v in value.items()}
        (key, arg), = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            lid, attr = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(lid, attr)
        if key == "Fn::FindInMap":
            mapping, top, second = (self(v) for v in arg)
            try:
                return self.tpl["Mappings"][mapping][top][second]
            except (KeyError, TypeError):
                raise TemplateError(f"Fn::FindInMap {[mapping, top, second]}: no such entry in Mappings") from None
        if key == "Fn::Sub":
            return self.sub(arg)
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(_text(p) for p in self(parts) if p is not _NO_VALUE)
        if key == "Fn::Select":
            index, items = self(arg[0]), self(arg[1])
            return items[int(index)]
        if key == "Fn::If":
            condition, yes, no = arg
            return self(yes) if self.condition(condition) else self(no)
        if key.startswith("Fn::") or key == "Condition":
            raise TemplateError(f"{key} is not resolved for a standalone start")
        return {key: self(arg)}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.physical_id(name)

    def resource(self, lid: str) -> dict:
        res = (self.tpl.get("Resources") or {}).get(lid)
        if res is None:
            raise TemplateError(f"{lid} is no parameter, pseudo parameter or resource of the template")
        return res

    def name(self, lid: str) -> str:
        res = self.resource(lid)
        explicit = (res.get("Properties") or {}).get(NAME_PROPERTY.get(res["Type"], ""))
        return _text(self(explicit)) if explicit is not None else f"{self.pseudo['AWS::StackName']}-{lid}"

    def physical_id(self, lid: str) -> str:
        """What `Ref` of the resource returns."""
        rtype = self.resource(lid)["Type"]
        if lid in self.physical:
            return self.physical[lid]
        name, r, a = self.name(lid), self.region, self.account
        if rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return f"arn:aws:states:{r}:{a}:stateMachine:{name}"
        if rtype == "AWS::SQS::Queue":
            return f"https://sqs.{r}.amazonaws.com/{a}/{name}"
        if rtype == "AWS::SNS::Topic":
            return f"arn:aws:sns:{r}:{a}:{name}"
        return name

    def get_att(self, lid: str, attr: str) -> str:
        rtype, phys, r, a = self.resource(lid)["Type"], self.physical_id(lid), self.region, self.account
        state_machine = rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
        if attr == "Arn":
            arns = {
                "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{r}:{a}:table/{phys}",
                "AWS::Serverless::SimpleTable": f"arn:aws:dynamodb:{r}:{a}:table/{phys}",
                "AWS::S3::Bucket": f"arn:aws:s3:::{phys}",
                "AWS::SQS::Queue": f"arn:aws:sqs:{r}:{a}:{phys.rsplit('/', 1)[-1]}",
                "AWS::Serverless::Function": f"arn:aws:lambda:{r}:{a}:function:{phys}",
                "AWS::Lambda::Function": f"arn:aws:lambda:{r}:{a}:function:{phys}",
                "AWS::IAM::Role": f"arn:aws:iam::{a}:role/{phys}",
                "AWS::Events::Rule": f"arn:aws:events:{r}:{a}:rule/{phys}",
            }
            if state_machine:
                return phys
            if rtype in arns:
                return arns[rtype]
        if rtype == "AWS::SQS::Queue" and attr == "QueueName":
            return phys.rsplit("/", 1)[-1]
        if rtype == "AWS::SQS::Queue" and attr == "QueueUrl":
            return phys
        if state_machine and attr == "Name":
            return phys.rsplit(":", 1)[-1]
        raise TemplateError(f"Fn::GetAtt {lid}.{attr} ({rtype}) is not resolved for a standalone start")

    def sub(self, arg: Any) -> str:
        text, names = (arg, {}) if isinstance(arg, str) else arg

        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in names:
                return _text(self(names[name]))
            if "." in name and not name.startswith("AWS::"):
                return _text(self.get_att(*name.split(".", 1)))
            return _text(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def condition(self, name: str) -> bool:
        spec = (self.tpl.get("Conditions") or {}).get(name)
        if spec is None:
            raise TemplateError(f"no condition {name} in Conditions")
        return self.truth(spec)

    def truth(self, spec: Any) -> bool:
        if isinstance(spec, dict) and len(spec) == 1:
            (key, arg), = spec.items()
            if key == "Fn::Equals":
                left, right = (self(v) for v in arg)
                return _text(left) == _text(right)
            if key == "Fn::Not":
                return not self.truth(arg[0])
            if key == "Fn::And":
                return all(self.truth(a) for a in arg)
            if key == "Fn::Or":
                return any(self.truth(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        raise TemplateError(f"condition {json.dumps(spec)[:120]} is not resolved for a standalone start")


if __name__ == "__main__":
    args = sys.argv[1:]
    path = Path(args.pop(0)) if args and "=" not in args[0] else Path(__file__).resolve().parent.parent / "template.yaml"
    try:
        print(json.dumps(function_envs(path, dict(a.split("=", 1) for a in args)), indent=2))
    except TemplateError as err:
        sys.exit(f"template_env.py: {err}")
