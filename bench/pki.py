"""Benchmark of the JPKI test PKI: key generation, issuance, CRL building and checks, OCSP over HTTP.

Everything runs in a temporary directory with the repository server on a free 127.0.0.1 port. The
CRL-versus-OCSP figures are the trade-off of docs/domain.md §4: a local CRL lookup against an HTTP round trip.
Prints figures; asserts nothing.

    .venv/bin/python bench/pki.py [--cards 300] [--revocations 10000] [--ocsp 300] [--threads 4]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import serialization

from certgen.endpoints import JpkiEndpoints
from certgen.keys import KeyPool, generate_rsa_key
from certgen.ocsp_responder import RepositoryContent, serve_repository
from certgen.pki_directory import PkiDirectory
from certgen.revocation import Revocation, build_crl
from certgen.revocation_source import CrlRevocationSource, OcspRevocationSource
from certgen.user_certificates import CertificateKind
from domain.card_lifecycle import RevocationReason
from domain.certificate_serial import format_serial


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:10.1f}/s  ({seconds / count * 1000:7.2f} ms each, n={count})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=300, help="certificates to issue")
    parser.add_argument("--revocations", type=int, default=10_000, help="entries in the big CRL")
    parser.add_argument("--ocsp", type=int, default=300, help="OCSP requests")
    parser.add_argument("--threads", type=int, default=4, help="concurrent OCSP clients")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        for _ in range(5):
            generate_rsa_key()
        print(f"RSA-2048 key generation      {rate(5, time.perf_counter() - started)}")

        pool = KeyPool(root / "pool", 16)
        pool.load()
        started = time.perf_counter()
        KeyPool(root / "pool", 16).load()
        print(f"key pool load (16 keys)      {rate(16, time.perf_counter() - started)}")

        server = serve_repository("127.0.0.1", 0)  # content set once the PKI exists
        pki = PkiDirectory(root / "pki", JpkiEndpoints(server.url))
        keys = itertools.cycle(pool.load())
        now = datetime.now(UTC)
        pki.initialise(now, key_factory=lambda: next(keys))
        server.content = RepositoryContent(pki.ocsp_identity(), pki.index, pki.daily_crl)
        server.start_in_thread()

        started = time.perf_counter()
        cards = [pki.issue_card(format_serial(n + 1), CertificateKind.CARD, now, key=pool.key(n))
                 for n in range(args.cards)]
        print(f"issue + index (pool keys)    {rate(args.cards, time.perf_counter() - started)}")
        for card in cards[::2]:
            pki.revoke(Revocation(card.serial, RevocationReason.LOST_CARD, now - timedelta(minutes=1)))

        revocations = [Revocation(format_serial(10**9 + n), RevocationReason.DEATH, now - timedelta(days=1))
                       for n in range(args.revocations)]
        started = time.perf_counter()
        big = build_crl(pki.auth_authority(), revocations, now, crl_number=1)
        seconds = time.perf_counter() - started
        size = len(big.public_bytes(serialization.Encoding.DER))
        print(f"CRL build, {args.revocations} entries     {seconds * 1000:10.1f} ms, {size / 1024:.0f} KiB DER")

        issuer = pki.auth_root_certificate()
        crl_source = CrlRevocationSource(pki.issue_crl(now))
        crl_source.check(cards[0].certificate, issuer)  # signature verified once
        started = time.perf_counter()
        for card in itertools.islice(itertools.cycle(cards), 10_000):
            crl_source.check(card.certificate, issuer)
        print(f"CRL check (local)            {rate(10_000, time.perf_counter() - started)}")

        ocsp_source = OcspRevocationSource(pki.endpoints.ocsp_url)
        sample = list(itertools.islice(itertools.cycle(cards), args.ocsp))
        started = time.perf_counter()
        for card in sample:
            ocsp_source.check(card.certificate, issuer)
        print(f"OCSP check, 1 client         {rate(args.ocsp, time.perf_counter() - started)}")
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as workers:
            list(workers.map(lambda card: ocsp_source.check(card.certificate, issuer), sample))
        print(f"OCSP check, {args.threads} clients        {rate(args.ocsp, time.perf_counter() - started)}")
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
