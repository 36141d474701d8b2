"""Certification authorities of the test PKI: self-signed roots and the delegated OCSP signer.

The JPKI user-authentication hierarchy is a single self-signed root that issues end-user
certificates directly (docs/card_protocol.md, "Certificates and revocation"). Test cards chain to a
separate `O=JPKI-TEST` root, which is what this module makes: RSA-2048, sha256WithRSAEncryption.
The OCSP responder signs with a delegated certificate (id-kp-OCSPSigning) issued by the root, as
real responders do, so the root key is only needed to issue certificates and CRLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certgen.errors import PkiError

SIGNATURE_HASH = hashes.SHA256()  # sha256WithRSAEncryption with an RSA key

AUTH_ROOT_SUBJECT = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-TEST"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for user authentication"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Japan Agency for Local Authority Information Systems"),
])
OCSP_SIGNER_SUBJECT = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-TEST"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "JPKI for user authentication"),
    x509.NameAttribute(NameOID.COMMON_NAME, "JPKI-TEST OCSP Responder"),
])

ROOT_VALIDITY = timedelta(days=20 * 365 + 5)  # root generations are long-lived
OCSP_SIGNER_VALIDITY = timedelta(days=365)
# Backdating absorbs clock differences between the PKI host and the machines that check.
BACKDATE = timedelta(hours=1)


@dataclass(frozen=True)
class CertificateAuthority:
    """An issuer: its certificate and private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def subject(self) -> x509.Name:
        return self.certificate.subject


def require_aware(moment: datetime, what: str) -> datetime:
    """Times are UTC-aware everywhere in the PKI; a naive datetime is a caller bug worth naming."""
    if moment.tzinfo is None:
        raise PkiError(f"{what} must be a timezone-aware datetime, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def create_root(key: rsa.RSAPrivateKey, subject: x509.Name, now: datetime,
                validity: timedelta = ROOT_VALIDITY) -> CertificateAuthority:
    """A self-signed root that issues end-entity certificates directly (pathLen 0)."""
    now = require_aware(now, "now")
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, SIGNATURE_HASH)
    )
    return CertificateAuthority(certificate, key)


def create_auth_root(key: rsa.RSAPrivateKey, now: datetime) -> CertificateAuthority:
    """The JPKI-TEST user-authentication root."""
    return create_root(key, AUTH_ROOT_SUBJECT, now)


def issue_ocsp_signer(ca: CertificateAuthority, key: rsa.RSAPrivateKey, now: datetime,
                      validity: timedelta = OCSP_SIGNER_VALIDITY) -> CertificateAuthority:
    """A delegated OCSP signing certificate (RFC 6960 §4.2.2.2): id-kp-OCSPSigning, issued by the
    root, with id-pkix-ocsp-nocheck so that clients do not ask about the responder itself."""
    now = require_aware(now, "now")
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(OCSP_SIGNER_SUBJECT)
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + validity, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, SIGNATURE_HASH)
    )
    return CertificateAuthority(certificate, key)


def needs_renewal(certificate: x509.Certificate, now: datetime, margin: timedelta) -> bool:
    """True when the certificate ends within `margin` of `now` (or already has)."""
    return certificate.not_valid_after_utc - margin <= require_aware(now, "now")
