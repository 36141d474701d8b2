"""PKCS#1 v1.5 DigestInfo (RFC 8017 §9.2): the host builds it, the card signs it as it is.

The DER prefixes are the fixed encodings listed in RFC 8017 §9.2, note 1 (AlgorithmIdentifier with NULL
parameters, then the OCTET STRING header). Pure: no I/O.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes

# hash name -> (DER prefix, digest length, cryptography hash class)
_PREFIXES: dict[str, tuple[bytes, int, type[hashes.HashAlgorithm]]] = {
    "sha1": (bytes.fromhex("3021300906052b0e03021a05000414"), 20, hashes.SHA1),
    "sha224": (bytes.fromhex("302d300d06096086480165030402040500041c"), 28, hashes.SHA224),
    "sha256": (bytes.fromhex("3031300d060960864801650304020105000420"), 32, hashes.SHA256),
    "sha384": (bytes.fromhex("3041300d060960864801650304020205000430"), 48, hashes.SHA384),
    "sha512": (bytes.fromhex("3051300d060960864801650304020305000440"), 64, hashes.SHA512),
}


def build_digest_info(hash_name: str, digest: bytes) -> bytes:
    """DER DigestInfo for a digest already computed with `hash_name` (sha1, sha224, sha256, sha384, sha512)."""
    try:
        prefix, size, _ = _PREFIXES[hash_name]
    except KeyError:
        raise ValueError(f"unsupported hash {hash_name!r}; use one of {', '.join(_PREFIXES)}") from None
    if len(digest) != size:
        raise ValueError(f"a {hash_name} digest has {size} bytes, got {len(digest)}")
    return prefix + digest


def digest_info_sha256(message: bytes) -> bytes:
    """DigestInfo of the SHA-256 of `message`: what the kiosk sends the card to sign."""
    return build_digest_info("sha256", hashlib.sha256(message).digest())


def parse_digest_info(data: bytes) -> tuple[hashes.HashAlgorithm, bytes]:
    """The hash algorithm and digest of a DER DigestInfo; ValueError if it is not one of the known forms."""
    for prefix, size, algorithm in _PREFIXES.values():
        if data.startswith(prefix) and len(data) == len(prefix) + size:
            return algorithm(), data[len(prefix):]
    raise ValueError("not a DigestInfo for SHA-1 or SHA-2")
