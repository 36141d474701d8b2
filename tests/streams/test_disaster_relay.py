"""The disaster store and its relay against real parts (issue 9, items 1 and 8): the installed `bcl` in
subprocesses, the embedded cluster in its own process (one per test: they stop, restart and replace it), the
SQLite store on disk. What is acknowledged (a printed disaster id) is never lost: not when the relay dies between
the broker's acknowledgement and its mark (it sends the event again, with the same event id), not when the
cluster is down when staff declare, not when the cluster is replaced by an empty one (the relay fills it again
from the store)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import topics
from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from streams.commands.exit_status import EXIT_CLUSTER_UNAVAILABLE
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

BCL = Path(sys.executable).parent / "bcl"
SERDE = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.DISASTER_EVENTS])


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[ClusterHandle]:
    handle = ClusterHandle.start(brokers=3, data_dir=tmp_path / "cluster-a")
    try:
        yield handle
    finally:
        handle.stop()


def environment(data_dir: Path, cluster: ClusterHandle | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCL_")}
    env |= {"BCL_DATA_DIR": str(data_dir), "BCL_LOG_LEVEL": "warning", **extra}
    if cluster is not None:
        env["BCL_BOOTSTRAP_SERVERS"] = cluster.bootstrap_servers
    return env


def bcl(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BCL), "disaster", *args], capture_output=True, text=True, env=env, timeout=timeout)


def declare(env: dict[str, str], name: str, *codes: str, occurred_at: str = "2026-11-20T14:46") -> str:
    args = [a for code in codes for a in ("--municipality", code)]
    done = bcl(env, "declare", *args, "--name", name, "--kind", "earthquake", "--occurred-at", occurred_at)
    # No backup here: each municipality is declared without a ledger, one line each (the ledger's own tests).
    assert done.returncode == 0, done
    assert all(": no ledger yet (" in line for line in done.stderr.splitlines()), done
    return done.stdout.strip()


def outbox(env: dict[str, str]) -> dict[str, int]:
    done = bcl(env, "list", "--json")
    assert done.returncode == 0, done
    events: dict[str, int] = json.loads(done.stdout)["events"]
    return events


def published(cluster: ClusterHandle) -> list[tuple[bytes, dict[str, Any], bytes]]:
    """(key, decoded event, raw value) of every message on bcl.disaster.events, by outbox sequence."""
    messages = read_topic(cluster.bootstrap_servers, topics.DISASTER_EVENTS)
    found = [(m.key(), SERDE.decode(m.value()), m.value()) for m in messages]
    return sorted(found, key=lambda f: f[1]["sequence"])


def relay_until_published(env: dict[str, str], *extra: str) -> dict[str, int]:
    done = bcl(env, "relay", "--until-published", *extra)
    assert done.returncode == 0, done
    totals: dict[str, int] = json.loads(done.stdout)
    return totals


def test_declared_closed_and_relayed_as_one_event_each(own_cluster: ClusterHandle, tmp_path: Path) -> None:
    env = environment(tmp_path / "var", own_cluster)
    onagawa_tanabe = declare(env, "令和8年紀伊半島沖地震", "302066", "045811", "302066")
    assert bcl(env, "close", onagawa_tanabe, "--at", "2026-12-01T09:00").returncode == 0
    assert outbox(env) == {"published": 0, "unpublished": 2}

    assert relay_until_published(env)["published"] == 2
    assert outbox(env) == {"published": 2, "unpublished": 0}
    [(key, declared, _), (_, closed, _)] = published(own_cluster)
    assert key == onagawa_tanabe.encode()
    assert (declared["event_type"], declared["sequence"], declared["kind"], declared["municipality_codes"]) == \
        ("DECLARED", 1, "EARTHQUAKE", ["045811", "302066"])
    assert declared["occurred_at"].isoformat() == "2026-11-20T05:46:00+00:00" and declared["closed_at"] is None
    assert (closed["event_type"], closed["sequence"], closed["closed_at"].isoformat()) == \
        ("CLOSED", 2, "2026-12-01T00:00:00+00:00")
    assert declared["event_id"] != closed["event_id"]
    assert relay_until_published(env)["published"] == 0  # nothing is sent twice without a reason


def test_a_relay_killed_between_delivery_and_mark_sends_again_with_the_same_event_id(
        own_cluster: ClusterHandle, tmp_path: Path) -> None:
    env = environment(tmp_path / "var", own_cluster)
    disaster_id = declare(env, "令和8年台風第21号", "302066")

    crashed = bcl(env | {"BCL_CRASH_POINT": "disaster_relay.after_delivery"}, "relay", "--until-published")
    assert crashed.returncode == CRASH_EXIT_STATUS, crashed
    [(_, first, first_bytes)] = published(own_cluster)  # the broker has it…
    assert outbox(env) == {"published": 0, "unpublished": 1}  # …the store did not record it

    assert relay_until_published(env)["published"] == 1
    copies = published(own_cluster)
    assert [event["event_id"] for _, event, _ in copies] == [first["event_id"]] * 2
    assert {raw for _, _, raw in copies} == {first_bytes}  # the very bytes written with the declaration
    assert first["disaster_id"] == disaster_id
    assert outbox(env) == {"published": 1, "unpublished": 0}


def test_declared_while_the_cluster_is_down_then_published_when_it_is_up(own_cluster: ClusterHandle,
                                                                        tmp_path: Path) -> None:
    # No cluster at all: declaring needs none, and the id printed means the declaration is stored.
    offline = environment(tmp_path / "var")
    before = declare(offline, "令和8年能登豪雨", "045811", occurred_at="2026-11-21")
    refused = bcl(offline, "relay", "--until-published")
    assert refused.returncode == EXIT_CLUSTER_UNAVAILABLE and refused.stderr.startswith("error:"), refused

    # A running relay whose every broker goes down: it keeps the events and retries until they are taken.
    env = environment(tmp_path / "var", own_cluster)
    relay = subprocess.Popen([str(BCL), "disaster", "relay", "--delivery-timeout", "2"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: outbox(env)["unpublished"] == 0, "the declaration made offline to be published")
        for broker in (1, 2, 3):
            own_cluster.broker_down(broker)
        try:
            during = declare(env, "令和8年能登豪雨 (二次災害)", "045811", occurred_at="2026-11-22")
            time.sleep(4)  # longer than the delivery timeout: a batch failed and is retried
            assert outbox(env)["unpublished"] == 1
        finally:
            for broker in (1, 2, 3):
                own_cluster.broker_up(broker)
        _wait_for(lambda: outbox(env)["unpublished"] == 0, "the declaration made while down to be published")
    finally:
        relay.send_signal(signal.SIGTERM)
        _, err = relay.communicate(timeout=60)
    assert relay.returncode == 0, err
    events = [event for _, event, _ in published(own_cluster)]
    assert [e["disaster_id"] for e in events][:1] == [before] and during in {e["disaster_id"] for e in events}
    assert len({e["event_id"] for e in events}) == 2  # each declared once (a retry may have duplicates)


def test_a_new_empty_cluster_is_filled_again_from_the_store(own_cluster: ClusterHandle, tmp_path: Path) -> None:
    env = environment(tmp_path / "var", own_cluster)
    first = declare(env, "令和8年紀伊半島沖地震", "302066")
    declare(env, "令和8年宮城県沖地震", "045811")
    assert bcl(env, "close", first).returncode == 0
    relay_until_published(env)
    before = published(own_cluster)
    assert len(before) == 3
    own_cluster.stop()

    with ClusterHandle.start(brokers=3, data_dir=tmp_path / "cluster-b") as new_cluster:
        env = environment(tmp_path / "var", new_cluster)
        assert relay_until_published(env) == {"published": 3, "republished": 3, "outbox_published": 3,
                                              "outbox_unpublished": 0}
        after = published(new_cluster)
        assert [(key, raw) for key, _, raw in after] == [(key, raw) for key, _, raw in before]  # same order, bytes
        assert relay_until_published(env)["republished"] == 0  # this cluster holds them now

        # On request: every event again, for a downstream that rebuilds.
        done = bcl(env, "republish")
        assert done.returncode == 0, done
        assert json.loads(done.stdout)["published"] == 3
        assert len(published(new_cluster)) == 6


def test_sigkill_of_a_running_relay_loses_nothing(own_cluster: ClusterHandle, tmp_path: Path) -> None:
    env = environment(tmp_path / "var", own_cluster)
    declared = []
    for round_ in range(3):
        relay = subprocess.Popen([str(BCL), "disaster", "relay"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        for i in range(3):
            declared.append(declare(env, f"令和8年豪雨 第{round_}-{i}報", "302066"))
        relay.send_signal(signal.SIGKILL)  # wherever it is: producing, waiting for acks, marking
        relay.wait(timeout=30)
    relay_until_published(env)
    assert outbox(env) == {"published": 9, "unpublished": 0}
    events = [event for _, event, _ in published(own_cluster)]
    assert {e["disaster_id"] for e in events} == set(declared)  # nothing acknowledged is lost
    assert len({e["event_id"] for e in events}) == 9  # each declaration is one event, however often sent


def _wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)
