"""What a municipality's signature on its register changes covers, and how it travels (docs/architecture.md,
"Authenticity of the register's changes"). Pure: hashing and byte layouts only; the Ed25519 keys and the
check of a signature are infra.register_signing's.

Why a signed run and not one signature per message: an Ed25519 verification costs about 100-180 µs here,
two to three times what the materialiser spends on a whole event (about 65 µs), so a full load would be
dominated by it. The adapter therefore signs a *run* of up to RUN_SIZE consecutive messages of one
municipality once: the messages are the leaves of a Merkle tree, the signature covers its root, and each
message carries in its `bcl-signature` header the signature, the signing key's id and the path from its
leaf to the root. Each message still verifies alone (no waiting for the rest of its run, whatever the
partitions, the order, the dead letters among its neighbours or a restart); the verifier computes the
root from the leaf and the path, and one Ed25519 check serves the whole run (the root is remembered once
verified, with the nodes of every path that led to it, so that the next message of the run climbs one or
two levels before it meets a node already authenticated). A run of one message is a plain per-message
signature (an empty path).

Leaves and inner nodes are hashed with different prefixes (0x00, 0x01), so that a leaf can never be
passed off as an inner node (second-preimage attack on Merkle trees); a lone node at the end of a level is
carried up unchanged, never paired with itself."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Container
from typing import NamedTuple

from domain.register_validation import Rejection

# The Kafka header of bcl.register.diffs that carries the signature.
SIGNATURE_HEADER = "bcl-signature"
# Messages per signed run: the path is log2(RUN_SIZE) hashes (256 → 8 × 32 bytes per message).
RUN_SIZE = 256
MAX_PATH = 16  # a path longer than this is not one of ours (runs above 65,536 messages)
KEY_ID_SIZE = 8  # bytes of SHA-256 of the raw public key
SIGNATURE_SIZE = 64  # Ed25519
VERSION = 1
_STATEMENT_TAG = b"bcl.register.diffs signed run v1\x00"
# version, key id, signature, leaf index, run length, path length; then the path
_FIXED = struct.Struct(f">B{KEY_ID_SIZE}s{SIGNATURE_SIZE}sIIB")
DIGEST_SIZE = 32
_NONE = b"\xff\xff\xff\xff"  # the length prefix of an absent key or value


class SignatureHeader(NamedTuple):  # a tuple, not a dataclass: one is decoded per message
    key_id: bytes
    signature: bytes
    index: int  # the message's position in its run
    run_length: int
    path: bytes  # the siblings from the leaf up, 32 bytes each

    def encode(self) -> bytes:
        return _FIXED.pack(VERSION, self.key_id, self.signature, self.index, self.run_length,
                           len(self.path) // DIGEST_SIZE) + self.path

    @classmethod
    def decode(cls, raw: bytes) -> SignatureHeader | None:
        """None when the bytes are not a signature header of this version."""
        if len(raw) < _FIXED.size:
            return None
        version, key_id, signature, index, run_length, length = _FIXED.unpack_from(raw)
        if version != VERSION or length > MAX_PATH or len(raw) != _FIXED.size + length * DIGEST_SIZE:
            return None
        return cls(key_id, signature, index, run_length, raw[_FIXED.size:])


def key_id(public_key: bytes) -> bytes:
    """The id of a raw 32-byte Ed25519 public key: the first bytes of its SHA-256."""
    return hashlib.sha256(public_key).digest()[:KEY_ID_SIZE]


def leaf_digest(key: bytes | None, value: bytes | None) -> bytes:
    """What a message's signature covers: its key and its value (each length-prefixed; None ≠ empty)."""
    return hashlib.sha256(
        b"\x00" + (_NONE if key is None else len(key).to_bytes(4, "big") + key)
        + (_NONE if value is None else len(value).to_bytes(4, "big") + value)
    ).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def run_paths(leaves: list[bytes]) -> tuple[bytes, list[bytes]]:
    """The root of a run's tree and each leaf's path to it."""
    if not leaves:
        raise ValueError("a signed run holds at least one message")
    paths: list[list[bytes]] = [[] for _ in leaves]
    members = [[i] for i in range(len(leaves))]  # which leaves sit under each node of the current level
    level = list(leaves)
    while len(level) > 1:
        up, up_members = [], []
        for j in range(0, len(level) - 1, 2):
            for i in members[j]:
                paths[i].append(level[j + 1])
            for i in members[j + 1]:
                paths[i].append(level[j])
            up.append(_node(level[j], level[j + 1]))
            up_members.append(members[j] + members[j + 1])
        if len(level) % 2:  # the lone node goes up as it is: its leaves' paths get nothing at this level
            up.append(level[-1])
            up_members.append(members[-1])
        level, members = up, up_members
    return level[0], [b"".join(p) for p in paths]


def climb(leaf: bytes, index: int, run_length: int, path: bytes, known: Container[bytes] = ()) -> list[bytes] | None:
    """The nodes from a leaf up its path, as run_paths built the tree (a lone node at the end of a level goes
    up without a sibling): to the root, or only to the first node already in `known` (one authenticated
    before: the verifier then needs no signature check). None when the path does not fit the position and
    run length. The root is the last node when the climb was not stopped."""
    if not 0 <= index < run_length or len(path) % DIGEST_SIZE:
        return None
    node, nodes = leaf, [leaf]
    position, width, used = index, run_length, 0
    while width > 1 and node not in known:
        if not (position == width - 1 and width & 1):
            if used == len(path):
                return None
            sibling = path[used:used + DIGEST_SIZE]
            used += DIGEST_SIZE
            node = _node(sibling, node) if position & 1 else _node(node, sibling)
            nodes.append(node)
        position >>= 1
        width = (width + 1) >> 1
    if width == 1 and used != len(path):
        return None
    return nodes


def signed_statement(municipality_code: str, signing_key_id: bytes, root: bytes) -> bytes:
    """The bytes the municipality's key signs: 'these messages are <municipality>'s', for one run."""
    return _STATEMENT_TAG + municipality_code.encode() + b"\x00" + signing_key_id + root


def signer_rejection(signer_municipality: str, key: bytes | None) -> Rejection | None:
    """A message may only be about the municipality whose key signed it. The key names the event's
    municipality (`<municipality>:<resident code>`, checked against the event by KEY_MISMATCH; a message
    without a key is refused as MISSING_KEY), so the signer, the key and the event all name the same
    municipality."""
    if key is None:
        return None  # refused by the event's validation (MISSING_KEY), like any message without a key
    if not key.startswith(signer_municipality.encode() + b":"):
        return Rejection("SIGNER_MISMATCH",
                         f"signed by municipality {signer_municipality}'s key but the message key names another "
                         "municipality")
    return None
