"""Checkpoints of the registers (issue 12, item 2), on real Parquet files: a restore from the last checkpoint at
or before the instant plus the changes after it equals today's full-scan restore and the simulator's ground
truth, across checkpoint boundaries, removals, late events and gap fills, and a resync."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sinks.register_checkpoints import write_checkpoint
from sinks.restore import read_restore, restore
from sinks.snapshot_store import RESYNC, ParquetSnapshotStore
from streams.register.simulator import ChangeRates, RegisterSimulator
from streams.settings import load_settings
from tests.sinks.history_factory import append_events

CODE = "302040"
START = dt.datetime(2026, 5, 28, tzinfo=dt.timezone(dt.timedelta(hours=9)))
Event = dict[str, Any]


@pytest.fixture(scope="module")
def week() -> tuple[RegisterSimulator, list[Event], list[Event]]:
    from streams.register.reference import load_reference_data

    rates = ChangeRates(record_removed=300.0, move_out=300.0)  # removals on every side of a checkpoint
    sim = RegisterSimulator(load_reference_data(), CODE, population=1500, seed=7, start=START,
                            font_path=load_settings().mincho_font, rates=rates)
    return sim, list(sim.full_load()), list(sim.changes(7))


def full_scan(store: ParquetSnapshotStore, instant: dt.datetime, out: Path) -> pa.Table:
    """Today's restore: the same history parts, no checkpoint."""
    plain = ParquetSnapshotStore(out.parent / f"plain-{uuid.uuid4().hex}")
    shutil.copytree(store.history_dir, plain.history_dir)
    restore(plain, CODE, instant, out)
    return read_restore(out, plain, CODE)


def restored(store: ParquetSnapshotStore, instant: dt.datetime, tmp_path: Path) -> pa.Table:
    out = tmp_path / f"restore-{instant.timestamp()}.parquet"
    restore(store, CODE, instant, out)
    return read_restore(out, store, CODE)


def check(store: ParquetSnapshotStore, sim: RegisterSimulator | None, instant: dt.datetime, tmp_path: Path) -> None:
    got = restored(store, instant, tmp_path)
    assert same(got, full_scan(store, instant, tmp_path / f"full-{instant.timestamp()}.parquet")), instant
    if sim is not None:
        assert {r["resident_code"]: r for r in got.to_pylist()} == sim.register_at(instant), instant


def same(got: pa.Table, full: pa.Table) -> bool:
    """The same rows in the same order, the same columns and types (a Parquet file may mark a column that is
    never null as required or not, depending on what the query read)."""
    return got.cast(full.schema).equals(full)


def day_end(changes: list[Event], day: int) -> dt.datetime:
    limit = START + dt.timedelta(days=day)
    return max(e["event_time"] for e in changes if e["event_time"] < limit)


