"""The electronic seal (電子契印, docs/domain.md §3.1): a PAdES signature of the certificate PDF made with
the municipality's seal certificate.

BaseSealSigner is the boundary (key file now, HSM later): it turns a document digest into a CMS
SignedData container (PAdES baseline B-B: signing-certificate-v2 and message-digest signed
attributes, no signingTime, no timestamp since there is no TSA here). pyHanko builds the container.

Two ways to seal:
- seal_prepared(): the fast path for PDFs from certgen.pdf_render, which writes the signature
  dictionary with an empty /Contents slot. Sealing hashes the byte ranges, asks the signer for the
  container and writes it into the slot: no PDF parsing, no incremental update.
- seal_pdf(): any existing PDF, through pyHanko's PdfSigner as an incremental update.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence

from asn1crypto import cms as asn1_cms
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from certgen.errors import SealError
from certgen.pdf_render import PreparedPdf

DIGEST_ALGORITHM = "sha256"
SEAL_FIELD_NAME = "Seal1"
_RESERVE_MARGIN = 64  # bytes above the dry-run size: ECDSA signatures vary by a few bytes


class BaseSealSigner(ABC):
    """Makes the CMS container of the electronic seal for a document digest."""

    @property
    @abstractmethod
    def signature_reserve(self) -> int:
        """Bytes to reserve in the PDF for the DER container (constant for one signer)."""

    @property
    @abstractmethod
    def signer_name(self) -> str:
        """The seal holder as the signature dictionary names it (the certificate's common name)."""

    @property
    @abstractmethod
    def pyhanko_signer(self) -> signers.Signer:
        """The pyHanko signer, for sealing arbitrary PDFs (seal_pdf)."""

    @abstractmethod
    def cms_signature(self, document_digest: bytes) -> bytes:
        """DER of a detached PAdES CMS SignedData over a SHA-256 document digest."""


class _CachedKeySigner(signers.SimpleSigner):
    """pyHanko's in-memory signer, without re-parsing the private key on every signature.

    SimpleSigner.sign_raw reloads the key from DER for each signature (OpenSSL re-checks an RSA
    key on load, milliseconds per call); the seal key never changes, so it is loaded once."""

    def __init__(self, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._key = key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        if digest_algorithm != DIGEST_ALGORITHM:
            return super().sign_raw(data, digest_algorithm)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


class _ContainerTemplate:
    """A PAdES B-B container of one signer with its two per-document parts swapped in place.

    For a given signer every container is byte-identical except the message-digest attribute and
    the signature value (no signingTime in PAdES, no timestamp). Building it through pyHanko and
    asn1crypto costs ~15 ms, nearly all of it re-encoding the certificates; the template is one
    pyHanko container whose digest and RSA signature (fixed length) are replaced per document.
    The DER signed over is the signed attributes re-tagged as SET OF (RFC 5652 §5.4)."""

    def __init__(self, signer: signers.SimpleSigner, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        probe = os.urandom(32)
        container = asyncio.run(signer.async_sign(probe, DIGEST_ALGORITHM, use_pades=True)).dump()
        info = asn1_cms.ContentInfo.load(container)["content"]["signer_infos"][0]
        attrs = bytearray(info["signed_attrs"].dump())
        attrs[0] = 0x31  # [0] IMPLICIT -> SET OF
        signature = info["signature"].native
        self._container = container
        self._attrs = bytes(attrs)
        self._digest_at = _unique(container, probe)
        self._attrs_digest_at = _unique(self._attrs, probe)
        self._signature_at = _unique(container, signature)
        self._signature_len = len(signature)

    def sign(self, digest: bytes) -> bytes:
        attrs = bytearray(self._attrs)
        attrs[self._attrs_digest_at : self._attrs_digest_at + 32] = digest
        signature = self._key.sign(bytes(attrs), padding.PKCS1v15(), hashes.SHA256())
        if len(signature) != self._signature_len:
            raise SealError("the RSA signature length changed; the container template does not fit")
        out = bytearray(self._container)
        out[self._digest_at : self._digest_at + 32] = digest
        out[self._signature_at : self._signature_at + self._signature_len] = signature
        return bytes(out)


def _unique(haystack: bytes, needle: bytes) -> int:
    at = haystack.find(needle)
    if at < 0 or haystack.find(needle, at + 1) >= 0:
        raise SealError("cannot build the seal container template (field not found exactly once)")
    return at


class KeyFileSealSigner(BaseSealSigner):
    """A seal key held in memory (loaded from a PEM key file by the caller), RSA or ECDSA P-256."""

    def __init__(
        self,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SealError(f"the seal key must be RSA or ECDSA, got {type(key).__name__}")
        if key.public_key().public_numbers() != certificate.public_key().public_numbers():
            raise SealError("the seal key does not match the seal certificate")
        der = serialization.Encoding.DER
        key_info = asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        cert = asn1_x509.Certificate.load(certificate.public_bytes(der))
        others = [asn1_x509.Certificate.load(c.public_bytes(der)) for c in chain]
        self._signer = _CachedKeySigner(
            key, signing_cert=cert, signing_key=key_info, cert_registry=SimpleCertificateStore.from_certs(others)
        )
        names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        self._name = str(names[0].value) if names else certificate.subject.rfc4514_string()
        dry = asyncio.run(self._signer.async_sign(bytes(32), DIGEST_ALGORITHM, dry_run=True, use_pades=True))
        self._reserve = len(dry.dump()) + _RESERVE_MARGIN
        # RSA PKCS#1 v1.5 signatures have a fixed length, so the container can be templated;
        # ECDSA signatures vary in DER length and go through pyHanko each time.
        self._template = _ContainerTemplate(self._signer, key) if isinstance(key, rsa.RSAPrivateKey) else None

    @classmethod
    def from_pem(cls, key_pem: bytes, certificate_pem: bytes, chain_pem: bytes = b"",
                 passphrase: bytes | None = None) -> KeyFileSealSigner:
        """From PEM bytes: the private key, the seal certificate, and the chain (concatenated PEM)."""
        try:
            key = serialization.load_pem_private_key(key_pem, passphrase)
            certificate = x509.load_pem_x509_certificate(certificate_pem)
            chain = x509.load_pem_x509_certificates(chain_pem) if chain_pem.strip() else []
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SealError(f"cannot load the seal key or certificate: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise SealError(f"the seal key must be RSA or ECDSA, got {type(key).__name__}")
        return cls(key, certificate, chain)

    @property
    def signature_reserve(self) -> int:
        return self._reserve

    @property
    def signer_name(self) -> str:
        return self._name

    @property
    def pyhanko_signer(self) -> signers.Signer:
        return self._signer

    def cms_signature(self, document_digest: bytes) -> bytes:
        if len(document_digest) != 32:
            raise SealError(f"expected a SHA-256 digest (32 bytes), got {len(document_digest)} bytes")
        if self._template is not None:
            return self._template.sign(document_digest)
        return self.pyhanko_cms_signature(document_digest)

    def pyhanko_cms_signature(self, document_digest: bytes) -> bytes:
        """The container built by pyHanko from scratch (the reference the template must equal)."""
        # No timestamper and no revocation fetch: signing is local CPU work only.
        try:
            container = asyncio.run(
                self._signer.async_sign(document_digest, DIGEST_ALGORITHM, use_pades=True)
            )
        except SigningError as exc:
            raise SealError(f"the seal signature failed: {exc}") from exc
        return container.dump()


def document_digest(prepared: PreparedPdf) -> bytes:
    """SHA-256 over the /ByteRange of a prepared PDF: everything but the /Contents slot."""
    a, b, c, d = prepared.byte_range()
    view = memoryview(prepared.data)
    digest = hashlib.sha256(view[a : a + b])
    digest.update(view[c : c + d])
    return digest.digest()


def seal_prepared(prepared: PreparedPdf, signer: BaseSealSigner) -> bytes:
    """Fills the signature slot of a PDF from certgen.pdf_render: the sealed PDF bytes."""
    der = signer.cms_signature(document_digest(prepared))
    if len(der) > prepared.contents_length:
        raise SealError(
            f"the seal signature takes {len(der)} bytes but the PDF reserved {prepared.contents_length}; "
            "render with the signer's signature_reserve"
        )
    hexed = der.hex().upper().encode("ascii")
    start = prepared.contents_offset + 1
    out = prepared.data  # the slot is filled in place: a PreparedPdf is sealed once
    out[start : start + len(hexed)] = hexed
    return bytes(out)


def seal_pdf(pdf: bytes, signer: BaseSealSigner) -> bytes:
    """Seals any PDF as an incremental update with pyHanko (slower: parses and rewrites the file)."""
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD_NAME,
        md_algorithm=DIGEST_ALGORITHM,
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="電子契印",
    )
    out = io.BytesIO()
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        signers.PdfSigner(meta, signer=signer.pyhanko_signer).sign_pdf(writer, output=out)
    except (PdfError, SigningError) as exc:
        raise SealError(f"cannot seal the PDF: {exc}") from exc
    return out.getvalue()
