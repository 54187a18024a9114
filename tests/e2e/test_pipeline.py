"""End to end on the local stack: template.yaml deployed into moto, the real Rust Lambdas, the Redshift
Data API emulator on PostgreSQL. The expected data is the one documented in scripts/README.md.

The tests share one stack and one database and run in file order: the first run loads 2021-06-26 on a
fresh database; every later test re-runs that date (idempotent) or fails a step of it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import date, timezone
from decimal import Decimal

import psycopg
import pytest

import pipeline
from run import follow, start_execution, steps_of

RUN_DATE = "2021-06-26"
DAY = date(2021, 6, 26)
ALL_STEPS = pipeline.load().names  # the steps of scripts/pipeline.toml, as the generator reads them
TABLES = ("customer", "customer_address", "date_dim", "item", "store_sales")  # staging is temporary


# --- helpers -----------------------------------------------------------------------------------

def execute(stack, run_date=RUN_DATE, timeout=180):
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, run_date, prefix="e2e")
    desc = follow(sfn, arn, echo=print, timeout=timeout)
    return desc, sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def rows(stack, sql, *params):
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def dump(stack):
    """Every ETL table, sorted, as text: equal dumps = identical tables."""
    out = {}
    with psycopg.connect(stack.endpoints.database_url, autocommit=True) as conn:
        for t in TABLES:
            out[t] = sorted(tuple("NULL" if v is None else str(v) for v in r)
                            for r in conn.execute(f"select * from {t}").fetchall())  # noqa: S608
    return out


def set_faults(stack, faults: dict | None):
    req = urllib.request.Request(
        f"{stack.endpoints.emulator}/_emulator/faults", method="POST" if faults else "DELETE",
        data=json.dumps(faults).encode() if faults else None, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status in (200, 204), resp.read()


# The bound of a held submit answer (the emulator's `hold_response` fault): never reached when the
# completer handles the event, as the tests assert.
HOLD_BOUND_MS = 15_000


def release_answer(stack, statement_id: str) -> bool:
    """`POST /_emulator/release`: True when the emulator held that statement's submit answer and lets
    it go now, False when it holds none (404)."""
    req = urllib.request.Request(
        f"{stack.endpoints.emulator}/_emulator/release", method="POST",
        data=json.dumps({"statement_id": statement_id}).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 200
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise


@contextlib.contextmanager
def answers_released_once_events_handled(stack):
    """With a `hold_response` fault (the emulator holds each submit's answer until released): a thread
    lets each held answer go out as soon as the completer has logged "status event handled" for its
    statement, so every event is recorded before its submitter gets the statement id and stores the
    task token, with no fixed sleep. Yields the set of statement ids released."""
    log = stack.run_dir / "logs" / "completer.log"
    offset = log.stat().st_size if log.exists() else 0
    released: set[str] = set()
    stop = threading.Event()

    def handled_since() -> list[str]:
        nonlocal offset
        if not log.exists():
            return []
        with open(log, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
        whole = chunk[:chunk.rfind(b"\n") + 1]  # complete lines only
        offset += len(whole)
        ids = []
        for line in whole.decode(errors="replace").splitlines():
            try:
                record = json.loads(line) if line.startswith("{") else {}
            except ValueError:
                continue
            fields = record.get("fields", record)
            if fields.get("message") == "status event handled" and fields.get("statement_id"):
                ids.append(fields["statement_id"])
        return ids

    def release_loop() -> None:
        while not stop.wait(0.05):
            for statement_id in handled_since():
                if statement_id not in released and release_answer(stack, statement_id):
                    released.add(statement_id)

    thread = threading.Thread(target=release_loop, daemon=True)
    thread.start()
    try:
        yield released
    finally:
        stop.set()
        thread.join(timeout=10)


def statement_ids_of(stack, execution_name) -> set[str]:
    """The statement ids of one execution's steps, from the rendezvous items."""
    table = stack.deployment.functions["SubmitterFunction"].env["TOKEN_TABLE"]
    items = stack.client("dynamodb").scan(TableName=table)["Items"]
    return {i["statementId"]["S"] for i in items if f"/{execution_name}/" in i.get("statementName", {}).get("S", "")}


def put_script(stack, name: str, text: str):
    """Replace script `name` where runs of the deployed definition read it: under the scripts version
    its SQL Tasks send (`<prefix><scriptsVersion>/<name>`, deploy.Deployment.script_location)."""
    bucket, key = stack.deployment.script_location(name)
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode())


