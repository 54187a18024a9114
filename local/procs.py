"""Child processes of the local stack: each in its own process group, logging to a file, stopped
together (also on Ctrl-C / SIGTERM, see stack.py), and recorded in a state file so that a detached
stack (`make local-up`) can be stopped later by `make local-down`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class StackError(Exception):
    pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen | None
    pid: int
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:])


class Processes:
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.log_dir = run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Child:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
        child = Child(name, proc, proc.pid, log)
        self.children.append(child)
        return child

    def check(self) -> None:
        for c in self.children:
            if c.proc is not None and c.proc.poll() is not None:
                raise StackError(f"{c.name} exited with status {c.proc.returncode}; last lines of {c.log}:\n{tail(c.log)}")

    def wait_http(self, child: Child, url: str, timeout: float = 60, ok=lambda status: status < 500) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check()
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if ok(resp.status):
                        return
            except urllib.error.HTTPError as err:
                if ok(err.code):
                    return
                last = f"HTTP {err.code}"
            except (urllib.error.URLError, OSError) as err:
                last = str(err)
            time.sleep(0.1)
        raise StackError(f"{child.name} not ready at {url} after {timeout:.0f}s ({last}); last lines of {child.log}:\n{tail(child.log)}")

    def stop_all(self) -> None:
        stop_pids([c.pid for c in reversed(self.children)])
        for c in self.children:
            if c.proc is not None:
                try:
                    c.proc.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
        self.children.clear()

    def save(self, path: Path, extra: dict) -> None:
        data = {"children": [{"name": c.name, "pid": c.pid, "log": str(c.log)} for c in self.children], **extra}
        path.write_text(json.dumps(data, indent=2))


def stop_pids(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM each process group (the children were started with start_new_session), then SIGKILL."""
    alive = []
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
            alive.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _group_alive(p)]
        time.sleep(0.1)
    for pid in alive:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    try:  # reap our own zombie children so that the group really disappears
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True
