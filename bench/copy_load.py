#!/usr/bin/env python3
"""COPY throughput of the Redshift Data API emulator (`make bench`): a generated CSV file (default
100 MB, 6 columns: integer, varchar, numeric, date, timestamp, boolean) on a local moto S3 is loaded
into PostgreSQL with COPY through the emulator's release build, and the same rows as Parquet
(written by an UNLOAD ... FORMAT AS PARQUET of the loaded table, so the figure is a round trip's
second half). Throughput is the CSV file's bytes over the statement's own duration (DescribeStatement
Duration: S3 GET, parsing, conversion and PostgreSQL's COPY FROM STDIN). Exits 1 when CSV is under
the target (docs/copy-unload.md, "Figures").

    python bench/copy_load.py [--mb 100] [--runs 3] [--target-mb-s 50] [--binary target/release/redshift-data-emulator]
                              [--timeformat 'YYYY-MM-DD HH24:MI:SS']

Needs PostgreSQL (local/pg.sh) and the venv's moto_server; builds the emulator's release binary first
unless --binary is given.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from procs import Processes, free_port  # noqa: E402

ROLE = "iam_role 'arn:aws:iam::123456789012:role/Bench'"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def generate(path: Path, megabytes: int) -> int:
    """A deterministic CSV file of about `megabytes` MB; returns its size in bytes."""
    rnd = random.Random(23)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "Smith, John", "O'Brien"]
    target = megabytes * 1_000_000
    with path.open("w", newline="") as f:
        f.write("id,name,amount,day,at,flag\n")
        i = 0
        chunk = []
        size = 0
        while size < target:
            i += 1
            name = rnd.choice(words)
            if "," in name:
                name = f'"{name}"'
            line = (f"{i},{name} {i % 977},{rnd.randrange(0, 10_000_000) / 100:.2f},"
                    f"2021-{1 + i % 12:02d}-{1 + i % 28:02d},2021-06-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d},"
                    f"{'true' if i % 3 else 'false'}\n")
            chunk.append(line)
            size += len(line)
            if len(chunk) == 10_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--target-mb-s", type=float, default=50.0)
    parser.add_argument("--binary", type=Path, default=None)
    parser.add_argument("--timeformat", default=None, help="COPY's TIMEFORMAT for the CSV load (default: none)")
    args = parser.parse_args()

    binary = args.binary
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "redshift-data-emulator"], cwd=ROOT, check=True)
        binary = ROOT / "target" / "release" / "redshift-data-emulator"
    work = Path(tempfile.mkdtemp(prefix="copy-bench-"))
    procs = Processes(work)
    pg_dir = Path(tempfile.gettempdir()) / f"copy-bench-pg-{os.getpid()}"  # reachable by the postgres user
    try:
        out = subprocess.run(["bash", str(ROOT / "local" / "pg.sh"), "start", str(pg_dir)],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        database_url = out.strip().splitlines()[-1]
        moto_port, emu_port = free_port(), free_port()
        moto_url, emu_url = f"http://127.0.0.1:{moto_port}", f"http://127.0.0.1:{emu_port}"
        moto = procs.start("moto", [str(ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)])
        emu = procs.start("emulator", [str(binary), "--listen", f"127.0.0.1:{emu_port}", "--database-url", database_url,
                                       "--s3-endpoint", moto_url], env={**CREDS, "RUST_LOG": "warn"})
        procs.wait_http(moto, f"{moto_url}/moto-api/")
        procs.wait_http(emu, f"{emu_url}/_emulator/health", ok=lambda s: s == 200)

        s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", **{
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
        data = boto3.client("redshift-data", endpoint_url=emu_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="bench")
        csv_path = work / "data.csv"
        size = generate(csv_path, args.mb)
        s3.upload_file(str(csv_path), "bench", "csv/data.csv")

        def run(sql: str) -> dict:
            sid = data.execute_statement(ClusterIdentifier="bench", Database="dev", Sql=sql)["Id"]
            while True:
                d = data.describe_statement(Id=sid)
                if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                    if d["Status"] != "FINISHED":
                        raise SystemExit(f"{sql[:60]}: {d['Status']} {d.get('Error')}")
                    return d
                time.sleep(0.05)

        table = ("(id bigint, name varchar(32), amount numeric(12,2), day date, at timestamp, flag boolean)")
        run(f"create table t {table}")
        run(f"create table p {table}")
        csv_rates, pq_rates, rows = [], [], 0
        for i in range(args.runs):
            run("truncate t")
            timeformat = f" timeformat '{args.timeformat}'" if args.timeformat else ""
            d = run(f"copy t from 's3://bench/csv/' {ROLE} csv ignoreheader 1{timeformat}")
            seconds = d["Duration"] / 1e9
            rows = d["ResultRows"]
            csv_rates.append(size / 1e6 / seconds)
            print(f"csv run {i + 1}: {rows:,} rows, {size / 1e6:.1f} MB in {seconds:.2f} s = {csv_rates[-1]:.1f} MB/s")
        run(f"unload ('select * from t') to 's3://bench/pq/' {ROLE} format as parquet")
        pq_size = s3.head_object(Bucket="bench", Key="pq/0000_part_00.parquet")["ContentLength"]
        for i in range(args.runs):
            run("truncate p")
            d = run(f"copy p from 's3://bench/pq/' {ROLE} format as parquet")
            seconds = d["Duration"] / 1e9
            pq_rates.append(size / 1e6 / seconds)
            print(f"parquet run {i + 1}: {d['ResultRows']:,} rows ({pq_size / 1e6:.1f} MB Parquet) in {seconds:.2f} s "
                  f"= {pq_rates[-1]:.1f} MB/s of the same rows as CSV, {d['ResultRows'] / seconds:,.0f} rows/s")
        csv_median, pq_median = statistics.median(csv_rates), statistics.median(pq_rates)
        print(f"COPY CSV: median {csv_median:.1f} MB/s ({rows:,} rows, {size / 1e6:.0f} MB; target >= {args.target_mb_s} MB/s)")
        print(f"COPY Parquet: median {pq_median:.1f} MB/s of CSV-equivalent data ({pq_size / 1e6:.1f} MB file)")
        print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
        return 0 if csv_median >= args.target_mb_s else 1
    finally:
        procs.stop_all()
        subprocess.run(["bash", str(ROOT / "local" / "pg.sh"), "stop", str(pg_dir)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
