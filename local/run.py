"""One execution on the local stack: start it, print progress state by state from the execution
history, then a summary (per-step duration and rows from the output's `$.steps`, and the sales tables'
row counts; a stack started with --pipeline shows the per-step results only)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import lineage

TABLES = ("customer", "customer_address", "date_dim", "item", "store_sales")  # the sales pipeline's
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def start_execution(sfn, state_machine_arn: str, run_date: str | None, prefix: str = "local") -> str:
    """StartExecution with a unique name (moto reuses one default name otherwise)."""
    payload = {"runDate": run_date} if run_date else {}
    name = f"{prefix}-{run_date or 'today'}-{uuid.uuid4().hex[:8]}"
    return sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))["executionArn"]


def follow(sfn, execution_arn: str, echo=print, timeout: float = 600, poll: float = 0.3) -> dict:
    """Print each state's progress as the history grows; return DescribeExecution when it ends."""
    seen, entered = 0, {"_owner": {}, "_failed": set()}
    started_at: datetime | None = None
    deadline = time.monotonic() + timeout
    while True:
        events = _history(sfn, execution_arn)
        for ev in events[seen:]:
            started_at = started_at or ev["timestamp"]
            line = _progress_line(ev, entered, started_at)
            if line:
                echo(line)
        seen = len(events)
        desc = sfn.describe_execution(executionArn=execution_arn)
        if desc["status"] in TERMINAL and seen == len(_history(sfn, execution_arn)):
            return desc
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still {desc['status']} after {timeout:.0f}s")
        time.sleep(poll)


def _history(sfn, arn: str) -> list[dict]:
    events, token = [], None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        page = sfn.get_execution_history(**kw)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def _progress_line(ev: dict, entered: dict, t0: datetime) -> str | None:
    """One line per state transition; a failed task is reported on its state (events are chained
    to the state through previousEventId, which also works for concurrent Parallel branches)."""
    et, ts = ev["type"], ev["timestamp"]
    owner, failed = entered["_owner"], entered["_failed"]
    owner[ev["id"]] = owner.get(ev.get("previousEventId"))
    at = f"[{(ts - t0).total_seconds():6.1f}s]"
    if et == "TaskScheduled":  # a Retry: the state is running again
        failed.discard(owner.get(ev["id"]))
    if et.endswith("StateEntered"):
        name = ev["stateEnteredEventDetails"]["name"]
        owner[ev["id"]] = name
        entered[name] = ts
        return f"  {at} {name:<28} running"
    if et.endswith("StateExited"):
        name = ev["stateExitedEventDetails"]["name"]
        took = (ts - entered.get(name, ts)).total_seconds()
        if name in failed:
            return f"  {at} {name:<28} failed ({took:.1f}s), handled by Catch"
        return f"  {at} {name:<28} succeeded ({took:.1f}s)"
    for key in ("taskFailedEventDetails", "taskTimedOutEventDetails", "executionFailedEventDetails"):
        if key in ev:
            d = ev[key]
            name = "execution" if key.startswith("execution") else (owner.get(ev["id"]) or "task")
            failed.add(name)
            return f"  {at} {name:<28} failed: {d.get('error', '')}: {_short(d.get('cause', ''))}"
    if et == "ExecutionSucceeded":
        return f"  {at} {'execution':<28} succeeded"
    if et in ("ExecutionAborted", "ExecutionTimedOut"):
        return f"  {at} {'execution':<28} {et[9:].lower()}"
    return None


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def steps_of(output: dict) -> list[dict]:
    """Every step result (a dict with a statementId) under `$.steps`, in execution order."""
    found: list[dict] = []

    def walk(node):
        if isinstance(node, dict):
            if "statementId" in node:
                found.append(node)
            else:
                for v in node.values():
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(output.get("steps") or {})
    return found


def table_counts(database_url: str, tables=TABLES) -> dict[str, int | None]:
    import psycopg

    counts: dict[str, int | None] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for t in tables:
            try:
                counts[t] = conn.execute(f"select count(*) from {t}").fetchone()[0]  # noqa: S608 - fixed names
            except psycopg.errors.UndefinedTable:
                counts[t] = None
    return counts


