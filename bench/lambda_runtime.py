"""The functions' own benchmark (`make bench`): each release binary under a local Lambda Runtime API.

    python bench/lambda_runtime.py [--starts 21] [--events 1000] [--profile release] [--quick]

For each function (submitter, completer, reconciler: `cargo build --release`, the native build of the
profile `sam build` deploys) it measures the following. A process started without the local stack
gets template.yaml's variables for its function (local/template_env.py, with the local stack's
parameters; tests/test_function_env.py proves each binary starts with them), never a copied list.

- start-to-ready: process start (just before exec) -> its first `GET /runtime/invocation/next`,
  over `--starts` fresh processes; the median is checked. Init here is what a cold start does
  before the first event: tracing, typed config, `aws_config` defaults, the SDK clients.
- peak RSS over a burst: `VmHWM` from /proc/<pid>/status after `--events` invocations fed one
  after another to the same process (submitter and completer), against a throwaway local stack
  (moto + the Redshift Data emulator on PostgreSQL, plain http). What the events exercise:
  * submitter: `events/submitter.json` with the deployed definition's `scriptsVersion`, a new task
    token and `retryCount` per event (the same Task entry retried): S3 GetObject of
    `<version>/load_item.sql`, script preparation, BatchExecuteStatement (the same ClientToken, so the emulator returns the same statement), and
    the DynamoDB re-attach UpdateItem that replaces the previous attempt's token.
  * completer: status-change events from `events/completer-*.json` (FINISHED, FAILED, ABORTED in
    turn), each for its own statement id whose rendezvous item already holds a token: record the
    event (UpdateItem), claim, DescribeStatement (the emulator does not know these ids: the
    "from the event alone" path), SendTaskSuccess/SendTaskFailure (moto answers that the made-up
    token's task does not exist: the "already closed" path) and the completion mark.
  * first-invocation latency (informational): next -> response of the first event against that
    of the median later one; the difference is what a cold connection and lazy SDK set-up cost.

Exit 1 when a target is missed. Targets have headroom for a busy 2-core machine (docs/benchmarks.md,
"The functions: size, start, memory").
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "local"))

# Targets (issue: start-to-ready <= 50 ms median, peak RSS <= 40 MB over 1,000 events). The
# checks are the targets themselves; the measured figures sit far below them (docs/benchmarks.md).
START_TARGET_MS = 50.0
RSS_TARGET_MB = 40.0
FUNCTIONS = ("submitter", "completer", "reconciler")
PREFIX = "/2018-06-01/runtime"
# Lambda gives a function CPU in proportion to memory, one full vCPU at 1,769 MB.
LAMBDA_128_SLOWDOWN = 1769 / 128


def schedstat(pid: int) -> tuple[int, int]:
    """(ns on a CPU summed over the process's threads, ns its main thread was runnable but waiting
    for a CPU)."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:
            continue
        run += int(fields[0])
        if task.name == str(pid):
            wait = int(fields[1])
    return run, wait


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        pass  # a function process stopped mid-connection: expected when a run ends


