"""A second, differently shaped pipeline on its own throwaway local stack, deployed the way
`make local PIPELINE=tests/e2e/pipelines/diamond/pipeline.toml` deploys it (LocalStack(pipeline=...):
the generated state machine in place of statemachine/etl.asl.json, the scripts from the definition's
directory). The pipeline is a diamond (Stage -> Orders, Customers -> Enrich) and a four-way fan-out
(Enrich -> RevenueByRegion, CheckTotals, TopCustomers and the TotalsMatch check -> Publish), see
pipelines/diamond/.

Step durations come from the emulator's fault rules (delay_ms keeps a statement SUBMITTED before it
runs); the order of the steps is read from the emulator's statement timestamps (CreatedAt = submitted,
UpdatedAt = ended). The tests run in file order on one stack.
"""

from __future__ import annotations

import json
import os
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

import pipeline
from conftest import E2E_PARAMETERS
from run import follow, run_once
import secret_scan
from stack import LocalStack
from test_pipeline import put_script, set_faults
from test_safety_net import statements, wait_for

DIAMOND = Path(__file__).resolve().parent / "pipelines" / "diamond" / "pipeline.toml"
RUN_DATE = "2021-06-26"
RUNNING = ("SUBMITTED", "PICKED", "STARTED")
FAN_OUT = ("RevenueByRegion", "CheckTotals", "TopCustomers", "TotalsMatch")
FAILING = "CheckTotals"  # the step whose SQL the failure test breaks; its `errors` renames the failure
DMD_TABLES = ("dmd_raw_orders", "dmd_raw_customers", "dmd_orders", "dmd_customers", "dmd_enriched",
              "dmd_revenue_by_region", "dmd_checks", "dmd_top_customers", "dmd_report")


@pytest.fixture(scope="module")
def definition():
    return pipeline.load(DIAMOND)


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    """Its own stack (moto, emulator, functions; PostgreSQL unless E2E_DATABASE_URL, whose dmd_* tables
    it drops), with the e2e template parameters: the reconciler every 2 s."""
    database_url = os.environ.get("E2E_DATABASE_URL") or None
    if database_url:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for t in DMD_TABLES:
                conn.execute(f"drop table if exists {t} cascade")
    s = LocalStack(run_dir=tmp_path_factory.mktemp("custom-stack"), database_url=database_url,
                   parameters=E2E_PARAMETERS, pipeline=DIAMOND)
    s.start()
    print(f"\ncustom pipeline stack started in {s.startup_seconds:.1f}s (logs: {s.run_dir}/logs)")
    try:
        yield s
    finally:
        print("\n" + secret_scan.stop_and_check(s))  # no token or secret in its logs (conftest.py)


# --- helpers -----------------------------------------------------------------------------------

def delays(name: str, per_step: dict[str, int]) -> dict:
    """Emulator fault rules: each listed step of execution `name` stays SUBMITTED this many ms."""
    return {"rules": [{"statement_name_contains": f"/{name}/{step}", "delay_ms": ms} for step, ms in per_step.items()]}


def execute(stack, kind: str, per_step_delay: dict[str, int] | None = None, timeout: float = 120):
    name = f"dmd-{kind}-{uuid.uuid4().hex[:8]}"
    set_faults(stack, delays(name, per_step_delay) if per_step_delay else None)
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn, name=name,
                              input=json.dumps({"runDate": RUN_DATE}))["executionArn"]
    try:
        return follow(sfn, arn, echo=print, timeout=timeout)
    finally:
        set_faults(stack, None)


def by_step(stack, execution_name: str) -> dict[str, dict]:
    """The execution's statements by step (exactly one each)."""
    out: dict[str, dict] = {}
    for s in statements(stack, execution_name):
        step = s["StatementName"].rsplit("/", 1)[-1]
        assert step not in out, f"two statements for {step}: {out[step]['Id']}, {s['Id']}"
        out[step] = s
    return out


def rows(stack, sql, *params):
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def script(name: str) -> str:
    return (DIAMOND.parent / name).read_text()


# --- tests -------------------------------------------------------------------------------------

