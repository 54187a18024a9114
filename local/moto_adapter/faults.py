"""The adapter's own fault injection for tests (patches 10 and 25): a JSON list in `--faults-file`,
re-read on every use, off when absent. Patch 10 lives in lambda_.py, patch 25 in dynamodb.py.
"""

from __future__ import annotations

import json
import logging
import os
import threading


LOG = logging.getLogger("moto_adapter")


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
