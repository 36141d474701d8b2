"""The JPKI-TEST hierarchy and user certificates, checked with the real openssl."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certgen.authority import AUTH_ROOT_SUBJECT
from certgen.errors import DuplicateSerialError, PkiError
from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.user_certificates import (
    CertificateKind,
    certificate_serial_hex,
    crl_url_of,
    ocsp_url_of,
)
from domain.card_lifecycle import card_validity
from domain.certificate_serial import parse_serial
from domain.errors import InvalidSerialError


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30)


def test_root_is_a_self_signed_rsa_2048_sha256_ca(pki: PkiDirectory) -> None:
    text = openssl("x509", "-in", pki.certificate_path("auth-root"), "-noout", "-text").stdout
    assert "Signature Algorithm: sha256WithRSAEncryption" in text
    assert "Public-Key: (2048 bit)" in text
    assert ("Issuer: C = JP, O = JPKI-TEST, OU = JPKI for user authentication, "
            "OU = Japan Agency for Local Authority Information Systems") in text
    assert "CA:TRUE" in text
    assert "Certificate Sign, CRL Sign" in text
    root = pki.auth_root_certificate()
    assert root.subject == root.issuer == AUTH_ROOT_SUBJECT
    assert openssl("verify", "-CAfile", pki.certificate_path("auth-root"),
                   pki.certificate_path("auth-root")).returncode == 0


def test_init_is_idempotent(pki: PkiDirectory) -> None:
    before = pki.auth_root_certificate()
    again = PkiDirectory(pki.path, pki.endpoints)
    assert again.initialise(datetime.now(UTC)) == []
    assert again.auth_root_certificate() == before


def test_user_certificate_has_the_callers_serial_and_an_opaque_subject(
        pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str], write_pem: Callable) -> None:
    serial = "0a" + new_serial()[2:]  # a leading zero digit must survive the round trip
    card = pki.issue_card(serial, CertificateKind.CARD, datetime.now(UTC), key=key_pool.key(0))
    cert = card.certificate
    assert certificate_serial_hex(cert) == serial
    assert cert.serial_number == parse_serial(serial)
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    assert cert.issuer == AUTH_ROOT_SUBJECT
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    assert crl_url_of(cert) == pki.endpoints.crl_url
    assert ocsp_url_of(cert) == pki.endpoints.ocsp_url
    path = write_pem("user.pem", cert)
    text = openssl("x509", "-in", path, "-noout", "-text").stdout
    assert "Digital Signature" in text and "TLS Web Client Authentication" in text
    assert f"URI:{pki.endpoints.crl_url}" in text and f"OCSP - URI:{pki.endpoints.ocsp_url}" in text
    assert openssl("x509", "-in", path, "-noout", "-serial").stdout.strip() == f"serial={serial.upper()}"
    verified = openssl("verify", "-CAfile", pki.certificate_path("auth-root"), "-purpose", "sslclient", path)
    assert verified.returncode == 0, verified.stderr


def test_card_and_smartphone_certificates_are_separate(
        pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str]) -> None:
    now = datetime.now(UTC)
    card = pki.issue_card(new_serial(), CertificateKind.CARD, now, key=key_pool.key(1))
    phone = pki.issue_card(new_serial(), CertificateKind.SMARTPHONE, now, key=key_pool.key(2))
    assert card.certificate.serial_number != phone.certificate.serial_number
    assert pki.index.get(card.serial).kind is CertificateKind.CARD
    assert pki.index.get(phone.serial).kind is CertificateKind.SMARTPHONE


def test_card_validity_is_five_years_of_japan_time_days() -> None:
    start, end = card_validity(datetime(2026, 4, 1).date())
    assert start == datetime(2026, 3, 31, 15, 0, tzinfo=UTC)
    assert end == datetime(2031, 3, 31, 14, 59, 59, tzinfo=UTC)
    _, leap_end = card_validity(datetime(2028, 2, 29).date())
    assert leap_end.astimezone(UTC) == datetime(2033, 2, 27, 14, 59, 59, tzinfo=UTC)


def test_serials_are_register_hex_and_never_reused(pki: PkiDirectory, key_pool: KeyPool,
                                                   new_serial: Callable[[], str]) -> None:
    for bad in ("0123456789ABCDEF", "123", "0000000000000000", "0123456789abcdefg"):
        with pytest.raises(InvalidSerialError):
            pki.issue_card(bad, CertificateKind.CARD, datetime.now(UTC), key=key_pool.key(3))
    serial = new_serial()
    pki.issue_card(serial, CertificateKind.CARD, datetime.now(UTC), key=key_pool.key(3))
    with pytest.raises(DuplicateSerialError, match=serial):
        pki.issue_card(serial, CertificateKind.SMARTPHONE, datetime.now(UTC), key=key_pool.key(4))


def test_naive_times_and_inverted_validity_are_refused(pki: PkiDirectory, key_pool: KeyPool,
                                                      new_serial: Callable[[], str]) -> None:
    now = datetime.now(UTC)
    public = key_pool.key(0).public_key()
    with pytest.raises(PkiError, match="timezone-aware"):
        pki.issue_certificate(new_serial(), CertificateKind.CARD, public, datetime(2026, 1, 1), now, now)
    with pytest.raises(PkiError, match="not after"):
        pki.issue_certificate(new_serial(), CertificateKind.CARD, public, now, now - timedelta(days=1), now)


def test_ocsp_signer_is_delegated_by_the_root(pki: PkiDirectory, write_pem: Callable) -> None:
    identity = pki.ocsp_identity()
    assert identity.delegated
    signer = identity.signer.certificate
    signer.verify_directly_issued_by(pki.auth_root_certificate())
    assert ExtendedKeyUsageOID.OCSP_SIGNING in signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    signer.extensions.get_extension_for_class(x509.OCSPNoCheck)
    text = openssl("x509", "-in", write_pem("signer.pem", signer), "-noout", "-text").stdout
    assert "OCSP Signing" in text and "OCSP No Check" in text


def test_key_pool_is_stable_across_loads(key_pool: KeyPool, tmp_path: Path) -> None:
    again = KeyPool(key_pool.path.parent, key_pool.size)
    assert [k.private_numbers() for k in again.load()] == [k.private_numbers() for k in key_pool.load()]
    assert key_pool.key_for_serial("0000000000000009").private_numbers() == key_pool.key(1).private_numbers()
    wrong = KeyPool(tmp_path, key_pool.size + 1)
    wrong.path.write_bytes(key_pool.path.read_bytes())  # a file holding fewer keys than its name says
    with pytest.raises(PkiError, match="holds"):
        wrong.load()