def original_script(stack, name: str) -> str:
    return (stack.root / "scripts" / name).read_text()


@contextlib.contextmanager
def replaced_script(stack, name: str, text: str):
    """Script `name` replaced by `text` for the runs inside the block, the original put back after."""
    put_script(stack, name, text)
    try:
        yield
    finally:
        put_script(stack, name, original_script(stack, name))


def task_events(history, kind):
    """The SQL steps' task events of one kind: their callback Tasks (lambda:invoke.waitForTaskToken); the run
    lock's DynamoDB tasks and ResolveVars (a plain lambda:invoke before the lock) left out."""
    return [e for e in history if e["type"] == kind
            and "waitForTaskToken" in next((v for k, v in e.items() if k.endswith("EventDetails")), {}).get("resource", "")]


def completions(stack, execution_name):
    """Per step, which side of the rendezvous closed the task ("submitter" or "completer")."""
    table = stack.deployment.functions["SubmitterFunction"].env["TOKEN_TABLE"]
    items = stack.client("dynamodb").scan(TableName=table)["Items"]
    mine = [i for i in items if f"/{execution_name}/" in i.get("statementName", {}).get("S", "")]
    return {i["step"]["S"]: i.get("completedBy", {}).get("S") for i in mine}


def assert_succeeded_once_per_step(desc, history):
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    steps = steps_of(json.loads(desc["output"]))
    assert sorted(s["step"] for s in steps) == sorted(ALL_STEPS)
    # each waiting task was completed exactly once, and nothing failed on the way
    assert len(task_events(history, "TaskSucceeded")) == len(ALL_STEPS)
    assert task_events(history, "TaskFailed") == []


@pytest.fixture(autouse=True)
def no_faults(stack):
    set_faults(stack, None)
    yield
    set_faults(stack, None)


# --- tests -------------------------------------------------------------------------------------

