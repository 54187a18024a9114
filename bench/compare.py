"""Callback vs callback + wait vs polling vs long polling on one local stack, same SQL, one run (`make bench`; benchmark code only).

    python bench/compare.py [--quick] [--runs N] [--delays 0,5,30] [--wait-seconds 10]
                            [--wait-design-seconds W] [--designs callback,wait,...] [--out DIR]

One throwaway LocalStack (local/stack.py) runs the product (template.yaml) with `SubmitWaitSeconds` 0
(the callback design: every step completed by the status event) and, deployed next to it through the
same path (`LocalStack.add_stack`), the product again with `SubmitWaitSeconds` W (the "callback + wait"
design; default W: template.yaml's default; its functions run under their own routes, and its event
rule only matches its own statements, which the run checks: each stack's token table holds exactly
its own statements) and two baselines: the polling baseline bench/template.yaml
(the original AWS sample's design, every step = submit, `Wait` --wait-seconds, DescribeStatement,
`Choice` looping until FINISHED/FAILED/ABORTED) and the long-polling baseline bench/longpoll.yaml
(every step = one synchronous Lambda Task that submits and long-polls DescribeStatement with
WaitTimeSeconds until the statement ends). All share the Redshift Data API emulator and PostgreSQL
and run the same scripts for the same run date. For every statement duration (the emulator's
`delay_ms` fault, applied to every statement submitted while set), the designs run interleaved (the
order rotates every run), so a noisy machine hits all alike.

Figures, per pipeline run (definitions in the Markdown this writes):
- per-step orchestration overhead: the step's batch ended (emulator `UpdatedAt`, ms) -> Step Functions
  leaves the step (the Task's `TaskStateExited` for the callback designs, the `ChoiceStateExited` of
  the Choice that saw FINISHED for polling; the next state is entered at that instant);
- end-to-end: the execution's startDate -> stopDate;
- state transitions: `*StateEntered` events in GetExecutionHistory (what a Standard workflow bills);
- Lambda concurrency held per running step: Lambda seconds / step seconds (a step runs from its
  first state entered to the exit measured for the overhead);
- Data API calls per step: the emulator's call counter (GET /_emulator/calls) over the run, / steps;
- Lambda invocations: Lambda tasks in the history (TaskScheduled with resourceType lambda) plus,
  for the callback designs, one completer invocation per Data API status-change event (also when the
  submitter's wait already completed the task: the completer then finds it done);
- Lambda GB-s: 128 MB x the sum of the invocations' durations, each rounded up to 1 ms, measured
  from the history (upper bounds, see the Markdown);
- DynamoDB writes: UpdateItem/PutItem/DeleteItem/BatchWriteItem/TransactWriteItems requests moto
  received during the run (moto's request recorder);
- cost per 1,000 pipelines at the list prices in PRICES.

Exit status 1 when a target is missed (TARGET_* below), 2 when the stack or a run fails.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "local"))

import pipeline  # noqa: E402
from deploy import load_template  # noqa: E402
from procs import StackError  # noqa: E402
from run import TERMINAL, _history, start_execution  # noqa: E402
from stack import LOCAL_PARAMETERS, LocalStack  # noqa: E402

POLLING_STACK = "redshift-etl-polling"
LONGPOLL_STACK = "redshift-etl-longpoll"
WAIT_STACK = "redshift-etl-wait"
DESIGNS = ("callback", "wait", "polling", "longpoll")
CALLBACK_DESIGNS = ("callback", "wait")  # the product: a waitForTaskToken Task per step
# template.yaml's default SubmitWaitSeconds: the wait design's W unless --wait-design-seconds says otherwise.
DEFAULT_SUBMIT_WAIT_S = int(load_template(ROOT / "template.yaml")["Parameters"]["SubmitWaitSeconds"]["Default"])
# Step lengths the cost is computed for (not run): 10 minutes and 1 hour.
COMPUTED_STEP_SECONDS = (600, 3600)
# bench/longpoll.yaml: StepTimeout (Lambda's maximum) and the margin the function keeps
# (longpoll_baseline::DEADLINE_MARGIN): one invocation long-polls at most 895 s.
LONGPOLL_INVOCATION_S = 900 - 5
RUN_DATE = "2021-06-26"
MEMORY_GB = 128 / 1024
# AWS list prices, us-east-1, as of 2026-11 (/work/shared/REFERENCE.md; DynamoDB: on-demand write
# request units since the November 2024 price cut).
PRICES_DATE = "2026-11"
PRICES = {
    "transition": 0.025 / 1000,        # Step Functions Standard, per state transition
    "gb_second": 0.0000133334,         # Lambda arm64, per GB-s
    "request": 0.20 / 1_000_000,       # Lambda, per request
    "write": 0.625 / 1_000_000,        # DynamoDB on-demand, per write request unit
}
# The targets `make bench` checks (docs/benchmarks.md, "Callback vs polling vs long polling"):
# 1. vs polling: the callback design's per-step overhead (median over all steps, runs and
#    durations) is under 1 s and under a quarter of the polling baseline's (which waits
#    --wait-seconds per poll);
# 2. vs long polling: its overhead is within TARGET_LONGPOLL_EXTRA_S of long polling's (long
#    polling answers within moments of the end; the callback path adds the event's delivery and
#    the completer: a fraction of a second, which a step of minutes does not notice);
# 3. vs long polling: its cost per 1,000 runs is at most long polling's at every step length of
#    30 s and more (measured at 30 s when run, computed at 10 min and 1 h): Lambda time held
#    for the whole SQL is what long polling pays and the callback design does not.
# 4.-6. the callback + wait design (issue 27): its overhead within TARGET_WAIT_LONGPOLL_S of long
#    polling's for statements that end within the wait, else at most the callback design's +
#    TARGET_WAIT_NOISE_S (the two run the same event path then; the margin is the run-to-run spread
#    of the callback design's median, docs/benchmarks.md); its cost at most TARGET_WAIT_COST_RATIO x
#    min(callback, long polling) at every measured and computed length; its Lambda concurrency per
#    running step at 30 s and longer at most the callback design's + W / step length (+ the same
#    noise margin's share of the step: the submitter's and the completer's measured durations).
TARGET_OVERHEAD_S = 1.0
TARGET_OVERHEAD_RATIO = 0.25
TARGET_LONGPOLL_EXTRA_S = 1.0
TARGET_WAIT_LONGPOLL_S = 0.05
TARGET_WAIT_NOISE_S = 0.05
TARGET_WAIT_COST_RATIO = 1.05
try:
    PIPELINE = pipeline.load()  # scripts/pipeline.toml, as the generator reads it
    STEPS = tuple(PIPELINE.names)
except pipeline.PipelineError as _err:
    sys.exit(f"error: {_err}")
DDB_WRITES = ("UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


@dataclass
class Run:
    design: str
    delay_s: float
    status: str
    e2e_s: float
    overheads: list[float]
    transitions: int
    invocations: int
    gb_s: float
    writes: int
    durations_ms: list[int] = field(default_factory=list)
    step_s: float = 0.0              # sum over the steps of step entered -> step left
    data_api_calls: dict[str, int] = field(default_factory=dict)
    loop_latency_s: list[float] = field(default_factory=list)  # polling: poll period minus the Wait

    @property
    def concurrency(self) -> float:
        """Lambda concurrency held per running step: Lambda seconds / step seconds."""
        return sum(self.durations_ms) / 1000 / self.step_s if self.step_s else 0.0

    @property
    def calls_per_step(self) -> float:
        return sum(self.data_api_calls.values()) / len(STEPS)

    @property
    def cost(self) -> dict[str, float]:
        """Dollars per 1,000 pipeline runs, by item."""
        c = {
            "Step Functions": self.transitions * PRICES["transition"],
            "Lambda requests": self.invocations * PRICES["request"],
            "Lambda GB-s": self.gb_s * PRICES["gb_second"],
            "DynamoDB writes": self.writes * PRICES["write"],
        }
        return {k: v * 1000 for k, v in c.items()}

    @property
    def total_cost(self) -> float:
        return sum(self.cost.values())


# -- the stack ----------------------------------------------------------------------------------

def emulator_faults(stack: LocalStack, faults: dict | None) -> None:
    url = f"{stack.endpoints.emulator}/_emulator/faults"
    req = (urllib.request.Request(url, data=json.dumps(faults).encode(), method="POST",
                                  headers={"Content-Type": "application/json"})
           if faults is not None else urllib.request.Request(url, method="DELETE"))
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


class Recorder:
    """moto's request recorder (/moto-api/recorder): the requests moto received, read incrementally."""

    def __init__(self, stack: LocalStack):
        self.base = f"{stack.endpoints.moto}/moto-api/recorder"
        self.seen = 0
        self._post("reset-recording")
        self._post("start-recording")

    def _post(self, what: str) -> bytes:
        req = urllib.request.Request(f"{self.base}/{what}", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()

    def new_requests(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.base}/download-recording", timeout=60) as resp:
            lines = resp.read().decode().splitlines()
        fresh, self.seen = lines[self.seen:], len(lines)
        return [json.loads(line) for line in fresh if line.strip()]

    def stop(self) -> None:
        try:
            self._post("stop-recording")
            self._post("reset-recording")
        except OSError:
            pass


def ddb_writes(requests: list[dict], table: str = "") -> int:
    """Write requests on `table` (every table when empty)."""
    n = 0
    for r in requests:
        target = {k.lower(): v for k, v in r.get("headers", {}).items()}.get("x-amz-target", "")
        if not target.startswith("DynamoDB_") or target.split(".")[-1] not in DDB_WRITES:
            continue
        body = r.get("body") or ""
        if r.get("body_encoded"):
            body = base64.b64decode(body).decode(errors="replace")
        if not table or table in body:
            n += 1
    return n


# -- one run ------------------------------------------------------------------------------------

def wait_done(sfn, arn: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] in TERMINAL:
            return desc
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still {desc['status']} after {timeout:.0f}s")
        time.sleep(0.2)


def statements_of(rsd, prefix: str) -> dict[str, dict]:
    """The execution's statements by step (StatementName = <stack>/<execution>/<step>), newest wins."""
    out: dict[str, dict] = {}
    kw = {"StatementName": prefix, "Status": "ALL", "MaxResults": 100}
    while True:
        page = rsd.list_statements(**kw)
        for s in page["Statements"]:
            step = s["StatementName"].rsplit("/", 1)[-1]
            if step not in out or s["UpdatedAt"] > out[step]["UpdatedAt"]:
                out[step] = s
        if not page.get("NextToken"):
            return out
        kw["NextToken"] = page["NextToken"]


def owners(events: list[dict]) -> dict[int, str | None]:
    """Each event's state name, through previousEventId (works inside Parallel branches)."""
    owner: dict[int, str | None] = {}
    for ev in events:
        if ev["type"].endswith("StateEntered"):
            owner[ev["id"]] = ev["stateEnteredEventDetails"]["name"]
        else:
            owner[ev["id"]] = owner.get(ev.get("previousEventId"))
    return owner


def measure(design: str, delay_s: float, desc: dict, events: list[dict], statements: dict[str, dict],
            writes: int, calls: dict[str, int] | None = None, wait_s: float = 0,
            handled: dict[str, datetime] | None = None) -> Run:
    """`handled`: for the callback designs, when their completer finished each statement's event
    (statement id -> the completer's "status event handled" log time): the history does not show a
    completer that found the task already completed by the submitter's wait, nor the completion mark a
    completer writes after its callback."""
    owner = owners(events)
    gate_type, gate_name = (("TaskStateExited", "{}") if design in CALLBACK_DESIGNS
                            else ("ChoiceStateExited", "{}Done"))
    entered: dict[str, datetime] = {}
    wait_entered: dict[str, list[datetime]] = {}
    for ev in events:
        if ev["type"].endswith("StateEntered"):
            name = ev["stateEnteredEventDetails"]["name"]
            entered.setdefault(name, ev["timestamp"])  # the first one
            if name.endswith("Wait"):
                wait_entered.setdefault(name, []).append(ev["timestamp"])
    exited: dict[str, datetime] = {}
    for ev in events:
        if ev["type"] == gate_type:
            exited[ev["stateExitedEventDetails"]["name"]] = ev["timestamp"]  # the last one wins
    overheads = []
    for step in STEPS:
        gate = exited.get(gate_name.format(step))
        if gate is None or step not in statements:
            raise StackError(f"{design} {desc['name']}: no exit of {gate_name.format(step)} or no statement for {step}")
        overheads.append((gate - statements[step]["UpdatedAt"]).total_seconds())
    step_s = sum((exited[gate_name.format(step)] - entered[step]).total_seconds() for step in STEPS)
    # polling: the loop's own latency, the time between two polls beyond the Wait
    loop_latency = [(b - a).total_seconds() - wait_s for ts in wait_entered.values() for a, b in zip(ts, ts[1:])]

    # Lambda invocations and their durations (upper bounds from the history, see the Markdown).
    scheduled: dict[str, datetime] = {}
    durations: list[float] = []
    invocations = 0
    for ev in events:
        et = ev["type"]
        if et == "TaskScheduled" and ev["taskScheduledEventDetails"].get("resourceType") == "lambda":
            invocations += 1
            scheduled[owner[ev["id"]]] = ev["timestamp"]
        elif et == "LambdaFunctionScheduled":
            invocations += 1
            scheduled[owner[ev["id"]]] = ev["timestamp"]
        elif et in ("TaskSubmitted", "TaskSucceeded", "TaskFailed") and owner[ev["id"]] in scheduled:
            # The first of them ends the invocation: a synchronous Task's TaskSucceeded/TaskFailed; the
            # submitter's TaskSubmitted (moto records it when the invoke answers), also when its wait
            # completed the task (its SendTaskSuccess precedes its return; TaskSucceeded follows).
            durations.append((ev["timestamp"] - scheduled.pop(owner[ev["id"]])).total_seconds())
    if design in CALLBACK_DESIGNS:
        # One completer invocation per status-change event (one per statement, WithEvent=true), also
        # when the submitter's wait completed the task first (the completer finds it done): from the
        # statement's end to its "status event handled" log line (event publish + delivery + the
        # completer, its callback and its completion mark).
        for step, st in statements.items():
            invocations += 1
            done = (handled or {}).get(st["Id"])
            if done is None:
                raise StackError(f"{design} {desc['name']}: no completer invocation logged for {step} ({st['Id']})")
            durations.append(max(0.001, (done - st["UpdatedAt"]).total_seconds()))
    billed_ms = [max(1, math.ceil(d * 1000)) for d in durations]
    return Run(
        design=design, delay_s=delay_s, status=desc["status"],
        e2e_s=((desc.get("stopDate") or desc["startDate"]) - desc["startDate"]).total_seconds(),
        overheads=overheads,
        transitions=sum(ev["type"].endswith("StateEntered") for ev in events),
        invocations=invocations, gb_s=sum(billed_ms) / 1000 * MEMORY_GB, writes=writes, durations_ms=billed_ms,
        step_s=step_s, data_api_calls=dict(calls or {}), loop_latency_s=loop_latency)


def emulator_calls(stack: LocalStack) -> dict[str, int]:
    with urllib.request.urlopen(f"{stack.endpoints.emulator}/_emulator/calls", timeout=10) as resp:
        return json.loads(resp.read())


def completer_handled(log_dir: Path, route: str, at_least: int = 0, timeout: float = 30) -> dict[str, datetime]:
    """When the completer processes of `route` (completer.<stack>, completer.<stack>-2, ...) logged
    "status event handled", by statement id; waits until there are `at_least` (the status events may
    arrive after the execution ended, when the submitter's wait completed the task)."""
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, datetime] = {}
        for log in sorted(log_dir.glob(f"{route}.log")) + sorted(log_dir.glob(f"{route}-*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if "status event handled" not in line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                sid = (rec.get("fields") or {}).get("statement_id")
                if sid:
                    found[sid] = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00"))
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def check_isolation(stack: LocalStack, stacks: dict[str, str]) -> str:
    """The product deployed twice (callback, callback + wait): each stack's token table holds exactly
    its own statements (StatementName <stack>/...), i.e. neither completer recorded the other's
    events, and how each stack's tasks were completed (`completedBy`). Raises StackError otherwise."""
    rsd, ddb, cfn = stack.redshift_data(), stack.client("dynamodb"), stack.client("cloudformation")
    notes = []
    for design, name in stacks.items():
        own = {st["Id"] for st in statements_of_all(rsd, f"{name}/")}
        table = cfn.describe_stack_resource(StackName=name, LogicalResourceId="TokenTable")[
            "StackResourceDetail"]["PhysicalResourceId"]
        items = []
        kw = {"TableName": table}
        while True:
            page = ddb.scan(**kw)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        ids = {i["statementId"]["S"] for i in items if "statementId" in i}
        if ids != own:
            raise StackError(f"{name}: its token table holds {len(ids - own)} statements of other stacks and lacks "
                             f"{len(own - ids)} of its own")
        by: dict[str, int] = {}
        for i in items:
            who = (i.get("completedBy") or {}).get("S", "none")
            by[who] = by.get(who, 0) + 1
        notes.append(f"{NAMES[design].lower()} ({name}): {len(ids)} statements, all its own, completed by "
                     + ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
    return "; ".join(notes) or "one product stack"


def statements_of_all(rsd, prefix: str) -> list[dict]:
    out, kw = [], {"StatementName": prefix, "Status": "ALL", "MaxResults": 100}
    while True:
        page = rsd.list_statements(**kw)
        out += page["Statements"]
        if not page.get("NextToken"):
            return out
        kw["NextToken"] = page["NextToken"]


def one_run(stack: LocalStack, design: str, arn: str, stack_name: str, delay_s: float, recorder: Recorder,
            timeout: float, wait_s: float) -> Run:
    sfn = stack.client("stepfunctions")
    recorder.new_requests()  # skip what came before this run
    calls_before = emulator_calls(stack)
    route = "completer" if stack_name == stack.stack_name else f"completer.{stack_name}"  # deploy.py's routes
    handled_before = len(completer_handled(stack.procs.log_dir, route)) if design in CALLBACK_DESIGNS else 0
    exec_arn = start_execution(sfn, arn, RUN_DATE, prefix=f"bench-{design}")
    desc = wait_done(sfn, exec_arn, timeout)
    handled = None
    if design in CALLBACK_DESIGNS:  # the status events may still be on their way (the wait design's after the run)
        handled = completer_handled(stack.procs.log_dir, route, handled_before + len(STEPS))
    time.sleep(0.3)  # let late writes (the completer's completion mark) reach moto
    writes = ddb_writes(recorder.new_requests())  # every table: the runs do not overlap
    after = emulator_calls(stack)  # before this script's own ListStatements below
    calls = {op: n - calls_before.get(op, 0) for op, n in after.items() if n - calls_before.get(op, 0)}
    events = _history(sfn, exec_arn)
    statements = statements_of(stack.redshift_data(), f"{stack_name}/{desc['name']}/")
    run = measure(design, delay_s, desc, events, statements, writes, calls, wait_s, handled)
    if run.status != "SUCCEEDED":
        raise StackError(f"{design} execution {desc['name']} ended {run.status}: {desc.get('error')} {desc.get('cause')}")
    return run


# -- statistics and output ------------------------------------------------------------------------

def p90(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(0.9 * len(xs)) - 1)]


def enough_for_p90(xs: list) -> bool:
    return len(xs) >= 10


def figures(runs: list[Run]) -> dict[str, tuple[float, float | None, int]]:
    """figure -> (median, p90 or None, samples)."""
    def fig(xs: list[float]):
        return statistics.median(xs), (p90(xs) if enough_for_p90(xs) else None), len(xs)
    return {
        "overhead": fig([o for r in runs for o in r.overheads]),
        "e2e": fig([r.e2e_s for r in runs]),
        "transitions": fig([r.transitions for r in runs]),
        "invocations": fig([r.invocations for r in runs]),
        "duration": fig([d for r in runs for d in r.durations_ms]),
        "gb_s": fig([r.gb_s for r in runs]),
        "concurrency": fig([r.concurrency for r in runs]),
        "writes": fig([r.writes for r in runs]),
        "calls": fig([r.calls_per_step for r in runs]),
        "cost": fig([r.total_cost for r in runs]),
        **{f"cost:{k}": fig([r.cost[k] for r in runs]) for k in runs[0].cost},
    }


LABELS = {
    "overhead": ("Per-step overhead: statement end → next state (s)", "{:.2f}"),
    "e2e": ("End-to-end wall time per pipeline (s)", "{:.1f}"),
    "transitions": ("State transitions per pipeline", "{:.0f}"),
    "invocations": ("Lambda invocations per pipeline", "{:.0f}"),
    "duration": ("Lambda duration per invocation, upper bound (ms)", "{:.0f}"),
    "gb_s": ("Lambda GB-s per pipeline (128 MB)", "{:.4f}"),
    "concurrency": ("Lambda concurrency held per running step", "{:.3f}"),
    "writes": ("DynamoDB writes per pipeline", "{:.0f}"),
    "calls": ("Data API calls per step", "{:.1f}"),
    "cost:Step Functions": ("… Step Functions transitions ($ / 1,000 runs)", "{:.4f}"),
    "cost:Lambda requests": ("… Lambda requests ($ / 1,000 runs)", "{:.4f}"),
    "cost:Lambda GB-s": ("… Lambda GB-s ($ / 1,000 runs)", "{:.4f}"),
    "cost:DynamoDB writes": ("… DynamoDB writes ($ / 1,000 runs)", "{:.4f}"),
    "cost": ("**Cost per 1,000 pipeline runs ($)**", "{:.4f}"),
}


def cell(value: tuple, fmt: str) -> str:
    med, p, _ = value
    return fmt.format(med) + (f" (p90 {fmt.format(p)})" if p is not None else "")


# -- computed figures at longer steps ------------------------------------------------------------

@dataclass
class Computed:
    """Per pipeline run with every SQL step lasting `step_s` seconds, from measured rates."""
    transitions: float
    invocations: float
    gb_s: float
    writes: float
    calls_per_step: float
    step_s: float = 0.0

    @property
    def concurrency(self) -> float:
        """Lambda concurrency held per running step: Lambda seconds / step seconds."""
        return self.gb_s / MEMORY_GB / (self.step_s * len(STEPS)) if self.step_s else 0.0

    @property
    def cost(self) -> float:
        return 1000 * (self.transitions * PRICES["transition"] + self.invocations * PRICES["request"]
                       + self.gb_s * PRICES["gb_second"] + self.writes * PRICES["write"])


def rates(design: str, results: dict[float, dict[str, list[Run]]], wait_s: float) -> dict[str, float]:
    """Per second of SQL per step, what each figure grows by, from the runs measured:
    - callback and long polling: the slope between the shortest and the longest measured statement
      duration (medians; callback: about 0, nothing of it runs while the SQL does; long polling's
      GB-s: the Lambda held for the whole statement), plus for long polling one re-invocation
      (2 transitions: the Poll Task and its Choice; 1 DescribeStatement) per LONGPOLL_INVOCATION_S;
    - polling: one poll (3 transitions: Wait, Status Task, Choice; 1 invocation of the measured
      median duration; 1 DescribeStatement) per Wait + the measured loop latency.
    """
    delays = sorted(results)
    lo, hi = delays[0], delays[-1]
    med = {d: figures(results[d][design]) for d in delays}
    runs = [r for d in delays for r in results[d][design]]
    n = len(STEPS)

    def slope(key: str) -> float:
        if hi == lo:
            return 0.0
        return max(0.0, (med[hi][key][0] - med[lo][key][0]) / ((hi - lo) * n))

    if design == "polling":
        samples = [x for r in runs for x in r.loop_latency_s]
        latency = statistics.median(samples) if samples else 0.0
        period = wait_s + max(0.0, latency)
        status_ms = statistics.median([d for r in runs for d in r.durations_ms])
        return {"period": period, "latency_samples": len(samples), "transitions": 3 / period, "invocations": 1 / period,
                "gb_s": status_ms / 1000 * MEMORY_GB / period, "writes": 0.0, "calls": 1 / period}
    if design == "wait":
        # Past W the wait runs out and the design is the callback design plus W s of submitter: it grows
        # like itself between the measured durations longer than W (the wait's own cost is already in
        # both), or, with only one such duration measured, like the callback design.
        longer = [d for d in delays if d > wait_design_s(results)]
        if len(longer) < 2:
            if "callback" in designs_of(results):
                return rates("callback", results, wait_s)
            return {"transitions": 0.0, "invocations": 0.0, "gb_s": 0.0, "writes": 0.0, "calls": 0.0}
        lo = longer[0]
    extra = {"transitions": 0.0, "invocations": 0.0, "calls": 0.0}
    if design == "longpoll":
        extra = {"transitions": 2 / LONGPOLL_INVOCATION_S, "invocations": 1 / LONGPOLL_INVOCATION_S,
                 "calls": 1 / 30}  # one long poll per 30 s
    return {"transitions": slope("transitions") + extra["transitions"],
            "invocations": slope("invocations") + extra["invocations"],
            "gb_s": slope("gb_s"), "writes": slope("writes"), "calls": extra["calls"]}


def computed(design: str, results: dict[float, dict[str, list[Run]]], wait_s: float, step_s: float) -> Computed:
    """The longest measured duration's medians, grown at `rates` to steps of `step_s` seconds."""
    hi = max(results)
    base = figures(results[hi][design])
    r = rates(design, results, wait_s)
    grow = (step_s - hi) * len(STEPS)
    return Computed(
        transitions=base["transitions"][0] + r["transitions"] * grow,
        invocations=base["invocations"][0] + r["invocations"] * grow,
        gb_s=base["gb_s"][0] + r["gb_s"] * grow,
        writes=base["writes"][0] + r["writes"] * grow,
        calls_per_step=base["calls"][0] + r["calls"] * (step_s - hi), step_s=step_s)


def designs_of(results: dict[float, dict[str, list[Run]]]) -> list[str]:
    """The designs these results hold (all four unless --designs chose fewer), in DESIGNS order."""
    return [d for d in DESIGNS if d in next(iter(results.values()))]


WAIT_DESIGN_S: dict[str, float] = {"W": float(DEFAULT_SUBMIT_WAIT_S)}  # set by main() from --wait-design-seconds


def wait_design_s(_results: dict | None = None) -> float:
    return WAIT_DESIGN_S["W"]


NAMES = {"callback": "Callback", "wait": "Callback + wait", "polling": "Polling", "longpoll": "Long polling"}


def verdict(delay: float, figs: dict[str, dict]) -> str:
    """One plain sentence: who is cheapest and who is fastest at this duration."""
    cost = {d: figs[d]["cost"][0] for d in figs}
    over = {d: figs[d]["overhead"][0] for d in figs}
    cheapest = min(cost, key=cost.get)
    fastest = min(over, key=over.get)
    return (f"{delay:g} s statements: cheapest {NAMES[cheapest]} (${cost[cheapest]:.3f} / 1,000 runs; "
            + ", ".join(f"{NAMES[d].lower()} ${cost[d]:.3f}" for d in figs) + f"); lowest overhead {NAMES[fastest]} "
            f"({over[fastest]:.2f} s; " + ", ".join(f"{NAMES[d].lower()} {over[d]:.2f} s" for d in figs) + ").")


def markdown(results: dict[float, dict[str, list[Run]]], meta: dict) -> str:
    designs = designs_of(results)
    head = " | ".join(NAMES[d] + (f" ({meta['wait_design']:g} s)" if d == "wait" else "") for d in designs)
    rule = "|---|---|" + "---|" * len(designs)
    lines = [
        "# Callback vs callback + wait vs polling vs long polling: same stack, same SQL, one run",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} at commit `{meta['revision']}` ({meta['machine']}); "
        f"{meta['elapsed']}.",
        f"All {len(designs)} designs ran on one local stack (moto Step Functions interpreter, the Redshift Data API "
        "emulator on PostgreSQL, the Rust Lambdas and the emulator as x86_64 **release** binaries under `cargo lambda "
        f"watch`, {meta['processes']} processes per function: as many as steps may run at once), "
        f"interleaved, {meta['runs']} runs per design and statement duration; callback = the product with "
        f"`SubmitWaitSeconds` 0, callback + wait = the product deployed a second time with `SubmitWaitSeconds` "
        f"{meta['wait_design']:g}; polling `Wait` = {meta['wait']} s (the original "
        "sample's value); long polling `WaitTimeSeconds` = 30 s (the maximum). Statement duration = the emulator's "
        "`delay_ms` on every batch (plus the SQL itself, a few ms). Medians, with the p90 where there are at least "
        f"10 samples (overhead: {len(STEPS)} steps per run; n = samples).",
        "",
        f"| Statement duration | Figure | {head} |",
        rule,
    ]
    figs_by_delay = {}
    for delay, by_design in results.items():
        figs = {d: figures(by_design[d]) for d in designs}
        figs_by_delay[delay] = figs
        lines.append(f"| {delay:g} s | Pipeline runs (overhead samples) | "
                     + " | ".join(f"{len(by_design[d])} ({figs[d]['overhead'][2]})" for d in designs) + " |")
        for key, (label, fmt) in LABELS.items():
            lines.append(f"| {delay:g} s | {label} | " + " | ".join(cell(figs[d][key], fmt) for d in designs) + " |")
    lines += ["", "**Computed, not run** (from the measured rates, see below): per pipeline run with every SQL step "
              "lasting as long as the column says.", "",
              f"| Step length | Figure | {head} |", rule]
    for step_s in COMPUTED_STEP_SECONDS:
        comp = {d: computed(d, results, meta["wait"], step_s) for d in designs}
        label = f"{step_s // 60} min (computed)" if step_s < 3600 else f"{step_s // 3600} h (computed)"
        for name, get, fmt in (("State transitions per pipeline", lambda c: c.transitions, "{:.0f}"),
                               ("Lambda invocations per pipeline", lambda c: c.invocations, "{:.0f}"),
                               ("Lambda GB-s per pipeline", lambda c: c.gb_s, "{:.2f}"),
                               ("Lambda concurrency held per running step", lambda c: c.concurrency, "{:.4f}"),
                               ("Data API calls per step", lambda c: c.calls_per_step, "{:.0f}"),
                               ("**Cost per 1,000 pipeline runs ($)**", lambda c: c.cost, "{:.3f}")):
            lines.append(f"| {label} | {name} | " + " | ".join(fmt.format(get(comp[d])) for d in designs) + " |")
    pr = rates("polling", results, meta["wait"]) if "polling" in designs else {"period": meta["wait"],
                                                                                "latency_samples": 0}
    lines += [
        "",
        "Verdicts, per measured duration (mechanical: cheapest and lowest overhead):",
        "",
        *[f"- {verdict(d, f)}" for d, f in figs_by_delay.items()],
        "",
        "![Overhead and cost per design and statement duration](callback-vs-polling.svg)",
        "",
        "## How each figure is measured",
        "",
        f"- **Per-step overhead**: for each of the {len(STEPS)} SQL steps, the batch's end (the emulator's `UpdatedAt` of the "
        "batch, millisecond precision, from `ListStatements`) → the moment Step Functions leaves the step: the "
        "`TaskStateExited` of the callback Task, or the `ChoiceStateExited` of the polling or long-polling Choice "
        "that saw FINISHED. The next state is entered at that instant (for the two `LoadDimensions` branches, the "
        "branch ends). All timestamps come from the same host clock.",
        "  Polling's overhead is the time from the statement's end to the next poll; polls come every Wait plus the "
        "loop's own latency (a Lambda call and transitions), so it lies between about 0 and the Wait depending on "
        "the phase. Long polling's is the emulator waking the waiting DescribeStatement, the Lambda answering and "
        "one Choice.",
        "- **End-to-end**: `startDate` → `stopDate` of the execution.",
        "- **State transitions**: `*StateEntered` events in `GetExecutionHistory` (a Standard workflow bills each "
        "state entered).",
        "- **Lambda invocations**: `TaskScheduled` events with `resourceType` lambda in the history (callback: the "
        "submitter; polling: submit and every status check; long polling: every step invocation) plus, for the "
        "callback designs, one completer invocation per Data API status-change event (one per statement; with the "
        "wait too, where the completer finds a task the submitter completed and does nothing more). The "
        "reconciler is not counted: it runs per time, not per pipeline (`ReconcileRate` 2 min: 720 invocations a day "
        "however many pipelines run).",
        "- **Lambda GB-s**: 0.125 GB × the sum of the invocations' durations, each rounded up to 1 ms as Lambda "
        "bills. Durations are upper bounds read from the history, including the local invoke path "
        "(moto → cargo lambda → the binary): a synchronous task's `TaskScheduled` → `TaskSucceeded` (polling, long "
        "polling, the run lock), the submitter's `TaskScheduled` → `TaskSubmitted`, and for a completer, in both "
        "callback designs alike, the statement's end → the completer's `status event handled` log line (the "
        "event's publication and delivery, the completer's callback and its completion mark; the history has no "
        "trace of a completer that found the task completed by the submitter's wait). Warm functions, no INIT. "
        "Callback + wait: the submitter's invocation includes its wait; when the wait completed the task, its "
        "`SendTaskSuccess` comes before its return, and the history still shows `TaskSubmitted` (when the invoke "
        "answered) followed by `TaskSucceeded`, so `TaskScheduled` → `TaskSubmitted` is still the invocation.",
        "- **Lambda concurrency held per running step**: those Lambda seconds / the steps' seconds (each step from its "
        "first state entered to the exit above): the share of a concurrent Lambda execution one running step keeps "
        "busy (long polling: about 1, the function waits for the whole SQL).",
        "- **DynamoDB writes**: write requests moto received during the run (moto's request recorder; the runs never "
        "overlap), 1 write request unit each.",
        "- **Data API calls per step**: the emulator's own counter of calls received (`GET /_emulator/calls`) over "
        f"the run, divided by the {len(STEPS)} steps: callback = the submitter's `BatchExecuteStatement` + the completer's "
        "`DescribeStatement`; polling = submit + one `DescribeStatement` per poll; long polling = submit + one "
        "`DescribeStatement` (`WaitTimeSeconds` ≤ 30) per 30 s. A reconciler run (every 2 min, only while tasks "
        "are pending) would be counted too.",
        f"- **Cost per 1,000 runs**, AWS list prices for us-east-1 as of {PRICES_DATE}: Step Functions Standard "
        "$0.025 per 1,000 state transitions; Lambda arm64 $0.0000133334 per GB-s and $0.20 per million requests; "
        "DynamoDB on-demand $0.625 per million write request units. Data API status-change events on the default "
        "bus, CloudWatch Logs and the Data API itself are left out (free, or the same for all designs).",
        "- **Computed rows** (10 min, 1 h): the medians at the longest measured duration, grown per second of SQL "
        "per step at rates taken from these runs: callback and long polling, the slope between the shortest and "
        "the longest duration (long polling's GB-s: the Lambda held for the SQL; callback: ≈ 0); callback + wait, "
        "its slope between the measured durations longer than its wait (its W s of submitter are in both; with one "
        "such duration, the callback design's slope), so it pays the callback design's figures plus the W s of "
        "Lambda it measured per step; plus for long "
        f"polling one re-invocation (2 transitions, 1 call) per {LONGPOLL_INVOCATION_S} s (the 900 s Lambda timeout "
        f"minus the function's 5 s margin) and one DescribeStatement per 30 s; polling, one poll (3 transitions, 1 "
        f"invocation, 1 call) per {pr['period']:.2f} s (the {meta['wait']} s Wait + the measured loop latency"
        + (f", median of {pr['latency_samples']} polls that followed a poll)." if pr["latency_samples"] else
           "; no step was polled twice in these runs, so the latency is taken as 0)."),
        "",
        f"Stacks kept apart: {meta['isolation']}.",
        "",
        f"Targets checked by `make bench`: {meta['target']}.",
        "",
        f"Regenerate: `{meta['regenerate']}`.",
        "",
    ]
    return "\n".join(lines)


def svg(results: dict[float, dict[str, list[Run]]], meta: dict) -> str:
    """Two grouped bar charts (std lib only): per-step overhead median, cost per 1,000 runs (measured
    durations, then the computed 10 min and 1 h steps, marked)."""
    colors = {"callback": "#2b8a3e", "wait": "#f08c00", "polling": "#c92a2a", "longpoll": "#1c7ed6"}
    delays = list(results)
    designs = designs_of(results)
    over = {(f"{d:g} s", des): figures(results[d][des])["overhead"][0] for d in delays for des in designs}
    cost = {(f"{d:g} s", des): figures(results[d][des])["cost"][0] for d in delays for des in designs}
    for step_s in COMPUTED_STEP_SECONDS:
        label = (f"{step_s // 60} min*" if step_s < 3600 else f"{step_s // 3600} h*")
        for des in designs:
            cost[(label, des)] = computed(des, results, meta["wait"], step_s).cost
    panels = [
        ("Per-step orchestration overhead, median (s)", over, "{:.2f}"),
        ("Cost per 1,000 pipeline runs ($, log scale; * computed)", cost, "${:.2f}"),
    ]
    pw, ph, top, left = 480, 260, 60, 60
    width, height = left + len(panels) * (pw + 50), top + ph + 80
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
           f'Callback vs callback + wait ({meta["wait_design"]:g} s) vs polling (Wait {meta["wait"]} s) vs long polling, '
           f'{meta["runs"]} runs each, local stack</text>']
    for i, (title, vals, fmt) in enumerate(panels):
        log = i == 1
        x0 = left + i * (pw + 50)
        groups = list(dict.fromkeys(g for g, _ in vals))
        if log:
            lo_v = min(v for v in vals.values() if v > 0) / 2
            hi_v = max(vals.values()) * 2
            def height_of(v, lo_v=lo_v, hi_v=hi_v):
                return ph * (math.log10(max(v, lo_v)) - math.log10(lo_v)) / (math.log10(hi_v) - math.log10(lo_v))
        else:
            vmax = max(vals.values()) * 1.15 or 1
            def height_of(v, vmax=vmax):
                return ph * v / vmax
        out.append(f'<text x="{x0 + pw / 2}" y="{top - 12}" text-anchor="middle" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{x0}" y1="{top + ph}" x2="{x0 + pw}" y2="{top + ph}" stroke="#333"/>')
        out.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{top + ph}" stroke="#333"/>')
        gw = pw / len(groups)
        bw = gw * 0.8 / len(designs) - 2
        for j, g in enumerate(groups):
            gx = x0 + j * gw + gw * 0.1
            for k, des in enumerate(designs):
                v = vals[(g, des)]
                h = height_of(v)
                bx = gx + k * (bw + 2)
                out.append(f'<rect x="{bx:.1f}" y="{top + ph - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                           f'fill="{colors[des]}"><title>{des}, {g}: {fmt.format(v)}</title></rect>')
                out.append(f'<text x="{bx + bw / 2:.1f}" y="{top + ph - h - 4:.1f}" text-anchor="middle" '
                           f'font-size="9">{fmt.format(v)}</text>')
            out.append(f'<text x="{gx + len(designs) * (bw + 2) / 2:.1f}" y="{top + ph + 16}" '
                       f'text-anchor="middle">{g}</text>')
    ly = top + ph + 44
    for k, des in enumerate(designs):
        lx = left + k * 240
        label = {"callback": "callback (product, wait 0)", "wait": f"callback + wait ({meta['wait_design']:g} s)",
                 "polling": f"polling baseline (Wait {meta['wait']} s)",
                 "longpoll": "long polling (WaitTimeSeconds 30)"}[des]
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colors[des]}"/>')
        out.append(f'<text x="{lx + 18}" y="{ly}">{label}</text>')
    out.append(f'<text x="{left}" y="{ly + 22}" font-size="10" fill="#555">Generated by {meta["regenerate"]} '
               f'on {meta["date"]}; statement durations measured, * = computed from measured rates; details in '
               'callback-vs-polling.md</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def revision() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.system()} {platform.machine()}, {cpus} cores"


def targets(results: dict[float, dict[str, list[Run]]], wait_s: float) -> list[tuple[str, bool]]:
    """The checks `make bench` fails on (TARGET_* above), each as (what was measured, met)."""
    designs = designs_of(results)

    def overhead(design: str) -> float:
        return statistics.median([o for d in results.values() for r in d[design] for o in r.overheads])
    checks = []
    if {"callback", "polling"} <= set(designs):
        cb, po = overhead("callback"), overhead("polling")
        checks.append((f"callback per-step overhead median {cb:.2f} s < {TARGET_OVERHEAD_S:g} s and < "
                       f"{TARGET_OVERHEAD_RATIO:g} × polling's {po:.2f} s",
                       cb < TARGET_OVERHEAD_S and cb < TARGET_OVERHEAD_RATIO * po))
    if {"callback", "longpoll"} <= set(designs):
        cb, lp = overhead("callback"), overhead("longpoll")
        checks.append((f"callback per-step overhead median {cb:.2f} s ≤ long polling's {lp:.2f} s + "
                       f"{TARGET_LONGPOLL_EXTRA_S:g} s", cb <= lp + TARGET_LONGPOLL_EXTRA_S))
        checks += cost_checks(results, wait_s)
    if {"callback", "longpoll", "wait"} <= set(designs):
        checks += wait_checks(results, wait_s)
    return checks


def wait_checks(results: dict[float, dict[str, list[Run]]], wait_s: float) -> list[tuple[str, bool]]:
    """Targets 4-6: the callback + wait design against the callback design and long polling."""
    w = wait_design_s(results)
    checks = []
    for delay, by in results.items():
        ov = {d: figures(by[d])["overhead"][0] for d in ("wait", "callback", "longpoll")}
        if delay <= w:
            checks.append((f"overhead at {delay:g} s (ends within the {w:g} s wait): callback + wait {ov['wait']:.3f} s ≤ "
                           f"long polling {ov['longpoll']:.3f} s + {TARGET_WAIT_LONGPOLL_S:g} s",
                           ov["wait"] <= ov["longpoll"] + TARGET_WAIT_LONGPOLL_S))
        else:
            checks.append((f"overhead at {delay:g} s (outlasts the {w:g} s wait): callback + wait {ov['wait']:.3f} s ≤ "
                           f"callback {ov['callback']:.3f} s + {TARGET_WAIT_NOISE_S:g} s",
                           ov["wait"] <= ov["callback"] + TARGET_WAIT_NOISE_S))
    lengths = [(f"{d:g} s (measured)", {x: figures(results[d][x]) for x in ("wait", "callback", "longpoll")}, d)
               for d in results]
    for step_s in COMPUTED_STEP_SECONDS:
        label = f"{step_s // 60} min (computed)" if step_s < 3600 else f"{step_s // 3600} h (computed)"
        lengths.append((label, {x: computed(x, results, wait_s, step_s) for x in ("wait", "callback", "longpoll")},
                        step_s))
    for label, figs, length in lengths:
        cost = {x: (f["cost"][0] if isinstance(f, dict) else f.cost) for x, f in figs.items()}
        bound = TARGET_WAIT_COST_RATIO * min(cost["callback"], cost["longpoll"])
        checks.append((f"cost at {label}: callback + wait ${cost['wait']:.4f} ≤ {TARGET_WAIT_COST_RATIO:g} × min(callback "
                       f"${cost['callback']:.4f}, long polling ${cost['longpoll']:.4f}) = ${bound:.4f} per 1,000 runs",
                       cost["wait"] <= bound))
    for label, figs, length in lengths:
        if length < 30:
            continue
        conc = {x: (f["concurrency"][0] if isinstance(f, dict) else f.concurrency) for x, f in figs.items()}
        bound = conc["callback"] + (w + TARGET_WAIT_NOISE_S) / length
        checks.append((f"Lambda concurrency per running step at {label}: callback + wait {conc['wait']:.4f} ≤ callback "
                       f"{conc['callback']:.4f} + ({w:g} s + {TARGET_WAIT_NOISE_S:g} s) / {length:g} s = {bound:.4f}",
                       conc["wait"] <= bound))
    return checks


def cost_checks(results: dict[float, dict[str, list[Run]]], wait_s: float) -> list[tuple[str, bool]]:
    """Target 3: the callback design's cost against long polling's at 30 s and longer."""
    checks = []
    for delay in (d for d in results if d >= 30):
        c, lpc = (figures(results[delay][x])["cost"][0] for x in ("callback", "longpoll"))
        checks.append((f"cost at {delay:g} s (measured): callback ${c:.4f} ≤ long polling ${lpc:.4f} per 1,000 runs",
                       c <= lpc))
    for step_s in COMPUTED_STEP_SECONDS:
        c, lpc = (computed(x, results, wait_s, step_s).cost for x in ("callback", "longpoll"))
        checks.append((f"cost at {step_s // 60} min steps (computed): callback ${c:.3f} ≤ long polling ${lpc:.3f} "
                       "per 1,000 runs", c <= lpc))
    return checks


# -- main -----------------------------------------------------------------------------------------

def _on_signal(signum, _frame):  # noqa: ANN001
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs, statement durations 0 and 5 s (< 5 min)")
    parser.add_argument("--runs", type=int, help="runs per design and duration (default 5; quick 2)")
    parser.add_argument("--long-runs", type=int, default=3,
                        help="runs per design for durations of 20 s and more (default 3: 15 overhead samples)")
    parser.add_argument("--delays", help="statement durations in seconds, comma separated (default 0,5,30; quick 0,5)")
    parser.add_argument("--wait-seconds", type=int, default=10, help="the polling Wait (default 10, the sample's)")
    parser.add_argument("--wait-design-seconds", type=int, default=DEFAULT_SUBMIT_WAIT_S,
                        help="SubmitWaitSeconds of the callback + wait design (default: template.yaml's default, "
                             f"{DEFAULT_SUBMIT_WAIT_S})")
    parser.add_argument("--designs", default=",".join(DESIGNS),
                        help=f"the designs to run, comma separated (default all: {','.join(DESIGNS)}); the targets "
                             "that need a design left out are not checked (for sweeps of --wait-design-seconds)")
    parser.add_argument("--out", type=Path, help="where the .md and .svg go (default bench/results; quick: target/bench-quick)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for one execution")
    args = parser.parse_args(argv)
    chosen = [d.strip() for d in args.designs.split(",") if d.strip()]
    if not chosen or any(d not in DESIGNS for d in chosen):
        parser.error(f"--designs: choose from {', '.join(DESIGNS)}")
    if not 0 <= args.wait_design_seconds <= 30:
        parser.error("--wait-design-seconds: 0 to 30 (template.yaml's SubmitWaitSeconds)")
    chosen = tuple(d for d in DESIGNS if d in chosen)
    WAIT_DESIGN_S["W"] = float(args.wait_design_seconds)
    runs = args.runs or (2 if args.quick else 5)
    delays = [float(d) for d in (args.delays or ("0,5" if args.quick else "0,5,30")).split(",")]
    out_dir = args.out or (ROOT / "target" / "bench-quick" if args.quick else ROOT / "bench" / "results")
    regenerate = "make bench" + (" QUICK=1" if args.quick else "") + \
        " (or .venv/bin/python bench/compare.py" + (" --quick" if args.quick else "") + ")"
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # The long-polling function's invocation time: its INVOCATION_SECONDS (= its Timeout, as Lambda's
    # deadline is), not the local runtime API's deadline header, which is a few seconds away whatever
    # the function's timeout (bench/longpoll/src/bin/step.rs). Inherited by the functions' processes.
    os.environ["LOCAL_IGNORE_RUNTIME_DEADLINE"] = "1"
    t0 = time.monotonic()
    results: dict[float, dict[str, list[Run]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as run_dir:
        # As on AWS: release binaries (what `sam build` deploys; a debug build's signing and JSON cost
        # the designs that call more), and as many processes per function as steps may run at once
        # (a Parallel's branches each get a Lambda: long polling holds one per running step, the wait
        # design one per waiting submit; with fewer, an invocation queues behind another's wait).
        # The callback design is the product with SubmitWaitSeconds 0, whatever the template's default;
        # lineage off, the template's default.
        stack = LocalStack(run_dir=Path(run_dir), echo=lambda _: None, profile="release",
                           function_concurrency=max(2, PIPELINE.most_concurrent),
                           parameters={"SubmitWaitSeconds": "0"}, lineage=False)
        recorder = None
        try:
            stack.start()
            designs = {"callback": (stack.deployment.state_machine_arn, stack.stack_name)}
            if "wait" in chosen:
                waiting = stack.add_stack(ROOT / "template.yaml", WAIT_STACK, {
                    **LOCAL_PARAMETERS, "SubmitWaitSeconds": str(args.wait_design_seconds)})
                designs["wait"] = (waiting.state_machine_arn, WAIT_STACK)
            if "polling" in chosen:
                polling = stack.add_stack(ROOT / "bench" / "template.yaml", POLLING_STACK,
                                          {**LOCAL_PARAMETERS, "WaitSeconds": str(args.wait_seconds)})
                designs["polling"] = (polling.state_machine_arn, POLLING_STACK)
            if "longpoll" in chosen:
                longpoll = stack.add_stack(ROOT / "bench" / "longpoll.yaml", LONGPOLL_STACK, dict(LOCAL_PARAMETERS))
                designs["longpoll"] = (longpoll.state_machine_arn, LONGPOLL_STACK)
            print(f"local stack up in {time.monotonic() - t0:.1f}s: {', '.join(chosen)} (callback + wait: "
                  f"{WAIT_STACK}, SubmitWaitSeconds {args.wait_design_seconds}; polling: {POLLING_STACK}, Wait "
                  f"{args.wait_seconds} s; long polling: {LONGPOLL_STACK}); logs: {run_dir}/logs (removed on exit)")
            recorder = Recorder(stack)
            print(f"\n{'duration':>8} {'run':>3} {'design':<9} {'e2e':>7} {'overhead p50':>12} {'trans':>5} "
                  f"{'lambda':>6} {'GB-s':>7} {'conc':>5} {'calls':>5} {'ddb':>4} {'$/1k':>7}")
            for delay in delays:
                emulator_faults(stack, {"delay_ms": int(delay * 1000)})
                results[delay] = {d: [] for d in chosen}
                for i in range(runs if delay < 20 else min(runs, args.long_runs)):
                    k = i % len(chosen)
                    order = chosen[k:] + chosen[:k]  # each design goes first in turn
                    for design in order:
                        arn, name = designs[design]
                        r = one_run(stack, design, arn, name, delay, recorder, args.timeout, args.wait_seconds)
                        results[delay][design].append(r)
                        print(f"{delay:>7g}s {i + 1:>3} {design:<9} {r.e2e_s:>6.1f}s "
                              f"{statistics.median(r.overheads):>11.2f}s {r.transitions:>5} {r.invocations:>6} "
                              f"{r.gb_s:>7.4f} {r.concurrency:>5.2f} {r.calls_per_step:>5.1f} {r.writes:>4} "
                              f"{r.total_cost:>7.4f}", flush=True)
            emulator_faults(stack, None)
            isolation = check_isolation(stack, {d: designs[d][1] for d in ("callback", "wait") if d in designs})
            print(f"stacks kept apart: {isolation}")
        except (StackError, TimeoutError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; stopping the local stack", file=sys.stderr)
            return 130
        finally:
            if recorder:
                recorder.stop()
            stack.stop()
            (ROOT / "moto_recording").unlink(missing_ok=True)  # the recorder's file (moto runs in ROOT)

    checks = targets(results, args.wait_seconds)
    ok = all(passed for _, passed in checks)
    target = "; ".join(f"{text} — {'met' if passed else 'MISSED'}" for text, passed in checks)
    elapsed = time.monotonic() - t0
    meta = {
        "command": " ".join(["bench/compare.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "revision": revision(),
        "runs": runs if all(d < 20 for d in delays) or args.long_runs >= runs
        else f"{runs} (at 20 s and more: {args.long_runs})", "wait": args.wait_seconds, "target": target,
        "wait_design": args.wait_design_seconds, "isolation": isolation, "processes": stack.function_concurrency,
        "elapsed": f"the whole comparison took {elapsed / 60:.1f} min", "regenerate": regenerate,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    md = markdown(results, meta)
    (out_dir / "callback-vs-polling.md").write_text(md)
    (out_dir / "callback-vs-polling.svg").write_text(svg(results, meta))
    print("\n" + md)
    print(f"written: {out_dir / 'callback-vs-polling.md'}, {out_dir / 'callback-vs-polling.svg'}")
    for text, passed in checks:
        print(f"  {'ok    ' if passed else 'MISSED'} {text}")
    if not ok:
        print("error: a benchmark target was missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
