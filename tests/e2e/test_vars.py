"""Typed variables (issue 26, items 4-6) on the local stack: the sales ETL keeps every table in
`{{schema}}` (scripts/pipeline.toml's [vars], default public).

- A run's `vars` are checked by ResolveVars before the run lock and any SQL: a valid one is used (the
  tables land in its schema), an unknown or badly typed one fails the run with InvalidInput naming the
  variable, with no lock taken and no statement run.
- Two environments on one warehouse: a second local stack (its own moto, emulator and functions: the
  functions are served by binary name, so one stack cannot run two copies of a function) deploys
  template.yaml with PipelineVars {"schema": "<dev schema>"} onto the same PostgreSQL; both run the same
  date at the same time and their tables stay apart.
"""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest

import secret_scan
from conftest import E2E_PARAMETERS
from stack import LocalStack
from run import follow
from test_backfill import backfill
from test_generated_asl import entered, holders, statements
from test_pipeline import RUN_DATE, TABLES, assert_succeeded_once_per_step

# The documented data after one run of 2021-06-26 (scripts/README.md).
EXPECTED_COUNTS = {"customer": 3, "customer_address": 4, "date_dim": 1, "item": 5, "store_sales": 4}


def run(stack, execution_input: dict, prefix: str = "e2e-vars", timeout: float = 120):
    sfn = stack.client("stepfunctions")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    arn = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn,
                              name=name, input=json.dumps(execution_input))["executionArn"]
    desc = follow(sfn, arn, echo=print, timeout=timeout)
    return desc, sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def counts(stack, schema: str) -> dict[str, int]:
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        return {t: conn.execute(f'select count(*) from "{schema}".{t}').fetchone()[0]  # noqa: S608
                for t in TABLES}


def sales_of_the_day(stack, schema: str) -> int:
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        return conn.execute(f'select count(*) from "{schema}".store_sales s join "{schema}".date_dim d '  # noqa: S608
                            "on d.d_date_sk = s.ss_sold_date_sk where d.d_date = %s", (RUN_DATE,)).fetchone()[0]


def sql_of(stack, execution_name: str, step: str) -> list[str]:
    (found,) = statements(stack, execution_name, step)
    described = stack.redshift_data().describe_statement(Id=found["Id"])
    return [s["QueryString"] for s in described["SubStatements"]]


def drop_schema(stack, schema: str) -> None:
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        conn.execute(f'drop schema if exists "{schema}" cascade')


def test_a_valid_run_variable_is_used(stack):
    schema = "e2e_run_vars"
    drop_schema(stack, schema)
    try:
        desc, history = run(stack, {"runDate": RUN_DATE, "vars": {"schema": schema}})
        assert_succeeded_once_per_step(desc, history)
        assert json.loads(desc["output"])["vars"] == {"schema": schema}
        assert counts(stack, schema) == EXPECTED_COUNTS
        # The identifier reached the SQL quoted, and nothing else was substituted for it.
        sql = sql_of(stack, desc["name"], "LoadStoreSales")
        assert any(f'"{schema}".store_sales' in s for s in sql), sql
        # ResolveVars ran before the lock.
        states = entered(history)
        assert states.index("ResolveVars") < states.index("AcquireRunLock")
    finally:
        drop_schema(stack, schema)


@pytest.mark.parametrize("variables, named, reason", [
    ({"schema": 5}, "schema", "must be a string (type identifier)"),
    ({"schemas": "dev"}, '"schemas"', "is not declared in the pipeline's [vars] (declared: schema)"),
    ({"schema": "x\u0000y"}, "schema", "control character"),
    ({"schema": "s" * 128}, "schema", "at most 127 bytes"),
    ("dev", "vars", "must be an object of variable names to values"),
])
def test_an_invalid_run_variable_fails_before_the_lock_and_any_sql(stack, variables, named, reason):
    before = holders(stack)
    desc, history = run(stack, {"runDate": RUN_DATE, "vars": variables}, timeout=30)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "InvalidInput", desc.get("cause")
    cause = desc["cause"]
    assert f"variable {named}" in cause and reason in cause and "the execution input's vars" in cause, cause
    states = entered(history)
    assert "ResolveVars" in states and "VarsRefused" in states
    assert "AcquireRunLock" not in states
    assert holders(stack) == before
    assert statements(stack, desc["name"]) == []


