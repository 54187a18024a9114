"""moto server for the local stack, with twenty-eight small patches and one probe. Written against moto 5.2.5 (pinned
in local/requirements.txt); re-check every patch below when that pin changes.

Usage: python local/moto_adapter.py --port PORT --lambda-endpoint http://127.0.0.1:LAMBDA_PORT
                                    [--faults-file PATH]

1. Configuration (moto's own config API, applied in-process before the server starts):
   `{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}` so that
   StartExecution really interprets the ASL, and Lambda calls land in
   `moto.awslambda_simple.models.LambdaSimpleBackend`. The interpreter calls the other services
   back over HTTP at `localhost:$MOTO_PORT` (moto.settings.moto_server_port), so MOTO_PORT is set.

2. `LambdaSimpleBackend.invoke` (which only echoes its payload) is replaced by an HTTP POST of the
   payload to `<lambda endpoint>/2015-03-31/functions/<binary>/invocations`, i.e. to
   `cargo lambda watch` running the real Rust binaries. `<binary>` is the Cargo binary whose
   package the function's code points at (`s3://local-stack-code/<binary>.zip`, see deploy.py), so
   the names CloudFormation generates need no renaming; EventBridge deliveries route the same way. cargo-lambda answers a function error with
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

6. CloudFormation's `AWS::StepFunctions::StateMachine` (`StateMachine.create_from_cloudformation_json`)
   writes to `stepfunctions_backends` although, with `execute_state_machine` on, the API reads
   `stepfunctions_parser_backends` (the stack says CREATE_COMPLETE, `ListStateMachines` stays empty),
   and it ignores `DefinitionSubstitutions` (the literal `${SubmitterFunctionArn}` stays) and
   `StateMachineType`. The replacement applies the substitutions as CloudFormation does (every
   `${Key}` of the map; unknown `${...}` stay) and creates the machine where the API reads it.

7. Scheduled EventBridge rules never fire in moto, and its `put_rule` accepts only minute/hour/day
   rates. `scheduler_loop` fires every ENABLED rule with a `rate(...)` expression at its rate,
   delivering EventBridge's "Scheduled Event" to its Lambda targets (as 3.); the rate is read from
   the rule CloudFormation created from template.yaml, so a rule switched off (DisableRule) stops
   firing. Locally `rate(N seconds)` is also accepted so that the end-to-end tests can run the
   reconciler every few seconds through the template parameter (AWS: one minute at least). cron
   expressions are not fired locally (logged once). moto's own `send_to_targets` treats a
   scheduled rule (no pattern) as matching every event; scheduled rules now get no PutEvents.

8. `StopExecution` only flags the interpreter's worker, which stays blocked in a `waitForTaskToken`
   wait: the execution stayed RUNNING. The patched stop also interrupts the callback waits of that
   execution (`CallbackEndpoint.interrupt_all`), so it ends ABORTED at once; its tokens then answer
   InvalidToken, as the tokens of a stopped run do on AWS. The interrupted wait raises inside the
   Task, and `Environment.set_error`/`set_timed_out` would then overwrite the stopped state (the run
   ended FAILED): a stopped program now stays stopped.

9. moto publishes no "Step Functions Execution Status Change" events. When an execution ends, the
   event AWS sends (source `aws.states`, detail executionArn, stateMachineArn, name, status,
   startDate, stopDate, input, output, error, cause) is now put on the default bus.

10. Fault injection for tests (`--faults-file`, a JSON list re-read on each invoke, off when
    absent): `{"fail_after_invoke": true, "function_contains": "Submitter", "payload_contains":
    ["\"executionName\":\"x\"", "\"step\":\"LoadItem\""], "times": 1}` (payload_contains: a string
    or a list that must all occur, spaces ignored) lets the function run and then answers the
    synchronous invoke with `ServiceException` (Step Functions: `Lambda.ServiceException`), as when
    Lambda fails after the function did its work. An optional `"error"` names what Step Functions
    sees instead: a `Lambda.<Code>` name (`Lambda.ClientExecutionTimeoutException`,
    `Lambda.Unknown`, ...) answers as the Lambda API error `<Code>`, which the interpreter names
    `Lambda.<Code>`; any other name (`Sandbox.Timedout`: the function ran past its timeout;
    `Runtime.ExitError`: its process exited) answers as Lambda answers those, a function error
    (`X-Amz-Function-Error: Unhandled`, payload `{"errorType": <name>, "errorMessage": ...}`), whose
    errorType Step Functions reports as the error. Either way the function's work is done, which
    is the worst case for a retry: a timed-out function may well have finished its calls.

11. When a resource cannot be created, moto's `CreateStack` answers a bare HTTP 500 (the exception
    escapes `parse_and_create_resource`). The patched function turns it into a CloudFormation
    `ValidationError` naming the resource, its type and moto's reason, which the local stack prints
    as it stops.

12. The interpreter makes one `$$.Task.Token` per state entry and reuses it for every Retry attempt
    of a `waitForTaskToken` Task, so a callback sent for a failed attempt lands on the retry. Step
    Functions schedules each attempt as a new task with a new token (the old one then answers
    TaskTimedOut/InvalidToken), which is what the submitter's re-attach relies on; the patched
    `_evaluate_with_timeout` mints a new token for every retry attempt and retires the token of an
    attempt that failed.

13. With `HeartbeatSeconds`, the interpreter waits only for the heartbeat signal, which is set up
    after the Lambda invoke returns: a `SendTaskSuccess` sent during the invoke (the submitter
    closes the task itself when the status event came first) was never seen and the Task failed by
    heartbeat timeout. The wait now returns an outcome that already arrived.

14. EventBridge rule targets that are Step Functions state machines are not started by moto (only
    Lambda, SQS, logs and buses are). Matching events now start an execution of the target
    (asynchronously, as EventBridge does; the event, or the target's `Input`, is the execution
    input; the generated name is random, as with EventBridge).

15. moto's S3 puts a constant `sequencer` ("617f08299329d189") into every EventBridge "Object
    Created" event. S3 gives each write of a key a new, increasing sequencer (redeliveries of one
    event keep it); the trigger workflow names runs after it. `_send_event_bridge_message` now
    sets a per-write increasing sequencer.

16. The interpreter's `arn:aws:states:::states:startExecution` integration hands the state's
    PascalCase parameters (`StateMachineArn`, `Name`, `Input`) to boto3 unchanged (its base
    `_normalise_parameters` is empty), and botocore fails with KeyError 'Input' (States.Runtime);
    its response keeps boto3's keys and a datetime `startDate`, which then breaks DescribeExecution
    of the calling execution (HTTP 500). The patch renames the parameters to the API's member names
    and gives the state the output Step Functions gives: `{"ExecutionArn", "StartDate"}` (a string).

17. `SendTaskSuccess`/`SendTaskFailure`/`SendTaskHeartbeat` look for the token in every RUNNING
    execution's callback pool, and an execution that is just starting has a worker without an
    environment yet: the call then fails with HTTP 500 (AttributeError) for whatever token it
    carries, which under concurrent starts (the soak test) sent completions to the dead-letter
    queue (`SendTaskFailure` scans all executions and hits the same). The parser backend's
    `_get_executions`, whose every caller dereferences `exec_worker.env`, now skips executions
    whose worker has no environment (they cannot hold the token).

18. The interpreter parses the state machine's ASL again for every execution (ANTLR in pure Python,
    `ExecutionWorker._get_evaluation_entrypoint`): with a hundred executions starting at once this
    was 40% of moto's CPU (the soak, measured with py-spy). The parsed program is now kept per
    definition text. It is safe to share: the components keep no evaluation state (that lives in
    each execution's `Environment`, its heap keyed by the component's `heap_key`, which is fixed
    here before the program is shared, as two threads could otherwise draw different keys).

19. Every JSONPath the interpreter evaluates (`extract_json`, `ResultPath`) is parsed again by
    jsonpath-ng, whose parser rebuilds its PLY tables on each call (15% of moto's CPU in the soak).
    Parsed paths are now kept per path text (jsonpath-ng's parsed expressions are not changed by
    `find`/`update`).

20. Each service integration call of the interpreter (the Lambda invoke of every Task, the DynamoDB
    calls of the run lock) built a new boto3 client (`boto_client_for`, ~7 ms of CPU, 8% of moto's
    CPU in the soak) and so a new connection. Clients are now kept per service, region and
    endpoint when no state credentials are given (boto3 clients are thread-safe), with a
    connection pool large enough for every waiting Task.

21. moto's request dispatcher lists moto's package directory (`list_of_moto_modules`, hundreds of
    `isdir` calls) for every request, inside a lock every request takes; the list is now read
    once. werkzeug's access log line per request is off (warnings and errors stay).

22. Not moto: `cargo lambda watch` 1.9.2 deadlocks once 100 invocations of one function are queued
    (`RequestCache::upsert` awaits room in the function's bounded queue while it holds the table's
    write lock, and `pop` for `invocation/next` needs the read lock): every function stops
    receiving invocations and every caller times out. A hundred executions starting at once (the
    soak) reached it. `post_invocation` keeps at most MAX_OUTSTANDING_PER_FUNCTION invocations per
    function at cargo lambda; the rest wait in the adapter (within the invoke's own timeout).

23. Not moto's models: its server. werkzeug's development server closes the connection after every
    request and starts a thread per connection from one accept loop; under load (a hundred
    executions, ~300 interpreter threads on one GIL) every request waited 100-250 ms to be
    accepted although moto served it in ~3 ms, and a completer's five calls took a second. moto's
    WSGI application (`DomainDispatcherApplication`, as `moto_server` builds it) is served by
    waitress instead: keep-alive connections and a fixed pool of WSGI_THREADS worker threads.
    waitress 3.0.2 (pinned in local/requirements.txt) never answered a request without a body that
    carries `Expect: 100-continue` (boto3's empty PutObject) after its "100 Continue"; such a
    request now gets no "100 Continue", only its response.

24. moto's DynamoDB is not safe for concurrent requests on one item: `update_item` deep-copies the
    item while another request changes it (RuntimeError, HTTP 500, seen on the run lock item when
    a hundred executions acquire it at once), and a conditional write checks and writes in two
    steps, so two concurrent claims could both pass. DynamoDB applies each request to an item
    atomically. Every DynamoDB request (`DynamoHandler.call_action`, parsing to serialising) now
    holds a lock: GetItem/PutItem/UpdateItem/DeleteItem the lock of their item (256 stripes by
    table and key) and a shared gate, every other request (Query, Scan, batches, transactions,
    table operations) the gate alone, exclusively. One lock for all requests was tried first: under
    the GIL its holder was often descheduled while holding it, and every step waited.

25. Fault injection for the run lock (the faults file of patch 10): `{"dynamodb_error_after_apply":
    true, "execution_contains": "e2e-acq-", "state": "AcquireRunLock", "action": "updateItem",
    "times": 1}` (every key but the first optional; `state` is the state's name, `action` the
    integration's, e.g. `updateItem` of `arn:aws:states:::dynamodb:updateItem`) lets the
    interpreter's DynamoDB service integration (`StateTaskServiceDynamoDB._eval_service_task`) make
    its request, which moto APPLIES, and then fails the Task as DynamoDB's HTTP 500 would: wire code
    `InternalServerError`, status 500. A 500 does not say the write was not made, so a Retry on it
    repeats a write that may have taken effect. moto names an integration error
    `DynamoDB.<wire code>`; Step Functions names it after the AWS SDK for Java exception class, which
    for most DynamoDB codes is the code itself (ConditionalCheckFailedException,
    ProvisionedThroughputExceededException, ...; an unmodelled code is the base class,
    `DynamoDB.AmazonDynamoDBException`, as moto has it) but not for `InternalServerError` (class
    `InternalServerErrorException`) and `RequestLimitExceeded` (`RequestLimitExceededException`).
    Those two are now renamed as Step Functions names them, so the state machine sees
    `DynamoDB.InternalServerErrorException`; the cause keeps the wire code
    (`... Status Code: 500; Error Code: InternalServerError; ...`).

26. A Parallel state whose branch failed rethrows the branch's error through `CustomErrorName`,
    which refuses names that start with `States.`: a branch that failed with `States.Timeout` or
    `States.HeartbeatTimeout` (an uncaught step timeout) becomes `ValueError(Custom Error Names MUST
    NOT begin with the prefix 'States.')`, i.e. `States.Runtime`, which no Catch can match, so the
    execution fails at once and skips its lock release. On AWS a Parallel state fails when a branch
    fails "because of an unhandled error", with that error: its `Catch` matches the branch's error
    name, Step Functions' own `States.*` names included (the reserved prefix applies to names a
    state *reports*, not to errors propagated from a branch). The Parallel now rethrows the
    branch's name unchanged (`state_parallel/branches_decl.py`), so the state machine's `Pipeline`
    Catch sees `States.Timeout` and its `RunOutcome` turns it into `Step.TimedOut`.

27. CloudFormation's update of an `AWS::StepFunctions::StateMachine` (`UpdateStack`, as `sam deploy`
    of a changed definition; `StateMachine.update_from_cloudformation_json`) has patch 6's defects:
    it updates `stepfunctions_backends`, which the API does not read with `execute_state_machine`
    on, reads only `DefinitionString` (the SAM translator writes `Definition`) and ignores
    `DefinitionSubstitutions`, so the machine kept its old definition. The replacement updates the
    machine in place where the API reads it (`stepfunctions_parser_backends`, whose
    `update_state_machine` validates the ASL), with the substitutions applied as in patch 6; a
    renamed machine (CloudFormation would replace it) is refused. Running executions are not
    touched, as on AWS, where a Standard execution runs to its end on the definition it started
    with: moto's parser backend deep-copies the state machine at `StartExecution` (its
    `start_execution`, "the clone only acts as a snapshot of the state machine definition for this
    execution"), the worker reads the definition from that copy, and patch 18's cache is keyed by
    the definition text.

28. `StartExecution` without a `name` (the AWS CLI without `--name`, a test) builds the ARN from
    `None`: every unnamed execution of a state machine is `...:None`, so the second one is
    `ExecutionAlreadyExists` once the first has ended (or returns the first while it runs). Step
    Functions gives an unnamed execution a generated UUID name; the parser backend's
    `start_execution` now does the same before anything else reads the name.

Probe (`--callbacks-log PATH`, off when absent): every `SendTaskSuccess`/`SendTaskFailure`/
`SendTaskHeartbeat` Step Functions handled is appended to PATH as a JSON line `{"api", "token"
(first 12 hex of the token's SHA-256, never the token), "accepted", "error", "at"}`, so the soak
test counts what Step Functions accepted, not what the functions believe they sent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

import moto

EXPECTED_MOTO = "5.2.5"
LOCAL_MAX_EVENT_RETRIES = 2
LOG = logging.getLogger("moto_adapter")


class LambdaUnavailable(Exception):
    """The local Lambda endpoint could not run the function (no answer, or not a function error)."""


# cargo lambda 1.9.2 deadlocks when 100 invocations of one function wait in its queue: the
# scheduler holds the request table's write lock while it waits for room in that function's
# bounded queue (capacity 100), and every runtime's `invocation/next` needs the read lock to take
# one out, so no function gets another invocation (patch 22). At most this many invocations per
# function are outstanding at cargo lambda; the others wait here, as in Lambda's own queue.
MAX_OUTSTANDING_PER_FUNCTION = 64
# waitress worker threads (patch 23): more than every request that can block at once (the
# synchronous invokes of waiting Tasks, each holding a thread until its function answers, while
# the functions' own calls need threads too).
WSGI_THREADS = 384
_outstanding: dict[str, threading.BoundedSemaphore] = {}
_outstanding_lock = threading.Lock()


def post_invocation(endpoint: str, function_name: str, payload: bytes, timeout: float) -> tuple[bytes, bool]:
    """POST one invocation to cargo lambda; returns (body, is_function_error)."""
    with _outstanding_lock:
        slots = _outstanding.setdefault(function_name, threading.BoundedSemaphore(MAX_OUTSTANDING_PER_FUNCTION))
    waited = time.monotonic()
    acquired = slots.acquire(timeout=timeout)
    _record(f"invoke {function_name} (waiting for a slot)", 0.0, time.monotonic() - waited)
    if not acquired:
        raise LambdaUnavailable(f"{function_name}: {MAX_OUTSTANDING_PER_FUNCTION} invocations outstanding for {timeout:.0f} s")
    started = time.monotonic()
    try:
        return _post(endpoint, function_name, payload, timeout)
    finally:
        slots.release()
        _record(f"invoke {function_name} (at cargo lambda)", 0.0, time.monotonic() - started)


def _post(endpoint: str, function_name: str, payload: bytes, timeout: float) -> tuple[bytes, bool]:
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


CODE_BUCKET = "local-stack-code"  # deploy.py uploads each function's package as <binary>.zip here


def binary_of(fn) -> str:  # noqa: ANN001
    """The Cargo binary that runs a function: the key of its package in the local code bucket."""
    code = getattr(fn, "code", None) or {}
    if code.get("S3Bucket") == CODE_BUCKET and str(code.get("S3Key", "")).endswith(".zip"):
        return code["S3Key"][: -len(".zip")]
    return fn.function_name


def patch_lambda(endpoint: str, faults: "Faults") -> None:
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
        fn = self.get_function(function_name, qualifier)  # raises the usual not-found error
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        timeout = float(getattr(fn, "timeout", 0) or 3) + 5
        if (headers.get("X-Amz-Invocation-Type") or "") == "Event":
            threading.Thread(target=_invoke_async, args=(endpoint, binary_of(fn), payload, timeout), daemon=True).start()
            return b""
        try:
            result, function_error = post_invocation(endpoint, binary_of(fn), payload, timeout)
        except LambdaUnavailable as err:
            exc = LambdaClientError("ServiceException", str(err))
            exc.code = 500
            raise exc from err
        injected = None if function_error else faults.fail_after_invoke(fn.function_name, payload)
        if injected and injected.startswith("Lambda."):
            LOG.info("fault: %s ran, answering the Lambda error %s", fn.function_name, injected)
            exc = LambdaClientError(injected[len("Lambda."):], "injected fault: failed after the function ran")
            exc.code = 500
            raise exc
        if injected:  # Sandbox.Timedout, Runtime.ExitError, ...: Lambda's function error for them
            LOG.info("fault: %s ran, answering the function error %s", fn.function_name, injected)
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": injected, "errorMessage": f"RequestId: {uuid.uuid4()} Error: injected "
                                                                      f"fault {injected} after the function ran"}).encode()
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
        if self.scheduled_expression:
            return  # scheduled rules only fire on their schedule (patch 7)
        lambda_targets = [t for t in self.targets if is_lambda(t)]
        states_targets = [t for t in self.targets if parse_arn(t["Arn"]).service == "states"]
        if (lambda_targets or states_targets) and self.event_pattern.matches_event(original_event):
            for target in lambda_targets:
                event = json.loads(target["Input"]) if target.get("Input") else eventbridge_shape(original_event)
                threading.Thread(target=_deliver, args=(endpoint, self, target, event), daemon=True).start()
            for target in states_targets:  # patch 14
                event = json.loads(target["Input"]) if target.get("Input") else eventbridge_shape(original_event)
                threading.Thread(target=_start_execution, args=(self, target, event), daemon=True).start()
        others = [t for t in self.targets if not is_lambda(t) and parse_arn(t["Arn"]).service != "states"]
        if others:
            rest = self.__class__.__new__(self.__class__)
            rest.__dict__.update(self.__dict__, targets=others)
            original(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def _start_execution(rule, target: dict, event: dict) -> None:  # noqa: ANN001
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    arn = target["Arn"]
    region, account = arn.split(":")[3], arn.split(":")[4]
    try:
        stepfunctions_parser_backends[account][region].start_execution(
            state_machine_arn=arn, name=str(uuid.uuid4()), execution_input=json.dumps(event))
    except Exception:  # noqa: BLE001 - as EventBridge: a failed target is logged (and dead-lettered on AWS)
        LOG.exception("rule %s: could not start %s", rule.name, arn)


def patch_s3_sequencer() -> None:
    import itertools

    from moto.s3 import notifications

    original = notifications._send_event_bridge_message
    counter = itertools.count(int(time.time() * 1000) << 16)
    lock = threading.Lock()

    def send(account_id, bucket, event_name, key):  # noqa: ANN001
        from moto.events.models import Rule

        with lock:  # one S3 event at a time while its rules are wrapped (targets run in threads)
            sequencer = f"{next(counter):016X}"
            send_to_targets = Rule.send_to_targets

            def with_sequencer(rule, event, transform_input=True):  # noqa: ANN001
                obj = (event.get("detail") or {}).get("object") or {}
                if event.get("source") == "aws.s3" and "sequencer" in obj:
                    obj["sequencer"] = sequencer
                return send_to_targets(rule, event, transform_input)

            Rule.send_to_targets = with_sequencer
            try:
                original(account_id, bucket, event_name, key)
            finally:
                Rule.send_to_targets = send_to_targets

    notifications._send_event_bridge_message = send


def patch_starting_executions() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend._get_executions

    def get_executions(self, execution_status=None):  # noqa: ANN001
        # every caller (send_task_*, the map-run calls) dereferences exec_worker.env
        return [e for e in original(self, execution_status)
                if getattr(getattr(e, "exec_worker", None), "env", None) is not None]

    StepFunctionsParserBackend._get_executions = get_executions


def patch_sfn_integration_parameters() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    original = StateTaskServiceSfn._normalise_parameters

    def normalise(self, parameters, boto_service_name=None, service_action_name=None):  # noqa: ANN001
        original(self, parameters, boto_service_name, service_action_name)
        for key in [k for k in parameters if k[:1].isupper()]:
            parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    StateTaskServiceSfn._normalise_parameters = normalise

    eval_task = StateTaskServiceSfn._eval_service_task

    def eval_service_task(self, env, *args, **kwargs):  # noqa: ANN001
        eval_task(self, env, *args, **kwargs)
        response = env.stack.pop()
        env.stack.append({k[0].upper() + k[1:]: (v.isoformat() if isinstance(v, datetime) else v)
                          for k, v in response.items()} if isinstance(response, dict) else response)

    StateTaskServiceSfn._eval_service_task = eval_service_task


def _target_binary(arn: str) -> str:
    from moto.awslambda.utils import get_backend

    _, _, _, region, account, _, name = arn.split(":")[:7]
    try:
        return binary_of(get_backend(account, region).get_function(name))
    except Exception:  # noqa: BLE001 - an unknown function fails at delivery, as on AWS
        LOG.warning("target %s: no such function", arn)
        return name


def _deliver(endpoint: str, rule, target: dict, event: dict) -> None:  # noqa: ANN001
    name = _target_binary(target["Arn"])
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


RATE = re.compile(r"^rate\((\d+)\s*(second|seconds|minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    m = RATE.match(expression.strip())
    return int(m.group(1)) * UNIT_SECONDS[m.group(2).rstrip("s")] if m else None


def patch_schedules(endpoint: str) -> None:
    from moto.events.models import EventsBackend

    EventsBackend._RATE_REGEX = RATE
    threading.Thread(target=scheduler_loop, args=(endpoint,), daemon=True, name="schedules").start()


def scheduler_loop(endpoint: str, tick: float = 0.25) -> None:
    from moto.events.models import events_backends

    due: dict[str, float] = {}
    warned: set[str] = set()
    while True:
        time.sleep(tick)
        now = time.monotonic()
        for account, regions in list(events_backends.items()):
            for region, backend in list(regions.items()):
                for bus in list(backend.event_buses.values()):
                    for rule in list(bus.rules.values()):
                        if not rule.scheduled_expression or rule.state != "ENABLED":
                            due.pop(rule.arn, None)
                            continue
                        every = rate_seconds(rule.scheduled_expression)
                        if every is None:
                            if rule.arn not in warned:
                                LOG.info("rule %s: %s is not fired locally", rule.name, rule.scheduled_expression)
                                warned.add(rule.arn)
                            continue
                        if rule.arn not in due:
                            due[rule.arn] = now + every
                        elif now >= due[rule.arn]:
                            due[rule.arn] = now + every
                            fire(endpoint, rule, account, region)


def fire(endpoint: str, rule, account: str, region: str) -> None:  # noqa: ANN001
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": account, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "region": region, "resources": [rule.arn], "detail": {}}
    for target in rule.targets:
        if target["Arn"].split(":")[2] == "lambda":
            body = json.loads(target["Input"]) if target.get("Input") else event
            threading.Thread(target=_deliver, args=(endpoint, rule, target, body), daemon=True).start()


def patch_stop_execution() -> None:
    from moto.stepfunctions.parser.backend.execution import Execution

    original = Execution.stop

    def stop(self, stop_date, error, cause):  # noqa: ANN001
        original(self, stop_date, error, cause)
        worker = self.exec_worker
        if worker is None:
            return
        for endpoint in list(getattr(worker.env.callback_pool_manager, "_pool", {}).values()):
            endpoint.interrupt_all()  # the waiting Task sees the stopped program and ends

    Execution.stop = stop

    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    for name in ("set_error", "set_timed_out"):
        def keep_stopped(self, *args, _original=getattr(Environment, name), **kwargs):  # noqa: ANN001
            if isinstance(self._program_state, ProgramStopped):
                return None
            return _original(self, *args, **kwargs)

        setattr(Environment, name, keep_stopped)


def patch_execution_events() -> None:
    from moto.events.models import events_backends
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self):  # noqa: ANN001
        original(self)
        ex = self.execution
        try:
            status = ex.exec_status.value if hasattr(ex.exec_status, "value") else str(ex.exec_status)
            detail = {
                "executionArn": ex.exec_arn, "stateMachineArn": ex.state_machine_arn, "name": ex.name,
                "status": status, "startDate": _millis(ex.start_date), "stopDate": _millis(ex.stop_date),
                "input": ex.input_data if isinstance(ex.input_data, str) else json.dumps(ex.input_data),
                "output": ex.output if isinstance(ex.output, (str, type(None))) else json.dumps(ex.output),
                "error": getattr(ex, "error", None), "cause": getattr(ex, "cause", None),
            }
            events_backends[ex.account_id][ex.region_name].put_events([{
                "Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
                "Detail": json.dumps(detail), "Resources": [ex.exec_arn]}])
        except Exception:  # noqa: BLE001 - an event that cannot be built is lost, as on AWS (best effort)
            LOG.exception("execution status change event for %s not published", ex.exec_arn)

    BaseExecutionWorkerCommunication.terminated = terminated


def _millis(value) -> int | None:  # noqa: ANN001
    return int(value.timestamp() * 1000) if value is not None else None


class Faults:
    """The adapter's own fault injection (patches 10 and 25), read from a JSON file on every use."""

    def __init__(self, path: str | None):
        self.path, self.used = path, {}
        self.lock = threading.Lock()

    def _take(self, kind: str, matches) -> dict | None:  # noqa: ANN001
        """The first fault of `kind` that `matches` and has uses left, counted as used; else None."""
        if not self.path or not os.path.exists(self.path):
            return None
        try:
            with open(self.path) as fh:
                faults = json.load(fh)
        except (OSError, ValueError) as err:
            LOG.warning("faults file %s unreadable: %s", self.path, err)
            return None
        with self.lock:
            for i, f in enumerate(faults):
                if not f.get(kind) or not matches(f):
                    continue
                key = json.dumps(f, sort_keys=True) + str(i)
                if self.used.get(key, 0) >= int(f.get("times", 1)):
                    continue
                self.used[key] = self.used.get(key, 0) + 1
                return f
        return None

    def fail_after_invoke(self, function_name: str, payload: bytes) -> str | None:
        """Patch 10: the error name Step Functions is to see after the function ran, or None."""
        text = payload.decode(errors="replace").replace(" ", "")

        def matches(f: dict) -> bool:
            if f.get("function_contains", "") not in function_name:
                return False
            wanted = f.get("payload_contains", "")
            return all(w.replace(" ", "") in text for w in ([wanted] if isinstance(wanted, str) else wanted))

        f = self._take("fail_after_invoke", matches)
        return (f.get("error") or "Lambda.ServiceException") if f else None

    def dynamodb_error_after_apply(self, execution_name: str, state_name: str, action: str) -> bool:
        """Patch 25: whether this DynamoDB integration call, already applied, is to fail as HTTP 500."""
        return self._take("dynamodb_error_after_apply", lambda f: (
            f.get("execution_contains", "") in execution_name
            and f.get("state", state_name) == state_name
            and str(f.get("action", action)).lower() == action.lower())) is not None


