"""`bcl backup materialise --processes N` through the real `bcl` (issue 12 item 1): N members of one consumer group
on a cluster of the test's own (the command uses the catalogue topics and group); every event applied once."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from infra.cluster_control import ClusterHandle
from sinks.snapshot_store import ParquetSnapshotStore
from tests.streams.commands.test_ingest_cli import bcl, environment

pytestmark = pytest.mark.integration


def test_two_processes_apply_every_event_once(tmp_path: Path) -> None:
    with ClusterHandle.start(brokers=3, data_dir=tmp_path / "cluster") as cluster:
        env = environment(cluster, tmp_path / "var")
        for code, population in (("304271", 300), ("045811", 200)):
            loaded = bcl(env, "adapter", "full-load", "--municipality", code, "--population", str(population))
            assert loaded.returncode == 0, loaded.stderr
        done = bcl(env, "backup", "materialise", "--processes", "2", "--until-caught-up", "--idle-seconds", "1",
                   timeout=300)
        assert done.returncode == 0, done.stderr
        counters = json.loads(done.stdout.strip().splitlines()[-1])
    store = ParquetSnapshotStore(tmp_path / "var" / "snapshots")
    con = duckdb.connect()
    rows, distinct, munis = con.execute(
        f"SELECT count(*), count(DISTINCT (municipality_code, sequence)), count(DISTINCT municipality_code) "
        f"FROM {store.history_relation(con)}").fetchone() or (0, 0, 0)
    assert rows == distinct == counters["applied"] and munis == 2
    assert counters["dead_lettered"] == 0 and rows >= 500
