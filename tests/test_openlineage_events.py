"""The OpenLineage events the functions send are valid OpenLineage 2-0-2 run events.

`tests/fixtures/openlineage/events/*.json` are exactly what `etl_callback::lineage` builds (the Rust test
`the_events_are_the_fixtures_the_schema_test_validates` compares them), and this test validates each against
the pinned spec (`tests/fixtures/openlineage/OpenLineage-2-0-2.json`, OpenLineage commit a81dabd9) and every
facet against its own pinned schema (`facets/`, the `_schemaURL` the event names).

    .venv/bin/python -m pytest tests/test_openlineage_events.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

HERE = Path(__file__).resolve().parent / "fixtures" / "openlineage"
EVENTS = sorted((HERE / "events").glob("*.json"))


def registry() -> Registry:
    schemas = [HERE / "OpenLineage-2-0-2.json", *sorted((HERE / "facets").glob("*.json"))]
    resources = []
    for path in schemas:
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


REGISTRY = registry()
SPEC = json.loads((HERE / "OpenLineage-2-0-2.json").read_text())


def validate(instance: dict, schema_url: str) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": schema_url}
    jsonschema.Draft202012Validator(schema, registry=REGISTRY,
                                    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(instance)


def facets(event: dict):
    """Every facet of the event with its `_schemaURL`."""
    yield from event["run"].get("facets", {}).values()
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for kind in ("facets", "inputFacets", "outputFacets"):
            yield from dataset.get(kind, {}).values()


def test_every_event_kind_has_a_fixture():
    assert {p.stem for p in EVENTS} == {"start", "complete", "fail", "abort", "execution-start", "execution-fail"}


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.stem)
def test_the_event_is_a_valid_2_0_2_run_event_and_each_facet_matches_its_schema(path):
    event = json.loads(path.read_text())
    assert event["schemaURL"] == f"{SPEC['$id']}#/$defs/RunEvent"
    validate(event, event["schemaURL"])
    seen = 0
    for facet in facets(event):
        validate(facet, facet["_schemaURL"])
        seen += 1
    # a step's events: the parent facet, at least; the execution's own run has no parent
    assert seen >= (0 if path.stem == "execution-start" else 1)


def test_the_schema_check_refuses_a_broken_event():
    """The validation can fail: a run id that is no UUID, an unknown event type, a facet without its fields."""
    event = json.loads((HERE / "events" / "fail.json").read_text())
    for broken in (
        {**event, "run": {**event["run"], "runId": "not-a-uuid"}},
        {**event, "eventType": "FINISHED"},
        {k: v for k, v in event.items() if k != "producer"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, event["schemaURL"])
    error = dict(event["run"]["facets"]["errorMessage"])
    del error["programmingLanguage"]
    with pytest.raises(jsonschema.ValidationError):
        validate(error, error["_schemaURL"])
