"""S3: each write of a key gets a new, increasing `sequencer` in its EventBridge event (patch 15).
"""

from __future__ import annotations

import threading
import time

from .guard import install, require


def patch_s3_sequencer() -> None:
    """Patch 15; targets moto 5.2.5. What AWS does, what moto does, the fix:

    moto's S3 puts a constant `sequencer` ("617f08299329d189") into every EventBridge "Object
    Created" event. S3 gives each write of a key a new, increasing sequencer (redeliveries of one
    event keep it); the trigger workflow names runs after it. `_send_event_bridge_message` now
    sets a per-write increasing sequencer.

    Still needed? moto/s3/notifications.py still hard-codes `"sequencer": "617f08299329d189"`.
    """
    import itertools

    from moto.s3 import notifications

    from moto.events.models import Rule as _Rule

    require(15, _Rule, "send_to_targets")
    original = require(15, notifications, "_send_event_bridge_message", ("account_id", "bucket", "event_name", "key"))
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

    install(15, notifications, "_send_event_bridge_message", send)
