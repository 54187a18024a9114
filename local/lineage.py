"""The OpenLineage events the local receiver (local/openlineage_receiver.py) accepted, read back as runs:
what `make local` prints after its execution and what tests/e2e/test_lineage.py checks.

    from lineage import received, runs, wait_until_ended, describe
    before = len(received(url)["events"])            # before starting an execution
    ...
    got = wait_until_ended(url, since=before)         # its events: every run START-ed has ended
    print(describe(runs(got)))
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime
from dataclasses import dataclass, field

TERMINAL = ("COMPLETE", "FAIL", "ABORT")


@dataclass
class Run:
    """One OpenLineage run (a step's statement, or a whole execution) from its events."""
    run_id: str
    namespace: str
    job: str
    parent_run_id: str | None = None
    parent_job: str | None = None
    events: list[str] = field(default_factory=list)  # event types in arrival order
    inputs: list[str] = field(default_factory=list)  # "<namespace>/<name>", from every event, first seen first
    outputs: list[str] = field(default_factory=list)
    error: str | None = None  # the errorMessage facet's message
    rows: dict[str, int] = field(default_factory=dict)  # output -> outputStatistics.rowCount

    @property
    def terminal(self) -> str | None:
        ends = [e for e in self.events if e in TERMINAL]
        return ends[-1] if ends else None


def received(url: str, timeout: float = 5) -> dict:
    """GET the receiver's listing: {"events": [...], "rejected": [...], "counts": {...}}."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


def runs(events: list[dict]) -> dict[str, Run]:
    """The events grouped by run id, each run's in eventTime order (HTTP posts from different functions
    may arrive out of order; OpenLineage consumers order a run's events by eventTime), runs in order of
    their first event."""
    out: dict[str, Run] = {}
    for ev in sorted(events, key=lambda e: datetime.fromisoformat(e["eventTime"])):
        rid = ev["run"]["runId"]
        run = out.get(rid)
        if run is None:
            parent = (ev["run"].get("facets") or {}).get("parent") or {}
            run = out[rid] = Run(rid, ev["job"]["namespace"], ev["job"]["name"],
                                 (parent.get("run") or {}).get("runId"), (parent.get("job") or {}).get("name"))
        run.events.append(ev.get("eventType") or "OTHER")
        for kind, target in (("inputs", run.inputs), ("outputs", run.outputs)):
            for d in ev.get(kind) or []:
                name = f"{d['namespace']}/{d['name']}"
                if name not in target:
                    target.append(name)
                stats = ((d.get("outputFacets") or {}).get("outputStatistics") or {}) if kind == "outputs" else {}
                if "rowCount" in stats:
                    run.rows[name] = stats["rowCount"]
        message = ((ev["run"].get("facets") or {}).get("errorMessage") or {}).get("message")
        if message:
            run.error = message
    return out


def wait_until_ended(url: str, since: int, timeout: float = 15, parent_grace: float = 3, poll: float = 0.3) -> list[dict]:
    """The events received after the first `since`, once every run among them that started has a terminal
    event and the run the steps name as parent (the execution's) has ended too, or has not appeared
    `parent_grace` seconds after the steps ended; after `timeout` seconds, whatever arrived (the caller's
    checks then say what is missing)."""
    deadline = time.monotonic() + timeout
    steps_ended_at = None
    while True:
        events = received(url)["events"][since:]
        got = runs(events)
        if got and all(r.terminal for r in got.values()):
            parents = {r.parent_run_id for r in got.values() if r.parent_run_id}
            if parents and parents <= set(got):
                return events
            steps_ended_at = steps_ended_at or time.monotonic()
            if time.monotonic() - steps_ended_at >= parent_grace:
                return events
        else:
            steps_ended_at = None
        if time.monotonic() > deadline:
            return events
        time.sleep(poll)


def _short(dataset: str) -> str:
    return dataset.rsplit("/", 1)[-1]


def describe(all_runs: dict[str, Run]) -> str:
    """One line per run, the execution's first: job, its events, and per step inputs -> outputs (rows)
    and the error of a failed step."""
    ordered = sorted(all_runs.values(), key=lambda r: r.parent_run_id is not None)
    namespaces = sorted({d.rsplit("/", 1)[0] for r in ordered for d in r.inputs + r.outputs})
    lines = [f"  job namespace {', '.join(sorted({r.namespace for r in ordered}))}; "
             f"datasets in {', '.join(namespaces) or '-'}"] if ordered else []
    for r in ordered:
        lines.append(f"  {r.job:<40} {' -> '.join(r.events)}")
        if r.parent_run_id is not None:
            outs = [f"{_short(o)}{f' ({r.rows[o]} rows)' if o in r.rows else ''}" for o in r.outputs]
            lines.append(f"      reads  {', '.join(map(_short, r.inputs)) or '-'}")
            lines.append(f"      writes {', '.join(outs) or '-'}")
        if r.error:
            lines.append(f"      error  {' '.join(r.error.split())[:200]}")
    return "\n".join(lines)
