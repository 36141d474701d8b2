"""`bcl pki`: the JPKI-TEST authentication PKI and the municipalities' electronic-seal certificates.

Everything lives in Settings.pki_dir (data_dir/pki); certificates point at Settings.jpki_repository_url,
which `bcl pki ocsp-serve` serves (OCSP, CRL, root certificate)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from domain.japan_time import format_instant
from streams.commands.option_types import INSTANT, SERIAL

if TYPE_CHECKING:
    from certgen.pki_directory import PkiDirectory
    from streams.settings import Settings

# Domain reason (CLI spelling) → event symbol; the RFC 5280 codes are shown in --help.
_REASONS = {
    "lost-card": "LOST_CARD",
    "card-returned": "CARD_RETURNED",
    "death": "DEATH",
    "moved-abroad": "MOVED_ABROAD",
    "renewal": "RENEWAL",
}


def _pki(settings: Settings) -> PkiDirectory:
    from streams.platform import Platform

    return Platform(settings).pki


def _now() -> datetime:
    return datetime.now(UTC)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    from infra.private_files import write_private_file

    write_private_file(path, data)
    if not private:
        path.chmod(0o644)
    click.echo(f"  wrote {path}")


@click.group()
def pki() -> None:
    """The JPKI-TEST authentication PKI (root, user certificates, CRL, OCSP) and the electronic-seal CA."""


@pki.command()
@click.option("--at", "valid_from", type=INSTANT,
              help="Valid from this instant instead of now (ISO 8601; without a zone, Japan time), e.g. before the "
                   "simulated days a worker runs on with `--at`.")
@click.pass_obj
def init(settings: Settings, valid_from: datetime | None) -> None:
    """Create the hierarchy: authentication root, OCSP signer, electronic-seal root. Idempotent; renews an
    OCSP signer close to expiry.

    The hierarchy is valid from now, or from --at: a worker on a simulated clock (`bcl worker run --at`)
    refuses every card while its clock is before the root's validity."""
    directory = _pki(settings)
    created = directory.initialise(valid_from or _now())
    for what in created:
        click.echo(f"created {what}")
    if not created:
        click.echo("the test PKI already exists; nothing to do")
    click.echo(f"PKI directory: {directory.path}")
    click.echo(f"root certificate: {directory.certificate_path('auth-root')}")
    click.echo(f"repository URL in certificates: {directory.endpoints.base_url}")


@pki.command("issue-card")
@click.option("--serial", required=True, type=SERIAL,
              help="Certificate serial assigned by the register: 16 hex digits (either case).")
@click.option("--kind", type=click.Choice(["card", "smartphone"]), default="card", show_default=True,
              help="My Number card or smartphone certificate (スマホ用電子証明書).")
