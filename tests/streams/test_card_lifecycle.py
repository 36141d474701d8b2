"""Card lifecycle against the embedded cluster: a simulated register (full load and four months of
changes, plus hand-made changes for the rare cases), the backup materialiser, then the processor.
The expected issuances and revocations are derived here from the events themselves."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from certgen.certificate_validation import verify_user_certificate
from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.revocation import revocation_from_record
from domain.card_lifecycle import CertificateEntry
from domain.japan_time import JST
from domain.register_validation import message_key
from infra.cluster_control import ClusterHandle
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.card_client import JpkiCardClient
from kiosk_sim.transport import InProcessTransport
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry
from schemas.wire import AvroSerde
from sinks.snapshot_store import BaseSnapshotStore
from streams.adapter import publish, publish_signed
from streams.card_lifecycle import CardLifecycleTopics, certificate_validity
from streams.materialiser import MaterialiserTopics
from streams.platform import Platform
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from streams.settings import load_settings
from tests.factories import make_change
from tests.platforms import make_platform
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 1, 5, 0, 0, tzinfo=JST)  # January to early May: moves peak, cards renewed
CODE = "302040"
NOW = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)  # the CRL is issued after all the simulated events


@dataclass
class Scenario:
    cluster: ClusterHandle
    platform: Platform
    key_pool: KeyPool
    diffs: str
    revocations: str
    dlq: str
    events: list[dict[str, Any]] = field(default_factory=list)  # accepted ones, in sequence order
    runs: list[dict[str, int]] = field(default_factory=list)
    backup_group: str = field(default_factory=lambda: f"test.backup.{uuid.uuid4().hex[:8]}")

    @property
    def registry(self) -> BaseSchemaRegistry:
        return self.platform.registry

    @property
    def store(self) -> BaseSnapshotStore:
        return self.platform.snapshot_store

    @property
    def pki(self) -> PkiDirectory:
        return self.platform.pki

    def publish(self, events: list[dict[str, Any]]) -> None:
        publish(events, self.cluster.bootstrap_servers, self.registry, self.platform.register_signer, topic=self.diffs)

    def materialise(self) -> None:
        self.platform.materialiser(
            group_id=self.backup_group, topic_names=MaterialiserTopics(self.diffs, f"{self.diffs}.residents", self.dlq),
            flush_seconds=0.2).run(until_caught_up=True, idle_seconds=0.3)

    def sync(self, group: str = "card-lifecycle") -> dict[str, int]:
        counters = self.platform.card_lifecycle(
            self.key_pool, group_id=f"{self.diffs}.{group}", backup_group_id=self.backup_group,
            topic_names=CardLifecycleTopics(self.diffs, self.revocations), watermark_seconds=0.1,
        ).run(until_caught_up=True, idle_seconds=0.3).as_dict()
        self.runs.append(counters)
        return counters


def certificates(record: dict[str, Any] | None) -> list[CertificateEntry]:
    return [CertificateEntry.from_record(c) for c in (record or {}).get("jpki_certificates") or []]


def expected(events: list[dict[str, Any]]) -> tuple[set[str], dict[str, tuple[str, dt.datetime]]]:
    """Serials that must be issued, and serial → (reason, time) of the revocations, from the events."""
    issued: set[str] = set()
    revoked: dict[str, tuple[str, dt.datetime]] = {}
    held: dict[str, set[str]] = {}
    for e in events:
        after = e["after"]
        now = {c.serial for c in certificates(after)}
        before = held.get(e["resident_code"], set())
        issued |= now
        status, why = (after or {}).get("status"), (after or {}).get("deletion_reason")
        if after is None:
            ended, reason = before, "CARD_RETURNED"
        elif status == "DELETED" and why == "DEATH":
            ended, reason = before | now, "DEATH"
        elif status == "DELETED" and why == "EMIGRATION":
            ended, reason = before | now, "MOVED_ABROAD"
        else:
            ended = before - now
            reason = {"CARD_RENEWED": "RENEWAL", "CARD_REVOKED": "LOST_CARD"}.get(e["change_type"], "?")
        for serial in ended:
            revoked.setdefault(serial, (reason, e["event_time"]))
        held[e["resident_code"]] = now
    return issued, revoked


def hand_made(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rare cases, on residents of the simulated register, after its last event."""
    latest: dict[str, dict[str, Any]] = {}
    for e in events:
        latest[e["resident_code"]] = e["after"]
    holders = [r for r in latest.values() if r and r["status"] == "CURRENT" and r["jpki_certificates"]]
    two = [r for r in holders if len(r["jpki_certificates"]) == 2]
    one = [r for r in holders if len(r["jpki_certificates"]) == 1]
    sequence = itertools.count(events[-1]["sequence"] + 1)
    at = itertools.count()
    last = events[-1]["event_time"]

    def change(record: dict[str, Any] | None, change_type: str, resident_code: str | None = None,
               **after: Any) -> dict[str, Any]:
        when = last + dt.timedelta(days=1, minutes=next(at))
        return make_change(next(sequence), None if record is None else {**record, **after},
                           municipality_code=CODE, resident_code=resident_code, change_type=change_type,
                           event_time=when)

    renewed = {**one[0]["jpki_certificates"][0], "serial": "7e57000000000001", "not_before": dt.date(2026, 5, 8),
               "not_after": dt.date(2031, 5, 7)}
    return [
        change(two[0], "CARD_REVOKED", jpki_certificates=[]),  # card and smartphone end: LOST_CARD
        change(two[1], "DEATH", status="DELETED", deletion_reason="DEATH", jpki_certificates=[]),
        change(two[2], "MOVE_OUT", status="DELETED", deletion_reason="EMIGRATION"),  # list kept, still ended
        change(one[0], "CARD_RENEWED", jpki_certificates=[renewed]),
        change(one[1], "MOVE_OUT", status="DELETED", deletion_reason="MOVE_OUT"),  # to another municipality
        change(one[2], "MOVE_WITHIN", address={**one[2]["address"], "block": "9番9号"}),
        change(None, "RECORD_REMOVED", resident_code=one[3]["resident_code"]),
    ]


