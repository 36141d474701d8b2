"""Issue 12 item 1: the materialiser as several processes in one consumer group, against the embedded cluster.

Real processes (subprocesses of this interpreter), one group: one killed with SIGKILL mid-load, one added
mid-load; the history must hold every (municipality, sequence) once, restores must equal the simulator's ground
truth, a duplicate re-sent is not applied, a gap left open is reported (and closes), and a certificate serial held
by a record one process applied blocks a change another process reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import duckdb
import pytest

from domain.register_validation import MAX_SEQUENCE_JUMP, message_key
from infra.cluster_control import ClusterHandle
from schemas.registry import FileSchemaRegistry
from sinks.restore import backup_status
from sinks.snapshot_store import ParquetSnapshotStore
from streams.adapter import publish
from streams.materialiser import MaterialiserTopics
from tests.factories import make_change, make_resident
from tests.platforms import make_platform
from tests.streams.test_backup_end_to_end import differences, private_topics, restored, simulator
from tests.streams.test_backup_end_to_end import reference as reference  # the module's fixture
from tests.streams.test_register_authenticity import ONAGAWA, TANABE, card, dead_letters

pytestmark = pytest.mark.integration

MEMBER = """
import signal, sys, threading
from pathlib import Path
from infra.log import configure_logging
from streams.materialiser import MaterialiserTopics
from tests.platforms import make_platform
configure_logging("json")
bootstrap, group, data_dir, diffs, residents, dlq = sys.argv[1:]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
platform = make_platform(Path(data_dir), bootstrap_servers=bootstrap)
m = platform.materialiser(group_id=group, topic_names=MaterialiserTopics(diffs, residents, dlq), batch_size=300,
                          flush_rows=600, flush_seconds=0.2, gap_grace_seconds=0.5, group_member=True)
print(m.run(stop).as_dict(), flush=True)
"""


def _member(cluster: ClusterHandle, group: str, data_dir: Path, names: MaterialiserTopics,
            log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", MEMBER, cluster.bootstrap_servers, group, str(data_dir), names.diffs, names.residents,
         names.dlq],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _stop(processes: list[subprocess.Popen[str]]) -> list[dict[str, int]]:
    for p in processes:
        p.send_signal(signal.SIGTERM)
    counters = []
    for p in processes:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out
        counters.append(eval(out.strip().splitlines()[-1]))  # the dict the script prints
    return counters


def _history(store: ParquetSnapshotStore) -> tuple[int, int]:
    """History rows, and distinct (municipality, sequence) among them."""
    if not store.has_history():
        return 0, 0
    con = duckdb.connect()
    row = con.execute(f"SELECT count(*), count(DISTINCT (municipality_code, sequence)) "
                      f"FROM {store.history_relation(con)}").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_three_processes_one_killed_one_added_equal_the_ground_truth(
    cluster: ClusterHandle, topic_factory, group_id: str, reference, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    names = private_topics(topic_factory)  # 8 partitions
    registry = FileSchemaRegistry()
    platform = make_platform(tmp_path, cluster)
    store = platform.snapshot_store
    sims = [simulator(reference, "302040", 1500), simulator(reference, "045811", 900),
            simulator(reference, "302058", 1200)]
    events = {s.municipality.code: list(s.full_load()) + list(s.changes(7)) for s in sims}
    gap_code = "045811"
    held = events[gap_code][len(events[gap_code]) // 2]  # left out: a gap, reported, closed at the end
    sent = {code: [e for e in evs if e is not held] for code, evs in events.items()}
    first_half = {code: evs[: len(evs) // 2] for code, evs in sent.items()}
    for evs in first_half.values():
        publish(evs, cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
    total = sum(len(evs) for evs in sent.values())

    logs = [tmp_path / f"member-{i}.log" for i in range(4)]
    members = [_member(cluster, group_id, tmp_path, names, logs[i]) for i in range(3)]
    _wait_for(lambda: _history(store)[0] >= 1500, 120, "the first applied events")
    members[1].send_signal(signal.SIGKILL)  # mid-load: no chance to checkpoint or leave the group
    members[1].wait()
    killed_at = _history(store)[0]
    assert killed_at < total, "the kill must land mid-load"
    members[1] = _member(cluster, group_id, tmp_path, names, logs[3])  # a process added during the load
    for code, evs in sent.items():
        publish(evs[len(first_half[code]):], cluster.bootstrap_servers, registry, platform.register_signer,
                topic=names.diffs)
    _wait_for(lambda: _history(store)[0] >= total, 240, "every event applied")

    # A duplicate re-sent (the latest event of a municipality, again): recognised by its partition's owner.
    publish([sent["302058"][-1]], cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
    # The gap left open is reported by the member holding partition 0, from the group's whole history.
    _wait_for(lambda: any('"event": "gap"' in log.read_text() for log in logs), 60, "the gap report")
    time.sleep(1.5)  # the duplicate's partition owner has had its poll and checkpoint
    rows, distinct = _history(store)
    assert rows == distinct == total  # nothing applied twice, nothing lost
    [status] = [s for s in backup_status(store) if s.municipality_code == gap_code]
    assert (status.missing, status.gaps) == (1, [(held["sequence"], held["sequence"])])
    [report] = [json.loads(line) for log in logs for line in log.read_text().splitlines()
                if '"event": "gap"' in line]  # once, by one member
    assert (report["municipality"], report["missing"], report["first_missing"]) == (gap_code, 1, held["sequence"])

    # The held event arrives: the gap closes.
    publish([held], cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
    _wait_for(lambda: _history(store)[0] >= total + 1, 60, "the gap fill")
    counters = _stop(members)
    assert _history(store) == (total + 1, total + 1)
    assert sum(c["duplicates"] for c in counters) >= 1  # the re-sent event (and re-deliveries after the kill)
    assert sum(c["dead_lettered"] for c in counters) == 0
    for sim in sims:
        code = sim.municipality.code
        final = events[code][-1]["event_time"]
        truth = sim.register_at(final)
        got = restored(store, code, final, tmp_path)
        assert got == truth, f"{code}: {differences(got, truth)}"
        [status] = [s for s in backup_status(store) if s.municipality_code == code]
        assert status.complete and status.last_sequence == len(events[code])


def _assigned(log: Path) -> list[int] | None:
    """The partitions a member's last assignment gave it (its log), or None before any."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if '"event": "partitions_assigned"' in line]
    return lines[-1]["partitions"] if lines else None


