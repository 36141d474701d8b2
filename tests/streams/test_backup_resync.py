"""Item 9 of issue 8: a forged far-ahead sequence on an existing record wedges a municipality (INCOMPLETE
for ever, the forged change outranks the genuine ones); the operator's resync recovers it to the ground
truth, against the embedded cluster."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from domain.register_validation import MAX_SEQUENCE_JUMP, message_key
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.wire import AvroSerde
from sinks.restore import backup_status
from sinks.snapshot_store import SnapshotStoreBusyError
from streams.adapter import AdapterState, publish
from streams.backup_resync import resync
from streams.register.reference import load_reference_data
from tests.platforms import make_platform
from tests.streams.test_backup_end_to_end import START, private_topics, restored
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

CODE = "304271"  # 北山村


def test_resync_recovers_a_municipality_wedged_by_a_forged_sequence(
    cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path
) -> None:
    names = private_topics(topic_factory)
    platform = make_platform(tmp_path, cluster)
    store, registry = platform.snapshot_store, platform.registry
    state = AdapterState(CODE, 300, 7, START.isoformat())
    sim = state.simulator(load_reference_data(), platform.settings.mincho_font)
    full = list(sim.full_load())
    publish(full, cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
    state.last_sequence = full[-1]["sequence"]

    # A forged change of an existing record, within reach of the contiguous watermark.
    victim = full[10]["after"]
    forged = {**full[10], "event_id": "forged", "sequence": state.last_sequence + MAX_SEQUENCE_JUMP // 2,
              "change_type": "NAME_CHANGE", "after": {**victim, "family_name": "偽"}}
    publish([forged], cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
    days = list(sim.changes(7))
    publish(days, cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
    state.last_day, state.last_sequence = 7, days[-1]["sequence"]
    materialise = lambda: platform.materialiser(group_id=group_id, topic_names=names).run(  # noqa: E731
        until_caught_up=True, idle_seconds=0.5)
    materialise()

    final = days[-1]["event_time"]
    truth = sim.register_at(final)
    [status] = backup_status(store)
    assert not status.complete and status.missing > MAX_SEQUENCE_JUMP // 4  # wedged
    assert restored(store, CODE, final, tmp_path)[victim["resident_code"]]["family_name"] == "偽"

    result = resync(store, registry, cluster.bootstrap_servers, CODE, residents_topic=names.residents)
    assert result.from_sequence == state.last_sequence + 1  # everything genuine was contiguous
    assert result.set_aside == 1 and result.republished == 1
    assert result.set_aside_file is not None and result.set_aside_file.stat().st_mode & 0o777 == 0o600
    [status] = backup_status(store)
    assert status.complete and status.last_sequence == state.last_sequence
    assert restored(store, CODE, final, tmp_path) == truth

    # The latest state on bcl.residents is the true one again.
    serde = AvroSerde(registry, CONTRACTS["bcl.residents"])
    key = message_key(CODE, victim["resident_code"])
    last = [m for m in read_topic(cluster.bootstrap_servers, names.residents) if m.key() == key][-1]
    assert serde.decode(last.value())["family_name"] == truth[victim["resident_code"]]["family_name"]

    # The adapter sends again from there (nothing, here: every genuine event is kept); the materialiser
    # restarts, ignores what it has, and stays complete: the forged event is behind its committed offsets.
    resent = list(state.events_from(sim, result.from_sequence - 2))
    assert [e["sequence"] for e in resent] == [state.last_sequence - 1, state.last_sequence]
    publish(resent, cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
    counters = materialise()
    assert (counters.applied, counters.duplicates, counters.dead_lettered) == (0, 2, 0)
    [status] = backup_status(store)
    assert status.complete and restored(store, CODE, final, tmp_path) == truth


def test_resync_sets_aside_from_a_given_sequence_and_the_adapter_sends_those_again(
    cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path
) -> None:
    names = private_topics(topic_factory)
    platform = make_platform(tmp_path, cluster)
    store, registry = platform.snapshot_store, platform.registry
    state = AdapterState(CODE, 200, 7, START.isoformat())
    sim = state.simulator(load_reference_data(), platform.settings.mincho_font)
    events = list(sim.full_load()) + list(sim.changes(7))
    publish(events, cluster.bootstrap_servers, registry, platform.register_signer, topic=names.diffs)
    state.last_day, state.last_sequence = 7, events[-1]["sequence"]
    materialiser = platform.materialiser(group_id=group_id, topic_names=names)
    materialiser.run(until_caught_up=True, idle_seconds=0.5)

    # While the materialiser runs, the resync refuses (the history would change under its state).
    stop = threading.Event()
    running = threading.Thread(target=platform.materialiser(group_id=group_id, topic_names=names).run, args=(stop,))
    running.start()
    try:
        time.sleep(1.0)
        with pytest.raises(SnapshotStoreBusyError, match="backup-materialiser"):
            resync(store, registry, cluster.bootstrap_servers, CODE, 150, residents_topic=names.residents)
    finally:
        stop.set()
        running.join(30)

    result = resync(store, registry, cluster.bootstrap_servers, CODE, 150, residents_topic=names.residents)
    assert result.set_aside == len(events) - 149
    [status] = backup_status(store)
    assert status.complete and status.last_sequence == 149
    assert restored(store, CODE, START, tmp_path) == {rc: r for rc, r in sim.register_at(START).items()
                                                      if rc in {e["resident_code"] for e in events[:149]}}
    publish(state.events_from(sim, 150), cluster.bootstrap_servers, registry, platform.register_signer,
            topic=names.diffs)
    counters = platform.materialiser(group_id=group_id, topic_names=names).run(until_caught_up=True, idle_seconds=0.5)
    assert counters.applied == len(events) - 149
    final = events[-1]["event_time"]
    assert restored(store, CODE, final, tmp_path) == sim.register_at(final)
