"""The client layer's shared mechanisms: undelivered messages stop a batch, empty commits are fine."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Message, TopicPartition

from infra import kafka
from infra.cluster_control import ClusterHandle
from infra.processor_runtime import (
    ALL_DELIVERED,
    BatchHandler,
    Done,
    LoopOptions,
    Partitions,
    ProcessorRuntime,
    Source,
    Start,
)


def test_an_undelivered_message_makes_flush_raise() -> None:
    # Nothing listens on port 1: the message expires instead of being delivered.
    producer = kafka.make_producer("127.0.0.1:1", **{"message.timeout.ms": 300})
    delivered = kafka.DeliveryTracker()
    kafka.produce(producer, "bcl.dlq", b"value", b"key", on_delivery=delivered)
    with pytest.raises(kafka.KafkaClientError, match=r"could not deliver .* offsets not committed"):
        delivered.flush(producer, "dead letters")
    assert delivered.errors


@pytest.mark.integration
def test_delivered_messages_pass_and_an_empty_commit_is_fine(cluster: ClusterHandle, topic_factory,
                                                             group_id: str) -> None:
    topic = topic_factory(1)
    producer = kafka.make_producer(cluster.bootstrap_servers)
    delivered = kafka.DeliveryTracker()
    kafka.produce(producer, topic, b"value", b"key", on_delivery=delivered)
    delivered.flush(producer, "messages")
    assert delivered.errors == []

    class NothingRead(BatchHandler):
        """Checkpoints after the first poll, in which nothing was read (from the end of the topic)."""

        def __init__(self) -> None:
            self.stop = threading.Event()
            self.checkpoints = 0

        def process(self, messages: list[Message], partitions: Partitions) -> None:
            assert messages == []
            self.stop.set()

        def checkpoint_due(self, now: float, polled: int) -> bool:
            return True

        def write_sink(self) -> Done:
            self.checkpoints += 1
            return ALL_DELIVERED

    handler = NothingRead()
    with ProcessorRuntime(group_id, cluster.bootstrap_servers, Source((topic,), Start.END), handler,
                          LoopOptions(poll_timeout=0.2)) as runtime:
        runtime.run(handler.stop)  # nothing consumed yet: nothing to commit, no error
    consumer = kafka.make_consumer(cluster.bootstrap_servers, group_id)
    committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    consumer.close()
    assert handler.checkpoints == 2  # the one after the poll, and the final one
    assert committed[0].offset < 0
