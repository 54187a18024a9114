"""The third pipeline (pipelines/copy_unload/), in plain Redshift SQL, on its own throwaway local stack
started the way `make local DATA=tests/e2e/pipelines/copy_unload/data
PIPELINE=tests/e2e/pipelines/copy_unload/pipeline.toml` starts it: every folder of data/ is a bucket on
the local S3, so its COPY and UNLOAD statements name the buckets as on AWS. Two S3 markers start two
runs (2021-06-27, then 2021-06-28): COPY of gzip CSV and Parquet, the run date's revenue, a MERGE
upsert into running totals (the second run updates one product and inserts another), and an UNLOAD of
the totals as CSV with a header and a manifest, whose content is checked.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from conftest import E2E_PARAMETERS
from run import follow
import secret_scan
from stack import UPSTREAM_BUCKET, LocalStack
from test_safety_net import statements, wait_for
from test_triggers import runs_for_key

HERE = Path(__file__).resolve().parent / "pipelines" / "copy_unload"
TABLES = ("cu_raw_sales", "cu_products", "cu_daily_revenue", "cu_product_totals")
HEADER = "product_code,product_name,category,days,units,revenue,first_sold,last_sold,last_year"


@pytest.fixture(scope="module")
def cu(tmp_path_factory):
    database_url = os.environ.get("E2E_DATABASE_URL") or None
    if database_url:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for t in TABLES:
                conn.execute(f"drop table if exists {t} cascade")
    s = LocalStack(run_dir=tmp_path_factory.mktemp("copy-unload-stack"), database_url=database_url,
                   parameters=E2E_PARAMETERS, pipeline=HERE / "pipeline.toml", data_dir=HERE / "data")
    s.start()
    print(f"\ncopy/unload pipeline stack started in {s.startup_seconds:.1f}s (logs: {s.run_dir}/logs)")
    try:
        yield s
    finally:
        print("\n" + secret_scan.stop_and_check(s))


def rows(stack, sql, *params):
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def marker_run(stack, run_date: str) -> dict:
    key = f"markers/{run_date}.ready"
    stack.client("s3").put_object(Bucket=UPSTREAM_BUCKET, Key=key, Body=b"")
    (run,) = wait_for(lambda: runs_for_key(stack, key), 30, f"the {run_date} marker's run to start")
    desc = follow(stack.client("stepfunctions"), run["executionArn"], echo=print, timeout=180)
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    assert json.loads(desc["input"])["runDate"] == run_date
    return desc


def exported(stack) -> tuple[str, dict]:
    s3 = stack.client("s3")
    body = s3.get_object(Bucket="team-exports", Key="product-totals/000")["Body"].read().decode()
    manifest = json.loads(s3.get_object(Bucket="team-exports", Key="product-totals/manifest")["Body"].read())
    return body, manifest


def test_data_dir_folders_are_buckets_with_their_files(cu):
    s3 = cu.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="team-raw-data")["Contents"])
    assert keys == ["products/products.parquet", "sales/2021-06-27.csv.gz", "sales/2021-06-28.csv.gz"]
    assert s3.list_objects_v2(Bucket="team-exports").get("KeyCount") == 0  # .keep made the bucket only


def test_two_marker_runs_copy_transform_merge_and_unload(cu):
    first = marker_run(cu, "2021-06-27")
    loads = {s["StatementName"].rsplit("/", 1)[-1]: s for s in statements(cu, first["name"])}
    assert loads["Load"]["Status"] == "FINISHED"
    load = cu.redshift_data().describe_statement(Id=loads["Load"]["Id"])
    copy_rows = [s["ResultRows"] for s in load["SubStatements"] if s["QueryString"].lower().startswith("copy")]
    assert copy_rows == [8, 3], "rows loaded are each COPY's rows: 8 sales (2 files), 3 products"
    assert rows(cu, "select product_code, product_name, category, days, units, revenue from cu_product_totals "
                    "order by product_code") == [
        ("P-100", "Widget", "Tools", 1, 3, Decimal("30.00")),
        ("P-200", "Gadget", "Toys", 1, 3, Decimal("13.50")),
        ("P-300", "P-300", "Unknown", 1, 1, Decimal("99.99")),
    ]
    body, _ = exported(cu)
    assert body.splitlines()[0] == HEADER and len(body.splitlines()) == 4

    second = marker_run(cu, "2021-06-28")
    assert rows(cu, "select customers, units, revenue from cu_daily_revenue where sold_on = '2021-06-28' "
                    "and product_code = 'P-400'") == [(1, 4, Decimal("9.00"))]
    body, manifest = exported(cu)
    assert body.splitlines() == [
        HEADER,
        "P-300,P-300,Unknown,1,1,99.99,2021-06-27,2021-06-27,2021",
        "P-100,Widget,Tools,2,4,40.00,2021-06-27,2021-06-28,2021",  # MERGE: matched, updated
        "P-200,Gadget,Toys,1,3,13.50,2021-06-27,2021-06-27,2021",
        "P-400,Gizmo,Toys,1,4,9.00,2021-06-28,2021-06-28,2021",  # MERGE: not matched, inserted
    ]
    assert manifest == {"entries": [{"url": "s3://team-exports/product-totals/000"}]}
    export = statements(cu, second["name"], "Export")[0]
    assert cu.redshift_data().describe_statement(Id=export["Id"])["ResultRows"] == 4, "rows unloaded"
