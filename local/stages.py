#!/usr/bin/env python3
"""Runs `make test`'s stages and prints how long each took (docs/development.md, "make test: stages and time").

    local/stages.py "setup fmt-check clippy" "lint unit" "fuzz-test sam-build-debug" build "test-e2e soak-small"

Each argument is a group of make targets that run at the same time; the groups run in order. A
group pairs CPU-bound stages (cargo) with ones that mostly wait (downloads, the local stack), so the
two cores stay busy. A stage's output goes to its log (<log dir>/<stage>.log) and is printed whole
when the stage ends, so outputs never interleave. The first failed group stops the run: its failed
stages' logs are printed, then the table so far, and the exit status is 1. Standard library only:
it runs before `make setup` has built the venv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_group(stages: list[str], logs: Path, make: str) -> list[tuple[str, float, int]]:
    """Starts every stage of the group, waits for all, prints each log in stage order."""
    running = []
    for stage in stages:
        log = (logs / f"{stage}.log").open("wb")
        started = time.monotonic()
        proc = subprocess.Popen([make, "--no-print-directory", stage], cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
        running.append((stage, proc, log, started))
    results: dict[str, tuple[float, int]] = {}
    pending = list(running)
    while pending:
        for item in list(pending):
            stage, proc, log, started = item
            if proc.poll() is not None:
                results[stage] = (time.monotonic() - started, proc.returncode)
                log.close()
                pending.remove(item)
        time.sleep(0.2)
    for stage, _proc, _log, _started in running:
        seconds, code = results[stage]
        print(f"== make {stage} ({seconds:.0f} s{'' if code == 0 else f', FAILED with exit {code}'})", flush=True)
        sys.stdout.write((logs / f"{stage}.log").read_text(errors="replace"))
        sys.stdout.flush()
    return [(stage, *results[stage]) for stage in stages]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="+", help="make targets; space-separated ones run at the same time")
    parser.add_argument("--logs", type=Path, help="where the stage logs go (default: a temporary directory)")
    args = parser.parse_args(argv)
    make = os.environ.get("MAKE", "make")
    logs = args.logs or Path(tempfile.mkdtemp(prefix="make-test-"))
    logs.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    table: list[tuple[str, str]] = []
    failed = False
    for group in args.groups:
        stages = group.split()
        group_start = time.monotonic()
        results = run_group(stages, logs, make)
        wall = time.monotonic() - group_start
        for stage, seconds, code in results:
            table.append((stage, f"{seconds:6.0f} s" + ("" if code == 0 else "  FAILED")))
        if len(stages) > 1:
            table.append(("  (together)", f"{wall:6.0f} s"))
        if any(code != 0 for _s, _t, code in results):
            failed = True
            break
    print("\nmake test, by stage (stages on one line of the command ran at the same time):")
    for stage, text in table:
        print(f"  {stage:<14} {text}")
    print(f"  {'total':<14} {time.monotonic() - start:6.0f} s")
    print(f"  stage logs: {logs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
