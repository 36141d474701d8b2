"""The billing processor: bcl.certificates.issued → the billing ledger (the de-duplicated issued-certificate log
in the snapshot store, sinks.certificate_ledger), from which statements and statistics are computed.

Batch loop like the backup materialiser. Every event is decoded and checked; what cannot be billed goes to
bcl.dlq with its bytes and a reason. It reads committed records only (isolation.level=read_committed), as
the certificate worker may publish in transactions.

Counting exactly once: the ledger holds each certificate_id once, however often its event is delivered.
Durability order per batch (the checkpoint of infra.processor_runtime): (1) flush dead letters, (2) write
the batch to the ledger, (3) commit offsets. A crash before (3) re-delivers events the ledger, rebuilt from
the log at start, already holds. One instance per cluster (all partitions assigned, no group membership).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from confluent_kafka import Message, Producer

from domain.billing import certificate_rejection
from infra import kafka, topics
from infra.metrics import Totals
from infra.processor_runtime import (
    ALL_DELIVERED,
    BatchHandler,
    Done,
    LoopOptions,
    Output,
    Partitions,
    ProcessorRuntime,
    Source,
)
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry, UnknownSchemaId
from schemas.wire import AvroSerde
from sinks.certificate_ledger import CertificateLedger
from streams.dead_letters import DeadLetterSink

log = structlog.get_logger("billing")

PROCESSOR = "billing-processor"


@dataclass(frozen=True)
class BillingTopics:
    """Where the processor reads and writes; the catalogue's topics unless a test isolates itself."""

    issued: str = topics.CERTIFICATES_ISSUED
    dlq: str = topics.DLQ


@dataclass
class Counters:
    consumed: int = 0
    counted: int = 0  # certificates new to the ledger
    duplicates: int = 0  # events whose certificate the ledger already held
    dead_lettered: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Pending:
    events: list[dict[str, Any]] = field(default_factory=list)
    consumed: int = 0
    since: float = field(default_factory=time.monotonic)


class BillingProcessor(BatchHandler):
    def __init__(
        self,
        bootstrap_servers: str,
        registry: BaseSchemaRegistry,
        snapshot_dir: Path,
        *,
        group_id: str = PROCESSOR,
        batch_size: int = 10_000,
        flush_events: int = 50_000,
        flush_seconds: float = 2.0,
        topic_names: BillingTopics = BillingTopics(),
    ) -> None:
        self.topics = topic_names
        self._serde = AvroSerde(registry, CONTRACTS[topics.CERTIFICATES_ISSUED])
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._batch_size = batch_size
        self._flush_events = flush_events
        self._flush_seconds = flush_seconds
        self._snapshot_dir = snapshot_dir
        self.ledger: CertificateLedger | None = None
        self.counters = Counters()
        self._producer: Producer | None = None
        self._dead_letters: DeadLetterSink | None = None
        self._delivered = kafka.DeliveryTracker()
        self._pending = _Pending()
        self._on_batch: Callable[[Counters], None] | None = None
        self._checkpointed = False

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        until_caught_up: bool = False,
        idle_seconds: float = 1.0,
        on_batch: Callable[[Counters], None] | None = None,
    ) -> Counters:
        """Process until stopped (or, with until_caught_up, until every partition is at its end and nothing
        arrived for idle_seconds). on_batch(counters) is called after each committed batch (progress)."""
        self.ledger = CertificateLedger(self._snapshot_dir)
        self._producer = kafka.make_producer(self._bootstrap)
        self._dead_letters = DeadLetterSink(
            self._producer, self._serde.registry, PROCESSOR, self._delivered, topic=self.topics.dlq
        )
        self._pending = _Pending()
        self._on_batch = on_batch
        runtime = ProcessorRuntime(
            self._group_id, self._bootstrap, Source((self.topics.issued,)), self,
            LoopOptions(batch_size=self._batch_size, poll_timeout=0.5, until_caught_up=until_caught_up,
                        idle_seconds=idle_seconds),
            output=Output(self._producer, self._delivered, "dead letters"),
            consumer_config={"isolation.level": "read_committed"},
        )
        try:
            runtime.run(stop)
        finally:
            runtime.close()
            self._producer.flush()
            self.ledger.close()
        log.info("stopped", **self.counters.as_dict())
        return self.counters

    # -- the handler of infra.processor_runtime ---------------------------------------------------

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        for msg in messages:
            self._process(msg, self._pending)
        self._pending.consumed += len(messages)

    def checkpoint_due(self, now: float, polled: int) -> bool:
        pending = self._pending
        return len(pending.events) >= self._flush_events or bool(
            pending.consumed and now - pending.since >= self._flush_seconds
        )

    def write_sink(self) -> Done:
        """The batch to the ledger (the runtime has flushed the dead letters)."""
        pending, self._pending = self._pending, _Pending()
        self._checkpointed = pending.consumed > 0
        if pending.events:
            assert self.ledger is not None
            written = self.ledger.record(pending.events)
            self.counters.counted += written.new
            self.counters.duplicates += written.duplicates
        return ALL_DELIVERED

    def committed(self) -> None:
        if self._checkpointed and self._on_batch is not None:
            self._on_batch(self.counters)

    def totals(self) -> Totals:
        return Totals(self.counters.counted + self.counters.duplicates, self.counters.dead_lettered)

    def _process(self, msg: Message, pending: _Pending) -> None:
        self.counters.consumed += 1
        try:
            event = self._serde.decode(msg.value())
        except UnknownSchemaId as exc:
            return self._dead_letter(msg, "UNKNOWN_SCHEMA_ID", str(exc))
        except Exception as exc:  # any failure to decode foreign bytes becomes a dead letter
            return self._dead_letter(msg, "MALFORMED", f"not a readable CertificateIssued: {type(exc).__name__}: {exc}")
        reason = certificate_rejection(event)
        if reason is not None:
            return self._dead_letter(msg, "BAD_CERTIFICATE", reason)
        pending.events.append(event)
        return None

    def _dead_letter(self, msg: Message, code: str, reason: str) -> None:
        assert self._dead_letters is not None
        self.counters.dead_lettered += 1
        self._dead_letters.send(msg, code, reason)
