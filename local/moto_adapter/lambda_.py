"""Lambda: invokes go to the real Rust binaries under `cargo lambda watch` (patch 2, with patch 10's
fault injection and patch 22's bound on outstanding invocations).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import uuid

from .faults import HOLD_SECONDS, Faults
from .guard import install, require
from .server import _record


LOG = logging.getLogger("moto_adapter")


class LambdaUnavailable(Exception):
    """The local Lambda endpoint could not run the function (no answer, or not a function error)."""


# cargo lambda 1.9.2 deadlocks when 100 invocations of one function wait in its queue: the
# scheduler holds the request table's write lock while it waits for room in that function's
# bounded queue (capacity 100), and every runtime's `invocation/next` needs the read lock to take
# one out, so no function gets another invocation (patch 22). At most this many invocations per
# function are outstanding at cargo lambda; the others wait here, as in Lambda's own queue.
MAX_OUTSTANDING_PER_FUNCTION = 64
_outstanding: dict[str, threading.BoundedSemaphore] = {}
_outstanding_lock = threading.Lock()


# `--routes-file` (off when absent): a JSON object `{"<route>": {"endpoint": URL, "function": BINARY}}`
# written by local/stack.py for a stack deployed next to the first one (LocalStack.add_stack): its
# functions' packages are `<binary>.<stack>.zip` (deploy.py `route_suffix`) and run under a
# `cargo lambda watch` of their own (cargo lambda serves only the workspace's binary names, one
# process group per name), so two stacks running the same binary with different environments never
# take each other's invocations. A route not in the file goes to the adapter's own endpoint.
_routes: dict = {"path": None, "mtime": None, "table": {}}
_routes_lock = threading.Lock()


def set_routes_file(path: str | None) -> None:
    _routes["path"] = path


def route(endpoint: str, name: str) -> tuple[str, str]:
    """(endpoint, cargo lambda function name) for the function whose package key is `name`."""
    path = _routes["path"]
    if not path:
        return endpoint, name
    with _routes_lock:
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return endpoint, name
        if mtime != _routes["mtime"]:
            with open(path, encoding="utf-8") as fh:
                _routes["table"], _routes["mtime"] = json.load(fh), mtime
        hit = _routes["table"].get(name)
    return (hit["endpoint"], hit["function"]) if hit else (endpoint, name)


def post_invocation(endpoint: str, function_name: str, payload: bytes, timeout: float) -> tuple[bytes, bool]:
    """Patch 22; targets cargo-lambda 1.9.2 (not moto; moto 5.2.5 around it). What cargo lambda does, the fix:

    Not moto: `cargo lambda watch` 1.9.2 deadlocks once 100 invocations of one function are queued
    (`RequestCache::upsert` awaits room in the function's bounded queue while it holds the table's
    write lock, and `pop` for `invocation/next` needs the read lock): every function stops
    receiving invocations and every caller times out. A hundred executions starting at once (the
    soak) reached it. `post_invocation` keeps at most MAX_OUTSTANDING_PER_FUNCTION invocations per
    function at cargo lambda; the rest wait in the adapter (within the invoke's own timeout).

    Still needed? not moto: re-check when cargo-lambda's pin in local/requirements.txt changes
    (`RequestCache::upsert` in its watch crate); the soak (`make soak`) reaches the limit.
    """
    with _outstanding_lock:
        slots = _outstanding.setdefault(function_name, threading.BoundedSemaphore(MAX_OUTSTANDING_PER_FUNCTION))
    waited = time.monotonic()
    acquired = slots.acquire(timeout=timeout)
    _record(f"invoke {function_name} (waiting for a slot)", 0.0, time.monotonic() - waited)
    if not acquired:
        raise LambdaUnavailable(f"{function_name}: {MAX_OUTSTANDING_PER_FUNCTION} invocations outstanding for {timeout:.0f} s")
    started = time.monotonic()
    try:
        return _post(*route(endpoint, function_name), payload, timeout)
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


def patch_lambda(endpoint: str, faults: Faults) -> None:
    """Patches 2 and 10; targets moto 5.2.5. What AWS does, what moto does, the fix:

    (2) `LambdaSimpleBackend.invoke` (which only echoes its payload) is replaced by an HTTP POST of the
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

    (10) Fault injection for tests (`--faults-file`, a JSON list re-read on each invoke, off when
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
    An optional `"order"` forces the order between that failure and the task's first callback
    (patch 33, which decides the attempt's one outcome): the adapter holds the failure answer until
    Step Functions has handled a callback carrying the invoke's `taskToken` (at most HOLD_SECONDS),
    and with `"callback_first"` that callback is decided on the open attempt (accepted: the Task
    succeeds with it and the failure is dropped), with `"failure_first"` the failure is recorded
    first (the attempt is closed as the callback arrives; the callback is refused with TaskTimedOut
    and the Task fails with the error, then retries). A callback the function itself sends while it
    runs is ordered the same way, since the token is armed before the function runs.

    Still needed (2)? `LambdaSimpleBackend.invoke` (moto/awslambda_simple/models.py) still returns the
    payload it was given instead of running anything.
    Still needed (10)? not a moto defect: needed while tests/e2e inject faults through `--faults-file`
    (grep `fail_after_invoke` in tests/).
    """
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda_simple.models import LambdaSimpleBackend

    require(2, LambdaSimpleBackend, "invoke", ("self", "function_name", "qualifier", "body", "headers", "response_headers"))

    def invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
        fn = self.get_function(function_name, qualifier)  # raises the usual not-found error
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        timeout = float(getattr(fn, "timeout", 0) or 3) + 5
        if (headers.get("X-Amz-Invocation-Type") or "") == "Event":
            threading.Thread(target=_invoke_async, args=(endpoint, binary_of(fn), payload, timeout), daemon=True).start()
            return b""
        armed = faults.arm_order(fn.function_name, payload)  # patch 33's ordering, before the function runs
        try:
            result, function_error = post_invocation(endpoint, binary_of(fn), payload, timeout)
        except LambdaUnavailable as err:
            if armed:
                faults.disarm(armed)
            exc = LambdaClientError("ServiceException", str(err))
            exc.code = 500
            raise exc from err
        fault = None if function_error else faults.fail_after_invoke(fn.function_name, payload)
        injected = faults.error_of(fault) if fault else None
        if armed and not injected:
            faults.disarm(armed)
        elif armed:
            order = faults.order_of(armed)
            if faults.hold_for_callback(armed):
                LOG.info("fault: %s ran; its failure is answered after the task's callback was handled (%s)",
                         fn.function_name, order)
            else:
                LOG.warning("fault: %s ran; no callback for its task within %.0f s, its failure answered anyway (%s)",
                            fn.function_name, HOLD_SECONDS, order)
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

    install((2, 10, 22), LambdaSimpleBackend, "invoke", invoke)


def _invoke_async(endpoint: str, name: str, payload: bytes, timeout: float) -> None:
    try:
        body, function_error = post_invocation(endpoint, name, payload, timeout)
        if function_error:
            LOG.warning("async invoke of %s: function error %s", name, body[:500])
    except LambdaUnavailable as err:
        LOG.warning("async invoke of %s failed: %s", name, err)
