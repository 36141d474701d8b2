"""Chain, signature and validity checks of presented certificates, and the CRL / memory revocation sources."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from certgen.authority import create_auth_root
from certgen.certificate_validation import verify_user_certificate
from certgen.errors import RevocationCheckError, StaleCrlError
from certgen.keys import KeyPool
from certgen.pki_directory import PkiDirectory
from certgen.revocation import Revocation, RevocationStatus, build_crl, build_registry
from certgen.revocation_source import (
    BaseRevocationSource,
    CrlRevocationSource,
    MemoryRevocationSource,
    check_revocation_crl,
)
from certgen.user_certificates import CertificateKind, issue_user_certificate
from domain.card_lifecycle import RevocationReason
from domain.errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    ForgedCertificateError,
    UnknownIssuerError,
    WrongCertificatePurposeError,
)


def test_a_card_of_this_pki_verifies(pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str]) -> None:
    card = pki.issue_card(new_serial(), CertificateKind.CARD, datetime.now(UTC), key=key_pool.key(0))
    verify_user_certificate(card.certificate, pki.auth_root_certificate(), datetime.now(UTC))


def test_forged_certificate_with_the_same_names_is_rejected(
        pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str], write_pem: Callable) -> None:
    """A forger makes a root with the JPKI-TEST subject but their own key, and a certificate with the same
    subject and serial as a genuine card: the names match, the signature does not."""
    now = datetime.now(UTC)
    genuine = pki.issue_card(new_serial(), CertificateKind.CARD, now, key=key_pool.key(0))
    forger_root = create_auth_root(key_pool.key(7), now)
    subject_id = genuine.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    forged = issue_user_certificate(forger_root, genuine.serial, key_pool.key(1).public_key(),
                                    genuine.certificate.not_valid_before_utc, genuine.certificate.not_valid_after_utc,
                                    pki.endpoints, subject_id=str(subject_id))
    assert forged.subject == genuine.certificate.subject and forged.issuer == genuine.certificate.issuer
    with pytest.raises(ForgedCertificateError, match=genuine.serial):
        verify_user_certificate(forged, pki.auth_root_certificate(), now)
    openssl = subprocess.run(["openssl", "verify", "-CAfile", str(pki.certificate_path("auth-root")),
                              str(write_pem("forged.pem", forged))], capture_output=True, text=True, timeout=30)
    # openssl finds no issuer (the forged authority key identifier points at the forger's key).
    assert openssl.returncode != 0 and "verification failed" in openssl.stdout + openssl.stderr


def test_expired_and_not_yet_valid_certificates_are_rejected(
        pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str]) -> None:
    now = datetime.now(UTC)
    expired = pki.issue_certificate(new_serial(), CertificateKind.CARD, key_pool.key(2).public_key(),
                                    now - timedelta(days=5 * 365), now - timedelta(days=1), now)
    with pytest.raises(CertificateExpiredError, match="expired"):
        verify_user_certificate(expired, pki.auth_root_certificate(), now)
    with pytest.raises(CertificateNotYetValidError, match="trusted root"):  # the leaf was valid, the root not yet
        verify_user_certificate(expired, pki.auth_root_certificate(), now - timedelta(days=2))
    future = pki.issue_certificate(new_serial(), CertificateKind.CARD, key_pool.key(3).public_key(),
                                   now + timedelta(days=2), now + timedelta(days=30), now)
    with pytest.raises(CertificateNotYetValidError):
        verify_user_certificate(future, pki.auth_root_certificate(), now)


def test_other_issuers_and_purposes_are_rejected(pki: PkiDirectory) -> None:
    now = datetime.now(UTC)
    credentials, _ = pki.ensure_seal_certificate("131016", "千代田区", now)
    with pytest.raises(UnknownIssuerError):  # a seal certificate does not chain to the JPKI root
        verify_user_certificate(credentials.certificate, pki.auth_root_certificate(), now)
    with pytest.raises(WrongCertificatePurposeError):  # the OCSP signer chains, but is no user certificate
        verify_user_certificate(pki.ocsp_identity().signer.certificate, pki.auth_root_certificate(), now)


def test_crl_and_memory_sources_give_typed_answers(
        pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str]) -> None:
    now = datetime.now(UTC)
    root = pki.auth_root_certificate()
    good = pki.issue_card(new_serial(), CertificateKind.CARD, now, key=key_pool.key(4))
    dead = pki.issue_card(new_serial(), CertificateKind.CARD, now, key=key_pool.key(5))
    revocation = Revocation(dead.serial, RevocationReason.DEATH, now - timedelta(hours=1), "401307")
    pki.revoke(revocation)
    crl = pki.issue_crl(now)
    registry = build_registry([revocation])
    sources: list[BaseRevocationSource] = [CrlRevocationSource(crl), MemoryRevocationSource(registry)]
    for source in sources:
        assert source.check(good.certificate, root).status is RevocationStatus.GOOD
        answer = source.check(dead.certificate, root)
        assert answer.status is RevocationStatus.REVOKED
        assert answer.reason is x509.ReasonFlags.cessation_of_operation
        assert answer.revoked_at == revocation.revoked_at.replace(
            microsecond=0 if answer.source == "crl" else revocation.revoked_at.microsecond)
    memory = MemoryRevocationSource(registry, issued={good.serial, dead.serial})
    stranger = pki.issue_card(new_serial(), CertificateKind.CARD, now, key=key_pool.key(6))
    assert memory.check(stranger.certificate, root).status is RevocationStatus.UNKNOWN


def test_crl_source_refuses_stale_and_foreign_crls(
        pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str]) -> None:
    now = datetime.now(UTC)
    root = pki.auth_root_certificate()
    card = pki.issue_card(new_serial(), CertificateKind.CARD, now, key=key_pool.key(0))
    crl = pki.issue_crl(now)
    assert check_revocation_crl(crl, card.certificate, root, at=now + timedelta(hours=23)).is_good
    with pytest.raises(StaleCrlError):
        check_revocation_crl(crl, card.certificate, root, at=now + timedelta(hours=25))
    forger_root = create_auth_root(key_pool.key(7), now)  # same issuer name, other key: signature must fail
    forged_crl: x509.CertificateRevocationList = build_crl(forger_root, [], now, crl_number=1)
    with pytest.raises(RevocationCheckError, match="signature"):
        check_revocation_crl(forged_crl, card.certificate, root, at=now)
    seal_root = pki.seal_root()
    seal_crl = build_crl(seal_root, [], now, crl_number=1)
    with pytest.raises(RevocationCheckError, match="issued by"):
        check_revocation_crl(seal_crl, card.certificate, root, at=now)
