"""Issue 8 item 7: one municipality cannot write another's register, nor take over its card holders.

Against the embedded cluster: every message goes through the real adapter path (streams.adapter) or, for
the attacks, straight onto the topic; the materialiser of the test's platform verifies against the trust
store of its data dir."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

from domain.register_signature import SIGNATURE_HEADER, SignatureHeader
from domain.register_validation import message_key
from infra import kafka
from infra.cluster_control import ClusterHandle
from infra.municipal_keys import MunicipalKeyring
from infra.register_signing import RegisterSigner
from schemas.contracts import CONTRACTS
from schemas.wire import AvroSerde
from streams.adapter import publish, publish_signed, sign_messages
from streams.card_lifecycle import CardLifecycleTopics
from streams.materialiser import MaterialiserTopics
from streams.platform import Platform
from streams.resident_directory import ResidentDirectory
from tests.factories import make_change, make_resident
from tests.platforms import make_platform
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

TANABE, ONAGAWA = "302066", "045811"
SERIAL = "00000000000abc01"


def card(serial: str = SERIAL) -> dict[str, Any]:
    return {"serial": serial, "kind": "CARD", "not_before": dt.date(2025, 4, 1), "not_after": dt.date(2030, 4, 1)}


def names_for(topic_factory) -> MaterialiserTopics:  # type: ignore[no-untyped-def]
    return MaterialiserTopics(diffs=topic_factory(3), residents=topic_factory(3), dlq=topic_factory(1))


def materialise(platform: Platform, names: MaterialiserTopics, group_id: str) -> dict[str, int]:
    return platform.materialiser(group_id=group_id, topic_names=names, flush_seconds=0.2).run(
        until_caught_up=True, idle_seconds=0.5).as_dict()


def dead_letters(cluster: ClusterHandle, platform: Platform, names: MaterialiserTopics) -> list[dict[str, Any]]:
    serde = AvroSerde(platform.registry, CONTRACTS["bcl.dlq"])
    return [serde.decode(m.value()) for m in read_topic(cluster.bootstrap_servers, names.dlq)]


def residents(cluster: ClusterHandle, platform: Platform, names: MaterialiserTopics) -> dict[bytes, dict | None]:
    serde = AvroSerde(platform.registry, CONTRACTS["bcl.residents"])
    out: dict[bytes, dict | None] = {}
    for m in read_topic(cluster.bootstrap_servers, names.residents):
        out[m.key()] = None if m.value() is None else serde.decode(m.value())
    return out


def holders(platform: Platform, serial: str = SERIAL) -> list[tuple[str, str, str]]:
    directory = ResidentDirectory()
    directory.load_snapshot(platform.snapshot_store)
    return [(r["municipality_code"], r["resident_code"], r["status"]) for r in directory.by_serial(serial)]


def test_a_serial_held_by_another_municipalitys_resident_is_dead_lettered(
        cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path) -> None:
    names = names_for(topic_factory)
    platform = make_platform(tmp_path, cluster)
    registry, signers = platform.registry, platform.register_signer
    holder = make_resident(TANABE, 1, jpki_certificates=[card()])
    # 045811 lists the 302066 resident's serial: in the same run as the holder, and for one of its own
    # residents that already exists (a change, not a new record).
    publish([make_change(1, holder, municipality_code=TANABE)], cluster.bootstrap_servers, registry, signers,
            topic=names.diffs)
    publish([make_change(1, make_resident(ONAGAWA, 1), municipality_code=ONAGAWA),
             make_change(2, make_resident(ONAGAWA, 2, jpki_certificates=[card()]), municipality_code=ONAGAWA),
             make_change(3, make_resident(ONAGAWA, 1, jpki_certificates=[card()]), municipality_code=ONAGAWA,
                         change_type="CARD_ISSUED")],
            cluster.bootstrap_servers, registry, signers, topic=names.diffs)
    first = materialise(platform, names, group_id)
    assert (first["applied"], first["dead_lettered"]) == (2, 2)

    # After a restart the holders are rebuilt from the snapshot store: a later attempt is refused too.
    publish([make_change(4, make_resident(ONAGAWA, 4, jpki_certificates=[card(), card("00000000000abc02")]),
                         municipality_code=ONAGAWA, change_type="MOVE_IN")],
            cluster.bootstrap_servers, registry, signers, topic=names.diffs)
    second = materialise(platform, names, group_id)
    assert (second["applied"], second["dead_lettered"]) == (0, 1)

    letters = dead_letters(cluster, platform, names)
    assert [d["reason_code"] for d in letters] == ["SERIAL_IN_USE"] * 3
    assert all(SERIAL not in d["reason"] and TANABE in d["reason"] for d in letters)  # says where, not whose
    assert holders(platform) == [(TANABE, holder["resident_code"], "CURRENT")]  # the resident still resolves
    published = residents(cluster, platform, names)
    assert published[message_key(TANABE, holder["resident_code"])] == holder
    assert published[message_key(ONAGAWA, f"{1:011d}")]["jpki_certificates"] == []  # its own record untouched
    assert message_key(ONAGAWA, f"{2:011d}") not in published

    # The serial is free once its holder is no longer current (moved out): the new municipality may list it.
    moved_out = {**holder, "status": "DELETED", "deletion_reason": "MOVE_OUT", "deleted_on": dt.date(2026, 11, 10)}
    publish([make_change(2, moved_out, municipality_code=TANABE, change_type="MOVE_OUT")],
            cluster.bootstrap_servers, registry, signers, topic=names.diffs)
    assert materialise(platform, names, group_id)["applied"] == 1
    publish([make_change(2, make_resident(ONAGAWA, 2, jpki_certificates=[card()]), municipality_code=ONAGAWA,
                         change_type="MOVE_IN")], cluster.bootstrap_servers, registry, signers, topic=names.diffs)
    assert materialise(platform, names, group_id)["applied"] == 1  # fills the gap the refused event left
    assert sorted(holders(platform)) == [(ONAGAWA, f"{2:011d}", "CURRENT"),
                                         (TANABE, holder["resident_code"], "DELETED")]


def test_an_event_signed_with_another_municipalitys_key_is_dead_lettered(
        cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path) -> None:
    names = names_for(topic_factory)
    platform = make_platform(tmp_path, cluster)
    serde = AvroSerde(platform.registry, CONTRACTS["bcl.register.diffs"])
    genuine = make_resident(TANABE, 1, jpki_certificates=[card()])
    forged = make_resident(TANABE, 1, family_name="偽者", jpki_certificates=[card("00000000000bad01")])

    def message(record: dict[str, Any], sequence: int) -> tuple[bytes, bytes]:
        return message_key(TANABE, record["resident_code"]), serde.encode(make_change(sequence, record))

    publish_signed([(TANABE, *message(genuine, 1))], cluster.bootstrap_servers, platform.register_signer,
                   topic=names.diffs)
    platform.register_signer(ONAGAWA)  # 045811's key is registered: it signs, but only for 045811
    publish_signed([(ONAGAWA, *message(forged, 2))], cluster.bootstrap_servers, platform.register_signer,
                   topic=names.diffs)
    counters = materialise(platform, names, group_id)
    assert (counters["applied"], counters["dead_lettered"]) == (1, 1)
    [letter] = dead_letters(cluster, platform, names)
    assert letter["reason_code"] == "SIGNER_MISMATCH" and ONAGAWA in letter["reason"]
    assert residents(cluster, platform, names) == {message_key(TANABE, genuine["resident_code"]): genuine}
    assert holders(platform) == [(TANABE, genuine["resident_code"], "CURRENT")]


def test_unsigned_tampered_or_foreign_signed_messages_are_dead_lettered(
        cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path) -> None:
    names = names_for(topic_factory)
    platform = make_platform(tmp_path, cluster)
    serde = AvroSerde(platform.registry, CONTRACTS["bcl.register.diffs"])
    records = [make_resident(TANABE, n) for n in range(1, 10)]
    messages = [(TANABE, message_key(TANABE, r["resident_code"]), serde.encode(make_change(n, r)))
                for n, r in enumerate(records, start=1)]
    signed = list(sign_messages(messages, platform.register_signer))
    # A key of 302066 that BCL never registered (someone else's key file), and a registered key revoked later.
    stranger = RegisterSigner(MunicipalKeyring(tmp_path / "elsewhere").create(TANABE))
    rotated = MunicipalKeyring(tmp_path / "old").create(TANABE)
    old_key_id = platform.trust_store.register(TANABE, rotated.public_pem())
    platform.trust_store.revoke(old_key_id)
    (k1, v1, _), (k2, v2, h2), (k3, v3, h3), (k4, v4, _), (k5, v5, _), (k6, v6, _), (k7, v7, _), \
        (_, v8, h8), good = signed
    header = SignatureHeader.decode(h3[0][1])
    assert header is not None
    bad_path = SignatureHeader(header.key_id, header.signature, header.index, header.run_length,
                               b"\x00" * 32 + header.path[32:]).encode()
    tampered = v2.replace("一郎".encode(), "次郎".encode())
    assert tampered != v2
    swapped = message_key(TANABE, "00000000099")
    attacks = {
        k1: (v1, None, "UNSIGNED"),
        k2: (tampered, h2, "BAD_SIGNATURE"),  # the value changed after signing
        k3: (v3, [(SIGNATURE_HEADER, bad_path)], "BAD_SIGNATURE"),  # a path that does not lead to the signed root
        k4: (v4, stranger.sign_run([(k4, v4)])[0], "UNKNOWN_SIGNING_KEY"),  # an unregistered key
        k5: (v5, RegisterSigner(rotated).sign_run([(k5, v5)])[0], "UNKNOWN_SIGNING_KEY"),  # a revoked key
        k6: (v6, [(SIGNATURE_HEADER, b"not a signature")], "BAD_SIGNATURE"),
        k7: (v7, [("other", b"x"), (SIGNATURE_HEADER, None)], "UNSIGNED"),  # a header without a value
        swapped: (v8, h8, "BAD_SIGNATURE"),  # a signed value under another key
    }
    producer = kafka.make_producer(cluster.bootstrap_servers)
    for key, (value, headers, _) in attacks.items():
        kafka.produce(producer, names.diffs, value, key, headers=headers)
    kafka.produce(producer, names.diffs, good[1], good[0], headers=good[2])
    assert producer.flush(10) == 0

    counters = materialise(platform, names, group_id)
    assert (counters["consumed"], counters["applied"], counters["dead_lettered"]) == (9, 1, 8)
    assert {d["key"]: d["reason_code"] for d in dead_letters(cluster, platform, names)} == {
        key: reason for key, (_, _, reason) in attacks.items()}
    assert list(residents(cluster, platform, names)) == [good[0]]


def test_a_forged_copy_of_an_accepted_event_does_not_revoke_a_card(
        cluster: ClusterHandle, topic_factory, group_id: str, tmp_path: Path) -> None:
    """The card lifecycle acts on the change the backup applied (its history row), not on the message: an
    unsigned copy of an accepted event that drops the resident's card changes nothing in the PKI."""
    names = names_for(topic_factory)
    revocations = topic_factory(1)
    platform = make_platform(tmp_path, cluster)
    key_pool = platform.key_pool(4)
    keys = itertools.cycle(key_pool.load())
    platform.pki.initialise(dt.datetime(2020, 1, 1, tzinfo=dt.UTC), key_factory=lambda: next(keys))
    resident = make_resident(TANABE, 1, jpki_certificates=[card()])
    moved = {**resident, "address": {**resident["address"], "block": "9番9号"}}
    publish([make_change(1, resident), make_change(2, moved, change_type="MOVE_WITHIN")],
            cluster.bootstrap_servers, platform.registry, platform.register_signer, topic=names.diffs)
    forged = make_change(2, {**moved, "jpki_certificates": []}, change_type="CARD_REVOKED")  # same event id
    producer = kafka.make_producer(cluster.bootstrap_servers)
    kafka.produce(producer, names.diffs, AvroSerde(platform.registry, CONTRACTS["bcl.register.diffs"]).encode(forged),
                  message_key(TANABE, resident["resident_code"]))
    assert producer.flush(10) == 0
    assert materialise(platform, names, group_id)["dead_lettered"] == 1

    counters = platform.card_lifecycle(
        key_pool, group_id=f"{group_id}.cards", backup_group_id=group_id,
        topic_names=CardLifecycleTopics(names.diffs, revocations), watermark_seconds=0.1,
    ).run(until_caught_up=True, idle_seconds=0.3).as_dict()
    assert counters["issued"] == 1 and counters["revoked"] == 0
    assert platform.pki.index.get(SERIAL) is not None and platform.pki.index.revocation(SERIAL) is None
