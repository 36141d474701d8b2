"""Deterministic crash points: the process dies hard (os._exit) at a named point, for tests only.

Kills from outside (SIGKILL at a random moment) mostly fall between batches; the recovery paths in
between (claimed but not answered, answered but not committed, ...) need a crash *at* a point. Code
marks such a point with `crash_point("materialiser.after_history")`; it does nothing unless the process was
started with the environment variable

    BCL_CRASH_AT=<name>[@<n>][,<name>[@<n>]...]

in which case the n-th time (1 by default) the named point is reached the process writes one line to
stderr and exits at once with status CRASH_EXIT_STATUS: no finally blocks, no flush, no atexit, as a
power cut would. The variable is read once, at import, so an unarmed point costs one set lookup.
Child processes inherit the variable: a point reached in a render process kills that process.

The points of the platform are listed in docs/operations.md (fault injection).
"""

from __future__ import annotations

import os
import sys
import threading

ENVIRONMENT_VARIABLE = "BCL_CRASH_AT"
CRASH_EXIT_STATUS = 86


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, nth = part.partition("@")
        armed[name] = int(nth) if nth else 1
        if armed[name] < 1:
            raise ValueError(f"{ENVIRONMENT_VARIABLE}: {part!r}: the hit count must be at least 1")
    return armed


_armed = _parse(os.environ.get(ENVIRONMENT_VARIABLE, ""))
_hits: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Exit the process hard here if this point is armed (see the module doc); otherwise nothing."""
    if name not in _armed:
        return
    with _lock:
        _hits[name] = hit = _hits.get(name, 0) + 1
    if hit == _armed[name]:
        sys.stderr.write(f"crash point {name} reached (hit {hit}): exiting with {CRASH_EXIT_STATUS}\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_STATUS)
