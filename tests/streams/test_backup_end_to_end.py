"""The backup against the embedded cluster: ground truth, restarts and broker faults."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from domain.japan_time import JST
from infra.cluster_control import ClusterHandle
from schemas.registry import FileSchemaRegistry
from sinks.register_checkpoints import write_checkpoint
from sinks.restore import backup_status, read_restore, restore
from sinks.snapshot_store import ParquetSnapshotStore
from streams.adapter import publish
from streams.materialiser import MaterialiserTopics
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings
from tests.platforms import make_platform

pytestmark = pytest.mark.integration

# Late May: the seven days include the June tax assessment, so most records change at least once.
START = dt.datetime(2026, 5, 28, 0, 0, tzinfo=JST)


@pytest.fixture(scope="module")
def reference():  # type: ignore[no-untyped-def]
    return load_reference_data()


def simulator(reference, code: str, population: int) -> RegisterSimulator:  # type: ignore[no-untyped-def]
    return RegisterSimulator(reference, code, population=population, seed=7, start=START,
                             font_path=load_settings().mincho_font)


def private_topics(topic_factory) -> MaterialiserTopics:  # type: ignore[no-untyped-def]
    return MaterialiserTopics(diffs=topic_factory(8), residents=topic_factory(8), dlq=topic_factory(1))


def restored(store: ParquetSnapshotStore, code: str, instant: dt.datetime, tmp_path: Path) -> dict[str, dict]:
    out = tmp_path / f"{code}-{instant.timestamp()}.parquet"
    restore(store, code, instant, out)
    return {r["resident_code"]: r for r in read_restore(out, store, code).to_pylist()}


def differences(got: dict[str, dict], truth: dict[str, dict]) -> list[str]:
    """What differs, by resident code and field (for a readable failure)."""
    out = [f"missing {rc}" for rc in truth.keys() - got.keys()] + [f"extra {rc}" for rc in got.keys() - truth.keys()]
    for rc in sorted(got.keys() & truth.keys()):
        out += [f"{rc}.{k}: {got[rc].get(k)!r} != {v!r}" for k, v in truth[rc].items() if got[rc].get(k) != v]
    return out[:10]


def test_restores_equal_the_ground_truth(cluster: ClusterHandle, topic_factory, group_id: str, reference,
                                        tmp_path: Path) -> None:
    names = private_topics(topic_factory)
    registry = FileSchemaRegistry()
    sims = [simulator(reference, "302040", 1500), simulator(reference, "045811", 900)]
    platform = make_platform(tmp_path, cluster)
    events = {}
    for sim in sims:
        events[sim.municipality.code] = list(sim.full_load()) + list(sim.changes(7))
        publish(events[sim.municipality.code], cluster.bootstrap_servers, registry, platform.register_signer,
                topic=names.diffs)
    store = platform.snapshot_store
    counters = platform.materialiser(group_id=group_id, topic_names=names).run(until_caught_up=True, idle_seconds=0.5)
    total = sum(len(e) for e in events.values())
    assert (counters.consumed, counters.applied, counters.dead_lettered) == (total, total, 0)

    for sim in sims:
        code = sim.municipality.code
        changes = [e for e in events[code] if e["change_type"] != "FULL_LOAD"]
        assert len(changes) > 100, "seven days with the tax assessment should change many records"
        kinds = {e["change_type"] for e in changes}
        assert "TAX_ASSESSED" in kinds and len(kinds) >= 3, kinds
        middle = changes[len(changes) // 2]["event_time"]
        instants = [
            START,  # the full load itself
            START + dt.timedelta(days=2, hours=12),
            middle,  # an event's own time: it is included
            middle - dt.timedelta(milliseconds=1),  # just before it: not included
            changes[-1]["event_time"],  # the last event sent (later instants would include unsent days)
        ]
        for instant in instants:
            truth = sim.register_at(instant)
            got = restored(store, code, instant, tmp_path)
            assert got == truth, f"{code} as of {instant}: {differences(got, truth)}"
        [status] = [s for s in backup_status(store) if s.municipality_code == code]
        assert status.complete and status.last_sequence == len(events[code])
    with pytest.raises(Exception, match="no backup of municipality"):
        restore(store, "131016", START, tmp_path / "none.parquet")


MATERIALISER = """
import sys
from pathlib import Path
from streams.materialiser import MaterialiserTopics
from tests.platforms import make_platform
bootstrap, group, data_dir, diffs, residents, dlq, until = sys.argv[1:]
platform = make_platform(Path(data_dir), bootstrap_servers=bootstrap)
m = platform.materialiser(group_id=group, topic_names=MaterialiserTopics(diffs, residents, dlq), batch_size=500,
                          flush_rows=1000, flush_seconds=0.2)