# moto names a DynamoDB integration error `DynamoDB.<wire code>`, Step Functions after the AWS SDK for
# Java exception class, which differs from the code for these two (patch 25).
DYNAMODB_SFN_ERROR_NAMES = {"InternalServerError": "InternalServerErrorException",
                            "RequestLimitExceeded": "RequestLimitExceededException"}


def patch_dynamodb_integration(faults: Faults) -> None:
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
        StateTaskServiceDynamoDB,
    )

    error_cause = StateTaskServiceDynamoDB._error_cause_from_client_error

    def error_cause_from_client_error(client_error):  # noqa: ANN001
        error, cause = error_cause(client_error)
        code = error[len("DynamoDB."):]
        return f"DynamoDB.{DYNAMODB_SFN_ERROR_NAMES.get(code, code)}", cause

    StateTaskServiceDynamoDB._error_cause_from_client_error = staticmethod(error_cause_from_client_error)

    eval_task = StateTaskServiceDynamoDB._eval_service_task

    def eval_service_task(self, env, *args, **kwargs):  # noqa: ANN001
        eval_task(self, env, *args, **kwargs)  # the request was made: moto has applied it
        context = env.states.context_object.context_object_data
        action = self.resource.api_action
        if faults.dynamodb_error_after_apply(context["Execution"]["Name"], context["State"]["Name"], action):
            LOG.info("fault: %s of %s applied, answering HTTP 500", action, context["Execution"]["Name"])
            env.stack.pop()  # the response nobody receives
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "Internal server error"},
                               "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": uuid.uuid4().hex.upper()}},
                              action[:1].upper() + action[1:])

    StateTaskServiceDynamoDB._eval_service_task = eval_service_task


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


