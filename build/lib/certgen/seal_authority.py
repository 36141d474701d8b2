"""The municipalities' electronic seal hierarchy (電子契印), separate from JPKI.

A test root in the style of the local-government PKI issues one signing certificate per
municipality; the certificate issuing function seals each certificate PDF with it (PAdES, pyHanko).
Key usage digitalSignature + nonRepudiation (contentCommitment), both critical, and no extended
key usage: NSS (pdfsig) and pyHanko then accept the certificate for document signing, whereas an
EKU without emailProtection makes NSS refuse it for signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from certgen.authority import BACKDATE, SIGNATURE_HASH, CertificateAuthority, create_root, require_aware
from certgen.errors import PkiError

SEAL_ROOT_SUBJECT = x509.Name([
    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LGPKI-TEST"),
    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Electronic Seal CA for Municipalities"),
])
SEAL_CERTIFICATE_VALIDITY = timedelta(days=3 * 365)


@dataclass(frozen=True)
class SealCredentials:
    """What a seal signer needs: the municipality's key, its certificate and the chain up to the seal root."""

    municipality_code: str
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]


def create_seal_root(key: rsa.RSAPrivateKey, now: datetime) -> CertificateAuthority:
    return create_root(key, SEAL_ROOT_SUBJECT, now)


def seal_subject(municipality_code: str, municipality_name: str) -> x509.Name:
    """`C=JP, O=<municipality>, OU=<code>, CN=<municipality> 電子契印`: the name a PDF viewer shows as signer."""
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, municipality_name),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, municipality_code),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{municipality_name} 電子契印"),
    ])


def issue_seal_certificate(ca: CertificateAuthority, public_key: rsa.RSAPublicKey, municipality_code: str,
                           municipality_name: str, now: datetime,
                           validity: timedelta = SEAL_CERTIFICATE_VALIDITY) -> x509.Certificate:
    """The signing certificate of one municipality's certificate-issuing function."""
    now = require_aware(now, "now")
    if not (len(municipality_code) == 6 and municipality_code.isdigit()) or not municipality_name:
        raise PkiError(f"a seal certificate needs a 6-digit municipality code and a name, got "
                       f"{municipality_code!r} / {municipality_name!r}")
    return (
        x509.CertificateBuilder()
        .subject_name(seal_subject(municipality_code, municipality_name))
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + validity, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, SIGNATURE_HASH)
    )
