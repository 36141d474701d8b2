"""Integration fixtures: one embedded Kafka-protocol cluster per test session, in its own process.

Loaded by tests/conftest.py (`pytest_plugins`). The cluster runs as `bcl cluster up --control ...`
in a subprocess, so the producers and consumers under test never share a process with the brokers;
faults are injected through the handle (see infra/cluster_control.py). Mark tests that use it with
@pytest.mark.integration.

Tests share the catalogue topics; a test that injects faults or needs an empty topic creates its
own with `topic_factory` and uses its own consumer group from `group_id`, and puts back any broker
it took down or any delay it added.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.cluster_control import ClusterHandle


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    """A running 3-broker embedded cluster with every catalogue topic; data dir is a fresh temp dir."""
    data_dir: Path = tmp_path_factory.mktemp("cluster")
    handle = ClusterHandle.start(brokers=3, data_dir=data_dir)
    try:
        yield handle
    finally:
        handle.stop()


def _unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topic_factory(cluster: ClusterHandle) -> Callable[..., str]:
    """make_topic(partitions=3, replication_factor=3, prefix="test") -> a new, uniquely named topic."""

    def make_topic(partitions: int = 3, replication_factor: int = 3, prefix: str = "test") -> str:
        name = _unique(prefix)
        cluster.create_topic(name, partitions, replication_factor)
        return name

    return make_topic


@pytest.fixture
def group_id(request: pytest.FixtureRequest) -> str:
    """A consumer group id no other test uses (named after the test, for the cluster log)."""
    return _unique(f"test.{request.node.name[:40]}")
