"""The client layer's shared mechanisms: undelivered messages stop a batch, empty commits are fine."""

from __future__ import annotations

import pytest

from infra import kafka
from infra.cluster_control import ClusterHandle


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
    consumer = kafka.make_consumer(cluster.bootstrap_servers, group_id)
    kafka.assign_all(consumer, topic)
    kafka.commit_offsets(consumer)  # nothing consumed yet: nothing to commit, no error
    consumer.close()
