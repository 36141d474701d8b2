"""RSA-2048 key pairs: fresh ones for real issuance, and a reusable pool for tests and load generators.

Generating an RSA-2048 key costs 50–100 ms of CPU, which dominates when a test or a load run
needs hundreds of virtual cards. The pool generates N keys once, stores them in one PEM bundle
and hands them out by index (or by certificate serial), so the next run only parses the file.
Pool keys are shared between virtual cards: that is fine for load and tests, never for issuance
to real people — real code paths call `generate_rsa_key`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from certgen.errors import PkiError
from domain.certificate_serial import parse_serial
from infra.private_files import write_private_file

RSA_KEY_BITS = 2048
RSA_PUBLIC_EXPONENT = 65537
_PEM_END = b"-----END PRIVATE KEY-----"


def generate_rsa_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key pair, as on a My Number card's JPKI application."""
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: the test PKI keeps its keys in files readable only by the operator."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key_pem(data: bytes, *, trusted: bool = False) -> rsa.RSAPrivateKey:
    """Parse a PEM RSA private key. `trusted` skips the (slow) key consistency check for keys this
    project wrote itself."""
    key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=trusted)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PkiError(f"expected an RSA private key, got {type(key).__name__}")
    return key


class KeyPool:
    """N RSA-2048 keys generated once and stored in `<directory>/rsa2048-x<N>.pem`.

    The same directory and size always give the same keys (the file is the source of truth), so
    tests and load generators are reproducible across runs once the pool exists.
    """

    def __init__(self, directory: Path, size: int) -> None:
        if size < 1:
            raise PkiError(f"a key pool needs at least one key, got size {size}")
        self.path = directory / f"rsa{RSA_KEY_BITS}-x{size}.pem"
        self.size = size
        self._keys: list[rsa.RSAPrivateKey] | None = None

    def load(self, progress: Callable[[int], None] | None = None) -> list[rsa.RSAPrivateKey]:
        """The pool's keys, generating and storing them first if the file does not exist yet.
        `progress` is called with 1 per generated key (for a progress bar)."""
        if self._keys is not None:
            return self._keys
        if self.path.exists():
            keys = [load_private_key_pem(block + _PEM_END, trusted=True)
                    for block in self.path.read_bytes().split(_PEM_END) if block.strip()]
            if len(keys) != self.size:
                raise PkiError(f"key pool {self.path} holds {len(keys)} keys, expected {self.size}; "
                               "delete the file to rebuild it")
        else:
            keys = []
            for _ in range(self.size):
                keys.append(generate_rsa_key())
                if progress is not None:
                    progress(1)
            write_private_file(self.path, b"".join(private_key_pem(key) for key in keys))
        self._keys = keys
        return keys

    def key(self, index: int) -> rsa.RSAPrivateKey:
        keys = self.load()
        return keys[index % len(keys)]

    def key_for_serial(self, serial_hex: str) -> rsa.RSAPrivateKey:
        """A stable key for a certificate serial (serials are spread evenly over the pool)."""
        return self.key(parse_serial(serial_hex))
