"""The certificate worker against the embedded cluster: one worker serves the whole module; each test
sends kiosk requests signed by virtual cards (in-process transport) and checks the answers."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import Image
from prometheus_client import REGISTRY

from certgen.endpoints import JpkiEndpoints
from certgen.pki_directory import PkiDirectory
from certgen.revocation import Revocation, revocation_to_record
from certgen.sheet_code import SheetRef, read_sheet_codes
from certgen.user_certificates import CertificateKind
from domain.card_lifecycle import RevocationReason
from domain.issuance_decision import IssuancePolicy
from domain.kiosk_rules import MaintenanceWindow
from domain.register_validation import message_key
from infra import topics
from infra.cluster_control import ClusterHandle
from schemas.contracts import CONTRACTS
from schemas.registry import FileSchemaRegistry
from schemas.wire import AvroSerde
from sinks.issuance_archive import IssuanceArchive, sha256_hex
from streams.certificate_worker import CertificateWorker, WorkerOptions, WorkerTopics, certificate_id
from tests.platforms import make_platform, settings_for
from tests.streams.kiosk_world import (
    ANCHOR,
    CHIYODA,
    JST,
    TANABE,
    Holder,
    Kiosk,
    KioskWorld,
    ShiftableClock,
    holder_of,
    load_residents,
    make_request,
    make_world,
    resident_with_card,
)
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration

# 千代田区 is under maintenance for a while, far from the anchor (the test shifts the clock into it).
MAINTENANCE = MaintenanceWindow(CHIYODA, ANCHOR + dt.timedelta(days=2), ANCHOR + dt.timedelta(days=2, hours=2))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KioskWorld]:
    w = make_world(tmp_path_factory.mktemp("kiosk-world"))
    yield w
    w.server.shutdown()


@pytest.fixture(scope="module")
def people(world: KioskWorld) -> dict[str, Holder]:
    """Card holders of 田辺市 and 千代田区, stored in the snapshot store."""
    h = {name: world.card(i) for i, name in enumerate(
        ["tanabe", "wife", "chiyoda", "deleted", "revoked", "revoked_topic", "no_seal", "later_deleted", "moved",
         "claimed_twice"])}
    seal = {"registration_number": "20150423", "registered_on": dt.date(2015, 4, 23), "status": "REGISTERED",
            "impression_png": _seal_png()}
    tax = [{"fiscal_year": 2026, "income_yen": 4_000_000, "taxable_income_yen": 2_500_000, "tax_yen": 250_000,
            "tax_exempt": False, "paid_yen": 250_000, "payment_status": "PAID"}]
    residents = [
        resident_with_card(world, h["tanabe"], TANABE, 3, seal=seal, tax_records=tax),  # household H000000001
        resident_with_card(world, h["wife"], TANABE, 4, relationship="妻", given_name="花子", sex="FEMALE"),
        resident_with_card(world, h["chiyoda"], CHIYODA, 10),
        resident_with_card(world, h["deleted"], TANABE, 20, status="DELETED", deletion_reason="MOVE_OUT",
                           deleted_on=dt.date(2026, 10, 1)),
        resident_with_card(world, h["revoked"], TANABE, 30),
        resident_with_card(world, h["revoked_topic"], TANABE, 31),
        resident_with_card(world, h["no_seal"], TANABE, 40),
        resident_with_card(world, h["later_deleted"], TANABE, 50),
        # moved from 田辺市 to 千代田区: a deleted record in the former municipality, a current one in the new
        resident_with_card(world, h["moved"], TANABE, 60, status="DELETED", deletion_reason="MOVE_OUT",
                           deleted_on=dt.date(2026, 9, 1)),
        resident_with_card(world, h["moved"], CHIYODA, 61),
        # one serial on two current records (another municipality's event listed it): which is the holder?
        resident_with_card(world, h["claimed_twice"], TANABE, 80),
        resident_with_card(world, h["claimed_twice"], CHIYODA, 81),
    ]
    load_residents(world.store, residents)
    world.pki.revoke(Revocation(h["revoked"].serial, RevocationReason.LOST_CARD, ANCHOR - dt.timedelta(hours=1),
                                TANABE))
    return h


def _seal_png() -> bytes:
    import io

    from PIL import Image, ImageDraw
    image = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((4, 4, 116, 116), outline=(200, 20, 20, 255), width=6)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class Running:
    def __init__(self, worker: CertificateWorker, thread: threading.Thread, stop: threading.Event,
                 kiosk: Kiosk, clock: ShiftableClock, names: WorkerTopics, root: Path) -> None:
        self.worker, self.thread, self.stop, self.kiosk, self.clock, self.names, self.root = (
            worker, thread, stop, kiosk, clock, names, root)


def _topics(cluster: ClusterHandle) -> WorkerTopics:
    def make(partitions: int) -> str:
        name = f"test.worker.{uuid.uuid4().hex[:12]}"
        cluster.create_topic(name, partitions, 3)
        return name
    return WorkerTopics(requests=make(3), responses=make(3), issued=make(3), residents=make(2), revocations=make(1),
                        disasters=make(1), dlq=make(1))


def start_worker(cluster: ClusterHandle, world: KioskWorld, root: Path, options: WorkerOptions) -> Running:
    names = _topics(cluster)
    clock = ShiftableClock()
    platform = make_platform(root, cluster, pki=world.pki, snapshot_store=world.store)
    worker = platform.certificate_worker(topic_names=names, group_id=f"worker-{uuid.uuid4().hex[:8]}",
                                         options=options, clock=clock)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), daemon=True)
    thread.start()
    for _ in range(600):
        if ready.wait(0.1) or not thread.is_alive():
            break
    assert ready.is_set(), "the worker did not become ready (see the thread's exception above)"
    return Running(worker, thread, stop, Kiosk(cluster.bootstrap_servers, names), clock, names, root)


@pytest.fixture(scope="module")
def crl_worker(cluster: ClusterHandle, world: KioskWorld, people: dict[str, Holder],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_worker(cluster, world, tmp_path_factory.mktemp("crl-worker"),
                           WorkerOptions(policy=IssuancePolicy(maintenance=(MAINTENANCE,))))
    yield running
    running.stop.set()
    running.thread.join(30)
    running.kiosk.close()


def refused(response: dict[str, Any], code: str) -> None:
    assert (response["status"], response["reason_code"]) == ("REFUSED", code), response.get("reason_code")
    assert response["message"] and response["pdf"] is None and response["fee_yen"] == 0
    assert response["certificate_ids"] == []


# -- issued ------------------------------------------------------------------------------------------


def test_issues_a_sealed_resident_record_copy_with_one_event_per_copy(crl_worker: Running, people,
                                                                      tmp_path: Path) -> None:
    request = make_request(people["tanabe"], crl_worker.clock, copies=2, paid_yen=400,
                           household_scope="WHOLE_HOUSEHOLD", include_head_and_relationship=True)
    response = crl_worker.kiosk.ask(request)
    assert response["status"] == "ISSUED", response["reason_code"]
    ids = [certificate_id(request["request_id"], 1), certificate_id(request["request_id"], 2)]
    assert response["certificate_ids"] == ids
    assert response["fee_yen"] == 400 and response["pages"] == 2
    with pikepdf.open(__import__("io").BytesIO(response["pdf"])) as pdf:
        assert len(pdf.pages) == 4  # front and back of one sheet per copy
        assert "/Sig" in str(pdf.Root.AcroForm.Fields[0].FT)
    # Each copy's back carries its own certificate's code: the verifier finds the sheet from a scan.
    (tmp_path / "c.pdf").write_bytes(response["pdf"])
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(tmp_path / "c.pdf"), str(tmp_path / "page")], check=True)
    backs = [read_sheet_codes(Image.open(tmp_path / f"page-{n}.png")) for n in (2, 4)]
    assert backs == [[SheetRef(ids[0], 0)], [SheetRef(ids[1], 0)]]
    issued = _issued_events(crl_worker, request["request_id"])
    assert sorted(e["certificate_id"] for e in issued) == sorted(ids)
    assert {(e["copy_number"], e["copies"], e["fee_yen"], e["municipality_code"], e["kiosk_municipality_code"])
            for e in issued} == {(1, 2, 200, TANABE, CHIYODA), (2, 2, 200, TANABE, CHIYODA)}
    settings = settings_for(crl_worker.root)
    archive = IssuanceArchive(settings.issuance_dir)
    record = archive.get(ids[0])
    assert record is not None and record.pdf_sha256 == sha256_hex(response["pdf"])
    audit = [json.loads(line) for line in settings.audit_file.read_text().splitlines()]
    assert any(request["request_id"] in a["request_ids"] and a["records"] >= 1 for a in audit)


def test_seal_and_tax_certificates_are_issued_for_the_registered_person(crl_worker: Running, people) -> None:
    for kind in ("SEAL_REGISTRATION", "INCOME", "TAXATION", "TAX_PAYMENT"):
        response = crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock, certificate_type=kind))
        assert response["status"] == "ISSUED", (kind, response["reason_code"])


def _issued_events(running: Running, request_id: str) -> list[dict[str, Any]]:
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.CERTIFICATES_ISSUED])
    events = [serde.decode(m.value()) for m in read_topic(running.worker.bootstrap_servers, running.names.issued)]
    return [e for e in events if e["request_id"] == request_id]


# -- the card ------------------------------------------------------------------------------------


def test_revoked_card_is_refused_from_the_crl(crl_worker: Running, people) -> None:
    refused(crl_worker.kiosk.ask(make_request(people["revoked"], crl_worker.clock)), "CARD_REVOKED")


def test_request_outcomes_and_latency_are_exported(crl_worker: Running, people) -> None:
    group = crl_worker.worker.group_id

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"processor": group, **labels}) or 0.0

    before = (sample("bcl_certificate_requests_total", outcome="refused", reason_code="CARD_REVOKED"),
              sample("bcl_certificate_requests_total", outcome="issued", reason_code=""),
              sample("bcl_certificate_request_seconds_count"))
    refused(crl_worker.kiosk.ask(make_request(people["revoked"], crl_worker.clock)), "CARD_REVOKED")
    assert crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock))["status"] == "ISSUED"
    deadline = time.monotonic() + 10  # counted once the batch is committed, just after the kiosk has its answer
    while sample("bcl_certificate_request_seconds_count") < before[2] + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sample("bcl_certificate_requests_total", outcome="refused", reason_code="CARD_REVOKED") == before[0] + 1
    assert sample("bcl_certificate_requests_total", outcome="issued", reason_code="") == before[1] + 1
    assert sample("bcl_certificate_request_seconds_count") == before[2] + 2
    assert sample("bcl_certificate_request_seconds_sum") > 0


def test_revocation_published_on_the_topic_is_applied_without_waiting_for_the_next_crl(
        crl_worker: Running, people, cluster: ClusterHandle) -> None:
    holder = people["revoked_topic"]
    assert crl_worker.kiosk.ask(make_request(holder, crl_worker.clock))["status"] == "ISSUED"
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.JPKI_REVOCATIONS])
    record = revocation_to_record(Revocation(holder.serial, RevocationReason.LOST_CARD, crl_worker.clock(), TANABE))
    crl_worker.kiosk.producer.produce(crl_worker.names.revocations, serde.encode(record), holder.serial.encode())
    crl_worker.kiosk.producer.flush(10)
    deadline = crl_worker.clock() + dt.timedelta(seconds=20)
    while holder.serial not in crl_worker.worker._revoked and crl_worker.clock() < deadline:
        crl_worker.kiosk.poll(0.1)
    refused(crl_worker.kiosk.ask(make_request(holder, crl_worker.clock)), "CARD_REVOKED")


def test_expired_certificate_is_refused(crl_worker: Running, world: KioskWorld, people) -> None:
    old = world.card(1, now=ANCHOR - dt.timedelta(days=800), not_after=ANCHOR - dt.timedelta(days=10))
    refused(crl_worker.kiosk.ask(make_request(old, crl_worker.clock)), "CERTIFICATE_EXPIRED")


def test_unknown_issuer_and_forged_certificates_are_refused(crl_worker: Running, world: KioskWorld, people,
                                                            tmp_path: Path) -> None:
    # Another hierarchy with the same root name: its certificates look like JPKI-TEST ones (forged).
    impostor = PkiDirectory(tmp_path / "impostor", JpkiEndpoints("http://127.0.0.1:9"))
    keys = iter(reversed(world.keys))  # the real root's key comes first from the pool: take others
    impostor.initialise(ANCHOR - dt.timedelta(days=1), key_factory=lambda: next(keys))
    forged = holder_of(impostor.issue_card(people["tanabe"].serial, CertificateKind.CARD, ANCHOR,
                                           key=world.key(0)))
    refused(crl_worker.kiosk.ask(make_request(forged, crl_worker.clock)), "CERTIFICATE_FORGED")
    # A self-signed certificate of a stranger: an unknown issuer.
    stranger = _self_signed(world)
    refused(crl_worker.kiosk.ask(make_request(stranger, crl_worker.clock)), "CERTIFICATE_UNTRUSTED")


def _self_signed(world: KioskWorld) -> Holder:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    key = world.key(2)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"), x509.NameAttribute(NameOID.COMMON_NAME, "X")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x77).not_valid_before(ANCHOR - dt.timedelta(days=1))
            .not_valid_after(ANCHOR + dt.timedelta(days=100)).sign(key, hashes.SHA256()))
    return Holder("0000000000000077", key, cert.public_bytes(Encoding.DER))


def test_signature_over_another_challenge_is_refused(crl_worker: Running, people) -> None:
    request = make_request(people["tanabe"], crl_worker.clock, sign_for=str(uuid.uuid4()))
    refused(crl_worker.kiosk.ask(request), "BAD_SIGNATURE")


def test_stale_request_is_refused(crl_worker: Running, people) -> None:
    request = make_request(people["tanabe"], crl_worker.clock)
    crl_worker.clock.shift = dt.timedelta(minutes=6)
    try:
        refused(crl_worker.kiosk.ask(request), "REQUEST_EXPIRED")
    finally:
        crl_worker.clock.shift = dt.timedelta(0)


def test_replayed_request_is_refused_and_the_original_answer_stands(crl_worker: Running, people) -> None:
    request = make_request(people["tanabe"], crl_worker.clock)
    kiosk = crl_worker.kiosk
    kiosk.send(request)
    kiosk.send(request)  # the same signed request again: a replay
    kiosk.wait_for([request["request_id"]], count=2)
    first, second = kiosk.answers[request["request_id"]]
    assert first["status"] == "ISSUED"
    refused(second, "REPLAYED_REQUEST")
    assert len(_issued_events(crl_worker, request["request_id"])) == 1


# -- the resident -----------------------------------------------------------------------------------


def test_serial_with_no_resident_is_refused(crl_worker: Running, world: KioskWorld, people) -> None:
    refused(crl_worker.kiosk.ask(make_request(world.card(3), crl_worker.clock)), "NO_RESIDENT")


def test_resident_of_another_municipality_is_refused(crl_worker: Running, people) -> None:
    refused(crl_worker.kiosk.ask(make_request(people["chiyoda"], crl_worker.clock, municipality_code=TANABE)),
            "OTHER_MUNICIPALITY")
    # Moved away: the deleted record in the former municipality does not count.
    refused(crl_worker.kiosk.ask(make_request(people["moved"], crl_worker.clock, municipality_code=TANABE)),
            "OTHER_MUNICIPALITY")
    assert crl_worker.kiosk.ask(make_request(people["moved"], crl_worker.clock,
                                             municipality_code=CHIYODA))["status"] == "ISSUED"


def test_deleted_record_is_refused(crl_worker: Running, people) -> None:
    refused(crl_worker.kiosk.ask(make_request(people["deleted"], crl_worker.clock)), "RECORD_DELETED")


def test_a_deletion_arriving_on_the_residents_topic_is_applied(crl_worker: Running, world: KioskWorld,
                                                               people) -> None:
    holder = people["later_deleted"]
    assert crl_worker.kiosk.ask(make_request(holder, crl_worker.clock))["status"] == "ISSUED"
    after = resident_with_card(world, holder, TANABE, 50, status="DELETED", deletion_reason="DEATH",
                               deleted_on=dt.date(2026, 11, 19))
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.RESIDENTS])
    crl_worker.kiosk.producer.produce(crl_worker.names.residents, serde.encode(after),
                                      message_key(TANABE, after["resident_code"]))
    crl_worker.kiosk.producer.flush(10)
    for _ in range(100):
        record = crl_worker.worker.directory.get((TANABE, after["resident_code"]))
        if record is not None and record["status"] == "DELETED":
            break
        crl_worker.kiosk.poll(0.1)
    refused(crl_worker.kiosk.ask(make_request(holder, crl_worker.clock)), "RECORD_DELETED")


def test_seal_certificate_needs_a_registration_and_tax_certificate_the_year(crl_worker: Running, people) -> None:
    refused(crl_worker.kiosk.ask(make_request(people["no_seal"], crl_worker.clock,
                                              certificate_type="SEAL_REGISTRATION")), "NO_SEAL_REGISTRATION")
    refused(crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock, certificate_type="INCOME",
                                              fiscal_year=2019)), "NO_TAX_RECORD")


# -- the service ---------------------------------------------------------------------------------


def test_certificate_types_bcl_cannot_issue_are_refused(crl_worker: Running, people) -> None:
    for kind in ("RESIDENT_RECORD_ITEMS", "FAMILY_REGISTER", "FAMILY_REGISTER_ANNEX"):
        response = crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock, certificate_type=kind))
        refused(response, "NOT_AVAILABLE_VIA_BCL")
        assert "コンビニ交付" in response["message"]
    refused(crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock, certificate_type="DISASTER_DAMAGE")),
            "DISASTER_NOT_DECLARED")


def test_outside_service_hours_and_in_a_maintenance_window(crl_worker: Running, people) -> None:
    clock = crl_worker.clock
    night = dt.datetime(2026, 11, 21, 2, 0, tzinfo=JST).astimezone(dt.UTC)
    clock.shift = night - ANCHOR
    try:
        refused(crl_worker.kiosk.ask(make_request(people["tanabe"], clock)), "OUTSIDE_SERVICE_HOURS")
        clock.shift = MAINTENANCE.start + dt.timedelta(minutes=10) - ANCHOR
        refused(crl_worker.kiosk.ask(make_request(people["chiyoda"], clock, municipality_code=CHIYODA)),
                "MAINTENANCE")
    finally:
        clock.shift = dt.timedelta(0)


def test_payment_and_copies_are_checked(crl_worker: Running, people) -> None:
    refused(crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock, copies=2, paid_yen=399)),
            "INSUFFICIENT_PAYMENT")
    refused(crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock, copies=11)), "INVALID_COPIES")


def test_unreadable_request_goes_to_the_dead_letter_topic(crl_worker: Running, people) -> None:
    crl_worker.kiosk.send_raw(b"\x00\x00\x00\x00\x01garbage", b"bad")
    answer = crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock))  # still serving
    assert answer["status"] == "ISSUED"
    dead = read_topic(crl_worker.worker.bootstrap_servers, crl_worker.names.dlq)
    assert len(dead) == 1 and dead[0].key() == b"bad"


# -- OCSP mode -------------------------------------------------------------------------------------


def test_ocsp_mode_sees_a_revocation_the_crl_does_not_have_yet(cluster: ClusterHandle, world: KioskWorld, people,
                                                               tmp_path: Path) -> None:
    holder = world.card(4)
    load_residents(world.store, [resident_with_card(world, holder, TANABE, 70)])
    running = start_worker(cluster, world, tmp_path, WorkerOptions(revocation="ocsp", back_side=False))
    try:
        first = running.kiosk.ask(make_request(holder, running.clock))
        assert first["status"] == "ISSUED", first["reason_code"]
        world.pki.revoke(Revocation(holder.serial, RevocationReason.LOST_CARD, running.clock() - dt.timedelta(
            seconds=1), TANABE))
        refused(running.kiosk.ask(make_request(holder, running.clock)), "CARD_REVOKED")
    finally:
        running.stop.set()
        running.thread.join(30)
        running.kiosk.close()



# -- issue 8: requests that must never issue, nor stop the worker -------------------------------------


def test_a_signed_request_with_an_id_the_archive_cannot_take_is_refused_and_the_worker_goes_on(
        crl_worker: Running, people) -> None:
    """Issue 8.1: `abc|K-1` was claimed, then refused by the archive, and the worker thread died."""
    for bad_id in ("abc|K-1", "../../etc", ".hidden", "x" * 129):
        refused(crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock, request_id=bad_id)),
                "INVALID_REQUEST")
    assert crl_worker.thread.is_alive()
    assert crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock))["status"] == "ISSUED"


@pytest.mark.parametrize("fields", [
    {"kiosk_id": "KIOSK 1\n"}, {"kiosk_vendor": "seven|eleven"}, {"kiosk_vendor": ""},
    {"kiosk_municipality_code": "999997"}, {"municipality_code": "30206x"}, {"fiscal_year": 1},
    {"fiscal_year": 2**31 - 1}, {"paid_yen": -300}, {"paid_yen": 2**31 - 1},
], ids=lambda f: next(iter(f)))
def test_every_field_outside_its_limits_is_refused_before_anything_is_issued(crl_worker: Running, people,
                                                                           fields: dict[str, Any]) -> None:
    """Validly signed (the card signed the bad value too), yet refused: the limits of domain.kiosk_request."""
    request = make_request(people["tanabe"], crl_worker.clock, **fields)
    refused(crl_worker.kiosk.ask(request), "INVALID_REQUEST")
    assert _issued_events(crl_worker, request["request_id"]) == []


def _tampered(running: Running, people: dict[str, Holder], field: str) -> dict[str, Any]:
    """Signed for one 住民票の写し (SELF, no optional items) at 300 yen, then one field changed on the way."""
    request = make_request(people["tanabe"], running.clock)
    changed = {"request_id": str(uuid.uuid4()), "kiosk_id": "KIOSK-0002", "kiosk_vendor": "lawson",
               "centre": "WEST", "kiosk_municipality_code": TANABE, "municipality_code": CHIYODA,
               "certificate_type": "INCOME", "household_scope": "WHOLE_HOUSEHOLD",
               "include_head_and_relationship": True, "include_domicile": True, "fiscal_year": 2026,
               "copies": 3, "paid_yen": 900, "requested_at": request["requested_at"] + dt.timedelta(seconds=1),
               # another card whose certificate has the same key (the test PKI's key pool is shared)
               "auth_certificate": people["no_seal"].certificate_der}
    assert people["no_seal"].key is people["tanabe"].key
    return {**request, field: changed[field]}


SIGNED = ("request_id", "kiosk_id", "kiosk_vendor", "centre", "kiosk_municipality_code", "municipality_code",
          "certificate_type", "household_scope", "include_head_and_relationship", "include_domicile",
          "fiscal_year", "copies", "paid_yen", "requested_at", "auth_certificate")


@pytest.mark.parametrize("field", SIGNED)
def test_any_field_changed_after_the_card_signed_is_refused(crl_worker: Running, people, field: str) -> None:
    """Issue 8.3: a request signed for one 住民票の写し was issued as three 所得証明書 (900 yen), SELF became
    WHOLE_HOUSEHOLD with 本籍, and billing trusted the unsigned vendor and kiosk municipality."""
    request = _tampered(crl_worker, people, field)
    refused(crl_worker.kiosk.ask(request), "BAD_SIGNATURE")
    assert _issued_events(crl_worker, request["request_id"]) == []


def test_a_serial_on_two_current_records_is_refused_not_guessed(crl_worker: Running, people) -> None:
    """Issue 8.7: the worker took the first CURRENT record, so a foreign record could capture a card holder."""
    holder = people["claimed_twice"]
    for code in (TANABE, CHIYODA):
        response = crl_worker.kiosk.ask(make_request(holder, crl_worker.clock, municipality_code=code))
        refused(response, "AMBIGUOUS_CARD")
        assert "特定できません" in response["message"]


def test_a_resident_record_the_directory_cannot_take_is_skipped_not_fatal(crl_worker: Running, world: KioskWorld,
                                                                          people) -> None:
    """No processor may crash-loop on one message: a bcl.residents record under a key that is not UTF-8
    stopped the feed, hence the worker, and would again at every restart (the topic is compacted)."""
    serde = AvroSerde(FileSchemaRegistry(), CONTRACTS[topics.RESIDENTS])
    record = resident_with_card(world, None, TANABE, 90)
    crl_worker.kiosk.producer.produce(crl_worker.names.residents, serde.encode(record), b"\xff\xfe:not-utf-8")
    crl_worker.kiosk.producer.flush(10)
    time.sleep(1.0)  # the feed reads it
    assert crl_worker.kiosk.ask(make_request(people["tanabe"], crl_worker.clock))["status"] == "ISSUED"
    assert crl_worker.thread.is_alive()
