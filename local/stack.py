"""The whole pipeline on one machine: PostgreSQL, the Redshift Data API emulator, moto (Step Functions,
DynamoDB, EventBridge, S3, SQS, Lambda control plane) and the real Rust Lambda binaries; template.yaml
deployed through the SAM translator and moto's CloudFormation (local/deploy.py), then one execution
with live progress.

    python local/stack.py run  [--run-date 2021-06-26] [--keep] [--database-url URL] [--run-dir DIR] [--pipeline FILE]
    python local/stack.py up   [--database-url URL] [--run-dir DIR] [--pipeline FILE]   # start, deploy, leave running
    python local/stack.py exec [--run-date D] [--run-dir DIR]          # one execution on the running stack
    python local/stack.py down [--run-dir DIR]                         # stop what `up`/`--keep` left
    python local/stack.py watch [--run-dir DIR]                        # live progress of every new execution
    python local/stack.py deploy [--run-dir DIR] [--pipeline FILE]     # redeploy onto the running stack

Needs `make setup build` (the venv with moto/cargo-lambda, and target/debug binaries).

--pipeline FILE (`make local PIPELINE=FILE`): another pipeline definition instead of scripts/pipeline.toml.
The generator (target/debug/pipeline asl) writes its state machine to <run dir>/pipeline.asl.json, the
EtlStateMachine is deployed with that definition (an in-memory override of its DefinitionUri, see
deploy.py; template.yaml is untouched), and the SQL scripts are uploaded from FILE's directory instead
of scripts/. The summary then shows the per-step results only (the table counts are the sales tables').

`deploy` (LocalStack.redeploy) deploys a changed pipeline onto the RUNNING stack, as `sam deploy` of a
changed project does: the new scripts' version uploaded first (older versions stay), then UpdateStack
with the new definition (deploy.py redeploy). Runs already in flight finish on the definition, and so
the scripts, they started with; runs started afterwards use the new ones. Without --pipeline it
deploys the stack's own definition again (the one it was started with, regenerated), which also
restores it after a redeploy of another one.

Processes (all on 127.0.0.1, free ports, each in its own process group, logs in <run dir>/logs):
- PostgreSQL from `local/pg.sh start` (unless --database-url / DATABASE_URL);
- `target/debug/redshift-data-emulator`, publishing events to moto's EventBridge;
- `local/openlineage_receiver.py`, the OpenLineage endpoint (template parameter OpenLineageUrl, when the
  template declares it): every event validated against the pinned spec, stored in
  <run dir>/openlineage-events.jsonl, listed by GET on the same URL;
- moto through `local/moto_adapter/` (Lambda invokes -> cargo lambda, EventBridge Lambda targets);
- `cargo lambda watch --only-lambda-apis`: the Lambda invoke + runtime APIs. Once the stack exists,
  each function's binary (`target/debug/<Metadata.BuildProperties.Binary>`, nothing is recompiled)
  is started with AWS_LAMBDA_RUNTIME_API=<watch>/.rt/<binary> (cargo lambda serves binaries of the
  workspace by name), AWS_LAMBDA_FUNCTION_NAME=<the name CloudFormation generated> and the
  environment CloudFormation resolved (GetFunctionConfiguration), plus AWS_ENDPOINT_URL (moto) and
  AWS_ENDPOINT_URL_REDSHIFT_DATA (emulator). local/moto_adapter routes an invoke of that function to
  that binary through its code location. A stack added with `add_stack` (the benchmark's baselines, or
  the product a second time with other parameters) gets a `cargo lambda watch` of its own, and its
  packages are `<binary>.<stack>.zip`, which the adapter routes to that watch (`<run dir>/lambda-routes.json`):
  two stacks running the same binary never take each other's invocations.
Endpoints for the AWS CLI/SDKs: <run dir>/env (`. .local-stack/env`).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import re
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402

import pipeline as pipeline_definition  # noqa: E402
from deploy import Deployment, Function, TemplateError, deploy, load_template  # noqa: E402
from openlineage_receiver import API_KEY_ENV as RECEIVER_KEY_ENV  # noqa: E402
from openlineage_receiver import PATH as LINEAGE_PATH  # noqa: E402
from procs import Processes, StackError, free_port, stop_pids, tail  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STACK_NAME = "redshift-etl-callback"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# Template parameters for the local run: a "cluster" the emulator stands in for.
LOCAL_PARAMETERS = {"RedshiftClusterId": "local-cluster", "RedshiftDatabase": "dev", "RedshiftDbUser": "awsuser",
                    "TriggerBucketName": "local-upstream"}
# The template parameter the functions post OpenLineage events to (empty = off); the local stack sets it
# to its receiver (local/openlineage_receiver.py) when the template declares it.
LINEAGE_PARAMETER = "OpenLineageUrl"
# The template parameter naming the Secrets Manager secret with the endpoint's API key (empty = no key).
LINEAGE_KEY_PARAMETER = "OpenLineageApiKeySecretArn"
LINEAGE_KEY_SECRET_NAME = "local-openlineage-api-key"
# The upstream job's bucket (not part of the template): marker objects under TriggerKeyPrefix start runs.
UPSTREAM_BUCKET = LOCAL_PARAMETERS["TriggerBucketName"]
EMULATOR = "redshift-data-emulator"
# The state machine a --pipeline definition replaces (template.yaml's DefinitionUri statemachine/etl.asl.json).
PIPELINE_STATE_MACHINE = "EtlStateMachine"
# The functions' and the emulator's credentials. moto checks no signature; the secret key is drawn per
# process so that local/secret_scan.py can look for it in the logs (it is a secret the functions hold).
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "local-" + os.urandom(16).hex(),
         "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


@dataclass
class Endpoints:
    moto: str = ""
    emulator: str = ""
    lambda_: str = ""
    database_url: str = ""
    openlineage: str = ""  # the receiver's POST/GET URL (local/openlineage_receiver.py)


@dataclass
class LocalStack:
    root: Path = ROOT
    run_dir: Path = ROOT / ".local-stack"
    database_url: str | None = None
    stack_name: str = STACK_NAME
    echo: callable = print
    endpoints: Endpoints = field(default_factory=Endpoints)
    deployment: Deployment | None = None
    startup_seconds: float = 0.0
    parameters: dict[str, str] = field(default_factory=dict)  # template parameter overrides
    template_path: Path | None = None  # default: <root>/template.yaml
    emulator_args: list[str] = field(default_factory=list)  # e.g. ["--max-active-statements", "20"]
    function_concurrency: int = 1  # processes per function (concurrent invocations), as Lambda scales out
    profile: str = "debug"  # the Cargo profile whose binaries run (target/<profile>/); the benchmark's: release
    pipeline: Path | None = None  # another pipeline.toml (default: the template's statemachine/etl.asl.json, scripts/)
    data_dir: Path | None = None  # DATA=dir: each top-level folder becomes a bucket on moto's S3 (seed_data)
    lineage: bool = True  # OpenLineageUrl -> the receiver (when declared); False: the template's default (off)
    # The receiver requires `Authorization: Bearer <lineage_api_key>`; the stack puts `lineage_secret` (default:
    # the key itself) into a Secrets Manager secret on moto and deploys its ARN as OpenLineageApiKeySecretArn.
    lineage_api_key: str | None = None
    lineage_secret: str | None = None

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir).resolve()
        self.procs = Processes(self.run_dir)
        self.pg_dir: Path | None = None
        self.template_path = Path(self.template_path or self.root / "template.yaml")
        self.faults_file = self.run_dir / "adapter-faults.json"  # local/moto_adapter patch 10
        self.faults_file.unlink(missing_ok=True)
        self.callbacks_log = self.run_dir / "callbacks.jsonl"  # local/moto_adapter probe
        self.callbacks_log.unlink(missing_ok=True)
        self.requests_log = self.run_dir / "moto-requests.json"  # local/moto_adapter probe: moto's CPU per request kind
        self.lineage_store = self.run_dir / "openlineage-events.jsonl"  # local/openlineage_receiver.py
        self.routes_file = self.run_dir / "lambda-routes.json"  # local/moto_adapter: added stacks' functions (add_stack)
        self.routes_file.unlink(missing_ok=True)
        self.pipeline = Path(self.pipeline).resolve() if self.pipeline else None
        self.definition: pipeline_definition.Pipeline | None = None  # the --pipeline summary, once started
        self.lineage_secret_arn = ""  # the API key's secret on moto, once created

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "LocalStack":
        if (self.run_dir / "state.json").exists():
            raise StackError(f"a local stack is already recorded in {self.run_dir}/state.json; "
                             f"stop it first (make local-down / stack.py down --run-dir {self.run_dir})")
        t0 = time.monotonic()
        binaries = self._check_prerequisites()
        definitions, scripts_dir = self._pipeline_definition()
        try:
            self._start_processes(binaries)
            self._create_upstream_bucket()
            self._create_lineage_secret()
            if self.data_dir is not None:
                seeded = seed_data(self.client("s3"), self.data_dir)
                self.echo(f"  data: {seeded.summary()} from {self.data_dir}")
            self.deployment = deploy(self.client, self.template_path, self.template_parameters, self.stack_name,
                                     scripts_dir, definitions=definitions)
            self._start_functions(binaries)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        self._save_state()
        for note in self.deployment.notes:
            self.echo(f"  note: {note}")
        self._write_env()
        return self

    def stop(self) -> None:
        with _signals_deferred():  # a second Ctrl-C must not leave half the processes running
            self.procs.stop_all()
            if self.pg_dir is not None:
                _stop_pg(self.root, self.pg_dir)
                self.pg_dir = None
            (self.run_dir / "state.json").unlink(missing_ok=True)

    def detach(self) -> None:
        """Leave the processes running; `down` finds them through state.json."""
        self.procs.children.clear()
        self.pg_dir = None

    # -- clients --------------------------------------------------------------------------------
    def redeploy(self, pipeline: Path | None = None) -> Deployment:
        """Deploy `pipeline` (a pipeline.toml; None: the stack's own definition) onto this running
        stack; see the module docstring. The new Deployment replaces `self.deployment`."""
        self.deployment = _redeploy(self.client, self.run_dir, self.root, self.template_path, self.stack_name,
                                    pipeline or self.pipeline, self.template_parameters)
        self._save_state()
        return self.deployment

    def client(self, service: str, endpoint: str | None = None, config: BotoConfig | None = None):
        return boto3.client(
            service, endpoint_url=endpoint or self.endpoints.moto, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=config or BotoConfig(retries={"max_attempts": 2}))

    def redshift_data(self):
        return self.client("redshift-data", self.endpoints.emulator)

    # -- internals ------------------------------------------------------------------------------
    def _pipeline_definition(self) -> tuple[dict[str, Path], Path]:
        """With --pipeline: its state machine generated into the run dir, and the scripts' directory."""
        if self.pipeline is None:
            return {}, self.root / "scripts"
        self.definition = pipeline_definition.load(self.pipeline)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        asl = self.definition.write_asl(self.run_dir / "pipeline.asl.json")
        return {PIPELINE_STATE_MACHINE: asl}, self.definition.scripts_dir

    def _binaries(self, names: list[str | None]) -> dict[str, Path]:
        """Cargo binaries by name, from target/<profile>/."""
        return {name: self.root / "target" / self.profile / name for name in names if name}

    def _build_hint(self) -> str:
        return "make build" if self.profile == "debug" else f"cargo build --profile {self.profile} --bins"

    def _check_prerequisites(self) -> dict[str, Path]:
        """The Cargo binaries of the template's functions (what `sam build` builds) and the emulator."""
        missing = []
        names = [((r.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
                 for r in load_template(self.template_path)["Resources"].values()
                 if r.get("Type") == "AWS::Serverless::Function"]
        binaries = self._binaries(names + [EMULATOR])
        missing += [f"{p} ({self._build_hint()})" for p in binaries.values() if not p.exists()]
        if not _cargo_lambda(self.root):
            missing.append("cargo-lambda in .venv/bin or on PATH (make setup)")
        if not self.database_url and not (self.root / "local" / "pg.sh").exists():
            missing.append("local/pg.sh (or pass --database-url / DATABASE_URL)")
        if missing:
            raise StackError("missing prerequisites:\n  " + "\n  ".join(missing))
        return binaries

    def _start_processes(self, binaries: dict[str, Path]) -> None:
        """cargo lambda watch and moto first (moto's import takes seconds), PostgreSQL meanwhile, then
        the emulator; then wait until moto, the emulator and the runtime API answer."""
        ep = self.endpoints
        moto_port, emu_port, lambda_port, ol_port = free_port(), free_port(), free_port(), free_port()
        ep.moto, ep.emulator, ep.lambda_ = (f"http://127.0.0.1:{p}" for p in (moto_port, emu_port, lambda_port))
        ep.openlineage = f"http://127.0.0.1:{ol_port}{LINEAGE_PATH}" if self.lineage else ""
        watch = self._start_watch("cargo-lambda", lambda_port)
        self._save_state()
        moto = self.procs.start("moto", [
            sys.executable, str(self.root / "local" / "moto_adapter"),
            "--port", str(moto_port), "--lambda-endpoint", ep.lambda_,
            "--faults-file", str(self.faults_file), "--callbacks-log", str(self.callbacks_log),
            "--requests-log", str(self.requests_log), "--routes-file", str(self.routes_file)], cwd=self.root,
            # moto's request recorder (bench/compare.py turns it on) writes here, not into the checkout
            env={"MOTO_RECORDER_FILEPATH": str(self.run_dir / "moto_recording")})
        self._save_state()
        self.lineage_store.unlink(missing_ok=True)
        receiver = None
        if self.lineage:
            # the key by the environment: never on a command line or in a file of the run dir
            receiver = self.procs.start("openlineage-receiver", [
                sys.executable, str(self.root / "local" / "openlineage_receiver.py"),
                "--port", str(ol_port), "--store", str(self.lineage_store)], cwd=self.root,
                env={RECEIVER_KEY_ENV: self.lineage_api_key} if self.lineage_api_key else None)
            self._save_state()
        if self.database_url:
            ep.database_url = self.database_url
        else:
            # under the system temp dir: as root, pg.sh runs the server as `postgres`, which must reach it
            self.pg_dir = Path(tempfile.gettempdir()) / f"local-stack-pg-{os.getpid()}-{moto_port}"
            self._save_state()
            ep.database_url = _start_pg(self.root, self.pg_dir, self.procs.log_dir / "postgres.log")
        emu = self.procs.start("emulator", [
            str(binaries[EMULATOR]), "--listen", f"127.0.0.1:{emu_port}", "--database-url", ep.database_url,
            *self.emulator_args],
            env={**CREDS, "AWS_ENDPOINT_URL": ep.moto, "RUST_LOG": os.environ.get("RUST_LOG", "info")}, cwd=self.root)
        self._save_state()
        _wait_tcp(self.procs, watch, lambda_port)
        self.procs.wait_http(moto, f"{ep.moto}/moto-api/")
        self.procs.wait_http(emu, f"{ep.emulator}/_emulator/health", ok=lambda s: s == 200)
        if receiver is not None:
            self.procs.wait_http(receiver, f"http://127.0.0.1:{ol_port}/health", ok=lambda s: s == 200)

    def _start_watch(self, name: str, port: int):
        """`cargo lambda watch --only-lambda-apis` on `port`: the Lambda invoke and runtime APIs."""
        watch = self.procs.start(name, [
            _cargo_lambda(self.root), "lambda", "watch", "--only-lambda-apis", "--ignore-changes",
            "--invoke-address", "127.0.0.1", "--invoke-port", str(port)], cwd=self.root)
        self._save_state()
        return watch

    @property
    def template_parameters(self) -> dict[str, str]:
        """The parameters the stack is deployed with: the local defaults, the local OpenLineage receiver
        as OpenLineageUrl when the template declares that parameter, and this stack's overrides."""
        local = dict(LOCAL_PARAMETERS)
        declared = load_template(self.template_path).get("Parameters") or {}
        if self.lineage and LINEAGE_PARAMETER in declared and self.endpoints.openlineage:
            local[LINEAGE_PARAMETER] = self.endpoints.openlineage
            if self.lineage_secret_arn and LINEAGE_KEY_PARAMETER in declared:
                local[LINEAGE_KEY_PARAMETER] = self.lineage_secret_arn
        return {**local, **self.parameters}

    @property
    def lineage_url(self) -> str | None:
        """The receiver's URL when the functions post their OpenLineage events to it, else None."""
        url = self.endpoints.openlineage
        return url if url and self.template_parameters.get(LINEAGE_PARAMETER) == url else None

    def _create_lineage_secret(self) -> None:
        """With lineage_api_key: the secret holding the receiver's key (or lineage_secret), on moto."""
        if self.lineage and self.lineage_api_key:
            secret = self.lineage_api_key if self.lineage_secret is None else self.lineage_secret
            self.lineage_secret_arn = self.client("secretsmanager").create_secret(
                Name=LINEAGE_KEY_SECRET_NAME, SecretString=secret)["ARN"]

    def _create_upstream_bucket(self) -> None:
        """The bucket an upstream job writes its markers to, with EventBridge notifications on."""
        bucket = self.template_parameters.get("TriggerBucketName")
        if bucket:
            s3 = self.client("s3")
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})

    def add_stack(self, template_path: Path, stack_name: str, parameters: dict[str, str]) -> Deployment:
        """Deploy another template on this running stack (same moto, emulator and PostgreSQL) the same
        way, and start its functions' binaries (target/<profile>); e.g. the benchmark's polling baseline, or
        the product itself a second time with other parameters. Its functions are routed by
        `<binary>.<stack name>` (deploy.py `route_suffix`), so an invoke of one of them reaches its own
        processes, never another stack's running the same binary."""
        names = [((r.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
                 for r in load_template(Path(template_path))["Resources"].values()
                 if r.get("Type") == "AWS::Serverless::Function"]
        binaries = self._binaries(names)
        missing = [str(p) for p in binaries.values() if not p.exists()]
        if missing:
            raise StackError(f"missing binaries ({self._build_hint()}): " + ", ".join(missing))
        port = free_port()
        watch = self._start_watch(f"cargo-lambda.{stack_name}", port)
        endpoint = f"http://127.0.0.1:{port}"
        _wait_tcp(self.procs, watch, port)
        deployment = deploy(self.client, Path(template_path), parameters, stack_name, self.root / "scripts",
                            route_suffix=stack_name)
        routes = json.loads(self.routes_file.read_text()) if self.routes_file.exists() else {}
        routes.update({fn.route: {"endpoint": endpoint, "function": fn.binary} for fn in deployment.functions.values()})
        tmp = self.routes_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(routes, indent=1))
        tmp.replace(self.routes_file)
        self._start_functions(binaries, deployment, endpoint)
        return deployment

    def _start_functions(self, binaries: dict[str, Path], deployment: Deployment | None = None,
                         lambda_endpoint: str | None = None) -> None:
        """Each function's binary, with the environment CloudFormation resolved for it, taking its
        invocations from `lambda_endpoint` (default: the stack's cargo lambda watch)."""
        for fn in (deployment or self.deployment).functions.values():
            # like Lambda's concurrency: each process takes one invocation at a time from cargo lambda
            for i in range(self.function_concurrency):
                name = fn.route if i == 0 else f"{fn.route}-{i + 1}"
                self.procs.start(name, [str(binaries[fn.binary])], env=self._function_env(fn, lambda_endpoint),
                                 cwd=self.root)
        self._save_state()
        time.sleep(0.2)
        self.procs.check()

    def _function_env(self, fn: Function, lambda_endpoint: str | None = None) -> dict[str, str]:
        env = {
            **CREDS,
            "AWS_ENDPOINT_URL": self.endpoints.moto,
            "AWS_ENDPOINT_URL_REDSHIFT_DATA": self.endpoints.emulator,
            # the Lambda runtime API of `cargo lambda watch --only-lambda-apis`, one path per function
            "AWS_LAMBDA_RUNTIME_API": f"{lambda_endpoint or self.endpoints.lambda_}/.rt/{fn.binary}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_LOG_FORMAT": fn.log_format,
            "AWS_LAMBDA_LOG_LEVEL": fn.log_level,
        }
        env.update(fn.env)
        return env

    def _save_state(self) -> None:
        self.procs.save(self.run_dir / "state.json", {
            "pg_dir": str(self.pg_dir) if self.pg_dir else None,
            "endpoints": vars(self.endpoints),
            "state_machine_arn": self.deployment.state_machine_arn if self.deployment else None,
            "pipeline": str(self.pipeline) if self.pipeline else None,
            "lineage_url": self.lineage_url,
        })

    def _write_env(self) -> None:
        values = {
            "AWS_ENDPOINT_URL": self.endpoints.moto,
            "AWS_ENDPOINT_URL_REDSHIFT_DATA": self.endpoints.emulator,
            **CREDS,
            "LOCAL_LAMBDA_ENDPOINT": self.endpoints.lambda_,
            "OPENLINEAGE_RECEIVER_URL": self.endpoints.openlineage,
            "DATABASE_URL": self.endpoints.database_url,
            "STATE_MACHINE_ARN": self.deployment.state_machine_arn,
            "TRIGGER_STATE_MACHINE_ARN": self.deployment.outputs.get("TriggerStateMachineArn", ""),
            "BACKFILL_STATE_MACHINE_ARN": self.deployment.outputs.get("BackfillStateMachineArn", ""),
            "UPSTREAM_BUCKET": self.template_parameters.get("TriggerBucketName", ""),
            **{f"{fn.binary.upper()}_FUNCTION": fn.name for fn in self.deployment.functions.values()},
        }
        text = "# source me: . .local-stack/env   (written by local/stack.py)\n"
        text += "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())
        # the venv's tools first: the AWS CLI `make setup` installs (.venv/bin/aws), python with the stack's packages
        text += f'export PATH={shlex.quote(str(ROOT / ".venv" / "bin"))}:"$PATH"\n'
        (self.run_dir / "env").write_text(text)


def _redeploy(clients, run_dir: Path, root: Path, template_path: Path, stack_name: str,
              pipeline: Path | None, parameters: dict[str, str] | None) -> Deployment:
    """deploy.redeploy of `pipeline` (generated into the run dir under its scripts version) or, when
    None, of the template's own definition and scripts/."""
    from deploy import redeploy
    if pipeline is None:
        definitions, scripts_dir = {}, root / "scripts"
    else:
        definition = pipeline_definition.load(pipeline)
        version = definition.summary.get("scriptsVersion") or "unversioned"
        asl = definition.write_asl(Path(run_dir) / f"pipeline-{version}.asl.json")
        definitions, scripts_dir = {PIPELINE_STATE_MACHINE: asl}, definition.scripts_dir
    return redeploy(clients, Path(template_path), stack_name, scripts_dir, parameters=parameters,
                    definitions=definitions)


@contextlib.contextmanager
def _signals_deferred():
    try:
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        old = {}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _cargo_lambda(root: Path) -> str | None:
    venv = root / ".venv" / "bin" / "cargo-lambda"
    if venv.exists():
        return str(venv)
    from shutil import which
    return which("cargo-lambda")


def _wait_tcp(procs: Processes, child, port: int, timeout: float = 30) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise StackError(f"{child.name} not listening on {port}; last lines of {child.log}:\n{tail(child.log)}")


def _start_pg(root: Path, pg_dir: Path, log: Path) -> str:
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["bash", str(root / "local" / "pg.sh"), "start", str(pg_dir)],
                         capture_output=True, text=True, cwd=root)
    log.write_text(res.stdout + res.stderr)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    if res.returncode != 0 or not lines or not lines[-1].startswith("postgres"):
        raise StackError(f"local/pg.sh start {pg_dir} failed (status {res.returncode}):\n{tail(log)}")
    return lines[-1].strip()


def _stop_pg(root: Path, pg_dir: Path) -> None:
    subprocess.run(["bash", str(root / "local" / "pg.sh"), "stop", str(pg_dir)], capture_output=True, cwd=root)


@dataclass
class AttachedStack:
    """A stack left running by `up` / `run --keep`, found through its state.json."""
    endpoints: Endpoints
    state_machine_arn: str
    pipeline: Path | None = None  # the --pipeline definition it was started with
    lineage_url: str | None = None  # the OpenLineage receiver, when the functions post to it

    @classmethod
    def load(cls, run_dir: Path) -> "AttachedStack":
        state_file = run_dir / "state.json"
        if not state_file.exists():
            raise StackError(f"no running local stack in {run_dir} (start one with `make local-up`)")
        state = json.loads(state_file.read_text())
        if not state.get("state_machine_arn"):
            raise StackError(f"the stack in {run_dir} did not finish starting; `make local-down` and start again")
        return cls(Endpoints(**state["endpoints"]), state["state_machine_arn"],
                   Path(state["pipeline"]) if state.get("pipeline") else None, state.get("lineage_url"))

    @property
    def deployment(self):
        return self

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoints.moto, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def down(run_dir: Path, root: Path = ROOT) -> bool:
    state_file = run_dir / "state.json"
    if not state_file.exists():
        return False
    state = json.loads(state_file.read_text())
    stop_pids([c["pid"] for c in reversed(state.get("children", []))])
    if state.get("pg_dir"):
        _stop_pg(root, Path(state["pg_dir"]))
    state_file.unlink()
    (run_dir / "env").unlink(missing_ok=True)
    return True


# -- CLI ------------------------------------------------------------------------------------------

@dataclass
class Seeded:
    buckets: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0

    def summary(self) -> str:
        return f"{self.objects} objects ({self.bytes:,} bytes) in bucket(s) {', '.join(self.buckets) or '-'}"


def seed_data(s3, data_dir: Path) -> Seeded:
    """`make local DATA=dir`: each top-level folder of `data_dir` becomes a bucket of the same name on
    the local S3, and every file under it is uploaded under its path relative to that folder, so a
    COPY or UNLOAD naming s3://<team-bucket>/<key> runs unchanged locally (docs/copy-unload.md).
    Files directly in `data_dir` belong to no bucket and are refused, as are folder names that are
    not valid bucket names; hidden files (`.keep` in a folder that only makes an empty bucket) are skipped."""
    data_dir = Path(data_dir).resolve()
    if not data_dir.is_dir():
        raise StackError(f"DATA={data_dir}: not a directory")
    loose = sorted(p.name for p in data_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    if loose:
        raise StackError(f"DATA={data_dir}: files must be inside a folder named after their bucket; "
                         f"found {', '.join(loose[:5])} at the top level")
    seeded = Seeded()
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        bucket = folder.name
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise StackError(f"DATA={data_dir}: folder {bucket!r} is not a valid S3 bucket name "
                             "(3-63 lowercase letters, digits, '.', '-')")
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        seeded.buckets.append(bucket)
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            key = path.relative_to(folder).as_posix()
            s3.upload_file(str(path), bucket, key)
            seeded.objects += 1
            seeded.bytes += path.stat().st_size
    return seeded


def _on_signal(signum, _frame):  # noqa: ANN001
    raise KeyboardInterrupt(f"signal {signum}")


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """`--parameter KEY=VALUE` options as template parameter overrides; a parameter the template does not
    declare is refused (a typo would otherwise deploy the default silently)."""
    declared = set(load_template(ROOT / "template.yaml").get("Parameters") or {})
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--parameter {pair!r}: expected KEY=VALUE")
        if key not in declared:
            raise ValueError(f"--parameter {key}: template.yaml declares no such parameter")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local stack: moto + Redshift Data emulator + Rust Lambdas.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "up", "down", "exec", "watch", "deploy"):
        p = sub.add_parser(name)
        p.add_argument("--run-dir", type=Path, default=ROOT / ".local-stack", help="state, logs and env file")
        if name in ("run", "up"):
            p.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or None,
                           help="use this PostgreSQL instead of a throwaway one (default: $DATABASE_URL)")
        if name in ("run", "up", "deploy"):
            p.add_argument("--pipeline", type=Path, default=None,
                           help="deploy this pipeline definition (pipeline.toml; its scripts beside it) "
                                "instead of scripts/pipeline.toml")
        if name in ("run", "up"):
            p.add_argument("--data", type=Path, default=None,
                           help="seed the local S3: each top-level folder of this directory becomes a bucket, "
                                "its files objects under the same keys (docs/copy-unload.md)")
        if name in ("run", "up"):
            p.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                           help="a template parameter for this stack (repeatable; e.g. SubmitWaitSeconds=5); "
                                "the others are template.yaml's defaults and the local ones")
        if name in ("run", "exec"):
            p.add_argument("--run-date", default="2021-06-26", help="execution input runDate ('' = omit, the state machine defaults it)")
            p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the execution")
        if name == "run":
            p.add_argument("--keep", action="store_true", help="leave the stack running afterwards (stop with `down`)")
    args = parser.parse_args(argv)

    if args.command == "down":
        print("local stack stopped" if down(args.run_dir.resolve()) else f"no local stack recorded in {args.run_dir}")
        return 0
    if args.command == "watch":
        from run import watch
        try:
            watch(AttachedStack.load(args.run_dir.resolve()))
        except StackError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 0
    if args.command == "deploy":
        try:
            attached = AttachedStack.load(args.run_dir.resolve())
            dep = _redeploy(attached.client, args.run_dir.resolve(), ROOT, ROOT / "template.yaml", STACK_NAME,
                            args.pipeline.resolve() if args.pipeline else attached.pipeline, None)
        except (StackError, TemplateError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for note in dep.notes:
            print(f"  note: {note}")
        return 0
    if args.command == "exec":
        from run import run_once
        try:
            return run_once(AttachedStack.load(args.run_dir.resolve()), args.run_date or None, timeout=args.timeout)
        except StackError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)  # also when started with SIGINT ignored (background jobs)
    try:
        parameters = parse_parameters(args.parameter)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    stack = LocalStack(run_dir=args.run_dir, database_url=args.database_url, pipeline=args.pipeline,
                       data_dir=args.data, parameters=parameters)
    keep = args.command == "up" or args.keep
    atexit.register(lambda: None if keep else stack.stop())
    try:
        print(f"starting the local stack ({stack.run_dir}) ...")
        stack.start()
        print(f"local stack up in {stack.startup_seconds:.1f}s: moto {stack.endpoints.moto}, "
              f"emulator {stack.endpoints.emulator}, lambda {stack.endpoints.lambda_}")
        if stack.definition:
            print(f"pipeline {stack.definition.name} ({len(stack.definition.steps)} steps) from {stack.pipeline}; "
                  f"state machine {stack.run_dir / 'pipeline.asl.json'}, scripts from {stack.definition.scripts_dir}")
        code = 0
        if args.command == "run":
            from run import run_once
            code = run_once(stack, args.run_date or None, timeout=args.timeout)
        if keep:
            stack.detach()
            print(f"stack left running; endpoints in {stack.run_dir / 'env'}; stop it with `make local-down`")
        return code
    except (StackError, TemplateError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; stopping the local stack", file=sys.stderr)
        keep = False
        return 130
    finally:
        if not keep:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
