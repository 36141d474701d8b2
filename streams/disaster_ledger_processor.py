"""The disaster-ledger processor: bcl.residents (the accepted register) → the ledgers of the open disasters, as a
Faust app (faust-streaming on aiokafka) against the cluster's pre-created topics.

One agent takes the register states in batches (`stream.take_events(n, within=s)`: the events, not only the
values, because a dead letter names where it came from), decodes each with the `Resident` contract (AvroSerde,
the one schema), hands the decoded states to the sink (`RegisterStateSink.apply_register_states`, the ledger
store: idempotent, so a redelivered batch changes nothing) and only then lets Faust acknowledge the events. Faust
commits only acknowledged offsets (every `COMMIT_INTERVAL_S`, and when it stops), so an offset is committed
only after the sink made its batch durable: at-least-once. A record that does not decode goes to bcl.dlq
(streams.dead_letters, reason MALFORMED or UNKNOWN_SCHEMA_ID) and its delivery is confirmed before the batch's
sink write; the agent goes on with the next record. A tombstone (a record removed from the register) carries no
state and is skipped.

The batch is handled synchronously, on the event loop: a stop (SIGTERM) cancels the agent only between batches,
never between the sink write and the acknowledgement. What Faust cannot do safely here (measured, see
docs/architecture.md): `take_events` acknowledges the buffered events in a `finally` clause, and Faust commits
acknowledged offsets on a task error and on stop, so an exception leaving the agent would commit a batch the
sink never wrote. A failing sink, or a dead letter the cluster does not take, therefore ends the process at once
(`os._exit`, nothing more committed), as a crash would: restarted, it is given the batch again.

The Faust settings that the embedded cluster (librdkafka's mock) needs are in `faust_settings`."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import faust
import structlog
from faust.types import EventT

from infra import topics
from infra.crash_points import crash_point
from infra.kafka import DeliveryTracker, make_producer
from infra.log import forward_standard_logging
from infra.metrics import ProcessorMetrics, Totals
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry, UnknownSchemaId
from schemas.wire import AvroSerde
from streams.dead_letters import DeadLetterSink

log = structlog.get_logger("disaster_ledger_processor")

PROCESSOR = "bcl.disaster-ledger"
# Between the sink write and the acknowledgement of the batch (a kill here re-delivers the batch).
AFTER_SINK = "disaster_ledger.after_sink"
# The exit status of a batch that could not be made durable (sink failed, dead letter not delivered).
EXIT_BATCH_FAILED = 70
BATCH_SIZE = 500
BATCH_SECONDS = 0.05
COMMIT_INTERVAL_S = 0.5
SESSION_TIMEOUT_S = 6.0


class RegisterStateSink(Protocol):
    """The ledger store as this processor sees it (sinks.disaster_ledger): applies `Resident` records, exactly as
    AvroSerde decodes them, to every open disaster's ledger, idempotently; returns how many ledger rows changed."""

    def apply_register_states(self, states: Sequence[Mapping[str, Any]]) -> int: ...


@dataclass(frozen=True)
class LedgerProcessorTopics:
    residents: str = topics.RESIDENTS
    dead_letters: str = topics.DLQ


@dataclass
class LedgerProcessorTotals:
    consumed: int = 0
    applied: int = 0  # register states handed to the sink and made durable
    rows_changed: int = 0  # ledger rows the sink changed
    dead_lettered: int = 0
    tombstones: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def faust_settings(bootstrap_servers: str, data_dir: Path) -> dict[str, Any]:
    """faust.App settings for a cluster whose topics exist already (the embedded mock has no CreateTopics API)."""
    return {
        # Faust's aiokafka transport with the platform's fetch wait (infra.faust_transport: Faust's own waits 1.5 s
        # on the embedded broker); in a Faust URL list the first scheme applies to every address.
        "broker": "bcl://" + bootstrap_servers,
        # No topic is declared (CreateTopics): the catalogue (infra/topics.py) made them all. Also no leader
        # topic (`<id>-__assignor-__leader`, which would need CreateTopics too), no tables so no changelogs:
        # the state is the durable ledger store, not a Faust table.
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "store": "memory://",
        "web_enabled": False,  # no web server, so no port to clash with the other processes on the host
        "datadir": str(data_dir),  # Faust makes its folders here, not in the working directory
        "consumer_auto_offset_reset": "earliest",  # a new group reads the whole compacted register
        # Commit what was acknowledged (= written to the sink) often, so that a restart re-does little.
        "broker_commit_interval": COMMIT_INTERVAL_S,
        # On stop, commit what was acknowledged instead of waiting for the events buffered in `take_events`
        # (they are never acknowledged once the agent stops; re-delivered next time).
        "stream_wait_empty": False,
        # A killed instance's partitions go to its successor after this, not after Faust's 60 s default.
        "broker_session_timeout": SESSION_TIMEOUT_S,
        "broker_heartbeat_interval": 1.0,
        "producer_acks": -1,
    }


