"""The electronic seal: poppler's pdfsig (NSS) and pyHanko's validator both accept it; tampering breaks it."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from certgen.certificate_pdf import CertificateRenderer
from certgen.errors import SealError
from certgen.seal import KeyFileSealSigner, seal_pdf
from certgen.truetype_font import TrueTypeFont
from domain.certificate_types import CertificateType
from tests.certgen.factories import ISSUER, household_of_three
from tests.certgen.pdf_fixtures import (
    ISSUED_AT,
    pdfsig,
    shared_seal_material,
    shared_signer,
)
from tests.certgen.seal_fixtures import SealMaterial, make_seal_material, nss_db_trusting


@pytest.fixture
def signer() -> KeyFileSealSigner:
    return shared_signer()


@pytest.fixture
def seal_material() -> SealMaterial:
    return shared_seal_material()


@pytest.fixture(scope="module")
def nss_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database trusting the test seal root: pdfsig's certificate check then means something."""
    return nss_db_trusting(tmp_path_factory.mktemp("nss"), shared_seal_material().root)


def sealed_copy(renderer: CertificateRenderer) -> bytes:
    return renderer.render(CertificateType.RESIDENT_RECORD, household_of_three(), ISSUER, ISSUED_AT).pdf


def test_pdfsig_reports_a_valid_trusted_seal(renderer: CertificateRenderer, nss_db: str, tmp_path: Path) -> None:
    report = pdfsig(sealed_copy(renderer), tmp_path, nss_db)
    assert "Signature Validation: Signature is Valid." in report
    assert "Certificate Validation: Certificate is Trusted." in report
    assert "Signature Type: ETSI.CAdES.detached" in report
    assert "Total document signed" in report
    assert "Signer Certificate Common Name: 横浜市 電子契印" in report
    assert "Signing Time: Nov 21 2026 01:30:00" in report


def test_pdfsig_does_not_trust_an_unknown_root(renderer: CertificateRenderer, tmp_path: Path) -> None:
    stranger = make_seal_material(root_name="Some Other Root")
    other_db = nss_db_trusting(tmp_path / "other-nss", stranger.root)
    report = pdfsig(sealed_copy(renderer), tmp_path, other_db)
    assert "Signature Validation: Signature is Valid." in report  # the bytes are intact...
    assert "Certificate Validation: Certificate issuer isn't Trusted." in report  # ...but the signer is unknown


@pytest.mark.parametrize("where", ["info", "content"])
def test_changing_one_byte_breaks_the_seal(renderer: CertificateRenderer, nss_db: str, tmp_path: Path,
                                           where: str) -> None:
    pdf = bytearray(sealed_copy(renderer))
    at = pdf.index(b"BCL certgen") if where == "info" else pdf.index(b"stream\n", pdf.index(b"/FontFile2")) + 200
    pdf[at] ^= 0x01
    report = pdfsig(bytes(pdf), tmp_path, nss_db)
    assert "Signature is Valid" not in report
    assert "Digest Mismatch" in report or "Signature is Invalid" in report


def test_pyhanko_validates_the_seal_as_pades(renderer: CertificateRenderer, seal_material: SealMaterial) -> None:
    pdf = sealed_copy(renderer)
    root = asn1_x509.Certificate.load(seal_material.root.public_bytes(serialization.Encoding.DER))
    embedded = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    status = validate_pdf_signature(embedded, ValidationContext(trust_roots=[root]))
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    attrs = [a["type"].native for a in embedded.signer_info["signed_attrs"]]
    assert "signing_certificate_v2" in attrs and "signing_time" not in attrs  # PAdES B-B


def test_template_container_equals_pyhankos(signer: KeyFileSealSigner) -> None:
    """The fast path swaps the digest and signature into a template; RSA PKCS#1 v1.5 is deterministic,
    so it must give exactly the bytes pyHanko builds from scratch."""
    digest = hashlib.sha256(b"a certificate").digest()
    assert signer.cms_signature(digest) == signer.pyhanko_cms_signature(digest)
    other = hashlib.sha256(b"another certificate").digest()
    container = cms.ContentInfo.load(signer.cms_signature(other))
    attrs = container["content"]["signer_infos"][0]["signed_attrs"]
    assert next(a for a in attrs if a["type"].native == "message_digest")["values"][0].native == other


def test_ecdsa_seal_goes_through_pyhanko(font: TrueTypeFont, tmp_path: Path) -> None:
    material = make_seal_material(key=ec.generate_private_key(ec.SECP256R1()))
    ec_signer = KeyFileSealSigner(material.key, material.certificate, [material.root])
    pdf = CertificateRenderer(font, ec_signer).render(CertificateType.INCOME, [household_of_three()[0]], ISSUER,
                                                      ISSUED_AT).pdf
    db = nss_db_trusting(tmp_path / "ec-nss", material.root)
    assert "Signature Validation: Signature is Valid." in pdfsig(pdf, tmp_path, db)


def test_seal_pdf_seals_any_pdf_incrementally(font: TrueTypeFont, signer: KeyFileSealSigner, nss_db: str,
                                              tmp_path: Path) -> None:
    unsigned = CertificateRenderer(font, None).render(CertificateType.INCOME, [household_of_three()[0]], ISSUER,
                                                      ISSUED_AT).pdf
    sealed = seal_pdf(unsigned, signer)
    assert sealed.startswith(unsigned)  # an incremental update
    report = pdfsig(sealed, tmp_path, nss_db)
    assert "Signature is Valid." in report and "Certificate is Trusted." in report


def test_seal_key_must_match_its_certificate(seal_material: SealMaterial) -> None:
    other = make_seal_material()
    with pytest.raises(SealError, match="does not match"):
        KeyFileSealSigner(other.key, seal_material.certificate)


def test_signer_loads_from_pem(seal_material: SealMaterial) -> None:
    key_pem, cert_pem, root_pem = seal_material.pem()
    loaded = KeyFileSealSigner.from_pem(key_pem, cert_pem, root_pem)
    assert loaded.signer_name == "横浜市 電子契印"
    with pytest.raises(SealError, match="cannot load"):
        KeyFileSealSigner.from_pem(b"not a key", cert_pem)


def test_municipal_seal_authority_certificate_seals(font: TrueTypeFont, tmp_path: Path) -> None:
    """The real test hierarchy of certgen.seal_authority (LGPKI-TEST root → municipality)."""
    from certgen.keys import generate_rsa_key
    from certgen.seal_authority import create_seal_root, issue_seal_certificate

    now = dt.datetime.now(dt.UTC)
    root = create_seal_root(generate_rsa_key(), now)
    key = generate_rsa_key()
    certificate = issue_seal_certificate(root, key.public_key(), "141003", "横浜市", now)
    municipal = KeyFileSealSigner(key, certificate, [root.certificate])
    pdf = CertificateRenderer(font, municipal).render(CertificateType.SEAL_REGISTRATION, [household_of_three()[0]],
                                                      ISSUER, ISSUED_AT).pdf
    db = nss_db_trusting(tmp_path / "lgpki-nss", root.certificate)
    report = pdfsig(pdf, tmp_path, db)
    assert "Signature is Valid." in report and "Certificate is Trusted." in report
    assert "横浜市 電子契印" in report


def test_digest_must_be_sha256(signer: KeyFileSealSigner) -> None:
    with pytest.raises(SealError, match="SHA-256"):
        signer.cms_signature(b"short")
