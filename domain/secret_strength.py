"""When a configured secret is too weak to keep (docs/operations.md, settings): the platform refuses it
rather than run with a key anyone can guess. A secret protects the scramble images of every printed
certificate (docs/domain.md §3.1), so a guessable one lets anybody read or forge the back of a sheet.

Refused: the constants earlier versions shipped as defaults, common placeholders, anything shorter
than 32 characters, and strings of fewer than 8 distinct characters ("aaaa…", "0101…"). A key the
platform makes itself is 32 random bytes as 64 hexadecimal digits."""

from __future__ import annotations

MIN_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 8

# Shipped as defaults by earlier versions (so they are public), and placeholders people paste.
KNOWN_WEAK = frozenset({
    "bcl-development-pseudonym-key",
    "bcl-development-scramble-key-secret",
    "changeme", "change-me", "secret", "password", "test", "test-secret", "default",
})


def secret_weakness(secret: str) -> str | None:
    """Why `secret` must not be used, or None if it may. The answer never contains the secret."""
    if secret.strip().lower() in KNOWN_WEAK:
        return "it is a published default or a placeholder"
    if len(secret) < MIN_LENGTH:
        return f"it has {len(secret)} characters, fewer than {MIN_LENGTH}"
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
        return f"it has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    return None