class RuntimeApi:
    """The Lambda Runtime API on 127.0.0.1: hands out queued events, records responses and errors."""

    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.first_next: float | None = None
        self.pid: int | None = None
        self.sched_at_first_next: tuple[int, int] = (0, 0)
        self.next_at: dict[str, float] = {}
        self.cpu_at: dict[str, int] = {}
        self.init_error: str | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def log_message(self, *_args) -> None:  # noqa: ANN002
                pass

            def _reply(self, status: int, body: bytes = b"{}", headers: dict | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the process was stopped meanwhile
                    pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                now = time.monotonic()
                if api.first_next is None:
                    api.sched_at_first_next = schedstat(api.pid) if api.pid else (0, 0)
                    api.first_next = now
                payload = api.events.get()
                if payload is None:  # shutting down: the process is killed before it reads this
                    return self._reply(500)
                request_id = str(uuid.uuid4())
                api.next_at[request_id] = time.monotonic()
                api.cpu_at[request_id] = schedstat(api.pid)[0] if api.pid else 0
                self._reply(200, json.dumps(payload).encode(), {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60_000),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                })

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts[:2] == ["init", "error"]:
                    api.init_error = body.decode(errors="replace")
                    api.results.put(("init-error", None, 0.0, 0.0))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    took = time.monotonic() - api.next_at.pop(parts[1], time.monotonic())
                    cpu = (schedstat(api.pid)[0] - api.cpu_at.pop(parts[1], 0)) / 1e6 if api.pid else 0.0
                    api.results.put((parts[2], body, took, cpu))
                else:
                    return self._reply(404)
                self._reply(202)

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.events.put(None)
        self.server.shutdown()


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """What Lambda sets, plus the function's own variables; no AWS profile files (Lambda has none)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN",
    }
    env.update(extra)
    return env


# A standalone start's stack name (STATEMENT_NAME_PREFIX, STACK_NAME) and where its AWS calls go: a
# port nothing listens on, so a call made during start-up fails at once instead of reaching AWS.
STANDALONE_STACK = "bench"
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"


@functools.cache
def template_envs() -> dict[str, dict[str, str]]:
    from stack import LOCAL_PARAMETERS  # noqa: PLC0415
    from template_env import function_envs  # noqa: PLC0415

    return function_envs(ROOT / "template.yaml", LOCAL_PARAMETERS, stack_name=STANDALONE_STACK)


def standalone_env(binary: str) -> dict[str, str]:
    """`binary`'s variables when no stack is needed: template.yaml's, resolved with the local stack's
    parameters (local/template_env.py, the one source; tests/test_function_env.py starts every
    function with it), and an unreachable AWS endpoint."""
    envs = template_envs()
    if binary not in envs:
        raise KeyError(f"template.yaml names no function with binary {binary} (it names {sorted(envs)})")
    return {**envs[binary], "AWS_ENDPOINT_URL": UNREACHABLE_ENDPOINT}


class Function:
    """One process of `binary` under its own Runtime API."""

    def __init__(self, binary: Path, env: dict[str, str], log) -> None:  # noqa: ANN001
        self.api = RuntimeApi()
        t0 = time.monotonic()
        self.proc = subprocess.Popen([str(binary)], env=base_env({**env, "AWS_LAMBDA_RUNTIME_API": self.api.address}),
                                     stdout=log, stderr=log)
        self.api.pid = self.proc.pid
        self.started = t0

    def ready(self, timeout: float = 10) -> tuple[float, float, float]:
        """(wall ms, ms on a CPU, ms waiting for a CPU) from process start to the first GET next."""
        deadline = time.monotonic() + timeout
        while self.api.first_next is None:
            if self.proc.poll() is not None or self.api.init_error or time.monotonic() > deadline:
                raise RuntimeError(f"not ready: exit {self.proc.poll()}, init error {self.api.init_error}")
            time.sleep(0.0005)
        run, wait = self.api.sched_at_first_next
        return (self.api.first_next - self.started) * 1000, run / 1e6, wait / 1e6

    def ready_ms(self, timeout: float = 10) -> float:
        return self.ready(timeout)[0]

    def invoke(self, payload: dict, timeout: float = 60) -> tuple[str, bytes, float, float]:
        """(response or error, body, seconds next -> post, ms on a CPU meanwhile)"""
        self.api.events.put(payload)
        return self.api.results.get(timeout=timeout)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.api.close()


def start_to_ready(binaries: dict[str, Path], starts: int, log) -> dict[str, list[tuple]]:  # noqa: ANN001
    """Per function, (wall, on-CPU, waiting-for-CPU) ms of each start."""
    out: dict[str, list[tuple]] = {}
    for name, binary in binaries.items():
        samples = []
        for _ in range(starts):
            fn = Function(binary, standalone_env(name), log)
            try:
                samples.append(fn.ready())
            finally:
                fn.stop()
        out[name] = samples
    return out


def submitter_events(n: int, scripts_version: str | None) -> list[dict]:
    """`events/submitter.json` as the deployed definition's Task sends it: with the scripts' version
    its SQL Tasks name (Deployment.scripts_version, read from the definition), under which the local
    stack uploaded the scripts."""
    base = json.loads((ROOT / "events" / "submitter.json").read_text())
    if scripts_version:
        base["scriptsVersion"] = scripts_version
    execution = f"bench-{uuid.uuid4().hex[:8]}"
    return [{**base, "executionName": execution, "retryCount": i,
             "taskToken": f"{base['taskToken'][:-2]}{i:06d}"} for i in range(n)]


def completer_events(n: int) -> list[dict]:
    fixtures = [json.loads((ROOT / "events" / f"completer-{s}.json").read_text())
                for s in ("finished", "failed", "aborted")]
    events = []
    for i in range(n):
        ev = json.loads(json.dumps(fixtures[i % 3]))
        ev["id"] = str(uuid.uuid4())
        ev["detail"]["statementId"] = str(uuid.uuid4())
        events.append(ev)
    return events


def seed_tokens(ddb, table: str, events: list[dict]) -> None:  # noqa: ANN001
    """The submitter's half for each completer event: a waiting token (as record_task leaves it)."""
    now = int(time.time())
    for i, ev in enumerate(events):
        ddb.put_item(TableName=table, Item={
            "statementId": {"S": ev["detail"]["statementId"]},
            "taskToken": {"S": f"bench-token-{i:06d}-" + "A" * 680},
            "step": {"S": "LoadItem"}, "runDate": {"S": "2021-06-26"},
            "executionName": {"S": "bench"}, "attempt": {"N": "0"},
            "submittedAt": {"N": str(now)}, "pending": {"S": "PENDING"},
            "expiresAt": {"N": str(now + 86400)},
        })


