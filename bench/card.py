"""Benchmark of the virtual My Number card: APDU round trips and signatures per second.

In process (the load-test path): the APDU handler alone. With --pcsc: the same through pyscard, pcscd
and the vpcd link (pcscd is started if it is not running; that needs root).

    .venv/bin/python bench/card.py [--seconds 2] [--pcsc]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.card_client import JpkiCardClient
from kiosk_sim.transport import BaseCardTransport, InProcessTransport

PIN = "1234"


def throwaway_key() -> CardKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"), x509.NameAttribute(NameOID.COMMON_NAME, "BENCH")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return CardKey(key, certificate.public_bytes(serialization.Encoding.DER))


class CountingTransport:
    """Counts the APDUs that reach the transport, so the figures say how many each operation takes."""

    def __init__(self, inner: BaseCardTransport) -> None:
        self.inner = inner
        self.apdus = 0

    def transmit(self, apdu: bytes) -> tuple[bytes, int, int]:
        self.apdus += 1
        return self.inner.transmit(apdu)

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()


def rate(label: str, seconds: float, operation: Callable[[], object], transport: CountingTransport) -> None:
    operation()  # warm up
    count = 0
    transport.apdus = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        operation()
        count += 1
    per_second = count / elapsed
    apdus_per_op = transport.apdus / count
    print(
        f"  {label:<34} {per_second:9.1f} ops/s {1000 / per_second:8.3f} ms/op"
        f"  ({apdus_per_op:4.1f} APDUs/op, {per_second * apdus_per_op:8.0f} APDUs/s)"
    )


def run(inner: BaseCardTransport, seconds: float) -> None:
    transport = CountingTransport(inner)
    client = JpkiCardClient(transport)
    challenge = b"request=bench|kiosk=bench|at=2026-11-21T00:00:00Z"
    rate("SELECT JPKI application", seconds, client.select_jpki, transport)
    rate("read auth certificate", seconds, client.read_auth_certificate, transport)
    rate("PIN tries left", seconds, client.auth_pin_tries_left, transport)
    client.verify_auth_pin(PIN)
    rate("sign challenge (PIN verified)", seconds, lambda: client.sign_challenge(challenge), transport)
    rate("whole kiosk step: cert+PIN+sign", seconds, lambda: client.authenticate(PIN, challenge), transport)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--pcsc", action="store_true", help="also measure through pcscd + vpcd + pyscard")
    args = parser.parse_args()

    key = throwaway_key()
    print(f"virtual card, RSA-{key.private_key.key_size}, certificate {len(key.certificate_der)} bytes")
    print("in process (InProcessTransport):")
    run(InProcessTransport(JpkiCard(auth=key, auth_pin=PIN)), args.seconds)

    if args.pcsc:
        import structlog

        from infra.pcscd import PcscDaemon
        from kiosk_sim.transport import PcscTransport
        from kiosk_sim.vpcd import VpcdCardServer

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings only
        daemon = PcscDaemon.ensure_running()
        server = VpcdCardServer(JpkiCard(auth=key, auth_pin=PIN))
        thread = server.start()
        try:
            with PcscTransport.open("Virtual PCD 00 00", timeout=10) as transport:
                print(f"through PC/SC ({transport.reader_name}):")
                before = server.apdu_count
                run(transport, args.seconds)
                print(f"  (the virtual card answered {server.apdu_count - before} APDUs)")
        finally:
            server.close()
            thread.join(5)
            daemon.stop()


if __name__ == "__main__":
    main()