@click.option("--public-key", "public_key_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Certify this PEM public key instead of generating a key pair (no key file is written).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory for <serial>.key.pem, <serial>.pem and auth-root.pem.")
@click.pass_obj
def issue_card(settings: Settings, serial: str, kind: str, public_key_file: Path | None, out_dir: Path) -> None:
    """Issue a user-authentication certificate (5 years, Japan-time days) with the given serial."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from certgen.keys import private_key_pem
    from certgen.user_certificates import CertificateKind
    from domain.card_lifecycle import card_validity
    from domain.japan_time import japan_date

    directory = _pki(settings)
    now = _now()
    cert_kind = CertificateKind(kind.upper())
    if public_key_file is not None:
        public_key = serialization.load_pem_public_key(public_key_file.read_bytes())
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise click.BadParameter("the public key must be RSA-2048", param_hint="'--public-key'")
        not_before, not_after = card_validity(japan_date(now))
        certificate = directory.issue_certificate(serial, cert_kind, public_key, not_before, not_after, now)
    else:
        card = directory.issue_card(serial, cert_kind, now)
        certificate = card.certificate
        _write(out_dir / f"{serial}.key.pem", private_key_pem(card.key), private=True)
    _write(out_dir / f"{serial}.pem", certificate.public_bytes(serialization.Encoding.PEM))
    _write(out_dir / "auth-root.pem", directory.auth_root_certificate().public_bytes(serialization.Encoding.PEM))
    click.echo(f"issued {cert_kind.value.lower()} certificate {serial}, valid "
               f"{format_instant(certificate.not_valid_before_utc)} – "
               f"{format_instant(certificate.not_valid_after_utc)}")


@pki.command()
@click.option("--old-serial", required=True, type=SERIAL,
              help="Serial of the certificate being renewed (revoked as superseded).")
@click.option("--new-serial", required=True, type=SERIAL, help="Serial the register assigned to the new certificate.")
@click.option("--municipality", help="Municipality code recorded on the revocation of the old certificate.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory for <new-serial>.key.pem and <new-serial>.pem.")
@click.pass_obj
def renew(settings: Settings, old_serial: str, new_serial: str, municipality: str | None, out_dir: Path) -> None:
    """Renew a certificate: issue the successor (same kind), revoke the old one (superseded)."""
    from cryptography.hazmat.primitives import serialization

    from certgen.keys import private_key_pem

    card = _pki(settings).renew_card(old_serial, new_serial, _now(), municipality_code=municipality)
    _write(out_dir / f"{new_serial}.key.pem", private_key_pem(card.key), private=True)
    _write(out_dir / f"{new_serial}.pem", card.certificate.public_bytes(serialization.Encoding.PEM))
    click.echo(f"renewed {old_serial} → {new_serial}; {old_serial} revoked (superseded)")


@pki.command()
@click.option("--serial", required=True, type=SERIAL, help="Serial of the certificate to revoke (16 hex digits).")
@click.option("--reason", required=True, type=click.Choice(list(_REASONS)),
              help="lost-card → keyCompromise; card-returned, death, moved-abroad → cessationOfOperation; "
                   "renewal → superseded (RFC 5280 reason codes on the CRL and in OCSP answers).")
@click.option("--municipality", help="6-digit code of the municipality revoking the certificate.")
@click.option("--at", "revoked_at", type=INSTANT,
              help="When the revocation took effect, ISO 8601 (default now; without a zone it is Japan time).")
@click.pass_obj
def revoke(settings: Settings, serial: str, reason: str, municipality: str | None,
           revoked_at: datetime | None) -> None:
    """Revoke a certificate. The CRL shows it from the next CRL; OCSP answers at once."""
    from certgen.revocation import Revocation
    from domain.card_lifecycle import RevocationReason

    when = _now() if revoked_at is None else revoked_at
    standing = _pki(settings).revoke(Revocation(serial, RevocationReason(_REASONS[reason]), when, municipality))
    if standing.revoked_at != when:
        click.echo(f"{serial} was already revoked at {format_instant(standing.revoked_at)} ({standing.reason.value}); "
                   "that revocation stands")
    else:
        click.echo(f"revoked {serial}: {standing.reason.value} ({standing.reason.rfc5280.value}) "
                   f"at {format_instant(when)}")


@pki.command()
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the CRL, in an existing directory (default: DATA_DIR/pki/crl/auth-NUMBER.crl, "
                   ".pem with --pem).")
@click.option("--pem", is_flag=True, help="Write PEM instead of DER.")
@click.option("--at", "this_update", type=INSTANT,
              help="Issue the CRL as of this instant, ISO 8601 (default now; without a zone it is Japan time), e.g. "
                   "the end of a simulated day: it lists the revocations that took effect up to then.")
@click.pass_obj
def crl(settings: Settings, out_file: Path | None, pem: bool, this_update: datetime | None) -> None:
    """Issue the daily CRL now (thisUpdate now, nextUpdate +24 h, signed by the root). It lists every
    revocation in the PKI index, including those `bcl pki sync` took from the register."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if out_file is not None and not out_file.parent.is_dir():
        raise click.BadParameter(f"the directory {out_file.parent} does not exist", param_hint="'--out'")
    when = _now() if this_update is None else this_update
    revocation_list = _pki(settings).issue_crl(when)
    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    number = revocation_list.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    if out_file is None:
        # Beside the PKI it came from, not in the working directory.
        out_file = settings.pki_dir / "crl" / f"auth-{number}.{'pem' if pem else 'crl'}"
        out_file.parent.mkdir(exist_ok=True)
    _write(out_file, revocation_list.public_bytes(encoding))
    next_update = revocation_list.next_update_utc
    click.echo(f"CRL number {number}: {len(revocation_list)} revoked certificates, "
               f"next update {format_instant(next_update) if next_update else '-'}")


@pki.command()
@click.option("--serial", required=True, type=SERIAL, help="Serial to look up (16 hex digits).")
@click.pass_obj
def status(settings: Settings, serial: str) -> None:
    """Show what the PKI knows about a serial: issued (kind, validity) and revoked (when, why)."""
    from domain.certificate_serial import parse_serial

    directory = _pki(settings)
    issued = directory.index.get(serial)
    known = directory.status_of(parse_serial(serial))
    if issued is None:
        click.echo(f"{serial}: unknown (not issued by this PKI)")
        return
    click.echo(f"{serial}: {known.status.value.lower()}; {issued.kind.value.lower()} certificate, valid "
               f"{format_instant(issued.not_before)} – {format_instant(issued.not_after)}")
    if known.revocation is not None:
        click.echo(f"  revoked at {format_instant(known.revocation.revoked_at)}: {known.revocation.reason.value}")


