"""The municipalities' electronic-seal hierarchy: one signing certificate per municipality, usable for signing."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError

from certgen.errors import PkiError, PkiNotInitialisedError
from certgen.pki_directory import PkiDirectory
from certgen.seal_authority import SEAL_ROOT_SUBJECT


def test_one_seal_certificate_per_municipality_chaining_to_the_seal_root(pki: PkiDirectory,
                                                                       write_pem: Callable) -> None:
    now = datetime.now(UTC)
    yokohama, issued = pki.ensure_seal_certificate("141003", "横浜市", now)
    assert issued
    again, issued_again = pki.ensure_seal_certificate("141003", "横浜市", now)
    assert not issued_again and again.certificate == yokohama.certificate
    osaka, _ = pki.ensure_seal_certificate("271004", "大阪市", now)
    assert osaka.certificate.public_key() != yokohama.certificate.public_key()
    assert yokohama.chain == (pki.seal_root().certificate,)
    assert pki.seal_root().certificate.subject == SEAL_ROOT_SUBJECT != pki.auth_root_certificate().subject

    cert = yokohama.certificate
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "横浜市 電子契印"
    cert.verify_directly_issued_by(pki.seal_root().certificate)

    path = write_pem("seal.pem", cert)
    text = subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-text"], capture_output=True, text=True,
                          timeout=30).stdout
    assert "Digital Signature, Non Repudiation" in text and "sha256WithRSAEncryption" in text
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(pki.certificate_path("seal-root")), str(path)],
                              capture_output=True, text=True, timeout=30)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The JPKI root must not vouch for a seal certificate.
    assert subprocess.run(["openssl", "verify", "-CAfile", str(pki.certificate_path("auth-root")), str(path)],
                          capture_output=True, text=True, timeout=30).returncode != 0


def test_seal_key_signs_and_pyhanko_accepts_it_for_non_repudiation(pki: PkiDirectory) -> None:
    credentials, _ = pki.ensure_seal_certificate("401307", "福岡市", datetime.now(UTC))
    digest_input = b"%PDF-1.7 byte range of a certificate"
    signature = credentials.key.sign(digest_input, padding.PKCS1v15(), hashes.SHA256())
    credentials.certificate.public_key().verify(signature, digest_input, padding.PKCS1v15(), hashes.SHA256())

    def asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    context = ValidationContext(trust_roots=[asn1(credentials.chain[-1])])
    validator = CertificateValidator(asn1(credentials.certificate), validation_context=context)
    asyncio.run(validator.async_validate_usage({"digital_signature", "non_repudiation"}))

    foreign = ValidationContext(trust_roots=[asn1(pki.auth_root_certificate())])
    with pytest.raises(PathBuildingError):
        asyncio.run(CertificateValidator(asn1(credentials.certificate), validation_context=foreign)
                    .async_validate_usage({"digital_signature"}))


def test_missing_seal_and_bad_codes_are_named(pki: PkiDirectory) -> None:
    with pytest.raises(PkiNotInitialisedError, match="bcl pki seal-cert --municipality 011002"):
        pki.seal_credentials("011002")
    with pytest.raises(PkiError, match="6-digit"):
        pki.ensure_seal_certificate("1410", "横浜市", datetime.now(UTC))


def test_seal_certificate_close_to_expiry_is_reissued(pki: PkiDirectory) -> None:
    now = datetime.now(UTC)
    current, _ = pki.ensure_seal_certificate("281000", "神戸市", now)
    later = current.certificate.not_valid_after_utc - timedelta(days=10)
    renewed, issued = pki.ensure_seal_certificate("281000", "神戸市", later)
    assert issued and renewed.certificate.serial_number != current.certificate.serial_number
