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

The Faust settings that the embedded cluster (librdkafka's mock) needs, the agent, `_fail` and `run` are
streams.faust_processor's, shared with the evacuation-roster processor."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from faust.types import EventT

from infra import topics
from infra.crash_points import crash_point
from infra.metrics import Totals
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry, UnknownSchemaId
from schemas.wire import AvroSerde
from streams.faust_processor import BATCH_SECONDS, BATCH_SIZE, FaustBatchProcessor, FaustOrigin

PROCESSOR = "bcl.disaster-ledger"
# Between the sink write and the acknowledgement of the batch (a kill here re-delivers the batch).
AFTER_SINK = "disaster_ledger.after_sink"


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


class DisasterLedgerProcessor(FaustBatchProcessor[LedgerProcessorTotals]):
    def __init__(self, bootstrap_servers: str, registry: BaseSchemaRegistry, sink: RegisterStateSink, *,
                 data_dir: Path, topic_names: LedgerProcessorTopics = LedgerProcessorTopics(),
                 group_id: str = PROCESSOR, batch_size: int = BATCH_SIZE, batch_seconds: float = BATCH_SECONDS,
                 log_level: str = "info") -> None:
        self.topics = topic_names
        self.totals = LedgerProcessorTotals()
        self._sink = sink
        self._serde = AvroSerde(registry, CONTRACTS[topics.RESIDENTS])
        super().__init__(bootstrap_servers, registry, group_id=group_id, agent_name="disaster-ledger",
                         source_topics=(topic_names.residents,), dead_letters_topic=topic_names.dead_letters,
                         data_dir=data_dir, batch_size=batch_size, batch_seconds=batch_seconds, log_level=log_level)

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
                self._dead_letters.send(FaustOrigin(message), "UNKNOWN_SCHEMA_ID", str(exc))
            except Exception as exc:  # any failure to decode foreign bytes becomes a dead letter
                dead += 1
                self._dead_letters.send(FaustOrigin(message), "MALFORMED",
                                        f"not a readable Resident: {type(exc).__name__}: {exc}")
        try:
            if dead:
                self._flush_dead_letters()
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
