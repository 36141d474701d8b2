"""The embedded cluster's two centres (infra.centres, MockCluster.fail_centre/restore_centre): losing a centre's
brokers keeps every partition writable and readable from the other centre, and nothing acknowledged is lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.centres import centre_brokers, preferred_leader
from infra.cluster import ClusterError, MockCluster
from infra.cluster_control import ClusterHandle, ControlError

pytestmark = pytest.mark.integration


def test_brokers_and_leaders_are_split_between_the_centres() -> None:
    centres = centre_brokers(4)
    assert centres == {"EAST": [1, 2], "WEST": [3, 4]}
    assert [preferred_leader(centres, p) for p in range(6)] == [1, 3, 2, 4, 1, 3]


def test_a_one_site_cluster_refuses_centre_commands() -> None:
    with MockCluster(1, topics=()) as mock, pytest.raises(ClusterError, match="start it with --centres"):
        mock.fail_centre("EAST")
    with pytest.raises(ClusterError, match="even number of brokers"):
        MockCluster(3, topics=(), centres=True)


@pytest.fixture(scope="module")
def centres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    handle = ClusterHandle.start(brokers=4, data_dir=Path(tmp_path_factory.mktemp("centres")), centres=True)
    yield handle
    handle.stop()


def _produce(servers: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": servers, "enable.idempotence": True, "acks": "all",
                         "message.timeout.ms": 20000})
    failures: list[object] = []
    for value in values:
        producer.produce(topic, value, key=value, on_delivery=lambda err, _m: failures.append(err) if err else None)
    assert producer.flush(30) == 0
    assert failures == []


def _read_all(servers: str, topic: str, partitions: int, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"t-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    seen: list[bytes] = []
    for _ in range(200):
        for msg in consumer.consume(100, 0.2):
            if not msg.error():
                seen.append(msg.value())
        if len(seen) >= expected:
            break
    consumer.close()
    return seen


def test_losing_east_keeps_every_partition_served_by_west_and_restoring_gives_its_leadership_back(
        centres_cluster: ClusterHandle) -> None:
    topic = f"test.centres.{uuid.uuid4().hex[:8]}"
    centres_cluster.create_topic(topic, 6, 3)
    servers = centres_cluster.bootstrap_servers
    before = [f"before-{i}".encode() for i in range(30)]
    _produce(servers, topic, before)
    state = centres_cluster.state()["centres"]
    assert state["EAST"]["leaders"] > 0 and state["WEST"]["leaders"] > 0

    moved = centres_cluster.fail_centre("EAST")
    try:
        assert moved["leaders_moved"] > 0
        state = centres_cluster.state()
        assert state["down"] == [1, 2] and state["centres"]["EAST"] == {"brokers": [1, 2], "failed": True,
                                                                        "leaders": 0}
        during = [f"during-{i}".encode() for i in range(30)]
        _produce(servers, topic, during)  # every partition, also those East led, takes writes
        assert sorted(_read_all(servers, topic, 6, 60)) == sorted(before + during)  # nothing acknowledged lost
        with pytest.raises(ControlError, match="the other centre is failed already"):
            centres_cluster.fail_centre("WEST")
    finally:
        back = centres_cluster.restore_centre("EAST")
    assert back["leaders_moved"] == moved["leaders_moved"]
    state = centres_cluster.state()
    assert state["down"] == [] and not state["centres"]["EAST"]["failed"] and state["centres"]["EAST"]["leaders"] > 0
    _produce(servers, topic, [b"after"])
    with pytest.raises(ControlError, match="unknown centre 'NORTH'"):
        centres_cluster.fail_centre("NORTH")
