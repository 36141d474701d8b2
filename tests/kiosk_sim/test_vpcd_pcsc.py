"""End to end through the real PC/SC stack: pyscard → pcscd → vpcd reader driver → TCP → the virtual card."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from domain.certificate_serial import format_serial
from infra.pcscd import PcscDaemon
from kiosk_sim.card import ATR, CardKey, PinId
from kiosk_sim.card_client import JpkiCardClient
from kiosk_sim.card_info import CardHolder
from kiosk_sim.errors import PinLocked, WrongPin
from kiosk_sim.transport import PcscTransport
from kiosk_sim.vpcd import VpcdCardServer
from tests.kiosk_sim.conftest import AUTH_PIN, CARD_INFO_PIN, VPCD_READER

REPO = Path(__file__).resolve().parents[2]


def test_the_kiosk_reads_the_certificate(pcsc_transport: PcscTransport, auth_key: CardKey) -> None:
    assert pcsc_transport.atr == ATR
    assert VPCD_READER in pcsc_transport.reader_name
    client = JpkiCardClient(pcsc_transport)
    assert client.read_token_info() == "JPKIAPICCTOKEN2"
    assert client.read_auth_certificate() == auth_key.certificate_der
    assert client.auth_pin_tries_left() == 3


def test_wrong_pin_three_times_locks_the_card_and_the_kiosk_says_so(
    pcsc_transport: PcscTransport, vpcd_card: VpcdCardServer
) -> None:
    client = JpkiCardClient(pcsc_transport)
    client.read_auth_certificate()
    with pytest.raises(WrongPin) as first:
        client.verify_auth_pin("0000")
    assert first.value.tries_left == 2
    with pytest.raises(WrongPin) as second:
        client.verify_auth_pin("0001")
    assert second.value.tries_left == 1
    with pytest.raises(PinLocked) as locked:
        client.verify_auth_pin("0002")
    message = str(locked.value)
    assert "locked" in message and "municipal office" in message
    assert vpcd_card.card.tries_left(PinId.AUTH) == 0
    # A reset through pcscd does not unlock it, nor does taking the card out and putting it back.
    pcsc_transport.reset()
    with pytest.raises(PinLocked):
        client.verify_auth_pin(AUTH_PIN)
    pcsc_transport.close()
    with PcscTransport.open(VPCD_READER, timeout=10) as again:
        with pytest.raises(PinLocked):
            JpkiCardClient(again).auth_pin_tries_left()
        with pytest.raises(PinLocked):
            JpkiCardClient(again).verify_auth_pin(AUTH_PIN)


def test_correct_pin_then_the_card_signs_the_challenge(pcsc_transport: PcscTransport) -> None:
    client = JpkiCardClient(pcsc_transport)
    with pytest.raises(WrongPin):
        client.verify_auth_pin("9999")
    challenge = b"request=0b6f1e2a|kiosk=FM-13101-0042|at=2026-11-21T01:02:03Z"
    result = client.authenticate(AUTH_PIN, challenge)
    certificate = x509.load_der_x509_certificate(result.certificate_der)
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(result.signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    assert client.auth_pin_tries_left() == 3  # the correct PIN reset the counter


def test_card_info_through_pcsc(pcsc_transport: PcscTransport, holder: CardHolder) -> None:
    assert JpkiCardClient(pcsc_transport).read_card_holder(CARD_INFO_PIN) == holder


def test_bcl_card_serve_and_status(
    pcsc_daemon: PcscDaemon, tmp_card_files: tuple[Path, Path], auth_key: CardKey
) -> None:
    key_path, cert_path = tmp_card_files
    bcl = [sys.executable, "-m", "streams.cli"]
    env = {**os.environ, "BCL_LOG_LEVEL": "warning"}
    server = subprocess.Popen(
        [*bcl, "card", "serve", "--key", str(key_path), "--cert", str(cert_path), "--pin", "4321", "--port", "35964"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        status = subprocess.run(
            [*bcl, "card", "status", "--reader", "Virtual PCD 00 01", "--timeout", "15"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        )
        assert status.returncode == 0, status.stderr
        serial = x509.load_der_x509_certificate(auth_key.certificate_der).serial_number
        assert f"serial:         {format_serial(serial)}" in status.stdout
        assert "token info:     JPKIAPICCTOKEN2" in status.stdout
        assert "PIN tries left: 3" in status.stdout
        assert "ATR:            3B E0 00 FF 81 31 FE 45 14" in status.stdout
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert "card removed after" in err


def test_bcl_card_serve_names_a_bad_key(tmp_path: Path, tmp_card_files: tuple[Path, Path]) -> None:
    _, cert_path = tmp_card_files
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "card", "serve", "--key", str(not_a_key), "--cert", str(cert_path),
         "--pin", "1234", "--once"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "not-a-key.pem is not an unencrypted private key" in result.stderr
