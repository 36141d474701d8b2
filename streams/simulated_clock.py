"""A simulated clock for trying the kiosk service at any hour, and how kiosks and the worker agree on it.

Kiosk requests are refused outside the service hours (domain.kiosk_rules.SERVICE_OPENS–SERVICE_CLOSES,
Japan time) and when their request time is not within the freshness window
(domain.request_authentication.FRESHNESS_WINDOW) of the certificate worker's clock, so a kiosk on a
simulated clock only works with a worker on the same one. `bcl worker run` therefore publishes its
clock in the data directory (one small file per worker process, removed when it stops): its offset
from the real clock and its freshness window. A kiosk command without `--at` follows a running
worker's simulated clock; one with `--at` that the running worker would refuse as stale is stopped
before it reads the card, with a message saying how to make them agree. (A worker on another
machine or data directory publishes nothing here, and the kiosk's clock is used as given.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from domain.errors import BclError
from domain.japan_time import format_instant


class ClockMismatchError(BclError):
    """The kiosk's clock and the running certificate worker's disagree by more than the freshness window."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SimulatedClock:
    """An instant that runs on at real speed: reads `instant` when made (or `set`), then real time later.

    Kept as an offset from the real clock rather than from a process's own start, so that two processes
    holding the same offset read the same time."""

    def __init__(self, instant: dt.datetime | None = None, *, offset: dt.timedelta | None = None) -> None:
        if (instant is None) == (offset is None):
            raise ValueError("give the instant the clock reads now, or its offset from the real clock")
        self.offset = offset if offset is not None else dt.timedelta(0)
        if instant is not None:
            self.set(instant)

    def set(self, instant: dt.datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("a simulated instant needs a time zone")
        self.offset = instant - _utc_now()

    def __call__(self) -> dt.datetime:
        # Millisecond precision, as a kiosk request carries its time (Avro timestamp-millis).
        now = _utc_now() + self.offset
        return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class WorkerClock:
    """The clock a running certificate worker checks requests against."""

    pid: int
    offset: dt.timedelta  # zero: the real clock
    freshness: dt.timedelta

    @property
    def simulated(self) -> bool:
        # Below a second the offset is the file's rounding, not a simulation.
        return abs(self.offset) >= dt.timedelta(seconds=1)

    def now(self) -> dt.datetime:
        return SimulatedClock(offset=self.offset)()


@contextlib.contextmanager
def published_worker_clock(directory: Path, offset: dt.timedelta, freshness: dt.timedelta) -> Iterator[Path]:
    """Publish this worker process's clock in `directory` while the block runs."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "offset_seconds": offset.total_seconds(),
                               "freshness_seconds": freshness.total_seconds()}))
    tmp.replace(path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True


def running_worker_clocks(directory: Path) -> list[WorkerClock]:
    """The clocks of the workers running on this data directory; files of killed workers are removed."""
    clocks = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
        try:
            data = json.loads(path.read_text())
            clock = WorkerClock(int(data["pid"]), dt.timedelta(seconds=float(data["offset_seconds"])),
                                dt.timedelta(seconds=float(data["freshness_seconds"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: it says nothing about a running worker
        if _alive(clock.pid):
            clocks.append(clock)
        else:
            path.unlink(missing_ok=True)  # a worker killed before it could remove its file
    return clocks



def _describe(worker: WorkerClock) -> str:
    kind = "a simulated clock" if worker.simulated else "the real clock"
    return f"the certificate worker (pid {worker.pid}) runs on {kind}, now {format_instant(worker.now())}"


def kiosk_clock(at: dt.datetime | None, workers: list[WorkerClock]) -> SimulatedClock | None:
    """The clock a kiosk command uses: `--at` if given, else a running worker's simulated clock; None
    for the real clock. Raises ClockMismatchError if a running worker would refuse every request as stale."""
    simulated = [w for w in workers if w.simulated]
    if at is None:
        if not simulated:
            return None
        first = simulated[0]
        if any(abs(w.offset - first.offset) > w.freshness for w in simulated):
            raise ClockMismatchError("the running certificate workers are on different simulated clocks; "
                                     "stop all but one, or give --at")
        return SimulatedClock(offset=first.offset)
    clock = SimulatedClock(at)
    for worker in workers:
        skew = abs(clock() - worker.now())
        if skew > worker.freshness:
            raise ClockMismatchError(
                f"--at {format_instant(at)} is {skew.total_seconds():.0f} s from the worker's time, outside its "
                f"freshness window (±{worker.freshness.total_seconds():.0f} s): {_describe(worker)}; start "
                "the worker with the same --at, or leave --at out to follow the worker's clock"
            )
    return clock
