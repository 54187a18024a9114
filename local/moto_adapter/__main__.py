"""`python local/moto_adapter ...` (or `python -m moto_adapter ...` with local/ on the path): the moto
server of the local stack, patched (see __init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a directory: import the package from local/, not its modules one by one
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != here]
    sys.path.insert(0, str(Path(here).parent))
    __package__ = "moto_adapter"  # noqa: A001

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402

from moto_adapter import apply_all, server  # noqa: E402
from moto_adapter.guard import VersionMismatch, check_moto_version  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description="moto server for the local stack, patched (local/moto_adapter)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lambda-endpoint", required=True, help="cargo lambda watch, e.g. http://127.0.0.1:9000")
    parser.add_argument("--faults-file", help="JSON list of adapter faults (patches 10 and 25), re-read on every use")
    parser.add_argument("--callbacks-log", help="append every task callback Step Functions handled (probe)")
    parser.add_argument("--requests-log", help="CPU and wall time per request kind, rewritten every 2 s (probe)")
    parser.add_argument("--routes-file", help="functions of added stacks served by another cargo lambda watch "
                        "(lambda_.route), re-read when it changes")
    args = parser.parse_args()
    try:
        check_moto_version()
    except VersionMismatch as err:
        raise SystemExit(str(err)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ["MOTO_PORT"] = str(args.port)
    apply_all(args.lambda_endpoint, args.faults_file, args.callbacks_log, args.requests_log, args.routes_file)
    server.serve(args.port)


if __name__ == "__main__":
    main()
