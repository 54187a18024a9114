"""The local stack's OpenLineage receiver: an HTTP endpoint the functions' lineage transport posts to
(template parameter OpenLineageUrl), which checks every event twice and keeps the accepted ones.

    python local/openlineage_receiver.py --port P --store FILE [--api-key-file FILE]

With a key (`--api-key-file FILE`, the file's text without surrounding white space, or the environment
variable OPENLINEAGE_RECEIVER_API_KEY; `--api-key KEY` too, though a command line is visible to every user
of the machine) every POST must carry `Authorization: Bearer <key>`, as the OpenLineage HTTP transport's
`api_key` auth sends it; a missing or wrong one is answered 401 `Unauthorized` before the body is read.

- `POST /api/v1/lineage` (Content-Type application/json), one RunEvent per request, as the OpenLineage
  HTTP transport sends it. The event is checked
  1. against the pinned official JSON schema, tests/fixtures/openlineage/OpenLineage-2-0-2.json
     (`$defs/RunEvent`), with every `$ref` resolved offline from the pinned files (no network);
  2. facet by facet: a standard facet (its key and kind - run, job, dataset, input or output facet - as
     the pinned tests/fixtures/openlineage/facets/*.json declare them) must name that pinned facet
     schema in its `_schemaURL` and validate against it; a custom facet only against the base schema;
  3. as a second, independent check, by building the OpenLineage Python client's own models
     (openlineage-python, `openlineage.client.generated`) from it: their constructors and validators
     (a UUID run id, an ISO date-time with a time, the event type) must accept it, and a standard
     facet's `_schemaURL` must be the one the client's model declares.
  Accepted: `201 {"accepted": true}` and the event is appended to the JSONL store. Refused: HTTP 400
  (415 for another content type, 401 for a wrong API key when one is configured) and
  `{"error": <name>, "message": ...}` with one of the names in REASONS; refusals are counted by name
  and kept (reason, message, the event) in <store>.rejected.jsonl.
- `GET /api/v1/lineage`: `{"events": [...accepted, in arrival order], "rejected": [{"error", "message"}],
  "counts": {"accepted": N, "<reason>": N}}`. `GET /health`: 200.

The Authorization header is never logged or stored. Stdlib HTTP server (ThreadingHTTPServer): the local
stack sends a few events per step.
"""

from __future__ import annotations

import argparse
import enum
import functools
import importlib
import json
import pkgutil
import sys
import threading
import types
import typing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "tests" / "fixtures" / "openlineage"
SPEC_FILE = SCHEMA_DIR / "OpenLineage-2-0-2.json"
PATH = "/api/v1/lineage"
MAX_BODY = 1 << 20  # 1 MiB: far more than a step's event

# Refusal names (the `error` of a 400 answer), stable: tests and docs/local-stack.md use them.
REASONS = {
    "UnsupportedMediaType": "the request's Content-Type is not application/json",
    "Unauthorized": "an API key is configured and the request's Authorization is not `Bearer <key>`",
    "BodyTooLarge": f"the body is larger than {MAX_BODY} bytes",
    "InvalidJson": "the body is not a JSON object",
    "SpecVersionNotPinned": "the event's schemaURL is not the pinned spec's RunEvent (2-0-2)",
    "SchemaViolation": "the event does not validate against the pinned OpenLineage.json RunEvent",
    "FacetVersionNotPinned": "a standard facet's _schemaURL is not the pinned facet schema",
    "FacetSchemaViolation": "a standard facet does not validate against its pinned facet schema",
    "ClientModelRejected": "the OpenLineage Python client's models refuse the event",
}

# RunEvent facet containers: (path to a list of objects or an object, key holding the facets, facet kind)
CONTAINERS = (
    ("run", "facets", "RunFacet"),
    ("job", "facets", "JobFacet"),
    ("inputs", "facets", "DatasetFacet"),
    ("inputs", "inputFacets", "InputDatasetFacet"),
    ("outputs", "facets", "DatasetFacet"),
    ("outputs", "outputFacets", "OutputDatasetFacet"),
)


