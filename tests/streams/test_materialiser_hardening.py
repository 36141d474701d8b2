"""The materialiser against messages crafted to get past it (issue 8, items 8, 9 and 11): each lands in
the dead-letter topic with its reason, and nothing of it reaches bcl.residents or the history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from domain.japan_time import JST
from domain.register_validation import MAX_SEQUENCE_JUMP, TEXT_LIMITS, message_key
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import HEADER, AvroSerde
from sinks.restore import backup_status
from streams.adapter import publish_signed
from streams.materialiser import Counters, MaterialiserTopics
from tests.factories import make_change, make_resident
from tests.platforms import make_platform
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

MUNI = "302066"
Send = Callable[..., None]


class World:
    """Private topics (one partition, so that messages reach the materialiser in the order sent), a
    producer, and what came out."""

    def __init__(self, cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        self.cluster = cluster
        self.names = MaterialiserTopics(diffs=topic_factory(1), residents=topic_factory(1), dlq=topic_factory(1))
        self.registry = FileSchemaRegistry()
        self.serde = AvroSerde(self.registry, CONTRACTS["bcl.register.diffs"])
        self.outbox: list[tuple[str, bytes | None, bytes]] = []
        self.platform = make_platform(tmp_path, cluster)
        self.group_id = group_id

    def send(self, change: dict[str, Any] | None, value: bytes | None = None, *,
             key: bytes | str | None = "auto") -> None:
        if key == "auto":
            assert change is not None
            key = message_key(change["municipality_code"], change["resident_code"])
        assert not isinstance(key, str)
        assert change is not None or value is not None
        # Signed by the adapter of the event's municipality, as a faulty adapter would send it.
        self.outbox.append((change["municipality_code"] if change is not None else MUNI, key,
                            value if value is not None else self.serde.encode(change)))

    def run(self) -> Counters:
        publish_signed(self.outbox, self.cluster.bootstrap_servers, self.platform.register_signer,
                       topic=self.names.diffs)
        self.outbox.clear()
        materialiser = self.platform.materialiser(group_id=self.group_id, topic_names=self.names)
        return materialiser.run(until_caught_up=True, idle_seconds=0.5)

    def dead_letters(self) -> list[dict[str, Any]]:
        serde = AvroSerde(self.registry, CONTRACTS["bcl.dlq"])
        return [serde.decode(m.value()) for m in read_topic(self.cluster.bootstrap_servers, self.names.dlq)]

    def residents(self) -> dict[bytes, Any]:
        serde = AvroSerde(self.registry, CONTRACTS["bcl.residents"])
        return {m.key(): None if m.value() is None else serde.decode(m.value())
                for m in read_topic(self.cluster.bootstrap_servers, self.names.residents)}

    def status(self) -> Any:
        [status] = [s for s in backup_status(self.platform.snapshot_store) if s.municipality_code == MUNI]
        return status


@pytest.fixture
def world(cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path) -> World:  # type: ignore[no-untyped-def]
    return World(cluster, topic_factory, group_id, tmp_path)


def test_two_malformed_messages_that_decode_when_joined_are_both_dead_lettered(world: World) -> None:
    """Item 8: A = R1 without its last 40 bytes, B = those 40 bytes + R2. Each fails alone; read as one
    stream they are R1 and R2, with the right count and the canary intact."""
    good = [make_change(i, make_resident(MUNI, i)) for i in (1, 2, 5, 6)]
    r1, r2 = make_change(3, make_resident(MUNI, 3)), make_change(4, make_resident(MUNI, 4))
    v1, v2 = world.serde.encode(r1), world.serde.encode(r2)
    a, b = v1[:-40], v1[:HEADER.size] + v1[-40:] + v2[HEADER.size:]
    for alone in (a, b):
        with pytest.raises(Exception):  # noqa: B017  (whatever fastavro raises for these bytes)
            world.serde.decode(alone)
    for change in good[:2]:
        world.send(change)
    world.send(r1, a)
    world.send(r2, b)
    for change in good[2:]:
        world.send(change)

    counters = world.run()

    assert (counters.consumed, counters.applied, counters.dead_lettered) == (6, 4, 2)
    letters = world.dead_letters()
    assert [d["reason_code"] for d in letters] == ["MALFORMED", "MALFORMED"]
    assert [d["value"] for d in letters] == [a, b]
    assert set(world.residents()) == {message_key(MUNI, f"{i:011d}") for i in (1, 2, 5, 6)}
    assert world.status().missing == 2  # 3 and 4 never arrived readable


def test_a_message_with_extra_bytes_after_the_record_is_dead_lettered(world: World) -> None:
    """Item 8: trailing bytes in a message of a batch are not silently dropped either."""
    changes = [make_change(i, make_resident(MUNI, i)) for i in (1, 2, 3)]
    world.send(changes[0])
    world.send(changes[1], world.serde.encode(changes[1]) + b"\x00")
    world.send(changes[2])
    counters = world.run()
    assert (counters.applied, counters.dead_lettered) == (2, 1)
    assert [d["reason_code"] for d in world.dead_letters()] == ["MALFORMED"]


def test_invalid_messages_of_item_11_are_dead_lettered(world: World) -> None:
    """Item 11: no key, a well-formed but non-existent municipality, a 900 KB name, event times in 2999
    and before the register existed — each once in a batch (fast path) among good messages."""
    world.send(make_change(1, make_resident(MUNI, 1)))
    world.send(make_change(2, make_resident(MUNI, 2)), key=None)
    world.send(make_change(1, make_resident("999997", 2), municipality_code="999997"))
    world.send(make_change(3, make_resident(MUNI, 3, family_name="名" * 300_000)))  # 900 KB of UTF-8
    world.send(make_change(4, make_resident(MUNI, 4), event_time=dt.datetime(2999, 1, 1, tzinfo=JST)))
    world.send(make_change(5, make_resident(MUNI, 5), event_time=dt.datetime(1950, 1, 1, tzinfo=JST)))
    long_building = "x" * (TEXT_LIMITS["address.building"] + 1)
    address = {**make_resident()["address"], "building": long_building}
    world.send(make_change(6, make_resident(MUNI, 6, address=address)))
    world.send(make_change(7, make_resident(MUNI, 7)))

    counters = world.run()

    assert (counters.consumed, counters.applied, counters.dead_lettered) == (8, 2, 6)
    codes = [d["reason_code"] for d in world.dead_letters()]
    assert codes == ["MISSING_KEY", "UNKNOWN_MUNICIPALITY", "FIELD_TOO_LONG", "BAD_EVENT_TIME", "BAD_EVENT_TIME",
                     "FIELD_TOO_LONG"]
    reasons = [d["reason"] for d in world.dead_letters()]
    assert "family_name" in reasons[2] and "名" not in reasons[2]  # names the field, never its content
    assert set(world.residents()) == {message_key(MUNI, f"{i:011d}") for i in (1, 7)}


def test_invalid_messages_of_item_11_are_dead_lettered_message_by_message(world: World) -> None:
    """The same rules on the message-by-message path (taken by a batch holding a malformed body)."""
    world.send(make_change(1, make_resident(MUNI, 1)), b"\x00\x00\x00\x00\x01not avro")
    world.send(make_change(2, make_resident(MUNI, 2)), key=None)
    world.send(make_change(1, make_resident("999997", 2), municipality_code="999997"))
    world.send(make_change(3, make_resident(MUNI, 3, given_name="名" * 300_000)))
    world.send(make_change(4, make_resident(MUNI, 4), event_time=dt.datetime(2999, 1, 1, tzinfo=JST)))
    counters = world.run()
    assert (counters.consumed, counters.applied, counters.dead_lettered) == (5, 0, 5)
    assert [d["reason_code"] for d in world.dead_letters()] == [
        "MALFORMED", "MISSING_KEY", "UNKNOWN_MUNICIPALITY", "FIELD_TOO_LONG", "BAD_EVENT_TIME"]


def test_far_ahead_sequences_are_bounded_by_the_contiguous_watermark(world: World) -> None:
    """Item 9: the jump limit is measured from what is contiguous, so a forged jump cannot be followed
    by another one that moves the limit further."""
    for i in (1, 2, 3):
        world.send(make_change(i, make_resident(MUNI, i)))
    first = 3 + MAX_SEQUENCE_JUMP  # at the limit: a gap this long is still possible in a full load
    world.send(make_change(first, make_resident(MUNI, 4)))
    world.send(make_change(first + MAX_SEQUENCE_JUMP - 1, make_resident(MUNI, 5)))  # from the highest: too far
    world.send(make_change(4, make_resident(MUNI, 6)))
    counters = world.run()
    assert (counters.applied, counters.dead_lettered) == (5, 1)
    [letter] = world.dead_letters()
    assert letter["reason_code"] == "BAD_SEQUENCE" and "contiguous" in letter["reason"]
    assert world.status().last_sequence == first