def test_restores_across_checkpoint_boundaries_equal_the_full_scan_and_the_truth(week, tmp_path: Path) -> None:
    sim, load, changes = week
    store = ParquetSnapshotStore(tmp_path / "snapshots")
    append_events(store, CODE, load, 400)
    first_days = [e for e in changes if e["event_time"] < START + dt.timedelta(days=2)]
    middle_days = [e for e in changes if START + dt.timedelta(days=2) <= e["event_time"] < START + dt.timedelta(days=5)]
    last_days = changes[len(first_days) + len(middle_days):]
    append_events(store, CODE, first_days, 50)
    first = write_checkpoint(store, CODE).checkpoint
    append_events(store, CODE, middle_days, 50)
    second = write_checkpoint(store, CODE)
    append_events(store, CODE, last_days, 50)
    assert first is not None and second.checkpoint is not None and second.new_parts == -(-len(middle_days) // 50)
    assert first.instant == day_end(changes, 2) and second.checkpoint.instant == day_end(changes, 5)
    for removed in (first_days, last_days):  # removals and moves out on both sides of a checkpoint
        assert {"RECORD_REMOVED", "MOVE_OUT"} & {e["change_type"] for e in removed}
    instants = [
        START, START + dt.timedelta(days=1),  # before the first checkpoint: the full scan
        first.instant, first.instant - dt.timedelta(milliseconds=1), first.instant + dt.timedelta(hours=20),
        second.checkpoint.instant,  # exactly at the last
        START + dt.timedelta(days=6, hours=9), changes[-1]["event_time"],  # after the last
    ]
    for instant in instants:
        check(store, sim, instant, tmp_path)
    assert write_checkpoint(store, CODE).new_parts == -(-len(last_days) // 50)
    assert write_checkpoint(store, CODE).checkpoint is None  # nothing new
    check(store, sim, changes[-1]["event_time"], tmp_path)
    for path in store.checkpoint_dir.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path


def test_late_events_and_gap_fills_after_a_checkpoint_are_restored_as_by_the_full_scan(week, tmp_path: Path) -> None:
    sim, load, changes = week
    store = ParquetSnapshotStore(tmp_path / "snapshots")
    # Every seventh change of the first five days arrives late: after a checkpoint that covers later events,
    # with lower sequence numbers and older event times than the checkpoint's instant.
    early = [e for e in changes if e["event_time"] < START + dt.timedelta(days=5)]
    held = early[3::7]
    held_ids = {e["event_id"] for e in held}
    append_events(store, CODE, load + [e for e in early if e["event_id"] not in held_ids], 300)
    checkpoint = write_checkpoint(store, CODE).checkpoint
    assert checkpoint is not None and max(e["event_time"] for e in held) <= checkpoint.instant
    before_fill = [START + dt.timedelta(days=d, hours=h) for d, h in ((1, 10), (4, 23))] + [checkpoint.instant]
    for instant in before_fill:  # the history with the gaps, as the full scan sees it
        check(store, None, instant, tmp_path)
    append_events(store, CODE, held[::-1], 40)  # the gap fills, newest first
    append_events(store, CODE, changes[len(early):], 100)
    for instant in [*before_fill, START, changes[-1]["event_time"]]:
        check(store, sim, instant, tmp_path)
    write_checkpoint(store, CODE)  # built from the first one and the late parts
    for instant in (checkpoint.instant, changes[-1]["event_time"]):
        check(store, sim, instant, tmp_path)


def test_a_resync_invalidates_the_checkpoints_of_what_it_sets_aside(week, tmp_path: Path) -> None:
    _, load, changes = week
    store = ParquetSnapshotStore(tmp_path / "snapshots")
    append_events(store, CODE, load + changes, 500)
    write_checkpoint(store, CODE)
    assert store.checkpoints(CODE)
    cut = load[-1]["sequence"] + len(changes) // 2
    with store.writer_lock(RESYNC):
        store.set_aside_history(CODE, cut)
    assert store.checkpoints(CODE) == []
    kept = changes[: len(changes) // 2 - 1]
    check(store, None, changes[-1]["event_time"], tmp_path)
    write_checkpoint(store, CODE)
    got = restored(store, changes[-1]["event_time"], tmp_path)
    truth_store = ParquetSnapshotStore(tmp_path / "truth")
    append_events(truth_store, CODE, load + kept, 10_000)
    assert same(got, full_scan(truth_store, changes[-1]["event_time"], tmp_path / "truth.parquet"))


def test_after_many_weeks_a_restore_reads_the_last_checkpoint_and_only_the_parts_after_it(tmp_path: Path) -> None:
    """Time proportional to what changed since the last checkpoint, however long the history: after ten weeks
    with a checkpoint each week, the parts the last checkpoint covers are made unreadable (the same names,
    their bytes gone), and the restore after it still equals the simulator's truth. So does a later checkpoint,
    built from the last one plus the week after it, without reading the older parts either."""
    from streams.register.reference import load_reference_data

    busy = ChangeRates(*(10 * rate for rate in dataclasses.astuple(ChangeRates())))  # a dozen changes a week
    sim = RegisterSimulator(load_reference_data(), CODE, population=600, seed=11, start=START,
                            font_path=load_settings().mincho_font, rates=busy)
    store = ParquetSnapshotStore(tmp_path / "snapshots")
    append_events(store, CODE, list(sim.full_load()), 200)
    for number in range(1, 11):
        append_events(store, CODE, list(sim.changes(7, from_day=7 * (number - 1) + 1)), 5)
        assert write_checkpoint(store, CODE).checkpoint is not None
    last = store.checkpoints(CODE)[-1]
    assert len(last.covered) == len(store.history_parts(CODE)) > 30
    week_after = list(sim.changes(7, from_day=71))
    append_events(store, CODE, week_after, 5)
    for part in store.history_parts(CODE):
        if part.name in last.covered:
            part.write_bytes(b"")  # read, it would fail the restore
    for instant in (last.instant, week_after[3]["event_time"], week_after[-1]["event_time"]):
        got = restored(store, instant, tmp_path)
        assert {r["resident_code"]: r for r in got.to_pylist()} == sim.register_at(instant), instant
    assert write_checkpoint(store, CODE).new_parts == -(-len(week_after) // 5)
    got = restored(store, week_after[-1]["event_time"], tmp_path)
    assert {r["resident_code"]: r for r in got.to_pylist()} == sim.register_at(week_after[-1]["event_time"])


def test_csv_and_current_only_restores_from_a_checkpoint_equal_the_full_scan(week, tmp_path: Path) -> None:
    sim, load, changes = week
    store = ParquetSnapshotStore(tmp_path / "snapshots")
    half = len(changes) // 2
    append_events(store, CODE, load + changes[:half], 300)
    assert write_checkpoint(store, CODE).checkpoint is not None
    append_events(store, CODE, changes[half:], 30)
    plain = ParquetSnapshotStore(tmp_path / "plain")
    shutil.copytree(store.history_dir, plain.history_dir)
    for instant in (changes[half - 1]["event_time"], changes[-1]["event_time"]):
        for which, s in (("checkpoint", store), ("full", plain)):
            restore(s, CODE, instant, tmp_path / f"{which}.csv", "csv")
            restore(s, CODE, instant, tmp_path / f"{which}-current.parquet", current_only=True)
        assert (tmp_path / "checkpoint.csv").read_bytes() == (tmp_path / "full.csv").read_bytes()
        current = read_restore(tmp_path / "checkpoint-current.parquet", store, CODE)
        assert same(current, read_restore(tmp_path / "full-current.parquet", plain, CODE))
        assert {r["resident_code"] for r in current.to_pylist()} == {
            code for code, r in sim.register_at(instant).items() if r["status"] == "CURRENT"}
