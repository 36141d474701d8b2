"""Reading a whole topic back in tests (every partition from the beginning to its end)."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 20.0) -> list[Message]:
    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "test-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        remaining = set(partitions)
        out: list[Message] = []
        while remaining:
            msg = consumer.poll(timeout)
            if msg is None:
                raise TimeoutError(f"{topic}: partitions {sorted(remaining)} did not reach their end")
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    remaining.discard(msg.partition())
                    continue
                raise RuntimeError(msg.error())
            out.append(msg)
        return out
    finally:
        consumer.close()
