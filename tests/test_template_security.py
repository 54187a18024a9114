"""The infrastructure-as-code security scan of `make lint` (checkov, offline) and its skips.

`make lint` runs checkov over template.yaml and the benchmark's templates and fails on any finding. What
is not fixed is skipped in the template itself (a resource's `Metadata: checkov: skip:` entry with its reason).
This test proves both halves of that:
- every skip has a reason, and is needed: with every skip removed, checkov finds exactly the skipped
  checks on exactly those resources (a fix that made a skip stale, or a finding hidden by one, fails here);
- a finding introduced later fails the scan: a copy of template.yaml (skips kept) with a new unencrypted
  queue and its bucket's public access block removed fails exactly those checks, and checkov exits 1.

checkov lives in its own venv (.venv/checkov, local/requirements-checkov.txt; `make setup`), run without
network access to anything: no API key, --skip-download, no mapping, no update check.

Run: .venv/bin/python -m pytest tests/test_template_security.py -q
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "local"))

from deploy import load_template  # noqa: E402

CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"
TEMPLATES = ("template.yaml", "bench/template.yaml", "bench/longpoll.yaml")
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}


def skips(template: dict) -> dict[tuple[str, str], str]:
    """(check id, "<type>.<logical id>") -> reason, for every Metadata skip of the template."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        for entry in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
            found[(entry.get("id"), f"{resource['Type']}.{logical_id}")] = entry.get("comment") or ""
    return found


def without_skips(template: dict) -> dict:
    stripped = copy.deepcopy(template)
    for resource in stripped["Resources"].values():
        (resource.get("Metadata") or {}).pop("checkov", None)
    return stripped


def start_checkov(files: list[Path]) -> subprocess.Popen:  # the make lint line's options, JSON output
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: make setup builds it (local/requirements-checkov.txt)")
    args = [str(CHECKOV), "--skip-download", "--framework", "cloudformation", "--output", "json", "--quiet"]
    for f in files:
        args += ["-f", str(f)]
    return subprocess.Popen(args, env={**os.environ, **OFFLINE_ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, dict[str, set[tuple[str, str]]]]:
    """checkov's exit status and its failed (check id, resource) pairs per scanned file name."""
    out, err = proc.communicate(timeout=120)
    if proc.returncode not in (0, 1):
        pytest.fail(f"checkov exited {proc.returncode}: {err[-2000:]}")
    reports = json.loads(out)
    failed: dict[str, set[tuple[str, str]]] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        for check in report["results"]["failed_checks"]:
            failed.setdefault(Path(check["file_abs_path"]).name, set()).add((check["check_id"], check["resource"]))
    return proc.returncode, failed


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """One checkov run over the templates with every skip removed and a template with new findings."""
    tmp = tmp_path_factory.mktemp("checkov")
    stripped, expected = [], {}
    for i, name in enumerate(TEMPLATES):
        template = load_template(ROOT / name)
        path = tmp / f"stripped-{i}.json"
        path.write_text(json.dumps(without_skips(template)))
        stripped.append(path)
        expected[path.name] = skips(template)
    bad = load_template(ROOT / "template.yaml")
    bad["Resources"]["PlantedQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 60}}
    del bad["Resources"]["ScriptsBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    bad_path = tmp / "bad.json"
    bad_path.write_text(json.dumps(bad))
    rc, failed = finish(start_checkov([*stripped, bad_path]))  # one run: checkov's start takes seconds
    return {"expected": expected, "rc": rc, "failed": failed, "bad_failed": failed.get(bad_path.name, set())}


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_skip_names_a_check_and_its_reason(name):
    found = skips(load_template(ROOT / name))
    assert found, f"{name}: no checkov skips found (Metadata: checkov: skip:)"
    for (check_id, resource), reason in found.items():
        assert re.fullmatch(r"CKV_AWS_\d+", check_id or ""), f"{name} {resource}: skip without a check id"
        assert len(reason.split()) >= 5, f"{name} {resource} {check_id}: a skip needs its reason"
    # inline `# checkov:skip=` comments would bypass this test: the skips live in Metadata only
    assert "checkov:skip" not in (ROOT / name).read_text().replace(" ", "")


def test_every_skip_is_needed_and_nothing_else_fails(scans):
    for path, expected in scans["expected"].items():
        assert scans["failed"].get(path, set()) == set(expected), (
            "with the skips removed checkov must find exactly the skipped checks (left: found, right: skipped): "
            "a stale skip is on the right only, an unexplained finding on the left only")


def test_a_new_finding_fails_the_scan(scans):
    # exit status 1 whenever a check fails (no --soft-fail): the make lint line fails
    assert scans["rc"] == 1, "checkov must exit 1 on a finding"
    planted = {check for check in scans["bad_failed"]}
    assert ("CKV_AWS_27", "AWS::SQS::Queue.PlantedQueue") in planted
    bucket_checks = {c for c, r in planted if r == "AWS::S3::Bucket.ScriptsBucket"}
    assert {"CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"} <= bucket_checks, planted
    # only the planted resource and the changed bucket fail: the rest of the template stays clean
    assert {r for _, r in planted} == {"AWS::SQS::Queue.PlantedQueue", "AWS::S3::Bucket.ScriptsBucket"}, planted
