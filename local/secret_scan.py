"""No secret in logs: every task token Step Functions issued on a local stack, and every secret value
the stack holds, is looked for in every file the run wrote (the functions' logs, cargo lambda's,
moto's, the emulator's, PostgreSQL's, the probes' files).

The tokens are collected from the truth, not guessed: moto's execution history of every execution of
every state machine (the parameters of each `TaskScheduled` event, i.e. the payload Step Functions sent
the submitter, one token per attempt) and every DynamoDB item's `taskToken` (what the submitter stored).
The collection is checked against the adapter's callbacks probe (callbacks.jsonl: the SHA-256 prefix of
the token of every callback Step Functions accepted): a token called back but not collected means the
collection is incomplete, and that fails the check too (a scan that could not see a token proves nothing).
The other secrets: the password of the stack's DATABASE_URL, if it has one, the AWS secret access
key the functions and the emulator are given, every Secrets Manager secret's value on moto (the
OpenLineage API key's secret: the string and, for a JSON object, its `apiKey` or `password`), and the
key the OpenLineage receiver requires.

Each secret is looked for as is, JSON-escaped and URL-encoded, and a task token also by its first half
(a truncated token is a leak too). A finding names the file, the line and the secret's SHA-256 prefix,
never the secret.

    stack = LocalStack(...).start(); ...; secrets = collect(stack); stack.stop(); findings = scan(stack.run_dir, secrets)
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

TOKEN_KEYS = ("taskToken", "TaskToken")  # the submitter's payload field; Step Functions' own name
# The members of a JSON secret that hold the secret: the OpenLineage API key's (etl_callback::lineage::API_KEY_MEMBER)
# and a database secret's.
SECRET_MEMBERS = ("apiKey", "password")
DUMMY_AWS_SECRETS = {"testing"}  # a value that is no secret (and too common a word to look for)


class SecretScanError(Exception):
    """The secrets could not be collected completely; the check cannot be trusted."""


def fingerprint(secret: str) -> str:
    """The first 12 hex digits of the SHA-256, as the functions and the callbacks probe print tokens."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass
class Secrets:
    values: dict[str, str] = field(default_factory=dict)  # secret -> what it is
    sources: dict[str, int] = field(default_factory=dict)  # where the task tokens came from, how many

    def add(self, value: Any, kind: str) -> None:
        if isinstance(value, str) and value:
            self.values.setdefault(value, kind)

    @property
    def tokens(self) -> set[str]:
        return {v for v, k in self.values.items() if k == "task token"}


# -- collecting ---------------------------------------------------------------------------------

