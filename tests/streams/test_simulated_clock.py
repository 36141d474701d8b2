"""Kiosk and worker on one simulated clock: the clock runs from --at, the worker publishes it, a kiosk follows
it or is stopped when the worker would refuse its requests as stale."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domain.request_authentication import check_freshness
from streams.simulated_clock import (
    ClockMismatchError,
    SimulatedClock,
    WorkerClock,
    kiosk_clock,
    published_worker_clock,
    running_worker_clocks,
)

JST = dt.timezone(dt.timedelta(hours=9))
NOON = dt.datetime(2026, 11, 17, 12, 0, tzinfo=JST)
FIVE_MINUTES = dt.timedelta(minutes=5)


def test_the_clock_reads_the_instant_then_runs_at_real_speed() -> None:
    clock = SimulatedClock(NOON)
    first = clock()
    assert abs(first - NOON) < dt.timedelta(seconds=1) and first.microsecond % 1000 == 0
    time.sleep(0.05)
    assert clock() - first >= dt.timedelta(milliseconds=40)
    with pytest.raises(ValueError, match="time zone"):
        SimulatedClock(dt.datetime(2026, 11, 17, 12, 0))


def test_two_processes_with_the_same_offset_read_the_same_time() -> None:
    # Why an offset from the real clock and not a start instant: a kiosk started minutes after the
    # worker must read the worker's time, not the worker's time minus those minutes.
    worker = SimulatedClock(NOON)
    time.sleep(0.2)
    kiosk = SimulatedClock(offset=worker.offset)
    assert abs(kiosk() - worker()) < dt.timedelta(milliseconds=50)


def test_a_worker_publishes_its_clock_while_it_runs(tmp_path: Path) -> None:
    clock = SimulatedClock(NOON)
    with published_worker_clock(tmp_path, clock.offset, FIVE_MINUTES) as path:
        [published] = running_worker_clocks(tmp_path)
        assert published.simulated and published.freshness == FIVE_MINUTES
        assert abs(published.now() - clock()) < dt.timedelta(seconds=1)
        assert path.exists()
    assert running_worker_clocks(tmp_path) == [] and not path.exists()


def test_the_clock_file_of_a_killed_worker_is_ignored_and_removed(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{gone.stdout.strip()}.json"
    stale.write_text(json.dumps({"pid": int(gone.stdout), "offset_seconds": -1e6, "freshness_seconds": 300}))
    assert running_worker_clocks(tmp_path) == [] and not stale.exists()


def worker(offset: dt.timedelta) -> WorkerClock:
    return WorkerClock(pid=1, offset=offset, freshness=FIVE_MINUTES)


def test_a_kiosk_without_at_follows_a_simulated_worker_and_the_worker_accepts_its_requests() -> None:
    running = worker(NOON - dt.datetime.now(dt.UTC))
    clock = kiosk_clock(None, [running])
    assert clock is not None
    # What the worker checks: the request time the kiosk writes against the worker's own clock.
    assert check_freshness(clock(), running.now()) is None


def test_a_kiosk_without_at_and_a_worker_on_the_real_clock_use_the_real_clock() -> None:
    assert kiosk_clock(None, []) is None
    assert kiosk_clock(None, [worker(dt.timedelta(0))]) is None


def test_a_kiosk_at_an_instant_the_worker_would_refuse_is_stopped() -> None:
    night = NOON.replace(hour=3)
    with pytest.raises(ClockMismatchError, match=r"freshness window .* simulated clock"):
        kiosk_clock(night, [worker(NOON - dt.datetime.now(dt.UTC))])
    with pytest.raises(ClockMismatchError, match="runs on the real clock"):
        kiosk_clock(NOON - dt.timedelta(days=400), [worker(dt.timedelta(0))])
    # Without the check the request would be sent and refused as stale: the check says why beforehand.
    assert check_freshness(SimulatedClock(night)(), SimulatedClock(NOON)()) is not None


def test_a_kiosk_at_the_workers_time_or_with_no_worker_here_keeps_its_at() -> None:
    near = kiosk_clock(NOON + dt.timedelta(minutes=2), [worker(NOON - dt.datetime.now(dt.UTC))])
    assert near is not None and abs(near() - (NOON + dt.timedelta(minutes=2))) < dt.timedelta(seconds=1)
    alone = kiosk_clock(NOON, [])  # a worker elsewhere publishes nothing here
    assert alone is not None and abs(alone() - NOON) < dt.timedelta(seconds=1)


def test_workers_on_different_simulated_clocks_are_ambiguous() -> None:
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(ClockMismatchError, match="different simulated clocks"):
        kiosk_clock(None, [worker(NOON - now), worker(NOON.replace(hour=20) - now)])
