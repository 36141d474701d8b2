"""`bcl verify`: check an issued certificate — its PDF, or a scan of its paper — and serve the same
checks as a web page. A thin shell over certgen.verification."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from streams.settings import Settings

if TYPE_CHECKING:
    from certgen.verification import Finding, VerificationContext


def _context(settings: Settings) -> VerificationContext:
    from certgen.endpoints import JpkiEndpoints
    from certgen.pki_directory import PkiDirectory
    from certgen.scramble_keys import scramble_key
    from certgen.verification import VerificationContext
    from sinks.audit import record_access
    from sinks.issuance_archive import IssuanceArchive

    pki = PkiDirectory(settings.pki_dir, JpkiEndpoints(settings.jpki_repository_url))

    def audited(municipality_code: str, compared: int, certificate_id: str | None) -> None:
        # The archived fronts are personal data: every comparison against them is recorded.
        record_access(settings.audit_file, "verify-scan", municipality_code, compared,
                      matched_certificate=certificate_id)

    return VerificationContext(
        seal_roots=(pki.seal_root().certificate,),
        archive=IssuanceArchive(settings.issuance_dir),
        key_of=lambda code: scramble_key(settings.scramble_key_secret, code),
        on_scan_checked=audited,
    )


def _print_findings(findings: tuple[Finding, ...], ok: bool, good: str, bad: str) -> None:
    for finding in findings:
        mark = click.style("✓", fg="green") if finding.ok else click.style("✗", fg="red")
        click.echo(f"  {mark} {finding.message}")
    click.echo(click.style(good, fg="green", bold=True) if ok else click.style(bad, fg="red", bold=True))


@click.group()
def verify() -> None:
    """Verify issued certificates: a PDF (seal, issuance record) or a scan of the paper's back."""


@verify.command("pdf")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def verify_pdf_command(settings: Settings, file: Path) -> None:
    """Check FILE: electronic seal intact and trusted over the whole file, the exact bytes in the
    issuance record, sealed by the municipality that issued it. Exit status 0 valid, 2 invalid."""
    from certgen.verification import verify_pdf

    context = _context(settings)
    result = verify_pdf(file.read_bytes(), context.seal_roots, context.archive)
    click.echo(f"{file} (SHA-256 {result.pdf_sha256})")
    _print_findings(result.findings, result.valid, "VALID", "INVALID")
    if not result.valid:
        raise SystemExit(2)


@verify.command("scan")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--certificate-id", help="Id of the certificate the paper claims to be.")
@click.option("--municipality", help="Or: the issuing municipality's code (6 digits) ...")
@click.option("--issued-on", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="... and the issue date printed on the front (YYYY-MM-DD, Gregorian).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the restored front (PNG).")
@click.option("--compare", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write restored | issued side by side (PNG; default <out>-compare.png; only on a match).")
@click.pass_obj
def verify_scan_command(settings: Settings, image: Path, certificate_id: str | None, municipality: str | None,
                        issued_on: datetime | None, out: Path, compare: Path | None) -> None:
    """Restore the front from a scan or photo of a certificate's back (IMAGE) and compare it with the
    issued certificate. Name the certificate by --certificate-id, or by --municipality and --issued-on
    (both printed on the front). Exit status 0 on a match, 2 otherwise."""
    from certgen.verification import load_scan, side_by_side, verify_scan

    if certificate_id is None and (municipality is None or issued_on is None):
        raise click.UsageError("give --certificate-id, or --municipality and --issued-on")
    day: date | None = issued_on.date() if issued_on is not None else None
    context = _context(settings)
    scan = load_scan(image.read_bytes())
    result = verify_scan(scan, context.archive, context.key_of, certificate_id=certificate_id,
                         municipality_code=municipality, issued_on=day)
    if context.on_scan_checked is not None and result.candidates:
        context.on_scan_checked(result.municipality_code or "", result.candidates, result.certificate_id)
    if result.restored is not None:
        from PIL import Image

        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result.restored).save(out)
        click.echo(f"restored front: {out}")
        if result.issued is not None:
            compare = compare or out.with_name(f"{out.stem}-compare.png")
            side_by_side(result.restored, result.issued).save(compare)
            click.echo(f"restored | issued: {compare}")
    if result.score is not None:
        click.echo(f"score {result.score:.2f} over {result.candidates} issued sheet(s)")
    _print_findings(result.findings, result.matches, "MATCH", "NO MATCH")
    if not result.matches:
        raise SystemExit(2)


@verify.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8480, show_default=True, type=int, help="Port to listen on.")
@click.pass_obj
def verify_serve_command(settings: Settings, host: str, port: int) -> None:
    """Serve the verification web page: upload a PDF or a scan, see the verdict."""
    from aiohttp import web

    from certgen.verification_web import make_app
    from infra.metrics import serve_metrics
    serve_metrics(settings.metrics_port)
    click.echo(f"verification page on http://{host}:{port}/ (Ctrl-C to stop)")
    web.run_app(make_app(_context(settings)), host=host, port=port, print=None)