@pytest.fixture
def dev_stack(stack, tmp_path):
    """A second local stack (its own moto, emulator and functions) deployed from the same template.yaml with
    PipelineVars {"schema": <dev schema>}, on the first stack's PostgreSQL: two environments, one warehouse."""
    schema = f"dev_{uuid.uuid4().hex[:6]}"
    dev = LocalStack(run_dir=tmp_path / "dev-stack", database_url=stack.endpoints.database_url,
                     stack_name="etl-dev", parameters={**E2E_PARAMETERS, "PipelineVars": json.dumps({"schema": schema})})
    dev.start()
    print(f"second stack started in {dev.startup_seconds:.1f}s")
    try:
        yield dev, schema
    finally:
        print(secret_scan.stop_and_check(dev))
        drop_schema(stack, schema)


def test_two_environments_on_one_warehouse_keep_their_tables_apart(stack, dev_stack):
    dev, schema = dev_stack
    assert dev.deployment.functions["SubmitterFunction"].env["PIPELINE_VARS"] == json.dumps({"schema": schema})
    # Both stacks run the same date at the same time.
    names, clients = {}, {"prod": stack.client("stepfunctions"), "dev": dev.client("stepfunctions")}
    for label, s in (("prod", stack), ("dev", dev)):
        name = f"e2e-env-{label}-{uuid.uuid4().hex[:8]}"
        names[label] = clients[label].start_execution(stateMachineArn=s.deployment.state_machine_arn, name=name,
                                                      input=json.dumps({"runDate": RUN_DATE}))["executionArn"]
    outputs = {}
    for label, arn in names.items():
        desc = follow(clients[label], arn, echo=print, timeout=180)
        history = clients[label].get_execution_history(executionArn=arn, maxResults=1000)["events"]
        assert_succeeded_once_per_step(desc, history)
        outputs[label] = json.loads(desc["output"])
    prod_vars, dev_vars = outputs["prod"]["vars"], outputs["dev"]["vars"]
    assert prod_vars == {"schema": "public"} and dev_vars == {"schema": schema}
    # Each environment's tables hold its run's data: the dev schema exactly one run's (it is new), public
    # the date's sales once (earlier tests of the session may have loaded other dates there).
    assert counts(stack, schema) == EXPECTED_COUNTS
    assert sales_of_the_day(stack, "public") == EXPECTED_COUNTS["store_sales"]
    # A run of the dev stack names its own schema and never public.
    dev_name = names["dev"].rsplit(":", 1)[1]
    dev_sql = sql_of(dev, dev_name, "LoadItem")
    assert not any('"public"' in sql for sql in dev_sql), dev_sql
    assert any(f'"{schema}".item' in sql for sql in dev_sql), dev_sql


def test_a_backfill_passes_its_vars_to_every_date(stack):
    schema = "e2e_backfill_vars"
    drop_schema(stack, schema)
    try:
        desc, out = backfill(stack, {"from": "2021-06-26", "to": "2021-06-26", "vars": {"schema": schema},
                                     "backfillId": f"vars-{uuid.uuid4().hex[:8]}"})
        assert desc["status"] == "SUCCEEDED", desc.get("cause")
        assert (out["succeeded"], out["failed"]) == (1, 0), out
        assert counts(stack, schema) == EXPECTED_COUNTS
        # A value the pipeline refuses fails the date's run before its lock (onFailure stop: the backfill).
        desc, _ = backfill(stack, {"from": "2021-06-26", "to": "2021-06-26", "vars": {"schema": 1},
                                   "backfillId": f"vars-{uuid.uuid4().hex[:8]}"})
        assert desc["status"] == "FAILED"
        assert '"InvalidInput"' in desc["cause"] and "variable schema" in desc["cause"], desc["cause"]
    finally:
        drop_schema(stack, schema)
