"""The client factories and the delivery check. Processors get bootstrap servers as a value (from the
settings); nothing here knows whether the cluster is embedded or production. The one consumer loop is
infra.processor_runtime."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

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


# The embedded broker holds a fetch for the whole wait even when data arrives meanwhile (a real broker answers as
# soon as there is data); a short wait keeps consumers busy (librdkafka's and Faust's: infra.faust_transport).
FETCH_WAIT_MAX_MS = 20


def make_consumer(bootstrap_servers: str, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that commits only what the caller says is done (no auto commit)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
    }
    conf.update(overrides)
    return Consumer(conf)
