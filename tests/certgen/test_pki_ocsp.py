"""The OCSP responder over real HTTP: `openssl ocsp` and our own client, POST and GET."""

from __future__ import annotations

import base64
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from certgen.authority import create_auth_root
from certgen.endpoints import JpkiEndpoints
from certgen.errors import RevocationCheckError
from certgen.keys import KeyPool
from certgen.ocsp import OcspResponderIdentity, answer_ocsp_request
from certgen.ocsp_responder import RepositoryContent, RepositoryServer, serve_repository
from certgen.pki_directory import IssuedCard, PkiDirectory
from certgen.revocation import Revocation, RevocationStatus
from certgen.revocation_source import CrlRevocationSource, OcspRevocationSource, check_revocation_ocsp, fetch_crl
from certgen.user_certificates import CertificateKind, issue_user_certificate
from domain.card_lifecycle import RevocationReason


@pytest.fixture
def cards(pki: PkiDirectory, key_pool: KeyPool, new_serial: Callable[[], str]) -> dict[str, IssuedCard]:
    """A good card, a lost (revoked) card, and a certificate the root signed but the index never recorded."""
    now = datetime.now(UTC)
    good = pki.issue_card(new_serial(), CertificateKind.CARD, now, key=key_pool.key(0))
    lost = pki.issue_card(new_serial(), CertificateKind.SMARTPHONE, now, key=key_pool.key(1))
    pki.revoke(Revocation(lost.serial, RevocationReason.LOST_CARD, now - timedelta(minutes=2), "141003"))
    serial = new_serial()
    unknown_cert = issue_user_certificate(pki.auth_authority(), serial, key_pool.key(2).public_key(),
                                          now - timedelta(hours=1), now + timedelta(days=1), pki.endpoints)
    unknown = IssuedCard(serial, CertificateKind.CARD, key_pool.key(2), unknown_cert)
    return {"good": good, "revoked": lost, "unknown": unknown}