def _partition(code: str, resident_code: str, partitions: int) -> int:
    """librdkafka's default partitioner for a keyed message (consistent_random: CRC32 of the key)."""
    return zlib.crc32(message_key(code, resident_code)) % partitions


def test_a_serial_held_through_one_process_blocks_a_change_another_process_reads(
    cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    names = MaterialiserTopics(diffs=topic_factory(2), residents=topic_factory(2), dlq=topic_factory(1))
    platform = make_platform(tmp_path, cluster)
    registry, signers = platform.registry, platform.register_signer
    holder = make_resident(TANABE, 1, jpki_certificates=[card()])
    # A claimant whose key is on the other partition: with two members, the other process reads it.
    n = next(i for i in range(1, 100) if _partition(ONAGAWA, f"{i:011d}", 2)
             != _partition(TANABE, holder["resident_code"], 2))
    logs = [tmp_path / f"m{i}.log" for i in range(2)]
    members = [_member(cluster, group_id, tmp_path, names, log) for log in logs]
    _wait_for(lambda: all(_assigned(log) is not None and len(_assigned(log) or []) == 1 for log in logs), 60,
              "one partition for each member")
    publish([make_change(1, holder, municipality_code=TANABE)], cluster.bootstrap_servers, registry, signers,
            topic=names.diffs)
    store = platform.snapshot_store
    _wait_for(lambda: _history(store)[0] == 1, 60, "the holder applied")
    publish([make_change(1, make_resident(ONAGAWA, n, jpki_certificates=[card()]), municipality_code=ONAGAWA)],
            cluster.bootstrap_servers, registry, signers, topic=names.diffs)
    _wait_for(lambda: len(dead_letters(cluster, platform, names)) == 1, 60, "the claim dead-lettered")
    counters = _stop(members)
    # One process applied the holder (a re-delivery after the second joined is a duplicate there), the other
    # refused the claim.
    assert sorted((c["applied"], c["dead_lettered"]) for c in counters) == [(0, 1), (1, 0)], counters
    [letter] = dead_letters(cluster, platform, names)
    assert letter["reason_code"] == "SERIAL_IN_USE" and TANABE in letter["reason"]
    assert _history(store)[0] == 1


def test_the_jump_bound_counts_what_the_other_processes_applied(
    cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """A process knows only its share of a municipality's sequence: before refusing a number as too far above the
    watermark it checks the history's watermark, which the other process moved."""
    names = MaterialiserTopics(diffs=topic_factory(2), residents=topic_factory(2), dlq=topic_factory(1))
    platform = make_platform(tmp_path, cluster)
    registry, signers, store = platform.registry, platform.register_signer, platform.snapshot_store
    code = TANABE
    here = _partition(code, f"{1:011d}", 2)
    there = next(i for i in range(2, 100) if _partition(code, f"{i:011d}", 2) != here)
    again = next(i for i in range(2, 100) if i != there and _partition(code, f"{i:011d}", 2) == here)
    logs = [tmp_path / f"m{i}.log" for i in range(2)]
    members = [_member(cluster, group_id, tmp_path, names, log) for log in logs]
    _wait_for(lambda: all(len(_assigned(log) or []) == 1 for log in logs), 60, "one partition for each member")
    publish([make_change(1, make_resident(code, 1)), make_change(2, make_resident(code, there))],
            cluster.bootstrap_servers, registry, signers, topic=names.diffs)
    _wait_for(lambda: _history(store)[0] == 2, 60, "sequences 1 and 2 applied, one by each process")
    # Within reach of the municipality's watermark (2), not of the watermark of the process that applied 1 only.
    publish([make_change(2 + MAX_SEQUENCE_JUMP, make_resident(code, again))], cluster.bootstrap_servers, registry,
            signers, topic=names.diffs)
    _wait_for(lambda: _history(store)[0] == 3 or bool(dead_letters(cluster, platform, names)), 60, "the far event")
    _stop(members)
    assert dead_letters(cluster, platform, names) == []
    assert _history(store) == (3, 3)
