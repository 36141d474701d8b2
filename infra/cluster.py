"""The embedded Kafka-protocol cluster: librdkafka's mock cluster driven through ctypes.

librdkafka (shipped inside the confluent-kafka wheel) contains a small Kafka-protocol broker
implementation used for its own tests. Any Kafka client can talk to it over TCP. This module
loads that very library, creates a cluster of N brokers on 127.0.0.1, creates the topics of the
catalogue, and exposes the fault-injection calls tests need. It lives as long as its process.
"""

from __future__ import annotations

import ctypes
import glob
import os
from dataclasses import dataclass
from typing import Iterable

import confluent_kafka

from infra.topics import CATALOGUE, TopicSpec

_RD_KAFKA_PRODUCER = 0


class ClusterError(RuntimeError):
    """The embedded cluster could not be created or refused an operation."""


def _load_librdkafka() -> ctypes.CDLL:
    package_dir = os.path.dirname(confluent_kafka.__file__)
    candidates = glob.glob(os.path.join(package_dir, os.pardir, "confluent_kafka.libs", "librdkafka*.so*"))
    if not candidates:
        raise ClusterError(
            "librdkafka was not found inside the confluent-kafka wheel; "
            "install confluent-kafka from a binary wheel (pip install confluent-kafka)"
        )
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
    """A running embedded cluster. Use as a context manager or call close()."""

    def __init__(self, brokers: int = 3, topics: Iterable[TopicSpec] = CATALOGUE, controller_id: int = 1) -> None:
        if brokers < 1:
            raise ClusterError(f"brokers must be at least 1, got {brokers}")
        self._lib = _load_librdkafka()
        self.brokers = brokers
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
            raise ClusterError("librdkafka refused to create the mock cluster")
        # Admin clients (DescribeCluster, metadata controller) need a controller id.
        self._lib.rd_kafka_mock_set_controller_id(self._mc, controller_id)
        for spec in topics:
            self.create_topic(spec)

    @property
    def bootstrap_servers(self) -> str:
        return self._lib.rd_kafka_mock_cluster_bootstraps(self._mc).decode()

    def _check(self, err: int, what: str) -> None:
        if err:
            raise ClusterError(f"{what}: {self._lib.rd_kafka_err2str(err).decode()}")

    def create_topic(self, spec: TopicSpec) -> None:
        replication = min(spec.replication_factor, self.brokers)
        self._check(
            self._lib.rd_kafka_mock_topic_create(self._mc, spec.name.encode(), spec.partitions, replication),
            f"creating topic {spec.name}",
        )

    # -- fault injection -------------------------------------------------------------------
    def broker_down(self, broker_id: int) -> None:
        self._check(self._lib.rd_kafka_mock_broker_set_down(self._mc, broker_id), f"taking broker {broker_id} down")

    def broker_up(self, broker_id: int) -> None:
        self._check(self._lib.rd_kafka_mock_broker_set_up(self._mc, broker_id), f"bringing broker {broker_id} up")

    def set_leader(self, topic: str, partition: int, broker_id: int) -> None:
        self._check(
            self._lib.rd_kafka_mock_partition_set_leader(self._mc, topic.encode(), partition, broker_id),
            f"moving the leader of {topic}[{partition}] to broker {broker_id}",
        )

    def set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        self._check(self._lib.rd_kafka_mock_broker_set_rtt(self._mc, broker_id, rtt_ms), f"setting rtt of broker {broker_id}")

    def push_request_errors(self, api_key: int, errors: list[int]) -> None:
        """The next len(errors) requests with this API key fail with these error codes, in order."""
        arr = (ctypes.c_int * len(errors))(*errors)
        self._lib.rd_kafka_mock_push_request_errors_array(self._mc, api_key, len(errors), arr)

    def clear_request_errors(self, api_key: int) -> None:
        self._lib.rd_kafka_mock_clear_request_errors(self._mc, api_key)

    def close(self) -> None:
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