def test_the_generator_reads_the_diamond_and_refuses_a_bad_definition(definition, tmp_path):
    """No stack: the summary local/pipeline.py reads, and a refused definition's message."""
    assert definition.name == "DiamondEtl"
    # the checks follow the steps in the definition's order
    assert definition.names == ["Stage", "Orders", "Customers", "Enrich", *FAN_OUT[:3], "Publish", "TotalsMatch"]
    assert definition.summary["seriesParallel"] is True and definition.summary["parallelStates"] == 2
    assert definition.concurrent_with("Orders") == ["Customers"]
    assert definition.concurrent_with("CheckTotals") == ["RevenueByRegion", "TopCustomers", "TotalsMatch"]
    assert definition.concurrent_with("Enrich") == []
    # the fan-out's four run at once: the benchmark gives each function that many processes
    assert definition.most_concurrent == 4
    assert definition.failable == [n for n in definition.names if n != FAILING]
    bad = tmp_path / "pipeline.toml"
    bad.write_text('name = "Bad"\n[[step]]\nname = "A"\nscript = "a.sql"\nafter = ["B"]\n'
                   '[[step]]\nname = "B"\nscript = "b.sql"\nafter = ["A"]\n')
    (tmp_path / "a.sql").write_text("select 1;\n")
    (tmp_path / "b.sql").write_text("select 1;\n")
    with pytest.raises(pipeline.PipelineError) as err:
        pipeline.load(bad)
    assert "refused" in str(err.value) and str(bad) in str(err.value)


def test_the_generated_state_machine_is_deployed_with_the_definitions_scripts(custom, definition):
    sfn = custom.client("stepfunctions")
    deployed = json.loads(sfn.describe_state_machine(stateMachineArn=custom.deployment.state_machine_arn)["definition"])
    text = json.dumps(deployed)
    for step in definition.steps:
        assert f'"step": "{step.name}"' in text
        if step.script:  # a check with its SQL in the definition has no script
            assert f'"script": "{step.script}"' in text
    assert "SetupSalesDataPipeline" not in text
    bucket, folder = custom.deployment.script_location("")  # <prefix><the definition's scripts version>/
    listed = custom.client("s3").list_objects_v2(Bucket=bucket, Prefix=folder)
    keys = {o["Key"].removeprefix(folder) for o in listed.get("Contents", [])}
    assert {s.script for s in definition.steps if s.script} <= keys
    assert "load_item.sql" not in keys  # the sales scripts stay in scripts/


def test_steps_start_after_their_dependencies_and_independent_steps_overlap(custom, definition):
    # 1 s per step, 1.5 s for the steps that run next to others
    desc = execute(custom, "order", {s: (1500 if definition.concurrent_with(s) else 1000) for s in definition.names})
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    output = json.loads(desc["output"])
    assert set(output["steps"]) == set(definition.names)  # flat: $.steps.<StepName>
    assert {r["status"] for r in output["steps"].values()} == {"FINISHED"}

    sts = by_step(custom, desc["name"])
    assert set(sts) == set(definition.names)
    assert {s["Status"] for s in sts.values()} == {"FINISHED"}
    started = {step: s["CreatedAt"] for step, s in sts.items()}
    ended = {step: s["UpdatedAt"] for step, s in sts.items()}
    for step in definition.steps:
        assert set(step.after) <= set(step.waits_for)
        for dep in step.waits_for:
            assert started[step.name] >= ended[dep], f"{step.name} started before {dep} finished"
    for step in definition.names:  # the delays took effect: every step ran at least about a second
        assert (ended[step] - started[step]).total_seconds() >= 0.9, step

    # every pair that does not wait for each other ran at the same time
    pairs = {tuple(sorted((a, b))) for a in definition.names for b in definition.concurrent_with(a)}
    assert pairs == {("Customers", "Orders"), ("CheckTotals", "RevenueByRegion"), ("CheckTotals", "TopCustomers"),
                     ("RevenueByRegion", "TopCustomers"), ("CheckTotals", "TotalsMatch"),
                     ("RevenueByRegion", "TotalsMatch"), ("TopCustomers", "TotalsMatch")}
    for a, b in pairs:
        assert started[a] < ended[b] and started[b] < ended[a], f"{a} and {b} did not overlap"
    assert max(started[s] for s in FAN_OUT) < min(ended[s] for s in FAN_OUT), "the fan-out did not run all at once"

    # the data: 4 valid orders (the negative one dropped), 80.00 in 2 regions, C3 the best customer
    assert rows(custom, "select orders, revenue, regions, trim(top_customer) from dmd_report where order_date = %s",
                RUN_DATE) == [(4, Decimal("80.00"), 2, "C3")]