def substitute(definition: str, substitutions: dict) -> str:
    """CloudFormation's DefinitionSubstitutions: each `${Key}` of the map replaced by its value."""
    for key, value in (substitutions or {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    return definition


def patch_state_machine_cloudformation() -> None:
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends
    from moto.stepfunctions.utils import cfn_to_api_tags

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # noqa: ANN001
        props = cloudformation_json["Properties"]
        definition = props.get("DefinitionString")
        if definition is None and "Definition" in props:
            definition = json.dumps(props["Definition"])
        backend = stepfunctions_parser_backends[account_id][region_name]
        return backend.create_state_machine(
            props.get("StateMachineName", resource_name),
            substitute(definition or "", props.get("DefinitionSubstitutions")),
            props.get("RoleArn", ""),
            tags=cfn_to_api_tags(props.get("Tags", [])),
            sm_type=props.get("StateMachineType", "STANDARD"),
        )

    StateMachine.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def patch_state_machine_update() -> None:
    """Patch 27: UpdateStack updates the state machine the API reads, with its substitutions."""
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,  # noqa: ANN001
                                        account_id, region_name):
        props = cloudformation_json.get("Properties", {})
        name = props.get("StateMachineName", original_resource.name)
        if name != original_resource.name:
            raise NotImplementedError(f"state machine {original_resource.name} renamed to {name}: "
                                      f"a replacement is not supported by the local stack")
        definition = props.get("DefinitionString")
        if definition is None and "Definition" in props:
            definition = json.dumps(props["Definition"])
        backend = stepfunctions_parser_backends[account_id][region_name]
        return backend.update_state_machine(
            original_resource.arn,
            definition=substitute(definition, props.get("DefinitionSubstitutions")) if definition else None,
            role_arn=props.get("RoleArn") or None,
        )

    StateMachine.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)


