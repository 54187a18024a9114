"""The server: moto's configuration (patch 1), its request dispatch (patch 21), its WSGI application
behind waitress (patch 23) and the requests probe.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from .guard import install, mark, require


# waitress worker threads (patch 23): more than every request that can block at once (the
# synchronous invokes of waiting Tasks, each holding a thread until its function answers, while
# the functions' own calls need threads too).
WSGI_THREADS = 384


def configure() -> None:
    """Patch 1; targets moto 5.2.5. What AWS does, what moto does, the fix:

    Configuration (moto's own config API, applied in-process before the server starts):
    `{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}` so that
    StartExecution really interprets the ASL, and Lambda calls land in
    `moto.awslambda_simple.models.LambdaSimpleBackend`. The interpreter calls the other services
    back over HTTP at `localhost:$MOTO_PORT` (moto.settings.moto_server_port), so MOTO_PORT is set.

    Still needed? without it StartExecution does not interpret the ASL (moto's default
    `default_user_config` in moto/core/config.py is `execute_state_machine: False`) and Lambda wants
    Docker.
    """
    from moto.core.config import default_user_config
    from moto.moto_api._internal.models import moto_api_backend

    require(1, moto_api_backend, "set_config")
    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
    mark(1, lambda: default_user_config["stepfunctions"]["execute_state_machine"] is True
         and default_user_config["lambda"]["use_docker"] is False)


def patch_request_dispatch() -> None:
    """Patch 21; targets moto 5.2.5. What AWS does, what moto does, the fix:

    moto's request dispatcher lists moto's package directory (`list_of_moto_modules`, hundreds of
    `isdir` calls) for every request, inside a lock every request takes; the list is now read
    once. werkzeug's access log line per request is off (warnings and errors stay).

    Still needed? `moto.backends.list_of_moto_modules` still lists the package directory on every call
    (it runs per request from the dispatcher).
    """
    from moto import backends

    modules = tuple(require(21, backends, "list_of_moto_modules", ())())
    install(21, backends, "list_of_moto_modules", lambda: modules)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _request_kind(environ: dict) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target
    path = environ.get("PATH_INFO", "")
    if "/functions/" in path and path.endswith("/invocations"):
        return "Lambda.Invoke"
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = auth.split("Credential=")[1].split("/")[3] if "Credential=" in auth else "?"
    return f"{service} {environ.get('REQUEST_METHOD')}"


_stats: dict[str, list[float]] | None = None  # the requests probe's figures, when it is on
_stats_lock = threading.Lock()


def _record(kind: str, cpu: float, wall: float) -> None:
    if _stats is None:
        return
    with _stats_lock:
        entry = _stats.setdefault(kind, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += cpu
        entry[2] += wall


def probe_requests(path: str | None, every: float = 2.0) -> None:
    """`--requests-log PATH`: where moto's one process spends its CPU and the functions their time.
    Per request kind (the X-Amz-Target, or service and method): count, CPU seconds of the thread
    that served it, wall seconds; per function: the time invocations waited for a slot (patch 22)
    and spent at cargo lambda; and the process's CPU in all (the rest is the interpreter's and the
    adapter's threads). Rewritten as one JSON document every `every` seconds."""
    global _stats
    if not path:
        return
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    _stats = {}
    original = require("requests probe", DomainDispatcherApplication, "__call__", ("self", "environ", "start_response"))

    def call(self, environ, start_response):  # noqa: ANN001
        kind, cpu, wall = _request_kind(environ), time.thread_time(), time.monotonic()
        try:
            return original(self, environ, start_response)
        finally:
            _record(kind, time.thread_time() - cpu, time.monotonic() - wall)

    install("requests probe", DomainDispatcherApplication, "__call__", call)
    started = time.monotonic()

    def dump() -> None:
        while True:
            time.sleep(every)
            with _stats_lock:
                requests = {k: {"count": v[0], "cpu_s": round(v[1], 3), "wall_s": round(v[2], 3)}
                            for k, v in sorted(_stats.items(), key=lambda kv: (-kv[1][1], -kv[1][2]))}
            doc = {"seconds": round(time.monotonic() - started, 1), "process_cpu_s": round(time.process_time(), 3),
                   "threads": threading.active_count(), "requests": requests}
            tmp = path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(doc, fh, indent=1)
            os.replace(tmp, path)

    threading.Thread(target=dump, daemon=True, name="requests-probe").start()


def serve(port: int) -> None:
    """Patch 23; targets moto 5.2.5 and waitress 3.0.2. What AWS does, what moto does, the fix:

    Not moto's models: its server. werkzeug's development server closes the connection after every
    request and starts a thread per connection from one accept loop; under load (a hundred
    executions, ~300 interpreter threads on one GIL) every request waited 100-250 ms to be
    accepted although moto served it in ~3 ms, and a completer's five calls took a second. moto's
    WSGI application (`DomainDispatcherApplication`, as `moto_server` builds it) is served by
    waitress instead: keep-alive connections and a fixed pool of WSGI_THREADS worker threads.
    waitress 3.0.2 (pinned in local/requirements.txt) never answered a request without a body that
    carries `Expect: 100-continue` (boto3's empty PutObject) after its "100 Continue"; such a
    request now gets no "100 Continue", only its response.

    Still needed? moto's `moto_server` still runs werkzeug's development server; for the waitress part,
    whether the pinned waitress still sends `100 Continue` to a request without a body (an empty
    PutObject from boto3 hangs).
    """
    import signal

    import waitress
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" warnings under load
    waitress.serve(app, host="127.0.0.1", port=port, threads=WSGI_THREADS, connection_limit=4096,
                   channel_timeout=600, backlog=2048, ident="moto")


def patch_waitress_continue() -> None:
    """Patch 23, second part: waitress without "100 Continue" for a request without a body (see `serve`)."""
    from waitress.parser import HTTPRequestParser

    parse_header = require(23, HTTPRequestParser, "parse_header", ("self", "header_plus"))

    def no_continue_without_body(self, header_plus):  # noqa: ANN001
        # waitress 3.0.2 answers `Expect: 100-continue` on a request without a body (boto3 sends it
        # with an empty PutObject) with "100 Continue" and then never with the response.
        parse_header(self, header_plus)
        if not self.chunked and not self.content_length:
            self.expect_continue = False

    install(23, HTTPRequestParser, "parse_header", no_continue_without_body)
