"""The moto adapter's guard, without a stack: the package imports, every patch applies to the pinned moto
and is in place afterwards, and a moto other than the one the patches are written against, or a changed
internal, is refused loudly with the patches to re-check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parent.parent / "local"
sys.path.append(str(LOCAL))

import moto_adapter  # noqa: E402
from moto_adapter import guard  # noqa: E402


def test_index_lists_every_patch_and_its_module():
    assert sorted(moto_adapter.PATCHES) == list(range(1, 34))
    for number, (module, line) in moto_adapter.PATCHES.items():
        source = (LOCAL / "moto_adapter" / f"{module}.py").read_text()
        # the patch's own docstring, in the module the index names: "Patch N; targets moto 5.2.5 ..."
        assert re.search(rf"Patch(es)? (\d+ and )*{number}(;| and )", source), (number, module, line)
        assert "targets moto 5.2.5" in source or number == 22


def test_all_patches_apply_to_the_pinned_moto(tmp_path):
    import moto

    assert moto.__version__ == guard.WRITTEN_FOR == guard.pinned_moto()
    moto_adapter.apply_all("http://127.0.0.1:9", faults_file=str(tmp_path / "faults.json"),
                           callbacks_log=str(tmp_path / "callbacks.jsonl"), requests_log=str(tmp_path / "requests.json"))
    assert moto_adapter.applied() == [*range(1, 34), "callbacks probe", "requests probe"]

    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.models import StateMachine

    assert LambdaSimpleBackend.invoke.__module__ == "moto_adapter.lambda_"
    assert StateMachine.create_from_cloudformation_json.__func__.__module__ == "moto_adapter.cloudformation"


def test_another_moto_version_is_refused_naming_the_patches():
    with pytest.raises(guard.VersionMismatch) as err:
        guard.check_moto_version(installed="5.2.6")
    message = str(err.value)
    assert "moto 5.2.6" in message and f"moto {guard.WRITTEN_FOR}" in message
    assert "Re-check patches 1, 2, 3," in message and "21, 23," in message and message.count("28") == 1


def test_a_bumped_pin_is_refused_until_the_patches_are_rechecked():
    with pytest.raises(guard.VersionMismatch, match="pinned in local/requirements.txt: moto 5.3.0"):
        guard.check_moto_version(installed="5.3.0", pinned="5.3.0")


def test_the_pin_is_read_from_requirements(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\nmoto[server]==9.9.9  # pinned\nwaitress==3.0.2\n")
    assert guard.pinned_moto(req) == "9.9.9"


def test_a_gone_or_changed_internal_is_refused_naming_the_patch():
    class Internal:
        def call(self, a, b):  # noqa: ANN001
            return a, b

    assert guard.require(99, Internal, "call", ("self", "a", "b")) is not None
    with pytest.raises(guard.PatchTargetChanged, match=r"patch 99: .*Internal.gone is gone"):
        guard.require(99, Internal, "gone")
    with pytest.raises(guard.PatchTargetChanged, match=r"patch 99: .*Internal.call takes \('self', 'a', 'b'\)"):
        guard.require(99, Internal, "call", ("self", "a"))


def test_the_server_refuses_to_start_on_another_moto(tmp_path):
    """The command line the local stack runs: with moto's version changed it exits at once, naming the patches."""
    shim = tmp_path / "sitecustomize.py"
    shim.write_text("import moto\nmoto.__version__ = '5.2.6'\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, str(LOCAL / "moto_adapter"), "--port", "1", "--lambda-endpoint", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode != 0
    assert "installed: moto 5.2.6" in run.stderr and "Re-check patches" in run.stderr, run.stderr


def test_patch_31_refuses_a_redrive_by_aws_s_rules():
    """RedriveExecution's eligibility as AWS documents it (API_RedriveExecution.html, DescribeExecution's
    redriveStatusReason): STANDARD only; FAILED, ABORTED or TIMED_OUT (not RUNNING, not SUCCEEDED);
    within 14 days of the execution's end; a history below the 25,000-event quota."""
    from datetime import datetime, timedelta, timezone

    from moto_adapter.stepfunctions import not_redrivable_reason

    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    ended = now - timedelta(days=1)
    for status in ("FAILED", "ABORTED", "TIMED_OUT"):
        assert not_redrivable_reason(status, "STANDARD", ended, 100, now) is None, status
    assert not_redrivable_reason("RUNNING", "STANDARD", None, 10, now) == "Execution is RUNNING and cannot be redriven."
    assert not_redrivable_reason("SUCCEEDED", "STANDARD", ended, 10, now) == "Execution is SUCCEEDED and cannot be redriven."
    assert "EXPRESS" in not_redrivable_reason("FAILED", "EXPRESS", ended, 10, now)
    assert not_redrivable_reason("FAILED", "STANDARD", now - timedelta(days=14, seconds=-1), 10, now) is None
    assert not_redrivable_reason("FAILED", "STANDARD", now - timedelta(days=14, seconds=1), 10, now) == \
        "Execution redrivable period exceeded."
    assert not_redrivable_reason("FAILED", "STANDARD", ended, 24_999, now) is None
    assert not_redrivable_reason("FAILED", "STANDARD", ended, 25_000, now) == "Execution history event limit exceeded."


# Patch 33: one outcome per task attempt, both orders forced by a `fail_after_invoke` fault with an
# `"order"` (the adapter holds the invoke's failure answer until the task's callback was handled).
# The adapter runs as the local stack runs it; a stand-in for cargo lambda answers the invokes and
# hands the test each attempt's task token.

class _Invokes:
    """A stand-in for `cargo lambda watch`: answers every invoke with `{}` and queues its task token."""

    def __init__(self):
        import http.server
        import queue
        import threading

        self.tokens: queue.Queue[str] = queue.Queue()
        tokens = self.tokens

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                import json

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                tokens.put(json.loads(body)["taskToken"])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):  # noqa: ANN002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_token(self) -> str:
        return self.tokens.get(timeout=60)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """The patched moto server on a free port, its faults file, and the invokes stand-in."""
    import socket
    import time
    import urllib.request

    import boto3

    run = tmp_path_factory.mktemp("adapter")
    invokes = _Invokes()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    faults = run / "faults.json"
    log = open(run / "moto.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(LOCAL / "moto_adapter"), "--port", str(port),
                             "--lambda-endpoint", invokes.url, "--faults-file", str(faults),
                             "--callbacks-log", str(run / "callbacks.jsonl")],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((run / "moto.log").read_text()[-3000:]) from None
            time.sleep(0.3)

    def client(name):  # noqa: ANN001, ANN202
        return boto3.client(name, endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    role = client("iam").create_role(RoleName="adapter-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function = client("lambda").create_function(
        FunctionName="OrderTestSubmitter", Runtime="provided.al2023", Role=role, Handler="bootstrap",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]
    def task(name, then):  # noqa: ANN001, ANN202
        return {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": function, "Payload": {"taskToken.$": "$$.Task.Token", "step": name}},
                "HeartbeatSeconds": 60, **({"Next": then} if then else {"End": True}),
                "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 1, "MaxAttempts": 1}]}

    # "Then" keeps the execution running while the test asks about the first Task's closed token
    definition = {"StartAt": "Step", "States": {"Step": task("Step", "Then"), "Then": task("Then", None)}}
    import json

    sfn = client("stepfunctions")
    machine = sfn.create_state_machine(name="adapter-order-test", definition=json.dumps(definition),
                                       roleArn=role)["stateMachineArn"]
    yield {"sfn": sfn, "machine": machine, "faults": faults, "invokes": invokes, "log": run / "moto.log"}
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    invokes.server.shutdown()


def _ended(sfn, arn):  # noqa: ANN001, ANN202
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            return desc, sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        time.sleep(0.2)
    raise AssertionError(f"{arn} still running")


def _types(events, kind):  # noqa: ANN001, ANN202
    return [e for e in events if e["type"] == kind]


def _refused(call) -> str:  # noqa: ANN001
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"]


def test_patch_33_a_callback_before_the_invoke_s_failure_closes_the_attempt_and_the_failure_is_dropped(adapter):
    import json

    sfn, invokes = adapter["sfn"], adapter["invokes"]
    adapter["faults"].write_text(json.dumps([{"fail_after_invoke": True, "function_contains": "OrderTestSubmitter",
                                              "order": "callback_first", "times": 1}]))
    arn = sfn.start_execution(stateMachineArn=adapter["machine"], name="callback-first", input="{}")["executionArn"]
    token = invokes.next_token()
    # the function ran; its failure answer is held until this callback was handled
    sfn.send_task_success(taskToken=token, output=json.dumps({"rows": 2}))
    then = invokes.next_token()  # the Task succeeded with the callback: the next state runs
    # the attempt has its outcome: a second callback or a heartbeat is refused as for a closed task
    assert _refused(lambda: sfn.send_task_success(taskToken=token, output="{}")) == "TaskTimedOut"
    assert _refused(lambda: sfn.send_task_failure(taskToken=token, error="E", cause="c")) == "TaskTimedOut"
    assert _refused(lambda: sfn.send_task_heartbeat(taskToken=token)) == "TaskTimedOut"
    sfn.send_task_success(taskToken=then, output=json.dumps({"rows": 3}))

    desc, events = _ended(sfn, arn)

    assert desc["status"] == "SUCCEEDED", desc
    first = [e for e in events if e["type"] == "TaskSucceeded"][0]
    assert json.loads(first["taskSucceededEventDetails"]["output"]) == {"rows": 2}
    assert len(_types(events, "TaskScheduled")) == 2 and not _types(events, "TaskFailed"), "no retry"
    assert len(_types(events, "TaskSucceeded")) == 2
    assert invokes.tokens.empty()
    assert "its failure is answered after the task's callback was handled (callback_first)" in adapter["log"].read_text()


def test_patch_33_a_callback_after_the_invoke_s_failure_is_refused_and_the_retry_gets_a_new_token(adapter):
    import json

    sfn, invokes = adapter["sfn"], adapter["invokes"]
    adapter["faults"].write_text(json.dumps([{"fail_after_invoke": True, "function_contains": "OrderTestSubmitter",
                                              "order": "failure_first", "times": 1}]))
    arn = sfn.start_execution(stateMachineArn=adapter["machine"], name="failure-first", input="{}")["executionArn"]
    first = invokes.next_token()
    # the failure is recorded first: the callback with the failed attempt's token is refused
    assert _refused(lambda: sfn.send_task_success(taskToken=first, output=json.dumps({"rows": 2}))) == "TaskTimedOut"
    retry = invokes.next_token()
    assert retry != first
    assert _refused(lambda: sfn.send_task_heartbeat(taskToken=first)) == "TaskTimedOut"
    sfn.send_task_success(taskToken=retry, output=json.dumps({"rows": 2}))
    sfn.send_task_success(taskToken=invokes.next_token(), output=json.dumps({"rows": 3}))

    desc, events = _ended(sfn, arn)

    assert desc["status"] == "SUCCEEDED", desc
    (failed,) = _types(events, "TaskFailed")
    assert failed["taskFailedEventDetails"]["error"] == "Lambda.ServiceException"
    assert len(_types(events, "TaskScheduled")) == 3 and len(_types(events, "TaskSucceeded")) == 2
    assert "its failure is answered after the task's callback was handled (failure_first)" in adapter["log"].read_text()