def patch_create_resource_errors() -> None:
    from moto.cloudformation import parsing
    from moto.cloudformation.exceptions import ValidationError

    original = parsing.parse_and_create_resource

    def parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):  # noqa: ANN001
        try:
            return original(logical_id, resource_json, resources_map, account_id, region_name)
        except (KeyError, ValidationError):
            raise  # KeyError: moto's own lookups of not-yet-created resources; ValidationError: named already
        except Exception as err:  # noqa: BLE001 - any failure of moto's model code, named for the user
            raise ValidationError(message=f"{logical_id} ({resource_json.get('Type')}) could not be created: "
                                          f"{type(err).__name__}: {err}") from err

    parsing.parse_and_create_resource = parse_and_create_resource


def patch_retry_task_tokens() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    original = StateTaskServiceCallback._evaluate_with_timeout

    def evaluate_with_timeout(self, env):  # noqa: ANN001
        context = env.states.context_object
        callback = (self._is_integration_pattern()
                    and ResourceCondition.WaitForTaskToken in self._supported_integration_patterns)
        if callback and context.context_object_data.get("State", {}).get("RetryCount", 0) > 0:
            env.callback_pool_manager.add(context.update_task_token())
        try:
            return original(self, env)
        except Exception:
            if callback:  # the failed attempt's token is dead: a late callback answers InvalidToken
                token = (context.context_object_data.get("Task") or {}).get("Token")
                getattr(env.callback_pool_manager, "_pool", {}).pop(token, None)
            raise

    StateTaskServiceCallback._evaluate_with_timeout = evaluate_with_timeout

    wait_heartbeat = StateTaskServiceCallback._wait_for_task_token_heartbeat

    def wait_for_task_token_heartbeat(self, env, callback_endpoint, heartbeat_endpoint):  # noqa: ANN001
        outcome = callback_endpoint.get_outcome()  # patch 13: completed while the invoke ran
        return outcome if outcome is not None else wait_heartbeat(self, env, callback_endpoint, heartbeat_endpoint)

    StateTaskServiceCallback._wait_for_task_token_heartbeat = wait_for_task_token_heartbeat