def _tokens_in(value: Any, out: set[str]) -> None:
    """Every value under a token key, in nested JSON (event details carry JSON strings)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in TOKEN_KEYS and isinstance(v, str):
                out.add(v)
            else:
                _tokens_in(v, out)
    elif isinstance(value, list):
        for v in value:
            _tokens_in(v, out)
    elif isinstance(value, str) and value[:1] in "{[":
        try:
            _tokens_in(json.loads(value), out)
        except ValueError:
            pass


def history_tokens(sfn) -> set[str]:  # noqa: ANN001
    arns = []
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            for ex_page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]):
                arns += [e["executionArn"] for e in ex_page["executions"]]

    def one(arn: str) -> set[str]:
        found: set[str] = set()
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            for event in page["events"]:
                if event["type"] == "TaskScheduled":
                    _tokens_in(event.get("taskScheduledEventDetails", {}).get("parameters"), found)
        return found

    tokens: set[str] = set()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for found in pool.map(one, arns):
            tokens |= found
    return tokens


def table_tokens(dynamodb) -> set[str]:  # noqa: ANN001
    tokens: set[str] = set()
    for page in dynamodb.get_paginator("list_tables").paginate():
        for table in page["TableNames"]:
            for items in dynamodb.get_paginator("scan").paginate(TableName=table):
                for item in items["Items"]:
                    for key in TOKEN_KEYS:
                        if "S" in item.get(key, {}):
                            tokens.add(item[key]["S"])
    return tokens


def stored_secrets(secretsmanager) -> set[str]:  # noqa: ANN001
    """Every secret string on moto's Secrets Manager, and of those that are JSON objects the members in
    SECRET_MEMBERS."""
    values: set[str] = set()
    for page in secretsmanager.get_paginator("list_secrets").paginate():
        for entry in page["SecretList"]:
            text = secretsmanager.get_secret_value(SecretId=entry["ARN"]).get("SecretString")
            if not text:
                continue
            values.add(text)
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            if isinstance(parsed, dict):  # the members that hold a secret, not a user name or a note
                values |= {v for k, v in parsed.items() if k in SECRET_MEMBERS and isinstance(v, str) and v}
    return values


def called_back(callbacks_log: Path) -> set[str]:
    """Fingerprints of the tokens of every callback Step Functions accepted (the adapter's probe)."""
    if not callbacks_log.exists():
        return set()
    return {rec["token"] for rec in map(json.loads, callbacks_log.read_text().splitlines()) if rec["accepted"]}


def check_complete(tokens: set[str], callbacks_log: Path) -> None:
    missing = called_back(callbacks_log) - {fingerprint(t) for t in tokens}
    if missing:
        raise SecretScanError(f"{len(missing)} task token(s) Step Functions accepted a callback for were not "
                              f"collected (fingerprints {sorted(missing)[:5]}): the log scan would not see them")


def collect(stack) -> Secrets:  # noqa: ANN001  (a running local/stack.py LocalStack)
    secrets = Secrets()
    from_history = history_tokens(stack.client("stepfunctions"))
    from_tables = table_tokens(stack.client("dynamodb"))
    for token in from_history | from_tables:
        secrets.add(token, "task token")
    secrets.sources = {"execution histories": len(from_history), "token items": len(from_tables),
                       "tokens": len(secrets.tokens)}
    check_complete(secrets.tokens, stack.callbacks_log)
    password = urllib.parse.urlsplit(stack.endpoints.database_url or "").password
    secrets.add(urllib.parse.unquote(password) if password else None, "database password")
    for env in (stack.deployment.functions.values() if stack.deployment else []):
        for name, value in env.env.items():
            if re.search(r"PASSWORD|SECRET_ACCESS_KEY|SESSION_TOKEN", name) and value not in DUMMY_AWS_SECRETS:
                secrets.add(value, f"function environment {name}")
    for value in stored_secrets(stack.client("secretsmanager")):
        secrets.add(value, "Secrets Manager secret")
    secrets.add(getattr(stack, "lineage_api_key", None), "OpenLineage API key")
    from stack import CREDS  # the functions' and the emulator's AWS credentials
    if CREDS["AWS_SECRET_ACCESS_KEY"] not in DUMMY_AWS_SECRETS:
        secrets.add(CREDS["AWS_SECRET_ACCESS_KEY"], "AWS secret access key")
    return secrets


# -- scanning -----------------------------------------------------------------------------------

def variants(secret: str, kind: str) -> dict[str, str]:
    """The forms a secret takes in a log line -> the name of the form."""
    forms = {secret: "as is"}
    forms.setdefault(json.dumps(secret)[1:-1], "JSON-escaped")
    forms.setdefault(json.dumps(secret)[1:-1].replace("/", "\\/"), "JSON-escaped")
    forms.setdefault(urllib.parse.quote(secret, safe=""), "URL-encoded")
    forms.setdefault(urllib.parse.quote_plus(secret, safe=""), "URL-encoded")
    if kind == "task token" and len(secret) >= 32:
        forms.setdefault(secret[: len(secret) // 2], "its first half")
    return forms


# The stack's own configuration, not logs: `env` hands the AWS CLI the stack's credentials by design.
NOT_LOGS = {"env", "state.json"}


def files_of(run_dir: Path) -> Iterable[Path]:
    """Every file the run wrote: logs/ (each process's output) and the probes' files."""
    return sorted(p for p in Path(run_dir).rglob("*") if p.is_file() and str(p.relative_to(run_dir)) not in NOT_LOGS)


def scan(run_dir: Path, secrets: Secrets) -> list[str]:
    """Every occurrence of a secret (in any of its forms) in any file under run_dir, one finding per
    file, line and secret."""
    needles: dict[str, tuple[str, str]] = {}  # form -> (secret's fingerprint and kind, form name)
    for secret, kind in secrets.values.items():
        for form, how in variants(secret, kind).items():
            needles.setdefault(form, (f"{kind} {fingerprint(secret)}", how))
    if not needles:
        return []
    # Candidates: maximal runs of the characters the needles are made of (a task token is a UUID
    # locally: hex and dashes, so runs are few and short), then every needle length within a run.
    alphabet = "".join(sorted({c for n in needles for c in n}))
    runs = re.compile("[" + re.escape(alphabet) + "]{%d,}" % min(map(len, needles)))
    lengths = sorted({len(n) for n in needles})
    findings = []
    for path in files_of(run_dir):
        text = path.read_text(errors="replace")
        hits: dict[tuple[int, str], set[str]] = {}  # (line, secret) -> forms found
        for run in runs.finditer(text):
            s = run.group()
            for n in lengths:
                for i in range(len(s) - n + 1):
                    hit = needles.get(s[i:i + n])
                    if hit:
                        line = text.count("\n", 0, run.start() + i) + 1
                        hits.setdefault((line, hit[0]), set()).add(hit[1])
        rel = path.relative_to(run_dir)
        for (line, what), forms in sorted(hits.items()):
            if len(forms) > 1:  # the whole token contains its first half
                forms.discard("its first half")
            findings.append(f"{rel}:{line}: {what} ({', '.join(sorted(forms))})")
    return findings


def bytes_scanned(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in files_of(run_dir))


def summary(secrets: Secrets, run_dir: Path) -> str:
    return (f"{len(secrets.values)} secrets ({secrets.sources.get('tokens', 0)} task tokens: "
            f"{secrets.sources.get('execution histories', 0)} from execution histories, "
            f"{secrets.sources.get('token items', 0)} from token items) looked for in "
            f"{len(list(files_of(run_dir)))} files, {bytes_scanned(run_dir) / 1024:.0f} KiB")


def report(secrets: Secrets, findings: list[str], run_dir: Path) -> str:
    head = "secret scan: " + summary(secrets, run_dir)
    if not findings:
        return head + ": none found"
    shown = "\n  ".join(findings[:50])
    return f"{head}: {len(findings)} found (secret shown by its SHA-256 prefix)\n  {shown}"


class SecretLeak(AssertionError):
    """A secret is in a log of the run; the message names where (never the secret)."""


def stop_and_check(stack) -> str:  # noqa: ANN001
    """Collect the secrets from the running stack, stop it (every process flushes its log), scan the
    run's files. Returns the report; raises SecretLeak when a secret was found (and SecretScanError when
    the collection is incomplete). The stack is stopped in any case."""
    t0 = time.monotonic()
    try:
        secrets = collect(stack)
    finally:
        took = time.monotonic() - t0
        stack.stop()
    t1 = time.monotonic()
    findings = scan(stack.run_dir, secrets)
    took += time.monotonic() - t1
    text = report(secrets, findings, stack.run_dir) + f" ({took:.1f}s)"
    if findings:
        raise SecretLeak(text)
    return text
