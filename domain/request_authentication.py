"""Is a kiosk request really from the card holder, now? (docs/domain.md §4) Pure: no I/O.

The kiosk sends the card's user-authentication certificate and the card's signature over the
challenge (domain/challenge.py, BCL-KIOSK-v2: every field of the request, the certificate by its
SHA-256). The centre rebuilds the challenge from the request it received and checks:
- the certificate parses and chains to the JPKI-TEST authentication root, is valid at the time of
  the check and is a user-authentication certificate (the caller passes the check, normally
  certgen.certificate_validation.verify_user_certificate bound to the root: that module sits in a
  package that also speaks HTTP, which this pure module must not import);
- the signature over exactly this request's challenge verifies with the certificate's key, so a
  signature made for another request, kiosk, time, certificate type, scope, copies, payment,
  municipality or certificate — any field changed after signing — is refused;
- the request time is fresh (within a window around the centre's clock), which bounds how long a
  request id must be remembered for replay protection.
Revocation is checked next, by domain.issuance_decision through the caller's port (the worker's CRL or
OCSP source and the revocations it has seen).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from domain.certificate_serial import format_serial
from domain.errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateValidationError,
    ForgedCertificateError,
    UnknownIssuerError,
    WrongCertificatePurposeError,
)
from domain.kiosk_rules import ReasonCode, Refusal, refusal

FRESHNESS_WINDOW = dt.timedelta(minutes=5)

_VALIDATION_REASONS: tuple[tuple[type[CertificateValidationError], ReasonCode], ...] = (
    (UnknownIssuerError, ReasonCode.CERTIFICATE_UNTRUSTED),
    (ForgedCertificateError, ReasonCode.CERTIFICATE_FORGED),
    (CertificateExpiredError, ReasonCode.CERTIFICATE_EXPIRED),
    (CertificateNotYetValidError, ReasonCode.CERTIFICATE_NOT_YET_VALID),
    (WrongCertificatePurposeError, ReasonCode.WRONG_CERTIFICATE),
)


@dataclass(frozen=True)
class AuthenticatedCard:
    """A request whose certificate and signature passed: the certificate and its serial."""

    certificate: x509.Certificate
    serial: str


def check_freshness(requested_at: dt.datetime, now: dt.datetime,
                    window: dt.timedelta = FRESHNESS_WINDOW) -> Refusal | None:
    """The request time must lie within ±window of the centre's clock."""
    skew = now - requested_at
    if abs(skew) > window:
        return refusal(ReasonCode.REQUEST_EXPIRED,
                       f"requested {skew.total_seconds():+.0f} s from now (window ±{window.total_seconds():.0f} s)")
    return None


def parse_certificate(der: bytes) -> x509.Certificate | Refusal:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        return refusal(ReasonCode.MALFORMED_CERTIFICATE, f"not a DER certificate: {exc}")


def validation_refusal(error: CertificateValidationError) -> Refusal:
    for kind, code in _VALIDATION_REASONS:
        if isinstance(error, kind):
            return refusal(code, str(error))
    return refusal(ReasonCode.CERTIFICATE_UNTRUSTED, str(error))


def verify_challenge_signature(certificate: x509.Certificate, challenge: bytes, signature: bytes) -> Refusal | None:
    """RSA PKCS#1 v1.5 with SHA-256 over the challenge, by the certificate's key."""
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return refusal(ReasonCode.WRONG_CERTIFICATE, "the certificate's key is not RSA")
    try:
        public_key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return refusal(ReasonCode.BAD_SIGNATURE, "the signature does not verify over this request's challenge")
    return None


# Raises a certgen CertificateValidationError unless the certificate is trusted at the given time.
CertificateCheck = Callable[[x509.Certificate, dt.datetime], None]


def authenticate_request(*, challenge: bytes, requested_at: dt.datetime, certificate_der: bytes,
                         signature: bytes, verify_certificate: CertificateCheck, now: dt.datetime,
                         window: dt.timedelta = FRESHNESS_WINDOW) -> AuthenticatedCard | Refusal:
    """Freshness, certificate (chain, validity at `now`, purpose) and the signature over `challenge`, the
    request's domain.challenge.challenge_bytes as the centre rebuilt them."""
    stale = check_freshness(requested_at, now, window)
    if stale is not None:
        return stale
    certificate = parse_certificate(certificate_der)
    if isinstance(certificate, Refusal):
        return certificate
    try:
        verify_certificate(certificate, now)
    except CertificateValidationError as exc:
        return validation_refusal(exc)
    bad = verify_challenge_signature(certificate, challenge, signature)
    if bad is not None:
        return bad
    return AuthenticatedCard(certificate, format_serial(certificate.serial_number))
