"""End-user authentication certificates (利用者証明用電子証明書) issued directly by the root.

The subject carries no personal data (`C=JP, CN=<opaque id>`); the resident is found through the
serial number, which the register assigns (domain.certificate_serial) and links to the person.
A smartphone certificate (スマホ用電子証明書) is the same kind of certificate with its own serial;
the kind (card or smartphone) lives in the register and in the PKI index, not in the certificate.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from certgen.authority import SIGNATURE_HASH, CertificateAuthority, require_aware
from certgen.endpoints import JpkiEndpoints
from certgen.errors import PkiError
from certgen.keys import RSA_KEY_BITS
from domain.certificate_serial import format_serial, parse_serial

_OPAQUE_ID_RE = re.compile(r"[0-9A-Z]{8,64}")


class CertificateKind(StrEnum):
    """Where the certificate lives (the register's JpkiCertificateKind)."""

    CARD = "CARD"
    SMARTPHONE = "SMARTPHONE"


def certificate_serial_hex(certificate: x509.Certificate) -> str:
    return format_serial(certificate.serial_number)


def new_subject_id() -> str:
    """An opaque, random subject id: it must not be derivable from anything about the person."""
    return secrets.token_hex(16).upper()


def issue_user_certificate(ca: CertificateAuthority, serial_hex: str, public_key: rsa.RSAPublicKey,
                           not_before: datetime, not_after: datetime, endpoints: JpkiEndpoints,
                           subject_id: str | None = None) -> x509.Certificate:
    """Issue a user-authentication certificate with the caller's serial.

    keyUsage digitalSignature (critical), extendedKeyUsage clientAuth, a CRL distribution point
    and OCSP / caIssuers access at the repository.
    """
    serial = parse_serial(serial_hex)
    not_before = require_aware(not_before, "not_before")
    not_after = require_aware(not_after, "not_after")
    if not_after <= not_before:
        raise PkiError(f"certificate {serial_hex}: not_after {not_after.isoformat()} is not after "
                       f"not_before {not_before.isoformat()}")
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != RSA_KEY_BITS:
        raise PkiError(f"certificate {serial_hex}: JPKI user keys are RSA-{RSA_KEY_BITS}")
    subject_id = subject_id or new_subject_id()
    if not _OPAQUE_ID_RE.fullmatch(subject_id):
        raise PkiError("the subject id must be 8-64 characters of 0-9 and A-Z (an opaque id, no personal data)")
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, subject_id)]))
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(endpoints.crl_url)], relative_name=None, reasons=None,
            crl_issuer=None)]), critical=False)
        .add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                   x509.UniformResourceIdentifier(endpoints.ocsp_url)),
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                   x509.UniformResourceIdentifier(endpoints.root_certificate_url)),
        ]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, SIGNATURE_HASH)
    )


def ocsp_url_of(certificate: x509.Certificate) -> str | None:
    """The OCSP URL from the certificate's authority information access, if any."""
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return None
    for description in access:
        if description.access_method == AuthorityInformationAccessOID.OCSP:
            return str(description.access_location.value)
    return None


def crl_url_of(certificate: x509.Certificate) -> str | None:
    """The first HTTP CRL distribution point of the certificate, if any."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None
    for point in points:
        for name in point.full_name or []:
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith("http"):
                return name.value
    return None
