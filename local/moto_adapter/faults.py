"""The adapter's own fault injection for tests (patches 10 and 25, and the ordering of patch 33), and its
test-only time compression (patch 35): a JSON list in `--faults-file`, re-read on every use, off when
absent. Patch 10 lives in lambda_.py, patch 25 in dynamodb.py; patch 33 (stepfunctions.py) reports
every task callback here, so that a fault can order a callback and an invoke's failure
deterministically; patch 35 (stepfunctions.py) asks here how much shorter a Retry's wait is to be.
"""

from __future__ import annotations

import json
import logging
import os
import threading


LOG = logging.getLogger("moto_adapter")


# The orders a `fail_after_invoke` fault can force between its invoke's failure and the task's
# first callback (patch 33): the callback decided on the open attempt, or the failure recorded first.
ORDERS = ("callback_first", "failure_first")
HOLD_SECONDS = 30.0  # the longest an ordered fault holds its invoke's answer for the callback


class Faults:
    """The adapter's own fault injection (patches 10 and 25), read from a JSON file on every use."""

    def __init__(self, path: str | None):
        self.path, self.used = path, {}
        self.lock = threading.Lock()
        # Patch 33's ordering, per task token of an invoke an ordered fault matched: the order, and
        # the event set once Step Functions has handled a callback carrying that token.
        self.ordered: dict[str, tuple[str, threading.Event]] = {}

    def _take(self, kind: str, matches) -> dict | None:  # noqa: ANN001
        """The first fault of `kind` that `matches` and has uses left, counted as used; else None."""
        faults = self._read()
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

    def _read(self) -> list[dict]:
        if not self.path or not os.path.exists(self.path):
            return []
        try:
            with open(self.path) as fh:
                return json.load(fh)
        except (OSError, ValueError) as err:
            LOG.warning("faults file %s unreadable: %s", self.path, err)
            return []

    @staticmethod
    def _invoke_matches(function_name: str, payload: bytes):  # noqa: ANN205
        text = payload.decode(errors="replace").replace(" ", "")

        def matches(f: dict) -> bool:
            if f.get("function_contains", "") not in function_name:
                return False
            wanted = f.get("payload_contains", "")
            return all(w.replace(" ", "") in text for w in ([wanted] if isinstance(wanted, str) else wanted))

        return matches

    def fail_after_invoke(self, function_name: str, payload: bytes) -> dict | None:
        """Patch 10: the fault whose error Step Functions is to see after the function ran, or None.
        Its error name is `error_of(fault)`."""
        return self._take("fail_after_invoke", self._invoke_matches(function_name, payload))

    @staticmethod
    def error_of(fault: dict) -> str:
        return fault.get("error") or "Lambda.ServiceException"

    def arm_order(self, function_name: str, payload: bytes) -> str | None:
        """Patch 33, before the function runs: when the next `fail_after_invoke` fault this invoke
        would take has an `"order"`, the invoke's task token is armed with it (so a callback the
        function itself sends is ordered too) and returned; else None. Nothing is counted as used."""
        matches = self._invoke_matches(function_name, payload)
        with self.lock:
            for i, f in enumerate(self._read()):
                if not f.get("fail_after_invoke") or not matches(f):
                    continue
                if self.used.get(json.dumps(f, sort_keys=True) + str(i), 0) >= int(f.get("times", 1)):
                    continue
                order = f.get("order")
                if order is None:
                    return None
                if order not in ORDERS:
                    LOG.warning("fault %s: order must be one of %s; ignored", f, ORDERS)
                    return None
                token = _task_token(payload)
                if token is None:
                    LOG.warning("fault %s: the invoke's payload has no taskToken to order; ignored", f)
                    return None
                self.ordered.setdefault(token, (order, threading.Event()))
                return token
        return None

    def disarm(self, token: str) -> None:
        """The armed invoke did not fail by the fault (its function failed): its callbacks are plain."""
        with self.lock:
            self.ordered.pop(token, None)

    def order_of(self, token: str) -> str | None:
        """Patch 33: the order armed for this task token, or None."""
        with self.lock:
            armed = self.ordered.get(token)
        return armed[0] if armed else None

    def callback_handled(self, token: str) -> None:
        """Patch 33: Step Functions has handled (accepted or refused) a callback carrying `token`."""
        with self.lock:
            armed = self.ordered.get(token)
        if armed:
            armed[1].set()

    def hold_for_callback(self, token: str, seconds: float = HOLD_SECONDS) -> bool:
        """Patch 10 with an order: waits until a callback carrying `token` has been handled; False
        when none came within `seconds` (the failure is then answered anyway)."""
        with self.lock:
            armed = self.ordered.get(token)
        return armed[1].wait(seconds) if armed else True

    def retry_interval_scale(self, execution_name: str, state_name: str) -> float:
        """Patch 35: the factor a Retry wait of `state_name` in `execution_name` is multiplied by: the
        first `retry_interval_scale` fault whose `execution_contains` and `state` (both optional) match,
        for every wait while it is in the file (no `times`); 1.0 when none does. A factor that is not a
        number in (0, 1] is ignored with a warning: the fault shortens waits, it never lengthens or
        removes them."""
        for f in self._read():
            if "retry_interval_scale" not in f:
                continue
            if f.get("execution_contains", "") not in execution_name or f.get("state", state_name) != state_name:
                continue
            scale = f["retry_interval_scale"]
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
                LOG.warning("fault %s: retry_interval_scale must be a number in (0, 1]; ignored", f)
                continue
            return float(scale)
        return 1.0

    def callback_error(self, text: str) -> str | None:
        """Patch 33's test fault: the error name (e.g. `ThrottlingException`) Step Functions is to
        refuse this task callback with, or None. `text` is the callback's output (SendTaskSuccess) or
        error and cause (SendTaskFailure); a `callback_error` fault matches when it contains every
        string of its `output_contains` (a string or a list). Each refusal counts one of its `times`."""
        def matches(f: dict) -> bool:
            wanted = f.get("output_contains", "")
            return all(w in text for w in ([wanted] if isinstance(wanted, str) else wanted))

        f = self._take("callback_error", matches)
        return str(f["callback_error"]) if f else None

    def dynamodb_error_after_apply(self, execution_name: str, state_name: str, action: str) -> bool:
        """Patch 25: whether this DynamoDB integration call, already applied, is to fail as HTTP 500."""
        return self._take("dynamodb_error_after_apply", lambda f: (
            f.get("execution_contains", "") in execution_name
            and f.get("state", state_name) == state_name
            and str(f.get("action", action)).lower() == action.lower())) is not None


def _task_token(payload: bytes) -> str | None:
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    token = doc.get("taskToken") if isinstance(doc, dict) else None
    return token if isinstance(token, str) and token else None