@pki.command("ocsp-serve")
@click.option("--host", default=None, help="Address to bind (default: the host of the repository URL).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: the port of the repository URL; 0 = any free port).")
@click.pass_obj
def ocsp_serve(settings: Settings, host: str | None, port: int | None) -> None:
    """Serve the OCSP responder (POST and GET, RFC 6960), the daily CRL and the root certificate, in the
    foreground until interrupted."""
    import structlog

    from certgen.ocsp_responder import RepositoryContent, serve_repository

    directory = _pki(settings)
    directory.initialise(_now())  # renews the OCSP signer if it is close to expiry; creates nothing else if set up
    content = RepositoryContent(directory.ocsp_identity(), directory.index, directory.daily_crl)
    server = serve_repository(host or directory.endpoints.host,
                              directory.endpoints.port if port is None else port, content)
    structlog.get_logger("bcl.pki").info("jpki repository serving", url=server.url, ocsp=f"{server.url}/ocsp")
    click.echo(f"serving {server.url} (OCSP at /ocsp, CRL at /crl/auth.crl); Ctrl-C to stop", err=True)
    from infra.metrics import serve_metrics
    serve_metrics(settings.metrics_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()


@pki.command("seal-cert")
@click.option("--municipality", required=True, help="6-digit local-government code, e.g. 141003 for 横浜市.")
@click.option("--name", help="Municipality name in the certificate (default: from the reference data).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also copy the key, certificate and seal root here.")
@click.pass_obj
def seal_cert(settings: Settings, municipality: str, name: str | None, out_dir: Path | None) -> None:
    """Issue (if missing or close to expiry) the municipality's electronic-seal signing certificate."""
    from cryptography.hazmat.primitives import serialization

    from certgen.keys import private_key_pem
    from domain.codes import is_valid_municipality_code

    if not is_valid_municipality_code(municipality):
        raise click.BadParameter(f"{municipality!r} is not a local-government code (6 digits, valid check digit)",
                                 param_hint="'--municipality'")
    if name is None:
        from streams.register.reference import load_reference_data

        name = load_reference_data().municipality(municipality).name
    directory = _pki(settings)
    credentials, issued = directory.ensure_seal_certificate(municipality, name, _now())
    subject = credentials.certificate.subject.rfc4514_string()
    click.echo(f"{'issued' if issued else 'existing'} seal certificate {subject}")
    click.echo(f"  {directory.certificate_path(f'seals/{municipality}')}")
    if out_dir is not None:
        _write(out_dir / f"seal-{municipality}.key.pem", private_key_pem(credentials.key), private=True)
        _write(out_dir / f"seal-{municipality}.pem", credentials.certificate.public_bytes(serialization.Encoding.PEM))
        _write(out_dir / "seal-root.pem", credentials.chain[-1].public_bytes(serialization.Encoding.PEM))


@pki.command("key-pool")
@click.option("--dir", "pool_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where the pool file lives (default data_dir/pki/key-pool).")
@click.option("--size", type=click.IntRange(1, 100_000), default=256, show_default=True, help="Number of keys.")
@click.pass_obj
def key_pool(settings: Settings, pool_dir: Path | None, size: int) -> None:
    """Pre-generate a pool of RSA-2048 keys for tests and load generators (virtual cards share them)."""
    from rich.progress import Progress

    from certgen.keys import KeyPool

    pool = KeyPool(pool_dir or settings.key_pool_dir, size)
    if pool.path.exists():
        pool.load()
        click.echo(f"key pool {pool.path} already holds {size} keys")
        return
    with Progress(transient=True) as progress:
        task = progress.add_task("generating RSA-2048 keys", total=size)
        pool.load(lambda n: progress.advance(task, n))
    click.echo(f"wrote {size} keys to {pool.path}")


@pki.command()
@click.option("--until-caught-up", is_flag=True,
              help="Stop once everything the backup has accepted is processed and nothing arrived for a while.")
@click.option("--idle-seconds", type=float, default=2.0, show_default=True, help="Idle time that counts as caught up.")
@click.option("--key-pool-size", type=click.IntRange(1, 100_000), default=256, show_default=True,
              help="Size of the key pool in data_dir/pki/key-pool whose keys the virtual cards use (made if missing).")
@click.pass_obj
def sync(settings: Settings, until_caught_up: bool, idle_seconds: float, key_pool_size: int) -> None:
    """Keep the PKI in step with the register: issue the certificates of new serials and revoke those a
    change ended (renewal → superseded, card revoked → keyCompromise, death / emigration / deletion →
    cessationOfOperation; a move within Japan keeps them), publishing each revocation on
    bcl.jpki.revocations. Acts only on changes the backup materialiser has applied; safe to re-run."""
    import json
    import signal
    import threading

    from rich.progress import Progress

    from infra.metrics import serve_metrics
    from streams.platform import Platform

    platform = Platform(settings)
    platform.bootstrap_servers  # noqa: B018 - checked before minutes of key generation, not after
    pool = platform.key_pool(key_pool_size)
    if not pool.path.exists():
        with Progress(transient=True) as progress:
            task = progress.add_task("generating the RSA-2048 key pool of the virtual cards", total=key_pool_size)
            pool.load(lambda n: progress.advance(task, n))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    processor = platform.card_lifecycle(pool)
    serve_metrics(settings.metrics_port)
    counters = processor.run(stop, until_caught_up=until_caught_up, idle_seconds=idle_seconds)
    click.echo(json.dumps(counters.as_dict()))
