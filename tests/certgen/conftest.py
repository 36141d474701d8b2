"""Fixtures of certgen's tests: the JPKI test PKI (one PKI per session, served by a real repository
server on 127.0.0.1, keys from a small pool since RSA key generation dominates otherwise, and a
factory of fresh serials), and the shared font and certificate renderer."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certgen.certificate_pdf import CertificateRenderer
from certgen.endpoints import JpkiEndpoints
from certgen.keys import KeyPool
from certgen.ocsp_responder import RepositoryContent, RepositoryServer, serve_repository
from certgen.pki_directory import PkiDirectory
from certgen.truetype_font import TrueTypeFont
from tests.certgen.pdf_fixtures import shared_font, shared_renderer

KEY_POOL_SIZE = 8


@pytest.fixture(scope="session")
def key_pool(tmp_path_factory: pytest.TempPathFactory) -> KeyPool:
    pool = KeyPool(tmp_path_factory.mktemp("key-pool"), KEY_POOL_SIZE)
    pool.load()
    return pool


@pytest.fixture(scope="session")
def pki_server(tmp_path_factory: pytest.TempPathFactory, key_pool: KeyPool) -> Iterator[tuple[PkiDirectory,
                                                                                             RepositoryServer]]:
    """An initialised PKI whose certificates point at a repository server running in a thread."""
    server = serve_repository("127.0.0.1", 0)  # content set once the PKI exists
    directory = PkiDirectory(tmp_path_factory.mktemp("pki") / "pki", JpkiEndpoints(server.url))
    keys = itertools.cycle(key_pool.load())
    directory.initialise(datetime.now(UTC), key_factory=lambda: next(keys))
    server.content = RepositoryContent(directory.ocsp_identity(), directory.index, directory.daily_crl)
    server.start_in_thread()
    yield directory, server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def pki(pki_server: tuple[PkiDirectory, RepositoryServer]) -> PkiDirectory:
    return pki_server[0]


@pytest.fixture
def new_serial() -> Callable[[], str]:
    """Fresh register-style serials (16 lower-case hex digits), never reused within the session."""
    def make() -> str:
        return f"{secrets.randbits(63) | 1:016x}"
    return make


@pytest.fixture
def write_pem(tmp_path: Path) -> Callable[[str, x509.Certificate | x509.CertificateRevocationList], Path]:
    def write(name: str, item: x509.Certificate | x509.CertificateRevocationList) -> Path:
        path = tmp_path / name
        path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
        return path
    return write


@pytest.fixture
def font() -> TrueTypeFont:
    return shared_font()


@pytest.fixture
def renderer() -> CertificateRenderer:
    return shared_renderer()
