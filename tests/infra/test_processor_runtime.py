"""The processor runtime against the embedded cluster: caught-up and idle stop, held partitions, where
each start position begins, and the checkpoint's order (flush produced → write sink → commit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Message, TopicPartition

from infra import kafka
from infra.cluster_control import ClusterHandle
from infra.processor_runtime import (
    ALL_DELIVERED,
    BatchHandler,
    Done,
    LoopOptions,
    Output,
    Partitions,
    ProcessorRuntime,
    Source,
    Start,
)

pytestmark = pytest.mark.integration


def _fill(cluster: ClusterHandle, topic: str, count: int, partitions: int, first: int = 0) -> None:
    producer = kafka.make_producer(cluster.bootstrap_servers)
    for i in range(first, first + count):
        kafka.produce(producer, topic, str(i).encode(), None, partition=i % partitions)
    assert producer.flush(10) == 0


def _committed(cluster: ClusterHandle, group: str, topic: str, partitions: int) -> list[int]:
    consumer = kafka.make_consumer(cluster.bootstrap_servers, group)
    try:
        return [tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                                        timeout=10)]
    finally:
        consumer.close()


class Sink(BatchHandler):
    """Collects the values read; checkpoints after every batch; the sink is a list of values."""

    def __init__(self) -> None:
        self.read: list[int] = []
        self.pending: list[Message] = []
        self.written: list[int] = []
        self.caught_up_calls = 0

    def process(self, messages: list[Message], partitions: Partitions) -> None:
        self.read += [int(m.value()) for m in messages]
        self.pending += messages

    def checkpoint_due(self, now: float, polled: int) -> bool:
        return bool(self.pending)

    def write_sink(self) -> Done:
        done, self.pending = self.pending, []
        self.written += [int(m.value()) for m in done]
        return done

    def on_caught_up(self, now: float) -> None:
        self.caught_up_calls += 1


def _run(cluster: ClusterHandle, group: str, source: Source, handler: BatchHandler, **options: object) -> None:
    conf: dict[str, object] = {"poll_timeout": 0.1, "until_caught_up": True, "idle_seconds": 0.3, **options}
    with ProcessorRuntime(group, cluster.bootstrap_servers, source, handler, LoopOptions(**conf)) as runtime:  # type: ignore[arg-type]
        runtime.run()


def test_stops_once_caught_up_and_idle_and_resumes_at_the_commit(cluster: ClusterHandle,
                                                                 topic_factory: Callable[..., str],
                                                                 group_id: str) -> None:
    topic = topic_factory(3)
    _fill(cluster, topic, 30, 3)
    sink = Sink()
    began = time.monotonic()
    _run(cluster, group_id, Source((topic,)), sink)
    assert time.monotonic() - began >= 0.3  # idle for idle_seconds after the last message
    assert sorted(sink.read) == list(range(30)) and sorted(sink.written) == list(range(30))
    assert sink.caught_up_calls >= 1
    assert _committed(cluster, group_id, topic, 3) == [10, 10, 10]

    _fill(cluster, topic, 6, 3, first=30)
    again = Sink()
    _run(cluster, group_id, Source((topic,)), again)
    assert sorted(again.read) == list(range(30, 36))  # from the committed offsets, nothing twice


def test_start_from_the_beginning_or_from_the_end(cluster: ClusterHandle, topic_factory: Callable[..., str],
                                                  group_id: str) -> None:
    topic = topic_factory(2)
    _fill(cluster, topic, 10, 2)
    from_start = Sink()
    _run(cluster, group_id, Source((topic,), Start.BEGINNING), from_start, commit=False)
    assert sorted(from_start.read) == list(range(10))
    assert _committed(cluster, group_id, topic, 2) == [-1001, -1001]  # commits off

    stop = threading.Event()
    from_end = Sink()
    with ProcessorRuntime(group_id, cluster.bootstrap_servers, Source((topic,), Start.END), from_end,
                          LoopOptions(poll_timeout=0.05, low_latency=True, commit=False)) as runtime:
        runtime.assign()  # positioned: whatever is produced from now on is read
        thread = threading.Thread(target=runtime.run, args=(stop,))
        thread.start()
        _fill(cluster, topic, 4, 2, first=100)
        deadline = time.monotonic() + 20
        while len(from_end.read) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        thread.join(10)
    assert sorted(from_end.read) == [100, 101, 102, 103]


def test_a_held_partition_counts_as_caught_up_and_its_offsets_stay_below_the_hold(
        cluster: ClusterHandle, topic_factory: Callable[..., str], group_id: str) -> None:
    topic = topic_factory(2)
    _fill(cluster, topic, 20, 2)  # partition 0: 0, 2, …, 18; partition 1: 1, 3, …, 19

    class HoldAtTen(Sink):
        """Holds partition 0 at the value 10 (its offset 5), until `release_after` polls went by."""

        def __init__(self, release_after: int | None = None) -> None:
            super().__init__()
            self.release_after = release_after
            self.polls_held = 0
            self.released = False

        def process(self, messages: list[Message], partitions: Partitions) -> None:
            if partitions.held:
                self.polls_held += 1
                if self.release_after is not None and self.polls_held >= self.release_after:
                    partitions.release(list(partitions.held))
                    self.released = True
            accepted = []
            for msg in messages:
                if (msg.topic(), msg.partition()) in partitions.held:
                    continue
                if not self.released and int(msg.value()) == 10:
                    partitions.hold(msg)
                    continue
                accepted.append(msg)
            super().process(accepted, partitions)

    held = HoldAtTen()
    _run(cluster, group_id, Source((topic,)), held)  # stops although partition 0 was not read to its end
    assert sorted(held.read) == sorted([0, 2, 4, 6, 8, *range(1, 20, 2)])
    assert _committed(cluster, group_id, topic, 2) == [5, 10]

    released = HoldAtTen(release_after=1)
    _run(cluster, group_id, Source((topic,)), released)
    assert sorted(released.read) == [10, 12, 14, 16, 18]  # the held message is read again once released
    assert _committed(cluster, group_id, topic, 2) == [10, 10]


def test_a_crash_between_sink_write_and_commit_redelivers(cluster: ClusterHandle, topic_factory: Callable[..., str],
                                                         group_id: str) -> None:
    topic = topic_factory(1)
    _fill(cluster, topic, 5, 1)

    class CrashAfterWrite(Sink):
        def write_sink(self) -> Done:
            super().write_sink()
            raise RuntimeError("crash after the sink write, before the commit")

    crashing = CrashAfterWrite()
    with pytest.raises(RuntimeError, match="before the commit"):
        _run(cluster, group_id, Source((topic,)), crashing)
    assert crashing.written  # the sink has the batch …
    assert _committed(cluster, group_id, topic, 1) == [-1001]  # … its offsets were not committed

    restarted = Sink()
    _run(cluster, group_id, Source((topic,)), restarted)
    assert restarted.read == list(range(5))  # re-delivered: the sink must recognise what it holds
    assert _committed(cluster, group_id, topic, 1) == [5]


def test_nothing_is_written_or_committed_before_the_produced_messages_are_confirmed(
        cluster: ClusterHandle, topic_factory: Callable[..., str], group_id: str) -> None:
    topic = topic_factory(1)
    _fill(cluster, topic, 3, 1)
    # Nothing listens on port 1: what the handler produces expires instead of being delivered.
    producer = kafka.make_producer("127.0.0.1:1", **{"message.timeout.ms": 300})
    deliveries = kafka.DeliveryTracker()

    class Forward(Sink):
        def process(self, messages: list[Message], partitions: Partitions) -> None:
            for msg in messages:
                kafka.produce(producer, "bcl.forwarded", msg.value(), None, on_delivery=deliveries)
            super().process(messages, partitions)

        def write_sink(self) -> Done:
            super().write_sink()
            return ALL_DELIVERED

    forward = Forward()
    with pytest.raises(kafka.KafkaClientError, match=r"could not deliver .* forwarded values"), ProcessorRuntime(
            group_id, cluster.bootstrap_servers, Source((topic,)), forward, LoopOptions(poll_timeout=0.1),
            output=Output(producer, deliveries, "forwarded values")) as runtime:
        runtime.run()
    assert forward.read == [0, 1, 2]
    assert forward.written == []
    assert _committed(cluster, group_id, topic, 1) == [-1001]
