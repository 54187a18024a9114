"""The adapter's guard against a moto upgrade: the patches replace moto's internals, so a new moto must
fail loudly at start, naming the patches to re-check, never half-work.

- `check_moto_version()`: the installed moto must be the version the patches are written against
  (`WRITTEN_FOR`) and the pin in local/requirements.txt must say the same; otherwise `VersionMismatch`
  names every patch that targets moto. To upgrade: bump the pin, re-check each named patch (its
  docstring says how to tell whether it is still needed), then update `WRITTEN_FOR`.
- `require(patch, owner, name, params)`: every patch asserts that the attribute it wraps or replaces
  exists and, for a function, still takes the parameters the patch was written for; otherwise
  `PatchTargetChanged` names the patch and the internal.
- `install(patches, owner, name, new)` replaces the attribute and records it; `applied()` says which
  patches are in place (tests/test_moto_adapter.py).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Callable

WRITTEN_FOR = "5.2.5"  # the moto version every patch below was written against and checked with
REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"
NOT_MOTO = {22}  # patches that do not touch moto (cargo lambda's queue); every other one does

_checks: dict[int | str, list[Callable[[], bool]]] = {}


class VersionMismatch(RuntimeError):
    """moto is not the version the patches were written against."""


class PatchTargetChanged(RuntimeError):
    """A moto internal a patch replaces is gone or takes other parameters."""


def pinned_moto(requirements: Path = REQUIREMENTS) -> str | None:
    """The moto version local/requirements.txt pins (`moto[server]==X`), or None."""
    for line in requirements.read_text().splitlines():
        m = re.match(r"^\s*moto(\[[^\]]*\])?\s*==\s*([^\s#;]+)", line)
        if m:
            return m.group(2)
    return None


def moto_patches() -> list[int]:
    from . import PATCHES

    return sorted(n for n in PATCHES if n not in NOT_MOTO)


def check_moto_version(installed: str | None = None, pinned: str | None = None) -> None:
    """Refuse to patch any moto but the one the patches are written for (and the pin names)."""
    if installed is None:
        import moto

        installed = moto.__version__
    pinned = pinned if pinned is not None else pinned_moto()
    if installed == pinned == WRITTEN_FOR:
        return
    numbers = ", ".join(str(n) for n in moto_patches())
    raise VersionMismatch(
        f"local/moto_adapter is written against moto {WRITTEN_FOR}; installed: moto {installed}, "
        f"pinned in local/requirements.txt: moto {pinned}. Re-check patches {numbers} "
        f"(index: local/moto_adapter/__init__.py; each patch's docstring says how to tell whether it is "
        f"still needed), then set WRITTEN_FOR in local/moto_adapter/guard.py and the pin to that version.")


def _where(owner: object, name: str) -> str:
    return f"{getattr(owner, '__module__', None) or ''}.{getattr(owner, '__qualname__', None) or getattr(owner, '__name__', owner)}.{name}".lstrip(".")


def require(patch: int, owner: object, name: str, params: tuple[str, ...] | None = None):  # noqa: ANN201
    """The attribute `name` of `owner` that patch `patch` replaces; it must exist and, when `params` is
    given, be a function taking exactly those parameters (a classmethod's or staticmethod's own)."""
    try:
        static = inspect.getattr_static(owner, name)
    except AttributeError:
        raise PatchTargetChanged(f"patch {patch}: {_where(owner, name)} is gone (moto changed; the patch is "
                                 f"written against moto {WRITTEN_FOR}): re-check patch {patch}") from None
    if params is not None:
        func = static.__func__ if isinstance(static, (classmethod, staticmethod)) else getattr(owner, name)
        try:
            found = tuple(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            found = None
        if found != tuple(params):
            raise PatchTargetChanged(f"patch {patch}: {_where(owner, name)} takes {found}, the patch is written "
                                     f"for {tuple(params)} (moto {WRITTEN_FOR}): re-check patch {patch}")
    return getattr(owner, name)


def install(patches: int | tuple[int, ...], owner: object, name: str, new: object) -> None:
    """Set `owner.name = new` (checked by `require` first) and record it for `applied()`."""
    setattr(owner, name, new)
    mark(patches, lambda: inspect.getattr_static(owner, name) is new)


def mark(patches: int | str | tuple[int | str, ...], check: Callable[[], bool]) -> None:
    """Record how to tell that `patches` are in place."""
    for patch in patches if isinstance(patches, tuple) else (patches,):
        _checks.setdefault(patch, []).append(check)


def applied() -> list[int | str]:
    """The patches (and probes) applied in this process whose every replacement is still in place."""
    done = [p for p, checks in _checks.items() if all(c() for c in checks)]
    return sorted(done, key=lambda p: (isinstance(p, str), p if isinstance(p, int) else 0, str(p)))
