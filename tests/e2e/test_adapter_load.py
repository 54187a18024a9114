"""The local stack under concurrent load, as the soak drives it: what AWS guarantees and the local
parts did not (local/moto_adapter patches 22 and 24) still holds when many requests arrive at once."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

from botocore.config import Config
from botocore.exceptions import ClientError

MANY = 150  # more than cargo lambda's per-function queue holds (100)


def test_more_concurrent_invokes_than_cargo_lambda_queues_all_get_their_answer(stack):
    # Without the adapter's limit, the 101st queued invocation deadlocks cargo lambda 1.9.2 and
    # every invocation of every function times out. A scheduled sweep takes the reconciler tens of
    # milliseconds, so a burst of them queues up (the soak's burst: a hundred executions at once).
    fn = stack.deployment.functions["ReconcilerFunction"].name
    lam = stack.client("lambda", config=Config(max_pool_connections=MANY, read_timeout=120, retries={"max_attempts": 0}))
    event = {"version": "0", "id": "e2e", "detail-type": "Scheduled Event", "source": "aws.events",
             "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
             "resources": [], "detail": {}}

    def invoke(_: int) -> dict:
        out = lam.invoke(FunctionName=fn, Payload=json.dumps(event).encode())
        return {"error": out.get("FunctionError"), "body": json.loads(out["Payload"].read())}

    with ThreadPoolExecutor(max_workers=MANY) as pool:
        answers = list(pool.map(invoke, range(MANY)))
    assert [a for a in answers if a["error"]] == []
    assert {a["body"]["trigger"] for a in answers} == {"schedule"}


def test_concurrent_conditional_writes_to_one_item_are_atomic(stack):
    # The completer's claim and the run lock rely on DynamoDB applying each conditional write to an
    # item atomically: exactly one of many concurrent claims wins, no increment is lost.
    ddb = stack.client("dynamodb", config=Config(max_pool_connections=64, retries={"max_attempts": 0}))
    table = stack.deployment.tables["TokenTable"]
    key = {"statementId": {"S": f"e2e-atomic-{uuid.uuid4()}"}}

    def claim(i: int) -> str:
        try:
            ddb.update_item(TableName=table, Key=key, UpdateExpression="SET claimedBy = :me, n = if_not_exists(n, :zero) + :one",
                            ConditionExpression="attribute_not_exists(claimedBy)",
                            ExpressionAttributeValues={":me": {"S": str(i)}, ":zero": {"N": "0"}, ":one": {"N": "1"}})
            return "won"
        except ClientError as err:
            return err.response["Error"]["Code"]

    def count(_: int) -> None:
        ddb.update_item(TableName=table, Key=key, UpdateExpression="SET hits = if_not_exists(hits, :zero) + :one",
                        ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}})

    try:
        with ThreadPoolExecutor(max_workers=64) as pool:
            claims = list(pool.map(claim, range(64)))
            list(pool.map(count, range(200)))
        assert claims.count("won") == 1
        assert set(claims) == {"won", "ConditionalCheckFailedException"}
        item = ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
        assert item["n"] == {"N": "1"}
        assert item["hits"] == {"N": "200"}
    finally:
        ddb.delete_item(TableName=table, Key=key)
