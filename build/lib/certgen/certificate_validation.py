"""Is a presented user-authentication certificate one the issuing centre may trust? (docs/domain.md §4)

Chain (the JPKI root issues end-user certificates directly, so the chain is one link), signature,
validity at a given time and purpose. Revocation is checked separately through a revocation source.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from certgen.authority import require_aware
from certgen.user_certificates import certificate_serial_hex
from domain.errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    ForgedCertificateError,
    UnknownIssuerError,
    WrongCertificatePurposeError,
)


def verify_user_certificate(certificate: x509.Certificate, root: x509.Certificate, at: datetime) -> None:
    """Raise a `CertificateValidationError` subclass unless `certificate` is a user-authentication
    certificate issued by `root`, with a valid signature, valid at `at` under a root valid at `at`."""
    at = require_aware(at, "at")
    serial = certificate_serial_hex(certificate)
    if certificate.issuer != root.subject:
        raise UnknownIssuerError(f"certificate {serial} was issued by {certificate.issuer.rfc4514_string()}, "
                                 f"not by the trusted root {root.subject.rfc4514_string()}")
    try:
        certificate.verify_directly_issued_by(root)
    except InvalidSignature as exc:
        raise ForgedCertificateError(f"certificate {serial} names the trusted root but its signature does not "
                                     "verify against the root's key") from exc
    except (ValueError, TypeError) as exc:  # unsupported or mismatched signature algorithm
        raise ForgedCertificateError(f"certificate {serial} cannot be verified against the root: {exc}") from exc
    for cert, what in ((certificate, f"certificate {serial}"), (root, "the trusted root")):
        if at < cert.not_valid_before_utc:
            raise CertificateNotYetValidError(f"{what} is valid only from {cert.not_valid_before_utc.isoformat()}, "
                                              f"checked at {at.isoformat()}")
        if at > cert.not_valid_after_utc:
            raise CertificateExpiredError(f"{what} expired at {cert.not_valid_after_utc.isoformat()}, "
                                          f"checked at {at.isoformat()}")
    _require_authentication_purpose(certificate, serial)


def _require_authentication_purpose(certificate: x509.Certificate, serial: str) -> None:
    try:
        key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise WrongCertificatePurposeError(f"certificate {serial} lacks key usage or extended key usage") from exc
    if not key_usage.digital_signature or ExtendedKeyUsageOID.CLIENT_AUTH not in extended:
        raise WrongCertificatePurposeError(f"certificate {serial} is not a user-authentication certificate "
                                           "(needs digitalSignature and clientAuth)")
    try:
        if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise WrongCertificatePurposeError(f"certificate {serial} is a CA certificate, not a user certificate")
    except x509.ExtensionNotFound:
        pass