print(m.run(until_caught_up=until == "1", idle_seconds=1.0).as_dict(), flush=True)
"""


def _materialiser_process(cluster: ClusterHandle, group: str, data_dir: Path, names: MaterialiserTopics,
                          until_caught_up: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", MATERIALISER, cluster.bootstrap_servers, group, str(data_dir), names.diffs,
         names.residents, names.dlq, "1" if until_caught_up else "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def history_sequences(store: ParquetSnapshotStore, code: str) -> tuple[int, int]:
    if not store.has_history():
        return 0, 0
    con = duckdb.connect()
    rel = store.history_relation(con)
    row = con.execute(f"SELECT count(*), count(DISTINCT sequence) FROM {rel} WHERE municipality_code = ?",
                      [code]).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_killed_materialiser_resumes_without_loss_or_double_application(
    cluster: ClusterHandle, topic_factory, group_id: str, reference, tmp_path: Path
) -> None:
    names = private_topics(topic_factory)
    sim = simulator(reference, "302058", 6000)
    events = list(sim.full_load()) + list(sim.changes(7))
    platform = make_platform(tmp_path)
    publish(events, cluster.bootstrap_servers, FileSchemaRegistry(), platform.register_signer, topic=names.diffs)
    store = platform.snapshot_store

    first = _materialiser_process(cluster, group_id, tmp_path, names, until_caught_up=False)
    deadline = time.monotonic() + 60
    while history_sequences(store, "302058")[0] < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    applied_before_kill = history_sequences(store, "302058")[0]
    first.send_signal(signal.SIGKILL)  # mid-stream: no chance to flush or commit
    first.wait()
    assert 0 < applied_before_kill < len(events), "the kill must land mid-stream"

    second = _materialiser_process(cluster, group_id, tmp_path, names, until_caught_up=True)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    rows, distinct = history_sequences(store, "302058")
    assert rows == distinct == len(events)  # no loss, no double application
    final = events[-1]["event_time"]
    assert restored(store, "302058", final, tmp_path) == sim.register_at(final)


def test_broker_down_and_up_during_ingest_loses_nothing(
    cluster: ClusterHandle, topic_factory, group_id: str, reference, tmp_path: Path
) -> None:
    names = private_topics(topic_factory)
    sim = simulator(reference, "304069", 3000)
    events = list(sim.full_load()) + list(sim.changes(7))
    platform = make_platform(tmp_path, cluster)
    store, registry = platform.snapshot_store, platform.registry
    stop = threading.Event()
    materialiser = platform.materialiser(group_id=group_id, topic_names=names, flush_seconds=0.2)
    worker = threading.Thread(target=materialiser.run, args=(stop,))
    worker.start()
    try:
        half = len(events) // 2
        publish(events[:half], cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
        cluster.broker_down(2)
        downtime = threading.Timer(2.0, cluster.broker_up, args=(2,))
        downtime.start()
        publish(events[half:], cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
        downtime.join()
        deadline = time.monotonic() + 60
        while history_sequences(store, "304069")[1] < len(events) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        cluster.broker_up(2)
        stop.set()
        worker.join(30)
    rows, distinct = history_sequences(store, "304069")
    assert rows == distinct == len(events)
    final = events[-1]["event_time"]
    assert restored(store, "304069", final, tmp_path) == sim.register_at(final)


def test_checkpoints_beside_a_running_materialiser_keep_restores_equal_to_the_ground_truth(
    cluster: ClusterHandle, topic_factory, group_id: str, reference, tmp_path: Path
) -> None:
    """Issue 12, item 2: checkpoints are written while the materialiser runs (it holds the writer lock), and
    late gap fills (lower sequences, older event times) arrive after one; restores still equal the truth."""
    names = private_topics(topic_factory)
    sim = simulator(reference, "302040", 1500)
    load, changes = list(sim.full_load()), list(sim.changes(7))
    held = changes[5:len(changes) // 2:9]  # sent last: gap fills older than the checkpoint before them
    held_ids = {e["event_id"] for e in held}
    platform = make_platform(tmp_path, cluster)
    store, registry, signer = platform.snapshot_store, platform.registry, platform.register_signer
    stop = threading.Event()
    worker = threading.Thread(target=platform.materialiser(group_id=group_id, topic_names=names,
                                                           flush_seconds=0.2).run, args=(stop,))
    worker.start()

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while history_sequences(store, "302040")[1] < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert history_sequences(store, "302040")[1] == count

    try:
        publish(load, cluster.bootstrap_servers, registry, signer, topic=names.diffs)
        wait_for(len(load))
        assert write_checkpoint(store, "302040").checkpoint is not None  # beside the running materialiser
        sent = [e for e in changes if e["event_id"] not in held_ids]
        publish(sent, cluster.bootstrap_servers, registry, signer, topic=names.diffs)
        wait_for(len(load) + len(sent))
        middle = write_checkpoint(store, "302040").checkpoint
        assert middle is not None and middle.instant == changes[-1]["event_time"]
        publish(held, cluster.bootstrap_servers, registry, signer, topic=names.diffs)
        wait_for(len(load) + len(changes))
    finally:
        stop.set()
        worker.join(30)
    instants = [START, held[0]["event_time"], changes[len(changes) // 2]["event_time"], changes[-1]["event_time"]]
    for instant in instants:
        assert restored(store, "302040", instant, tmp_path) == sim.register_at(instant), instant
    write_checkpoint(store, "302040")
    assert len(store.checkpoints("302040")) == 3
    for instant in instants:
        assert restored(store, "302040", instant, tmp_path) == sim.register_at(instant), instant
