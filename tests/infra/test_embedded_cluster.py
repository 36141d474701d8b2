"""The embedded cluster seen by real Kafka clients over TCP: topics, delivery, and delivery under faults."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata

from infra.cluster_control import ClusterHandle
from infra.kafka import make_consumer, make_producer, produce
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
from infra.topics import CATALOGUE

pytestmark = pytest.mark.integration

# Kafka error codes the mock is told to answer Produce requests with (all retriable).
NOT_LEADER_OR_FOLLOWER = KafkaError.NOT_LEADER_FOR_PARTITION
NOT_ENOUGH_REPLICAS = KafkaError.NOT_ENOUGH_REPLICAS
PRODUCE_API_KEY = 0


def _metadata(cluster: ClusterHandle, topic: str | None = None) -> ClusterMetadata:
    return AdminClient({"bootstrap.servers": cluster.bootstrap_servers}).list_topics(topic, timeout=10)


class Deliveries:
    """Delivery reports of one producer: (partition, offset, value) of successes, and the errors."""

    def __init__(self) -> None:
        self.ok: list[tuple[int, int, bytes]] = []
        self.errors: list[KafkaError] = []

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.errors.append(err)
        else:
            self.ok.append((msg.partition(), msg.offset(), msg.value()))


def _produce_numbered(producer: Producer, topic: str, numbers: range, partitions: int, on_delivery: Deliveries) -> None:
    for i in numbers:
        produce(producer, topic, f"{i:06d}".encode(), f"k{i}".encode(), partition=i % partitions,
                on_delivery=on_delivery)
        producer.poll(0)


class Collect(BatchHandler):
    """Every message read, by partition in offset order, as the numbers produced; sets `stop` once
    `expected` were read and every partition is at its end (or, with `commit_at`, commits then)."""

    def __init__(self, expected: int, stop: threading.Event, deadline: float = 30.0) -> None:
        self.by_partition: dict[int, list[int]] = defaultdict(list)
        self.expected = expected
        self.stop = stop
        self.deadline = time.monotonic() + deadline

    @property
    def count(self) -> int:
        return sum(map(len, self.by_partition.values()))

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        for msg in messages:
            self.by_partition[msg.partition()].append(int(msg.value()))
        assert time.monotonic() < self.deadline, f"read {self.count} of {self.expected}"

    def on_caught_up(self, now: float) -> None:
        if self.count >= self.expected:
            self.stop.set()


def _read_all(cluster: ClusterHandle, topic: str, partitions: int, expected: int, group: str) -> dict[int, list[int]]:
    """Every message of the topic, by partition in offset order, as the numbers produced."""
    stop = threading.Event()
    collect = Collect(expected, stop)
    with ProcessorRuntime(group, cluster.bootstrap_servers, Source((topic,), Start.BEGINNING), collect,
                          LoopOptions(poll_timeout=0.2, commit=False)) as runtime:
        runtime.run(stop)
    return collect.by_partition


def _assert_exactly_once_in_order(by_partition: dict[int, list[int]], numbers: range, partitions: int) -> None:
    everything = [n for values in by_partition.values() for n in values]
    assert sorted(everything) == list(numbers), "every message exactly once"
    for partition, values in by_partition.items():
        assert values == sorted(values), f"partition {partition} is in produce order"
        assert all(n % partitions == partition for n in values)


def test_cluster_has_three_brokers_and_a_controller(cluster: ClusterHandle) -> None:
    md = _metadata(cluster)
    assert sorted(md.brokers) == [1, 2, 3]
    assert md.controller_id == 1
    assert {f"{b.host}:{b.port}" for b in md.brokers.values()} == set(cluster.bootstrap_servers.split(","))
    assert cluster.brokers == 3


def test_every_catalogue_topic_exists_with_its_partitions_and_replicas(cluster: ClusterHandle) -> None:
    md = _metadata(cluster)
    for spec in CATALOGUE:
        assert spec.name in md.topics, spec.name
        partitions = md.topics[spec.name].partitions
        assert sorted(partitions) == list(range(spec.partitions)), spec.name
        for p in partitions.values():
            assert len(p.replicas) == min(spec.replication_factor, 3)
            assert p.leader in (1, 2, 3)


def test_produce_and_consume_through_a_consumer_group(cluster: ClusterHandle, topic_factory: Callable[..., str],
                                                      group_id: str) -> None:
    topic = topic_factory(partitions=4)
    deliveries = Deliveries()
    producer = make_producer(cluster.bootstrap_servers)
    _produce_numbered(producer, topic, range(400), 4, deliveries)
    assert producer.flush(30) == 0
    assert deliveries.errors == []
    assert len(deliveries.ok) == 400

    class CommitAll(Collect):
        def process(self, messages: list[Message], partitions: Partitions) -> None:
            super().process(messages, partitions)
            if self.count >= self.expected:
                self.stop.set()  # the runtime's final checkpoint commits what was read

        def write_sink(self) -> Done:
            return ALL_DELIVERED

    stop = threading.Event()
    collect = CommitAll(400, stop)
    with ProcessorRuntime(group_id, cluster.bootstrap_servers, Source((topic,), subscribe=True), collect,
                          LoopOptions(poll_timeout=0.2)) as runtime:
        runtime.run(stop)
    consumer = make_consumer(cluster.bootstrap_servers, group_id)
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(4)], timeout=10)
    finally:
        consumer.close()
    received = collect.by_partition
    _assert_exactly_once_in_order(received, range(400), 4)
    assert sorted(tp.offset for tp in committed) == [100, 100, 100, 100]


def test_broker_down_then_up_during_produce_delivers_exactly_once_in_order(
    cluster: ClusterHandle, topic_factory: Callable[..., str], group_id: str
) -> None:
    topic = topic_factory(partitions=3)
    for partition, broker in enumerate((1, 2, 3)):
        cluster.set_leader(topic, partition, broker)
    deliveries = Deliveries()
    producer = make_producer(cluster.bootstrap_servers)
    _produce_numbered(producer, topic, range(300), 3, deliveries)
    assert producer.flush(30) == 0
    try:
        cluster.broker_down(2)
        _produce_numbered(producer, topic, range(300, 600), 3, deliveries)
        # Partition 1 is led by the stopped broker: nothing produced to it now can be acknowledged.
        producer.flush(2)
        assert not [d for d in deliveries.ok if d[0] == 1 and int(d[2]) >= 300]
        assert cluster.state()["down"] == [2]
    finally:
        cluster.broker_up(2)
    assert producer.flush(60) == 0
    assert deliveries.errors == []
    assert len(deliveries.ok) == 600
    _assert_exactly_once_in_order(_read_all(cluster, topic, 3, 600, group_id), range(600), 3)


def test_injected_produce_errors_are_retried_without_duplicates(
    cluster: ClusterHandle, topic_factory: Callable[..., str], group_id: str
) -> None:
    topic = topic_factory(partitions=2)
    deliveries = Deliveries()
    stats: list[dict[str, Any]] = []
    producer = make_producer(cluster.bootstrap_servers, **{"statistics.interval.ms": 100,
                                                            "stats_cb": lambda raw: stats.append(json.loads(raw))})
    producer.list_topics(topic, timeout=10)  # connect first, so the errors hit Produce requests of this test
    cluster.push_request_errors(PRODUCE_API_KEY, [NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS])
    try:
        _produce_numbered(producer, topic, range(200), 2, deliveries)
        assert producer.flush(30) == 0
    finally:
        cluster.clear_request_errors(PRODUCE_API_KEY)
    assert deliveries.errors == []
    stats.clear()
    while not stats:
        producer.poll(0.1)
    # Three refused Produce requests, each carrying at least one message, were sent again.
    assert stats[-1]["txmsgs"] >= 200 + 3, "the injected errors were hit and the messages resent"
    _assert_exactly_once_in_order(_read_all(cluster, topic, 2, 200, group_id), range(200), 2)


def test_leader_move_is_seen_by_clients_and_produce_follows_it(
    cluster: ClusterHandle, topic_factory: Callable[..., str], group_id: str
) -> None:
    topic = topic_factory(partitions=1)
    before = _metadata(cluster, topic).topics[topic].partitions[0].leader
    deliveries = Deliveries()
    producer = make_producer(cluster.bootstrap_servers)
    _produce_numbered(producer, topic, range(100), 1, deliveries)
    assert producer.flush(30) == 0
    new_leader = 1 + before % 3
    cluster.set_leader(topic, 0, new_leader)
    assert _metadata(cluster, topic).topics[topic].partitions[0].leader == new_leader
    _produce_numbered(producer, topic, range(100, 200), 1, deliveries)
    assert producer.flush(30) == 0
    assert deliveries.errors == []
    assert [offset for _, offset, _ in deliveries.ok] == list(range(200))
    _assert_exactly_once_in_order(_read_all(cluster, topic, 1, 200, group_id), range(200), 1)


def test_injected_rtt_shows_in_delivery_latency(cluster: ClusterHandle, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(partitions=1)
    cluster.set_leader(topic, 0, 3)
    latencies: list[float] = []
    producer = make_producer(cluster.bootstrap_servers, **{"linger.ms": 0})
    producer.list_topics(topic, timeout=10)
    cluster.set_rtt(3, 300)
    try:
        assert cluster.state()["rtt_ms"] == {"3": 300}
        for i in range(3):
            producer.produce(topic, str(i).encode(), on_delivery=lambda err, msg: latencies.append(msg.latency()))
            assert producer.flush(30) == 0
    finally:
        cluster.set_rtt(3, 0)
    assert cluster.state()["rtt_ms"] == {}
    # A lower bound only: the broker holds each response back 300 ms, so no delivery can be quicker
    # however fast or slow the machine is.
    assert min(latencies) >= 0.3
