"""A pipeline definition (scripts/pipeline.toml or any other) as the generator sees it.

Nothing here parses TOML or lays out steps: `target/debug/pipeline steps --definition FILE` (the
crate statemachine/pipeline, built by `make build`) prints the summary and this module reads it,
so the local stack, the tests, the soak and the benchmark agree with the state machine it generates.

    from pipeline import load
    p = load()                      # scripts/pipeline.toml
    p.names                         # ["SetupSalesDataPipeline", ...] in definition order
    p.concurrent_with("LoadItem")   # ["LoadCustomerAddress"]: may run at the same time
    p.write_asl(run_dir / "etl.asl.json")
"""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procs import StackError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEFINITION = ROOT / "scripts" / "pipeline.toml"
BINARY = ROOT / "target" / "debug" / "pipeline"
STATEMENT_FAILED = "Redshift.StatementFailed"


class PipelineError(StackError):
    """The generator is missing, or it refused the definition (its stderr is the message)."""


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    after: tuple[str, ...]  # what the definition says it depends on (directly)
    waits_for: tuple[str, ...]  # every step that has finished when it starts, under the generated layout
    errors: dict  # error renames the functions apply, e.g. {"Redshift.StatementFailed": "Validation.NoSalesLoaded"}
    description: str | None = None


@dataclass(frozen=True)
class Pipeline:
    definition: Path
    summary: dict  # the generator's JSON, as printed

    @property
    def name(self) -> str:
        return self.summary["name"]

    @property
    def steps(self) -> list[Step]:
        return [Step(name=s["name"], script=s["script"], after=tuple(s.get("after") or ()),
                     waits_for=tuple(s.get("waitsFor") or ()), errors=dict(s.get("errors") or {}),
                     description=s.get("description"))
                for s in self.summary["steps"]]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    @property
    def scripts_dir(self) -> Path:
        """Scripts are looked up beside the definition file (as the generator does)."""
        return self.definition.parent

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"{self.definition}: no step {name!r} (steps: {', '.join(self.names)})")

    def concurrent_with(self, name: str) -> list[str]:
        """The steps that may run at the same time as `name`: neither waits for the other."""
        me = self.step(name)
        return [s.name for s in self.steps
                if s.name != name and s.name not in me.waits_for and name not in s.waits_for]

    @property
    def with_parallel_sibling(self) -> list[str]:
        """Steps that have at least one sibling running in parallel, in definition order."""
        return [n for n in self.names if self.concurrent_with(n)]

    @property
    def most_concurrent(self) -> int:
        """An upper bound of how many steps may run at once: the largest group of a step and the steps
        that may run beside it. Exact when every branch of a Parallel is one step; a branch of several
        steps in a row counts them all (they never run together), which only over-counts."""
        return max((1 + len(self.concurrent_with(n)) for n in self.names), default=1)

    @property
    def failable(self) -> list[str]:
        """Steps whose SQL failure ends the run as Redshift.StatementFailed (no `errors` rename for it)."""
        return [s.name for s in self.steps if STATEMENT_FAILED not in s.errors]

    def write_asl(self, out: Path, binary: Path | None = None) -> Path:
        """`pipeline asl --definition FILE --out OUT`: the state machine for this definition."""
        out = Path(out).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        _run(binary or BINARY, "asl", "--definition", str(self.definition), "--out", str(out))
        return out


def load(definition: Path | str | None = None, binary: Path | None = None) -> Pipeline:
    """The summary of a definition (default scripts/pipeline.toml); PipelineError when the generator
    is missing or refuses it."""
    path = Path(definition or DEFAULT_DEFINITION).resolve()
    binary = Path(binary or BINARY)
    stamp = path.stat().st_mtime_ns if path.exists() else None
    return _load(path, binary, stamp)


@functools.lru_cache(maxsize=32)
def _load(path: Path, binary: Path, _mtime: int | None) -> Pipeline:
    if not path.exists():
        raise PipelineError(f"pipeline definition {path} does not exist")
    out = _run(binary, "steps", "--definition", str(path))
    try:
        summary = json.loads(out)
    except ValueError as err:
        raise PipelineError(f"{binary} steps --definition {path}: not JSON ({err}): {out[:200]}") from err
    return Pipeline(path, summary)


def _run(binary: Path, *args: str) -> str:
    if not binary.exists():
        raise PipelineError(f"the pipeline generator {binary} is missing: run make build "
                            f"(or cargo build -p pipeline)")
    res = subprocess.run([str(binary), *args], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        reason = res.stderr.strip() or res.stdout.strip() or f"exit status {res.returncode}"
        raise PipelineError(f"the pipeline generator refused the definition: {reason}")
    return res.stdout
