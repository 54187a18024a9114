"""The moto adapter's guard, without a stack: the package imports, every patch applies to the pinned moto
and is in place afterwards, and a moto other than the one the patches are written against, or a changed
internal, is refused loudly with the patches to re-check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

LOCAL = Path(__file__).resolve().parent.parent / "local"
sys.path.append(str(LOCAL))

import moto_adapter  # noqa: E402
from moto_adapter import guard  # noqa: E402


def test_index_lists_every_patch_and_its_module():
    assert sorted(moto_adapter.PATCHES) == list(range(1, 33))
    for number, (module, line) in moto_adapter.PATCHES.items():
        source = (LOCAL / "moto_adapter" / f"{module}.py").read_text()
        # the patch's own docstring, in the module the index names: "Patch N; targets moto 5.2.5 ..."
        assert re.search(rf"Patch(es)? (\d+ and )*{number}(;| and )", source), (number, module, line)
        assert "targets moto 5.2.5" in source or number == 22


def test_all_patches_apply_to_the_pinned_moto(tmp_path):
    import moto

    assert moto.__version__ == guard.WRITTEN_FOR == guard.pinned_moto()
    moto_adapter.apply_all("http://127.0.0.1:9", faults_file=str(tmp_path / "faults.json"),
                           callbacks_log=str(tmp_path / "callbacks.jsonl"), requests_log=str(tmp_path / "requests.json"))
    assert moto_adapter.applied() == [*range(1, 33), "callbacks probe", "requests probe"]

    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.models import StateMachine

    assert LambdaSimpleBackend.invoke.__module__ == "moto_adapter.lambda_"
    assert StateMachine.create_from_cloudformation_json.__func__.__module__ == "moto_adapter.cloudformation"


def test_another_moto_version_is_refused_naming_the_patches():
    with pytest.raises(guard.VersionMismatch) as err:
        guard.check_moto_version(installed="5.2.6")
    message = str(err.value)
    assert "moto 5.2.6" in message and f"moto {guard.WRITTEN_FOR}" in message
    assert "Re-check patches 1, 2, 3," in message and "21, 23," in message and message.count("28") == 1


def test_a_bumped_pin_is_refused_until_the_patches_are_rechecked():
    with pytest.raises(guard.VersionMismatch, match="pinned in local/requirements.txt: moto 5.3.0"):
        guard.check_moto_version(installed="5.3.0", pinned="5.3.0")


def test_the_pin_is_read_from_requirements(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\nmoto[server]==9.9.9  # pinned\nwaitress==3.0.2\n")
    assert guard.pinned_moto(req) == "9.9.9"


def test_a_gone_or_changed_internal_is_refused_naming_the_patch():
    class Internal:
        def call(self, a, b):  # noqa: ANN001
            return a, b

    assert guard.require(99, Internal, "call", ("self", "a", "b")) is not None
    with pytest.raises(guard.PatchTargetChanged, match=r"patch 99: .*Internal.gone is gone"):
        guard.require(99, Internal, "gone")
    with pytest.raises(guard.PatchTargetChanged, match=r"patch 99: .*Internal.call takes \('self', 'a', 'b'\)"):
        guard.require(99, Internal, "call", ("self", "a"))


def test_the_server_refuses_to_start_on_another_moto(tmp_path):
    """The command line the local stack runs: with moto's version changed it exits at once, naming the patches."""
    shim = tmp_path / "sitecustomize.py"
    shim.write_text("import moto\nmoto.__version__ = '5.2.6'\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, str(LOCAL / "moto_adapter"), "--port", "1", "--lambda-endpoint", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode != 0
    assert "installed: moto 5.2.6" in run.stderr and "Re-check patches" in run.stderr, run.stderr


def test_patch_31_refuses_a_redrive_by_aws_s_rules():
    """RedriveExecution's eligibility as AWS documents it (API_RedriveExecution.html, DescribeExecution's
    redriveStatusReason): STANDARD only; FAILED, ABORTED or TIMED_OUT (not RUNNING, not SUCCEEDED);
    within 14 days of the execution's end; a history below the 25,000-event quota."""
    from datetime import datetime, timedelta, timezone

    from moto_adapter.stepfunctions import not_redrivable_reason

    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    ended = now - timedelta(days=1)
    for status in ("FAILED", "ABORTED", "TIMED_OUT"):
        assert not_redrivable_reason(status, "STANDARD", ended, 100, now) is None, status
    assert not_redrivable_reason("RUNNING", "STANDARD", None, 10, now) == "Execution is RUNNING and cannot be redriven."
    assert not_redrivable_reason("SUCCEEDED", "STANDARD", ended, 10, now) == "Execution is SUCCEEDED and cannot be redriven."
    assert "EXPRESS" in not_redrivable_reason("FAILED", "EXPRESS", ended, 10, now)
    assert not_redrivable_reason("FAILED", "STANDARD", now - timedelta(days=14, seconds=-1), 10, now) is None
    assert not_redrivable_reason("FAILED", "STANDARD", now - timedelta(days=14, seconds=1), 10, now) == \
        "Execution redrivable period exceeded."
    assert not_redrivable_reason("FAILED", "STANDARD", ended, 24_999, now) is None
    assert not_redrivable_reason("FAILED", "STANDARD", ended, 25_000, now) == "Execution history event limit exceeded."
