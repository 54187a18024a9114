"""OpenLineage end to end on the local stack: the functions post their run events to the stack's receiver
(local/openlineage_receiver.py: every event validated against the pinned 2-0-2 schema and the
openlineage-python models, so a malformed one is refused and counted), and these tests read back what it
accepted for one execution at a time (local/lineage.py) and check it against the pipeline definition
as `pipeline steps` reads it (each step's reads and writes), never against literal lists:

- per run and per step: one START and one terminal event, the terminal one matching the outcome;
- each step's input and output datasets: `redshift://<cluster>.<region>:5439` / `<db>.<schema>.<table>`;
- every step run's parent facet names the execution's run (job `<pipeline>`), job names `<pipeline>.<step>`
  in the stack's namespace;
- a failed step's FAIL carries its SQL error; a step that never started has no event;
- a duplicated status event changes nothing: the same events, once each.

The sales ETL runs on the session stack; the diamond pipeline (tests/e2e/pipelines/diamond) is deployed onto
it for one run and the stack's own definition deployed back afterwards (LocalStack.redeploy).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import lineage
import pipeline
from run import follow, start_execution, steps_of
from stack import LINEAGE_PARAMETER, REGION
from test_pipeline import RUN_DATE, original_script, replaced_script, set_faults

DIAMOND = Path(__file__).resolve().parent / "pipelines" / "diamond" / "pipeline.toml"


@pytest.fixture(scope="module")
def url(stack):
    if not stack.lineage_url:
        pytest.skip(f"template.yaml declares no {LINEAGE_PARAMETER} parameter: the functions emit no lineage")
    return stack.lineage_url


def run_and_collect(stack, url: str, prefix: str, timeout: float = 120, settle: float = 0.5):
    """Start one execution, follow it to its end, and return (DescribeExecution, its lineage runs by id,
    the events of other runs that arrived meanwhile); `settle`: seconds more for events that should not come."""
    since = len(lineage.received(url)["events"])
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix=prefix)
    desc = follow(sfn, arn, echo=print, timeout=timeout)
    events = lineage.wait_until_ended(url, since)
    time.sleep(settle)
    events = lineage.received(url)["events"][since:]
    ours, others = of_one_execution(lineage.runs(events))
    return desc, ours, others


def of_one_execution(all_runs: dict[str, lineage.Run]):
    """The execution's step runs (those that STARTed in the window: they must all name one parent run) and
    the execution's own run, if it was emitted; and every other run seen meanwhile."""
    parents = {r.parent_run_id for r in all_runs.values() if r.parent_run_id and "START" in r.events}
    assert len(parents) == 1, f"expected the step runs of one execution, got parents {parents}; " \
                              f"all runs: {[(r.job, r.events, r.parent_job) for r in all_runs.values()]}"
    (parent,) = parents
    ours = {rid: r for rid, r in all_runs.items() if rid == parent or r.parent_run_id == parent}
    others = [r for rid, r in all_runs.items() if rid not in ours]
    return ours, others


def execution_run(ours: dict[str, lineage.Run]) -> lineage.Run | None:
    """The execution's own run (no parent; the run its steps name as parent), if it was emitted."""
    tops = [r for r in ours.values() if r.parent_run_id is None]
    assert len(tops) <= 1, tops
    return tops[0] if tops else None


def datasets(stack, tables) -> set[str]:
    """The OpenLineage names of `schema.table`s as `pipeline steps` lists them."""
    params = stack.template_parameters
    namespace = f"redshift://{params['RedshiftClusterId']}.{REGION}:5439"
    return {f"{namespace}/{params['RedshiftDatabase']}.{t}" for t in tables}


def assert_lineage(stack, definition: pipeline.Pipeline, ours: dict[str, lineage.Run], outcome: dict[str, str],
                   execution_terminal: str) -> None:
    """`outcome`: the terminal event expected per step that ran; every other step must have no event. The
    execution's own run is checked when it was emitted (test_the_execution_is_a_run_of_its_own requires it)."""
    top = execution_run(ours)
    if top is not None:
        assert top.namespace == stack.stack_name and top.job == definition.name
        assert top.events == ["START", execution_terminal], top.events
    steps = {r.job: r for r in ours.values() if r.parent_run_id is not None}
    assert sorted(steps) == sorted(f"{definition.name}.{s}" for s in outcome), \
        f"steps with events {sorted(steps)}, expected those that ran: {sorted(outcome)}"
    assert len(steps) == len(ours) - (top is not None)  # one run per step: no step has two
    (parent,) = {r.parent_run_id for r in steps.values()}
    summary = {s["name"]: s for s in definition.summary["steps"]}
    for name, terminal in outcome.items():
        run = steps[f"{definition.name}.{name}"]
        assert run.namespace == stack.stack_name
        assert (run.parent_run_id, run.parent_job) == (parent, definition.name), name
        assert run.events == ["START", terminal], (name, run.events)
        assert set(run.inputs) == datasets(stack, summary[name]["reads"]), name
        assert set(run.outputs) == datasets(stack, summary[name]["writes"]), name
        if terminal == "COMPLETE":
            assert run.error is None, (name, run.error)


