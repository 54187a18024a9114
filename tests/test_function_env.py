"""Every function binary a template names starts with exactly the environment that template gives it.

Each binary of `target/debug` (`make build`) is started under the Lambda Runtime API of
bench/lambda_runtime.py with the variables local/template_env.py resolves from the template (what
`make bench` starts them with), and must reach "ready": its first `GET /runtime/invocation/next`.
A variable a binary requires that the template does not set (RUN_CONCURRENCY was one) makes it exit
with a ConfigError instead, and fails here before it fails the benchmark. The baselines of
bench/compare.py (bench/template.yaml, bench/longpoll.yaml) are started the same way.

    .venv/bin/python -m pytest tests/test_function_env.py -q      # seconds; needs `make build`
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "local"))
sys.path.insert(0, str(ROOT / "bench"))

import lambda_runtime  # noqa: E402
from deploy import TemplateError, load_template  # noqa: E402
from stack import LOCAL_PARAMETERS  # noqa: E402
from template_env import function_envs  # noqa: E402

TEMPLATES = ("template.yaml", "bench/template.yaml", "bench/longpoll.yaml")
READY_TIMEOUT = 30  # seconds; a debug binary starts in well under one, a loaded machine is slower


def template_env(template: str) -> dict[str, dict[str, str]]:
    """A template's functions' environments, with the local stack's parameters it declares."""
    if template == "template.yaml":
        return lambda_runtime.template_envs()
    declared = set(load_template(ROOT / template).get("Parameters") or {})
    return function_envs(ROOT / template, {k: v for k, v in LOCAL_PARAMETERS.items() if k in declared},
                         stack_name=lambda_runtime.STANDALONE_STACK)


def start(binary: str, env: dict[str, str], log_path: Path) -> tuple[lambda_runtime.Function, object]:
    path = ROOT / "target" / "debug" / binary
    assert path.exists(), f"{path} is missing: run `make build` (cargo build --workspace --locked)"
    log = log_path.open("wb")
    return lambda_runtime.Function(path, env, log), log


CASES = [(template, binary) for template in TEMPLATES for binary in template_env(template)]


@pytest.mark.parametrize(("template", "binary"), CASES, ids=[f"{t}:{b}" for t, b in CASES])
def test_each_binary_starts_with_its_template_environment(template, binary, tmp_path):
    env = {**template_env(template)[binary], "AWS_ENDPOINT_URL": lambda_runtime.UNREACHABLE_ENDPOINT}
    if template == "template.yaml":
        assert env == lambda_runtime.standalone_env(binary)  # what make bench starts it with
    fn, log = start(binary, env, tmp_path / "log")
    try:
        try:
            fn.ready(timeout=READY_TIMEOUT)
        except RuntimeError as err:
            log.flush()
            pytest.fail(f"{template}: {binary} did not start with the template's environment ({err}):\n"
                        f"{(tmp_path / 'log').read_text(errors='replace')[-2000:]}")
        assert fn.proc.poll() is None
    finally:
        fn.stop()
        log.close()


def test_the_benchmarked_functions_are_the_templates():
    assert set(lambda_runtime.FUNCTIONS) <= set(lambda_runtime.template_envs())


# A variable each function requires: without it the binary must exit with a ConfigError naming it
# (so the test above fails when the template stops setting it).
REQUIRED = [("submitter", "RUN_CONCURRENCY"), ("submitter", "TOKEN_TABLE"), ("submitter", "SCRIPTS_BUCKET"),
            ("completer", "TOKEN_TABLE"), ("reconciler", "STATE_MACHINE_ARN"), ("reconciler", "TOKEN_TABLE")]