class _Origin:
    """A Faust message in the shape the dead-letter sink reads (that of a confluent_kafka Message)."""

    def __init__(self, message: Any) -> None:
        self._message = message

    def topic(self) -> str:
        return str(self._message.topic)

    def partition(self) -> int:
        return int(self._message.partition)

    def offset(self) -> int:
        return int(self._message.offset)

    def key(self) -> bytes | None:
        return self._message.key  # type: ignore[no-any-return]

    def value(self) -> bytes | None:
        return self._message.value  # type: ignore[no-any-return]


class DisasterLedgerProcessor:
    def __init__(self, bootstrap_servers: str, registry: BaseSchemaRegistry, sink: RegisterStateSink, *,
                 data_dir: Path, topic_names: LedgerProcessorTopics = LedgerProcessorTopics(),
                 group_id: str = PROCESSOR, batch_size: int = BATCH_SIZE, batch_seconds: float = BATCH_SECONDS,
                 log_level: str = "info") -> None:
        self.topics = topic_names
        self.group_id = group_id
        self.totals = LedgerProcessorTotals()
        self.metrics = ProcessorMetrics(group_id)
        self._sink = sink
        self._serde = AvroSerde(registry, CONTRACTS[topics.RESIDENTS])
        self._batch_size = batch_size
        self._batch_seconds = batch_seconds
        self._log_level = log_level
        self._deliveries = DeliveryTracker()
        self._producer = make_producer(bootstrap_servers)
        self._dead_letters = DeadLetterSink(self._producer, registry, group_id, self._deliveries,
                                            topic=topic_names.dead_letters)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(group_id, **faust_settings(bootstrap_servers, data_dir))
        # Raw bytes in: decoding is the contract's (AvroSerde), so a bad record is this agent's to dead-letter.
        source = self.app.topic(topic_names.residents, key_type=bytes, value_type=bytes, key_serializer="raw",
                                value_serializer="raw")
        self.app.agent(source, name="disaster-ledger")(self._agent)

    async def _agent(self, stream: faust.StreamT) -> None:
        async for events in stream.take_events(self._batch_size, within=self._batch_seconds):
            # Synchronous on purpose: nothing can cancel the batch between its sink write and its acknowledgement.
            self.handle(events)

    def handle(self, events: Sequence[EventT]) -> None:
        """One batch: decode (dead-letter what does not decode), write the sink; the caller then acknowledges."""
        began = time.perf_counter()
        states: list[Mapping[str, Any]] = []
        dead = 0
        for event in events:
            message = event.message
            if message.value is None:
                self.totals.tombstones += 1
                continue
            try:
                states.append(self._serde.decode(message.value))
            except UnknownSchemaId as exc:
                dead += 1
                self._dead_letters.send(_Origin(message), "UNKNOWN_SCHEMA_ID", str(exc))
            except Exception as exc:  # any failure to decode foreign bytes becomes a dead letter
                dead += 1
                self._dead_letters.send(_Origin(message), "MALFORMED",
                                        f"not a readable Resident: {type(exc).__name__}: {exc}")
        try:
            if dead:
                self._deliveries.flush(self._producer, "dead letters", "the batch is given again after a restart")
            changed = self._sink.apply_register_states(states) if states else 0
        except Exception as exc:  # KafkaClientError (dead letters not delivered) or the sink's own
            self._fail(exc)
        crash_point(AFTER_SINK)
        totals = self.totals
        totals.consumed += len(events)
        totals.applied += len(states)
        totals.rows_changed += changed
        totals.dead_lettered += dead
        totals.batches += 1
        self.metrics.consumed.inc(len(events))
        self.metrics.record_totals(Totals(applied=totals.applied, dead_lettered=totals.dead_lettered))
        self.metrics.batch_seconds.observe(time.perf_counter() - began)

    def _fail(self, exc: BaseException) -> None:
        """End the process now, committing nothing more (see the module doc: Faust would commit this batch)."""
        log.error("batch_not_durable", processor=self.group_id, error=f"{type(exc).__name__}: {exc}",
                  consequence="exiting without committing; the batch is processed again after a restart")
        sys.stderr.flush()
        os._exit(EXIT_BATCH_FAILED)

    def run(self) -> LedgerProcessorTotals:
        """Run until SIGTERM or SIGINT (Faust's worker handles both: it stops the agent between batches, commits
        what was acknowledged and leaves the group); then the totals."""
        forward_standard_logging(self._log_level)
        worker = faust.Worker(self.app, loglevel=self._log_level, quiet=True, override_logging=False,
                              redirect_stdouts=False)
        worker.spinner = None  # a terminal progress spinner on stdout, where the command prints its totals
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
        finally:
            self._producer.flush(10)
        return self.totals
