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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from faust.types import EventT

from domain.evacuation_roster import welfare_rejection
from domain.japan_time import japan_date
from infra import topics
from infra.crash_points import crash_point
from infra.metrics import Totals
from infra.register_signing import SignatureVerifier
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry, UnknownSchemaId
from schemas.wire import AvroSerde
from streams.faust_processor import BATCH_SECONDS, BATCH_SIZE, FaustBatchProcessor, FaustOrigin

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


class EvacuationRosterProcessor(FaustBatchProcessor[RosterProcessorTotals]):
    def __init__(self, bootstrap_servers: str, registry: BaseSchemaRegistry, sink: RosterSink, *,
                 verifier: SignatureVerifier, data_dir: Path,
                 topic_names: RosterProcessorTopics = RosterProcessorTopics(), group_id: str = PROCESSOR,
                 batch_size: int = BATCH_SIZE, batch_seconds: float = BATCH_SECONDS, log_level: str = "info",
                 clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.topics = topic_names
        self.totals = RosterProcessorTotals()
        self._sink = sink
        self._verifier = verifier
        self._clock = clock
        self._serdes = {topic_names.residents: AvroSerde(registry, CONTRACTS[topics.RESIDENTS]),
                        topic_names.welfare: AvroSerde(registry, CONTRACTS[topics.WELFARE_STATUS])}
        super().__init__(bootstrap_servers, registry, group_id=group_id, agent_name="evacuation-roster",
                         source_topics=(topic_names.residents, topic_names.welfare),
                         dead_letters_topic=topic_names.dead_letters, data_dir=data_dir, batch_size=batch_size,
                         batch_seconds=batch_seconds, log_level=log_level)

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
                    self._dead_letters.send(FaustOrigin(message), unsigned.code, unsigned.reason)
                    continue
            try:
                record = self._serdes[message.topic].decode(message.value)
            except UnknownSchemaId as exc:
                dead += 1
                self._dead_letters.send(FaustOrigin(message), "UNKNOWN_SCHEMA_ID", str(exc))
                continue
            except Exception as exc:  # any failure to decode foreign bytes becomes a dead letter
                dead += 1
                what = "WelfareStatus" if is_welfare else "Resident"
                self._dead_letters.send(FaustOrigin(message), "MALFORMED",
                                        f"not a readable {what}: {type(exc).__name__}: {exc}")
                continue
            if not is_welfare:
                states.append(record)
                continue
            rejection = welfare_rejection(record, message.key, now)
            if rejection is not None:
                dead += 1
                self._dead_letters.send(FaustOrigin(message), rejection.code, rejection.reason)
            else:
                welfare.append(record)
        try:
            if dead:
                self._flush_dead_letters()
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
