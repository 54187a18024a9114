"""One local stack for the whole e2e session, started with the same modules as `make local`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "local"))

import secret_scan  # noqa: E402
from stack import ACCOUNT, REGION, LocalStack  # noqa: E402

# Template parameters of the e2e stack: the reconciler every 2 s (locally a rate may be in seconds, see
# local/moto_adapter patch 7), steps looked after 3 s after submitting, heartbeat timeout 8 s, and no
# submit wait: the session's tests are about the event path (a dropped, duplicate or late status event,
# the reconciler), which a wait would bypass for the pipeline's millisecond statements (they end within
# it and the submitter closes the step itself). The wait has its own stack: test_submit_wait.py.
# Failed runs notify a topic (tests/e2e/test_failure_notification.py creates it; until then a failed run's
# notification fails to publish, which nothing else sees).
E2E_PARAMETERS = {"ReconcileRate": "rate(2 seconds)", "ReconcileGraceSeconds": "3",
                  "StepHeartbeatSeconds": "8", "StepTimeoutSeconds": "300", "SubmitWaitSeconds": "0",
                  "FailureTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:e2e-failed-runs"}

ETL_TABLES = ("customer", "customer_address", "date_dim", "item", "store_sales",
              "stg_customer_address", "stg_item", "stg_store_sales")


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A throwaway stack; E2E_DATABASE_URL points it at an existing PostgreSQL whose ETL tables it DROPS."""
    database_url = os.environ.get("E2E_DATABASE_URL") or None
    s = LocalStack(run_dir=tmp_path_factory.mktemp("local-stack"), database_url=database_url, parameters=E2E_PARAMETERS)
    s.start()
    print(f"\nlocal stack started in {s.startup_seconds:.1f}s (logs: {s.run_dir}/logs)")
    if database_url:
        import psycopg
        with psycopg.connect(database_url, autocommit=True) as conn:
            for t in ETL_TABLES:
                conn.execute(f"drop table if exists {t} cascade")
    try:
        yield s
    finally:
        # The session's end: stop the stack and fail if a task token or secret seen on the wire is in any
        # of its logs (local/secret_scan.py; a teardown error fails the session).
        print("\n" + secret_scan.stop_and_check(s))
