"""Deterministic crash points: the process dies hard (os._exit) at a named point, for tests only.

Kills from outside (SIGKILL at a random moment) mostly fall between batches; the recovery paths in
between (claimed but not answered, answered but not committed, ...) need a crash *at* a point. Code
marks such a point with `crash_point("worker.after_claim")`; it does nothing unless the process was
started with the environment variable

    BCL_CRASH_POINT=<name>[:<key>][@<n>][,<name>[:<key>][@<n>]...]

in which case the n-th time (1 by default) the named point is reached the process writes one line to
stderr and exits at once with status CRASH_EXIT_STATUS: no finally blocks, no flush, no atexit, as a
power cut would. With a key, only the hits that pass that key count (`crash_point("worker.mid_render",
job.request_id)` armed as `worker.mid_render:REQ-1` kills the render of request REQ-1 only: a poisoned
message). The variable is read once, at import, so an unarmed point costs one set lookup.
Child processes inherit the variable, each with its own hit counts: a point reached in a render process
kills that process, and a fresh one dies again at the same point.

The points of the platform are listed in docs/operations.md (fault injection).
"""

from __future__ import annotations

import os
import sys
import threading

ENVIRONMENT_VARIABLE = "BCL_CRASH_POINT"
CRASH_EXIT_STATUS = 86


_Armed = tuple[str, str | None]  # (point, key or None: any hit)


def _parse(spec: str) -> dict[_Armed, int]:
    armed: dict[_Armed, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        point, _, nth = part.partition("@")
        name, _, key = point.partition(":")
        armed[name, key or None] = hits = int(nth) if nth else 1
        if hits < 1:
            raise ValueError(f"{ENVIRONMENT_VARIABLE}: {part!r}: the hit count must be at least 1")
    return armed


_armed = _parse(os.environ.get(ENVIRONMENT_VARIABLE, ""))
_armed_names = frozenset(name for name, _ in _armed)
_hits: dict[_Armed, int] = {}
_lock = threading.Lock()


def crash_point(name: str, key: str | None = None) -> None:
    """Exit the process hard here if this point is armed, for any key or for this one (see the module
    doc); otherwise nothing."""
    if name not in _armed_names:
        return
    for armed in ((name, None), (name, key)) if key is not None else ((name, None),):
        if armed not in _armed:
            continue
        with _lock:
            _hits[armed] = hit = _hits.get(armed, 0) + 1
        if hit == _armed[armed]:
            shown = name if armed[1] is None else f"{name}:{key}"
            sys.stderr.write(f"crash point {shown} reached (hit {hit}): exiting with {CRASH_EXIT_STATUS}\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT_STATUS)
