"""The production deployment files agree with the catalogue and the settings.

No Docker engine or Java runs here, so these check the files themselves: the generated topic script
(run with a recorder in place of kafka-topics.sh), the compose file's KRaft and durability settings,
and the two settings processors are configured by. They do not prove the containers start.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from infra.topics import (
    CATALOGUE,
    SINGLE_SITE,
    TWO_CENTRES,
    ScriptLayout,
    TopicSpec,
    kafka_topics_script,
    two_centre_catalogue,
)
from streams.cli import cli
from streams.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "infra" / "production"
# The two generated topic scripts: one site (RF 3), and the cluster stretched over the two centres (RF 4).
LAYOUTS = pytest.mark.parametrize(("layout", "specs"),
                                  [(SINGLE_SITE, CATALOGUE), (TWO_CENTRES, two_centre_catalogue())],
                                  ids=["single-site", "two-centres"])


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PRODUCTION / "docker-compose.yml").read_text())
    return data


def _default(value: str) -> str:
    """The default of a compose interpolation such as ${KAFKA_IMAGE:-apache/kafka:3.9.1}."""
    match = re.fullmatch(r"\$\{\w+:-(.+)\}", value)
    return match.group(1) if match else value


@LAYOUTS
def test_create_topics_script_is_the_generated_one(layout: ScriptLayout, specs: tuple[TopicSpec, ...]) -> None:
    checked_in = (REPO / layout.path).read_text()
    assert checked_in == kafka_topics_script(specs, layout), (
        f"regenerate: bcl cluster topics {layout.option} > {layout.path}"
    )
    printed = CliRunner().invoke(cli, ["cluster", "topics", *layout.option.split()])  # the command the header names
    assert printed.exit_code == 0, printed.output
    assert printed.output == checked_in


def test_two_centre_topics_have_the_replication_of_the_centres_design() -> None:
    """infra/production/centres/README.md: two replicas in each centre (RF 4), min.insync.replicas=2, as the
    centres' broker properties set for the defaults."""
    east = dict(line.split("=", 1) for line in (PRODUCTION / "centres" / "server-east.properties").read_text()
                .splitlines() if line and not line.startswith("#"))
    for spec in two_centre_catalogue():
        assert spec.replication_factor == int(east["default.replication.factor"]) == 4
        assert spec.config["min.insync.replicas"] == east["min.insync.replicas"] == "2"
    assert [s.name for s in two_centre_catalogue()] == [s.name for s in CATALOGUE]


@LAYOUTS
def test_create_topics_script_creates_every_topic_as_catalogued(tmp_path: Path, layout: ScriptLayout,
                                                                specs: tuple[TopicSpec, ...]) -> None:
    record = tmp_path / "calls"
    recorder = tmp_path / "kafka-topics.sh"
    # Stands in for Apache Kafka's kafka-topics.sh: one line per call, arguments separated by a unit separator.
    recorder.write_text('#!/bin/sh\n(IFS="$(printf \'\\037\')"; printf "%s\\n" "$*") >> "$RECORD"\n')
    recorder.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "RECORD": str(record), "KAFKA_TOPICS": str(recorder),
           "BOOTSTRAP_SERVER": "broker-a:9092,broker-b:9092"}
    subprocess.run(["sh", str(REPO / layout.path)], env=env, check=True, timeout=30)
    calls = [line.split("\x1f") for line in record.read_text().splitlines()]
    assert calls[-1] == ["--bootstrap-server", "broker-a:9092,broker-b:9092", "--list"]
    creates = calls[:-1]
    assert len(creates) == len(specs)
    for spec, args in zip(specs, creates, strict=True):
        assert args[:5] == ["--bootstrap-server", "broker-a:9092,broker-b:9092", "--create", "--if-not-exists",
                            "--topic"]
        pairs = list(zip(args[4::2], args[5::2], strict=True))
        assert dict(p for p in pairs if p[0] != "--config") == {
            "--topic": spec.name, "--partitions": str(spec.partitions),
            "--replication-factor": str(spec.replication_factor),
        }
        assert dict(value.split("=", 1) for flag, value in pairs if flag == "--config") == spec.config
    residents = next(args for args in creates if "bcl.residents" in args)
    assert "cleanup.policy=compact" in residents


def test_compose_runs_three_combined_kraft_nodes_with_durable_defaults() -> None:
    services = _compose()["services"]
    nodes = {name: services[name] for name in ("kafka-1", "kafka-2", "kafka-3")}
    voters = {node["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for node in nodes.values()}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    for name, node in nodes.items():
        env = node["environment"]
        node_id = name.rsplit("-", 1)[1]
        assert env["KAFKA_NODE_ID"] == node_id
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert f"PLAINTEXT://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert env["CLUSTER_ID"].startswith("${KAFKA_CLUSTER_ID:?")
        image, _, tag = _default(node["image"]).partition(":")
        assert image == "apache/kafka"
        assert tuple(int(part) for part in tag.split(".")[:2]) >= (3, 7)
        assert node["volumes"] == [f"{name}-data:{env['KAFKA_LOG_DIRS']}"]
    registry = services["schema-registry"]
    assert _default(registry["image"]).startswith("confluentinc/cp-schema-registry:")
    assert registry["environment"]["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == (
        "PLAINTEXT://kafka-1:19092,PLAINTEXT://kafka-2:19092,PLAINTEXT://kafka-3:19092"
    )
    job = services["create-topics"]
    mount = job["volumes"][0].split(":")
    assert (PRODUCTION / mount[0]).resolve() == (PRODUCTION / "create-topics.sh").resolve()
    assert job["entrypoint"] == ["/bin/sh", mount[1]]
    assert set(job["depends_on"]) == set(nodes)


def test_processors_are_pointed_at_production_by_two_settings_only() -> None:
    env = dict(
        line.split("=", 1)
        for line in (PRODUCTION / "bcl.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(env) == {"BCL_BOOTSTRAP_SERVERS", "BCL_SCHEMA_REGISTRY_URL"}
    from_env = load_settings(environ=env)
    from_file = load_settings(environ={}, config_file=PRODUCTION / "bcl.toml.example")
    for settings in (from_env, from_file):
        assert settings.bootstrap_servers == "localhost:29092,localhost:39092,localhost:49092"
        assert settings.schema_registry_url == "http://localhost:8081"
    # The host ports the examples name are the ones the compose file publishes.
    services = _compose()["services"]
    published = {port.split(":")[0] for name in ("kafka-1", "kafka-2", "kafka-3") for port in services[name]["ports"]}
    assert {server.rsplit(":", 1)[1] for server in from_env.bootstrap_servers.split(",")} == published
    assert services["schema-registry"]["ports"] == ["8081:8081"]