def burst(binaries: dict[str, Path], n: int, log) -> dict[str, dict]:  # noqa: ANN001
    from stack import LocalStack  # noqa: PLC0415  (boto3 and the stack only when the burst runs)

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="lambda-bench-") as run_dir:
        stack = LocalStack(run_dir=Path(run_dir), echo=lambda _: None, lineage=False)  # lineage off, the default
        try:
            stack.start()
            fns = {f.binary: f for f in stack.deployment.functions.values()}
            version = stack.deployment.scripts_version
            for name, events in (("submitter", submitter_events(n, version)), ("completer", completer_events(n))):
                spec = fns[name]
                if name == "completer":
                    seed_tokens(stack.client("dynamodb"), spec.env["TOKEN_TABLE"], events)
                env = {k: v for k, v in stack._function_env(spec).items() if k != "AWS_LAMBDA_RUNTIME_API"}
                env["AWS_LAMBDA_LOG_LEVEL"] = "WARN"
                fn = Function(binaries[name], env, log)
                try:
                    fn.ready_ms()
                    kinds: dict[str, int] = {}
                    took = []
                    for ev in events:
                        kind, body, seconds, _cpu = fn.invoke(ev)
                        key = kind if kind != "response" else json.loads(body).get("completion", "response")
                        kinds[key] = kinds.get(key, 0) + 1
                        took.append(seconds * 1000)
                    results[name] = {"rss": fn.peak_rss_mb(), "kinds": kinds, "first_ms": took[0],
                                     "p50_ms": statistics.median(took[1:]), "n": len(took)}
                finally:
                    fn.stop()
        finally:
            stack.stop()
    return results


class StubAws:
    """An endpoint answering every request at once with DynamoDB's ResourceNotFoundException, over
    http or https (an RSA-2048 certificate from a throwaway CA appended to the system's CA bundle,
    so the function loads the usual ~150 roots plus that one, as on Lambda)."""

    BODY = b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"stub"}'

    def __init__(self, tls_dir: Path | None) -> None:
        import ssl  # noqa: PLC0415

        body = self.BODY

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def log_message(self, *_args) -> None:  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.env: dict[str, str] = {}
        scheme = "http"
        if tls_dir is not None:
            key, cert, bundle = tls_dir / "key.pem", tls_dir / "cert.pem", tls_dir / "bundle.pem"
            ca_key, ca_cert, csr, ext = (tls_dir / n for n in ("ca-key.pem", "ca.pem", "leaf.csr", "leaf.ext"))
            ext.write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                           "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
            for cmd in (
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bench CA",
                 "-keyout", ca_key, "-out", ca_cert],
                ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr],
                ["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "1",
                 "-extfile", ext, "-out", cert],
            ):
                subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)
            system = Path("/etc/ssl/certs/ca-certificates.crt")
            bundle.write_text((system.read_text() if system.exists() else "") + ca_cert.read_text())
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.env = {"SSL_CERT_FILE": str(bundle)}
            scheme = "https"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"{scheme}://localhost:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


def first_request(binary: Path, rounds: int, log) -> dict[str, tuple[float, float]]:  # noqa: ANN001
    """The completer's first and second invocation (one DynamoDB request each, answered at once by a
    stub) over http and https, medians over `rounds` fresh processes: first - second is the cold
    connection (TCP, and for https the root store and the TLS handshake); https - http is TLS."""
    event = json.loads((ROOT / "events" / "completer-finished.json").read_text())
    out = {}
    with tempfile.TemporaryDirectory(prefix="lambda-bench-tls-") as tls_dir:
        for scheme, tls in (("http", None), ("https", Path(tls_dir))):
            stub = StubAws(tls)
            firsts, seconds = [], []
            try:
                for _ in range(rounds):
                    fn = Function(binary, {**standalone_env(binary.name), "AWS_ENDPOINT_URL": stub.url, **stub.env}, log)
                    try:
                        fn.ready_ms()
                        kinds = [fn.invoke(event) for _ in range(2)]
                        if any(b"dispatch" in (body or b"").lower() for _, body, _, _ in kinds):
                            raise RuntimeError(f"unexpected answer over {scheme}: {kinds[0][1]!r}")
                        firsts.append((kinds[0][2] * 1000, kinds[0][3]))
                        seconds.append((kinds[1][2] * 1000, kinds[1][3]))
                    finally:
                        fn.stop()
            finally:
                stub.close()
            out[scheme] = tuple(statistics.median(x[i] for x in xs) for xs in (firsts, seconds) for i in (0, 1))
    return out


