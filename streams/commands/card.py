"""`bcl card`: run the virtual My Number card in a vpcd reader, and look at the card in a PC/SC reader."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from streams.settings import Settings

if TYPE_CHECKING:
    from cryptography import x509

    from kiosk_sim.card import CardKey


@click.group("card")
def card() -> None:
    """The virtual My Number card (JPKI) and the kiosk's PC/SC card reader."""


def _load_certificate(path: Path, data: bytes | None = None) -> x509.Certificate:
    """An X.509 certificate from PEM (as `bcl pki issue-card` writes it) or DER."""
    from cryptography import x509

    from kiosk_sim.errors import CardConfigError

    try:
        data = path.read_bytes() if data is None else data
    except OSError as exc:
        raise CardConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CardConfigError(f"{path} is not an X.509 certificate (PEM or DER): {exc}") from exc


def _load_card_key(key_path: Path, cert_path: Path) -> CardKey:
    """A CardKey from an unencrypted PKCS#8/PKCS#1 private key and a certificate, each PEM or DER."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kiosk_sim.card import CardKey
    from kiosk_sim.errors import CardConfigError

    try:
        key_bytes = key_path.read_bytes()
        cert_bytes = cert_path.read_bytes()
    except OSError as exc:
        raise CardConfigError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN" in key_bytes:
            key = serialization.load_pem_private_key(key_bytes, password=None)
        else:
            key = serialization.load_der_private_key(key_bytes, password=None)
    except (ValueError, TypeError) as exc:
        raise CardConfigError(f"{key_path} is not an unencrypted private key (PEM or DER): {exc}") from exc
    certificate = _load_certificate(cert_path, cert_bytes)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CardConfigError(f"{key_path} is not an RSA key; a My Number card holds RSA-2048 keys")
    if certificate.public_key().public_numbers() != key.public_key().public_numbers():
        raise CardConfigError(f"the certificate {cert_path} is not for the key {key_path}")
    return CardKey(key, certificate.public_bytes(serialization.Encoding.DER))


@card.command("serve")
@click.option("--key", "key_path", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="The authentication private key (RSA-2048, unencrypted, PEM or DER): e.g. the SERIAL.key.pem "
                   "that `bcl pki issue-card` writes.")
@click.option("--cert", "cert_path", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="The user-authentication certificate, PEM or DER: e.g. the SERIAL.pem of `bcl pki issue-card`.")
@click.option("--pin", required=True, help="The 4-digit authentication PIN (3 tries).")
@click.option("--ca-cert", "ca_cert_path", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The authentication CA certificate (PEM or DER, e.g. auth-root.pem), served in EF 000B.")
@click.option("--token-info", default="JPKIAPICCTOKEN2", show_default=True,
              help="Token info of EF 0006 (JPKIAPGPSETOKEN: Android phone, JPKIAPIOSTOKEN: iPhone).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where pcscd's vpcd reader driver listens.")
@click.option("--port", type=click.IntRange(1, 65535), default=35963, show_default=True,
              help="The vpcd reader slot's port (35963 is the first reader, 35964 the second).")
@click.option("--start-pcscd", is_flag=True, help="Start pcscd (needs root) if it is not running; stop it on exit.")
@click.option("--once", is_flag=True, help="Exit when the reader goes away instead of waiting for it to return.")
@click.pass_obj
def serve(
    settings: Settings, key_path: Path, cert_path: Path, pin: str, ca_cert_path: Path | None, token_info: str,
    host: str, port: int, start_pcscd: bool, once: bool,
) -> None:
    """Insert a virtual My Number card into pcscd's vpcd reader and answer it until Ctrl-C or SIGTERM.

    The card's PIN counter lives as long as this process: a PIN locked by three wrong entries stays
    locked across resets and reconnections, as on a real card."""
    import structlog
    from cryptography.hazmat.primitives import serialization

    from infra.pcscd import PcscDaemon
    from kiosk_sim.card import JpkiCard
    from kiosk_sim.errors import TransportError
    from kiosk_sim.vpcd import VpcdCardServer

    log = structlog.get_logger("bcl.card")
    auth = _load_card_key(key_path, cert_path)
    ca_der = None
    if ca_cert_path is not None:
        ca_der = _load_certificate(ca_cert_path).public_bytes(serialization.Encoding.DER)
    virtual_card = JpkiCard(auth=auth, auth_pin=pin, auth_ca_certificate_der=ca_der, token_info=token_info)
    daemon = PcscDaemon.ensure_running(log_path=settings.pcscd_log) if start_pcscd else None
    server = VpcdCardServer(virtual_card, host=host, port=port)
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        log.info("removing the card", signal=signal.Signals(signum).name)
        stopping = True
        server.close()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            server.connect(timeout=30)
            click.echo(f"virtual card inserted into the vpcd reader at {host}:{port}", err=True)
            server.serve()
            if once or stopping:
                break
    except TransportError:
        if not stopping:
            raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if daemon is not None:
            daemon.stop()
    click.echo(f"card removed after {server.apdu_count} APDUs", err=True)


@card.command("status")
@click.option("--reader", help="Use the first PC/SC reader whose name contains this (default: any reader with a card).")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for a card.")
def status(reader: str | None, timeout: float) -> None:
    """Show the card in a PC/SC reader: ATR, token info, authentication certificate, PIN tries left.

    Reads only what needs no PIN, so it never uses a try."""
    from cryptography import x509

    from domain.certificate_serial import format_serial
    from kiosk_sim.card_client import JpkiCardClient
    from kiosk_sim.errors import PinLocked
    from kiosk_sim.transport import PcscTransport

    with PcscTransport.open(reader, timeout=timeout) as transport:
        client = JpkiCardClient(transport)
        certificate = x509.load_der_x509_certificate(client.read_auth_certificate())
        try:
            tries: str = str(client.auth_pin_tries_left())
        except PinLocked:
            tries = "0 (locked)"
        click.echo(f"reader:         {transport.reader_name}")
        click.echo(f"ATR:            {transport.atr.hex(' ').upper()}")
        click.echo(f"token info:     {client.read_token_info()}")
        click.echo(f"certificate:    {certificate.subject.rfc4514_string()}")
        click.echo(f"serial:         {format_serial(certificate.serial_number)}")
        click.echo(f"issuer:         {certificate.issuer.rfc4514_string()}")
        valid_from, valid_to = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        click.echo(f"valid:          {valid_from:%Y-%m-%d} to {valid_to:%Y-%m-%d}")
        click.echo(f"PIN tries left: {tries}")