def summary(desc: dict, database_url: str, tables=TABLES, order: list[str] | None = None) -> str:
    """Per-step results (in `order` of step names, if given), then the row counts of `tables` (none:
    no counts line)."""
    lines = []
    if desc.get("output"):
        steps = steps_of(json.loads(desc["output"]))
        if order:
            steps.sort(key=lambda s: order.index(s.get("step")) if s.get("step") in order else len(order))
        lines.append(f"  {'step':<26} {'status':<9} {'duration':>10} {'rows':>8}  statement")
        for s in steps:
            dur = s.get("durationMs")
            lines.append(f"  {s.get('step', '?'):<26} {s.get('status', ''):<9} "
                         f"{(f'{dur / 1000:.2f}s' if isinstance(dur, (int, float)) else '-'):>10} "
                         f"{s.get('rows', '-')!s:>8}  {s.get('statementId', '')}")
    if tables:
        counts = table_counts(database_url, tables)
        lines.append("  " + "  ".join(f"{t}={'-' if n is None else n}" for t, n in counts.items()))
    return "\n".join(lines)


def run_once(stack, run_date: str | None, timeout: float = 600, echo=print) -> int:
    sfn = stack.client("stepfunctions")
    lineage_url = _lineage_url(stack)
    lineage_since = len(lineage.received(lineage_url)["events"]) if lineage_url else 0
    arn = start_execution(sfn, stack.deployment.state_machine_arn, run_date)
    echo(f"execution {arn.rsplit(':', 1)[-1]} (runDate {run_date or 'default'})")
    desc = follow(sfn, arn, echo=echo, timeout=timeout)
    took = (desc.get("stopDate") or desc["startDate"]) - desc["startDate"]
    echo(f"\nexecution {desc['status']} in {took.total_seconds():.1f}s")
    # the table counts are the sales pipeline's; another definition (--pipeline) gets its step results
    # only, in definition order
    custom = getattr(stack, "pipeline", None)
    if custom:
        from pipeline import load
        echo(summary(desc, stack.endpoints.database_url, (), order=load(custom).names))
    else:
        echo(summary(desc, stack.endpoints.database_url))
    if lineage_url:
        events = lineage.wait_until_ended(lineage_url, lineage_since)
        counts = lineage.received(lineage_url)["counts"]
        refused = {k: n for k, n in counts.items() if k != "accepted"}
        echo(f"\nlineage: {len(events)} OpenLineage events received ({lineage_url})"
             + (f"; REFUSED by the receiver: {refused}" if refused else ""))
        echo(lineage.describe(lineage.runs(events)) if events else "  (none)")
    if desc["status"] != "SUCCEEDED":
        echo(f"\nerror: {desc.get('error', '(none recorded)')}\ncause: {desc.get('cause', '(none recorded)')}")
        if getattr(stack, "run_dir", None):
            echo(f"logs: {stack.run_dir / 'logs'} (submitter.log, completer.log, emulator.log, moto.log)")
        return 1
    return 0


def _lineage_url(stack) -> str | None:
    """The receiver's URL when the stack's functions post lineage to it (OpenLineageUrl set to it)."""
    return getattr(stack, "lineage_url", None)


def watch(stack, echo=print, poll: float = 1.0, until: float | None = None) -> None:
    """Live progress of every execution started on the stack from now on, whoever started it (a marker
    object, the trigger workflow, the CLI): each line prefixed with the execution's name. Ctrl-C ends it."""
    import threading

    sfn = stack.client("stepfunctions")
    arn = stack.deployment.state_machine_arn
    seen = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn, maxResults=1000)["executions"]}
    lock = threading.Lock()

    def follow_one(execution_arn: str) -> None:
        name = execution_arn.rsplit(":", 1)[-1]

        def say(line: str) -> None:
            with lock:
                echo(f"{name[:40]:<40} {line.strip()}")
        try:
            desc = follow(sfn, execution_arn, echo=say, timeout=24 * 3600)
            input_ = json.loads(desc.get("input") or "{}")
            say(f"ended {desc['status']} (runDate {input_.get('runDate', 'default')}"
                f"{', trigger ' + json.dumps(input_['trigger']) if 'trigger' in input_ else ''})"
                + (f": {desc.get('error')}: {_short(desc.get('cause', ''))}" if desc["status"] != "SUCCEEDED" else ""))
        except Exception as err:  # noqa: BLE001 - one execution's watcher must not end the others
            say(f"watch failed: {err}")

    echo(f"watching {arn.rsplit(':', 1)[-1]} for new executions (Ctrl-C to stop) ...")
    while until is None or time.monotonic() < until:
        for e in sfn.list_executions(stateMachineArn=arn, maxResults=1000)["executions"]:
            if e["executionArn"] not in seen:
                seen.add(e["executionArn"])
                threading.Thread(target=follow_one, args=(e["executionArn"],), daemon=True).start()
        time.sleep(poll)
