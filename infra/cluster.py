"""The embedded Kafka-protocol cluster: librdkafka's mock cluster driven through ctypes.

librdkafka (shipped inside the confluent-kafka wheel) contains a small Kafka-protocol broker
implementation used for its own tests. Any Kafka client can talk to it over TCP. This module
loads that very library, creates a cluster of N brokers on 127.0.0.1, creates the topics of the
catalogue, and exposes the fault-injection calls tests need. It lives as long as its process.

Limits of the mock (see infra/README.md): in memory only; at most 5 MiB and 100,000 message sets
per partition, older data is trimmed; no CreateTopics API; no log compaction or retention; topic
configuration is ignored; unknown topics named in a Metadata request are auto-created with 4
partitions (so this class refuses fault injection on topics it did not create).
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import confluent_kafka

from domain.errors import BclError
from infra.centres import centre_brokers, preferred_leader
from infra.topics import CATALOGUE, TopicSpec

_RD_KAFKA_PRODUCER = 0
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")

# Kafka waits group.initial.rebalance.delay.ms (the mock: about 3 s) for more members before the
# first assignment of a new group; a short delay keeps tests and demos quick.
DEFAULT_REBALANCE_DELAY_MS = 200


class ClusterError(BclError):
    """The embedded cluster could not be created or refused an operation."""


def _load_librdkafka() -> ctypes.CDLL:
    package_dir = os.path.dirname(confluent_kafka.__file__)
    candidates = glob.glob(os.path.join(package_dir, os.pardir, "confluent_kafka.libs", "librdkafka*.so*"))
    if not candidates:
        raise ClusterError(
            "librdkafka was not found inside the confluent-kafka wheel; "
            "install confluent-kafka from a binary wheel (pip install confluent-kafka)"
        )
    # The same file confluent_kafka has loaded: dlopen returns the one copy already in the process.
    lib = ctypes.CDLL(os.path.realpath(candidates[0]))
    vp, cp, i32, i16 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int16
    sigs: dict[str, tuple[object, list[object]]] = {
        "rd_kafka_conf_new": (vp, []),
        "rd_kafka_conf_set": (ctypes.c_int, [vp, cp, cp, cp, ctypes.c_size_t]),
        "rd_kafka_new": (vp, [ctypes.c_int, vp, cp, ctypes.c_size_t]),
        "rd_kafka_destroy": (None, [vp]),
        "rd_kafka_mock_cluster_new": (vp, [vp, ctypes.c_int]),
        "rd_kafka_mock_cluster_destroy": (None, [vp]),
        "rd_kafka_mock_cluster_bootstraps": (cp, [vp]),
        "rd_kafka_mock_topic_create": (ctypes.c_int, [vp, cp, ctypes.c_int, ctypes.c_int]),
        "rd_kafka_mock_partition_set_leader": (ctypes.c_int, [vp, cp, i32, i32]),
        "rd_kafka_mock_broker_set_down": (ctypes.c_int, [vp, i32]),
        "rd_kafka_mock_broker_set_up": (ctypes.c_int, [vp, i32]),
        "rd_kafka_mock_broker_set_rtt": (ctypes.c_int, [vp, i32, ctypes.c_int]),
        "rd_kafka_mock_set_controller_id": (ctypes.c_int, [vp, i32]),
        "rd_kafka_mock_broker_set_rack": (ctypes.c_int, [vp, i32, cp]),
        "rd_kafka_mock_coordinator_set": (ctypes.c_int, [vp, cp, cp, i32]),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": (None, [vp, i32]),
        "rd_kafka_mock_push_request_errors_array": (None, [vp, i16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]),
        "rd_kafka_mock_clear_request_errors": (None, [vp, i16]),
        "rd_kafka_err2str": (cp, [ctypes.c_int]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


@dataclass(frozen=True)
class ClusterInfo:
    bootstrap_servers: str
    brokers: int


class MockCluster:
    """A running embedded cluster. Use as a context manager or call close().

    Broker ids are 1..brokers. Every call is checked before it reaches librdkafka, because the mock
    silently creates unknown topics and ignores some bad arguments; errors name what was wrong.
    """

    def __init__(
        self,
        brokers: int = 3,
        topics: Iterable[TopicSpec] = CATALOGUE,
        controller_id: int = 1,
        *,
        rebalance_delay_ms: int = DEFAULT_REBALANCE_DELAY_MS,
        rtt_ms: int = 0,
        centres: bool = False,
        centre_groups: Mapping[str, str] | None = None,
    ) -> None:
        if brokers < 1:
            raise ClusterError(f"brokers must be at least 1, got {brokers}")
        if centres and (brokers < 2 or brokers % 2):
            raise ClusterError(f"two centres need an even number of brokers (half in each), got {brokers}")
        if not 1 <= controller_id <= brokers:
            raise ClusterError(f"controller id must be a broker id between 1 and {brokers}, got {controller_id}")
        self._lib = _load_librdkafka()
        self.brokers = brokers
        # Calls come from the main thread and the control-channel threads; keep them one at a time.
        self._lock = threading.Lock()
        self._topics: dict[str, TopicSpec] = {}
        self._down: set[int] = set()
        self._rtt_ms: dict[int, int] = dict.fromkeys(range(1, brokers + 1), 0)
        # Two centres: the first half of the brokers in East, the second in West (infra.centres); None: one site.
        self.centres = centre_brokers(brokers) if centres else None
        self._leaders: dict[tuple[str, int], int] = {}  # with centres: the current leader of every partition
        self._failed: set[str] = set()
        # Consumer groups whose coordinator stands in a given centre. The mock hashes other groups over every broker,
        # up or down, and moves no coordinator when a broker goes down; production moves them with the leadership
        # of __consumer_offsets. Hence the centres' worker groups are placed, and moved by fail_centre.
        self._coordinators: dict[str, int] = {}
        self._home: dict[str, str] = {}  # group → the centre its coordinator stands in when both run
        errstr = ctypes.create_string_buffer(512)
        conf = self._lib.rd_kafka_conf_new()
        # The anchoring client handle only owns the cluster; keep its own logging quiet.
        self._lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
        self._rk = self._lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, errstr, len(errstr))
        if not self._rk:
            raise ClusterError(f"could not create the anchoring librdkafka handle: {errstr.value.decode()}")
        self._mc = self._lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._mc:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None
            raise ClusterError("librdkafka refused to create the mock cluster")
        try:
            # Admin clients (DescribeCluster, metadata controller) need a controller id.
            self._check(self._lib.rd_kafka_mock_set_controller_id(self._mc, controller_id), "setting the controller")
            self.set_rebalance_delay(rebalance_delay_ms)
            for spec in topics:
                self.create_topic(spec)
            if rtt_ms:
                for broker_id in range(1, brokers + 1):
                    self.set_rtt(broker_id, rtt_ms)
            if self.centres is not None:
                for centre, ids in self.centres.items():
                    for broker_id in ids:  # broker.rack: clients with client.rack fetch from their own centre
                        self._check(self._lib.rd_kafka_mock_broker_set_rack(self._mc, broker_id, centre.encode()),
                                    f"setting the rack of broker {broker_id}")
                self._home.update(centre_groups or {})
                for group, centre in self._home.items():
                    self._set_coordinator(group, self._require_centre(centre)[0])
            elif centre_groups:
                raise ClusterError("centre groups need a cluster of two centres (--centres)")
        except ClusterError:
            self.close()
            raise

    @property
    def bootstrap_servers(self) -> str:
        if not self._mc:
            raise ClusterError("the embedded cluster is closed")
        return self._lib.rd_kafka_mock_cluster_bootstraps(self._mc).decode()

    @property
    def info(self) -> ClusterInfo:
        return ClusterInfo(self.bootstrap_servers, self.brokers)

    @property
    def topics(self) -> dict[str, TopicSpec]:
        """The topics this cluster created, with the replication factor actually applied."""
        return dict(self._topics)

    def state(self) -> dict[str, object]:
        """What a controller needs to know: brokers, which are down, injected latencies, topics."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "brokers": self.brokers,
            "down": sorted(self._down),
            "rtt_ms": {str(b): ms for b, ms in self._rtt_ms.items() if ms},
            "topics": {name: spec.partitions for name, spec in self._topics.items()},
            "centres": None if self.centres is None else {
                c: {"brokers": bs, "failed": c in self._failed,
                    "leaders": sum(1 for b in self._leaders.values() if b in bs)} for c, bs in self.centres.items()},
        }

    def _check(self, err: int, what: str) -> None:
        if err:
            raise ClusterError(f"{what}: {self._lib.rd_kafka_err2str(err).decode()}")

    def _require_open(self) -> None:
        if not self._mc:
            raise ClusterError("the embedded cluster is closed")

    def _require_broker(self, broker_id: int) -> None:
        if not isinstance(broker_id, int) or isinstance(broker_id, bool) or not 1 <= broker_id <= self.brokers:
            raise ClusterError(f"no broker {broker_id!r}: broker ids are 1 to {self.brokers}")

    def _require_partition(self, topic: str, partition: int) -> None:
        spec = self._topics.get(topic)
        if spec is None:
            raise ClusterError(
                f"unknown topic {topic!r}: create it first (catalogue or create_topic); "
                f"known: {', '.join(sorted(self._topics))}"
            )
        if not isinstance(partition, int) or isinstance(partition, bool) or not 0 <= partition < spec.partitions:
            raise ClusterError(f"topic {topic} has partitions 0 to {spec.partitions - 1}, not {partition!r}")

    def create_topic(
        self, topic: TopicSpec | str, partitions: int | None = None, replication_factor: int = 3
    ) -> TopicSpec:
        """Create a topic, from a catalogue entry or a name and partition count. The replication factor is
        capped at the number of brokers. Returns the spec as applied."""
        if isinstance(topic, TopicSpec):
            spec = topic
        else:
            if partitions is None:
                raise ClusterError(f"creating topic {topic}: the partition count is missing")
            spec = TopicSpec(topic, partitions, replication_factor)
        if not _TOPIC_NAME.fullmatch(spec.name):
            raise ClusterError(
                f"invalid topic name {spec.name!r}: use 1 to 249 ASCII letters, digits, '.', '_' or '-'"
            )
        if not 1 <= spec.partitions <= 10_000:
            raise ClusterError(f"creating topic {spec.name}: partitions must be 1 to 10000, got {spec.partitions}")
        if spec.replication_factor < 1:
            raise ClusterError(
                f"creating topic {spec.name}: replication factor must be at least 1, got {spec.replication_factor}"
            )
        applied = TopicSpec(
            spec.name, spec.partitions, min(spec.replication_factor, self.brokers), dict(spec.config), spec.doc
        )
        with self._lock:
            self._require_open()
            if spec.name in self._topics:
                raise ClusterError(f"creating topic {spec.name}: it already exists")
            self._check(
                self._lib.rd_kafka_mock_topic_create(
                    self._mc, spec.name.encode(), applied.partitions, applied.replication_factor
                ),
                f"creating topic {spec.name}",
            )
            self._topics[spec.name] = applied
        if self.centres is not None:
            for partition in range(applied.partitions):
                self.set_leader(applied.name, partition, preferred_leader(self.centres, partition))
        return applied

    def set_rebalance_delay(self, delay_ms: int) -> None:
        """How long a new consumer group waits for more members before its first assignment."""
        if delay_ms < 0:
            raise ClusterError(f"the rebalance delay must not be negative, got {delay_ms} ms")
        with self._lock:
            self._require_open()
            self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._mc, delay_ms)

    # -- fault injection -------------------------------------------------------------------
    def broker_down(self, broker_id: int) -> None:
        """Close the broker's connections and refuse new ones. Leadership does not move."""
        self._require_broker(broker_id)
        with self._lock:
            self._require_open()
            self._check(self._lib.rd_kafka_mock_broker_set_down(self._mc, broker_id), f"taking broker {broker_id} down")
            self._down.add(broker_id)

    def broker_up(self, broker_id: int) -> None:
        self._require_broker(broker_id)
        with self._lock:
            self._require_open()
            self._check(self._lib.rd_kafka_mock_broker_set_up(self._mc, broker_id), f"bringing broker {broker_id} up")
            self._down.discard(broker_id)

    def set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        self._require_broker(broker_id)
        self._require_partition(topic, partition)
        with self._lock:
            self._require_open()
            self._check(
                self._lib.rd_kafka_mock_partition_set_leader(self._mc, topic.encode(), partition, broker_id),
                f"moving the leader of {topic}[{partition}] to broker {broker_id}",
            )
            self._leaders[(topic, partition)] = broker_id

    # -- the two centres -------------------------------------------------------------------
    def _require_centre(self, centre: str) -> list[int]:
        if self.centres is None:
            raise ClusterError("this cluster has one site: start it with --centres to have East and West")
        if centre not in self.centres:
            raise ClusterError(f"unknown centre {centre!r}: the centres are {', '.join(self.centres)}")
        return self.centres[centre]

    def _set_coordinator(self, group: str, broker_id: int) -> None:
        with self._lock:
            self._require_open()
            self._check(self._lib.rd_kafka_mock_coordinator_set(self._mc, b"group", group.encode(), broker_id),
                        f"placing the coordinator of group {group} on broker {broker_id}")
            self._coordinators[group] = broker_id

    def fail_centre(self, centre: str) -> dict[str, int]:
        """Lose a whole centre: every partition it leads gets a leader in the other centre (what the KRaft
        controller at the third site does in production: a replica of the ISR there), then its brokers go down.
        Nothing acknowledged is lost: the mock keeps one log per partition, as acks=all with
        min.insync.replicas=2 and replicas in both centres keep every acknowledged write in both."""
        brokers = self._require_centre(centre)
        survivors = [b for c, bs in self.centres.items() if c != centre and c not in self._failed for b in bs]  # type: ignore[union-attr]
        if not survivors:
            raise ClusterError(f"cannot fail {centre}: the other centre is failed already (restore it first)")
        moved = 0
        for (topic, partition), leader in sorted(self._leaders.items()):
            if leader in brokers:
                self.set_leader(topic, partition, survivors[partition % len(survivors)])
                moved += 1
        for group, broker in sorted(self._coordinators.items()):
            if broker in brokers:
                self._set_coordinator(group, survivors[0])
        for broker in brokers:
            self.broker_down(broker)
        self._failed.add(centre)
        return {"leaders_moved": moved}

    def restore_centre(self, centre: str) -> dict[str, int]:
        """The centre is back: its brokers up, then the leadership it had (preferred leader election)."""
        brokers = self._require_centre(centre)
        for broker in brokers:
            self.broker_up(broker)
        moved = 0
        assert self.centres is not None
        for (topic, partition), leader in sorted(self._leaders.items()):
            preferred = preferred_leader(self.centres, partition)
            if preferred in brokers and leader != preferred:
                self.set_leader(topic, partition, preferred)
                moved += 1
        for group, broker in sorted(self._coordinators.items()):
            if self._home[group] == centre and broker not in brokers:
                self._set_coordinator(group, brokers[0])
        self._failed.discard(centre)
        return {"leaders_moved": moved}

    def set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        """Delay every response of this broker by rtt_ms (0 removes the delay)."""
        self._require_broker(broker_id)
        if not isinstance(rtt_ms, int) or isinstance(rtt_ms, bool) or rtt_ms < 0:
            raise ClusterError(f"rtt must be a whole number of milliseconds, at least 0, got {rtt_ms!r}")
        with self._lock:
            self._require_open()
            self._check(
                self._lib.rd_kafka_mock_broker_set_rtt(self._mc, broker_id, rtt_ms),
                f"setting the rtt of broker {broker_id}",
            )
            self._rtt_ms[broker_id] = rtt_ms

    def push_request_errors(self, api_key: int, errors: list[int]) -> None:
        """The next len(errors) requests with this API key fail with these error codes, in order
        (codes as in confluent_kafka.KafkaError, e.g. 6 NOT_LEADER_FOR_PARTITION; 0 lets one through)."""
        if not isinstance(api_key, int) or isinstance(api_key, bool) or not 0 <= api_key < 2**15:
            raise ClusterError(f"api key must be a Kafka API key number (0 Produce, 1 Fetch, ...), got {api_key!r}")
        if not errors or not all(isinstance(e, int) and not isinstance(e, bool) for e in errors):
            raise ClusterError(f"errors must be a non-empty list of Kafka error codes, got {errors!r}")
        arr = (ctypes.c_int * len(errors))(*errors)
        with self._lock:
            self._require_open()
            self._lib.rd_kafka_mock_push_request_errors_array(self._mc, api_key, len(errors), arr)

    def clear_request_errors(self, api_key: int) -> None:
        if not isinstance(api_key, int) or isinstance(api_key, bool) or not 0 <= api_key < 2**15:
            raise ClusterError(f"api key must be a Kafka API key number (0 Produce, 1 Fetch, ...), got {api_key!r}")
        with self._lock:
            self._require_open()
            self._lib.rd_kafka_mock_clear_request_errors(self._mc, api_key)

    def close(self) -> None:
        with self._lock:
            if self._mc:
                self._lib.rd_kafka_mock_cluster_destroy(self._mc)
                self._mc = None
            if self._rk:
                self._lib.rd_kafka_destroy(self._rk)
                self._rk = None

    def __enter__(self) -> MockCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
