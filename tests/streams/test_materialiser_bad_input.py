"""Bad input: each kind lands where specified, the processor keeps running, and nothing is lost:
events in = applied + duplicates + dead letters."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.register_validation import message_key
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde, frame
from sinks.restore import backup_status
from streams.adapter import publish_signed
from streams.materialiser import MaterialiserTopics
from tests.factories import make_change, make_resident
from tests.platforms import make_platform
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

MUNI = "302066"


def test_bad_input_lands_where_specified(cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path) -> None:
    names = MaterialiserTopics(diffs=topic_factory(3), residents=topic_factory(3), dlq=topic_factory(1))
    registry = FileSchemaRegistry()
    serde = AvroSerde(registry, CONTRACTS["bcl.register.diffs"])
    platform = make_platform(tmp_path, cluster)
    outbox: list[tuple[str, bytes, bytes]] = []

    def send(change: dict, value: bytes | None = None) -> None:
        """Signed by 302066's adapter, as the bad bytes of a faulty adapter would be."""
        key = message_key(change["municipality_code"], change["resident_code"])
        outbox.append((MUNI, key, value if value is not None else serde.encode(change)))

    def flush() -> None:
        publish_signed(outbox, cluster.bootstrap_servers, platform.register_signer, topic=names.diffs)
        outbox.clear()

    good = [make_change(i, make_resident(MUNI, i)) for i in range(1, 6)]
    for change in good:
        send(change)
    send(good[2])  # a duplicate: sequence 3 again
    send(make_change(8, make_resident(MUNI, 8)))  # a gap: 6 and 7 never sent (yet)
    body = serde.encode(make_change(9, make_resident(MUNI, 9)))
    send(make_change(9, make_resident(MUNI, 9)), b"\x00\x00\x00\x00\x01garbage that is not avro")
    send(make_change(9, make_resident(MUNI, 9)), frame(999, body[5:]))  # unknown schema id
    # A bad check digit: no key is ever registered for such a code, so 302066's signature does not cover it.
    send(make_change(9, make_resident("302067", 9), municipality_code="302067"))
    bad_number = make_resident(MUNI, 9, individual_number="123456789011")
    send(make_change(9, bad_number))
    flush()

    store = platform.snapshot_store
    materialiser = platform.materialiser(group_id=group_id, topic_names=names)
    counters = materialiser.run(until_caught_up=True, idle_seconds=0.5)

    assert counters.consumed == 11
    assert counters.applied == 6 and counters.duplicates == 1 and counters.dead_lettered == 4
    assert counters.consumed == counters.applied + counters.duplicates + counters.dead_lettered

    dlq_serde = AvroSerde(registry, CONTRACTS["bcl.dlq"])
    letters = [dlq_serde.decode(m.value()) for m in read_topic(cluster.bootstrap_servers, names.dlq)]
    assert sorted(d["reason_code"] for d in letters) == [
        "BAD_INDIVIDUAL_NUMBER", "MALFORMED", "SIGNER_MISMATCH", "UNKNOWN_SCHEMA_ID"]
    by_code = {d["reason_code"]: d for d in letters}
    assert by_code["MALFORMED"]["value"] == b"\x00\x00\x00\x00\x01garbage that is not avro"
    assert by_code["UNKNOWN_SCHEMA_ID"]["value"][:5] == frame(999, b"")
    assert all(d["topic"] == names.diffs and d["processor"] == "backup-materialiser" for d in letters)
    assert "123456789011" not in by_code["BAD_INDIVIDUAL_NUMBER"]["reason"]  # no personal data in reasons

    resident_serde = AvroSerde(registry, CONTRACTS["bcl.residents"])
    residents = {m.key(): resident_serde.decode(m.value())
                 for m in read_topic(cluster.bootstrap_servers, names.residents)}
    assert len(residents) == 6
    assert residents[message_key(MUNI, f"{8:011d}")] == make_resident(MUNI, 8)

    [status] = backup_status(store)
    assert (status.last_sequence, status.missing, status.gaps, status.residents) == (8, 2, [(6, 7)], 6)

    # The gap closes when the late events arrive; a restarted materialiser resumes where it committed.
    send(make_change(6, make_resident(MUNI, 6)))
    send(make_change(7, make_resident(MUNI, 7)))
    send(good[0])  # and a duplicate across the restart
    flush()
    again = platform.materialiser(group_id=group_id, topic_names=names)
    counters = again.run(until_caught_up=True, idle_seconds=0.5)
    assert (counters.consumed, counters.applied, counters.gap_fills, counters.duplicates) == (3, 2, 2, 1)
    [status] = backup_status(store)
    assert status.complete and status.residents == 8