def openssl_ocsp(pki: PkiDirectory, server: RepositoryServer, cert_path: Path) -> subprocess.CompletedProcess[str]:
    root = pki.certificate_path("auth-root")
    return subprocess.run(["openssl", "ocsp", "-issuer", str(root), "-cert", str(cert_path), "-url",
                           f"{server.url}/ocsp", "-CAfile", str(root), "-resp_text"],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("which", ["good", "revoked", "unknown"])
def test_openssl_ocsp_gets_a_verified_answer(pki_server: tuple[PkiDirectory, RepositoryServer],
                                            cards: dict[str, IssuedCard], which: str, write_pem: Callable) -> None:
    pki, server = pki_server
    result = openssl_ocsp(pki, server, write_pem(f"{which}.pem", cards[which].certificate))
    assert result.returncode == 0, result.stderr
    assert "Response verify OK" in result.stderr
    assert "OCSP Response Status: successful (0x0)" in result.stdout
    assert f": {which}\n" in result.stdout
    assert "Cert Status: " + which in result.stdout
    assert "JPKI-TEST OCSP Responder" in result.stdout  # signed by the delegated responder certificate
    assert "OCSP Nonce" in result.stdout  # openssl sends a nonce; it must come back
    if which == "revoked":
        assert "Reason: keyCompromise" in result.stdout and "Revocation Time:" in result.stdout


def test_our_client_reads_good_revoked_and_unknown(pki: PkiDirectory, cards: dict[str, IssuedCard]) -> None:
    root = pki.auth_root_certificate()
    good = check_revocation_ocsp(None, cards["good"].certificate, root)  # URL from the certificate's AIA
    assert good.status is RevocationStatus.GOOD and good.source == "ocsp" and good.is_good
    revoked = check_revocation_ocsp(pki.endpoints.ocsp_url, cards["revoked"].certificate, root)
    assert revoked.status is RevocationStatus.REVOKED
    assert revoked.reason is x509.ReasonFlags.key_compromise
    assert revoked.revoked_at == pki.index.revocation(cards["revoked"].serial).revoked_at.replace(microsecond=0)
    assert check_revocation_ocsp(None, cards["unknown"].certificate, root).status is RevocationStatus.UNKNOWN


def test_revocation_shows_at_once_over_ocsp(pki: PkiDirectory, cards: dict[str, IssuedCard]) -> None:
    root = pki.auth_root_certificate()
    source = OcspRevocationSource()
    assert source.check(cards["good"].certificate, root).status is RevocationStatus.GOOD
    pki.revoke(Revocation(cards["good"].serial, RevocationReason.MOVED_ABROAD, datetime.now(UTC)))
    after = source.check(cards["good"].certificate, root)
    assert after.status is RevocationStatus.REVOKED and after.reason is x509.ReasonFlags.cessation_of_operation


def _request_der(card: IssuedCard, issuer: x509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(card.certificate, issuer, hashes.SHA256()).build()
    return request.public_bytes(serialization.Encoding.DER)


def test_get_form_with_sha256_cert_id(pki: PkiDirectory, cards: dict[str, IssuedCard]) -> None:
    encoded = urllib.parse.quote(base64.b64encode(_request_der(cards["revoked"], pki.auth_root_certificate())),
                                 safe="")
    with urllib.request.urlopen(f"{pki.endpoints.ocsp_url}/{encoded}", timeout=10) as reply:
        assert reply.headers["Content-Type"] == "application/ocsp-response"
        response = ocsp.load_der_ocsp_response(reply.read())
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.hash_algorithm.name == "sha256"


def test_requests_about_another_issuer_are_unauthorized_and_garbage_is_malformed(
        pki: PkiDirectory, key_pool: KeyPool, cards: dict[str, IssuedCard]) -> None:
    other_root = create_auth_root(key_pool.key(5), datetime.now(UTC))
    identity = pki.ocsp_identity()
    now = datetime.now(UTC)
    foreign = ocsp.load_der_ocsp_response(
        answer_ocsp_request(_request_der(cards["good"], other_root.certificate), identity, pki.index, now))
    assert foreign.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    garbage = ocsp.load_der_ocsp_response(answer_ocsp_request(b"\x30\x03\x02\x01\x00", identity, pki.index, now))
    assert garbage.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_client_rejects_an_answer_signed_by_someone_else(pki: PkiDirectory, key_pool: KeyPool,
                                                         cards: dict[str, IssuedCard]) -> None:
    """An impostor responder signing with a key the JPKI root never certified must not be believed."""
    impostor = create_auth_root(key_pool.key(6), datetime.now(UTC))  # same subject as the real root, other key
    identity = OcspResponderIdentity(issuer=pki.auth_root_certificate(), signer=impostor)
    server = serve_repository("127.0.0.1", 0, RepositoryContent(identity, pki.index, pki.daily_crl))
    server.start_in_thread()
    try:
        with pytest.raises(RevocationCheckError, match="not issued by the checked issuer"):
            check_revocation_ocsp(f"{server.url}/ocsp", cards["revoked"].certificate, pki.auth_root_certificate())
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_responder_is_a_typed_error(pki: PkiDirectory, cards: dict[str, IssuedCard]) -> None:
    dead = JpkiEndpoints("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(RevocationCheckError, match="failed"):
        check_revocation_ocsp(dead.ocsp_url, cards["good"].certificate, pki.auth_root_certificate(), timeout=2)


def test_repository_serves_the_daily_crl_and_the_root(pki: PkiDirectory, cards: dict[str, IssuedCard]) -> None:
    root = pki.auth_root_certificate()
    pki.issue_crl(datetime.now(UTC))  # the CRL of the day now includes the fixture's lost card
    source = CrlRevocationSource.from_url(pki.endpoints.crl_url)
    assert source.check(cards["revoked"].certificate, root).status is RevocationStatus.REVOKED
    assert source.check(cards["good"].certificate, root).status is RevocationStatus.GOOD
    with urllib.request.urlopen(pki.endpoints.root_certificate_url, timeout=10) as reply:
        assert reply.headers["Content-Type"] == "application/pkix-cert"
        assert x509.load_der_x509_certificate(reply.read()) == root
    with pytest.raises(RevocationCheckError, match="HTTP 404"):
        fetch_crl(pki.endpoints.base_url + "/crl/other.crl")
