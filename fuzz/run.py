#!/usr/bin/env python3
"""Runs the fuzz targets (built by `cargo fuzz build`) for a set time each and reports, per target,
executions, coverage (edges reached of those instrumented, libFuzzer's `cov`), the corpus and the
findings (crashes, hangs, out-of-memory). Exits 1 if any target found anything.

    fuzz/run.py --seconds 180 [--work .make/fuzz/corpus] [--build release|debug] [--jobs 1] [target ...]

Each target starts from its committed corpus (fuzz/corpus/<target>/, never written) and the
work corpus (<work>/<target>/, where new inputs go). A finding is written to
fuzz/artifacts/<target>/; reproduce it with `fuzz/target/x86_64-unknown-linux-gnu/release/<target>
<file>`, fix it in the product code, and commit the input to fuzz/corpus/<target>/ next to a unit
test in the crate that owns the code.

`--jobs N` runs N targets at a time (each still for `--seconds`, in its own process and directories);
the report lists them in the order given, whatever order they end in.
"""

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
TARGETS = ["event", "task_input", "run_date", "split_statements", "prepare", "translate", "copy_options", "lineage", "vars"]
TARGET_DIR = FUZZ / "target" / "x86_64-unknown-linux-gnu"


def run(target: str, seconds: int, work: Path, timeout: int, build: str) -> dict:
    corpus = FUZZ / "corpus" / target
    (work / target).mkdir(parents=True, exist_ok=True)
    artifacts = FUZZ / "artifacts" / target
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [
        str(TARGET_DIR / build / target),
        str(work / target),
        str(corpus),
        f"-max_total_time={seconds}",
        f"-timeout={timeout}",  # an input that takes longer is a hang: a finding
        "-rss_limit_mb=2048",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
    ]
    env = dict(os.environ, ASAN_OPTIONS="detect_odr_violation=0")
    started = time.monotonic()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.monotonic() - started
    log = done.stdout
    (work / f"{target}.log").write_text(log)

    def last(pattern: str, default: str = "?") -> str:
        found = re.findall(pattern, log)
        return found[-1] if found else default

    findings = re.findall(r"Test unit written to (\S+)", log)
    return {
        "target": target,
        "seconds": elapsed,
        "runs": last(r"stat::number_of_executed_units:\s*(\d+)"),
        "per_second": last(r"stat::average_exec_per_sec:\s*(\d+)"),
        "cov": last(r"cov: (\d+)"),
        "edges": last(r"\((\d+) inline 8-bit counters\)"),
        "features": last(r"ft: (\d+)"),
        "corpus": last(r"corp: (\d+)/"),
        "findings": findings,
        "exit": done.returncode,
        "tail": "\n".join(log.splitlines()[-40:]),
    }


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=180, help="per target")
    parser.add_argument("--work", type=Path, default=FUZZ.parent / ".make" / "fuzz" / "corpus")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument(
        "--build",
        choices=["release", "debug"],
        default="release",
        help="which build of the targets: `cargo fuzz build` (release) or `cargo fuzz build --dev`",
    )
    parser.add_argument("--jobs", type=positive, default=1, help="targets fuzzed at a time (each for --seconds)")
    parser.add_argument("targets", nargs="*", default=TARGETS)
    args = parser.parse_args()
    for target in args.targets:
        if not (TARGET_DIR / args.build / target).is_file():
            sys.exit(f"{TARGET_DIR / args.build / target} is not built: run `make fuzz-build`")

    def one(target: str) -> dict:
        print(f"fuzzing {target} for {args.seconds} s ...", flush=True)
        result = run(target, args.seconds, args.work, args.timeout, args.build)
        if result["findings"] or result["exit"] != 0:
            print(f"{target}:\n{result['tail']}", file=sys.stderr, flush=True)
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, args.targets))  # in the order given, whatever order they end in
    print()
    header = f"{'target':<18}{'seconds':>8}{'executions':>12}{'exec/s':>9}{'coverage (edges)':>18}{'features':>10}{'corpus':>8}  findings"
    print(header)
    print("-" * len(header))
    failed = False
    for r in results:
        cov = f"{r['cov']}/{r['edges']}"
        findings = ", ".join(r["findings"]) or ("none" if r["exit"] == 0 else f"exit {r['exit']}")
        failed |= bool(r["findings"]) or r["exit"] != 0
        print(f"{r['target']:<18}{r['seconds']:>8.0f}{r['runs']:>12}{r['per_second']:>9}{cov:>18}{r['features']:>10}{r['corpus']:>8}  {findings}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
