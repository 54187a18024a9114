"""A lineage outage never hurts a run (docs/lineage.md, "Failure behaviour"): template.yaml deployed
on a stack of its own with OpenLineageUrl pointing at an endpoint that accepts connections and never
answers, so every event the functions emit runs into its 2 s bound (etl_callback::lineage::EMIT_TIMEOUT).

The sales ETL must still succeed with every step closed exactly once; each function closes its task
first and sends afterwards, pausing its sending for 30 s after a failure, so the outage costs the run at
most one bound (docs/lineage.md, "Transport and failure behaviour"). Every undelivered event is counted: the `LineageEmitFailures` EMF lines under the stack's name are
exactly what the dashboard's widget shows (test_dashboard.py checks every other metric on the session's
stack, where lineage reaches the receiver and this one is never printed).

    .venv/bin/python -m pytest tests/e2e/test_lineage_outage.py -x -q      # needs `make build`
"""

from __future__ import annotations

import json
import socket
import threading

import pytest

import secret_scan
from conftest import E2E_PARAMETERS
from stack import LocalStack
from test_dashboard import NAMESPACE, dashboard_metrics, emitted
from test_pipeline import ALL_STEPS, assert_succeeded_once_per_step, execute

EMIT_TIMEOUT_SECONDS = 2.0  # etl_callback::lineage::EMIT_TIMEOUT


@pytest.fixture(scope="module")
def black_hole():
    """An HTTP endpoint that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/api/v1/lineage", held
    server.close()
    for conn in held:
        conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, black_hole):
    url, _ = black_hole
    s = LocalStack(run_dir=tmp_path_factory.mktemp("local-stack-lineage-outage"),
                   parameters={**E2E_PARAMETERS, "OpenLineageUrl": url})
    s.start()
    for function in ("SubmitterFunction", "CompleterFunction", "ReconcilerFunction"):
        assert s.deployment.functions[function].env["OPENLINEAGE_URL"] == url, function
    try:
        yield s
    finally:
        print("\n" + secret_scan.stop_and_check(s))


def step_seconds(history) -> dict[str, float]:
    """Each SQL step's time from entering its Task state to leaving it."""
    entered, took = {}, {}
    for e in history:
        if e["type"] == "TaskStateEntered":
            entered[e["stateEnteredEventDetails"]["name"]] = e["timestamp"]
        elif e["type"] == "TaskStateExited":
            name = e["stateExitedEventDetails"]["name"]
            if name in ALL_STEPS:
                took[name] = (e["timestamp"] - entered[name]).total_seconds()
    return took


def test_an_unanswering_lineage_endpoint_delays_and_fails_no_step_and_is_counted(stack, black_hole):
    _, held = black_hole
    desc, history = execute(stack)

    assert_succeeded_once_per_step(desc, history)
    took = step_seconds(history)
    assert sorted(took) == sorted(ALL_STEPS)
    # Only the first close pays the bound (the function then pauses its sending for 30 s), and its two events
    # go side by side: the steps whose status events reach the completer during that one emission wait for it
    # (the local stack runs one invocation of a function at a time; on AWS only when the completer's
    # concurrency is used up), at most one bound, at most the widest level of the graph (2 steps here).
    slow = {step: s for step, s in took.items() if s >= EMIT_TIMEOUT_SECONDS}
    assert len(slow) <= 2 and all(s < 2 * EMIT_TIMEOUT_SECONDS for s in took.values()), took
    assert held, "the functions did try to deliver the events"

    # every undelivered event is counted under the stack's name: a START and a terminal event per step
    # (the functions finish their emissions before the next invocation, so the run's are all printed)
    failures = 0
    for log in (stack.run_dir / "logs").glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if '"LineageEmitFailures"' in line and '"_aws"' in line:
                doc = json.loads(line[line.index("{"):])
                assert doc["Stack"] == stack.deployment.stack_name, doc
                failures += doc["LineageEmitFailures"]
    assert failures >= 2 * len(ALL_STEPS), failures

    # the dashboard's widget shows exactly what the functions print
    cloudwatch = stack.client("cloudwatch")
    (dashboard,) = stack.deployment.of_type("AWS::CloudWatch::Dashboard").values()
    body = json.loads(cloudwatch.get_dashboard(DashboardName=dashboard)["DashboardBody"])
    shown = [(m, dims) for ns, m, dims in dashboard_metrics(body) if ns == NAMESPACE and m == "LineageEmitFailures"]
    assert shown == [("LineageEmitFailures", {"Stack": stack.deployment.stack_name})], shown
    seen = emitted(stack.run_dir / "logs")[("LineageEmitFailures", frozenset({"Stack"}))]
    assert (("Stack", stack.deployment.stack_name),) in seen, seen
