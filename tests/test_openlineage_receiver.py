"""The local OpenLineage receiver (local/openlineage_receiver.py) on a free port: a well-formed RunEvent of
the shape the functions emit is stored; each way an event can be wrong is refused with its named reason,
counted, and not stored.

Run: .venv/bin/python -m pytest tests/test_openlineage_receiver.py -q
"""

from __future__ import annotations

import copy
import json
import sys
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

import openlineage_receiver as receiver  # noqa: E402
from procs import free_port  # noqa: E402

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACETS = {json.loads(p.read_text())["$id"].rsplit("/", 1)[-1].removesuffix(".json"): json.loads(p.read_text())["$id"]
          for p in (ROOT / "tests" / "fixtures" / "openlineage" / "facets").glob("*.json")}
PRODUCER = "https://github.com/example/redshift-etl-callback"
NS = "redshift://local-cluster.us-east-1:5439"


def facet(name: str, **fields) -> dict:
    return {"_producer": PRODUCER, "_schemaURL": f"{FACETS[name]}#/$defs/{name}", **fields}


def fail_event() -> dict:
    """A step's FAIL as the contract describes it: parent facet, error facet, datasets, output statistics."""
    return {
        "eventType": "FAIL", "eventTime": "2021-06-26T10:00:01.250Z", "producer": PRODUCER, "schemaURL": SPEC,
        "run": {"runId": str(uuid.uuid4()), "facets": {
            "parent": facet("ParentRunFacet", run={"runId": str(uuid.uuid4())},
                            job={"namespace": "redshift-etl-callback", "name": "SalesEtl"}),
            "errorMessage": facet("ErrorMessageRunFacet", message="invalid input syntax for type integer",
                                  programmingLanguage="SQL"),
        }},
        "job": {"namespace": "redshift-etl-callback", "name": "SalesEtl.LoadItem"},
        "inputs": [{"namespace": NS, "name": "dev.public.item"}],
        "outputs": [{"namespace": NS, "name": "dev.public.item",
                     "outputFacets": {"outputStatistics": facet("OutputStatisticsOutputDatasetFacet", rowCount=5)}}],
    }


@pytest.fixture()
def server(tmp_path):
    store = receiver.Store(tmp_path / "events.jsonl")
    srv = receiver.make_server(free_port(), store, receiver.Validator(), api_key=None)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", store
    srv.shutdown()
    srv.server_close()


