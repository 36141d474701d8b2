"""The disaster-ledger processor (a Faust app) against the embedded cluster over TCP, in its own process, writing
a real SQLite sink: register states reach the sink; killed after the sink wrote and before the commit it is given
the batch again and the idempotent sink ends identical; a record that does not decode is dead-lettered and later
records still arrive; a failing sink ends the process without committing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from domain.register_validation import message_key
from infra import kafka, topics
from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS, ENVIRONMENT_VARIABLE
from schemas.contracts import CONTRACTS
from schemas.wire import AvroSerde, frame
from streams.disaster_ledger_processor import AFTER_SINK
from streams.faust_processor import EXIT_BATCH_FAILED
from tests.factories import make_resident
from tests.platforms import make_platform
from tests.streams.register_state_sink import FAIL_ENVIRONMENT_VARIABLE, _plain, handed_count, read_states
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


class LedgerProcess:
    """tests.streams.disaster_ledger_process, started and stopped by the test."""

    def __init__(self, config: dict[str, str], root: Path) -> None:
        self.config = config
        self.root = root
        self.proc: subprocess.Popen[str] | None = None
        self.runs = 0

    def start(self, **environment: str) -> None:
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if k not in (ENVIRONMENT_VARIABLE, FAIL_ENVIRONMENT_VARIABLE)}
        env.update(environment)
        self.stderr_path = self.root / f"processor-{self.runs}.log"
        with self.stderr_path.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.streams.disaster_ledger_process",
                                          json.dumps(self.config)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                         env=env, stderr=err)

    def wait_ready(self, timeout: float = 90) -> None:
        """Until Faust's worker says it is ready (its partitions assigned, at their committed offsets)."""
        deadline = time.monotonic() + timeout
        while "[^Worker]: Ready" not in self.stderr():
            assert self.proc is not None and self.proc.poll() is None, self.stderr()
            assert time.monotonic() < deadline, self.stderr()
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self, timeout: float = 60) -> dict[str, int]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, self.stderr()
        line = [x for x in out.splitlines() if x.startswith("TOTALS ")]
        assert line, out + self.stderr()
        return json.loads(line[-1].removeprefix("TOTALS "))  # type: ignore[no-any-return]

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def ledger(cluster: ClusterHandle, topic_factory: Callable[..., str], group_id: str,
           tmp_path: Path) -> Iterator[LedgerProcess]:
    config = {"bootstrap": cluster.bootstrap_servers, "root": str(tmp_path / "data"), "group_id": group_id,
              "residents": topic_factory(partitions=3, prefix="residents"),
              "dead_letters": topic_factory(partitions=1, prefix="dlq"), "sink": str(tmp_path / "sink.sqlite3")}
    process = LedgerProcess(config, tmp_path)
    try:
        yield process
    finally:
        process.kill()


def _serde(tmp_path: Path) -> AvroSerde:
    return AvroSerde(make_platform(tmp_path / "producer").registry, CONTRACTS[topics.RESIDENTS])


def _produce(cluster: ClusterHandle, topic: str, records: list[tuple[bytes, bytes | None]],
             producer: Producer | None = None) -> None:
    producer = producer or kafka.make_producer(cluster.bootstrap_servers)
    for key, value in records:
        kafka.produce(producer, topic, value, key)
    assert producer.flush(30) == 0


def _residents(count: int, versions: int = 1) -> list[dict[str, Any]]:
    """`count` residents, each in `versions` successive states (the last is the latest)."""
    return [make_resident("302066", n, notified_on=make_resident()["notified_on"].replace(day=1 + v),
                          household_number=f"H{n:05d}-{v}")
            for v in range(versions) for n in range(1, count + 1)]


