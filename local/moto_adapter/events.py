"""EventBridge: Lambda and Step Functions rule targets are delivered (patches 3 and 14), scheduled
rules fire (patch 7).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from datetime import datetime, timezone

from .guard import install, mark, require
from .lambda_ import LambdaUnavailable, binary_of, post_invocation


LOCAL_MAX_EVENT_RETRIES = 2


LOG = logging.getLogger("moto_adapter")


def eventbridge_shape(event: dict) -> dict:
    shaped = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(shaped.get("time"), (int, float)):
        shaped["time"] = datetime.fromtimestamp(shaped["time"], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return shaped


def patch_events(endpoint: str) -> None:
    """Patches 3 and 14; targets moto 5.2.5. What AWS does, what moto does, the fix:

    (3) `moto.events.models.Rule.send_to_targets` raises NotImplementedError for Lambda targets (PutEvents
    then answers HTTP 500). Matching events for Lambda targets are now delivered by a background
    thread, like EventBridge's asynchronous (`Event`) invoke; other targets keep moto's behaviour.
    The event is shaped as EventBridge delivers it (ISO `time`, no moto-internal keys; a target
    `Input` replaces it). Failure handling, roughly after the target's `RetryPolicy`: an attempt
    fails when the function is unreachable or returns a function error; it is retried
    min(MaximumRetryAttempts, 2) times with 1 s, 2 s backoff (real EventBridge retries for up to
    24 h, and function errors would be retried by Lambda's async invoke instead); then the event
    goes to the target's `DeadLetterConfig` SQS queue, if any, with ERROR_CODE/ERROR_MESSAGE/
    RULE_ARN/TARGET_ARN message attributes as EventBridge does.

    (14) EventBridge rule targets that are Step Functions state machines are not started by moto (only
    Lambda, SQS, logs and buses are). Matching events now start an execution of the target
    (asynchronously, as EventBridge does; the event, or the target's `Input`, is the execution
    input; the generated name is random, as with EventBridge).

    Evidence (14): Amazon EventBridge User Guide, eb-targets.html (a Step Functions state machine is a
    rule target; the event is the execution's input unless the target's Input replaces it). No
    AWS-recorded history of an execution started by a rule was found.

    Still needed (3)? `Rule.send_to_targets` (moto/events/models.py) still raises NotImplementedError
    for a `lambda` target.
    Still needed (14)? `Rule.send_to_targets` still has no branch for `states` target ARNs.
    """
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = require(3, Rule, "send_to_targets", ("self", "original_event", "transform_input"))

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

    install((3, 7, 14), Rule, "send_to_targets", send_to_targets)


def _start_execution(rule, target: dict, event: dict) -> None:  # noqa: ANN001
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    arn = target["Arn"]
    region, account = arn.split(":")[3], arn.split(":")[4]
    try:
        stepfunctions_parser_backends[account][region].start_execution(
            state_machine_arn=arn, name=str(uuid.uuid4()), execution_input=json.dumps(event))
    except Exception:  # noqa: BLE001 - as EventBridge: a failed target is logged (and dead-lettered on AWS)
        LOG.exception("rule %s: could not start %s", rule.name, arn)


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
    """Patch 7; targets moto 5.2.5. What AWS does, what moto does, the fix:

    Scheduled EventBridge rules never fire in moto, and its `put_rule` accepts only minute/hour/day
    rates. `scheduler_loop` fires every ENABLED rule with a `rate(...)` expression at its rate,
    delivering EventBridge's "Scheduled Event" to its Lambda targets (as 3.); the rate is read from
    the rule CloudFormation created from template.yaml, so a rule switched off (DisableRule) stops
    firing. Locally `rate(N seconds)` is also accepted so that the end-to-end tests can run the
    reconciler every few seconds through the template parameter (AWS: one minute at least). cron
    expressions are not fired locally (logged once). moto's own `send_to_targets` treats a
    scheduled rule (no pattern) as matching every event; scheduled rules now get no PutEvents.

    Still needed? moto/events still has no timer firing `scheduled_expression` rules, and
    `EventsBackend._RATE_REGEX` still has no `second` unit.
    """
    from moto.events.models import EventsBackend

    require(7, EventsBackend, "_RATE_REGEX")
    install(7, EventsBackend, "_RATE_REGEX", RATE)
    thread = threading.Thread(target=scheduler_loop, args=(endpoint,), daemon=True, name="schedules")
    thread.start()
    mark(7, thread.is_alive)


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
