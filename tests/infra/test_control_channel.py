"""The control channel of the embedded cluster: refusals are clear, and `bcl cluster up` cleans up after itself."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from infra.cluster_control import ClusterHandle, ControlError
from infra.topics import CATALOGUE, DLQ
from streams.cli import cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.broker_down(9), "no broker 9: broker ids are 1 to 3"),
        (lambda c: c.broker_up(0), "no broker 0: broker ids are 1 to 3"),
        (lambda c: c.set_rtt(2, -5), "rtt must be a whole number of milliseconds, at least 0, got -5"),
        (lambda c: c.set_leader("no.such.topic", 0, 1), "unknown topic 'no.such.topic': create it first"),
        (lambda c: c.set_leader(DLQ, 3, 1), "topic bcl.dlq has partitions 0 to 2, not 3"),
        (lambda c: c.set_leader(DLQ, 0, 4), "no broker 4"),
        (lambda c: c.create_topic(DLQ, 3), "creating topic bcl.dlq: it already exists"),
        (lambda c: c.create_topic("bad name!", 3), "invalid topic name 'bad name!'"),
        (lambda c: c.create_topic("test.zero", 0), "partitions must be 1 to 10000, got 0"),
        (lambda c: c.push_request_errors(0, []), "errors must be a non-empty list of Kafka error codes"),
        (lambda c: c.request("reboot"), "unknown op 'reboot'; known ops: broker_down, broker_up"),
        (lambda c: c.request("broker_down"), "broker_down: missing broker (expects broker)"),
        (lambda c: c.request("set_rtt", broker=1, rtt_ms=5, colour="red"), "set_rtt: unexpected colour"),
    ],
)
def test_refused_commands_say_what_was_wrong(cluster: ClusterHandle, call: Callable[[ClusterHandle], object],
                                            message: str) -> None:
    with pytest.raises(ControlError, match=re.escape(message)):
        call(cluster)
    state = cluster.state()
    assert state["down"] == [] and state["rtt_ms"] == {}
    assert "test.zero" not in state["topics"]


def test_malformed_lines_are_answered_and_the_connection_stays_usable(cluster: ClusterHandle) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(cluster.control_path))
        reader = sock.makefile("rb")
        sock.sendall(b"{not json\n[1, 2]\n" + json.dumps({"op": "ping"}).encode() + b"\n")
        replies = [json.loads(reader.readline()) for _ in range(3)]
    assert replies[0]["ok"] is False and "not valid JSON" in replies[0]["error"]
    assert replies[1] == {"ok": False, "error": "the request must be a JSON object, got list"}
    assert replies[2] == {"ok": True, "result": {"pong": True}}


def test_created_topic_is_reported_with_the_replication_factor_applied(cluster: ClusterHandle,
                                                                       topic_factory: Callable[..., str]) -> None:
    name = topic_factory(partitions=5, replication_factor=7)
    assert cluster.state()["topics"][name] == 5
    again = ClusterHandle.connect(cluster.control_path)
    try:
        with pytest.raises(ControlError, match="already exists"):
            again.create_topic(name, 5)
        assert again.bootstrap_servers == cluster.bootstrap_servers
    finally:
        again.stop()  # a handle that only attached leaves the cluster running
    cluster.ping()


def test_cluster_up_writes_the_bootstrap_file_refuses_a_second_one_and_cleans_up(tmp_path: Path) -> None:
    handle = ClusterHandle.start(brokers=1, data_dir=tmp_path)
    bootstrap_file = tmp_path / "cluster" / "bootstrap.servers"
    try:
        assert bootstrap_file.read_text().strip() == handle.bootstrap_servers
        assert handle.state()["topics"] == {spec.name: spec.partitions for spec in CATALOGUE}
        second = subprocess.run(
            [sys.executable, "-m", "streams.cli", "--data-dir", str(tmp_path), "cluster", "up"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        assert second.returncode == 1
        assert f"error: a cluster is already running at {handle.bootstrap_servers}" in second.stderr
    finally:
        handle.stop()
    assert handle.exit_code == 0, "bcl cluster up exits 0 on SIGTERM"
    assert not bootstrap_file.exists()
    assert not handle.control_path.exists()
    log = (tmp_path / "cluster" / "cluster.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in log if line.startswith("{")]
    assert events[0] == "cluster up" and events[-2:] == ["stopping", "cluster down"]


def test_a_cluster_that_cannot_start_reports_why(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match=r"exited with 2 before it was ready: .*--brokers"):
        ClusterHandle.start(brokers=0, data_dir=tmp_path)


def test_catalogue_listing_and_kafka_topics_commands() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["cluster", "topics", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.output)] == [spec.name for spec in CATALOGUE]
    commands = runner.invoke(cli, ["cluster", "topics", "--kafka-topics-commands"])
    assert commands.exit_code == 0, commands.output
    lines = commands.output.splitlines()
    assert len(lines) == len(CATALOGUE)
    assert "--topic bcl.residents --partitions 64 --replication-factor 3 --config cleanup.policy=compact" in lines[1]


def test_a_data_dir_too_deep_for_a_unix_socket_still_gets_a_control_channel(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    handle = ClusterHandle.start(brokers=1, data_dir=deep)
    try:
        assert len(str(handle.control_path)) < 108
        assert (deep / "cluster" / "bootstrap.servers").read_text().strip() == handle.bootstrap_servers
    finally:
        handle.stop()
    assert not handle.control_path.parent.exists()


def test_attaching_to_a_socket_nobody_serves_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match=re.escape(f"control channel {tmp_path / 'none.sock'}: ")):
        ClusterHandle.connect(tmp_path / "none.sock")