def _expected(states: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    latest = {(s["municipality_code"], s["resident_code"]): s for s in states}
    return {k: json.loads(json.dumps(s, sort_keys=True, ensure_ascii=False, default=_plain)) for k, s in latest.items()}


def _wait_for(sink: Path, expected: dict[tuple[str, str], dict[str, Any]], process: LedgerProcess,
              timeout: float = 90, poll: float = 0.2) -> dict[tuple[str, str], dict[str, Any]]:
    deadline = time.monotonic() + timeout
    held: dict[tuple[str, str], dict[str, Any]] = {}
    while time.monotonic() < deadline:
        held = read_states(sink)
        if held == expected:
            return held
        assert process.proc is not None and process.proc.poll() is None, process.stderr()
        time.sleep(poll)
    raise AssertionError(f"the sink holds {len(held)} of {len(expected)} states as expected:\n{process.stderr()}")


def _encoded(serde: AvroSerde, states: list[dict[str, Any]]) -> list[tuple[bytes, bytes | None]]:
    return [(message_key(s["municipality_code"], s["resident_code"]), serde.encode(s)) for s in states]


def test_register_states_reach_the_sink(cluster: ClusterHandle, ledger: LedgerProcess, tmp_path: Path) -> None:
    serde = _serde(tmp_path)
    states = _residents(40, versions=3)
    ledger.start()
    _produce(cluster, ledger.config["residents"], _encoded(serde, states))
    # A removed record (tombstone) carries no state: skipped, not dead-lettered.
    _produce(cluster, ledger.config["residents"], [(message_key("302066", f"{999:011d}"), None)])
    _wait_for(Path(ledger.config["sink"]), _expected(states), ledger)
    totals = ledger.terminate()
    assert totals["applied"] == len(states)
    assert totals["rows_changed"] >= 40
    assert totals["dead_lettered"] == 0
    assert totals["tombstones"] == 1
    # Stopped, it committed what the sink holds: started again it is given nothing old.
    ledger.start()
    ledger.wait_ready()
    time.sleep(2)
    assert ledger.terminate()["consumed"] == 0
    assert handed_count(Path(ledger.config["sink"])) == len(states)


def test_killed_after_the_sink_wrote_is_given_the_batch_again(cluster: ClusterHandle, ledger: LedgerProcess,
                                                               tmp_path: Path) -> None:
    serde = _serde(tmp_path)
    states = _residents(300, versions=2)
    _produce(cluster, ledger.config["residents"], _encoded(serde, states))
    sink = Path(ledger.config["sink"])
    ledger.start(**{ENVIRONMENT_VARIABLE: f"{AFTER_SINK}@3"})  # the 3rd batch: written, never acknowledged
    assert ledger.wait_exit(90) == CRASH_EXIT_STATUS, ledger.stderr()
    handed_before = handed_count(sink)
    assert 0 < handed_before < len(states)
    ledger.start()
    held = _wait_for(sink, _expected(states), ledger)
    totals = ledger.terminate()
    # The crashed batch (at least) came again: the sink was handed more than was produced, and ends identical.
    assert handed_count(sink) > len(states)
    assert totals["applied"] + handed_before > len(states)
    assert held == _expected(states)


def test_a_record_that_does_not_decode_is_dead_lettered_and_later_records_arrive(
        cluster: ClusterHandle, ledger: LedgerProcess, tmp_path: Path) -> None:
    serde = _serde(tmp_path)
    first, later = _residents(5), [make_resident("302066", n) for n in range(6, 11)]
    garbage_key, unknown_key = message_key("302066", f"{777:011d}"), message_key("302066", f"{778:011d}")
    records = [*_encoded(serde, first), (garbage_key, b"\x00\x00\x00\x00"),
               (unknown_key, frame(999_999, b"\x02")), *_encoded(serde, later)]
    ledger.start()
    _produce(cluster, ledger.config["residents"], records)
    _wait_for(Path(ledger.config["sink"]), _expected(first + later), ledger)
    assert ledger.proc is not None and ledger.proc.poll() is None  # still running
    dead = AvroSerde(make_platform(tmp_path / "reader").registry, CONTRACTS[topics.DLQ])
    letters = {m.key(): dead.decode(m.value()) for m in read_topic(cluster.bootstrap_servers,
                                                                    ledger.config["dead_letters"])}
    assert set(letters) == {garbage_key, unknown_key}
    assert letters[garbage_key]["reason_code"] == "MALFORMED"
    assert letters[unknown_key]["reason_code"] == "UNKNOWN_SCHEMA_ID"
    assert letters[garbage_key]["value"] == b"\x00\x00\x00\x00"
    assert letters[garbage_key]["topic"] == ledger.config["residents"]
    assert {d["processor"] for d in letters.values()} == {ledger.config["group_id"]}
    assert ledger.terminate()["dead_lettered"] == 2


def test_a_failing_sink_ends_the_process_without_committing(cluster: ClusterHandle, ledger: LedgerProcess,
                                                            tmp_path: Path) -> None:
    serde = _serde(tmp_path)
    states = _residents(20)
    _produce(cluster, ledger.config["residents"], _encoded(serde, states))
    ledger.start(**{FAIL_ENVIRONMENT_VARIABLE: "1"})
    assert ledger.wait_exit(90) == EXIT_BATCH_FAILED, ledger.stderr()
    assert "batch_not_durable" in ledger.stderr()
    # Nothing was committed for the batch the sink refused: the next run is given every record.
    ledger.start()
    _wait_for(Path(ledger.config["sink"]), _expected(states), ledger)
    assert ledger.terminate()["applied"] == len(states)


def test_a_lone_change_reaches_the_sink_without_waiting_for_the_fetch(cluster: ClusterHandle, ledger: LedgerProcess,
                                                                       tmp_path: Path) -> None:
    """Faust's own aiokafka consumer waits 1.5 s per fetch, which the embedded broker holds whole on an idle topic
    (a change took 1.44 s at p50); with the platform's fetch wait (infra.faust_transport) it takes tens of ms."""
    serde = _serde(tmp_path)
    sink = Path(ledger.config["sink"])
    producer = kafka.make_producer(cluster.bootstrap_servers)
    ledger.start()
    states = _residents(8)
    _produce(cluster, ledger.config["residents"], _encoded(serde, states[:1]), producer)  # joined, a batch written
    _wait_for(sink, _expected(states[:1]), ledger)
    took = []
    for n in range(2, len(states) + 1):
        time.sleep(0.3)  # idle: the consumer is waiting in a fetch when the change comes
        sent = time.monotonic()
        _produce(cluster, ledger.config["residents"], _encoded(serde, states[n - 1:n]), producer)
        _wait_for(sink, _expected(states[:n]), ledger, poll=0.005)
        took.append(time.monotonic() - sent)
    took.sort()
    assert took[len(took) // 2] < 0.4, took
    ledger.terminate()