def probe_callbacks(path: str | None) -> None:
    if not path:
        return
    import hashlib

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    lock = threading.Lock()

    def record(api: str, token: str, error: str | None) -> None:
        line = json.dumps({"api": api, "token": hashlib.sha256(str(token).encode()).hexdigest()[:12],
                           "accepted": error is None, "error": error, "at": time.time()})
        with lock, open(path, "a") as fh:
            fh.write(line + "\n")

    for api, name in (("SendTaskSuccess", "send_task_success"), ("SendTaskFailure", "send_task_failure"),
                      ("SendTaskHeartbeat", "send_task_heartbeat")):
        def probed(self, task_token, *args, _original=getattr(StepFunctionsParserBackend, name), _api=api, **kwargs):  # noqa: ANN001
            try:
                result = _original(self, task_token, *args, **kwargs)
            except Exception as err:
                record(_api, task_token, type(err).__name__)
                raise
            record(_api, task_token, None)
            return result

        setattr(StepFunctionsParserBackend, name, probed)


def patch_program_cache() -> None:
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    programs: dict[str, object] = {}
    lock = threading.Lock()

    def fix_heap_keys(node, seen: set) -> None:  # noqa: ANN001
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, EvalComponent):
            _ = node.heap_key
        children = node.values() if isinstance(node, dict) else node if isinstance(node, (list, tuple)) else (
            vars(node).values() if hasattr(node, "__dict__") and type(node).__module__.startswith("moto.") else ())
        for child in children:
            fix_heap_keys(child, seen)

    def entrypoint(self):  # noqa: ANN001
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            program = programs.get(definition)
            if program is None:
                program = AmazonStateLanguageParser.parse(definition)[0]
                fix_heap_keys(program, set())
                programs[definition] = program
        return program

    ExecutionWorker._get_evaluation_entrypoint = entrypoint


