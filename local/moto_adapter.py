"""moto server for the local stack, with five small patches. Written against moto 5.2.5 (pinned
in local/requirements.txt); re-check every patch below when that pin changes.

Usage: python local/moto_adapter.py --port PORT --lambda-endpoint http://127.0.0.1:LAMBDA_PORT

1. Configuration (moto's own config API, applied in-process before the server starts):
   `{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}` so that
   StartExecution really interprets the ASL, and Lambda calls land in
   `moto.awslambda_simple.models.LambdaSimpleBackend`. The interpreter calls the other services
   back over HTTP at `localhost:$MOTO_PORT` (moto.settings.moto_server_port), so MOTO_PORT is set.

2. `LambdaSimpleBackend.invoke` (which only echoes its payload) is replaced by an HTTP POST of the
   payload to `<lambda endpoint>/2015-03-31/functions/<function name>/invocations`, i.e. to
   `cargo lambda watch` running the real Rust binaries. cargo-lambda answers a function error with
   HTTP 500 and the runtime's `{"errorType", "errorMessage"}` document; this becomes the Lambda
   API's `X-Amz-Function-Error: Unhandled` + that document, which is exactly what moto's Step
   Functions interpreter reads (`lambda_eval_utils`: FunctionError -> error name = `errorType`), so
   `Retry`/`Catch` on the submitter's error names work. An unreachable or unknown function becomes
   a `ServiceException` (Step Functions: `Lambda.ServiceException`). Invocation type `Event`
   returns 202 at once and runs the call in a thread.

3. `moto.events.models.Rule.send_to_targets` raises NotImplementedError for Lambda targets (PutEvents
   then answers HTTP 500). Matching events for Lambda targets are now delivered by a background
   thread, like EventBridge's asynchronous (`Event`) invoke; other targets keep moto's behaviour.
   The event is shaped as EventBridge delivers it (ISO `time`, no moto-internal keys; a target
   `Input` replaces it). Failure handling, roughly after the target's `RetryPolicy`: an attempt
   fails when the function is unreachable or returns a function error; it is retried
   min(MaximumRetryAttempts, 2) times with 1 s, 2 s backoff (real EventBridge retries for up to
   24 h, and function errors would be retried by Lambda's async invoke instead); then the event
   goes to the target's `DeadLetterConfig` SQS queue, if any, with ERROR_CODE/ERROR_MESSAGE/
   RULE_ARN/TARGET_ARN message attributes as EventBridge does.

4. `StepFunctionResponse.send_task_failure` passes only `error` to the backend and drops `cause`
   (the interpreter's backend accepts it), so a failed task would lose the SQL error text. The
   patched handler passes `cause` through.

5. The context object's `$$.Execution.StartTime` is a Python datetime inside the interpreter, so
   intrinsic functions such as `States.StringSplit($$.Execution.StartTime, 'T')` (the ASL's
   DefaultRunDate) fail with a TypeError. AWS hands it out as an ISO 8601 string
   (`2021-06-27T06:00:00.123Z`); `ExecutionWorker._get_evaluation_environment` now does the same.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import moto

EXPECTED_MOTO = "5.2.5"
LOCAL_MAX_EVENT_RETRIES = 2
LOG = logging.getLogger("moto_adapter")


class LambdaUnavailable(Exception):
    """The local Lambda endpoint could not run the function (no answer, or not a function error)."""


def post_invocation(endpoint: str, function_name: str, payload: bytes, timeout: float) -> tuple[bytes, bool]:
    """POST one invocation to cargo lambda; returns (body, is_function_error)."""
    url = f"{endpoint}/2015-03-31/functions/{function_name}/invocations"
    req = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read(), False
    except urllib.error.HTTPError as err:
        body = err.read()
        if err.code == 500:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and "errorType" in doc:
                return body, True
        raise LambdaUnavailable(f"{url} answered HTTP {err.code}: {body[:500]!r}") from err
    except (urllib.error.URLError, OSError) as err:
        raise LambdaUnavailable(f"{url} unreachable: {err}") from err


def patch_lambda(endpoint: str) -> None:
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
        fn = self.get_function(function_name, qualifier)  # raises the usual not-found error
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        timeout = float(getattr(fn, "timeout", 0) or 3) + 5
        if (headers.get("X-Amz-Invocation-Type") or "") == "Event":
            threading.Thread(target=_invoke_async, args=(endpoint, fn.function_name, payload, timeout), daemon=True).start()
            return b""
        try:
            result, function_error = post_invocation(endpoint, fn.function_name, payload, timeout)
        except LambdaUnavailable as err:
            exc = LambdaClientError("ServiceException", str(err))
            exc.code = 500
            raise exc from err
        if function_error:
            response_headers["x-amz-function-error"] = "Unhandled"
        return result

    LambdaSimpleBackend.invoke = invoke


def _invoke_async(endpoint: str, name: str, payload: bytes, timeout: float) -> None:
    try:
        body, function_error = post_invocation(endpoint, name, payload, timeout)
        if function_error:
            LOG.warning("async invoke of %s: function error %s", name, body[:500])
    except LambdaUnavailable as err:
        LOG.warning("async invoke of %s failed: %s", name, err)


def eventbridge_shape(event: dict) -> dict:
    shaped = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(shaped.get("time"), (int, float)):
        shaped["time"] = datetime.fromtimestamp(shaped["time"], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return shaped


def patch_events(endpoint: str) -> None:
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets

    def is_lambda(target: dict) -> bool:
        return parse_arn(target["Arn"]).service == "lambda"

    def send_to_targets(self, original_event, transform_input=True):  # noqa: ANN001
        lambda_targets = [t for t in self.targets if is_lambda(t)]
        if lambda_targets and self.event_pattern.matches_event(original_event):
            for target in lambda_targets:
                event = json.loads(target["Input"]) if target.get("Input") else eventbridge_shape(original_event)
                threading.Thread(target=_deliver, args=(endpoint, self, target, event), daemon=True).start()
        others = [t for t in self.targets if not is_lambda(t)]
        if others:
            rest = self.__class__.__new__(self.__class__)
            rest.__dict__.update(self.__dict__, targets=others)
            original(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def _deliver(endpoint: str, rule, target: dict, event: dict) -> None:  # noqa: ANN001
    name = target["Arn"].split(":")[6]
    policy = target.get("RetryPolicy") or {}
    retries = min(int(policy.get("MaximumRetryAttempts", 185)), LOCAL_MAX_EVENT_RETRIES)
    payload = json.dumps(event).encode()
    error_code, error_message = "", ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(float(attempt))
        try:
            body, function_error = post_invocation(endpoint, name, payload, timeout=60)
        except LambdaUnavailable as err:
            error_code, error_message = "SDK_CLIENT_ERROR", str(err)
            continue
        if not function_error:
            return
        error_code, error_message = "FUNCTION_ERROR", body.decode(errors="replace")
    LOG.warning("rule %s: event %s not delivered to %s: %s %s", rule.name, event.get("id"), target["Arn"], error_code, error_message)
    dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
    if dlq:
        from moto.sqs import sqs_backends

        account, region, queue = dlq.split(":")[4], dlq.split(":")[3], dlq.split(":")[5]
        attrs = {"ERROR_CODE": error_code, "ERROR_MESSAGE": error_message[:1000], "RULE_ARN": rule.arn, "TARGET_ARN": target["Arn"]}
        sqs_backends[account][region].send_message(
            queue_name=queue,
            message_body=json.dumps(event),
            message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attrs.items() if v},
        )


def patch_send_task_failure() -> None:
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self):  # noqa: ANN001
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def patch_context_start_time() -> None:
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_environment

    def environment(self):  # noqa: ANN001
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if isinstance(execution.get("StartTime"), datetime):
            start = execution["StartTime"].astimezone(timezone.utc)
            execution["StartTime"] = start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
        return env

    ExecutionWorker._get_evaluation_environment = environment


def configure() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lambda-endpoint", required=True, help="cargo lambda watch, e.g. http://127.0.0.1:9000")
    args = parser.parse_args()
    if moto.__version__ != EXPECTED_MOTO:
        raise SystemExit(f"moto_adapter.py is written for moto {EXPECTED_MOTO}, found {moto.__version__}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ["MOTO_PORT"] = str(args.port)
    endpoint = args.lambda_endpoint.rstrip("/")
    configure()
    patch_lambda(endpoint)
    patch_events(endpoint)
    patch_send_task_failure()
    patch_context_start_time()
    from moto.server import main as moto_main

    moto_main(["--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