@pytest.fixture(scope="module")
def scenario(cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("card-lifecycle")
    platform = make_platform(root, cluster)
    key_pool = platform.key_pool(4)
    keys = itertools.cycle(key_pool.load())
    platform.pki.initialise(dt.datetime(2020, 1, 1, tzinfo=dt.UTC), key_factory=lambda: next(keys))
    names = [f"test.cards.{uuid.uuid4().hex[:12]}" for _ in range(3)]
    for name, partitions in zip(names, (4, 2, 1), strict=True):
        cluster.create_topic(name, partitions, 3)
    cluster.create_topic(f"{names[0]}.residents", 4, 3)
    s = Scenario(cluster, platform, key_pool, *names)

    reference = load_reference_data()
    sim = RegisterSimulator(reference, CODE, population=2000, seed=7, start=START,
                            font_path=load_settings().mincho_font)
    simulated = list(sim.full_load()) + list(sim.changes(120))
    extra = hand_made(simulated)
    s.publish(simulated + extra[:4])
    # A re-sent event (the backup applies it once; the PKI already holds its effect) and two the backup
    # rejects, both signed by this municipality's adapter: an event of a bad municipality check digit
    # (not this municipality's to sign) and bytes that are not Avro.
    s.publish([simulated[-1]])
    bad_code = make_change(1, None, municipality_code="302041", resident_code="00000000001",
                           change_type="RECORD_REMOVED")
    publish_signed([(CODE, message_key("302041", "00000000001"), AvroSerde(s.registry, CONTRACTS["bcl.register.diffs"])
                     .encode(bad_code)), (CODE, message_key(CODE, "00000000002"), b"not avro")],
                   cluster.bootstrap_servers, platform.register_signer, topic=s.diffs)
    s.events = simulated + extra[:4]
    s.materialise()
    s.sync()
    # Published but not yet in the backup: the processor must wait for it.
    s.publish(extra[4:])
    s.sync()
    s.materialise()
    s.events += extra[4:]
    s.sync()
    yield s


def test_the_pki_follows_the_register(scenario: Scenario) -> None:
    issued, revoked = expected(scenario.events)
    kinds = {e["change_type"] for e in scenario.events}
    assert {"CARD_RENEWED", "CARD_REVOKED", "DEATH", "MOVE_OUT", "MOVE_WITHIN", "RECORD_REMOVED"} <= kinds
    reasons = {reason for reason, _ in revoked.values()}
    assert reasons == {"RENEWAL", "LOST_CARD", "DEATH", "MOVED_ABROAD", "CARD_RETURNED"}, reasons
    index = scenario.pki.index
    assert index.issued_count() == len(issued) > 1500
    got = {r.serial: (r.reason.value, r.revoked_at) for r in index.revocations()}
    assert got == revoked
    for serial in list(issued)[:50]:
        certificate = index.get(serial)
        assert certificate is not None
        assert certificate.certificate().public_key().public_numbers() == \
            scenario.key_pool.key_for_serial(serial).public_key().public_numbers()


def test_renewals_supersede_the_old_certificate_and_issue_the_new_one(scenario: Scenario) -> None:
    held: dict[str, list[CertificateEntry]] = {}
    renewals = 0
    for e in scenario.events:
        now = certificates(e["after"])
        if e["change_type"] == "CARD_RENEWED":
            [old] = [c for c in held[e["resident_code"]] if c.kind == "CARD"]
            [new] = [c for c in now if c.kind == "CARD"]
            revocation = scenario.pki.index.revocation(old.serial)
            assert revocation is not None and revocation.reason.value == "RENEWAL"
            assert revocation.revoked_at == e["event_time"] and revocation.municipality_code == CODE
            certificate = scenario.pki.index.get(new.serial)
            assert certificate is not None and scenario.pki.index.revocation(new.serial) is None
            assert (certificate.not_before, certificate.not_after) == certificate_validity(new)
            assert certificate.kind.value == "CARD"
            renewals += 1
        held[e["resident_code"]] = now
    assert renewals >= 10


def test_current_certificates_are_good_and_a_move_within_japan_keeps_them(scenario: Scenario) -> None:
    latest: dict[str, dict[str, Any] | None] = {}
    for e in scenario.events:
        latest[e["resident_code"]] = e["after"]
    kept = 0
    for record in latest.values():
        if record is None or (record["status"] == "DELETED" and record["deletion_reason"] != "MOVE_OUT"):
            continue
        for c in certificates(record):
            assert scenario.pki.index.revocation(c.serial) is None, record["status"]
            assert scenario.pki.index.get(c.serial) is not None
            kept += record["status"] == "DELETED"
    assert kept >= 20  # serials of people who moved to another municipality stay valid


def test_revocation_events_match_the_pki(scenario: Scenario) -> None:
    serde = AvroSerde(scenario.registry, CONTRACTS["bcl.jpki.revocations"])
    messages = read_topic(scenario.cluster.bootstrap_servers, scenario.revocations)
    published = [revocation_from_record(serde.decode(m.value())) for m in messages]
    assert [m.key().decode() for m in messages] == [r.serial for r in published]
    assert len(published) == len({r.serial for r in published}), "a serial was revoked twice"
    assert sorted(published, key=lambda r: r.serial) == list(scenario.pki.index.revocations())


def test_waits_for_the_backup_and_replays_change_nothing(scenario: Scenario) -> None:
    first, waiting, after_backup = scenario.runs[:3]
    assert first["issued"] > 1500 and first["revoked"] > 10
    assert first["not_in_backup"] == 2  # the bad municipality code and the unreadable bytes (dead letters)
    assert waiting["consumed"] == 0  # the three last changes were not in the backup yet
    assert after_backup["consumed"] == 3 and after_backup["revoked"] == 1  # the removed record
    before = (scenario.pki.index.issued_count(), list(scenario.pki.index.revocations()))
    published = len(read_topic(scenario.cluster.bootstrap_servers, scenario.revocations))
    replay = scenario.sync(group="replay")  # a new group: every event again, from the beginning
    assert replay["consumed"] == sum(run["consumed"] for run in scenario.runs[:3])
    assert (replay["issued"], replay["revoked"]) == (0, 0)
    assert replay["already_revoked"] >= sum(run["revoked"] for run in scenario.runs[:3])
    assert (scenario.pki.index.issued_count(), list(scenario.pki.index.revocations())) == before
    assert len(read_topic(scenario.cluster.bootstrap_servers, scenario.revocations)) == published


def test_the_crl_lists_exactly_the_revoked_serials_with_their_reasons(scenario: Scenario, tmp_path: Path) -> None:
    _, revoked = expected(scenario.events)
    crl = scenario.pki.issue_crl(NOW)
    listed = {f"{entry.serial_number:016x}": entry for entry in crl}
    assert listed.keys() == revoked.keys()
    names = {"RENEWAL": x509.ReasonFlags.superseded, "LOST_CARD": x509.ReasonFlags.key_compromise}
    for serial, (reason, at) in revoked.items():
        entry = listed[serial]
        assert entry.revocation_date_utc == at.replace(microsecond=0)  # CRL times are whole seconds
        flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert flag == names.get(reason, x509.ReasonFlags.cessation_of_operation)
    text = subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-text", "-in", str(scenario.pki.crl_path)],
                          check=True, capture_output=True, text=True).stdout
    assert text.count("Serial Number:") == len(revoked)
    for words in ("Superseded", "Key Compromise", "Cessation Of Operation"):
        assert words in text
    # A CRL as of just before the last revocation leaves it out (it belongs to the next CRL).
    last = max(at for _, at in revoked.values())
    earlier = scenario.pki.issue_crl(last - dt.timedelta(milliseconds=1))
    assert len(earlier) == len(revoked) - 1


def test_a_virtual_card_built_for_a_current_serial_authenticates(scenario: Scenario) -> None:
    latest = {e["resident_code"]: e["after"] for e in scenario.events}
    serial = next(c.serial for r in latest.values() if r and r["status"] == "CURRENT" for c in certificates(r))
    issued = scenario.pki.index.get(serial)
    assert issued is not None
    card = JpkiCard(auth=CardKey(scenario.key_pool.key_for_serial(serial), issued.der), auth_pin="1234")
    answer = JpkiCardClient(InProcessTransport(card)).authenticate("1234", b"challenge")
    certificate = x509.load_der_x509_certificate(answer.certificate_der)
    verify_user_certificate(certificate, scenario.pki.auth_root_certificate(), issued.not_before)
    certificate.public_key().verify(answer.signature, b"challenge", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
