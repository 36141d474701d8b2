"""Whether a resident's card certificate is to be trusted now (docs/domain.md §4): it chains to the JPKI-TEST
authentication root, is valid at the time and is a user-authentication certificate, and it is not revoked (the
daily CRL of the PKI directory, or OCSP by configuration). One place for the check, used by the certificate worker
(a kiosk request) and by the intake of online applications (streams.application_intake), so that a card the
worker refuses is refused for an application too.

The worker adds what only it knows (the revocations it has seen on bcl.jpki.revocations before the next CRL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from cryptography import x509

from certgen.certificate_validation import verify_user_certificate
from certgen.errors import PkiError, RevocationCheckError
from certgen.pki_directory import PkiDirectory
from certgen.revocation import RevocationStatus
from certgen.revocation_source import BaseRevocationSource, CrlRevocationSource, OcspRevocationSource, utc_now
from domain.kiosk_rules import ReasonCode, Refusal, refusal

REVOCATION_MODES = ("crl", "ocsp")


class CardTrust:
    def __init__(self, pki: PkiDirectory, *, revocation: str = "crl", ocsp_url: str | None = None,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        if revocation not in REVOCATION_MODES:
            raise ValueError(f"revocation mode must be crl or ocsp, got {revocation!r}")
        self._pki = pki
        self._revocation = revocation
        self._clock = clock
        self.root = pki.auth_root_certificate()
        self._crl_source: CrlRevocationSource | None = None
        self._ocsp_source = OcspRevocationSource(ocsp_url, clock=clock)

    def verify_certificate(self, certificate: x509.Certificate, at: dt.datetime) -> None:
        """Raises a CertificateValidationError unless the certificate chains to the root, is valid at `at` and
        is for user authentication (domain.request_authentication.CertificateCheck)."""
        verify_user_certificate(certificate, self.root, at)

    def revocation_refusal(self, certificate: x509.Certificate, now: dt.datetime) -> Refusal | None:
        """None when the revocation source says the certificate is good, else the refusal (revoked, unknown to
        OCSP, or the status could not be established: refused rather than trusted blindly)."""
        source: BaseRevocationSource
        try:
            source = self._ocsp_source if self._revocation == "ocsp" else self._crl(now)
            check = source.check(certificate, self.root)
        except (RevocationCheckError, PkiError) as exc:
            return refusal(ReasonCode.REVOCATION_UNAVAILABLE, str(exc))
        if check.status is RevocationStatus.REVOKED:
            return refusal(ReasonCode.CARD_REVOKED, f"{check.source}: revoked {check.revoked_at}")
        if check.status is RevocationStatus.UNKNOWN:
            return refusal(ReasonCode.CERTIFICATE_UNKNOWN, f"{check.source}: unknown serial")
        return None

    def _crl(self, now: dt.datetime) -> CrlRevocationSource:
        """The daily CRL, replaced when its period is over."""
        source = self._crl_source
        if source is None or (source.crl.next_update_utc is not None and now >= source.crl.next_update_utc):
            self._crl_source = source = CrlRevocationSource(self._pki.daily_crl(now), self._clock)
        return source