def test_happy_path_loads_the_documented_data(stack):
    desc, history = execute(stack)
    assert_succeeded_once_per_step(desc, history)
    output = json.loads(desc["output"])
    assert output["runDate"] == RUN_DATE
    # one rendezvous item per step, each closed exactly once by one of the two sides
    assert set(completions(stack, desc["name"])) == set(ALL_STEPS)
    assert set(completions(stack, desc["name"]).values()) <= {"submitter", "completer"}
    for step in steps_of(output):
        assert step["status"] == "FINISHED" and step["runDate"] == RUN_DATE and step["statementId"]
        assert isinstance(step["durationMs"], int) and isinstance(step["rows"], int)

    # SCD1: ADDR...02 updated in place, ADDR...04 inserted with sk 4, the others unchanged
    assert rows(stack, "select ca_address_sk, trim(ca_address_id), trim(ca_state), trim(ca_zip) "
                       "from customer_address order by 1") == [
        (1, "ADDR000000000001", "CA", "94105"),
        (2, "ADDR000000000002", "OR", "97201"),
        (3, "ADDR000000000003", "NY", "10001"),
        (4, "ADDR000000000004", "TX", "78701"),
    ]
    # SCD2: price change closes sk 1 and opens sk 4; same-price rename in place; new item sk 5
    assert rows(stack, "select i_item_sk, trim(i_item_id), i_rec_start_date, i_rec_end_date, i_current_price, "
                       "trim(i_category), trim(i_product_name) from item order by 1") == [
        (1, "ITEM000000000001", date(2021, 1, 1), DAY, Decimal("10.00"), "Books", "Rust in Action"),
        (2, "ITEM000000000002", date(2021, 1, 1), None, Decimal("25.00"), "Computers", "USB-C Cable"),
        (3, "ITEM000000000003", date(2021, 1, 1), None, Decimal("5.00"), "Kitchen", "Coffee Mug"),
        (4, "ITEM000000000001", DAY, None, Decimal("12.50"), "Books", "Rust in Action"),
        (5, "ITEM000000000004", DAY, None, Decimal("7.25"), "Garden", "Hand Trowel"),
    ]
    assert rows(stack, "select trim(i_item_id), count(*) from item where i_rec_end_date is null "
                       "group by 1 having count(*) <> 1") == []
    assert rows(stack, "select d_date_sk, trim(d_date_id), d_date, trim(d_day_name) from date_dim") == [
        (20210626, "D20210626", DAY, "Saturday")]
    # facts for the date, joined to the current item versions; unknown customer -> NULL; unknown item dropped
    assert rows(stack, "select ss_sold_date_sk, ss_item_sk, ss_customer_sk, ss_addr_sk, ss_ticket_number, "
                       "ss_quantity, ss_net_paid, ss_net_profit from store_sales order by ss_item_sk") == [
        (20210626, 2, 2, 2, 2021062602, 1, Decimal("25.00"), Decimal("3.00")),
        (20210626, 3, 1, 1, 2021062601, 4, Decimal("20.00"), Decimal("2.00")),
        (20210626, 4, 1, 1, 2021062601, 2, Decimal("25.00"), Decimal("5.00")),
        (20210626, 5, None, 4, 2021062603, 1, Decimal("7.25"), Decimal("1.25")),
    ]
    # validation ran on the loaded date and succeeded; the fact step reports the rows it inserted
    by_step = {s["step"]: s for s in steps_of(output)}
    assert by_step["LoadStoreSales"]["rows"] >= 4
    assert by_step["ValidateSalesData"]["status"] == "FINISHED"
    # every check ran and reports 0 violations in the run output
    for check in ("ValidateSalesData", "UniqueSalesTickets", "SalesReferenceCurrentItems"):
        record = by_step[check]["check"]
        assert (record["check"], record["violations"], record["rows"]) == (check, 0, []), record


def test_rerunning_the_date_leaves_identical_tables(stack):
    before = dump(stack)
    desc, history = execute(stack)
    assert_succeeded_once_per_step(desc, history)
    assert dump(stack) == before


def test_event_before_token_still_completes_each_step_once(stack):
    before = dump(stack)
    # The emulator runs each batch and publishes its event, then holds its answer back until the
    # completer has recorded the event (the test releases it then): every token is stored second, so
    # the submitter closes every task.
    set_faults(stack, {"event_before_response": True, "hold_response": True, "response_delay_ms": HOLD_BOUND_MS})
    with answers_released_once_events_handled(stack) as released:
        desc, history = execute(stack)
    assert_succeeded_once_per_step(desc, history)
    assert completions(stack, desc["name"]) == {step: "submitter" for step in ALL_STEPS}
    # every answer was held and let go by its handled event, none by the bound
    assert released == statement_ids_of(stack, desc["name"])
    assert dump(stack) == before


def test_duplicate_events_complete_each_step_once(stack):
    before = dump(stack)
    set_faults(stack, {"duplicate_event": True})
    desc, history = execute(stack)
    assert_succeeded_once_per_step(desc, history)
    assert dump(stack) == before
    time.sleep(3)  # the duplicates are delivered asynchronously: none of them may end in the DLQ
    dlq_url = stack.deployment.queues["StatementEventsDeadLetterQueue"]
    assert stack.client("sqs").receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0).get("Messages") is None


def test_failing_sql_step_fails_the_run_and_rolls_the_step_back(stack):
    item_before = dump(stack)["item"]
    broken = (original_script(stack, "load_item.sql")
              + "\nupdate item set i_product_name = 'must be rolled back';\n"
              + "select cast('not a number' as integer);\n")
    with replaced_script(stack, "load_item.sql", broken):
        desc, history = execute(stack)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Redshift.StatementFailed"
    cause = json.loads(desc["cause"])
    assert cause["step"] == "LoadItem"
    assert cause["status"] == "FAILED"
    assert "invalid input syntax" in cause["error"]
    assert "not a number" in (cause.get("failedStatement") or "")
    assert dump(stack)["item"] == item_before  # the whole batch, the update included, rolled back
    assert not any(e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "LoadStoreSales"
                   for e in history)


