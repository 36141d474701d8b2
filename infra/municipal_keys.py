"""The municipalities' Ed25519 signing keys and BCL's trust store of their public keys.

Two sides, as in production (docs/operations.md, "Municipal signing keys"):
- the municipality holds its private key (`MunicipalKeyring`, one PEM file per municipality, 0600 in a
  0700 folder whatever the umask); its adapter signs with it and nobody else needs it;
- BCL holds the registered public keys (`TrustStore`, one JSON file): key id, municipality, the key, and
  whether it is revoked. The materialiser trusts a message only if a registered, unrevoked key of the
  event's municipality signed it.

In the embedded setup both live in the data dir: the first publication of a municipality creates its key
and registers it (streams.platform). Rotation: register the new key, switch the adapter to it, and revoke
the old one once nothing signed with it has to be read again."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.codes import is_valid_municipality_code
from domain.errors import BclError
from domain.register_signature import key_id
from infra.private_files import private_folder, write_private_file


class MunicipalKeyError(BclError):
    pass


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SigningKey:
    """A municipality's private key, ready to sign."""

    municipality_code: str
    private_key: Ed25519PrivateKey

    @property
    def key_id(self) -> bytes:
        return key_id(self.public_bytes)

    @property
    def public_bytes(self) -> bytes:
        return _raw(self.private_key.public_key())

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)


class MunicipalKeyring:
    """The municipality's side: its private signing key, `<code>.key.pem` in a 0700 folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, municipality_code: str) -> Path:
        return self.directory / f"{municipality_code}.key.pem"

    def load(self, municipality_code: str) -> SigningKey:
        path = self.path(municipality_code)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            raise MunicipalKeyError(f"no signing key of municipality {municipality_code} at {path}") from None
        except ValueError as exc:
            raise MunicipalKeyError(f"{path} is not a PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise MunicipalKeyError(f"{path} is not an Ed25519 key")
        return SigningKey(municipality_code, key)

    def create(self, municipality_code: str) -> SigningKey:
        """A new key (replacing any previous one: rotation)."""
        if not is_valid_municipality_code(municipality_code):
            raise MunicipalKeyError(f"{municipality_code!r} is not a municipality code")
        private_folder(self.directory)
        key = Ed25519PrivateKey.generate()
        write_private_file(self.path(municipality_code), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return SigningKey(municipality_code, key)

    def load_or_create(self, municipality_code: str) -> tuple[SigningKey, bool]:
        """The key, and whether it was created now."""
        if self.path(municipality_code).exists():
            return self.load(municipality_code), False
        return self.create(municipality_code), True


@dataclass(frozen=True)
class RegisteredKey:
    key_id: str  # hex
    municipality_code: str
    public_key: str  # base64 of the raw 32 bytes
    registered_at: str
    revoked_at: str | None = None


class TrustStore:
    """BCL's side: the registered public keys of the municipalities (a JSON file, replaced atomically).

    A running verifier reads it again when it changes (infra.register_signing.SignatureVerifier)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def version(self) -> tuple[int, int] | None:
        """Changes whenever the file is replaced (modification time, inode); None while there is none."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_ino

    def entries(self) -> list[RegisteredKey]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise MunicipalKeyError(f"cannot read the trust store {self.path}: {exc}") from exc
        return [RegisteredKey(**entry) for entry in data["keys"]]

    def trusted(self) -> dict[bytes, tuple[str, Ed25519PublicKey]]:
        """Key id → (municipality, public key), for the keys that are not revoked."""
        return {bytes.fromhex(e.key_id): (e.municipality_code,
                                          Ed25519PublicKey.from_public_bytes(base64.b64decode(e.public_key)))
                for e in self.entries() if e.revoked_at is None}

    def register(self, municipality_code: str, public_key_pem: bytes, at: dt.datetime | None = None) -> str:
        """Register a municipality's public key (PEM); returns its key id. Registering it again changes nothing."""
        if not is_valid_municipality_code(municipality_code):
            raise MunicipalKeyError(f"{municipality_code!r} is not a municipality code")
        try:
            public_key = serialization.load_pem_public_key(public_key_pem)
        except ValueError as exc:
            raise MunicipalKeyError(f"not a PEM public key: {exc}") from exc
        if not isinstance(public_key, Ed25519PublicKey):
            raise MunicipalKeyError("a municipality's signing key must be Ed25519")
        raw = _raw(public_key)
        kid = key_id(raw).hex()
        entries = self.entries()
        for entry in entries:
            if entry.key_id == kid:
                if entry.municipality_code != municipality_code:
                    raise MunicipalKeyError(f"key {kid} is registered to municipality {entry.municipality_code}")
                return kid
        at = at or dt.datetime.now(dt.UTC)
        entries.append(RegisteredKey(kid, municipality_code, base64.b64encode(raw).decode(), at.isoformat()))
        self._save(entries)
        return kid

    def revoke(self, kid: str, at: dt.datetime | None = None) -> None:
        """From now on, messages signed with the key are dead-lettered."""
        entries = self.entries()
        if not any(e.key_id == kid for e in entries):
            raise MunicipalKeyError(f"no key {kid} in the trust store {self.path}")
        stamp = (at or dt.datetime.now(dt.UTC)).isoformat()
        self._save([RegisteredKey(**{**asdict(e), "revoked_at": e.revoked_at or stamp}) if e.key_id == kid else e
                    for e in entries])

    def _save(self, entries: list[RegisteredKey]) -> None:
        # Not secret, but who may write it decides whose events are trusted: owner-only, like the keys.
        private_folder(self.path.parent)
        write_private_file(self.path, json.dumps({"keys": [asdict(e) for e in entries]}, indent=1).encode())


def verify(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
