"""The Backfill workflow on the local stack (statemachine/backfill.asl.json): one ETL run per date as a
startExecution.sync:2 child named bf-<backfillId>-<date>-<attempt>, the per-date table, stop/continue,
a restart that reruns only what failed, and refused ranges.

The module starts and ends on an empty database (the ETL tables dropped), so the files after it see the
fresh database they expect.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from run import follow, start_execution, steps_of
from test_pipeline import dump, original_script, replaced_script

ETL_TABLES = ("customer", "customer_address", "date_dim", "item", "store_sales")
FIVE = ["2021-06-01", "2021-06-02", "2021-06-03", "2021-06-04", "2021-06-05"]
FAILING_DATE = "2021-06-08"


def drop_tables(stack):
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        for t in ETL_TABLES:
            conn.execute(f"drop table if exists {t} cascade")


@pytest.fixture(scope="module", autouse=True)
def empty_database(stack):
    drop_tables(stack)
    yield
    drop_tables(stack)


def backfill(stack, payload, name=None, timeout=120):
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.deployment.outputs["BackfillStateMachineArn"],
                              name=name or f"e2e-backfill-{uuid.uuid4().hex[:8]}",
                              input=payload if isinstance(payload, str) else json.dumps(payload))["executionArn"]
    desc = follow(sfn, arn, echo=print, timeout=timeout)
    return desc, json.loads(desc["output"]) if desc.get("output") else None


def etl_runs(stack) -> dict[str, dict]:
    sfn = stack.client("stepfunctions")
    return {e["name"]: e for e in sfn.list_executions(stateMachineArn=stack.deployment.state_machine_arn,
                                                      maxResults=1000)["executions"]}


def test_a_five_day_backfill_leaves_the_tables_of_five_single_runs_and_a_restart_skips_them(stack):
    sfn = stack.client("stepfunctions")
    for day in FIVE:  # five single runs, one after the other, on an empty database
        arn = start_execution(sfn, stack.deployment.state_machine_arn, day, prefix="e2e-single")
        assert follow(sfn, arn, echo=print, timeout=120)["status"] == "SUCCEEDED"
    singles = dump(stack)
    drop_tables(stack)

    desc, out = backfill(stack, {"from": FIVE[0], "to": FIVE[-1]})
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    assert dump(stack) == singles
    assert [r["date"] for r in out["dates"]] == FIVE  # oldest first by default
    assert (out["succeeded"], out["failed"], out["skipped"], out["days"]) == (5, 0, 0, 5)
    children = []
    for row in out["dates"]:
        assert row["status"] == "SUCCEEDED" and row["attempt"] == 1 and not row["skipped"]
        assert row["executionArn"].endswith(f":bf-{out['backfillId']}-{row['date']}-1")
        child = sfn.describe_execution(executionArn=row["executionArn"])
        assert child["status"] == "SUCCEEDED" and json.loads(child["input"])["runDate"] == row["date"]
        steps = steps_of(json.loads(child["output"]))
        assert row["rowsByStep"] == {s["step"]: s["rows"] for s in steps}
        assert row["rows"] == sum(s["rows"] for s in steps) > 0
        children.append(child)
    assert out["rows"] == sum(r["rows"] for r in out["dates"])
    # RunConcurrency is 1: each run starts after the one before ended, in the table's order
    for before, after in zip(children, children[1:]):
        assert before["stopDate"] <= after["startDate"]

    started = set(etl_runs(stack))
    desc, again = backfill(stack, {"from": FIVE[0], "to": FIVE[-1], "onFailure": "continue"})  # a restart
    assert desc["status"] == "SUCCEEDED"
    assert set(etl_runs(stack)) == started  # nothing ran again
    assert again["backfillId"] == out["backfillId"] and (again["skipped"], again["succeeded"]) == (5, 5)
    assert [(r["executionArn"], r["rows"]) for r in again["dates"]] == [(r["executionArn"], r["rows"]) for r in out["dates"]]
    assert dump(stack) == singles


def test_a_failing_date_under_continue_and_stop_and_a_restart_or_redrive_reruns_only_that_date(stack):
    dates = ["2021-06-07", FAILING_DATE, "2021-06-09"]
    # the failing date loads no sales, so the ValidateSalesData check (row_count min 1) fails it
    broken = original_script(stack, "load_store_sales.sql") + (
        f"\ndelete from store_sales where {{{{run_date}}}}::date = '{FAILING_DATE}'::date\n"
        "  and ss_sold_date_sk in (select d_date_sk from date_dim where d_date = {{run_date}}::date);\n")
    with replaced_script(stack, "load_store_sales.sql", broken):
        desc, out = backfill(stack, {"from": dates[0], "to": dates[-1], "onFailure": "continue", "backfillId": "e2e-cont"})
        assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
        assert [(r["date"], r["status"]) for r in out["dates"]] == [
            (dates[0], "SUCCEEDED"), (FAILING_DATE, "FAILED"), (dates[2], "SUCCEEDED")]
        failed = out["dates"][1]
        assert failed["error"] == "Validation.NoSalesLoaded" and "rows" not in failed
        assert failed["executionArn"].endswith(f":bf-e2e-cont-{FAILING_DATE}-1")
        assert (out["succeeded"], out["failed"]) == (2, 1)

        desc, _ = backfill(stack, {"from": dates[0], "to": dates[-1], "onFailure": "stop", "backfillId": "e2e-stop"})
        # stop: the failed run fails its StartRunStopping Task, uncaught (so that a Redrive reruns that Task)
        assert desc["status"] == "FAILED" and desc["error"] == "States.TaskFailed"
        run = json.loads(desc["cause"])  # the run's DescribeExecution
        assert (run["Name"], run["Status"], run["Error"]) == (f"bf-e2e-stop-{FAILING_DATE}-1", "FAILED",
                                                            "Validation.NoSalesLoaded")
        runs = etl_runs(stack)
        assert f"bf-e2e-stop-{dates[0]}-1" in runs and f"bf-e2e-stop-{FAILING_DATE}-1" in runs
        assert not [n for n in runs if n.startswith(f"bf-e2e-stop-{dates[2]}")]  # stopped before the next date
        stopped = desc["executionArn"]

    # the cause is fixed (the script is back): the restarted backfill reruns the failed date only
    before = set(etl_runs(stack))
    desc, out = backfill(stack, {"from": dates[0], "to": dates[-1], "onFailure": "continue", "backfillId": "e2e-cont"})
    assert desc["status"] == "SUCCEEDED"
    assert set(etl_runs(stack)) - before == {f"bf-e2e-cont-{FAILING_DATE}-2"}
    assert [(r["date"], r["status"], r["attempt"], r["skipped"]) for r in out["dates"]] == [
        (dates[0], "SUCCEEDED", 1, True), (FAILING_DATE, "SUCCEEDED", 2, False), (dates[2], "SUCCEEDED", 1, True)]
    assert (out["failed"], out["skipped"]) == (0, 2)

    # the stopped backfill, redriven (adapter patch 31 emulates RedriveExecution): the failed date's Task
    # runs again and takes the next attempt's name, the date never started runs, the loaded one is kept
    import moto_adapter

    if 31 not in moto_adapter.PATCHES or "RedriveExecution" not in moto_adapter.PATCHES[31][1]:
        pytest.skip("the local stack emulates no RedriveExecution (moto_adapter patch 31)")
    sfn = stack.client("stepfunctions")
    before = set(etl_runs(stack))
    sfn.redrive_execution(executionArn=stopped)
    desc = follow(sfn, stopped, echo=print, timeout=120)
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    assert set(etl_runs(stack)) - before == {f"bf-e2e-stop-{FAILING_DATE}-2", f"bf-e2e-stop-{dates[2]}-1"}
    out = json.loads(desc["output"])
    assert [(r["date"], r["status"], r["attempt"]) for r in out["dates"]] == [
        (dates[0], "SUCCEEDED", 1), (FAILING_DATE, "SUCCEEDED", 2), (dates[2], "SUCCEEDED", 1)]


@pytest.mark.parametrize("payload, error, says", [
    ({"from": "2021-06-02", "to": "2021-06-01"}, "Backfill.RangeReversed", "from 2021-06-02 is after to 2021-06-01"),
    ({"from": "2021-02-27", "to": "2021-02-30"}, "Backfill.InvalidDate", '"2021-02-30"'),
    ({"from": "2021-01-01", "to": "2021-03-01"}, "Backfill.RangeTooLong", "at most 31 (BackfillMaxDays)"),
    ({"from": "2021-06-01", "to": "2021-06-02", "onFailure": "retry"}, "Backfill.InvalidInput", '"retry"'),
    ('"2021-06-01"', "Backfill.InvalidInput", "must be a JSON object"),
])
def test_bad_ranges_fail_at_once_with_named_errors_and_start_nothing(stack, payload, error, says):
    before = set(etl_runs(stack))
    desc, _ = backfill(stack, payload)
    assert (desc["status"], desc["error"]) == ("FAILED", error)
    assert says in desc["cause"]
    assert set(etl_runs(stack)) == before


def test_dry_run_lists_the_dates_and_starts_nothing(stack):
    before = set(etl_runs(stack))
    desc, out = backfill(stack, {"from": "2021-05-30", "to": "2021-06-02", "order": "newestFirst", "dryRun": True})
    assert desc["status"] == "SUCCEEDED"
    assert out["dryRun"] is True and out["days"] == 4
    assert [d["date"] for d in out["dates"]] == ["2021-06-02", "2021-06-01", "2021-05-31", "2021-05-30"]
    assert all(d["name"] == f"bf-{out['backfillId']}-{d['date']}" for d in out["dates"])
    assert set(etl_runs(stack)) == before


def test_a_date_whose_name_a_running_run_holds_fails_as_run_in_progress_without_waiting(stack):
    """A run of the date's name still running under another input: the date's row says so at once
    (no Wait loop), and nothing else is started for it."""
    from test_pipeline import set_faults
    date, sfn = "2021-06-15", stack.client("stepfunctions")
    held = f"bf-e2e-busy-{date}-1"
    set_faults(stack, {"statement_name_contains": f"/{held}/", "delay_ms": 60_000})
    arn = None
    try:
        arn = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn, name=held,
                                  input=json.dumps({"runDate": date, "startedBy": "hand"}))["executionArn"]
        desc, out = backfill(stack, {"from": date, "to": date, "onFailure": "continue", "backfillId": "e2e-busy"},
                             timeout=30)
        assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
        (row,) = out["dates"]
        assert (row["status"], row["error"]) == ("FAILED", "Backfill.RunInProgress"), row
        assert arn in row["cause"]
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        assert not [n for n in etl_runs(stack) if n.startswith(f"bf-e2e-busy-{date}-") and n != held]
    finally:
        if arn:
            sfn.stop_execution(executionArn=arn)
        set_faults(stack, None)
