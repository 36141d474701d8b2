"""What the Faust processors of disaster support share (streams.disaster_ledger_processor,
streams.evacuation_roster_processor): the Faust settings for the cluster's pre-created topics, one agent taking
raw-byte batches, the dead-letter sink, ending a batch that could not be made durable, and running the worker.

The batch discipline (streams.disaster_ledger_processor's module doc says why): each batch is handled synchronously,
so a stop cancels the agent only between batches; a subclass's `handle` writes its sink before Faust acknowledges
the events, and a failure calls `_fail`, which ends the process at once without committing (Faust would commit an
acknowledged batch on a task error), so that a restart is given the batch again."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar

import faust
import structlog
from faust.types import EventT

from infra.kafka import DeliveryTracker, make_producer
from infra.log import forward_standard_logging
from infra.metrics import ProcessorMetrics
from schemas.registry import BaseSchemaRegistry
from streams.dead_letters import DeadLetterSink

log = structlog.get_logger("faust_processor")

# The exit status of a batch that could not be made durable (sink failed, dead letter not delivered).
EXIT_BATCH_FAILED = 70
BATCH_SIZE = 500
BATCH_SECONDS = 0.05
COMMIT_INTERVAL_S = 0.5
SESSION_TIMEOUT_S = 6.0

TotalsT = TypeVar("TotalsT")


def faust_settings(bootstrap_servers: str, data_dir: Path) -> dict[str, Any]:
    """faust.App settings for a cluster whose topics exist already (the embedded mock has no CreateTopics API)."""
    return {
        # Faust's aiokafka transport with the platform's fetch wait (infra.faust_transport: Faust's own waits 1.5 s
        # on the embedded broker); in a Faust URL list the first scheme applies to every address.
        "broker": "bcl://" + bootstrap_servers,
        # No topic is declared (CreateTopics): the catalogue (infra/topics.py) made them all. Also no leader
        # topic (`<id>-__assignor-__leader`, which would need CreateTopics too), no tables so no changelogs:
        # the state is the durable store, not a Faust table.
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "store": "memory://",
        "web_enabled": False,  # no web server, so no port to clash with the other processes on the host
        "datadir": str(data_dir),  # Faust makes its folders here, not in the working directory
        "consumer_auto_offset_reset": "earliest",  # a new group reads the whole compacted topic
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


class FaustOrigin:
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


class FaustBatchProcessor(Generic[TotalsT]):
    """One Faust agent over `source_topics` (raw bytes: decoding is the contracts', so a bad record is the
    subclass's to dead-letter), handing each batch to `handle`. A subclass sets `totals` and implements `handle`."""

    totals: TotalsT

    def __init__(self, bootstrap_servers: str, registry: BaseSchemaRegistry, *, group_id: str, agent_name: str,
                 source_topics: Sequence[str], dead_letters_topic: str, data_dir: Path, batch_size: int,
                 batch_seconds: float, log_level: str) -> None:
        self.group_id = group_id
        self.metrics = ProcessorMetrics(group_id)
        self._batch_size = batch_size
        self._batch_seconds = batch_seconds
        self._log_level = log_level
        self._deliveries = DeliveryTracker()
        self._producer = make_producer(bootstrap_servers)
        self._dead_letters = DeadLetterSink(self._producer, registry, group_id, self._deliveries,
                                            topic=dead_letters_topic)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(group_id, **faust_settings(bootstrap_servers, data_dir))
        source = self.app.topic(*source_topics, key_type=bytes, value_type=bytes, key_serializer="raw",
                                value_serializer="raw")
        self.app.agent(source, name=agent_name)(self._agent)

    async def _agent(self, stream: faust.StreamT) -> None:
        async for events in stream.take_events(self._batch_size, within=self._batch_seconds):
            # Synchronous on purpose: nothing can cancel the batch between its sink write and its acknowledgement.
            self.handle(events)

    def handle(self, events: Sequence[EventT]) -> None:
        """One batch: decode (dead-letter what is wrong), write the sink; the caller then acknowledges."""
        raise NotImplementedError

    def _flush_dead_letters(self) -> None:
        """Confirm the batch's dead letters before its sink write (raises KafkaClientError if the cluster refused)."""
        self._deliveries.flush(self._producer, "dead letters", "the batch is given again after a restart")

    def _fail(self, exc: BaseException) -> NoReturn:
        """End the process now, committing nothing more (the module doc says why: Faust would commit this batch)."""
        log.error("batch_not_durable", processor=self.group_id, error=f"{type(exc).__name__}: {exc}",
                  consequence="exiting without committing; the batch is processed again after a restart")
        sys.stderr.flush()
        os._exit(EXIT_BATCH_FAILED)

    def run(self) -> TotalsT:
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