def assert_nothing_refused(url: str) -> None:
    got = lineage.received(url)
    assert got["rejected"] == [], got["rejected"]


@pytest.fixture(scope="module")
def sales_run(stack, url):
    return run_and_collect(stack, url, "e2e-lineage")


@pytest.fixture(scope="module")
def failed_run(stack, url):
    broken = original_script(stack, "load_item.sql") + "\nselect cast('not a number' as integer);\n"
    with replaced_script(stack, "load_item.sql", broken):
        return run_and_collect(stack, url, "e2e-lineage-fail")


def test_sales_etl_reports_each_step_once_with_its_datasets(stack, url, sales_run):
    definition = pipeline.load()
    desc, ours, others = sales_run
    assert desc["status"] == "SUCCEEDED", desc
    assert_lineage(stack, definition, ours, {s: "COMPLETE" for s in definition.names}, "COMPLETE")
    assert others == []
    # rows: each output's rowCount counts the sub-statements that write exactly that table (staging
    # tables and SELECTs are not outputs), so per step they add up to at most the rows its batch
    # affected, as the run's output records them; and something was loaded
    results = {s["step"]: s.get("rows") for s in steps_of(json.loads(desc["output"]))}
    reported = {r.job.split(".", 1)[1]: r for r in ours.values() if r.rows}
    assert reported, "no step reported outputStatistics"
    for step, run in reported.items():
        assert set(run.rows) <= set(run.outputs), (step, run.rows, run.outputs)
        assert all(n >= 0 for n in run.rows.values()), (step, run.rows)
        assert sum(run.rows.values()) <= results[step], (step, run.rows, results[step])
    assert any(n > 0 for run in reported.values() for n in run.rows.values()), reported
    assert_nothing_refused(url)


def test_a_duplicated_status_event_changes_no_event(stack, url):
    definition = pipeline.load()
    set_faults(stack, {"duplicate_event": True})
    try:
        # the duplicates are delivered asynchronously (as in test_pipeline): 3 s for any event they cause
        desc, ours, others = run_and_collect(stack, url, "e2e-lineage-dup", settle=3)
    finally:
        set_faults(stack, None)
    assert desc["status"] == "SUCCEEDED", desc
    assert_lineage(stack, definition, ours, {s: "COMPLETE" for s in definition.names}, "COMPLETE")
    assert others == []
    assert_nothing_refused(url)


def test_a_failed_step_reports_fail_with_its_sql_error_and_later_steps_nothing(stack, url, failed_run):
    definition = pipeline.load()
    desc, ours, _ = failed_run
    assert desc["status"] == "FAILED" and desc["error"] == "Redshift.StatementFailed", desc
    cause = json.loads(desc["cause"])
    failed = cause["step"]
    assert failed == "LoadItem"
    started = {r.job.split(".", 1)[1]: r for r in ours.values() if r.parent_run_id is not None}
    # the failed step's siblings may have ended either way; the steps after it never started
    after = [s.name for s in definition.steps if failed in s.waits_for]
    assert after and not set(after) & set(started), (after, sorted(started))
    outcome = {name: ("FAIL" if name == failed else started[name].terminal) for name in started}
    assert_lineage(stack, definition, ours, outcome, "FAIL")
    error = started[failed].error
    assert error and cause["error"].splitlines()[0] in error, (error, cause["error"])
    assert_nothing_refused(url)


def test_the_execution_is_a_run_of_its_own(stack, url, sales_run, failed_run):
    """Its steps' parent: job `<pipeline>` in the stack's namespace, START then COMPLETE, or FAIL with the
    failed step's error."""
    definition = pipeline.load()
    for (desc, ours, _), terminal in ((sales_run, "COMPLETE"), (failed_run, "FAIL")):
        top = execution_run(ours)
        assert top is not None, f"no run without a parent among {[(r.job, r.events) for r in ours.values()]}"
        assert (top.namespace, top.job, top.events) == (stack.stack_name, definition.name, ["START", terminal])
        assert {r.parent_run_id for r in ours.values() if r is not top} == {top.run_id}
        if terminal == "FAIL":
            assert top.error and json.loads(desc["cause"])["error"].splitlines()[0] in top.error, top.error


@pytest.fixture
def diamond(stack):
    deployed = stack.redeploy(DIAMOND)
    try:
        yield deployed
    finally:
        stack.redeploy()  # the stack's own definition back, for the files after this one


def test_diamond_pipeline_reports_its_fan_out(stack, url, diamond):
    definition = pipeline.load(DIAMOND)
    desc, ours, others = run_and_collect(stack, url, "e2e-lineage-diamond")
    assert desc["status"] == "SUCCEEDED", desc
    assert_lineage(stack, definition, ours, {s: "COMPLETE" for s in definition.names}, "COMPLETE")
    assert others == []
    assert_nothing_refused(url)