def test_a_failing_step_fails_the_run_with_its_mapped_error_and_its_running_siblings_are_cancelled(custom, definition):
    checks_before = rows(custom, "select * from dmd_checks order by 1, 2")
    put_script(custom, "check_totals.sql", script("check_totals.sql") + "\nselect cast('broken' as integer);\n")
    try:
        # the failing step waits 1 s, so its siblings are surely submitted; they would wait 60 s
        desc = execute(custom, "fail", {FAILING: 1000, "RevenueByRegion": 60_000, "TopCustomers": 60_000,
                                        "TotalsMatch": 60_000})
    finally:
        put_script(custom, "check_totals.sql", script("check_totals.sql"))
    assert desc["status"] == "FAILED"
    assert desc["error"] == definition.step(FAILING).errors["Redshift.StatementFailed"] == "Diamond.TotalsNotRecorded"
    cause = json.loads(desc["cause"])
    assert cause["step"] == FAILING
    assert cause["runDate"] == RUN_DATE
    assert "invalid input syntax" in cause["error"]
    assert "broken" in (cause.get("failedStatement") or "")
    sts = by_step(custom, desc["name"])
    assert sts[FAILING]["Status"] == "FAILED" and cause["statementId"] == sts[FAILING]["Id"]
    assert "Publish" not in sts
    # the siblings were still waiting when the run failed; the reconciler cancels them on the
    # execution's FAILED event (or its next scheduled run, every 2 s)
    for sibling in definition.concurrent_with(FAILING):
        assert sts[sibling]["CreatedAt"] < desc["stopDate"]
        data = custom.redshift_data()
        wait_for(lambda: data.describe_statement(Id=sts[sibling]["Id"])["Status"] == "ABORTED", 30,
                 f"{sibling}'s statement to be cancelled")
    assert rows(custom, "select * from dmd_checks order by 1, 2") == checks_before  # the failed batch rolled back


def test_totals_that_do_not_match_fail_the_run_at_the_check_with_the_mismatch_in_the_cause(custom, definition):
    """The TotalsMatch check (the diamond's former division by zero): an order lost on its way to
    dmd_enriched fails the run as Diamond.TotalsMismatch, the cause showing both counts and amounts."""
    lose_one = script("enrich.sql") + ("\ndelete from dmd_enriched where order_date = {{run_date}} and order_id = "
                                        "(select max(order_id) from dmd_enriched where order_date = {{run_date}});\n")
    put_script(custom, "enrich.sql", lose_one)
    try:
        desc = execute(custom, "mismatch")
    finally:
        put_script(custom, "enrich.sql", script("enrich.sql"))
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Diamond.TotalsMismatch"
    cause = json.loads(desc["cause"])
    assert cause["check"] == "TotalsMatch" and cause["violations"] == 1
    assert cause["columns"] == ["enriched_orders", "orders", "enriched_amount", "amount"]
    ((enriched_orders, orders, enriched_amount, amount),) = cause["rows"]
    assert (enriched_orders, orders) == (3, 4) and Decimal(str(amount)) == Decimal("80.00")
    assert Decimal(str(enriched_amount)) < Decimal(str(amount))
    assert "Publish" not in by_step(custom, desc["name"])


def test_rerunning_with_the_fixed_script_succeeds_and_prints_the_step_results(custom, definition):
    lines: list[str] = []
    sfn = custom.client("stepfunctions")
    arn = custom.deployment.state_machine_arn
    before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
    assert run_once(custom, RUN_DATE, timeout=120, echo=lines.append) == 0, "\n".join(lines)
    text = "\n".join(lines)
    assert "execution SUCCEEDED" in text
    for step in definition.names:
        assert any(line.split()[:2] == [step, "FINISHED"] for line in text.splitlines()), \
            f"no summary line for {step}:\n{text}"
    assert "store_sales=" not in text  # the sales table counts are not shown for another pipeline
    # the one execution this run started (the previous test's, which may have started within the
    # same second, is not it)
    (latest,) = [e for e in sfn.list_executions(stateMachineArn=arn)["executions"]
                 if e["executionArn"] not in before]
    assert sfn.describe_execution(executionArn=latest["executionArn"])["status"] == "SUCCEEDED"
    assert rows(custom, "select orders, revenue, regions, trim(top_customer) from dmd_report where order_date = %s",
                RUN_DATE) == [(4, Decimal("80.00"), 2, "C3")]
    assert rows(custom, "select count(*) from dmd_checks where order_date = %s", RUN_DATE) == [(1,)]
