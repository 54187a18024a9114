"""Deploying while a run is in flight (issue 15, item 7). A running Standard execution keeps the
definition it started with, and the generator bakes the scripts' content version into every SQL
Task's payload (`scriptsVersion`); a deploy uploads its scripts under `<prefix><version>/` and never
removes an older version. So a run started before a deploy finishes with the scripts it started
with, and a run started after it uses the new ones.

On the shared stack: run 1 starts on the deployed definition with its LoadItem held SUBMITTED by an
emulator fault (delay_ms); while it waits, a changed pipeline (scripts/ copied, load_store_sales.sql
with a marker statement) is deployed onto the running stack (LocalStack.redeploy: the new version's
scripts uploaded, then UpdateStack). Run 1's LoadStoreSales is submitted after the deploy and must
run the OLD SQL; run 2, started after it, the NEW SQL. Both succeed. The original definition is
deployed again at the end (the next test files expect it).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid

import pytest

import pipeline
from run import follow, start_execution
from test_pipeline import RUN_DATE, assert_succeeded_once_per_step, set_faults
from test_safety_net import statements, wait_for

SCRIPT = "load_store_sales.sql"
MARKER = "select 'v2' as version"
HELD_MS = 8000  # how long run 1's LoadItem stays SUBMITTED: the redeploy takes a few seconds


@pytest.fixture
def changed(tmp_path):
    """scripts/ copied with a harmless marker statement appended to load_store_sales.sql."""
    copy = tmp_path / "scripts-v2"
    shutil.copytree(pipeline.DEFAULT_DEFINITION.parent, copy)
    path = copy / SCRIPT
    path.write_text(path.read_text() + f"\n-- v2: deployed while a run was in flight\n{MARKER};\n")
    return pipeline.load(copy / "pipeline.toml")


@pytest.fixture
def restore(stack):
    """The stack's own definition deployed again, whatever the test did."""
    before = stack.deployment.scripts_version
    yield
    set_faults(stack, None)
    stack.redeploy()
    assert stack.deployment.scripts_version == before


def deployed_definition(stack) -> dict:
    sfn = stack.client("stepfunctions")
    return json.loads(sfn.describe_state_machine(stateMachineArn=stack.deployment.state_machine_arn)["definition"])


def sql_of(stack, execution_name: str, step: str) -> list[str]:
    """The QueryString of each sub-statement of the step's batch, as the emulator ran it."""
    (found,) = statements(stack, execution_name, step)
    described = stack.redshift_data().describe_statement(Id=found["Id"])
    return [s["QueryString"] for s in described["SubStatements"]]


def test_a_run_in_flight_finishes_with_its_scripts_and_a_new_run_uses_the_new_ones(stack, changed, restore):
    t0 = time.monotonic()
    old_version = stack.deployment.scripts_version
    new_version = changed.summary["scriptsVersion"]
    assert new_version != old_version

    sfn = stack.client("stepfunctions")
    name1 = f"e2e-deploy1-{uuid.uuid4().hex[:8]}"
    set_faults(stack, {"rules": [{"statement_name_contains": f"/{name1}/LoadItem", "delay_ms": HELD_MS}]})
    run1 = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn, name=name1,
                               input=json.dumps({"runDate": RUN_DATE}))["executionArn"]
    wait_for(lambda: statements(stack, name1, "LoadItem"), 20, "run 1's LoadItem to be submitted")

    stack.redeploy(changed.definition)

    # the deploy is done and run 1 has not reached LoadStoreSales: it submits that step afterwards
    assert statements(stack, name1, "LoadStoreSales") == [], "the redeploy took longer than LoadItem was held"
    assert stack.deployment.scripts_version == new_version
    assert f'"scriptsVersion": "{new_version}"' in json.dumps(deployed_definition(stack))
    bucket, key = stack.deployment.script_location(SCRIPT)
    assert key.endswith(f"{new_version}/{SCRIPT}")
    assert MARKER in stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    desc1 = follow(sfn, run1, echo=print, timeout=60)
    history1 = sfn.get_execution_history(executionArn=run1, maxResults=1000)["events"]
    assert_succeeded_once_per_step(desc1, history1)
    set_faults(stack, None)

    run2 = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix="e2e-deploy2")
    desc2 = follow(sfn, run2, echo=print, timeout=60)
    history2 = sfn.get_execution_history(executionArn=run2, maxResults=1000)["events"]
    assert_succeeded_once_per_step(desc2, history2)

    old_sql = sql_of(stack, name1, "LoadStoreSales")
    new_sql = sql_of(stack, run2.rsplit(":", 1)[-1], "LoadStoreSales")
    assert not any(MARKER in q for q in old_sql), old_sql
    assert new_sql[-1].strip().rstrip(";").endswith(MARKER), new_sql[-1]
    assert new_sql[:-1] == old_sql, "apart from the marker, both runs ran the same statements"
    # each run's Tasks sent the version of the definition it started with
    sent1 = [json.loads(e["taskScheduledEventDetails"]["parameters"]) for e in history1
             if e["type"] == "TaskScheduled" and "waitForTaskToken" in e["taskScheduledEventDetails"]["resource"]]
    sent2 = [json.loads(e["taskScheduledEventDetails"]["parameters"]) for e in history2
             if e["type"] == "TaskScheduled" and "waitForTaskToken" in e["taskScheduledEventDetails"]["resource"]]
    assert {p["Payload"].get("scriptsVersion") for p in sent1} == {old_version}
    assert {p["Payload"].get("scriptsVersion") for p in sent2} == {new_version}
    print(f"in-flight deploy test: {time.monotonic() - t0:.1f}s")
