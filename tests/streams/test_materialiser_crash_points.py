"""The materialiser killed at each in-doubt point of its durability order (issue 8, item 12), as a
process against the embedded cluster, then restarted: nothing lost, nothing applied twice.

Kills from outside mostly land between batches; these land exactly between the steps:
- after producing, before the history write: the batch's residents are out, its history is not, its
  offsets are not committed — the restart applies the batch again (and publishes the same records again);
- after the history write, before the commit: the history holds the batch, the offsets do not say so —
  the restart must recognise every re-delivered event as a duplicate."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS, ENVIRONMENT_VARIABLE
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from streams.adapter import publish
from streams.materialiser import AFTER_HISTORY, AFTER_PRODUCE, MaterialiserTopics
from tests.platforms import make_platform
from tests.streams.test_backup_end_to_end import (
    MATERIALISER,
    history_sequences,
    private_topics,
    restored,
    simulator,
)
from tests.streams.test_backup_end_to_end import reference as reference  # the module's fixture
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

CODE = "302058"


def _materialiser(cluster: ClusterHandle, group: str, data_dir: Path, names: MaterialiserTopics,
                  crash_at: str | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    if crash_at:
        env[ENVIRONMENT_VARIABLE] = crash_at
    return subprocess.Popen(
        [sys.executable, "-c", MATERIALISER, cluster.bootstrap_servers, group, str(data_dir), names.diffs,
         names.residents, names.dlq, "0" if crash_at else "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.parametrize("point", [AFTER_PRODUCE, AFTER_HISTORY])
def test_crash_at_an_in_doubt_point_then_restart_loses_nothing_and_applies_nothing_twice(
    point: str, cluster: ClusterHandle, topic_factory, group_id: str, reference, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    names = private_topics(topic_factory)
    sim = simulator(reference, CODE, 3000)
    events = list(sim.full_load()) + list(sim.changes(7))
    platform = make_platform(tmp_path)
    publish(events, cluster.bootstrap_servers, FileSchemaRegistry(), platform.register_signer, topic=names.diffs)
    store = platform.snapshot_store

    # The third checkpoint that holds history rows: two batches are durable and committed before it.
    first = _materialiser(cluster, group_id, tmp_path, names, crash_at=f"{point}@3")
    _, err = first.communicate(timeout=120)
    assert first.returncode == CRASH_EXIT_STATUS, err
    assert f"crash point {point}" in err
    at_crash = history_sequences(store, CODE)[0]
    assert 0 < at_crash < len(events), "the crash must land mid-stream"

    second = _materialiser(cluster, group_id, tmp_path, names, crash_at=None)
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err
    counters = ast.literal_eval(out.strip().splitlines()[-1])  # the dict the script prints
    if point == AFTER_HISTORY:
        # The crashed batch was in the history but not committed: re-delivered, recognised, not applied.
        assert counters["duplicates"] > 0
    assert counters["dead_lettered"] == 0

    rows, distinct = history_sequences(store, CODE)
    assert rows == distinct == len(events)  # no loss, no double application
    final = events[-1]["event_time"]
    truth = sim.register_at(final)
    assert restored(store, CODE, final, tmp_path) == truth

    # bcl.residents: the latest message of every record is its true latest state (a batch published
    # again after the crash repeats the same records; it never leaves an older one last).
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS["bcl.residents"])
    latest = {m.key(): m.value() for m in read_topic(cluster.bootstrap_servers, names.residents)}
    published = {key.decode().split(":")[1]: serde.decode(value) for key, value in latest.items() if value}
    assert published.keys() == truth.keys()
    assert all(published[rc] == {k: truth[rc][k] for k in published[rc]} for rc in truth)
