"""Revocation checks for the certificate worker: one interface, three sources (docs/domain.md §4).

- `CrlRevocationSource`: the CRL downloaded once a day, checked locally. Fast and cheap, up to a
  day stale; a serial it does not list is GOOD (a CRL cannot say "unknown").
- `OcspRevocationSource`: asks the responder per check. Current, but a network round trip.
- `MemoryRevocationSource`: a registry in memory, for unit tests and in-process pipelines.

Every source returns a typed `RevocationCheck`; it raises `RevocationCheckError` only when the
status cannot be established (bad signature, stale CRL, responder down or answering garbage).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from certgen.authority import require_aware
from certgen.errors import RevocationCheckError, StaleCrlError
from certgen.revocation import RevocationRegistry, RevocationStatus
from certgen.user_certificates import certificate_serial_hex, ocsp_url_of

Clock = Callable[[], datetime]
# Tolerated difference between our clock and the responder's when judging thisUpdate.
CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_TIMEOUT_SECONDS = 5.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RevocationCheck:
    """The revocation status of one certificate, and where it came from."""

    serial: str
    status: RevocationStatus
    source: str  # "crl", "ocsp" or "memory"
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None
    this_update: datetime | None = None  # when the source's information was current

    @property
    def is_good(self) -> bool:
        return self.status is RevocationStatus.GOOD


class BaseRevocationSource(ABC):
    """Tells whether a user certificate issued by `issuer` is revoked."""

    @abstractmethod
    def check(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationCheck: ...


class CrlRevocationSource(BaseRevocationSource):
    """Checks against one CRL, whose signature is verified once against the issuer it is used with."""

    def __init__(self, crl: x509.CertificateRevocationList, clock: Clock = utc_now) -> None:
        self.crl = crl
        self._clock = clock
        self._verified_for: bytes | None = None

    @classmethod
    def from_url(cls, url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, clock: Clock = utc_now,
                 ) -> CrlRevocationSource:
        return cls(fetch_crl(url, timeout), clock)

    def _verify(self, issuer: x509.Certificate) -> None:
        fingerprint = issuer.fingerprint(hashes.SHA256())
        if self._verified_for == fingerprint:
            return
        if self.crl.issuer != issuer.subject:
            raise RevocationCheckError(f"the CRL was issued by {self.crl.issuer.rfc4514_string()}, "
                                       f"not by {issuer.subject.rfc4514_string()}")
        public_key = issuer.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey) or not self.crl.is_signature_valid(public_key):
            raise RevocationCheckError(f"the CRL's signature does not verify against {issuer.subject.rfc4514_string()}")
        self._verified_for = fingerprint

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationCheck:
        self._verify(issuer)
        now = require_aware(self._clock(), "clock")
        next_update = self.crl.next_update_utc
        if next_update is not None and now > next_update:
            raise StaleCrlError(f"the CRL's nextUpdate {next_update.isoformat()} has passed; download a fresh one")
        serial = certificate_serial_hex(certificate)
        entry = self.crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
        if entry is None:
            return RevocationCheck(serial, RevocationStatus.GOOD, "crl", this_update=self.crl.last_update_utc)
        try:
            reason: x509.ReasonFlags | None = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = None
        return RevocationCheck(serial, RevocationStatus.REVOKED, "crl", revoked_at=entry.revocation_date_utc,
                               reason=reason, this_update=self.crl.last_update_utc)


class OcspRevocationSource(BaseRevocationSource):
    """Asks an OCSP responder (HTTP POST, RFC 6960 Appendix A) with a nonce, and verifies the answer:
    signed by the issuer or by a delegated signer the issuer certified for OCSP signing, about the
    asked serial, current, and echoing the nonce."""

    def __init__(self, url: str | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 clock: Clock = utc_now) -> None:
        self.url = url
        self.timeout = timeout
        self._clock = clock

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationCheck:
        url = self.url or ocsp_url_of(certificate)
        if url is None:
            raise RevocationCheckError(f"certificate {certificate_serial_hex(certificate)} names no OCSP responder "
                                       "and no URL was configured")
        nonce = os.urandom(16)
        request = (ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
                   .add_extension(x509.OCSPNonce(nonce), critical=False).build())
        body = _http("POST", url, self.timeout, request.public_bytes(serialization.Encoding.DER),
                     {"Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"})
        return self._read_response(body, certificate, issuer, nonce)

    def _read_response(self, body: bytes, certificate: x509.Certificate, issuer: x509.Certificate,
                       nonce: bytes) -> RevocationCheck:
        serial = certificate_serial_hex(certificate)
        try:
            response = ocsp.load_der_ocsp_response(body)
        except ValueError as exc:
            raise RevocationCheckError(f"the OCSP responder sent something else than an OCSP response: {exc}") from exc
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise RevocationCheckError(f"the OCSP responder refused: {response.response_status.name.lower()}")
        _verify_ocsp_signature(response, issuer, require_aware(self._clock(), "clock"))
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed != nonce:
            raise RevocationCheckError("the OCSP response does not echo our nonce (replayed or not ours)")
        single = next((r for r in response.responses if r.serial_number == certificate.serial_number), None)
        if single is None:
            raise RevocationCheckError(f"the OCSP response says nothing about serial {serial}")
        now = require_aware(self._clock(), "clock")
        if single.this_update_utc > now + CLOCK_SKEW:
            raise RevocationCheckError(f"the OCSP answer for {serial} is dated later ({single.this_update_utc})")
        if single.next_update_utc is not None and single.next_update_utc < now - CLOCK_SKEW:
            raise RevocationCheckError(f"the OCSP answer for {serial} expired at {single.next_update_utc}")
        status = {
            ocsp.OCSPCertStatus.GOOD: RevocationStatus.GOOD,
            ocsp.OCSPCertStatus.REVOKED: RevocationStatus.REVOKED,
            ocsp.OCSPCertStatus.UNKNOWN: RevocationStatus.UNKNOWN,
        }[single.certificate_status]
        return RevocationCheck(serial, status, "ocsp", revoked_at=single.revocation_time_utc,
                               reason=single.revocation_reason, this_update=single.this_update_utc)


class MemoryRevocationSource(BaseRevocationSource):
    """Answers from a revocation registry in memory. With `issued`, serials not in it are UNKNOWN
    (like OCSP); without it, every unrevoked serial is GOOD (like a CRL)."""

    def __init__(self, registry: RevocationRegistry, issued: Collection[str] | None = None,
                 clock: Clock = utc_now) -> None:
        self.registry = registry
        self.issued = issued
        self._clock = clock

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate) -> RevocationCheck:
        serial = certificate_serial_hex(certificate)
        now = require_aware(self._clock(), "clock")
        revocation = self.registry.get(serial)
        if revocation is not None and revocation.revoked_at <= now:
            return RevocationCheck(serial, RevocationStatus.REVOKED, "memory", revoked_at=revocation.revoked_at,
                                   reason=revocation.reason.rfc5280, this_update=now)
        if self.issued is not None and serial not in self.issued:
            return RevocationCheck(serial, RevocationStatus.UNKNOWN, "memory", this_update=now)
        return RevocationCheck(serial, RevocationStatus.GOOD, "memory", this_update=now)


def check_revocation_crl(crl: x509.CertificateRevocationList, certificate: x509.Certificate,
                         issuer: x509.Certificate, at: datetime | None = None) -> RevocationCheck:
    """One CRL check (verifies the CRL's signature against `issuer` and its freshness at `at`)."""
    clock: Clock = (lambda: at) if at is not None else utc_now
    return CrlRevocationSource(crl, clock).check(certificate, issuer)


def check_revocation_ocsp(url: str | None, certificate: x509.Certificate, issuer: x509.Certificate,
                          timeout: float = DEFAULT_TIMEOUT_SECONDS) -> RevocationCheck:
    """One OCSP check at `url` (None: the certificate's AIA OCSP URL)."""
    return OcspRevocationSource(url, timeout).check(certificate, issuer)


def fetch_crl(url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> x509.CertificateRevocationList:
    """Download a CRL (DER, or PEM if the server sends that)."""
    body = _http("GET", url, timeout, None, {"Accept": "application/pkix-crl"})
    try:
        if body.startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(body)
        return x509.load_der_x509_crl(body)
    except ValueError as exc:
        raise RevocationCheckError(f"{url} did not return a CRL: {exc}") from exc


def _verify_ocsp_signature(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime) -> None:
    """The response is signed by the issuer itself, or by a certificate in the response that the
    issuer signed, with id-kp-OCSPSigning and valid now (RFC 6960 §4.2.2.2)."""
    signer = issuer
    if response.certificates:
        delegated = response.certificates[0]
        try:
            delegated.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise RevocationCheckError("the OCSP responder's certificate was not issued by the checked issuer") from exc
        try:
            usages = delegated.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound as exc:
            raise RevocationCheckError("the OCSP responder's certificate is not authorised for OCSP signing") from exc
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            raise RevocationCheckError("the OCSP responder's certificate is not authorised for OCSP signing")
        if not delegated.not_valid_before_utc <= now <= delegated.not_valid_after_utc:
            raise RevocationCheckError("the OCSP responder's certificate is outside its validity period")
        signer = delegated
    public_key = signer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or response.signature_hash_algorithm is None:
        raise RevocationCheckError("the OCSP response is not signed with RSA (the JPKI hierarchy is RSA-2048)")
    try:
        public_key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(),
                          response.signature_hash_algorithm)
    except InvalidSignature as exc:
        raise RevocationCheckError("the OCSP response's signature does not verify") from exc


def _http(method: str, url: str, timeout: float, body: bytes | None, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.read()
    except urllib.error.HTTPError as exc:
        raise RevocationCheckError(f"{method} {url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RevocationCheckError(f"{method} {url} failed: {exc}") from exc
