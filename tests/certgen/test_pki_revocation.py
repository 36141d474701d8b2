"""Revocation events, the registry fold, the Avro contract and the daily CRL (verified by openssl)."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastavro
import pytest
from cryptography import x509

from certgen.errors import PkiError, UnknownSerialError
from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.revocation import (
    Revocation,
    RevocationRegistry,
    apply_revocation,
    build_crl,
    build_registry,
    crl_entry_serials,
    merge_revocation,
    revocation_from_record,
    revocation_to_record,
)
from certgen.user_certificates import CertificateKind
from domain.card_lifecycle import RFC5280_REASONS, RevocationReason
from domain.errors import InvalidSerialError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "avro" / "revocation.avsc"
T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


def test_domain_reasons_map_to_rfc5280_codes() -> None:
    assert dict(RFC5280_REASONS) == {
        RevocationReason.LOST_CARD: x509.ReasonFlags.key_compromise,
        RevocationReason.CARD_RETURNED: x509.ReasonFlags.cessation_of_operation,
        RevocationReason.DEATH: x509.ReasonFlags.cessation_of_operation,
        RevocationReason.MOVED_ABROAD: x509.ReasonFlags.cessation_of_operation,
        RevocationReason.RENEWAL: x509.ReasonFlags.superseded,
    }


def test_registry_fold_keeps_the_earliest_revocation_and_is_pure() -> None:
    first = Revocation("00000000000000a1", RevocationReason.LOST_CARD, T0, "141003")
    later = Revocation("00000000000000a1", RevocationReason.DEATH, T0 + timedelta(days=3), "141003")
    other = Revocation("00000000000000b2", RevocationReason.RENEWAL, T0)
    empty = RevocationRegistry()
    one = apply_revocation(empty, later)
    two = apply_revocation(one, first)
    assert len(empty) == 0 and one["00000000000000a1"] == later  # inputs are not modified
    assert two["00000000000000a1"] == first
    assert apply_revocation(two, later) is two  # a replayed or late duplicate changes nothing
    assert build_registry([later, other, first, later]) == {"00000000000000a1": first, "00000000000000b2": other}
    assert merge_revocation(None, other) is other


def test_revocation_rejects_bad_serials_and_naive_times() -> None:
    with pytest.raises(InvalidSerialError):
        Revocation("ABCDEF0123456789", RevocationReason.DEATH, T0)
    with pytest.raises(PkiError, match="timezone-aware"):
        Revocation("abcdef0123456789", RevocationReason.DEATH, datetime(2026, 1, 1))


def test_avro_schema_documents_every_field_and_round_trips() -> None:
    raw = json.loads(SCHEMA_PATH.read_text())
    assert raw["name"] == "Revocation" and raw["namespace"] == "jp.bcl.jpki" and raw["doc"]
    assert all(field.get("doc") for field in raw["fields"])
    assert {f["name"] for f in raw["fields"]} == {"serial", "reason", "revoked_at", "municipality_code"}
    assert raw["fields"][1]["type"]["symbols"] == [r.value for r in RevocationReason]
    schema = fastavro.parse_schema(raw)
    for revocation in (Revocation("0123456789abcdef", RevocationReason.MOVED_ABROAD, T0, "131121"),
                       Revocation("0123456789abcdee", RevocationReason.RENEWAL, T0, None)):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, schema, revocation_to_record(revocation))
        buffer.seek(0)
        assert revocation_from_record(fastavro.schemaless_reader(buffer, schema, schema)) == revocation


def test_crl_lists_revoked_serials_with_reasons_and_verifies_with_openssl(
        pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str], write_pem: Callable) -> None:
    now = datetime.now(UTC)
    serials = {reason: new_serial() for reason in RevocationReason}
    for index, serial in enumerate(serials.values()):
        pki.issue_card(serial, CertificateKind.CARD, now, key=key_pool.key(index))
    kept = pki.issue_card(new_serial(), CertificateKind.CARD, now, key=key_pool.key(6))
    for reason, serial in serials.items():
        pki.revoke(Revocation(serial, reason, now - timedelta(minutes=1), "141003"))

    crl = pki.issue_crl(now)
    assert crl.last_update_utc == now.replace(microsecond=0)
    assert crl.next_update_utc == now.replace(microsecond=0) + timedelta(hours=24)
    listed = crl_entry_serials(crl)
    assert set(serials.values()) <= set(listed) and kept.serial not in listed
    for reason, serial in serials.items():
        entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == reason.rfc5280

    crl_path = write_pem("auth.crl.pem", crl)
    root_path = pki.certificate_path("auth-root")
    checked = subprocess.run(["openssl", "crl", "-in", crl_path, "-CAfile", root_path, "-verify", "-noout", "-text"],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0 and "verify OK" in checked.stderr, checked.stderr
    assert "Key Compromise" in checked.stdout and "Superseded" in checked.stdout
    assert "Cessation Of Operation" in checked.stdout

    # openssl's own chain check with the CRL: the revoked card fails, the kept one passes.
    revoked_path = write_pem("revoked.pem", pki.index.get(serials[RevocationReason.LOST_CARD]).certificate())
    kept_path = write_pem("kept.pem", kept.certificate)
    bad = subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", root_path, "-CRLfile", crl_path,
                          revoked_path], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr
    good = subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", root_path, "-CRLfile", crl_path,
                           kept_path], capture_output=True, text=True, timeout=30)
    assert good.returncode == 0, good.stdout + good.stderr


def test_crl_numbers_grow_and_the_daily_crl_is_reused_within_its_day(pki: PkiDirectory) -> None:
    now = datetime.now(UTC)
    first = pki.issue_crl(now)
    second = pki.issue_crl(now)
    number = lambda crl: crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number  # noqa: E731
    assert number(second) == number(first) + 1
    assert number(pki.daily_crl(now + timedelta(hours=23))) == number(second)
    assert number(pki.daily_crl(now + timedelta(hours=25))) == number(second) + 1


def test_build_crl_leaves_out_revocations_after_this_update(pki: PkiDirectory) -> None:
    past = Revocation("00000000000000c1", RevocationReason.DEATH, T0 - timedelta(hours=1))
    future = Revocation("00000000000000c2", RevocationReason.DEATH, T0 + timedelta(hours=1))
    crl = build_crl(pki.auth_authority(), [past, future], T0, crl_number=7)
    assert crl_entry_serials(crl) == ["00000000000000c1"]


def test_revoking_an_unknown_serial_is_refused(pki: PkiDirectory, new_serial: Callable[[], str]) -> None:
    with pytest.raises(UnknownSerialError):
        pki.revoke(Revocation(new_serial(), RevocationReason.LOST_CARD, datetime.now(UTC)))


def test_renewal_revokes_the_old_certificate_as_superseded(
        pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str]) -> None:
    now = datetime.now(UTC)
    old = pki.issue_card(new_serial(), CertificateKind.SMARTPHONE, now, key=key_pool.key(0))
    new = pki.renew_card(old.serial, new_serial(), now, key=key_pool.key(1), municipality_code="131121")
    assert new.kind is CertificateKind.SMARTPHONE
    assert pki.index.revocation(old.serial) == Revocation(old.serial, RevocationReason.RENEWAL, now, "131121")
    assert pki.index.revocation(new.serial) is None