def _on_signal(signum, _frame):  # noqa: ANN001
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=21, help="fresh processes per function (default 21)")
    parser.add_argument("--events", type=int, default=1000, help="burst size per function (default 1000)")
    parser.add_argument("--profile", default="release", help="cargo profile directory under target/")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1",
                        help="7 starts, 200 events (also QUICK=1)")
    parser.add_argument("--no-burst", action="store_true", help="start-to-ready only (no local stack)")
    args = parser.parse_args(argv)
    if args.quick:
        args.starts, args.events = min(args.starts, 7), min(args.events, 200)
    signal.signal(signal.SIGTERM, _on_signal)
    binaries = {name: ROOT / "target" / args.profile / name for name in FUNCTIONS}
    missing = [str(p) for p in binaries.values() if not p.exists()]
    if missing:
        print(f"error: missing {', '.join(missing)} (cargo build --profile {args.profile})", file=sys.stderr)
        return 2
    checks = []
    with tempfile.NamedTemporaryFile(prefix="lambda-bench-", suffix=".log", delete=False) as log:
        ready = start_to_ready(binaries, args.starts, log)
        print(f"\nstart-to-ready (process start -> first GET next), {args.starts} starts, target/{args.profile}")
        print("wall = as measured; idle = wall less the time its main thread waited for a CPU (about what an idle")
        print("machine measures; checked, so a busy machine does not trip it); CPU = on-CPU time, all threads")
        print(f"{'function':<12} {'wall p50':>9} {'wall min':>9} {'idle p50':>9} {'CPU p50':>8}")
        for name, samples in ready.items():
            wall = statistics.median(w for w, _, _ in samples)
            idle = statistics.median(w - q for w, _, q in samples)
            cpu = statistics.median(c for _, c, _ in samples)
            print(f"{name:<12} {wall:>7.1f}ms {min(w for w, _, _ in samples):>7.1f}ms {idle:>7.1f}ms {cpu:>6.1f}ms")
            checks.append((f"{name} start-to-ready median {idle:.1f} ms (idle; wall {wall:.1f} ms) <= "
                           f"{START_TARGET_MS:.0f} ms", idle <= START_TARGET_MS))
        probe = first_request(binaries["completer"], args.starts, log)
        print("\ncompleter first vs second invocation, one DynamoDB request each to a stub (informational;")
        print(f"medians of {args.starts} processes; CPU = on-CPU time of the process; x{LAMBDA_128_SLOWDOWN:.1f} = at 128 MB)")
        for scheme, (first, first_cpu, second, second_cpu) in probe.items():
            extra = first_cpu - second_cpu
            print(f"{scheme:<6} first {first:>6.2f}ms (CPU {first_cpu:>5.2f}ms)  second {second:>6.2f}ms "
                  f"(CPU {second_cpu:>5.2f}ms)  cold connection CPU {extra:>5.2f}ms, "
                  f"at 128 MB ~{extra * LAMBDA_128_SLOWDOWN:.0f}ms")
        if not args.no_burst:
            results = burst(binaries, args.events, log)
            print(f"\nburst of {args.events} events, one process each (local stack, plain http)")
            print(f"{'function':<12} {'peak RSS':>9} {'first':>8} {'p50 next':>9}  outcomes")
            for name, r in results.items():
                print(f"{name:<12} {r['rss']:>6.1f}MiB {r['first_ms']:>6.1f}ms {r['p50_ms']:>7.1f}ms  {r['kinds']}")
                checks.append((f"{name} peak RSS {r['rss']:.1f} MiB <= {RSS_TARGET_MB:.0f} MB over {r['n']} events",
                               r["rss"] <= RSS_TARGET_MB))
                errors = r["kinds"].get("error", 0) + r["kinds"].get("init-error", 0)
                checks.append((f"{name}: {errors} of {r['n']} invocations failed", errors == 0))
    print(f"\n(process logs: {log.name})")
    for text, ok in checks:
        print(f"  {'ok    ' if ok else 'MISSED'} {text}")
    if not all(ok for _, ok in checks):
        print("error: a function target was missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
