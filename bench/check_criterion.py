"""Checks criterion's medians (`cargo bench -p etl-callback`) against their targets; exit 1 on a miss.

    python bench/check_criterion.py [target/criterion]

Reads `<dir>/<group>/<bench>/new/estimates.json` (nanoseconds) as criterion writes it. The targets
are regression guards, about 10x the medians measured on a 2-core machine (docs/benchmarks.md):
they catch an accidentally quadratic tokenizer or a per-event allocation storm, not a busy machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS_MS = {
    ("prepare", "script_prepare"): 10.0,
    ("prepare", "split_statements"): 4.0,
    ("completer_event", "finished"): 0.1,
    ("completer_event", "failed"): 0.1,
}
# Differences of two medians (ms): issue 23's "the translation adds at most 1 ms to a 100 KB
# script" is the translation's median less the lexer's alone on the same script
# (`cargo bench -p redshift-sql --bench translate`).
DIFF_TARGETS_MS = {
    (("translate", "to_postgres_100kb"), ("translate", "tokenize_100kb")): 1.0,
}


def main(argv: list[str]) -> int:
    base = Path(argv[0]) if argv else ROOT / "target" / "criterion"
    ok_all = True
    for (group, bench), target in TARGETS_MS.items():
        path = base / group / bench / "new" / "estimates.json"
        if not path.exists():
            print(f"  MISSED {group}/{bench}: no {path} (cargo bench -p etl-callback)")
            ok_all = False
            continue
        median_ms = json.loads(path.read_text())["median"]["point_estimate"] / 1e6
        ok = median_ms <= target
        ok_all &= ok
        print(f"  {'ok    ' if ok else 'MISSED'} {group}/{bench} median {median_ms * 1000:.1f} µs <= {target * 1000:.0f} µs")
    for (minuend, subtrahend), target in DIFF_TARGETS_MS.items():
        medians = []
        for group, bench in (minuend, subtrahend):
            path = base / group / bench / "new" / "estimates.json"
            if not path.exists():
                print(f"  MISSED {group}/{bench}: no {path}")
                ok_all = False
                break
            medians.append(json.loads(path.read_text())["median"]["point_estimate"] / 1e6)
        else:
            added = medians[0] - medians[1]
            ok = added <= target
            ok_all &= ok
            print(f"  {'ok    ' if ok else 'MISSED'} {'/'.join(minuend)} - {'/'.join(subtrahend)} median {added * 1000:.1f} µs <= {target * 1000:.0f} µs")
    if not ok_all:
        print("error: a criterion median is over its target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
