"""OCSP (RFC 6960) answers of the test PKI, independent of HTTP: request bytes in, response bytes out.

The responder answers for one issuer (the JPKI-TEST root) and signs with a delegated OCSP signing
certificate, which it includes in the response so clients can check it chains to the root.
Statuses: good (issued, not revoked), revoked (with time and RFC 5280 reason), unknown (a serial
this PKI never issued). A request about another issuer gets the `unauthorized` error (RFC 5019
§2.2.3): this responder is not authoritative for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from certgen.authority import SIGNATURE_HASH, CertificateAuthority, require_aware
from certgen.revocation import RevocationStatus, SerialStatus

# How long a client may cache an answer. Short, because OCSP is the "current status" path
# (docs/domain.md §4); the CRL is the cheap, day-stale one.
OCSP_ANSWER_VALIDITY = timedelta(minutes=5)


class StatusLookupProtocol(Protocol):
    """Whatever knows which serials were issued and revoked (the PKI index, or memory in tests)."""

    def status_of(self, serial: int) -> SerialStatus: ...


@dataclass(frozen=True)
class OcspResponderIdentity:
    """The issuer answered for, and who signs the answers (a delegated signer, or the issuer itself)."""

    issuer: x509.Certificate
    signer: CertificateAuthority

    @property
    def delegated(self) -> bool:
        return self.signer.certificate != self.issuer


def issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """CertID issuerNameHash and issuerKeyHash (RFC 6960 §4.1.1) of an RSA issuer. The key hash
    covers the subjectPublicKey BIT STRING value, which for RSA is the PKCS#1 RSAPublicKey DER."""
    name_hash = hashes.Hash(algorithm)
    name_hash.update(issuer.subject.public_bytes())
    key_hash = hashes.Hash(algorithm)
    key_hash.update(issuer.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.PKCS1))
    return name_hash.finalize(), key_hash.finalize()


def answer_ocsp_request(request_der: bytes, responder: OcspResponderIdentity, lookup: StatusLookupProtocol,
                        now: datetime) -> bytes:
    """The DER OCSPResponse for a DER OCSPRequest."""
    now = require_aware(now, "now")
    try:
        request = ocsp.load_der_ocsp_request(request_der)
        serial = request.serial_number
        algorithm = request.hash_algorithm
    except (ValueError, NotImplementedError, TypeError):
        # Unparsable, or several CertIDs in one request (the library answers one per request).
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    if (request.issuer_name_hash, request.issuer_key_hash) != issuer_hashes(responder.issuer, algorithm):
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)

    known = lookup.status_of(serial)
    revocation_time = revocation_reason = None
    if known.status is RevocationStatus.GOOD:
        cert_status = ocsp.OCSPCertStatus.GOOD
    elif known.status is RevocationStatus.REVOKED and known.revocation is not None:
        cert_status = ocsp.OCSPCertStatus.REVOKED
        revocation_time = known.revocation.revoked_at
        revocation_reason = known.revocation.reason.rfc5280
    else:
        cert_status = ocsp.OCSPCertStatus.UNKNOWN

    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash, issuer_key_hash=request.issuer_key_hash,
            serial_number=serial, algorithm=algorithm, cert_status=cert_status,
            this_update=now, next_update=now + OCSP_ANSWER_VALIDITY,
            revocation_time=revocation_time, revocation_reason=revocation_reason)
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.signer.certificate)
    )
    if responder.delegated:
        builder = builder.certificates([responder.signer.certificate])
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
    except x509.ExtensionNotFound:
        nonce = None
    if nonce is not None:  # echoed so the client can tie the answer to its request (replay protection)
        builder = builder.add_extension(x509.OCSPNonce(nonce.nonce), critical=False)
    response = builder.sign(responder.signer.key, SIGNATURE_HASH)
    return response.public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
