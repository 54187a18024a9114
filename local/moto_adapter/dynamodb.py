"""DynamoDB: each item request is atomic (patch 24); the Step Functions DynamoDB integration names
errors as Step Functions does and takes patch 25's fault injection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid

from .faults import Faults
from .guard import install, require


LOG = logging.getLogger("moto_adapter")


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
    """Patch 24; targets moto 5.2.5. What AWS does, what moto does, the fix:

    moto's DynamoDB is not safe for concurrent requests on one item: `update_item` deep-copies the
    item while another request changes it (RuntimeError, HTTP 500, seen on the run lock item when
    a hundred executions acquire it at once), and a conditional write checks and writes in two
    steps, so two concurrent claims could both pass. DynamoDB applies each request to an item
    atomically. Every DynamoDB request (`DynamoHandler.call_action`, parsing to serialising) now
    holds a lock: GetItem/PutItem/UpdateItem/DeleteItem the lock of their item (256 stripes by
    table and key) and a shared gate, every other request (Query, Scan, batches, transactions,
    table operations) the gate alone, exclusively. One lock for all requests was tried first: under
    the GIL its holder was often descheduled while holding it, and every step waited.

    Still needed? moto/dynamodb still takes no lock per item (`update_item` deep-copies the item
    unlocked, conditions are checked and written in two steps); the soak shows HTTP 500s on the lock
    item without it.
    """
    from moto.dynamodb.responses import DynamoHandler

    original = require(24, DynamoHandler, "call_action", ("self",))
    require(24, DynamoHandler, "_get_action")
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

    install(24, DynamoHandler, "call_action", call_action)


# moto names a DynamoDB integration error `DynamoDB.<wire code>`, Step Functions after the AWS SDK for
# Java exception class, which differs from the code for these two (patch 25).
DYNAMODB_SFN_ERROR_NAMES = {"InternalServerError": "InternalServerErrorException",
                            "RequestLimitExceeded": "RequestLimitExceededException"}


def patch_dynamodb_integration(faults: Faults) -> None:
    """Patch 25; targets moto 5.2.5. What AWS does, what moto does, the fix:

    Fault injection for the run lock (the faults file of patch 10): `{"dynamodb_error_after_apply":
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

    Evidence: AWS-recorded histories, localstack/localstack (commit 8b9a79f0)
    tests/aws/services/stepfunctions/v2/error_handling/test_task_service_dynamodb.snapshot.json:
    `TestTaskServiceDynamoDB::test_put_item_no_such_table` (error `DynamoDB.ResourceNotFoundException`,
    the code's own name) and `::test_put_item_invalid_table_name`, `::test_invalid_param`
    (`DynamoDB.AmazonDynamoDBException`, the base class for a ValidationException). No recording of an
    `InternalServerError` or `RequestLimitExceeded` was found: those two names follow the SDK for
    Java's exception classes (Step Functions Developer Guide, connect-ddb.html, names the errors after
    them), unverified against a recorded history.

    Still needed? `StateTaskServiceDynamoDB._error_cause_from_client_error` still names the error
    `DynamoDB.<wire code>`; the fault injection, as patch 10.
    """
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
        StateTaskServiceDynamoDB,
    )

    error_cause = require(25, StateTaskServiceDynamoDB, "_error_cause_from_client_error", ("client_error",))

    def error_cause_from_client_error(client_error):  # noqa: ANN001
        error, cause = error_cause(client_error)
        code = error[len("DynamoDB."):]
        return f"DynamoDB.{DYNAMODB_SFN_ERROR_NAMES.get(code, code)}", cause

    install(25, StateTaskServiceDynamoDB, "_error_cause_from_client_error", staticmethod(error_cause_from_client_error))

    eval_task = require(25, StateTaskServiceDynamoDB, "_eval_service_task",
                        ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"))

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

    install(25, StateTaskServiceDynamoDB, "_eval_service_task", eval_service_task)
