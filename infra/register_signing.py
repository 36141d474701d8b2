"""Signing and verifying the messages of bcl.register.diffs (the format: domain.register_signature).

The adapter signs what it produces with its municipality's key (`RegisterSigner`); the backup
materialiser checks every message before it decodes it (`SignatureVerifier`), against BCL's trust store
(infra.municipal_keys.TrustStore). What does not verify is dead-lettered with one of:

| reason code | the message |
|---|---|
| `UNSIGNED` | has no `bcl-signature` header |
| `BAD_SIGNATURE` | has a header that is not a signature, or a signature or path that does not verify |
| `UNKNOWN_SIGNING_KEY` | is signed with a key the trust store does not hold (or holds as revoked) |
| `SIGNER_MISMATCH` | is signed by one municipality but names another (domain.register_signature) |
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.register_signature import (
    SIGNATURE_HEADER,
    SignatureHeader,
    climb,
    leaf_digest,
    run_paths,
    signed_statement,
    signer_rejection,
)
from domain.register_validation import Rejection
from infra.municipal_keys import SigningKey, TrustStore, verify

Headers = list[tuple[str, bytes]]
# Authenticated tree nodes remembered (about 2 per message; ~40 MB): when full, forgotten at once, and
# the next message of each run checks its run's signature again.
_AUTHENTICATED_NODES = 262_144
# How often a running verifier looks whether the trust store changed (a stat of the file).
REREAD_SECONDS = 5.0


class RegisterSigner:
    """Signs runs of one municipality's messages with its key."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self._key_id = key.key_id

    @property
    def municipality_code(self) -> str:
        return self._key.municipality_code

    def sign_run(self, messages: Sequence[tuple[bytes | None, bytes | None]]) -> list[Headers]:
        """The headers of each message of the run (key, value), in order."""
        root, paths = run_paths([leaf_digest(key, value) for key, value in messages])
        signature = self._key.private_key.sign(signed_statement(self.municipality_code, self._key_id, root))
        n = len(messages)
        return [[(SIGNATURE_HEADER, SignatureHeader(self._key_id, signature, i, n, path).encode())]
                for i, path in enumerate(paths)]


class SignatureVerifier:
    """Checks that a message was signed by a registered key of the municipality it is about."""

    def __init__(self, trust_store: TrustStore, *, reread_seconds: float = REREAD_SECONDS) -> None:
        self._store = trust_store
        self._reread_seconds = reread_seconds
        self._version: tuple[int, int] | None = None
        self._checked = 0.0
        self._trusted: dict[bytes, tuple[str, Ed25519PublicKey]] = {}
        # Tree nodes (roots and the nodes of verified paths) → the municipality whose signature covers them.
        self._nodes: dict[bytes, str] = {}
        self._reread()

    def _reread(self) -> None:
        """Read the trust store again if it changed (one stat of the file): a key registered while a processor
        runs counts from its first message, a revocation within reread_seconds."""
        self._checked = time.monotonic()
        version = self._store.version()
        if version != self._version:
            self._trusted, self._version = self._store.trusted(), version
            self._nodes.clear()

    def check(self, key: bytes | None, value: bytes | None,
              headers: list[tuple[str, bytes | None]] | None) -> Rejection | None:
        """None when the message is authentic, otherwise why not (never mentions the message's content)."""
        raw: bytes | None = None
        for name, header_value in headers or ():
            if name == SIGNATURE_HEADER:
                raw = header_value
        if raw is None:
            return Rejection("UNSIGNED", f"no {SIGNATURE_HEADER} header: the adapter signs every message")
        header = SignatureHeader.decode(raw) if isinstance(raw, bytes) else None  # a header may be null
        if header is None:
            return Rejection("BAD_SIGNATURE", f"the {SIGNATURE_HEADER} header is not a signature of this format")
        if time.monotonic() - self._checked >= self._reread_seconds:
            self._reread()
        trusted = self._trusted.get(header.key_id)
        if trusted is None:
            self._reread()
            trusted = self._trusted.get(header.key_id)
        if trusted is None:
            return Rejection("UNKNOWN_SIGNING_KEY",
                             f"signed with key {header.key_id.hex()}, which is not registered (or revoked)")
        nodes = climb(leaf_digest(key, value), header.index, header.run_length, header.path, self._nodes)
        if nodes is None:
            return Rejection("BAD_SIGNATURE", "the signature's path does not fit its position in the run")
        municipality_code = self._nodes.get(nodes[-1])
        if municipality_code is None:  # climbed to a root not authenticated yet: check the run's signature
            municipality_code, public_key = trusted
            if not verify(public_key, header.signature, signed_statement(municipality_code, header.key_id, nodes[-1])):
                return Rejection("BAD_SIGNATURE",
                                 f"the signature of municipality {municipality_code}'s key does not verify "
                                 "(the message was altered or not signed by that key)")
        if len(self._nodes) >= _AUTHENTICATED_NODES:
            self._nodes.clear()
        for node in nodes[1:]:  # not the leaf: a message is checked once, its ancestors serve its run
            self._nodes[node] = municipality_code
        return signer_rejection(municipality_code, key)
