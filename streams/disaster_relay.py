"""The disaster relay: publishes the disaster store's outbox (sinks.disaster_store) to Kafka, in order.

Durability order per batch: (1) produce the oldest unpublished events, in outbox order, with the one
idempotent producer (acks=all); (2) wait for every acknowledgement; (3) mark published, in one transaction,
the longest run of acknowledged events from the start of the batch (with their partitions and offsets).
An event not acknowledged stays unpublished, with every later one of the batch, and the batch is tried again
on a fresh producer: so an event is never marked before an earlier one, and a disaster's events reach its
partition in the order they were made. A crash between (2) and (3) (crash point
`disaster_relay.after_delivery`) sends those events again with the same bytes and event ids; consumers
deduplicate by event id. Nothing acknowledged to staff is lost: it is in the store before the relay sees it.

A new cluster: the embedded cluster lives in memory, so a restarted one holds none of the events. At start
the relay compares, for every partition it has published to, the offset of the last event it marked there
with the partition's end: a partition that ends at or below it lost what it was given, and every event of
that topic is marked unpublished and sent again, from the first, so that downstream can rebuild
(`bcl disaster republish` does the same on request). A relay is bound to one cluster for its life (a new
embedded cluster has a new address, so a new relay), hence the check at start only.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from confluent_kafka import KafkaError, Message, Producer, TopicPartition

from infra.crash_points import crash_point
from infra.kafka import ClusterUnavailableError, KafkaClientError, make_consumer, make_producer, produce
from sinks.disaster_store import Delivery, DisasterStore, OutboxEvent

log = structlog.get_logger(__name__)

BATCH_SIZE = 500
DEFAULT_DELIVERY_TIMEOUT_S = 30.0
# How often a running relay looks at the outbox for new events, and waits after a failed batch.
POLL_INTERVAL_S = 0.2
RETRY_INTERVAL_S = 2.0
_METADATA_TIMEOUT_S = 10.0

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class RelayTotals:
    published: int = 0  # events marked published by this relay
    republished: int = 0  # events marked unpublished at start because the cluster did not hold them


class DisasterRelay:
    def __init__(self, bootstrap_servers: str, store: DisasterStore, *, batch_size: int = BATCH_SIZE,
                 delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S, clock: Clock = utc_now) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.store = store
        self.batch_size = batch_size
        self.delivery_timeout_s = delivery_timeout_s
        self.clock = clock
        self.totals = RelayTotals()
        self._producer: Producer | None = None

    def _make_producer(self) -> Producer:
        # The producer gives up on a message after the delivery timeout, so that a batch ends (and is retried)
        # instead of waiting for the default five minutes.
        timeout_ms = int(self.delivery_timeout_s * 1000)
        return make_producer(self.bootstrap_servers, **{"message.timeout.ms": timeout_ms,
                                                        "delivery.timeout.ms": timeout_ms})

    # -- a new cluster ---------------------------------------------------------------------------

    def check_cluster(self) -> int:
        """Mark unpublished every event of a topic the cluster lost (see the module doc); how many."""
        marks = self.store.published_marks()
        if not marks:
            return 0
        consumer = make_consumer(self.bootstrap_servers, "disaster-relay")  # watermarks only; never commits
        try:
            lost_topics = set()
            for (topic, partition), offset in sorted(marks.items()):
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                         timeout=_METADATA_TIMEOUT_S, cached=False)
                if high <= offset:
                    lost_topics.add(topic)
        except Exception as exc:  # librdkafka's KafkaException: the cluster did not answer
            raise ClusterUnavailableError(f"could not read the end of the disaster topics: {exc}") from exc
        finally:
            consumer.close()
        reset = 0
        for topic in sorted(lost_topics):
            count = self.store.reset_published(topic)
            log.warning("cluster lost the disaster events: publishing them again", topic=topic, events=count)
            reset += count
        self.totals.republished += reset
        return reset

    def republish_all(self) -> int:
        """Mark every stored event unpublished, to send them all again from the first (`bcl disaster republish`)."""
        count = self.store.reset_published()
        self.totals.republished += count
        return count

    # -- publishing ------------------------------------------------------------------------------

    def publish_batch(self) -> int:
        """Publish the oldest unpublished events (one batch); how many were marked published. Raises
        ClusterUnavailableError when some were not acknowledged (they stay unpublished)."""
        batch = self.store.unpublished(self.batch_size)
        if not batch:
            return 0
        if self._producer is None:
            self._producer = self._make_producer()
        acknowledged: dict[int, Delivery] = {}
        errors: list[str] = []

        def on_delivery(event: OutboxEvent) -> Callable[[KafkaError | None, Message], None]:
            def done(err: KafkaError | None, msg: Message) -> None:
                if err is None:
                    acknowledged[event.sequence] = Delivery(event.sequence, msg.partition(), msg.offset())
                else:
                    errors.append(str(err))
            return done

        for event in batch:
            produce(self._producer, event.topic, event.value, event.key, on_delivery=on_delivery(event))
        self._producer.flush(self.delivery_timeout_s + 5)
        crash_point("disaster_relay.after_delivery")
        delivered = []
        for event in batch:  # the acknowledged run from the start of the batch, never one after a gap
            if event.sequence not in acknowledged:
                break
            delivered.append(acknowledged[event.sequence])
        if delivered:
            self.store.mark_published(delivered, self.clock())
            self.totals.published += len(delivered)
        if len(delivered) < len(batch):
            # A fresh idempotent session for the retry; the old one must not deliver a stale copy after it.
            self._producer.purge()
            self._producer = None
            raise ClusterUnavailableError(
                f"{len(batch) - len(delivered)} disaster events were not acknowledged by the cluster "
                f"({'; '.join(errors[:3]) or 'no answer'}); they stay in the store and are sent again")
        return len(delivered)

    def publish_pending(self) -> int:
        """Publish until the outbox holds nothing unpublished; how many were published."""
        total = 0
        while published := self.publish_batch():
            total += published
        return total

    def run(self, stop: threading.Event, *, until_published: bool = False) -> RelayTotals:
        """Check the cluster, then publish; with until_published, return once the outbox is empty (or raise if the
        cluster does not take the events), else keep publishing new events until `stop` is set, retrying
        failed batches."""
        self.check_cluster()
        while not stop.is_set():
            try:
                self.publish_pending()
            except KafkaClientError as exc:
                if until_published:
                    raise
                log.warning("disaster relay: will retry", error=str(exc), retry_in_s=RETRY_INTERVAL_S)
                stop.wait(RETRY_INTERVAL_S)
                continue
            if until_published:
                break
            stop.wait(POLL_INTERVAL_S)
        if self._producer is not None:
            self._producer.flush(self.delivery_timeout_s)
        return self.totals