@pytest.mark.parametrize(("binary", "variable"), REQUIRED, ids=[f"{b}-{v}" for b, v in REQUIRED])
def test_a_binary_without_a_required_variable_exits_naming_it(binary, variable, tmp_path):
    env = lambda_runtime.standalone_env(binary)
    assert variable in env, f"template.yaml no longer sets {variable} for {binary}"
    del env[variable]
    fn, log = start(binary, env, tmp_path / "log")
    try:
        with pytest.raises(RuntimeError, match="not ready"):
            fn.ready(timeout=READY_TIMEOUT)
        assert fn.proc.wait(timeout=READY_TIMEOUT) != 0
        assert fn.api.first_next is None
    finally:
        fn.stop()
        log.close()
    output = (tmp_path / "log").read_text(errors="replace")
    assert "ConfigError" in output and variable in output, output


# --- the resolver itself (local/template_env.py) -----------------------------------------------------

def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body))
    return path


BASE = """\
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Size:
        Type: Number
        Default: 3
      Warehouse:
        Type: String
        Default: ""
    Conditions:
      HasWarehouse: !Not [!Equals [!Ref Warehouse, ""]]
    Mappings:
      Lock:
        Pipeline:
          Name: etl
    Globals:
      Function:
        Environment:
          Variables:
            SHARED: global
            STACK: !Ref AWS::StackName
    Resources:
      Table:
        Type: AWS::DynamoDB::Table
      Machine:
        Type: AWS::Serverless::StateMachine
        Properties:
          Name: !Sub "${AWS::StackName}-etl"
      Queue:
        Type: AWS::SQS::Queue
      Fn:
        Type: AWS::Serverless::Function
        Metadata:
          BuildProperties:
            Binary: fn
        Properties:
          Environment:
            Variables:
              SHARED: own
              SIZE: !Ref Size
              TABLE: !Ref Table
              TABLE_ARN: !GetAtt Table.Arn
              MACHINE: !Ref Machine
              QUEUE: !GetAtt Queue.QueueName
              LOCK: !FindInMap [Lock, Pipeline, Name]
              WAREHOUSE: !If [HasWarehouse, !Ref Warehouse, !Ref AWS::NoValue]
              URL: !Sub "https://${Queue.QueueName}.${AWS::Region}/${Size}"
"""


def test_the_resolver_applies_globals_parameters_resources_and_conditions(tmp_path):
    path = write(tmp_path, BASE)
    env = function_envs(path, stack_name="s")["fn"]
    assert env == {
        "SHARED": "own", "STACK": "s", "SIZE": "3", "TABLE": "s-Table",
        "TABLE_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/s-Table",
        "MACHINE": "arn:aws:states:us-east-1:123456789012:stateMachine:s-etl",
        "QUEUE": "s-Queue", "LOCK": "etl", "URL": "https://s-Queue.us-east-1/3",
    }
    with_warehouse = function_envs(path, {"Warehouse": "wg", "Size": "5"}, stack_name="s")["fn"]
    assert (with_warehouse["WAREHOUSE"], with_warehouse["SIZE"]) == ("wg", "5")
    deployed = function_envs(path, stack_name="s", physical={"Table": "s-Table-ABC123"})["fn"]
    assert deployed["TABLE"] == "s-Table-ABC123"


def test_the_resolver_refuses_what_it_cannot_resolve_naming_the_function_and_variable(tmp_path):
    path = write(tmp_path, BASE.replace("LOCK: !FindInMap [Lock, Pipeline, Name]", "LOCK: !GetAtt Table.StreamArn"))
    with pytest.raises(TemplateError, match=r"Fn: environment variable LOCK: Fn::GetAtt Table.StreamArn"):
        function_envs(path)
    path = write(tmp_path, BASE.replace("!Ref Size", "!Ref Missing"))
    with pytest.raises(TemplateError, match=r"Fn: environment variable SIZE: Missing is no parameter"):
        function_envs(path)
    with pytest.raises(TemplateError, match=r"parameters \['Sise'\] are not declared"):
        function_envs(write(tmp_path, BASE), {"Sise": "1"})
    path = write(tmp_path, BASE.replace("        Default: 3\n", ""))
    with pytest.raises(TemplateError, match="parameter Size has no Default"):
        function_envs(path)
