"""The test PKI on disk (Settings.data_dir / "pki"): keys, certificates, the index, the CRL.

Layout:
    auth-root.pem, auth-root.key.pem       JPKI-TEST user-authentication root
    ocsp-signer.pem, ocsp-signer.key.pem   delegated OCSP signing certificate
    seal-root.pem, seal-root.key.pem       electronic-seal root of the municipalities
    seals/<code>.pem, seals/<code>.key.pem one seal signing certificate per municipality
    index.sqlite3                          issued certificates and revocations (certificate_index.py)
    crl/auth.crl                           the latest CRL (DER)

These are the operations the register's CARD_ISSUED / CARD_RENEWED / CARD_REVOKED events call:
`issue_card`, `renew_card`, `revoke`. Keys are stored unencrypted (mode 0600): it is a test PKI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from certgen.authority import (
    CertificateAuthority,
    create_auth_root,
    issue_ocsp_signer,
    needs_renewal,
    require_aware,
)
from certgen.certificate_index import CertificateIndex
from certgen.endpoints import JpkiEndpoints
from certgen.errors import DuplicateSerialError, PkiError, PkiNotInitialisedError, UnknownSerialError
from certgen.keys import generate_rsa_key, load_private_key_pem, private_key_pem
from certgen.ocsp import OcspResponderIdentity
from certgen.revocation import CRL_REFRESH, Revocation, SerialStatus, build_crl
from certgen.seal_authority import SealCredentials, create_seal_root, issue_seal_certificate
from certgen.user_certificates import CertificateKind, issue_user_certificate
from domain.card_lifecycle import RevocationReason, card_validity
from domain.certificate_serial import parse_serial
from domain.japan_time import japan_date
from infra.private_files import write_private_file

KeyFactory = Callable[[], rsa.RSAPrivateKey]
OCSP_SIGNER_RENEWAL_MARGIN = timedelta(days=30)
SEAL_RENEWAL_MARGIN = timedelta(days=30)
_CRL_COUNTER = "auth_crl_number"


@dataclass(frozen=True)
class IssuedCard:
    """A virtual card's (or smartphone's) JPKI authentication key pair and certificate."""

    serial: str
    kind: CertificateKind
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


class PkiDirectory:
    """One test PKI rooted at a directory. Thread-safe for concurrent status lookups."""

    def __init__(self, path: Path, endpoints: JpkiEndpoints) -> None:
        self.path = path
        self.endpoints = endpoints
        self._authorities: dict[str, CertificateAuthority] = {}
        self._index: CertificateIndex | None = None

    # -- hierarchy -------------------------------------------------------------------------------

    def initialise(self, now: datetime, key_factory: KeyFactory = generate_rsa_key) -> list[str]:
        """Create what is missing (idempotent) and renew an OCSP signer close to expiry.
        Returns what was created, for the operator."""
        now = require_aware(now, "now")
        created: list[str] = []
        if not self._exists("auth-root"):
            self._store("auth-root", create_auth_root(key_factory(), now))
            created.append("JPKI-TEST authentication root")
        root = self.auth_authority()
        signer = self._load("ocsp-signer") if self._exists("ocsp-signer") else None
        if (signer is None or needs_renewal(signer.certificate, now, OCSP_SIGNER_RENEWAL_MARGIN)
                or signer.certificate.issuer != root.subject
                or signer.certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
                != x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key())):
            self._store("ocsp-signer", issue_ocsp_signer(root, key_factory(), now))
            created.append("OCSP signing certificate")
        if not self._exists("seal-root"):
            self._store("seal-root", create_seal_root(key_factory(), now))
            created.append("electronic-seal root")
        self.index  # noqa: B018 - creates the index file and its tables
        return created

    @property
    def is_initialised(self) -> bool:
        return all(self._exists(name) for name in ("auth-root", "ocsp-signer", "seal-root"))

    def auth_authority(self) -> CertificateAuthority:
        return self._load("auth-root")

    def auth_root_certificate(self) -> x509.Certificate:
        return self.auth_authority().certificate

    def ocsp_identity(self) -> OcspResponderIdentity:
        return OcspResponderIdentity(issuer=self.auth_root_certificate(), signer=self._load("ocsp-signer"))

    def seal_root(self) -> CertificateAuthority:
        return self._load("seal-root")

    @property
    def index(self) -> CertificateIndex:
        if self._index is None:
            self._index = CertificateIndex(self.path / "index.sqlite3")
        return self._index

    # -- user certificates -----------------------------------------------------------------------

    def issue_certificate(self, serial_hex: str, kind: CertificateKind, public_key: rsa.RSAPublicKey,
                          not_before: datetime, not_after: datetime, now: datetime,
                          subject_id: str | None = None) -> x509.Certificate:
        """Issue and record a user-authentication certificate with the register's serial."""
        parse_serial(serial_hex)
        if self.index.get(serial_hex) is not None:
            raise DuplicateSerialError(f"a certificate with serial {serial_hex} was already issued")
        certificate = issue_user_certificate(self.auth_authority(), serial_hex, public_key, not_before, not_after,
                                             self.endpoints, subject_id)
        self.index.record_issued(certificate, kind, require_aware(now, "now"))
        return certificate

    def issue_card(self, serial_hex: str, kind: CertificateKind, now: datetime,
                   key: rsa.RSAPrivateKey | None = None, not_after: datetime | None = None) -> IssuedCard:
        """A new key pair (or the given one) and its certificate, valid from the start of today
        (Japan time) for five years unless `not_after` says otherwise."""
        key = key or generate_rsa_key()
        not_before, default_end = card_validity(japan_date(require_aware(now, "now")))
        certificate = self.issue_certificate(serial_hex, kind, key.public_key(), not_before,
                                             not_after or default_end, now)
        return IssuedCard(serial_hex, CertificateKind(kind), key, certificate)

    def renew_card(self, old_serial: str, new_serial: str, now: datetime, key: rsa.RSAPrivateKey | None = None,
                   municipality_code: str | None = None) -> IssuedCard:
        """Issue the successor (same kind) and revoke the old certificate as superseded."""
        old = self.index.get(old_serial)
        if old is None:
            raise UnknownSerialError(f"cannot renew {old_serial}: no certificate with that serial was issued")
        card = self.issue_card(new_serial, old.kind, now, key)
        self.revoke(Revocation(old_serial, RevocationReason.RENEWAL, now, municipality_code))
        return card

    def revoke(self, revocation: Revocation) -> Revocation:
        """Record a revocation of a certificate this PKI issued; returns the one that stands
        (an earlier revocation of the same serial is kept)."""
        if self.index.get(revocation.serial) is None:
            raise UnknownSerialError(f"cannot revoke {revocation.serial}: no certificate with that serial was issued")
        return self.index.record_revocation(revocation)

    def status_of(self, serial: int) -> SerialStatus:
        return self.index.status_of(serial)

    # -- CRL -------------------------------------------------------------------------------------

    @property
    def crl_path(self) -> Path:
        return self.path / "crl" / "auth.crl"

    def issue_crl(self, now: datetime) -> x509.CertificateRevocationList:
        """A new CRL (thisUpdate now, nextUpdate +24 h, next CRL number), stored as the current one."""
        crl = build_crl(self.auth_authority(), self.index.revocations(), require_aware(now, "now"),
                        self.index.next_counter(_CRL_COUNTER))
        write_private_file(self.crl_path, crl.public_bytes(serialization.Encoding.DER))
        self.crl_path.chmod(0o644)
        return crl

    def daily_crl(self, now: datetime) -> x509.CertificateRevocationList:
        """The current CRL while it is within its 24-hour period, otherwise a new one."""
        now = require_aware(now, "now")
        if self.crl_path.exists():
            crl = x509.load_der_x509_crl(self.crl_path.read_bytes())
            next_update = crl.next_update_utc or crl.last_update_utc + CRL_REFRESH
            if crl.last_update_utc <= now < next_update:
                return crl
        return self.issue_crl(now)

    # -- electronic seals ------------------------------------------------------------------------

    def seal_credentials(self, municipality_code: str) -> SealCredentials:
        name = f"seals/{municipality_code}"
        if not self._exists(name):
            raise PkiNotInitialisedError(f"no seal certificate for municipality {municipality_code}: "
                                         f"run `bcl pki seal-cert --municipality {municipality_code}`")
        authority = self._load(name)
        return SealCredentials(municipality_code, authority.key, authority.certificate,
                               (self.seal_root().certificate,))

    def ensure_seal_certificate(self, municipality_code: str, municipality_name: str, now: datetime,
                                key_factory: KeyFactory = generate_rsa_key) -> tuple[SealCredentials, bool]:
        """The municipality's seal credentials, issuing them if missing or close to expiry.
        Returns them and whether they were (re)issued."""
        name = f"seals/{municipality_code}"
        if self._exists(name):
            current = self._load(name)
            if not needs_renewal(current.certificate, now, SEAL_RENEWAL_MARGIN):
                return self.seal_credentials(municipality_code), False
        key = key_factory()
        certificate = issue_seal_certificate(self.seal_root(), key.public_key(), municipality_code,
                                             municipality_name, now)
        self._store(name, CertificateAuthority(certificate, key))
        return self.seal_credentials(municipality_code), True

    # -- files -----------------------------------------------------------------------------------

    def certificate_path(self, name: str) -> Path:
        return self.path / f"{name}.pem"

    def key_path(self, name: str) -> Path:
        return self.path / f"{name}.key.pem"

    def _exists(self, name: str) -> bool:
        return self.certificate_path(name).exists() and self.key_path(name).exists()

    def _store(self, name: str, authority: CertificateAuthority) -> None:
        write_private_file(self.key_path(name), private_key_pem(authority.key))
        write_private_file(self.certificate_path(name), authority.certificate.public_bytes(serialization.Encoding.PEM))
        self.certificate_path(name).chmod(0o644)
        self._authorities[name] = authority

    def _load(self, name: str) -> CertificateAuthority:
        if name in self._authorities:
            return self._authorities[name]
        if not self._exists(name):
            raise PkiNotInitialisedError(f"the test PKI in {self.path} has no {name}: run `bcl pki init`")
        try:
            certificate = x509.load_pem_x509_certificate(self.certificate_path(name).read_bytes())
            key = load_private_key_pem(self.key_path(name).read_bytes(), trusted=True)
        except ValueError as exc:
            raise PkiError(f"{self.path / name}: unreadable certificate or key: {exc}") from exc
        if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
            raise PkiError(f"{self.path / name}: the key does not match the certificate")
        authority = CertificateAuthority(certificate, key)
        self._authorities[name] = authority
        return authority

