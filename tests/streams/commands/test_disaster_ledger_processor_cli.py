"""`bcl disaster ledger-processor` through the real `bcl`, on a cluster of the test's own (the command uses the
catalogue topic and group): the register changes after a disaster, produced to bcl.residents, reach the ledger of
the declared disaster exactly as the ledger store applies them; SIGTERM stops it cleanly with its totals."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from domain.disasters import declaration
from domain.japan_time import JST
from domain.register_validation import message_key
from infra import kafka, topics
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.wire import AvroSerde
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from tests.platforms import make_platform
from tests.sinks.history_factory import append_events
from tests.streams.commands.test_ingest_cli import BCL, environment

pytestmark = pytest.mark.integration
ONAGAWA = "045811"


def declared_ledger(platform: Platform) -> tuple[str, list[dict[str, Any]]]:
    """女川町's backup (300 residents, 40 days of changes) and an earthquake a third into the changes; the records
    of the changes after it (as the materialiser publishes them to bcl.residents)."""
    sim = RegisterSimulator(load_reference_data(), ONAGAWA, population=300, seed=5,
                            start=dt.datetime(2026, 11, 1, tzinfo=JST), font_path=platform.settings.mincho_font)
    load, changes = list(sim.full_load()), list(sim.changes(40))
    append_events(platform.snapshot_store, ONAGAWA, load, 1000)
    append_events(platform.snapshot_store, ONAGAWA, changes, 50)
    at = changes[len(changes) // 3]["event_time"] + dt.timedelta(milliseconds=1)
    now = dt.datetime.now(dt.UTC)
    disaster, _ = platform.disaster_ledger.declare(
        declaration(name="令和8年女川沖地震", kind="earthquake", municipality_codes=[ONAGAWA], occurred_at=at,
                    now=now), now)
    return disaster.disaster_id, [e["after"] for e in changes if e["event_time"] > at and e["after"] is not None]


def test_register_changes_reach_the_ledger_and_sigterm_stops_it(tmp_path: Path) -> None:
    with ClusterHandle.start(brokers=1, data_dir=tmp_path / "cluster") as cluster:
        platform = make_platform(tmp_path / "var", cluster)
        disaster_id, later = declared_ledger(platform)
        serde = AvroSerde(platform.registry, CONTRACTS[topics.RESIDENTS])
        states = [serde.decode(serde.encode(r)) for r in later]
        platform.disaster_store.close()
        # The expectation: the same store, applied to directly (the ledger store's own rule, idempotent).
        expected_dir = tmp_path / "expected"
        shutil.copytree(tmp_path / "var" / "disaster", expected_dir / "disaster")
        reference = make_platform(expected_dir).disaster_ledger
        assert reference.apply_register_states(states) > 0
        expected = reference.residents(disaster_id, ONAGAWA)

        env = environment(cluster, tmp_path / "var") | {"BCL_LOG_FORMAT": "json"}
        proc = subprocess.Popen([str(BCL), "disaster", "ledger-processor"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            producer = kafka.make_producer(cluster.bootstrap_servers)
            for record in later:
                kafka.produce(producer, topics.RESIDENTS, serde.encode(record),
                              message_key(record["municipality_code"], record["resident_code"]))
            assert producer.flush(30) == 0
            ledger = make_platform(tmp_path / "var").disaster_ledger
            deadline = time.monotonic() + 90
            while ledger.residents(disaster_id, ONAGAWA) != expected:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.25)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        totals = json.loads(out.strip().splitlines()[-1])
        assert totals["applied"] == len(later) and totals["dead_lettered"] == 0
        assert totals["rows_changed"] > 0
        assert "Traceback" not in err
        # Its logs are the platform's (structlog JSON), Faust's and aiokafka's included.
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert any(line.get("logger", "").startswith("faust") for line in lines)