def post(url: str, body, content_type: str = "application/json", headers: dict | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + receiver.PATH, data=data, method="POST",
                                 headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def listing(url: str) -> dict:
    with urllib.request.urlopen(url + receiver.PATH, timeout=5) as resp:
        return json.loads(resp.read())


def test_a_contract_shaped_event_is_stored(server):
    url, store = server
    event = fail_event()
    assert post(url, event) == (201, {"accepted": True})
    got = listing(url)
    assert got["events"] == [event]
    assert got["counts"] == {"accepted": 1}
    assert [json.loads(line) for line in store.path.read_text().splitlines()] == [event]


def _broken(change) -> dict:
    event = copy.deepcopy(fail_event())
    change(event)
    return event


CASES = {
    "SchemaViolation: no job": (lambda e: e.pop("job"), "SchemaViolation"),
    "SchemaViolation: eventTime not a date-time": (lambda e: e.update(eventTime="yesterday"), "SchemaViolation"),
    "SchemaViolation: runId not a uuid": (lambda e: e["run"].update(runId="run-1"), "SchemaViolation"),
    "SchemaViolation: unknown eventType": (lambda e: e.update(eventType="DONE"), "SchemaViolation"),
    "SchemaViolation: producer not a URI": (lambda e: e.update(producer="not a uri"), "SchemaViolation"),
    "SchemaViolation: facet without _schemaURL": (
        lambda e: e["run"]["facets"]["errorMessage"].pop("_schemaURL"), "SchemaViolation"),
    "SpecVersionNotPinned: 2-0-1": (
        lambda e: e.update(schemaURL=SPEC.replace("2-0-2", "2-0-1")), "SpecVersionNotPinned"),
    "FacetVersionNotPinned: another errorMessage version": (
        lambda e: e["run"]["facets"]["errorMessage"].update(
            _schemaURL="https://openlineage.io/spec/facets/0-9-9/ErrorMessageRunFacet.json"), "FacetVersionNotPinned"),
    "FacetSchemaViolation: errorMessage without programmingLanguage": (
        lambda e: e["run"]["facets"]["errorMessage"].pop("programmingLanguage"), "FacetSchemaViolation"),
    "FacetSchemaViolation: parent without job": (
        lambda e: e["run"]["facets"]["parent"].pop("job"), "FacetSchemaViolation"),
    "FacetSchemaViolation: rowCount a string": (
        lambda e: e["outputs"][0]["outputFacets"]["outputStatistics"].update(rowCount="5"), "FacetSchemaViolation"),
    "SchemaViolation: eventTime a date only": (lambda e: e.update(eventTime="2021-06-26"), "SchemaViolation"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_wrong_event_is_refused_with_its_name_and_not_stored(server, name):
    url, store = server
    change, reason = CASES[name]
    status, body = post(url, _broken(change))
    assert status == 400, body
    assert body["error"] == reason, body
    got = listing(url)
    assert got["events"] == [] and store.path.read_text() == ""
    assert got["counts"] == {"accepted": 0, body["error"]: 1}
    assert got["rejected"] == [body]


def test_the_client_models_are_an_independent_second_check():
    """A well-formed event builds the client's RunEvent with its facets; what the client's validators refuse
    is ClientModelRejected (reached on its own here: the schema check, which runs first, refuses this one too)."""
    validator = receiver.Validator()
    event = fail_event()
    built = receiver._build_run_event(event, validator.facets)
    assert built.eventType.value == "FAIL"
    assert built.run.facets["errorMessage"].message == event["run"]["facets"]["errorMessage"]["message"]
    assert built.run.facets["parent"].job.name == "SalesEtl"
    assert built.outputs[0].outputFacets["outputStatistics"].rowCount == 5
    bad = _broken(lambda e: e["run"].update(runId="not-a-uuid"))
    with pytest.raises(receiver.Refused) as err:
        receiver.check_client_models(bad, validator.facets)
    assert err.value.reason == "ClientModelRejected"


def test_transport_errors_are_named(server):
    url, _ = server
    assert post(url, b"{not json")[1]["error"] == "InvalidJson"
    assert post(url, [1, 2])[1]["error"] == "InvalidJson"
    status, body = post(url, fail_event(), content_type="text/plain")
    assert (status, body["error"]) == (415, "UnsupportedMediaType")
    assert listing(url)["counts"]["accepted"] == 0


def test_an_api_key_is_required_when_configured(tmp_path):
    store = receiver.Store(tmp_path / "events.jsonl")
    srv = receiver.make_server(free_port(), store, receiver.Validator(), api_key="k-123")
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        assert post(url, fail_event())[0] == 401
        assert post(url, fail_event(), headers={"Authorization": "Bearer wrong"})[0] == 401
        assert post(url, fail_event(), headers={"Authorization": "Bearer k-123"})[0] == 201
        assert "k-123" not in store.rejected_path.read_text()
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_required_key_comes_from_a_file_or_the_environment_once(tmp_path):
    import argparse

    key_file = tmp_path / "key"
    key_file.write_text("k-123\n")

    def args(api_key=None, api_key_file=None):
        return argparse.Namespace(api_key=api_key, api_key_file=api_key_file)

    assert receiver.api_key(args(), {}) is None
    assert receiver.api_key(args(api_key_file=key_file), {}) == "k-123"
    assert receiver.api_key(args(), {receiver.API_KEY_ENV: "k-456"}) == "k-456"
    assert receiver.api_key(args(api_key="k-789"), {}) == "k-789"
    with pytest.raises(SystemExit, match="once"):
        receiver.api_key(args(api_key_file=key_file), {receiver.API_KEY_ENV: "k-456"})
    key_file.write_text("  \n")
    with pytest.raises(SystemExit, match="empty"):
        receiver.api_key(args(api_key_file=key_file), {})


def test_lineage_reads_runs_back_in_event_time_order():
    """local/lineage.py (what `make local` prints and tests/e2e/test_lineage.py checks): events grouped by
    run, ordered by eventTime whatever their arrival order, with the parent, datasets, rows and error."""
    import lineage

    parent_id = str(uuid.uuid4())
    start = _broken(lambda e: e.update(eventType="START", eventTime="2021-06-26T10:00:00.100Z"))
    start["run"]["facets"].pop("errorMessage")
    start["outputs"][0].pop("outputFacets")
    fail = copy.deepcopy(fail_event())
    fail["run"]["runId"] = start["run"]["runId"]
    for ev in (start, fail):
        ev["run"]["facets"]["parent"]["run"]["runId"] = parent_id
    top = {"eventType": "START", "eventTime": "2021-06-26T10:00:00.000Z", "producer": PRODUCER, "schemaURL": SPEC,
           "run": {"runId": parent_id}, "job": {"namespace": "redshift-etl-callback", "name": "SalesEtl"}}
    got = lineage.runs([fail, top, start])  # the FAIL arrived first
    assert list(got) == [parent_id, start["run"]["runId"]]
    step = got[start["run"]["runId"]]
    assert step.events == ["START", "FAIL"] and step.terminal == "FAIL"
    assert (step.parent_run_id, step.parent_job, step.job) == (parent_id, "SalesEtl", "SalesEtl.LoadItem")
    assert step.inputs == step.outputs == [f"{NS}/dev.public.item"]
    assert step.rows == {f"{NS}/dev.public.item": 5}
    assert step.error == "invalid input syntax for type integer"
    assert got[parent_id].terminal is None
    text = lineage.describe(got)
    assert "SalesEtl.LoadItem" in text and "START -> FAIL" in text and "item (5 rows)" in text
