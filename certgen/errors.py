"""Errors of the JPKI test PKI and of certificate checks. Each message names what was wrong."""

from __future__ import annotations

from domain.errors import BclError


class PkiError(BclError):
    """Something went wrong making, storing or checking a certificate."""


class PkiNotInitialisedError(PkiError):
    """The PKI directory has no hierarchy yet (run `bcl pki init`)."""


class DuplicateSerialError(PkiError):
    """A certificate with this serial was already issued: serials are never reused."""


class UnknownSerialError(PkiError):
    """No certificate with this serial was issued by this PKI."""


class RevocationCheckError(PkiError):
    """The revocation status could not be established (bad or stale CRL, OCSP failure or bad response)."""


class StaleCrlError(RevocationCheckError):
    """The CRL's nextUpdate has passed: a fresh CRL must be downloaded before trusting it."""


class CertificateDocumentError(BclError):
    """A certificate PDF cannot be laid out, rendered or sealed."""


class CertificateContentError(CertificateDocumentError):
    """The records given cannot make the certificate asked for (deleted record, no seal, no tax year...)."""


class FontError(CertificateDocumentError):
    """The certificate font cannot be read, or lacks a glyph the certificate needs."""


class SealError(CertificateDocumentError):
    """The electronic seal cannot be applied (bad key or certificate, signature too large)."""


class ScrambleError(CertificateDocumentError):
    """The scramble image cannot be made or decoded with the values given (bad key, params or image)."""


class ScrambleDecodeError(ScrambleError):
    """A scan does not show a readable scramble image (markers not found or too damaged)."""