def patch_jsonpath_cache() -> None:
    import functools

    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    json_path.parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse)
    result_path.parse = functools.lru_cache(maxsize=4096)(jsonpath_ng.parse)


def patch_integration_clients() -> None:
    import boto3
    from botocore.config import Config
    from moto.stepfunctions.parser.asl.utils import boto_client

    clients: dict[tuple, object] = {}
    lock = threading.Lock()

    class CachedBoto3:
        """What `boto_client_for` sees as `boto3`: `client(...)` reuses one client per service,
        region and endpoint (credentials are the fixed fake ones)."""

        def __getattr__(self, name):  # noqa: ANN001
            return getattr(boto3, name)

        @staticmethod
        def client(**kwargs):  # noqa: ANN003
            key = tuple(sorted((k, v) for k, v in kwargs.items() if k != "config"))
            with lock:
                client = clients.get(key)
                if client is None:
                    config = kwargs.get("config") or Config()
                    client = boto3.client(**{**kwargs, "config": config.merge(Config(max_pool_connections=512))})
                    clients[key] = client
            return client

    boto_client.boto3 = CachedBoto3()


class _Gate:
    """A readers-writer lock, writers first: many holders of `shared()` at once, or one of `exclusive()`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = self._writers_waiting = 0
        self._writer = False

    @contextlib.contextmanager
    def shared(self):  # noqa: ANN201
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self):  # noqa: ANN201
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def patch_dynamodb_atomic() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    gate, stripes = _Gate(), [threading.Lock() for _ in range(256)]

    def item_key(handler, action: str, params) -> str | None:  # noqa: ANN001
        table = params.get("TableName")
        if action != "PutItem":
            return json.dumps([table, params.get("Key")], sort_keys=True) if params.get("Key") else None
        try:
            schema = handler.dynamodb_backend.get_table(table)
        except Exception:  # noqa: BLE001 - an unknown table: moto answers ResourceNotFound under the gate
            return None
        item = params.get("Item") or {}
        return json.dumps([table, item.get(schema.hash_key_attr), item.get(schema.range_key_attr or "")], sort_keys=True)

    def call_action(self):  # noqa: ANN001
        action = self._get_action()
        params = getattr(self, "params", None) or {}
        key = item_key(self, action, params) if action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem") else None
        if key is None:
            with gate.exclusive():
                return original(self)
        with gate.shared(), stripes[hash(key) % len(stripes)]:
            return original(self)

    DynamoHandler.call_action = call_action


def patch_request_dispatch() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _request_kind(environ: dict) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target
    path = environ.get("PATH_INFO", "")
    if "/functions/" in path and path.endswith("/invocations"):
        return "Lambda.Invoke"
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = auth.split("Credential=")[1].split("/")[3] if "Credential=" in auth else "?"
    return f"{service} {environ.get('REQUEST_METHOD')}"


_stats: dict[str, list[float]] | None = None  # the requests probe's figures, when it is on
_stats_lock = threading.Lock()


def _record(kind: str, cpu: float, wall: float) -> None:
    if _stats is None:
        return
    with _stats_lock:
        entry = _stats.setdefault(kind, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += cpu
        entry[2] += wall


def probe_requests(path: str | None, every: float = 2.0) -> None:
    """`--requests-log PATH`: where moto's one process spends its CPU and the functions their time.
    Per request kind (the X-Amz-Target, or service and method): count, CPU seconds of the thread
    that served it, wall seconds; per function: the time invocations waited for a slot (patch 22)
    and spent at cargo lambda; and the process's CPU in all (the rest is the interpreter's and the
    adapter's threads). Rewritten as one JSON document every `every` seconds."""
    global _stats
    if not path:
        return
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    _stats = {}
    original = DomainDispatcherApplication.__call__

    def call(self, environ, start_response):  # noqa: ANN001
        kind, cpu, wall = _request_kind(environ), time.thread_time(), time.monotonic()
        try:
            return original(self, environ, start_response)
        finally:
            _record(kind, time.thread_time() - cpu, time.monotonic() - wall)

    DomainDispatcherApplication.__call__ = call
    started = time.monotonic()

    def dump() -> None:
        while True:
            time.sleep(every)
            with _stats_lock:
                requests = {k: {"count": v[0], "cpu_s": round(v[1], 3), "wall_s": round(v[2], 3)}
                            for k, v in sorted(_stats.items(), key=lambda kv: (-kv[1][1], -kv[1][2]))}
            doc = {"seconds": round(time.monotonic() - started, 1), "process_cpu_s": round(time.process_time(), 3),
                   "threads": threading.active_count(), "requests": requests}
            tmp = path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(doc, fh, indent=1)
            os.replace(tmp, path)

    threading.Thread(target=dump, daemon=True, name="requests-probe").start()



