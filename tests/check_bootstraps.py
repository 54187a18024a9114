"""Checks that `sam build` produced, for each function, a `bootstrap` that is an arm64 Linux ELF
executable (what the provided.al2023 / arm64 runtime runs) of at most MAX_MB (8 MB, docs/benchmarks.md, "The
functions: size, start, memory"). Usage: check_bootstraps.py [--any-size] BUILD_DIR NAME...

--any-size skips the size target: `make sam-build-debug` (make test) packages dev-profile builds,
whose size says nothing about the release profile's; `make sam-build` checks the size."""

import os
import struct
import sys

EM_AARCH64 = 183
MAX_MB = 8.0  # 1 MB = 10^6 bytes


def check(path: str, max_mb: float | None = MAX_MB) -> str | None:
    if not os.path.isfile(path):
        return "missing"
    if not os.access(path, os.X_OK):
        return "not executable"
    with open(path, "rb") as f:
        header = f.read(20)
    if header[:4] != b"\x7fELF":
        return "not an ELF file"
    if header[4] != 2:
        return "not 64-bit"
    (machine,) = struct.unpack_from("<H", header, 18)
    if machine != EM_AARCH64:
        return f"machine {machine}, not aarch64 ({EM_AARCH64})"
    size_mb = os.path.getsize(path) / 1e6
    if max_mb is not None and size_mb > max_mb:
        return f"{size_mb:.2f} MB, over the {max_mb:.0f} MB target"
    return None


def main() -> int:
    args = sys.argv[1:]
    max_mb: float | None = MAX_MB
    if args[:1] == ["--any-size"]:
        max_mb, args = None, args[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build_dir, names = args[0], args[1:]
    failures = 0
    for name in names:
        path = os.path.join(build_dir, name, "bootstrap")
        problem = check(path, max_mb)
        if problem:
            failures += 1
            print(f"FAIL {path}: {problem}")
        else:
            limit = "size not checked" if max_mb is None else f"<= {max_mb:.0f} MB"
            print(f"ok   {path}: arm64 ELF executable, {os.path.getsize(path) / 1e6:.2f} MB, {limit}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