class Refused(Exception):
    def __init__(self, reason: str, message: str, status: int = 400):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {message}")
        self.reason, self.message, self.status = reason, message, status


@dataclass(frozen=True)
class FacetSchema:
    key: str  # the facet's key in its container, e.g. "errorMessage"
    kind: str  # RunFacet, JobFacet, DatasetFacet, InputDatasetFacet, OutputDatasetFacet
    model: str  # its $defs name, which is also the client's class name, e.g. ErrorMessageRunFacet
    url: str  # the pinned schema's $id, e.g. https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json
    validator: jsonschema.protocols.Validator


def _format_checker() -> jsonschema.FormatChecker:
    """Draft 2020-12's format checks (date-time, uuid, ...) plus `uri`, which jsonschema checks only with
    an optional package: a scheme and something after it."""
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    checker = jsonschema.FormatChecker(list(checker.checkers))

    @checker.checks("uri", raises=ValueError)
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parsed = urlparse(value)
        return bool(parsed.scheme) and bool(parsed.netloc or parsed.path)

    return checker


@dataclass
class Validator:
    """The pinned spec and facet schemas, loaded once; `check(event)` raises Refused or returns."""
    schema_dir: Path = SCHEMA_DIR
    facets: dict[tuple[str, str], FacetSchema] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = json.loads((self.schema_dir / SPEC_FILE.name).read_text())
        documents = [spec] + [json.loads(p.read_text()) for p in sorted((self.schema_dir / "facets").glob("*.json"))]
        registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in documents)
        checker = _format_checker()
        self.spec_id = spec["$id"]
        self.run_event_url = f"{self.spec_id}#/$defs/RunEvent"
        self.event_validator = jsonschema.Draft202012Validator(
            {"$ref": self.run_event_url}, registry=registry, format_checker=checker)
        for doc in documents[1:]:
            for key, prop in (doc.get("properties") or {}).items():
                # one facet per $defs entry; LineageFacet's `lineage` is a dataset or a job facet (anyOf)
                for ref in [prop] + list(prop.get("anyOf", [])):
                    if "$ref" not in ref:
                        continue
                    model = ref["$ref"].rsplit("/", 1)[-1]
                    kinds = [part["$ref"].rsplit("/", 1)[-1] for part in doc["$defs"][model].get("allOf", [])
                             if "$ref" in part and part["$ref"].startswith(self.spec_id)]
                    for kind in kinds:
                        self.facets[(kind, key)] = FacetSchema(key, kind, model, doc["$id"], jsonschema.Draft202012Validator(
                            {"$ref": f"{doc['$id']}#/$defs/{model}"}, registry=registry, format_checker=checker))

    def check(self, event: object) -> None:
        if not isinstance(event, dict):
            raise Refused("InvalidJson", f"expected a JSON object, got {type(event).__name__}")
        url = event.get("schemaURL")
        if not isinstance(url, str) or url.split("#")[0] != self.spec_id:
            raise Refused("SpecVersionNotPinned", f"schemaURL {url!r}; the receiver validates {self.run_event_url}")
        error = jsonschema.exceptions.best_match(self.event_validator.iter_errors(event))
        if error is not None:
            raise Refused("SchemaViolation", _describe(error))
        for kind, key, facet in self._facets(event):
            pinned = self.facets.get((kind, key))
            if pinned is None:
                continue  # a custom facet: the base schema (checked above) is all the spec asks of it
            claimed = str(facet.get("_schemaURL", "")).split("#")[0]
            if claimed != pinned.url:
                raise Refused("FacetVersionNotPinned", f"{kind} {key!r} claims {claimed!r}; pinned is {pinned.url}")
            error = jsonschema.exceptions.best_match(pinned.validator.iter_errors(facet))
            if error is not None:
                raise Refused("FacetSchemaViolation", f"{kind} {key!r}: {_describe(error)}")
        check_client_models(event, self.facets)

    @staticmethod
    def _facets(event: dict):
        for where, holder, kind in CONTAINERS:
            nodes = event.get(where) or []
            for node in nodes if isinstance(nodes, list) else [nodes]:
                for key, facet in ((node or {}).get(holder) or {}).items():
                    yield kind, key, facet


