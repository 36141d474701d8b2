"""Fixtures of the virtual card: throwaway RSA-2048 keys and self-signed certificates (the JPKI test PKI
of certgen/ replaces them later), card factories, and the real PC/SC stack (pcscd + vpcd + pyscard)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from infra.pcscd import PcscDaemon
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.card_info import CardHolder
from kiosk_sim.transport import PcscTransport
from kiosk_sim.vpcd import VPCD_PORT, VpcdCardServer

AUTH_PIN = "1234"
SIGNING_PASSWORD = "ABC123"
CARD_INFO_PIN = "5678"
VPCD_READER = "Virtual PCD 00 00"  # the reader of the first vpcd slot (port 35963)


def self_signed_card_key(common_name: str) -> CardKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return CardKey(key, certificate.public_bytes(serialization.Encoding.DER))


@pytest.fixture(scope="session")
def auth_key() -> CardKey:
    return self_signed_card_key("TEST-AUTH-0001")


@pytest.fixture(scope="session")
def signing_key() -> CardKey:
    return self_signed_card_key("TEST-SIGN-0001")


@pytest.fixture(scope="session")
def holder() -> CardHolder:
    return CardHolder(
        individual_number="123456789018",
        name="山田\u3000花子",
        address="東京都千代田区霞が関二丁目1番2号",
        birth_date="19800401",
        sex="2",
    )


@pytest.fixture
def make_card(auth_key: CardKey, signing_key: CardKey, holder: CardHolder) -> Callable[..., JpkiCard]:
    """A factory: a fully populated card; keyword arguments override its contents."""

    def make(**overrides: object) -> JpkiCard:
        contents: dict[str, object] = {
            "auth": auth_key,
            "auth_pin": AUTH_PIN,
            "auth_ca_certificate_der": auth_key.certificate_der,
            "signing": signing_key,
            "signing_password": SIGNING_PASSWORD,
            "holder": holder,
            "card_info_pin": CARD_INFO_PIN,
        }
        contents.update(overrides)
        return JpkiCard(**contents)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def pcsc_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscDaemon]:
    """The real pcscd with the vpcd reader driver: reused if running, else started for this session."""
    daemon = PcscDaemon.ensure_running(log_path=tmp_path_factory.mktemp("pcscd") / "pcscd.log")
    yield daemon
    daemon.stop()


@pytest.fixture
def vpcd_card(pcsc_daemon: PcscDaemon, make_card: Callable[..., JpkiCard]) -> Iterator[VpcdCardServer]:
    """A fresh virtual card inserted into the first vpcd reader, removed after the test."""
    server = VpcdCardServer(make_card(), port=VPCD_PORT)
    thread = server.start()
    yield server
    server.close()
    thread.join(timeout=5)


@pytest.fixture
def pcsc_transport(vpcd_card: VpcdCardServer) -> Iterator[PcscTransport]:
    """pyscard connected to the virtual card through pcscd."""
    transport = PcscTransport.open(VPCD_READER, timeout=10)
    yield transport
    transport.close()


@pytest.fixture
def tmp_card_files(tmp_path: Path, auth_key: CardKey) -> tuple[Path, Path]:
    """The authentication key (PEM) and certificate (DER) as files, as `bcl card serve` reads them."""
    key_path = tmp_path / "auth-key.pem"
    key_path.write_bytes(
        auth_key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path = tmp_path / "auth-cert.der"
    cert_path.write_bytes(auth_key.certificate_der)
    return key_path, cert_path
