"""`make soak`: N pipelines at once on a throwaway local stack, through faults drawn from a seed, then
every invariant of "nothing lost, nothing twice" checked, and the figures printed.

    python local/soak.py [--n 100] [--seed S] [--active-limit 10] [--timeout 600] [--json FILE]

Each execution gets its own run date and one scenario (a fault on one of its steps), drawn from the
seed (printed; the same seed replays the same plan). Faults come from the emulator's fault rules
(one rule per execution and step), the adapter's fault file and the emulator's active-statement
limit. The stack runs the template with short reconcile/heartbeat intervals (SOAK_PARAMETERS, template
parameters). Exit status: 0 when every invariant holds, 1 on a violation, 2 when the stack fails.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402

import pipeline  # noqa: E402
from procs import StackError  # noqa: E402
from run import TERMINAL, _history, start_execution  # noqa: E402
import secret_scan  # noqa: E402
from stack import LocalStack  # noqa: E402

RUNNING = ("SUBMITTED", "PICKED", "STARTED")
# SubmitWaitSeconds 0: the scenarios fault the status event (dropped, duplicated, out of order, before
# the response), which a submit wait would bypass for statements that end within it.
SOAK_PARAMETERS = {"ReconcileRate": "rate(3 seconds)", "ReconcileGraceSeconds": "10",
                   "StepHeartbeatSeconds": "20", "StepTimeoutSeconds": "600", "SubmitWaitSeconds": "0"}
SLOW_MS = 30_000  # longer than StepHeartbeatSeconds: only the reconciler's heartbeats keep it alive
WARMUP_DATE = date(2021, 6, 26)
FIRST_DATE = date(2022, 1, 1)
# scenario -> weight; every kind occurs at least once when N >= len(SCENARIOS)
SCENARIOS = {"clean": 3, "drop_event": 2, "duplicate_event": 1, "out_of_order": 1, "event_before_response": 1,
             "slow": 1, "fail_sql": 1, "stop": 1, "submit_fail": 2}


class Plan:
    def __init__(self, n: int, seed: int, definition: pipeline.Pipeline | None = None):
        # the steps of scripts/pipeline.toml, as the generator reads them
        definition = definition or pipeline.load()
        steps = definition.names
        # a failed statement of these ends the run as Redshift.StatementFailed; a step with an
        # `errors` rename of it (ValidateSalesData: Validation.NoSalesLoaded) is left out by design
        failable = definition.failable
        # out_of_order delays the event of a step whose sibling runs at the same time, so that the
        # sibling's completion overtakes it (sales: LoadCustomerAddress, next to LoadItem)
        siblings = definition.with_parallel_sibling
        if not siblings:
            raise StackError(f"{definition.definition}: no two steps run in parallel (out_of_order needs one)")
        rng = random.Random(seed)
        kinds = list(SCENARIOS)
        rng.shuffle(kinds)
        drawn = kinds[:n] + rng.choices(list(SCENARIOS), weights=list(SCENARIOS.values()), k=max(0, n - len(kinds)))
        rng.shuffle(drawn)
        self.runs = []
        for i, kind in enumerate(drawn):
            step = {"fail_sql": rng.choice(failable), "out_of_order": siblings[0],
                    "clean": None}.get(kind, rng.choice(steps))
            self.runs.append({"i": i, "kind": kind, "step": step, "run_date": str(FIRST_DATE + timedelta(days=i)),
                              "name": f"soak-{seed}-{i:03d}-{kind.replace('_', '-')}"})

    def emulator_rules(self) -> dict:
        rules = []
        for r in self.runs:
            match = f"/{r['name']}/{r['step']}"
            fault = {
                "drop_event": {"drop_event": True},
                "duplicate_event": {"duplicate_event": True, "duplicate_event_count": 2},  # delivered three times in all
                "out_of_order": {"event_delay_ms": 2500},
                "event_before_response": {"event_before_response": True},
                "slow": {"delay_ms": SLOW_MS},
                "fail_sql": {"fail_statement": f"injected by the soak test ({r['name']})"},
                "stop": {"delay_ms": 120_000},
            }.get(r["kind"])
            if fault:
                rules.append({"statement_name_contains": match, **fault})
        return {"rules": rules}

    def adapter_faults(self, submitter_name: str) -> list:
        return [{"fail_after_invoke": True, "function_contains": submitter_name, "times": 1,
                 "payload_contains": [f'"executionName":"{r["name"]}"', f'"step":"{r["step"]}"']}
                for r in self.runs if r["kind"] == "submit_fail"]


def post_faults(stack: LocalStack, body: dict) -> None:
    req = urllib.request.Request(f"{stack.endpoints.emulator}/_emulator/faults", method="POST",
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status in (200, 204), resp.read()


def wait_terminal(sfn, arn: str, deadline: float) -> dict:
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] in TERMINAL or time.monotonic() > deadline:
            return desc
        time.sleep(1.0)


def wait_all(sfn, state_machine_arn: str, arns: list[str], deadline: float) -> list[dict]:
    """Every execution's DescribeExecution once it ended (or at the deadline). One ListExecutions
    poll for all of them, not a poll per execution: the soak measures the pipeline, and moto
    serves the harness on the same single core as the pipeline."""
    waiting = set(arns)
    while waiting and time.monotonic() < deadline:
        time.sleep(2.0)
        running, token = set(), None
        while True:
            page = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=1000,
                                       **({"nextToken": token} if token else {}))
            running |= {e["executionArn"] for e in page["executions"]}
            token = page.get("nextToken")
            if not token:
                break
        waiting &= running
    return [sfn.describe_execution(executionArn=arn) for arn in arns]


def stop_when_waiting(stack: LocalStack, sfn, run: dict, deadline: float, done: threading.Event) -> None:
    """StopExecution once the step's statement is submitted (its Task then waits for the callback);
    the emulator, not the execution history, tells when."""
    wanted = f"/{run['name']}/{run['step']}"
    while time.monotonic() < deadline and not done.is_set():
        if any(s.get("StatementName", "").endswith(wanted) for s in statements(stack)):
            time.sleep(1.0)
            sfn.stop_execution(executionArn=run["arn"], error="Soak.Stopped", cause="stopped by the soak test")
            return
        time.sleep(1.0)


# --- checks ------------------------------------------------------------------------------------

def check_outcome(run: dict, desc: dict) -> str | None:
    kind, status = run["kind"], desc["status"]
    if kind == "stop":
        return None if status == "ABORTED" else f"expected ABORTED, got {status}"
    if kind == "fail_sql":
        if status != "FAILED" or desc.get("error") != "Redshift.StatementFailed":
            return f"expected FAILED Redshift.StatementFailed, got {status} {desc.get('error')}"
        step = json.loads(desc.get("cause") or "{}").get("step")
        return None if step == run["step"] else f"failed at {step}, expected {run['step']}"
    if status != "SUCCEEDED":
        return f"expected SUCCEEDED, got {status} {desc.get('error')}: {(desc.get('cause') or '')[:300]}"
    return None


def statements(stack: LocalStack) -> list[dict]:
    data, out, token = stack.redshift_data(), [], None
    while True:
        page = data.list_statements(Status="ALL", MaxResults=100, **({"NextToken": token} if token else {}))
        out += page["Statements"]
        token = page.get("NextToken")
        if not token:
            return out


def pending_items(stack: LocalStack) -> list[dict]:
    ddb, table = stack.client("dynamodb"), stack.deployment.tables["TokenTable"]
    index = stack.deployment.functions["ReconcilerFunction"].env["PENDING_INDEX"]  # as the template declares it
    out, key = [], None
    while True:
        kw = {"TableName": table, "IndexName": index, "KeyConditionExpression": "pending = :p",
              "ExpressionAttributeValues": {":p": {"S": "PENDING"}}, **({"ExclusiveStartKey": key} if key else {})}
        page = ddb.query(**kw)
        out += page["Items"]
        key = page.get("LastEvaluatedKey")
        if not key:
            return out


WAREHOUSE_CHECKS = {
    "SCD2: one current row per item": "select i_item_id from item where i_rec_end_date is null group by 1 having count(*) <> 1",
    "SCD2: no overlapping versions": """select a.i_item_sk, b.i_item_sk from item a join item b
        on a.i_item_id = b.i_item_id and a.i_item_sk < b.i_item_sk
        and a.i_rec_start_date < coalesce(b.i_rec_end_date, date '9999-12-31')
        and b.i_rec_start_date < coalesce(a.i_rec_end_date, date '9999-12-31')""",
    "SCD1: one row per address id": "select ca_address_id from customer_address group by 1 having count(*) <> 1",
    "facts point at current item versions": """select s.ss_ticket_number from store_sales s
        join item i on i.i_item_sk = s.ss_item_sk where i.i_rec_end_date is not null""",
    "no duplicate fact keys": "select ss_item_sk, ss_ticket_number from store_sales group by 1, 2 having count(*) > 1",
    "no duplicate item keys": "select i_item_sk from item group by 1 having count(*) > 1",
}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def step_overheads(events: list[dict], ended_at: dict[str, float]) -> list[float]:
    """Per succeeded step: its statement's end (emulator UpdatedAt) -> the state machine moves on
    (TaskStateExited of that step)."""
    entered, owner, out = {}, {}, []
    for e in events:
        if e["type"] == "TaskStateEntered":
            entered[e["id"]] = e["stateEnteredEventDetails"]["name"]
        owner[e["id"]] = entered.get(e["id"]) or owner.get(e.get("previousEventId"))
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] in ended_at:
            out.append(e["timestamp"].timestamp() - ended_at[e["stateExitedEventDetails"]["name"]])
    return out


def log_counts(stack: LocalStack) -> dict:
    counts = collections.Counter()
    logs = stack.run_dir / "logs"
    lines = [ln for log in logs.glob("reconciler*.log") for ln in log.read_text(errors="replace").splitlines()]
    for line in lines:
        if '"message":"reconciled"' in line:
            fields = json.loads(line).get("fields", {})
            for k in ("lost_events_recovered", "heartbeats", "cancellations", "tasks_closed", "throttled"):
                counts[k] += int(fields.get(k, 0))
    for log in logs.glob("*.log"):
        if log.name.split(".")[0].split("-")[0] in ("submitter", "completer", "reconciler"):
            counts["claim_conflicts"] += log.read_text(errors="replace").count("being completed by another delivery")
    return counts


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the run -----------------------------------------------------------------------------------

def soak(n: int, seed: int, active_limit: int, timeout: float, run_dir: Path,
         concurrency: int) -> tuple[list[str], dict]:
    plan = Plan(n, seed)
    # every run has its own date, so they may all run at once: the run lock allows N holders
    stack = LocalStack(run_dir=run_dir, parameters={**SOAK_PARAMETERS, "RunConcurrency": str(n)},
                       emulator_args=["--max-active-statements", str(active_limit)],
                       function_concurrency=concurrency)
    violations: list[str] = []
    stack.start()
    try:
        print(f"local stack up in {stack.startup_seconds:.1f}s; seed {seed}; N={n}; active-statement limit {active_limit}")
        sfn = stack.client("stepfunctions")
        arn = start_execution(sfn, stack.deployment.state_machine_arn, str(WARMUP_DATE), prefix="soak-warmup")
        warm = wait_terminal(sfn, arn, time.monotonic() + 120)
        if warm["status"] != "SUCCEEDED":
            raise StackError(f"warm-up run (creates the tables) ended {warm['status']}: {warm.get('cause')}")
        post_faults(stack, plan.emulator_rules())
        stack.faults_file.write_text(json.dumps(plan.adapter_faults(stack.deployment.functions["SubmitterFunction"].name)))
        kinds = collections.Counter(r["kind"] for r in plan.runs)
        print("scenarios: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))

        t0 = time.monotonic()
        deadline = t0 + timeout
        for r in plan.runs:
            r["arn"] = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn, name=r["name"],
                                           input=json.dumps({"runDate": r["run_date"]}))["executionArn"]
        done = threading.Event()
        stoppers = [threading.Thread(target=stop_when_waiting, args=(stack, sfn, r, deadline, done), daemon=True)
                    for r in plan.runs if r["kind"] == "stop"]
        for t in stoppers:
            t.start()
        descs = wait_all(sfn, stack.deployment.state_machine_arn, [r["arn"] for r in plan.runs], deadline)
        done.set()
        wall = time.monotonic() - t0
        for r, desc in zip(plan.runs, descs):
            r["desc"] = desc
            problem = check_outcome(r, desc)
            if problem:
                violations.append(f"{r['name']} ({r['step']}): {problem}")

        # settle: the reconciler closes what stopped runs left, the emulator finishes cancelling
        settle_deadline = time.monotonic() + 60
        while time.monotonic() < settle_deadline:
            if not pending_items(stack) and not [s for s in statements(stack) if s["Status"] in RUNNING]:
                break
            time.sleep(1)
        all_statements = statements(stack)
        left = pending_items(stack)
        violations += [f"token item left pending: {i['statementId']['S']} ({i.get('step', {}).get('S')})" for i in left]
        violations += [f"statement left {s['Status']}: {s.get('StatementName')}" for s in all_statements if s["Status"] in RUNNING]
        by_name = collections.Counter(s.get("StatementName") for s in all_statements if s.get("StatementName", "").count("/soak-"))
        violations += [f"{count} statements for one step: {name}" for name, count in by_name.items() if count > 1]

        accepted = collections.Counter()
        for line in stack.callbacks_log.read_text().splitlines() if stack.callbacks_log.exists() else []:
            rec = json.loads(line)
            if rec["api"] != "SendTaskHeartbeat" and rec["accepted"]:
                accepted[rec["token"]] += 1
        violations += [f"task token {tok}… completed {c} times" for tok, c in accepted.items() if c > 1]

        dlq = stack.deployment.queues["StatementEventsDeadLetterQueue"]
        messages = stack.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages") or []
        violations += [f"dead-letter queue message: {m['Body'][:200]}" for m in messages]

        with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
            for what, sql in WAREHOUSE_CHECKS.items():
                bad = conn.execute(sql).fetchall()
                if bad:
                    violations.append(f"warehouse: {what}: {bad[:5]}")
            for r in plan.runs:
                if r["desc"]["status"] == "SUCCEEDED":
                    key = int(r["run_date"].replace("-", ""))
                    (rows,) = conn.execute("select count(*) from store_sales where ss_sold_date_sk = %s", (key,)).fetchone()
                    if rows != 4:
                        violations.append(f"warehouse: {r['run_date']} has {rows} fact rows, expected 4")

        # figures
        ended = {}
        for s in all_statements:
            parts = s.get("StatementName", "").split("/")
            if len(parts) == 3 and s["Status"] == "FINISHED":
                ended[(parts[1], parts[2])] = s["UpdatedAt"].timestamp()
        overheads, throttled = [], 0
        for r in plan.runs:
            events = _history(sfn, r["arn"])
            overheads += step_overheads(events, {step: t for (name, step), t in ended.items() if name == r["name"]})
            throttled += sum(1 for e in events if e["type"] in ("TaskFailed", "LambdaFunctionFailed")
                             and "RedshiftThrottled" in json.dumps(e, default=str))
        counts = log_counts(stack)
        rss = {}
        for c in stack.procs.children:
            fn = c.name.split("-")[0]
            if fn in ("submitter", "completer", "reconciler"):
                rss[fn] = max(rss.get(fn, 0.0), vm_hwm_mib(c.pid))
        figures = {
            "seed": seed, "n": n, "active_limit": active_limit, "wall_s": round(wall, 1),
            "outcomes": dict(collections.Counter(r["desc"]["status"] for r in plan.runs)),
            "faults": dict(kinds), "statements": len(all_statements),
            "lost_events_recovered": counts["lost_events_recovered"], "heartbeats": counts["heartbeats"],
            "cancellations": counts["cancellations"], "tasks_closed_by_reconciler": counts["tasks_closed"],
            "throttled_submits_retried": throttled, "claim_conflicts": counts["claim_conflicts"],
            "overhead_p50_s": round(percentile(overheads, 0.5), 3), "overhead_p99_s": round(percentile(overheads, 0.99), 3),
            "peak_rss_mib": {k: round(v, 1) for k, v in rss.items()},
            "accepted_callbacks": sum(accepted.values()),
        }
        t_scan = time.monotonic()
        secrets = secret_scan.collect(stack)
        t_scan = time.monotonic() - t_scan
    finally:
        stack.stop()
    # no task token or secret seen on the wire in any log of the run, now that every process has ended
    t0 = time.monotonic()
    leaks = secret_scan.scan(run_dir, secrets)
    violations += [f"secret in a log: {leak}" for leak in leaks]
    figures["secret_scan"] = (secret_scan.summary(secrets, run_dir)
                              + f", {len(leaks)} found ({t_scan + time.monotonic() - t0:.1f}s)")
    return violations, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="default: drawn and printed")
    parser.add_argument("--active-limit", type=int, default=10, help="the emulator's --max-active-statements")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for all executions to end")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--run-dir", type=Path, help="keep the stack's logs here (default: a temp dir, removed)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="processes per function (Lambda concurrency; one process = one invocation at a time)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    print(f"soak: N={args.n} seed={seed} (replay: make soak N={args.n} SEED={seed} ACTIVE_LIMIT={args.active_limit})")
    try:
        with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
            run_dir = args.run_dir or Path(tmp)
            violations, figures = soak(args.n, seed, args.active_limit, args.timeout, run_dir, args.concurrency)
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        print(f"  {k:<{width}}  {v}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if violations:
        print(f"\n{len(violations)} invariant violation(s) (seed {seed}):", file=sys.stderr)
        for v in violations:
            print(f"  - {v}", file=sys.stderr)
        return 1
    print(f"\nall invariants hold ({args.n} executions, seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