def _describe(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(event)"
    return f"at {where}: {error.message[:300]}"


# -- second check: the OpenLineage Python client's models ------------------------------------------

def check_client_models(event: dict, facets: dict[tuple[str, str], FacetSchema]) -> None:
    """Build openlineage.client.generated.base.RunEvent (and each standard facet's class) from the event;
    a constructor or validator refusing it, or a facet class declaring another schema URL, is
    ClientModelRejected."""
    try:
        _build_run_event(event, facets)
    except Refused:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as err:
        raise Refused("ClientModelRejected", f"{type(err).__name__}: {str(err)[:300]}") from err


@functools.lru_cache(maxsize=1)
def _models():
    import openlineage.client.generated as generated
    from openlineage.client.generated import base

    classes = {}
    for info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"openlineage.client.generated.{info.name}")
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, base.BaseFacet):
                classes.setdefault(name, obj)
    return base, classes


def _build_run_event(event: dict, facets: dict[tuple[str, str], FacetSchema]):
    base, classes = _models()

    def facet_models(kind: str, found: dict | None) -> dict:
        out = {}
        for key, value in (found or {}).items():
            pinned = facets.get((kind, key))
            if pinned is None:
                continue  # custom facets have no client model
            cls = classes.get(pinned.model)
            if cls is None:
                raise ValueError(f"the client has no model {pinned.model} for {kind} {key!r}")
            model = _structure(cls, value)
            declared = model._get_schema().split("#")[0]
            if declared != pinned.url:
                raise Refused("ClientModelRejected",
                              f"{kind} {key!r}: the client's {pinned.model} is {declared}, the event's {pinned.url}")
            out[key] = model
        return out

    run = base.Run(runId=event["run"]["runId"], facets=facet_models("RunFacet", event["run"].get("facets")))
    job = base.Job(namespace=event["job"]["namespace"], name=event["job"]["name"],
                   facets=facet_models("JobFacet", event["job"].get("facets")))
    inputs = [base.InputDataset(namespace=d["namespace"], name=d["name"],
                                facets=facet_models("DatasetFacet", d.get("facets")),
                                inputFacets=facet_models("InputDatasetFacet", d.get("inputFacets")))
              for d in event.get("inputs") or []]
    outputs = [base.OutputDataset(namespace=d["namespace"], name=d["name"],
                                  facets=facet_models("DatasetFacet", d.get("facets")),
                                  outputFacets=facet_models("OutputDatasetFacet", d.get("outputFacets")))
               for d in event.get("outputs") or []]
    event_type = base.EventType(event["eventType"]) if event.get("eventType") is not None else None
    return base.RunEvent(eventType=event_type, eventTime=event["eventTime"], run=run, job=job,
                         producer=event["producer"], inputs=inputs, outputs=outputs)


def _structure(cls, data):
    """An attrs model from its JSON: each init field from the key of the same name (`_producer` is not
    passed: the model fills it), nested attrs classes, lists and dicts of them, and enums built recursively."""
    import attr

    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in attr.fields(cls):
        if not f.init or f.name.startswith("_"):
            continue
        if f.name in data:
            kwargs[f.name] = _value(hints.get(f.name), data[f.name])
    return cls(**kwargs)