def test_a_date_with_no_sales_fails_the_run_as_validation_no_sales_loaded(stack):
    """The ValidateSalesData check (row_count min 1, `error = "Validation.NoSalesLoaded"` in
    scripts/pipeline.toml) ends the run as Validation.NoSalesLoaded with the check's record as the cause
    (the violating row: the count, 0), raised by the Task itself (no Catch, so a Redrive would rerun the
    check), and the next run of the date loads it again."""
    nothing = ("delete from store_sales where ss_sold_date_sk in "  # the upstream delivered nothing
               "(select d_date_sk from date_dim where d_date = {{run_date}}::date);\n")
    with replaced_script(stack, "load_store_sales.sql", nothing):
        desc, history = execute(stack)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Validation.NoSalesLoaded"
    cause = json.loads(desc["cause"])
    assert cause["check"] == "ValidateSalesData" and cause["runDate"] == RUN_DATE and cause["severity"] == "error"
    assert (cause["violations"], cause["columns"], cause["rows"]) == (1, ["row_count"], [[0]])
    assert "row_count < 1" in cause["sql"] and "'2021-06-26'::date" in cause["sql"]
    assert [e["taskFailedEventDetails"]["error"] for e in task_events(history, "TaskFailed")] == ["Validation.NoSalesLoaded"]
    # the failed step is the execution's last state (no Catch, nothing after it: a Redrive resumes there)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    # (the checks run side by side: the last state entered is one of them)
    checks = {"ValidateSalesData", "UniqueSalesTickets", "SalesReferenceCurrentItems"}
    assert "ValidateSalesData" in entered and entered[-1] in checks, entered
    assert "RunFailed" not in entered and "ReleaseRunLock" not in entered, entered
    desc, history = execute(stack)
    assert_succeeded_once_per_step(desc, history)
    assert rows(stack, "select count(*) from store_sales where ss_sold_date_sk = 20210626") == [(4,)]


def test_cancelled_statement_fails_the_run_as_aborted(stack):
    set_faults(stack, {"statement_name_contains": "/ValidateSalesData", "delay_ms": 120_000})
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, RUN_DATE, prefix="e2e-abort")
    name = arn.rsplit(":", 1)[-1]
    data = stack.redshift_data()
    statement_id, deadline = None, time.monotonic() + 120
    while statement_id is None and time.monotonic() < deadline:
        for st in data.list_statements(Status="ALL", MaxResults=100)["Statements"]:
            if st.get("StatementName", "").endswith(f"/{name}/ValidateSalesData") and st["Status"] in ("SUBMITTED", "PICKED", "STARTED"):
                statement_id = st["Id"]
        time.sleep(0.3)
    assert statement_id, "the ValidateSalesData statement never showed up in ListStatements"
    assert data.cancel_statement(Id=statement_id)["Status"] is True
    desc = follow(sfn, arn, echo=print, timeout=120)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "Redshift.StatementAborted"
    cause = json.loads(desc["cause"])
    assert cause["step"] == "ValidateSalesData" and cause["statementId"] == statement_id
    assert data.describe_statement(Id=statement_id)["Status"] == "ABORTED"


def test_without_run_date_the_execution_start_day_is_used(stack):
    """Last on purpose: it loads another date (today), after which 2021-06-26 is no longer the latest."""
    sfn = stack.client("stepfunctions")
    arn = start_execution(sfn, stack.deployment.state_machine_arn, None, prefix="e2e-default")
    desc = follow(sfn, arn, echo=print, timeout=180)
    assert desc["status"] == "SUCCEEDED", (desc.get("error"), desc.get("cause"))
    today = desc["startDate"].astimezone(timezone.utc).date()
    assert json.loads(desc["output"])["runDate"] == today.isoformat()
    assert {s["runDate"] for s in steps_of(json.loads(desc["output"]))} == {today.isoformat()}
    assert rows(stack, "select count(*) from store_sales where ss_sold_date_sk = %s",
                int(today.strftime("%Y%m%d"))) == [(4,)]
