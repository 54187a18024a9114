"""A Backfill on the local stack (`make backfill FROM=2021-06-01 TO=2021-06-05 [ORDER=newestFirst]
[ON_FAILURE=continue] [DRY_RUN=1] [BACKFILL_ID=...] [KEEP=1]`): starts the Backfill state machine of
template.yaml (statemachine/backfill.asl.json) and prints live progress, one line per date's ETL run as
it starts and ends, then the per-date table of the backfill's output.

It uses the stack running in --run-dir (`make local-up`) when there is one, so that a second backfill
over the same range finds the runs of the first (a restart: loaded dates are skipped, failed ones rerun);
otherwise it starts a throwaway stack and stops it afterwards (KEEP=1 leaves it running).

    python local/backfill.py --from 2021-06-01 --to 2021-06-05 [--order newestFirst] [--on-failure continue]
                             [--dry-run] [--backfill-id ID] [--keep] [--run-dir .local-stack]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import StackError  # noqa: E402
from run import TERMINAL, _short  # noqa: E402
from stack import ROOT, STACK_NAME, AttachedStack, LocalStack  # noqa: E402


def backfill_arn(stack) -> str:
    """The stack's `BackfillStateMachineArn` output (template.yaml), as CloudFormation reports it."""
    outputs = getattr(stack.deployment, "outputs", None)
    if not outputs:
        (described,) = stack.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []}
    if "BackfillStateMachineArn" not in outputs:
        raise StackError("the deployed stack has no BackfillStateMachineArn output (redeploy: make local-down, make local-up)")
    return outputs["BackfillStateMachineArn"]


def _plan_of(sfn, arn: str) -> dict | None:
    """The Plan Task's result (backfillId, dates) once it is in the history."""
    for ev in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]:
        if ev["type"] == "TaskSucceeded":
            payload = json.loads(ev["taskSucceededEventDetails"].get("output") or "{}").get("Payload") or {}
            if "backfillId" in payload and "dates" in payload:
                return payload
    return None


def run_backfill(stack, payload: dict, echo=print, timeout: float = 3600, poll: float = 0.5) -> int:
    """Start a backfill, print its runs as they start and end, then its table. 0 when it succeeded."""
    sfn = stack.client("stepfunctions")
    etl = stack.deployment.state_machine_arn
    name = f"local-backfill-{payload['from']}-{payload['to']}-{uuid.uuid4().hex[:6]}"
    arn = sfn.start_execution(stateMachineArn=backfill_arn(stack), name=name, input=json.dumps(payload))["executionArn"]
    echo(f"backfill {name}: {json.dumps(payload)}")
    t0, plan, seen, deadline = time.monotonic(), None, {}, time.monotonic() + timeout
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if plan is None:
            plan = _plan_of(sfn, arn)
            if plan:
                echo(f"  plan: {plan['days']} dates, {plan['order']}, onFailure {plan['onFailure']}, "
                     f"backfillId {plan['backfillId']} (runs bf-{plan['backfillId']}-<date>-<attempt>)")
        if plan and not plan.get("dryRun"):
            prefix = f"bf-{plan['backfillId']}-"
            runs = sfn.list_executions(stateMachineArn=etl, maxResults=1000)["executions"]
            for e in sorted(runs, key=lambda e: (e["status"] == "RUNNING", e["startDate"])):  # ends first
                if not e["name"].startswith(prefix) or seen.get(e["name"]) == e["status"]:
                    continue
                date, attempt = e["name"][len(prefix):len(prefix) + 10], e["name"].rsplit("-", 1)[-1]
                at = f"[{time.monotonic() - t0:6.1f}s]"
                if e["name"] not in seen and e["status"] != "RUNNING" and e["startDate"].timestamp() < desc["startDate"].timestamp():
                    seen[e["name"]] = e["status"]  # an earlier backfill's run of this id: the table says skipped
                    continue
                if e["status"] == "RUNNING":
                    echo(f"  {at} {date}  attempt {attempt}  running    {e['name']}")
                else:
                    ended = sfn.describe_execution(executionArn=e["executionArn"])
                    took = (ended["stopDate"] - ended["startDate"]).total_seconds()
                    why = f"  {ended.get('error', '')}" if e["status"] != "SUCCEEDED" else ""
                    echo(f"  {at} {date}  attempt {attempt}  {e['status'].lower():<10} ({took:.1f}s){why}")
                seen[e["name"]] = e["status"]
        if desc["status"] in TERMINAL:
            break
        if time.monotonic() > deadline:
            echo(f"backfill still {desc['status']} after {timeout:.0f}s: {arn}")
            return 1
        time.sleep(poll)
    took = (desc["stopDate"] - desc["startDate"]).total_seconds()
    echo(f"\nbackfill {desc['status']} in {took:.1f}s")
    if desc.get("output"):
        echo(table(json.loads(desc["output"])))
    if desc["status"] != "SUCCEEDED":
        echo(f"\nerror: {desc.get('error', '(none)')}\ncause: {_short(desc.get('cause', ''), 600)}")
        return 1
    return 0


def table(out: dict) -> str:
    """The backfill's output as a table (a dry run: the dates and their runs' names)."""
    if out.get("dryRun"):
        lines = [f"  dry run: {out['days']} dates would run ({out['order']}, onFailure {out['onFailure']}); nothing was started",
                 f"  {'date':<11} first run's name"]
        lines += [f"  {d['date']:<11} {d['name']}-1" for d in out["dates"]]
        return "\n".join(lines)
    lines = [f"  {'date':<11} {'status':<10} {'attempt':>7} {'rows':>6}  {'skipped':<7}  execution / error"]
    for r in out["dates"]:
        lines.append(f"  {r['date']:<11} {r['status']:<10} {r['attempt']:>7} {r.get('rows', '-')!s:>6}  "
                     f"{'yes' if r.get('skipped') else 'no':<7}  {r['executionArn'].rsplit(':', 1)[-1]}"
                     + (f"  {r['error']}" if r.get("error") else ""))
    lines.append(f"  {out['succeeded']} succeeded ({out['skipped']} already loaded), {out['failed']} failed, "
                 f"{out['rows']} rows")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Backfill a date range on the local stack.")
    p.add_argument("--from", dest="from_", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--order", default="", help="oldestFirst (default) or newestFirst")
    p.add_argument("--on-failure", default="", help="stop (default) or continue")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--backfill-id", default="")
    p.add_argument("--keep", action="store_true", help="leave a stack started here running")
    p.add_argument("--run-dir", type=Path, default=ROOT / ".local-stack")
    args = p.parse_args(argv)
    payload = {"from": args.from_, "to": args.to}
    for key, value in (("order", args.order), ("onFailure", args.on_failure), ("backfillId", args.backfill_id)):
        if value:
            payload[key] = value
    if args.dry_run:
        payload["dryRun"] = True

    run_dir = args.run_dir.resolve()
    try:
        if (run_dir / "state.json").exists():
            print(f"using the local stack running in {run_dir}")
            return run_backfill(AttachedStack.load(run_dir), payload)
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    def on_signal(signum, _frame):  # noqa: ANN001
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack = LocalStack(run_dir=run_dir)
    keep = args.keep
    try:
        print(f"starting the local stack ({run_dir}) ...")
        stack.start()
        print(f"local stack up in {stack.startup_seconds:.1f}s")
        code = run_backfill(stack, payload)
        if keep:
            stack.detach()
            print(f"stack left running; endpoints in {run_dir / 'env'}; stop it with `make local-down`")
        return code
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; stopping the local stack", file=sys.stderr)
        keep = False
        return 130
    finally:
        if not keep:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
