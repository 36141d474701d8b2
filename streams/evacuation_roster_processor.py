"""The evacuation-roster processor: bcl.residents (the accepted register) and bcl.welfare.status (the welfare feed)
→ the 避難行動要支援者名簿 (sinks.evacuation_roster), as a Faust app on the same settings and transport as the
disaster-ledger processor (streams.disaster_ledger_processor, whose module doc explains the batch discipline).

One agent reads both topics in batches: each record is decoded with its topic's contract (AvroSerde). A welfare
message must carry its municipality's signature (infra.register_signing, as the adapter signs the register: the
welfare feed comes from outside BCL like the register, whereas bcl.residents is BCL's own, already verified by the
materialiser), and its event is also checked (domain.evacuation_roster.welfare_rejection); what is unsigned, does
not decode or is invalid goes to bcl.dlq with its reason and the agent goes on. The decoded batch is handed to
the roster in one call (one transaction, evaluated on the Japan date of the processor's clock), and only then are
the events acknowledged: a sink that fails ends the process without committing (os._exit), and the batch comes
again after a restart. The roster is idempotent, so a redelivery changes nothing. A register tombstone carries no
state and is skipped."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import faust
import structlog
from faust.types import EventT

from domain.evacuation_roster import welfare_rejection
from domain.japan_time import japan_date
from infra import topics
from infra.crash_points import crash_point
from infra.kafka import DeliveryTracker, make_producer
from infra.log import forward_standard_logging
from infra.metrics import ProcessorMetrics, Totals
from infra.register_signing import SignatureVerifier
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry, UnknownSchemaId
from schemas.wire import AvroSerde
from streams.dead_letters import DeadLetterSink
from streams.disaster_ledger_processor import BATCH_SECONDS, BATCH_SIZE, EXIT_BATCH_FAILED, _Origin, faust_settings

log = structlog.get_logger("evacuation_roster_processor")

PROCESSOR = "bcl.evacuation-roster"
# Between the roster's write and the acknowledgement of the batch (a kill here re-delivers the batch).
AFTER_SINK = "evacuation_roster.after_sink"


class RosterSink(Protocol):
    """The roster as this processor sees it (sinks.evacuation_roster.EvacuationRoster.apply)."""

    def apply(self, register_states: Sequence[Mapping[str, Any]], welfare: Sequence[Mapping[str, Any]],
              on: dt.date) -> int: ...


@dataclass(frozen=True)
class RosterProcessorTopics:
    residents: str = topics.RESIDENTS
    welfare: str = topics.WELFARE_STATUS
    dead_letters: str = topics.DLQ


@dataclass
class RosterProcessorTotals:
    consumed: int = 0
    register_states: int = 0
    welfare_statuses: int = 0
    listings_changed: int = 0
    dead_lettered: int = 0
    tombstones: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _headers(headers: Any) -> list[tuple[str, bytes | None]]:
    """Faust gives a message's headers as a list of pairs or a mapping; the verifier reads pairs."""
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EvacuationRosterProcessor:
    def __init__(self, bootstrap_servers: str, registry: BaseSchemaRegistry, sink: RosterSink, *,
                 verifier: SignatureVerifier, data_dir: Path,
                 topic_names: RosterProcessorTopics = RosterProcessorTopics(), group_id: str = PROCESSOR,
                 batch_size: int = BATCH_SIZE, batch_seconds: float = BATCH_SECONDS, log_level: str = "info",
                 clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.topics = topic_names
        self.group_id = group_id
        self.totals = RosterProcessorTotals()
        self.metrics = ProcessorMetrics(group_id)
        self._sink = sink
        self._verifier = verifier
        self._clock = clock
        self._serdes = {topic_names.residents: AvroSerde(registry, CONTRACTS[topics.RESIDENTS]),
                        topic_names.welfare: AvroSerde(registry, CONTRACTS[topics.WELFARE_STATUS])}
        self._batch_size = batch_size
        self._batch_seconds = batch_seconds
        self._log_level = log_level
        self._deliveries = DeliveryTracker()
        self._producer = make_producer(bootstrap_servers)
        self._dead_letters = DeadLetterSink(self._producer, registry, group_id, self._deliveries,
                                            topic=topic_names.dead_letters)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(group_id, **faust_settings(bootstrap_servers, data_dir))
        # Raw bytes in: decoding is the contracts' (AvroSerde), so a bad record is this agent's to dead-letter.
        source = self.app.topic(topic_names.residents, topic_names.welfare, key_type=bytes, value_type=bytes,
                                key_serializer="raw", value_serializer="raw")
        self.app.agent(source, name="evacuation-roster")(self._agent)

    async def _agent(self, stream: faust.StreamT) -> None:
        async for events in stream.take_events(self._batch_size, within=self._batch_seconds):
            # Synchronous on purpose: nothing can cancel the batch between its sink write and its acknowledgement.
            self.handle(events)

    def handle(self, events: Sequence[EventT]) -> None:
        """One batch: decode and check (dead-letter what is wrong), write the roster; the caller acknowledges."""
        began = time.perf_counter()
        now = self._clock()
        states: list[Mapping[str, Any]] = []
        welfare: list[Mapping[str, Any]] = []
        dead = 0
        for event in events:
            message = event.message
            is_welfare = message.topic == self.topics.welfare
            if message.value is None:
                self.totals.tombstones += 1
                continue
            if is_welfare:
                unsigned = self._verifier.check(message.key, message.value, _headers(message.headers))
                if unsigned is not None:
                    dead += 1
                    self._dead_letters.send(_Origin(message), unsigned.code, unsigned.reason)
                    continue
            try:
                record = self._serdes[message.topic].decode(message.value)
            except UnknownSchemaId as exc:
                dead += 1
                self._dead_letters.send(_Origin(message), "UNKNOWN_SCHEMA_ID", str(exc))
                continue
            except Exception as exc:  # any failure to decode foreign bytes becomes a dead letter
                dead += 1
                what = "WelfareStatus" if is_welfare else "Resident"
                self._dead_letters.send(_Origin(message), "MALFORMED",
                                        f"not a readable {what}: {type(exc).__name__}: {exc}")
                continue
            if not is_welfare:
                states.append(record)
                continue
            rejection = welfare_rejection(record, message.key, now)
            if rejection is not None:
                dead += 1
                self._dead_letters.send(_Origin(message), rejection.code, rejection.reason)
            else:
                welfare.append(record)
        try:
            if dead:
                self._deliveries.flush(self._producer, "dead letters", "the batch is given again after a restart")
            changed = self._sink.apply(states, welfare, japan_date(now)) if states or welfare else 0
        except Exception as exc:  # KafkaClientError (dead letters not delivered) or the sink's own
            self._fail(exc)
        crash_point(AFTER_SINK)
        totals = self.totals
        totals.consumed += len(events)
        totals.register_states += len(states)
        totals.welfare_statuses += len(welfare)
        totals.listings_changed += changed
        totals.dead_lettered += dead
        totals.batches += 1
        self.metrics.consumed.inc(len(events))
        self.metrics.record_totals(Totals(applied=totals.register_states + totals.welfare_statuses,
                                          dead_lettered=totals.dead_lettered))
        self.metrics.batch_seconds.observe(time.perf_counter() - began)

    def _fail(self, exc: BaseException) -> None:
        """End the process now, committing nothing more (streams.disaster_ledger_processor says why)."""
        log.error("batch_not_durable", processor=self.group_id, error=f"{type(exc).__name__}: {exc}",
                  consequence="exiting without committing; the batch is processed again after a restart")
        sys.stderr.flush()
        os._exit(EXIT_BATCH_FAILED)

    def run(self) -> RosterProcessorTotals:
        """Run until SIGTERM or SIGINT (Faust's worker stops the agent between batches and commits what was
        acknowledged); then the totals."""
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