def _value(hint, value):
    import attr

    if value is None or hint is None:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None):
                continue
            return _value(arg, value)
    if origin is list and args:
        return [_value(args[0], v) for v in value]
    if origin is dict and len(args) == 2:
        return {k: _value(args[1], v) for k, v in value.items()}
    if isinstance(hint, type) and attr.has(hint):
        return _structure(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    return value


# -- the server -------------------------------------------------------------------------------------

class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.rejected_path = self.path.with_suffix(".rejected.jsonl")
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {"accepted": 0}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for p in (self.path, self.rejected_path):
            p.touch()

    def accept(self, event: dict) -> None:
        with self.lock:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(event, separators=(",", ":")) + "\n")
            self.counts["accepted"] += 1

    def reject(self, refused: Refused, event: object) -> None:
        with self.lock:
            with open(self.rejected_path, "a") as fh:
                fh.write(json.dumps({"error": refused.reason, "message": refused.message, "event": event}) + "\n")
            self.counts[refused.reason] = self.counts.get(refused.reason, 0) + 1

    def listing(self) -> dict:
        with self.lock:
            events = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
            rejected = [{k: r[k] for k in ("error", "message")} for r in
                        (json.loads(line) for line in self.rejected_path.read_text().splitlines() if line.strip())]
            return {"events": events, "rejected": rejected, "counts": dict(self.counts)}


def make_server(port: int, store: Store, validator: Validator, api_key: str | None = None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "openlineage-receiver"

        def log_message(self, fmt, *args):  # noqa: ANN001 - the request line only, never headers
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            path = urlparse(self.path).path
            if path == "/health":
                return self._answer(200, {"ok": True})
            if path == PATH:
                return self._answer(200, store.listing())
            return self._answer(404, {"error": "NotFound", "message": f"no {path}; POST/GET {PATH}"})

        def do_POST(self):  # noqa: N802
            path = urlparse(self.path).path
            if path != PATH:
                return self._answer(404, {"error": "NotFound", "message": f"no {path}; POST {PATH}"})
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_BODY + 1))
            event: object = None
            try:
                if api_key is not None and self.headers.get("Authorization") != f"Bearer {api_key}":
                    raise Refused("Unauthorized", "missing or wrong Bearer API key", 401)
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise Refused("UnsupportedMediaType", f"Content-Type {ctype or '(none)'!r}", 415)
                if length > MAX_BODY:
                    raise Refused("BodyTooLarge", f"{length} bytes")
                try:
                    event = json.loads(body)
                except ValueError as err:
                    raise Refused("InvalidJson", str(err)) from err
                validator.check(event)
            except Refused as refused:
                store.reject(refused, event)
                return self._answer(refused.status, {"error": refused.reason, "message": refused.message})
            store.accept(event)
            return self._answer(201, {"accepted": True})

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


API_KEY_ENV = "OPENLINEAGE_RECEIVER_API_KEY"


def api_key(args: argparse.Namespace, environ: dict[str, str]) -> str | None:
    """The key the receiver requires, from at most one of --api-key, --api-key-file and API_KEY_ENV."""
    given = {name: value for name, value in (
        ("--api-key", args.api_key),
        ("--api-key-file", Path(args.api_key_file).read_text().strip() if args.api_key_file else None),
        (API_KEY_ENV, environ.get(API_KEY_ENV) or None)) if value is not None}
    if len(given) > 1:
        raise SystemExit(f"openlineage_receiver.py: give the API key once, not by {' and '.join(given)}")
    key = next(iter(given.values()), None)
    if key is not None and not key:
        raise SystemExit("openlineage_receiver.py: the API key is empty")
    return key


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True, help="accepted events, one JSON per line")
    parser.add_argument("--api-key-file", type=Path, default=None,
                        help="require `Authorization: Bearer <the file's text>`")
    parser.add_argument("--api-key", default=None, help="require `Authorization: Bearer <key>` (visible in ps)")
    args = parser.parse_args(argv)
    key = api_key(args, dict(os.environ))
    server = make_server(args.port, Store(args.store), Validator(), key)
    print(f"openlineage receiver on http://127.0.0.1:{args.port}{PATH}, storing into {args.store}"
          + (", API key required" if key else ""), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
