"""The one producer factory and the one consumer loop. Processors get bootstrap servers as a value
(from the settings); nothing here knows whether the cluster is embedded or production."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from domain.errors import BclError


class KafkaClientError(BclError):
    pass


class ClusterUnavailableError(KafkaClientError):
    """No broker of the cluster answers (or none was configured): start the cluster or fix the address."""


def make_producer(bootstrap_servers: str, *, bulk: bool = False, **overrides: Any) -> Producer:
    """An idempotent producer (acks=all, no duplicates on retry, order kept per partition).
    bulk=True batches harder and compresses, for full loads."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    if bulk:
        conf.update({"linger.ms": 50, "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000,
                     "queue.buffering.max.kbytes": 1_048_576})
    conf.update(overrides)
    return Producer(conf)


def produce(producer: Producer, topic: str, value: bytes, key: bytes | None = None, **kwargs: Any) -> None:
    """Produce, waiting for room in the local queue instead of failing when it is full."""
    while True:
        try:
            producer.produce(topic, value, key, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)


class DeliveryTracker:
    """The producer's delivery callback: collects failures; `flush` waits for every message and raises
    when any was not delivered, so that the caller does not commit the offsets of that batch."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.errors.append(str(err))

    def flush(self, producer: Producer, what: str, consequence: str = "the batch will be processed again") -> None:
        remaining = producer.flush(30)
        if remaining or self.errors:
            raise KafkaClientError(
                f"could not deliver {remaining} {what} ({'; '.join(self.errors[:3])}); offsets not committed, "
                f"{consequence}"
            )


def commit_offsets(consumer: Consumer) -> None:
    """Commit the consumed positions synchronously; having nothing new to commit is fine."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            raise KafkaClientError(f"cannot commit the consumed offsets ({exc.args[0].str()})") from None


def make_consumer(bootstrap_servers: str, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that commits only what the caller says is done (no auto commit)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        # The embedded broker holds a fetch for the whole wait even when data arrives meanwhile
        # (a real broker answers as soon as there is data); a short wait keeps consumers busy.
        "fetch.wait.max.ms": 20,
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
    }
    conf.update(overrides)
    return Consumer(conf)


def assign_all(consumer: Consumer, topic: str, timeout: float = 30.0) -> list[tuple[str, int]]:
    """Assign every partition of the topic at the group's committed offsets (or the beginning).

    For single-instance processors: no group membership, so a restart never waits for the previous
    member's session to expire, while offsets are still committed under the group id."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException as exc:
        # A timeout here means no broker answered: the cluster went away or the address is wrong.
        raise ClusterUnavailableError(f"no broker answered within {timeout:g} s ({exc.args[0].str()})") from None
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise KafkaClientError(f"topic {topic} does not exist on the cluster")
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in metadata.partitions], timeout=timeout)
    except KafkaException as exc:
        raise ClusterUnavailableError(f"cannot read the committed offsets of {topic} ({exc.args[0].str()})") from None
    consumer.assign([TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                     for tp in committed])
    return [(topic, p) for p in metadata.partitions]


def consume_batches(
    consumer: Consumer, *, batch_size: int = 5000, timeout: float = 0.5, stop: threading.Event | None = None
) -> Iterator[tuple[list[Message], set[tuple[str, int]]]]:
    """The consumer loop: yields (messages, partitions that reached their end in this poll).
    An empty batch is yielded on idle polls so callers can flush and notice being caught up."""
    while stop is None or not stop.is_set():
        batch = consumer.consume(batch_size, timeout)
        messages: list[Message] = []
        at_end: set[tuple[str, int]] = set()
        for msg in batch:
            err = msg.error()
            if err is None:
                messages.append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                at_end.add((msg.topic(), msg.partition()))
            elif err.fatal():
                raise KafkaClientError(f"fatal consumer error: {err.str()}")
            elif not err.retriable():
                raise KafkaClientError(f"consumer error: {err.str()}")
        yield messages, at_end
