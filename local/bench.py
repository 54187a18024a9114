"""End-to-end benchmark on a throwaway local stack (`make bench`): start-up time, execution latency,
per-step callback latency and the Lambdas' peak memory, checked against targets (exit 1 on a miss).

    python local/bench.py [--runs 5] [--run-date 2021-06-26]

Execution time is Step Functions' own startDate -> stopDate. A step's callback latency is
TaskSubmitted -> TaskSucceeded in the execution history: from the submitter's return to the
completer's SendTaskSuccess (the SQL, the status-change event and the completer); "submit" is
TaskScheduled -> TaskSubmitted (the submitter's invocation). Peak RSS is
VmHWM from /proc/<pid>/status of the submitter and completer processes (the x86_64 debug binaries
the stack runs, not the arm64 release build deployed to AWS), read after the last execution.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import StackError  # noqa: E402
from run import TERMINAL, _history, start_execution  # noqa: E402
from stack import LocalStack  # noqa: E402

# Targets, with generous headroom over what a loaded 2-core machine measures (docs/benchmarks.md):
# the original polling design took about 60 s per run; the functions are deployed with 128 MB.
EXEC_P50_TARGET_S = 5.0
EXEC_MAX_TARGET_S = 10.0
RSS_TARGET_MIB = 64.0
LAMBDAS = ("submitter", "completer")


def wait(sfn, arn: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] in TERMINAL:
            return desc
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still {desc['status']} after {timeout:.0f}s")
        time.sleep(0.05)


def step_latencies(events: list[dict]) -> dict[str, tuple[float, float]]:
    """Per Task state: (TaskScheduled -> TaskSubmitted, TaskSubmitted -> TaskSucceeded) in seconds.
    Events reach their state through previousEventId, which also works inside Parallel branches."""
    owner: dict[int, str | None] = {}
    at: dict[tuple[str, str], float] = {}
    for ev in events:
        if ev["type"].endswith("StateEntered"):
            owner[ev["id"]] = ev["stateEnteredEventDetails"]["name"]
        else:
            owner[ev["id"]] = owner.get(ev.get("previousEventId"))
        if ev["type"] in ("TaskScheduled", "TaskSubmitted", "TaskSucceeded") and owner[ev["id"]]:
            at[(owner[ev["id"]], ev["type"])] = ev["timestamp"].timestamp()
    return {name: (at[(name, "TaskSubmitted")] - at[(name, "TaskScheduled")],
                   at[(name, "TaskSucceeded")] - at[(name, "TaskSubmitted")])
            for (name, kind) in at if kind == "TaskSucceeded"
            and (name, "TaskSubmitted") in at and (name, "TaskScheduled") in at}


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise StackError(f"no VmHWM for pid {pid}")


def bench(stack: LocalStack, runs: int, run_date: str, timeout: float) -> bool:
    sfn = stack.client("stepfunctions")
    execs, walls, steps = [], [], {}
    print(f"\n{'run':>3}  {'status':<10} {'execution':>9} {'wall':>7}")
    for i in range(1, runs + 1):
        t0 = time.monotonic()
        arn = start_execution(sfn, stack.deployment.state_machine_arn, run_date, prefix="bench")
        desc = wait(sfn, arn, timeout)
        walls.append(time.monotonic() - t0)
        took = ((desc.get("stopDate") or desc["startDate"]) - desc["startDate"]).total_seconds()
        execs.append((desc["status"], took))
        print(f"{i:>3}  {desc['status']:<10} {took:>8.2f}s {walls[-1]:>6.2f}s")
        for name, lat in step_latencies(_history(sfn, arn)).items():
            steps.setdefault(name, []).append(lat)

    print(f"\n{'step':<24} {'submit p50':>10} {'callback p50':>12} {'callback max':>12}")
    for name, lats in steps.items():
        sub, cb = [s for s, _ in lats], [c for _, c in lats]
        print(f"{name:<24} {statistics.median(sub):>9.2f}s {statistics.median(cb):>11.2f}s {max(cb):>11.2f}s")

    pids = {c.name: c.pid for c in stack.procs.children}
    rss = {name: peak_rss_mib(pids[name]) for name in LAMBDAS}

    times = [t for _, t in execs]
    p50, worst = statistics.median(times), max(times)
    checks = [
        (f"executions SUCCEEDED: {sum(s == 'SUCCEEDED' for s, _ in execs)}/{runs}",
         all(s == "SUCCEEDED" for s, _ in execs)),
        (f"execution p50 {p50:.2f}s < {EXEC_P50_TARGET_S:.0f}s", p50 < EXEC_P50_TARGET_S),
        (f"execution max {worst:.2f}s < {EXEC_MAX_TARGET_S:.0f}s", worst < EXEC_MAX_TARGET_S),
        *((f"{name} peak RSS {mib:.1f} MiB < {RSS_TARGET_MIB:.0f} MiB", mib < RSS_TARGET_MIB)
          for name, mib in rss.items()),
    ]
    print(f"\nstack start-up {stack.startup_seconds:.1f}s; wall p50 {statistics.median(walls):.2f}s "
          f"(start_execution to SUCCEEDED seen by a 50 ms poll)")
    for text, ok in checks:
        print(f"  {'ok    ' if ok else 'MISSED'} {text}")
    return all(ok for _, ok in checks)


def _on_signal(signum, _frame):  # noqa: ANN001
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="sequential executions (default 5)")
    parser.add_argument("--run-date", default="2021-06-26")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for one execution")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with tempfile.TemporaryDirectory(prefix="local-bench-") as run_dir:
        stack = LocalStack(run_dir=Path(run_dir), echo=lambda _: None, lineage=False)  # figures with lineage off, the default
        try:
            stack.start()
            print(f"local stack up in {stack.startup_seconds:.1f}s (logs: {run_dir}/logs, removed on exit)")
            ok = bench(stack, args.runs, args.run_date, args.timeout)
        except (StackError, TimeoutError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted; stopping the local stack", file=sys.stderr)
            return 130
        finally:
            stack.stop()
    if not ok:
        print("error: a benchmark target was missed", file=sys.stderr)
        return 1
    print("all benchmark targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
