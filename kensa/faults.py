"""A test-only fault hook: ``KENSA_FAULT=POINT[:SUFFIX][@N]`` makes the process SIGKILL itself the N-th time
(default the first) it reaches the named point (with ``SUFFIX``: for a file whose path ends with it), so the kill
sweep (tests/system/test_kill_sweep.py) can kill a run at the exact moment a random delay would rarely hit: half-way
through a file's bytes, between an update's files, inside a cache transaction.

The points:

* ``write_atomic``: inside :func:`kensa.paths.write_atomic`, after half of the new bytes are written (to the
  temporary file, so the file being replaced is untouched); ``write_atomic:.toml`` the first TOML written;
* ``thresholds-items``: a thresholds update has written its items files but not yet the TOML naming them;
* ``snapshot-written``: ``--snapshot-update`` has written one snapshot file, the others not yet;
* ``cache-commit``: a response-cache chunk is inserted but its transaction not committed;
* ``cache-committed``: a response-cache chunk is committed, before the run goes on.

Off in normal runs: the variable is read once at import, and an unset hook costs one comparison per point.
The process writes ``kensa: fault point P reached: SIGKILL`` to stderr (file descriptor 2, unbuffered) first.
"""

from __future__ import annotations

import os
import signal

POINTS = ("write_atomic", "thresholds-items", "snapshot-written", "cache-commit", "cache-committed")


def _parse(spec: str) -> tuple[str, str, int] | None:
    if not spec:
        return None
    where, _, nth = spec.partition("@")
    point, _, suffix = where.partition(":")
    if point not in POINTS or (nth and not nth.isdigit()) or nth == "0":
        raise ValueError(f"KENSA_FAULT={spec!r}: expected POINT[:SUFFIX][@N] (N >= 1), POINT one of "
                         f"{', '.join(POINTS)}")
    return point, suffix, int(nth or 1)


_ARMED = _parse(os.environ.get("KENSA_FAULT", ""))
_reached = 0


def fault_point(name: str, path: object = "") -> None:
    """SIGKILL this process if ``KENSA_FAULT`` names ``name`` (and a suffix of ``path``) and this is its N-th
    arrival; else nothing."""
    global _reached
    if _ARMED is None or _ARMED[0] != name or not str(path).endswith(_ARMED[1]):
        return
    _reached += 1
    if _reached == _ARMED[2]:
        os.write(2, f"kensa: fault point {name} reached at {path}: SIGKILL\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)
