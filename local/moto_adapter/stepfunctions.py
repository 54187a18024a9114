"""Step Functions: moto's ASL interpreter (`moto.stepfunctions.parser`) made to behave as Step Functions
does (patches 4, 5, 8, 9, 12, 13, 16-20, 26, 28-34), a test-only time compression of Retry waits (patch
35) and the callbacks probe.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import datetime, timezone

from .guard import install, mark, require


LOG = logging.getLogger("moto_adapter")


def patch_send_task_failure() -> None:
    """Patch 4; targets moto 5.2.5. What AWS does, what moto does, the fix:

    `StepFunctionResponse.send_task_failure` passes only `error` to the backend and drops `cause`
    (the interpreter's backend accepts it), so a failed task would lose the SQL error text. The
    patched handler passes `cause` through.

    Evidence: AWS API reference, API_SendTaskFailure.html (`cause`, up to 32,768 characters, is
    part of the request); AWS-recorded history: localstack/localstack (commit 8b9a79f0), tests/aws/services/stepfunctions/v2/callback/test_callback.snapshot.json,
    `TestCallback::test_start_execution_sync_delegate_failure` and the other failure cases carry the
    `cause` through to `TaskFailed` and `ExecutionFailed`.

    Still needed? `StepFunctionResponse.send_task_failure` (moto/stepfunctions/responses.py) still calls
    the backend without `cause=`.
    """
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    require(4, StepFunctionResponse, "send_task_failure", ("self",))

    def send_task_failure(self):  # noqa: ANN001
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
        return EmptyResult()

    install(4, StepFunctionResponse, "send_task_failure", send_task_failure)


def patch_context_start_time() -> None:
    """Patch 5; targets moto 5.2.5. What AWS does, what moto does, the fix:

    The context object's `$$.Execution.StartTime` is a Python datetime inside the interpreter, so
    intrinsic functions such as `States.StringSplit($$.Execution.StartTime, 'T')` (the ASL's
    DefaultRunDate) fail with a TypeError. AWS hands it out as an ISO 8601 string
    (`2021-06-27T06:00:00.123Z`); `ExecutionWorker._get_evaluation_environment` now does the same.

    Evidence: Step Functions Developer Guide, input-output-contextobject.html (the context object's
    `Execution.StartTime` is a string such as "2019-03-26T20:14:13.192Z"). The AWS-recorded context
    object snapshots (localstack's v2/context_object) mask the value, so no recording shows its format.

    Still needed? `ExecutionWorker._get_evaluation_environment` still puts a `datetime` into the context
    object's `Execution.StartTime`.
    """
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = require(5, ExecutionWorker, "_get_evaluation_environment", ("self",))

    def environment(self):  # noqa: ANN001
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if isinstance(execution.get("StartTime"), datetime):
            start = execution["StartTime"].astimezone(timezone.utc)
            execution["StartTime"] = start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
        return env

    install(5, ExecutionWorker, "_get_evaluation_environment", environment)


def patch_stop_execution() -> None:
    """Patch 8; targets moto 5.2.5. What AWS does, what moto does, the fix:

    `StopExecution` only flags the interpreter's worker, which stays blocked in a `waitForTaskToken`
    wait: the execution stayed RUNNING. The patched stop also interrupts the callback waits of that
    execution (`CallbackEndpoint.interrupt_all`), so it ends ABORTED at once; its tokens then answer
    InvalidToken, as the tokens of a stopped run do on AWS. The interrupted wait raises inside the
    Task, and `Environment.set_error`/`set_timed_out` would then overwrite the stopped state (the run
    ended FAILED): a stopped program now stays stopped.

    Evidence: AWS API reference, API_StopExecution.html (the execution stops, status ABORTED) and
    API_SendTaskSuccess.html (`TaskTimedOut`: "the task associated with the token has already been
    closed"); AWS-recorded history: localstack/localstack (commit 8b9a79f0), tests/aws/services/stepfunctions/v2/test_sfn_api.snapshot.json, `TestSnfApi::test_stop_execution`
    (`ExecutionAborted` right after the stop, a Wait state running). No recording of a stop while a
    `waitForTaskToken` Task waits, nor of what its token answers afterwards.

    Still needed? `Execution.stop` (moto/stepfunctions/parser/backend/execution.py) still only flags the
    worker without interrupting the callback endpoints; `Environment.set_error`/`set_timed_out` still
    overwrite a `ProgramStopped` state.
    """
    from moto.stepfunctions.parser.backend.execution import Execution

    original = require(8, Execution, "stop", ("self", "stop_date", "error", "cause"))

    def stop(self, stop_date, error, cause):  # noqa: ANN001
        original(self, stop_date, error, cause)
        worker = self.exec_worker
        if worker is None:
            return
        for endpoint in list(getattr(worker.env.callback_pool_manager, "_pool", {}).values()):
            endpoint.interrupt_all()  # the waiting Task sees the stopped program and ends

    install(8, Execution, "stop", stop)

    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    for name in ("set_error", "set_timed_out"):
        def keep_stopped(self, *args, _original=require(8, Environment, name), **kwargs):  # noqa: ANN001
            if isinstance(self._program_state, ProgramStopped):
                return None
            return _original(self, *args, **kwargs)

        install(8, Environment, name, keep_stopped)


def patch_execution_events() -> None:
    """Patch 9; targets moto 5.2.5. What AWS does, what moto does, the fix:

    moto publishes no "Step Functions Execution Status Change" events. When an execution ends, the
    event AWS sends (source `aws.states`, detail executionArn, stateMachineArn, name, status,
    startDate, stopDate, input, output, error, cause) is now put on the default bus.

    Evidence: Step Functions Developer Guide, cw-events.html ("Step Functions Execution Status
    Change" events and their detail fields) and REFERENCE.md "Safety-net facts". No AWS-recorded event
    was found.

    Still needed? grep moto/stepfunctions for `Execution Status Change`: moto 5.2.5 publishes no such
    event.
    """
    from moto.events.models import events_backends
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = require(9, BaseExecutionWorkerCommunication, "terminated", ("self",))

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

    install(9, BaseExecutionWorkerCommunication, "terminated", terminated)


def _millis(value) -> int | None:  # noqa: ANN001
    return int(value.timestamp() * 1000) if value is not None else None


def patch_retry_task_tokens() -> None:
    """Patches 12 and 13; targets moto 5.2.5. What AWS does, what moto does, the fix:

    (12) The interpreter makes one `$$.Task.Token` per state entry and reuses it for every Retry attempt
    of a `waitForTaskToken` Task, so a callback sent for a failed attempt lands on the retry. Step
    Functions schedules each attempt as a new task with a new token (the old one then answers
    TaskTimedOut/InvalidToken), which is what the submitter's re-attach relies on; the patched
    `_evaluate_with_timeout` mints a new token for every retry attempt, and the token of an attempt
    that failed is closed (patch 33: a late callback answers TaskTimedOut).

    (13) With `HeartbeatSeconds`, the interpreter waits only for the heartbeat signal, which is set up
    after the Lambda invoke returns: a `SendTaskSuccess` sent during the invoke (the submitter
    closes the task itself when the status event came first) was never seen and the Task failed by
    heartbeat timeout. The wait now returns an outcome that already arrived.

    Evidence (12): Step Functions Developer Guide, connect-to-resource.html (the callback
    pattern: a task token per task) and the Retry semantics in concepts-error-handling.html (each retry
    is a new attempt of the Task); REFERENCE.md "Step Functions callbacks". No AWS-recorded history of a
    retried `waitForTaskToken` Task (with its two tokens) was found in localstack's snapshots.
    Evidence (13): none recorded; the fix follows from `SendTaskSuccess` closing the task whenever it
    arrives (API_SendTaskSuccess.html), before or after the invoke returned.

    Still needed (12)? the Retry path
    (`ExecutionState._evaluate_with_timeout`/`StateTaskServiceCallback._evaluate_with_timeout`) still
    reuses the state entry's `$$.Task.Token` (grep `update_task_token`).
    Still needed (13)? `StateTaskServiceCallback._wait_for_task_token_heartbeat` still waits for the
    heartbeat without first looking at `callback_endpoint.get_outcome()`.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    original = require(12, StateTaskServiceCallback, "_evaluate_with_timeout", ("self", "env"))

    def evaluate_with_timeout(self, env):  # noqa: ANN001
        context = env.states.context_object
        callback = (self._is_integration_pattern()
                    and ResourceCondition.WaitForTaskToken in self._supported_integration_patterns)
        if callback and context.context_object_data.get("State", {}).get("RetryCount", 0) > 0:
            env.callback_pool_manager.add(context.update_task_token())
        try:
            return original(self, env)
        except Exception:
            if callback:  # the failed attempt's token is closed (patch 33): a late callback answers TaskTimedOut
                token = (context.context_object_data.get("Task") or {}).get("Token")
                endpoint = env.callback_pool_manager.get(token) if token else None
                if endpoint is not None:
                    close_attempt(endpoint)
            raise

    install(12, StateTaskServiceCallback, "_evaluate_with_timeout", evaluate_with_timeout)

    wait_heartbeat = require(13, StateTaskServiceCallback, "_wait_for_task_token_heartbeat",
                             ("self", "env", "callback_endpoint", "heartbeat_endpoint"))

    def wait_for_task_token_heartbeat(self, env, callback_endpoint, heartbeat_endpoint):  # noqa: ANN001
        outcome = callback_endpoint.get_outcome()  # patch 13: completed while the invoke ran
        return outcome if outcome is not None else wait_heartbeat(self, env, callback_endpoint, heartbeat_endpoint)

    install(13, StateTaskServiceCallback, "_wait_for_task_token_heartbeat", wait_for_task_token_heartbeat)


# Patch 33: one outcome per task attempt. Each waitForTaskToken attempt's CallbackEndpoint is closed
# (an attribute on moto's endpoint) by whichever of its callback and its own end (the invoke's failure,
# a timeout) is decided first; every decision takes this lock.
_outcome_lock = threading.Lock()
_CLOSED = "_adapter_attempt_closed"
_INVOKE_ANSWERED = "_adapter_invoke_answered"


def close_attempt(endpoint) -> None:  # noqa: ANN001
    """Closes a task attempt that ended without a callback: later callbacks answer TaskTimedOut."""
    with _outcome_lock:
        setattr(endpoint, _CLOSED, True)


def patch_one_outcome_per_attempt(faults) -> None:  # noqa: ANN001
    """Patch 33; targets moto 5.2.5. What AWS does, what moto does, the fix:

    AWS: a task has one outcome. `SendTaskSuccess`/`SendTaskFailure`/`SendTaskHeartbeat` with the token
    of a task that is already closed answer `TaskTimedOut`, "The task token has either expired or the
    task associated with the token has already been closed" (API_SendTaskSuccess.html,
    API_SendTaskFailure.html, API_SendTaskHeartbeat.html, Errors), and each Retry attempt is a new task
    with a new token (REFERENCE.md "Step Functions callbacks"). So whichever of the callback and the
    attempt's own failure (the Lambda invoke answered with an error, a timeout) Step Functions records
    first closes the attempt: a callback after the failure is refused, a failure after an accepted
    callback does not fail the Task. Evidence: the API reference above for the refusal; for the order
    in which a callback that arrives while the invoke is still in flight closes the task, no
    AWS-recorded history was found (localstack's recorded callback snapshots,
    tests/aws/services/stepfunctions/v2/callback, send the callback after the invoke returned); the
    rule that the first recorded outcome closes the attempt follows from the one-close semantics above.

    moto 5.2.5: `CallbackPoolManager.notify` accepts any callback whose token is in the pool, whatever
    the attempt became: a `SendTaskSuccess` that arrived while the invoke was failing was accepted
    (HTTP 200) AND the attempt failed with the invoke's error and was retried, so the completer recorded
    SUCCEEDED for a task Step Functions had failed (issue 22: the retried submitter found its statement
    completed). A second callback on a completed task is accepted too, and its `TaskTimedOut` cannot be
    raised (`TaskTimedOut()` without its required message is a TypeError, HTTP 500).

    The fix: every decision about an attempt's outcome takes one lock and closes the attempt's endpoint.
    `notify` (SendTaskSuccess/Failure) on a closed attempt raises TaskTimedOut, else accepts and closes
    it; `heartbeat` on a closed attempt raises TaskTimedOut. When the invoke fails
    (`StateTaskServiceCallback._eval_execution` raises before `_after_eval_execution`, i.e. before the
    invoke answered), a callback accepted before wins: the Task ends with that callback's outcome
    (TaskSucceeded with its output, or TaskFailed with its error and cause) and the invoke's failure is
    dropped; otherwise the attempt is closed and fails with the invoke's error. When the wait ends in a
    heartbeat or callback timeout (`_eval_wait_for_task_token`), a callback accepted before wins the same
    way. A Retry attempt's failure closes its token too (patch 12's wrapper). Not covered: an execution-
    level `TimeoutSeconds` that fires in the same instant as a callback (the interpreter's own thread
    race), and the tokens of a stopped execution answer as patch 8 says (a SendTaskFailure now finds the
    attempt closed: TaskTimedOut).

    Deterministic tests: a `fail_after_invoke` fault (patch 10) with `"order": "callback_first"` or
    `"failure_first"` holds its invoke's failure answer until a callback with the invoke's token was
    handled here (`faults.callback_handled`); with `failure_first` the attempt is closed as that
    callback arrives, before it is decided (tests/test_moto_adapter.py, tests/e2e/test_safety_net.py).
    A `callback_error` fault (`{"callback_error": "ThrottlingException", "output_contains":
    '"step":"LoadItem"', "times": 3}`) refuses matching callbacks with that error (HTTP 400, as
    Step Functions answers a throttled call, API_SendTaskSuccess.html "Common Errors") before
    anything is decided: the attempt stays open (tests/e2e/test_submit_wait.py).

    Still needed? `CallbackPoolManager.notify`/`heartbeat` (moto/stepfunctions/parser/asl/eval/callback/
    callback.py) still notify any endpoint in the pool without asking whether its attempt is over, and
    `StateTaskService._eval_execution` still lets the invoke's exception fail the Task whatever the
    endpoint received.
    """
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackOutcomeFailure,
        CallbackOutcomeFailureError,
        CallbackOutcomeSuccess,
        CallbackOutcomeTimedOut,
        CallbackPoolManager,
        HeartbeatTimedOut,
    )

    class TaskTimedOut(AWSError):
        TYPE = "TaskTimedOut"
        STATUS = 400

    def closed_task() -> TaskTimedOut:
        return TaskTimedOut("Task Timed Out: the task of this token is already closed")

    def refused(name: str) -> AWSError:
        # A class of the error's own name, as the API names it (the callbacks probe records the name).
        error_class = type(name, (AWSError,), {"TYPE": name, "STATUS": 400})
        return error_class(f"{name}: refused by the adapter's callback_error fault")

    def callback_text(outcome) -> str:  # noqa: ANN001
        if isinstance(outcome, CallbackOutcomeSuccess):
            return str(outcome.output)
        if isinstance(outcome, CallbackOutcomeFailure):
            return f"{outcome.error} {outcome.cause}"
        return ""

    original_notify = require(33, CallbackPoolManager, "notify", ("self", "callback_id", "outcome"))
    original_heartbeat = require(33, CallbackPoolManager, "heartbeat", ("self", "callback_id"))
    original_execution = require(33, StateTaskServiceCallback, "_eval_execution", ("self", "env"))
    original_after = require(33, StateTaskServiceCallback, "_after_eval_execution",
                             ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"))
    original_wait = require(33, StateTaskServiceCallback, "_eval_wait_for_task_token",
                            ("self", "env", "timeout_seconds", "callback_endpoint", "heartbeat_endpoint"))

    def notify(self, callback_id, outcome):  # noqa: ANN001
        endpoint = self.get(callback_id)
        if endpoint is None:
            return original_notify(self, callback_id, outcome)
        error = faults.callback_error(callback_text(outcome))
        if error:
            LOG.info("fault: a task callback refused with %s", error)
            raise refused(error)
        try:
            with _outcome_lock:
                if faults.order_of(callback_id) == "failure_first":
                    setattr(endpoint, _CLOSED, True)  # the fault: the invoke's failure is recorded first
                if getattr(endpoint, _CLOSED, False):
                    raise closed_task()
                accepted = original_notify(self, callback_id, outcome)
                if accepted:
                    setattr(endpoint, _CLOSED, True)
                return accepted
        finally:
            faults.callback_handled(callback_id)

    def heartbeat(self, callback_id):  # noqa: ANN001
        endpoint = self.get(callback_id)
        if endpoint is not None and getattr(endpoint, _CLOSED, False):
            raise closed_task()
        return original_heartbeat(self, callback_id)

    def waits_for_token(state) -> bool:  # noqa: ANN001
        return state.resource.condition == ResourceCondition.WaitForTaskToken

    def endpoint_of(env):  # noqa: ANN001, ANN202
        token = (env.states.context_object.context_object_data.get("Task") or {}).get("Token")
        return env.callback_pool_manager.get(token) if token else None

    def after_eval_execution(self, env, *args, **kwargs):  # noqa: ANN001
        endpoint = endpoint_of(env) if waits_for_token(self) else None
        if endpoint is not None:
            setattr(endpoint, _INVOKE_ANSWERED, True)  # the invoke returned; the wait decides from here
        return original_after(self, env, *args, **kwargs)

    def eval_execution(self, env):  # noqa: ANN001
        endpoint = endpoint_of(env) if waits_for_token(self) else None
        if endpoint is None:
            return original_execution(self, env)
        try:
            return original_execution(self, env)
        except Exception:
            if getattr(endpoint, _INVOKE_ANSWERED, False):
                raise  # failed in the wait: decided there
            with _outcome_lock:
                won = endpoint.get_outcome() if getattr(endpoint, _CLOSED, False) else None
                setattr(endpoint, _CLOSED, True)
            if not isinstance(won, (CallbackOutcomeSuccess, CallbackOutcomeFailure)):
                raise  # the invoke's failure closes the attempt
        # A callback closed the attempt before the invoke's failure: the Task ends with it.
        LOG.info("a callback closed the task before its invoke failed; the invoke's failure is dropped")
        endpoint.interrupt_all()
        if isinstance(won, CallbackOutcomeFailure):
            raise CallbackOutcomeFailureError(callback_outcome_failure=won)
        env.stack.append(json.loads(won.output))
        # StateTaskService's own: the TaskSucceeded event with the callback's output
        return super(StateTaskServiceCallback, self)._after_eval_execution(env, None, {}, None)

    def eval_wait_for_task_token(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint):  # noqa: ANN001
        outcome = original_wait(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        with _outcome_lock:
            if isinstance(outcome, (CallbackOutcomeTimedOut, HeartbeatTimedOut)) and getattr(callback_endpoint, _CLOSED, False):
                won = callback_endpoint.get_outcome()
                if isinstance(won, (CallbackOutcomeSuccess, CallbackOutcomeFailure)):
                    return won  # the callback was accepted before the timeout was decided
            setattr(callback_endpoint, _CLOSED, True)
        return outcome

    install(33, CallbackPoolManager, "notify", notify)
    install(33, CallbackPoolManager, "heartbeat", heartbeat)
    install(33, StateTaskServiceCallback, "_eval_execution", eval_execution)
    install(33, StateTaskServiceCallback, "_after_eval_execution", after_eval_execution)
    install(33, StateTaskServiceCallback, "_eval_wait_for_task_token", eval_wait_for_task_token)


def patch_heartbeat_timeout_matching() -> None:
    """Patch 34; targets moto 5.2.5. What AWS does, what moto does, the fix:

    AWS: a Task that misses its heartbeat fails with `States.Timeout`: its `TaskTimedOut` event carries
    error `States.Timeout` and no cause, and so does the `ExecutionFailed` that follows when nothing
    catches it (AWS-recorded history: localstack/localstack
    tests/aws/services/stepfunctions/v2/timeouts/test_heartbeats.snapshot.json,
    `TestHeartbeats::test_heartbeat_timeout`, recorded 2024-04-18; copied to
    tests/fixtures/aws_recorded/heartbeat_timeout.json). `States.HeartbeatTimeout` is a name a `Retry`
    or `Catch` can match, never the recorded error: "States.HeartbeatTimeout: A Task state failed to
    send a heartbeat for a period longer than the HeartbeatSeconds value. HeartbeatTimeout is
    available inside the Catch and Retry fields", and `States.Timeout` matches a Task that "ran longer
    than the TimeoutSeconds value, or failed to send a heartbeat" (Step Functions Developer Guide,
    concepts-error-handling.html; the name was added in 2021, awslabs/states-language pull 25, and
    aws/aws-cdk issue 16084 by the Step Functions team: "Step Functions only supports a Catch on
    States.Timeout that includes both Task timeout and Task Heartbeat timeout ... a new error type
    called States.HeartbeatTimeout where customers can have a different error handling logic"). So a
    missed heartbeat matches `States.HeartbeatTimeout`, `States.Timeout` and `States.ALL`; a
    `TimeoutSeconds` timeout matches `States.Timeout` and `States.ALL`, not `States.HeartbeatTimeout`;
    `States.TaskFailed` matches neither ("any known error name except for States.Timeout").
    No AWS-recorded history of a Retry or Catch on `States.HeartbeatTimeout` was found (none of
    localstack's Step Functions snapshots uses the name), so the `Error` a Catch hands on for a caught
    heartbeat timeout is moto's, `States.Timeout` with an empty `Cause`, unverified against AWS.

    moto 5.2.5 records the history as AWS does (`TaskTimedOut`/`ExecutionFailed` with `States.Timeout`,
    no cause) but reports the missed heartbeat as the plain `States.Timeout` error name, so a `Retry` or
    `Catch` on `States.HeartbeatTimeout` never matches it. The patched `StateTask._from_error` gives the
    failure of a `HeartbeatTimeoutError` an error name that still reads `States.Timeout` everywhere
    (events, the Catch's `Error`) and that `ErrorEquals` matches as both names.

    Not covered: a heartbeat timeout that fails a Parallel or Map branch reaches the Parallel's or
    Map's Catch as the name `States.Timeout` only (patches 26, 32 rethrow the branch's name); no
    recording says what AWS matches there.

    Still needed? `StateTask._from_error` (moto/stepfunctions/parser/asl/component/state/exec/
    state_task/state_task.py) still maps every `TimeoutError`, `HeartbeatTimeoutError` included, to
    `StatesErrorName(StatesTimeout)` (tests/test_moto_adapter.py's Catch cases fail otherwise).
    """
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

    original = require(34, StateTask, "_from_error", ("self", "env", "ex"))
    require(34, StatesErrorNameType, "StatesHeartbeatTimeout")

    class HeartbeatTimeoutName(StatesErrorName):
        """`States.Timeout`, which `ErrorEquals` also matches as `States.HeartbeatTimeout`."""

        MATCHES = (StatesErrorNameType.StatesTimeout.to_name(), StatesErrorNameType.StatesHeartbeatTimeout.to_name())

        def __init__(self):
            super().__init__(typ=StatesErrorNameType.StatesTimeout)

        def matches(self, error_name: str | None) -> bool:
            return error_name in self.MATCHES

    def from_error(self, env, ex):  # noqa: ANN001
        failure = original(self, env, ex)
        if isinstance(ex, HeartbeatTimeoutError):
            failure.error_name = HeartbeatTimeoutName()
        return failure

    install(34, StateTask, "_from_error", from_error)


def patch_retry_interval_scale(faults) -> None:  # noqa: ANN001
    """Patch 35; targets moto 5.2.5. A test-only time compression, not a change of behaviour:

    A `Retry` waits `IntervalSeconds × BackoffRate^n` (capped by `MaxDelaySeconds`, then FULL jitter
    draws from 0 to that) between attempts: AcquireRunLock's retries of a held lock wait up to about
    two minutes before the run fails with RunAlreadyInProgress, so a test of that failure would wait
    as long. A `retry_interval_scale` fault (faults.py; `{"retry_interval_scale": 0.02, "state":
    "AcquireRunLock", "execution_contains": "e2e-waiter"}`, re-read on every wait) multiplies the wait
    the interpreter sleeps, for the states and executions it matches, by a factor in (0, 1]. Which
    errors match, how many attempts are made, the backoff, the cap, the jitter, the `RetryCount` and
    the history are moto's own: only the sleep is shorter. Without a matching fault the wait is
    moto's, to the millisecond.

    The patched `RetrierDecl._eval_body` is moto's, step for step (match the error, count the attempt,
    compute interval, backoff, cap and jitter), with the sleep scaled.

    Still needed? As long as a test waits on a long `Retry` (tests/e2e/test_triggers.py's lock test).
    Still right? `RetrierDecl._eval_body` (moto/stepfunctions/parser/asl/component/common/retry/
    retrier_decl.py) still evaluates error_equals, max_attempts, interval_seconds, backoff_rate,
    max_delay_seconds, jitter_strategy in that order and then `time.sleep`s the interval on the stack
    (tests/test_moto_adapter.py runs a Retry with and without the fault).
    """
    from moto.stepfunctions.parser.asl.component.common.retry.max_attempts_decl import MaxAttemptsOutcome
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_decl import RetrierDecl
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_outcome import RetrierOutcome

    require(35, RetrierDecl, "_eval_body", ("self", "env"))

    def eval_body(self, env) -> None:  # noqa: ANN001
        self.error_equals.eval(env)
        if not env.stack.pop():  # this Retrier does not match the error
            env.stack.append(RetrierOutcome.Skipped)
            return
        self.max_attempts.eval(env=env)
        if env.stack.pop() == MaxAttemptsOutcome.EXHAUSTED:
            env.stack.append(RetrierOutcome.Failed)
            return
        self.interval_seconds.eval(env=env)
        self.backoff_rate.eval(env=env)
        self.max_delay_seconds.eval(env=env)
        self.jitter_strategy.eval(env=env)
        interval_seconds: float = env.stack.pop()
        context = env.states.context_object.context_object_data
        scale = faults.retry_interval_scale(context.get("Execution", {}).get("Name", ""),
                                            context.get("State", {}).get("Name", ""))
        time.sleep(interval_seconds * scale)
        env.stack.append(RetrierOutcome.Executed)

    install(35, RetrierDecl, "_eval_body", eval_body)


def patch_sfn_integration_parameters() -> None:
    """Patch 16; targets moto 5.2.5. What AWS does, what moto does, the fix:

    The interpreter's `arn:aws:states:::states:startExecution` integration hands the state's
    PascalCase parameters (`StateMachineArn`, `Name`, `Input`) to boto3 unchanged (its base
    `_normalise_parameters` is empty), and botocore fails with KeyError 'Input' (States.Runtime);
    its response keeps boto3's keys and a datetime `startDate`, which then breaks DescribeExecution
    of the calling execution (HTTP 500). The patch renames the parameters to the API's member names
    and gives the state the output Step Functions gives: `{"ExecutionArn", "StartDate"}` (a string).

    Evidence: AWS-recorded history: localstack/localstack (commit 8b9a79f0), tests/aws/services/stepfunctions/v2/services/test_sfn_task_service.snapshot.json,
    `TestTaskServiceSfn::test_start_execution` (recorded 2025-11-06): the Task's output is
    `{"ExecutionArn", "StartDate", "SdkHttpMetadata", "SdkResponseMetadata"}`. Not emulated: the
    `SdkHttpMetadata`/`SdkResponseMetadata` members (HTTP headers of the call), which nothing here reads.

    Still needed? `StateTaskServiceSfn._normalise_parameters` is still the empty base method and
    `_eval_service_task` still pushes boto3's response (lower-case keys, datetime) unchanged.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    original = require(16, StateTaskServiceSfn, "_normalise_parameters",
                       ("self", "parameters", "boto_service_name", "service_action_name"))

    def normalise(self, parameters, boto_service_name=None, service_action_name=None):  # noqa: ANN001
        original(self, parameters, boto_service_name, service_action_name)
        for key in [k for k in parameters if k[:1].isupper()]:
            parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    install(16, StateTaskServiceSfn, "_normalise_parameters", normalise)

    eval_task = require(16, StateTaskServiceSfn, "_eval_service_task",
                        ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"))

    def eval_service_task(self, env, *args, **kwargs):  # noqa: ANN001
        eval_task(self, env, *args, **kwargs)
        response = env.stack.pop()
        env.stack.append({k[0].upper() + k[1:]: (v.isoformat() if isinstance(v, datetime) else v)
                          for k, v in response.items()} if isinstance(response, dict) else response)

    install(16, StateTaskServiceSfn, "_eval_service_task", eval_service_task)


def patch_starting_executions() -> None:
    """Patch 17; targets moto 5.2.5. What AWS does, what moto does, the fix:

    `SendTaskSuccess`/`SendTaskFailure`/`SendTaskHeartbeat` look for the token in every RUNNING
    execution's callback pool, and an execution that is just starting has a worker without an
    environment yet: the call then fails with HTTP 500 (AttributeError) for whatever token it
    carries, which under concurrent starts (the soak test) sent completions to the dead-letter
    queue (`SendTaskFailure` scans all executions and hits the same). The parser backend's
    `_get_executions`, whose every caller dereferences `exec_worker.env`, now skips executions
    whose worker has no environment (they cannot hold the token).

    Evidence: none needed for the behaviour (AWS answers `SendTask*` with the documented errors,
    API_SendTaskSuccess.html, never HTTP 500); no AWS recording of the race exists.

    Still needed? the callers of `StepFunctionsParserBackend._get_executions` (`send_task_*`) still
    dereference `exec_worker.env` unchecked.
    """
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = require(17, StepFunctionsParserBackend, "_get_executions", ("self", "execution_status"))

    def get_executions(self, execution_status=None):  # noqa: ANN001
        # every caller (send_task_*, the map-run calls) dereferences exec_worker.env
        return [e for e in original(self, execution_status)
                if getattr(getattr(e, "exec_worker", None), "env", None) is not None]

    install(17, StepFunctionsParserBackend, "_get_executions", get_executions)


def patch_program_cache() -> None:
    """Patch 18; targets moto 5.2.5. What AWS does, what moto does, the fix:

    The interpreter parses the state machine's ASL again for every execution (ANTLR in pure Python,
    `ExecutionWorker._get_evaluation_entrypoint`): with a hundred executions starting at once this
    was 40% of moto's CPU (the soak, measured with py-spy). The parsed program is now kept per
    definition text. It is safe to share: the components keep no evaluation state (that lives in
    each execution's `Environment`, its heap keyed by the component's `heap_key`, which is fixed
    here before the program is shared, as two threads could otherwise draw different keys).

    Changes no Step Functions behaviour (a cache of the parsed program), so no AWS evidence applies.

    Still needed? `ExecutionWorker._get_evaluation_entrypoint` still calls
    `AmazonStateLanguageParser.parse` per execution; measure with the requests probe under the soak.
    """
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    require(18, ExecutionWorker, "_get_evaluation_entrypoint", ("self",))
    require(18, AmazonStateLanguageParser, "parse")
    require(18, EvalComponent, "heap_key")
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

    install(18, ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)


def patch_jsonpath_cache() -> None:
    """Patch 19; targets moto 5.2.5. What AWS does, what moto does, the fix:

    Every JSONPath the interpreter evaluates (`extract_json`, `ResultPath`) is parsed again by
    jsonpath-ng, whose parser rebuilds its PLY tables on each call (15% of moto's CPU in the soak).
    Parsed paths are now kept per path text (jsonpath-ng's parsed expressions are not changed by
    `find`/`update`).

    Changes no Step Functions behaviour (a cache of parsed paths), so no AWS evidence applies.

    Still needed? `json_path.parse`/`result_path.parse` are still uncached jsonpath-ng parses.
    """
    import functools

    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    require(19, json_path, "parse", ("path", "debug"))
    require(19, result_path, "parse", ("string",))
    install(19, json_path, "parse", functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse))
    install(19, result_path, "parse", functools.lru_cache(maxsize=4096)(jsonpath_ng.parse))


def patch_integration_clients() -> None:
    """Patch 20; targets moto 5.2.5. What AWS does, what moto does, the fix:

    Each service integration call of the interpreter (the Lambda invoke of every Task, the DynamoDB
    calls of the run lock) built a new boto3 client (`boto_client_for`, ~7 ms of CPU, 8% of moto's
    CPU in the soak) and so a new connection. Clients are now kept per service, region and
    endpoint when no state credentials are given (boto3 clients are thread-safe), with a
    connection pool large enough for every waiting Task.

    Changes no Step Functions behaviour (client reuse), so no AWS evidence applies.

    Still needed? `boto_client_for` (moto/stepfunctions/parser/asl/utils/boto_client.py) still calls
    `boto3.client(...)` on every call.
    """
    import boto3
    from botocore.config import Config
    from moto.stepfunctions.parser.asl.utils import boto_client

    require(20, boto_client, "boto3")
    require(20, boto_client, "boto_client_for", ("region", "service", "state_credentials"))
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

    install(20, boto_client, "boto3", CachedBoto3())


def patch_parallel_error_names() -> None:
    """Patch 26; targets moto 5.2.5. What AWS does, what moto does, the fix:

    A Parallel state whose branch failed rethrows the branch's error through `CustomErrorName`,
    which refuses names that start with `States.`: a branch that failed with `States.Timeout` (an
    uncaught step timeout, a missed heartbeat included: patch 34) becomes `ValueError(Custom Error Names MUST
    NOT begin with the prefix 'States.')`, i.e. `States.Runtime`, which no Catch can match, so the
    execution fails at once and skips its lock release. On AWS a Parallel state fails when a branch
    fails "because of an unhandled error", with that error: its `Catch` matches the branch's error
    name, Step Functions' own `States.*` names included (the reserved prefix applies to names a
    state *reports*, not to errors propagated from a branch). The Parallel now rethrows the
    branch's name unchanged (`state_parallel/branches_decl.py`), so a step that timed out or missed
    its heartbeat fails the execution with `States.Timeout`, and a Catch would see it.

    Evidence: Step Functions Developer Guide, state-parallel.html (a branch's unhandled error fails
    the Parallel) and concepts-error-handling.html; AWS-recorded histories:
    localstack/localstack (commit 8b9a79f0), tests/aws/services/stepfunctions/v2/scenarios/test_base_scenarios.snapshot.json, `TestBaseScenarios::test_parallel_state_fail`
    (the execution fails with the branch's error) and `::test_parallel_state_catch` (a Catch on the
    Parallel matches the branch's error name and gets its Error and Cause), compared with the adapter in
    tests/test_moto_adapter.py (tests/fixtures/aws_recorded/parallel_branch_fail*.json). No recording of
    a `States.*` error (a timeout) failing a Parallel was found; the inline Map recording
    (map_task_timeout.json, patch 32) shows `States.Timeout` failing the Map and the execution, which
    this patch assumes of the Parallel too.

    Still needed? `state_parallel/branches_decl.py` still rethrows a branch's error through
    `CustomErrorName`, which refuses `States.` names.
    """
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    require(26, branches_decl, "CustomErrorName")

    class BranchErrorName(CustomErrorName):
        """The branch's error, whatever its prefix (CustomErrorName refuses `States.`)."""

        def __init__(self, error_name: str | None):
            ErrorName.__init__(self, error_name=error_name)

    install(26, branches_decl, "CustomErrorName", BranchErrorName)


def patch_map_error_names() -> None:
    """Patch 32; targets moto 5.2.5. What AWS does, what moto does, the fix:

    An inline Map state whose iteration failed with an unhandled error fails with that error, as a
    Parallel does with its branch's (patch 26): the Backfill's `StartRunStopping` Task fails with
    `States.TaskFailed` (the run it waited for failed), uncaught so that a Redrive reruns that Task, and
    the backfill must fail with `States.TaskFailed` and the run's DescribeExecution as the cause. moto's
    `IterationWorker._eval_input` rethrows the iteration's error through `CustomErrorName`, which
    refuses names that start with `States.`: the Map, and the execution, fail with `States.Runtime`
    ("Custom Error Names MUST NOT begin with the prefix 'States.'"). The iteration's name is now
    rethrown unchanged.

    Evidence: AWS-recorded history: localstack/localstack (commit 8b9a79f0), tests/aws/services/stepfunctions/v2/timeouts/test_timeouts.snapshot.json,
    `TestTimeouts::test_service_lambda_map_timeout` (recorded 2024-03-10): an inline Map whose iterations'
    Tasks time out fails with `States.Timeout` (MapStateFailed, then ExecutionFailed `States.Timeout`, no
    cause); compared with the adapter in tests/test_moto_adapter.py
    (tests/fixtures/aws_recorded/map_task_timeout.json). Not emulated (moto's Map): AWS records the other
    iterations as `MapIterationAborted` with a `TaskStateAborted` per Task state and writes nothing after
    `ExecutionFailed`; moto records each iteration as `MapIterationFailed` and may write the slower
    iterations' events after `ExecutionFailed`.

    Still needed? `state_map/iteration/iteration_worker.py` still wraps the iteration's error in
    `CustomErrorName` (tests/e2e/test_backfill.py's stop case fails with States.Runtime otherwise).
    """
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker

    require(32, iteration_worker, "CustomErrorName")

    class IterationErrorName(CustomErrorName):
        """The iteration's error, whatever its prefix (CustomErrorName refuses `States.`)."""

        def __init__(self, error_name: str | None):
            ErrorName.__init__(self, error_name=error_name)

    install(32, iteration_worker, "CustomErrorName", IterationErrorName)


def patch_unnamed_executions() -> None:
    """Patch 28; targets moto 5.2.5. What AWS does, what moto does, the fix:

    `StartExecution` without a `name` (the AWS CLI without `--name`, a test) builds the ARN from
    `None`: every unnamed execution of a state machine is `...:None`, so the second one is
    `ExecutionAlreadyExists` once the first has ended (or returns the first while it runs). Step
    Functions gives an unnamed execution a generated UUID name; the parser backend's
    `start_execution` now does the same before anything else reads the name.

    Evidence: AWS API reference, API_StartExecution.html (`name`: "If you don't provide a name for
    the execution, Step Functions automatically generates a universally unique identifier (UUID) as the
    execution name").

    Still needed? `StepFunctionsParserBackend.start_execution` still builds the execution ARN from
    `name` with no default.
    """
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = require(28, StepFunctionsParserBackend, "start_execution",
                       ("self", "state_machine_arn", "name", "execution_input", "trace_header"))

    def start_execution(self, state_machine_arn, name=None, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    install(28, StepFunctionsParserBackend, "start_execution", start_execution)


# The members of an API response that carry a caller's own JSON (a child execution's input and
# output): handed on as they are, never renamed.
_PAYLOAD_MEMBERS = frozenset({"input", "output", "Input", "Output"})


def _pascal(value: dict) -> dict:
    """An API response as Step Functions hands it to a state: PascalCase member names, nested structures
    included (`OutputDetails: {"Included": true}`), timestamps as ISO 8601 strings; a child's Input and
    Output unchanged."""
    def member(key: str, v):  # noqa: ANN001, ANN202
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, dict) and key not in _PAYLOAD_MEMBERS:
            return _pascal(v)
        return v

    return {k[0].upper() + k[1:]: member(k, v) for k, v in value.items()}


def _described(described: dict) -> dict:
    """A child's DescribeExecution as `.sync:2` hands it on: PascalCase, with the `InputDetails` that
    DescribeExecution has on AWS and moto leaves out."""
    output = _pascal(described)
    if "Input" in output:
        output.setdefault("InputDetails", {"Included": True})
    return output


def patch_sync2_execution_output() -> None:
    """Patch 29; targets moto 5.2.5. What AWS does, what moto does, the fix:

    `arn:aws:states:::states:startExecution.sync:2` waits for the child execution and gives the state
    the child's DescribeExecution with Step Functions' PascalCase member names (`ExecutionArn`, `Status`,
    `Output`, ...; `.sync:2`: `Input` and `Output` as JSON, not strings); a child that failed, timed out
    or was aborted fails the Task with `States.TaskFailed` and that DescribeExecution (with `Error` and
    `Cause`) as JSON text in the cause (the Backfill workflow reads `Status`, `ExecutionArn` and
    `Error` from both, statemachine/backfill.asl.json). moto's `StateTaskServiceSfn._build_sync2_resolver`
    returns, and puts into the cause, boto3's camelCase keys (`executionArn`, `status`, ...), and
    datetimes in the output, and no `InputDetails`. The patched resolver renames the keys (nested
    structures too, not the child's Input and Output), adds `InputDetails` and writes the dates as
    ISO 8601 strings in both; waiting, failing and the parsing of Input/Output are moto's.

    Evidence: AWS-recorded history: localstack/localstack (commit 8b9a79f0), tests/aws/services/stepfunctions/v2/callback/test_callback.snapshot.json,
    `TestCallback::test_start_execution_sync2` (recorded 2023-08-12): the output is the child's
    DescribeExecution in PascalCase, nested members too (`OutputDetails: {"Included": true}`), with
    `InputDetails`, `Input` and `Output` as JSON; compared with the adapter in tests/test_moto_adapter.py
    (tests/fixtures/aws_recorded/sync2_output.json). The recording predates RedriveExecution, so whether
    the output now has DescribeExecution's `Redrive*` members (the adapter's has) is not recorded. For a
    failed child, the recording of `.sync` (not `:2`), `::test_start_execution_sync_delegate_failure`,
    shows `States.TaskFailed` with the PascalCase DescribeExecution (`Error`, `Cause`, `InputDetails`) as
    the cause; no `.sync:2` failure was recorded.

    Still needed? `StateTaskServiceSfn._build_sync2_resolver` (moto/stepfunctions/parser/asl/component/
    state/exec/state_task/service/state_task_service_sfn.py) still returns boto3's `describe_execution`
    keys and `to_json_str(describe_execution_output)` as the cause (tests/e2e/test_backfill.py fails
    otherwise: the rows of a backfill have no executionArn).
    """
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    original = require(29, StateTaskServiceSfn, "_build_sync2_resolver",
                       ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"))

    def build_sync2_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        resolve = original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

        def resolver():  # noqa: ANN202
            try:
                described = resolve()
            except FailureEventException as failure:
                details = failure.failure_event.event_details.get("taskFailedEventDetails") or {}
                try:
                    cause = json.loads(details.get("cause") or "")
                except ValueError:
                    raise failure from None
                if isinstance(cause, dict):
                    details["cause"] = json.dumps(_described(cause), separators=(",", ":"))
                raise
            return _described(described) if isinstance(described, dict) else described

        return resolver

    install(29, StateTaskServiceSfn, "_build_sync2_resolver", build_sync2_resolver)


def patch_sdk_sfn_integration() -> None:
    """Patch 30; targets moto 5.2.5. What AWS does, what moto does, the fix:

    An AWS SDK integration Task (`arn:aws:states:::aws-sdk:sfn:describeExecution`) takes the API's
    parameters in PascalCase (`ExecutionArn`) and gives the state the response in PascalCase
    (`Status`, `Output`, ...), as every `aws-sdk:` integration does. moto's
    `StateTaskServiceAwsSdk._eval_service_task` hands the parameters to boto3 as they are (botocore
    serializes no `executionArn`: the call fails) and pushes boto3's response (camelCase, datetimes).
    For the Step Functions API (`sfn`) the patch renames the top-level parameters to the API's member
    names and the response's back to PascalCase, dates as ISO 8601 strings; other services unchanged.

    Evidence: Step Functions Developer Guide, supported-services-awssdk.html (API parameters in
    PascalCase); AWS-recorded history: localstack/localstack (commit 8b9a79f0), tests/aws/services/stepfunctions/v2/services/test_aws_sdk_task_service.snapshot.json,
    `TestTaskServiceAwsSdk::test_sfn_start_execution` (recorded 2025-11-06): `aws-sdk:sfn:startExecution`
    takes `StateMachineArn`/`Input`/`Name` and outputs `{"ExecutionArn", "StartDate"}`. No recording of
    `aws-sdk:sfn:describeExecution` was found.

    Still needed? `StateTaskServiceAwsSdk._eval_service_task` (.../service/state_task_service_aws_sdk.py)
    still calls `getattr(api_client, api_action)(**normalised_parameters)` and pushes the response as
    boto3 returns it (tests/e2e/test_backfill.py's restart case reads `Status` of the taken name).
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    original = require(30, StateTaskServiceAwsSdk, "_eval_service_task",
                       ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"))

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        if self._get_boto_service_name() != "stepfunctions":
            return original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        parameters = {k[0].lower() + k[1:]: v for k, v in normalised_parameters.items()}
        original(self, env, resource_runtime_part, parameters, state_credentials)
        response = env.stack.pop()
        env.stack.append(_pascal(response) if isinstance(response, dict) else response)
        return None

    install(30, StateTaskServiceAwsSdk, "_eval_service_task", eval_service_task)


REDRIVE_PERIOD_SECONDS = 14 * 24 * 3600  # "the redrivable period of 14 days", from the execution's end
HISTORY_EVENT_LIMIT = 25_000  # Step Functions' execution history quota; a longer history is not redrivable
REDRIVE_TOKEN_SECONDS = 15 * 60  # "valid for up to 15 minutes after they are first used"
REDRIVE_TOKENS_KEPT = 10  # "idempotent responses for the last 10 client tokens"

_redrive_lock = threading.Lock()
# Per execution ARN: the successes of its attempts, {(state, map index, occurrence): (output, next, ended)},
# the occurrence counter of the attempt running now, its redrive count and date, its client tokens.
_attempts: dict[str, dict] = {}


def _attempt_of(arn: str) -> dict:
    with _redrive_lock:
        return _attempts.setdefault(arn, {"succeeded": {}, "counts": {}, "count": 0, "date": None, "tokens": []})


def not_redrivable_reason(status: str, sm_type: str, stop_date, history_events: int, now: datetime) -> str | None:  # noqa: ANN001
    """Why RedriveExecution refuses an execution (DescribeExecution's `redriveStatusReason`), or None when
    it is redrivable. The rules and texts are AWS's (API_RedriveExecution.html, API_DescribeExecution.html
    `redriveStatusReason`): STANDARD only; not RUNNING (or pending a redrive) nor SUCCEEDED; within the
    14 days after the execution ended; a history below the 25,000 events quota."""
    if sm_type != "STANDARD":
        return "Redrive is not supported for EXPRESS state machines."
    if status in ("RUNNING", "PENDING_REDRIVE"):
        return "Execution is RUNNING and cannot be redriven."
    if status == "SUCCEEDED":
        return "Execution is SUCCEEDED and cannot be redriven."
    if stop_date is not None and (now - stop_date).total_seconds() > REDRIVE_PERIOD_SECONDS:
        return "Execution redrivable period exceeded."
    if history_events >= HISTORY_EVENT_LIMIT:
        return "Execution history event limit exceeded."
    return None


def patch_redrive_execution() -> None:
    """Patch 31; targets moto 5.2.5. What AWS does, what moto does, the fix:

    AWS: `RedriveExecution` (console "Redrive") restarts a FAILED, ABORTED or TIMED_OUT Standard execution
    that ended within the last 14 days "from the unsuccessful step", with the same input, ARN and
    definition; "Step Functions preserves the results and execution history of the successful steps, and
    doesn't rerun these steps"; for a Parallel or inline Map "only the iterations and branches that failed
    or aborted" are redriven; the execution timeout restarts (redrive-executions.html). The history gets
    an `ExecutionRedriven` event (`executionRedrivenEventDetails.redriveCount`); DescribeExecution reports
    `redriveCount`, `redriveDate`, `redriveStatus` (REDRIVABLE | NOT_REDRIVABLE) and, when not
    redrivable, `redriveStatusReason`; the context object has `$$.Execution.RedriveCount` (0 before any
    redrive). A RUNNING or SUCCEEDED execution (or one past the window or the 25,000-event history
    quota) is refused with `ExecutionNotRedrivable`; an unknown ARN with `ExecutionDoesNotExist`; a
    `clientToken` seen in the last 15 minutes (last 10 kept) answers the same `redriveDate` again.
    moto 5.2.5: no RedriveExecution (HTTP 500, not implemented), no redrive fields, no RedriveCount.

    The emulation: every state that ends successfully records its output and its transition, keyed by
    state name, Map iteration index and occurrence (the n-th entry of that state in that iteration,
    so loops replay in order). A redrive re-runs the program in the same worker history: a state whose
    key succeeded in an earlier attempt is not evaluated and writes no events, it hands on its recorded
    output to its recorded next state; every other state (the failed one, the Parallel and Map states
    around it, what follows) runs as new. So a failed Parallel reruns only its unsuccessful branches,
    and a Fail state reached through a Catch is what a redrive re-enters (as on AWS). No PENDING_REDRIVE
    phase: the execution is RUNNING when the call returns.

    Evidence: the AWS documents cited above (redrive-executions.html, API_RedriveExecution.html,
    API_DescribeExecution.html). No AWS-recorded history of a redrive was found (no localstack snapshot
    has an `ExecutionRedriven` event).

    Still needed? moto/stepfunctions/responses.py still has no `redrive_execution`, and
    `ExecutionWorker._get_evaluation_environment` puts no `RedriveCount` in the context object (set
    here as each state is entered); tests/e2e/test_redrive.py fails otherwise.
    """
    import copy

    from moto.core.exceptions import AWSError
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramRunning
    from moto.stepfunctions.parser.utils import TMP_THREADS
    from moto.stepfunctions.responses import StepFunctionResponse

    class ExecutionNotRedrivable(AWSError):
        TYPE = "ExecutionNotRedrivable"
        STATUS = 400

    original_body = require(31, CommonStateField, "_eval_body", ("self", "env"))
    original_describe = require(31, StepFunctionResponse, "describe_execution", ("self",))
    require(31, StepFunctionResponse, "_get_param")

    def key_of(state, env) -> tuple[str, tuple]:  # noqa: ANN001
        data = env.states.context_object.context_object_data
        arn = (data.get("Execution") or {}).get("Id") or ""
        index = ((data.get("Map") or {}).get("Item") or {}).get("Index")
        return arn, (state.name, index)

    def eval_body(self, env):  # noqa: ANN001
        arn, where = key_of(self, env)
        attempt = _attempt_of(arn)
        # $$.Execution.RedriveCount, as every state of this attempt sees it
        env.states.context_object.context_object_data["Execution"]["RedriveCount"] = attempt["count"]
        with _redrive_lock:
            occurrence = attempt["counts"].get(where, 0) + 1
            attempt["counts"][where] = occurrence
            done = attempt["succeeded"].get((*where, occurrence))
        if done is not None and attempt["count"] > 0:
            output, next_name, ended = done
            env.states.reset(input_value=copy.deepcopy(output))
            if ended:
                env.set_ended()
            else:
                env.next_state_name = next_name
            return None
        original_body(self, env)
        state = env.program_state()
        if isinstance(state, (ProgramRunning, ProgramEnded)):
            entry = (copy.deepcopy(env.states.get_input()), env.next_state_name, isinstance(state, ProgramEnded))
            with _redrive_lock:
                attempt["succeeded"][(*where, occurrence)] = entry
        return None

    def reason_for(execution) -> str | None:  # noqa: ANN001
        env = getattr(execution.exec_worker, "env", None)
        events = len(env.event_manager.get_event_history()) if env is not None else 0
        sm_type = getattr(execution.sm_type, "value", execution.sm_type)
        status = getattr(execution.exec_status, "value", execution.exec_status)
        return not_redrivable_reason(str(status), str(sm_type), execution.stop_date, events,
                                     datetime.now(tz=timezone.utc))

    def redrive_execution(self):  # noqa: ANN001
        arn = self._get_param("executionArn")
        token = self._get_param("clientToken")
        # ExecutionDoesNotExist / InvalidArn: moto's own, as DescribeExecution answers them
        execution = self.stepfunction_backend.describe_execution(arn)
        attempt = _attempt_of(arn)
        now = datetime.now(tz=timezone.utc)
        with _redrive_lock:
            attempt["tokens"] = [(t, at, d) for t, at, d in attempt["tokens"]
                                 if (now - at).total_seconds() <= REDRIVE_TOKEN_SECONDS][-REDRIVE_TOKENS_KEPT:]
            for seen, _, date in attempt["tokens"]:
                if token and seen == token:
                    return ActionResult({"redriveDate": date})
        reason = reason_for(execution)
        if reason is not None:
            raise ExecutionNotRedrivable(reason)
        old_env = execution.exec_worker.env
        worker = execution._get_start_execution_worker()
        with _redrive_lock:
            attempt["count"] += 1
            attempt["date"] = now
            attempt["counts"] = {}
            if token:
                attempt["tokens"].append((token, now, now))
            count = attempt["count"]
        program = worker._get_evaluation_entrypoint()
        env = worker._get_evaluation_environment()
        env.event_manager = old_env.event_manager
        env.event_manager.add_event(
            context=env.event_history_context, event_type=HistoryEventType.ExecutionRedriven,
            event_details=EventDetails(executionRedrivenEventDetails={"redriveCount": count}))
        worker.env = env
        execution.exec_worker = worker
        execution.exec_status = type(execution.exec_status)("RUNNING")
        execution.stop_date = None
        execution.error = None
        execution.cause = None
        execution.output = None

        def run() -> None:
            program.eval(env)
            worker._execution_communication.terminated()

        thread = threading.Thread(target=run, daemon=True)
        TMP_THREADS.append(thread)
        thread.start()
        return ActionResult({"redriveDate": now})

    def describe_execution(self):  # noqa: ANN001
        result = original_describe(self)
        described = result.result
        arn = described.get("executionArn")
        attempt = _attempt_of(arn)
        execution = self.stepfunction_backend.describe_execution(arn)
        described["redriveCount"] = attempt["count"]
        if attempt["date"] is not None:
            described["redriveDate"] = attempt["date"]
        reason = reason_for(execution)
        described["redriveStatus"] = "REDRIVABLE" if reason is None else "NOT_REDRIVABLE"
        if reason is not None:
            described["redriveStatusReason"] = reason
        return result

    install(31, CommonStateField, "_eval_body", eval_body)
    install(31, StepFunctionResponse, "describe_execution", describe_execution)
    StepFunctionResponse.redrive_execution = redrive_execution
    mark(31, lambda: getattr(StepFunctionResponse, "redrive_execution", None) is redrive_execution)


def probe_callbacks(path: str | None) -> None:
    """The callbacks probe (`--callbacks-log PATH`, off when absent): every `SendTaskSuccess`/`SendTaskFailure`/
    `SendTaskHeartbeat` Step Functions handled is appended to PATH as a JSON line `{"api", "token"
    (first 12 hex of the token's SHA-256, never the token), "accepted", "error", "at"}`, so the soak
    test counts what Step Functions accepted, not what the functions believe they sent."""
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
        def probed(self, task_token, *args, _original=require("callbacks probe", StepFunctionsParserBackend, name), _api=api, **kwargs):  # noqa: ANN001
            try:
                result = _original(self, task_token, *args, **kwargs)
            except Exception as err:
                record(_api, task_token, type(err).__name__)
                raise
            record(_api, task_token, None)
            return result

        install("callbacks probe", StepFunctionsParserBackend, name, probed)
