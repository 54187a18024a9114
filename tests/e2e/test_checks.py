"""Data-quality checks (`[[check]]`, docs/pipeline.md#checks) on their own throwaway local stack, with
the test pipeline tests/e2e/pipelines/checks/ (one load, then one check of each kind in parallel).

A check runs through the same callback path as any step: the submitter runs its wrapped SELECT, the
status event reaches the completer, which reads the rows with GetStatementResult. The emulator answers
two records per page here (--result-page-rows 2), so the rows shown are read across pages.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import psycopg
import pytest

from conftest import E2E_PARAMETERS
from run import follow, steps_of
import secret_scan
from stack import LocalStack
from test_pipeline import completions, set_faults

CHECKS = Path(__file__).resolve().parent / "pipelines" / "checks" / "pipeline.toml"
ALL = ["LoadEvents", "NegativeAmounts", "KnownKinds", "IdsPresent", "UniqueIds", "KindsDeclared",
       "SomeEvents", "FreshEvents", "InlineSql"]


@pytest.fixture(scope="module")
def checks_stack(tmp_path_factory):
    database_url = os.environ.get("E2E_DATABASE_URL") or None
    if database_url:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for t in ("chk_events", "chk_kinds"):
                conn.execute(f"drop table if exists {t} cascade")
    s = LocalStack(run_dir=tmp_path_factory.mktemp("checks-stack"), database_url=database_url,
                   parameters=E2E_PARAMETERS, pipeline=CHECKS, emulator_args=["--result-page-rows", "2"])
    s.start()
    print(f"\nchecks stack started in {s.startup_seconds:.1f}s (logs: {s.run_dir}/logs)")
    try:
        yield s
    finally:
        print("\n" + secret_scan.stop_and_check(s))  # no token or secret in its logs


def execute(stack, run_date: str, faults: dict | None = None):
    name = f"chk-{run_date}-{uuid.uuid4().hex[:8]}"
    if faults:
        set_faults(stack, {**faults, "statement_name_contains": f"/{name}/{faults['statement_name_contains']}"})
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.deployment.state_machine_arn, name=name,
                              input=json.dumps({"runDate": run_date}))["executionArn"]
    try:
        desc = follow(sfn, arn, echo=print, timeout=120)
    finally:
        set_faults(stack, None)
    return desc, sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def emf_lines(stack, metric: str) -> list[dict]:
    found = []
    for log in (stack.run_dir / "logs").glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if f'"{metric}"' in line and '"_aws"' in line:
                found.append(json.loads(line[line.index("{"):]))
    return found


def test_a_warn_check_lets_the_run_go_on_with_its_rows_in_the_output(checks_stack):
    desc, _ = execute(checks_stack, "2021-06-26")
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    steps = {s["step"]: s for s in steps_of(json.loads(desc["output"]))}
    assert sorted(steps) == sorted(ALL)
    warned = steps["KnownKinds"]["check"]
    assert warned["severity"] == "warn" and warned["violations"] == 1
    assert (warned["columns"], warned["rows"]) == (["kind", "occurrences"], [["spam", 10]])
    assert "not in ('click', 'view')" in warned["sql"]
    # every other check ran the generated or given SQL on the emulator and passed: 0 violations
    for name in ALL[1:]:
        if name != "KnownKinds":
            record = steps[name]["check"]
            assert (record["violations"], record["rows"]) == (0, []), (name, record)
    assert "check" not in steps["LoadEvents"]
    # the warning is a metric too (EMF, dimensions Stack and Step)
    warnings = [m for m in emf_lines(checks_stack, "CheckWarnings") if m.get("Step") == "KnownKinds"]
    assert warnings and warnings[-1]["CheckWarnings"] == 1 and warnings[-1]["CheckViolations"] == 1


def test_a_failing_check_fails_the_run_with_its_error_name_count_and_first_rows(checks_stack):
    desc, history = execute(checks_stack, "2021-06-27")
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Checks.NegativeAmounts"  # the check's `error`, not Check.Failed
    cause = json.loads(desc["cause"])
    assert cause["check"] == "NegativeAmounts" and cause["runDate"] == "2021-06-27"
    assert cause["violations"] == 25, "every violating row is counted"
    assert cause["columns"] == ["id", "kind", "amount"]
    assert len(cause["rows"]) == 3, "max_rows = 3, read across two pages of two records"
    assert all(amount < 0 and amount == -ident for ident, _, amount in cause["rows"]), cause["rows"]
    assert "amount < 0" in cause["sql"] and "note" not in cause
    # the Task itself failed with that name once: Check.Failed is not retried
    failed = [e for e in history if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["Checks.NegativeAmounts"]
    scheduled = [e for e in history if e["type"] == "TaskScheduled"
                 and '"step":"NegativeAmounts"' in e["taskScheduledEventDetails"]["parameters"].replace(" ", "")]
    assert len(scheduled) == 1


def test_a_lost_event_of_a_failing_check_is_recovered_by_the_reconciler_with_the_same_outcome(checks_stack):
    """The reconciler closes a check whose status event never came exactly as the completer would:
    it reads the rows itself (the outcome logic is the shared library's, once)."""
    desc, _ = execute(checks_stack, "2021-06-27", {"statement_name_contains": "NegativeAmounts", "drop_event": True})
    assert (desc["status"], desc["error"]) == ("FAILED", "Checks.NegativeAmounts")
    cause = json.loads(desc["cause"])
    assert (cause["check"], cause["violations"], len(cause["rows"])) == ("NegativeAmounts", 25, 3)
    closed_by = completions(checks_stack, desc["name"])
    assert closed_by["NegativeAmounts"] == "reconciler", closed_by