def patch_parallel_error_names() -> None:
    """Patch 26: a Parallel state fails with its failed branch's own error name, `States.*` included."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    class BranchErrorName(CustomErrorName):
        """The branch's error, whatever its prefix (CustomErrorName refuses `States.`)."""

        def __init__(self, error_name: str | None):
            ErrorName.__init__(self, error_name=error_name)

    branches_decl.CustomErrorName = BranchErrorName



def patch_unnamed_executions() -> None:
    """Patch 28: an execution started without a name gets a UUID, as on AWS."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    StepFunctionsParserBackend.start_execution = start_execution

def configure() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lambda-endpoint", required=True, help="cargo lambda watch, e.g. http://127.0.0.1:9000")
    parser.add_argument("--faults-file", help="JSON list of adapter faults (patches 10 and 25), re-read on every use")
    parser.add_argument("--callbacks-log", help="append every task callback Step Functions handled (probe)")
    parser.add_argument("--requests-log", help="CPU and wall time per request kind, rewritten every 2 s (probe)")
    args = parser.parse_args()
    if moto.__version__ != EXPECTED_MOTO:
        raise SystemExit(f"moto_adapter.py is written for moto {EXPECTED_MOTO}, found {moto.__version__}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ["MOTO_PORT"] = str(args.port)
    endpoint = args.lambda_endpoint.rstrip("/")
    configure()
    faults = Faults(args.faults_file)
    patch_lambda(endpoint, faults)
    patch_events(endpoint)
    patch_schedules(endpoint)
    patch_stop_execution()
    patch_execution_events()
    patch_send_task_failure()
    patch_context_start_time()
    patch_state_machine_cloudformation()
    patch_state_machine_update()
    patch_create_resource_errors()
    patch_retry_task_tokens()
    patch_s3_sequencer()
    patch_sfn_integration_parameters()
    patch_starting_executions()
    patch_program_cache()
    patch_jsonpath_cache()
    patch_integration_clients()
    patch_request_dispatch()
    patch_dynamodb_atomic()
    patch_parallel_error_names()
    patch_unnamed_executions()
    patch_dynamodb_integration(faults)
    probe_callbacks(args.callbacks_log)
    probe_requests(args.requests_log)
    serve(args.port)


def serve(port: int) -> None:
    """moto's WSGI application (as `moto_server` builds it) behind waitress instead of werkzeug's
    development server (patch 23)."""
    import signal

    import waitress
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from waitress.parser import HTTPRequestParser

    parse_header = HTTPRequestParser.parse_header

    def no_continue_without_body(self, header_plus):  # noqa: ANN001
        # waitress 3.0.2 answers `Expect: 100-continue` on a request without a body (boto3 sends it
        # with an empty PutObject) with "100 Continue" and then never with the response.
        parse_header(self, header_plus)
        if not self.chunked and not self.content_length:
            self.expect_continue = False

    HTTPRequestParser.parse_header = no_continue_without_body
    app = DomainDispatcherApplication(create_backend_app)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" warnings under load
    waitress.serve(app, host="127.0.0.1", port=port, threads=WSGI_THREADS, connection_limit=4096,
                   channel_timeout=600, backlog=2048, ident="moto")


if __name__ == "__main__":
    main()
