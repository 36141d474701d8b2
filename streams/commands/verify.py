"""`bcl verify`: check an issued certificate — its PDF, or a scan of its paper — and serve the same
checks as a web page. A thin shell over certgen.verification_request (the checks the page makes too).

Nothing can be checked without the installation's seal root and issuance record: when the data dir
has neither, the commands say so in one line instead of calling every certificate a forgery."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import click

from domain.errors import BclError
from streams.commands.exit_status import EXIT_NOT_VERIFIED
from streams.settings import Settings

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from certgen.verification import Finding, VerificationContext, VerificationInputError

# The option through which each input of certgen.verification_request arrives on the command line.
_OPTIONS = {"certificate_id": "--certificate-id", "issuer": "--issuer", "issued_on": "--issued-on",
            "certificate": "--issuer and --issued-on, or --certificate-id"}
DEMO_DATA_DIR = Path("var/demo")


class NothingToVerifyError(BclError):
    """The data dir holds no seal root or no issuance record: no certificate can be checked against it."""


class VerifyInputError(BclError):
    """What was given to `bcl verify` cannot be checked (the message names the file or the option)."""


def _missing(settings: Settings) -> list[str]:
    from streams.platform import Platform

    missing = []
    pki = Platform(settings).pki
    if not pki.certificate_path("seal-root").exists():
        missing.append(f"seal root ({settings.pki_dir})")
    issuance = settings.issuance_dir
    if not issuance.is_dir() or not any(issuance.iterdir()):
        missing.append(f"issuance record ({issuance})")
    return missing


def _context(settings: Settings) -> VerificationContext:
    from certgen.verification import VerificationContext
    from sinks.audit import record_access
    from sinks.issuance_archive import IssuanceArchive
    from streams.platform import Platform

    if missing := _missing(settings):
        raise NothingToVerifyError(
            f"nothing to verify against: the data dir {settings.data_dir} has no {' and no '.join(missing)}; "
            f"give the data dir of the BCL installation that issued the certificate, e.g. "
            f"`bcl --data-dir {DEMO_DATA_DIR} verify ...` for the demo's certificates")
    platform = Platform(settings)

    def audited(municipality_code: str, compared: int, certificate_id: str | None) -> None:
        # The archived fronts are personal data: every comparison against them is recorded.
        record_access(settings.audit_file, "verify-scan", municipality_code, compared,
                      matched_certificate=certificate_id)

    return VerificationContext(
        seal_roots=(platform.pki.seal_root().certificate,),
        archive=IssuanceArchive(settings.issuance_dir),
        key_of=platform.scramble_key,
        on_scan_checked=audited,
    )


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise VerifyInputError(f"cannot read {file}: {exc.strerror or exc}") from None


def _input_error(exc: VerificationInputError) -> VerifyInputError:
    """The shared check's message, naming the option instead of the web page's field."""
    option = _OPTIONS.get(exc.field)
    return VerifyInputError(f"{option}: {exc.detail}" if option else exc.en)


def _print_findings(findings: tuple[Finding, ...], ok: bool, good: str, bad: str, note: str | None = None) -> None:
    """The findings, an optional note, then the verdict: always the last line (the demo reads it)."""
    for finding in findings:
        mark = click.style("✓", fg="green") if finding.ok else click.style("✗", fg="red")
        click.echo(f"  {mark} {finding.message}")
    if note:
        click.echo(f"  ({note})")
    click.echo(click.style(good, fg="green", bold=True) if ok else click.style(bad, fg="red", bold=True))


@click.group()
def verify() -> None:
    """Verify issued certificates: a PDF (seal, issuance record) or a scan of the paper's back.

    The checks need the issuing installation's data dir (seal root, issuance record): for the demo's
    certificates, `bcl --data-dir var/demo verify ...`."""


@verify.command("pdf")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def verify_pdf_command(settings: Settings, file: Path) -> None:
    """Check FILE: electronic seal intact and trusted over the whole file, the exact bytes in the
    issuance record, sealed by the municipality that issued it. Exit status 0 valid, 2 invalid."""
    from certgen.verification import Check, VerificationInputError
    from certgen.verification_request import check_pdf

    context = _context(settings)
    try:
        result = check_pdf(context, _read(file), str(file))
    except VerificationInputError as exc:
        raise _input_error(exc) from None
    click.echo(f"{file} (SHA-256 {result.pdf_sha256})")
    note = None
    untrusted = any(f.check is Check.SEAL and not f.ok and "does not chain" in f.message for f in result.findings)
    if untrusted and any(f.check is Check.RECORD and not f.ok for f in result.findings):
        # A seal of an unknown root and no record is also what a certificate of another installation
        # (the demo's) looks like against this data dir.
        note = (f"checked against the data dir {settings.data_dir}; a certificate issued by another BCL "
                f"installation, e.g. the demo, is checked with `bcl --data-dir {DEMO_DATA_DIR} verify ...`")
    _print_findings(result.findings, result.valid, "VALID", "INVALID", note)
    if not result.valid:
        click.get_current_context().exit(EXIT_NOT_VERIFIED)


@verify.command("scan")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--issuer", "--municipality", "issuer",
              help="The issuer as printed on the front beside the mayor's seal (横浜市長), or the municipality code.")
@click.option("--issued-on", help="... and the issue date as printed (令和8年11月17日; or 2026-11-17).")
@click.option("--certificate-id", help="Or: the id of the certificate the paper claims to be.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the restored front (PNG).")
@click.option("--compare", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write restored | issued side by side (PNG; default <out>-compare.png; only on a match).")
@click.pass_obj
def verify_scan_command(settings: Settings, image: Path, issuer: str | None, issued_on: str | None,
                        certificate_id: str | None, out: Path, compare: Path | None) -> None:
    """Restore the front from a scan or photo of a certificate's back (IMAGE) and compare it with the
    issued sheet the code at the bottom of the back names. When that code cannot be read, name the
    certificate by --issuer and --issued-on as printed on the front, or by --certificate-id (given
    anyway, they are checked against the code). Exit status 0 on a match, 4 otherwise."""
    from certgen.verification import VerificationInputError, side_by_side
    from certgen.verification_request import check_scan

    context = _context(settings)
    try:
        result = check_scan(context, _read(image), str(image), certificate_id=certificate_id, issuer=issuer,
                            issued_on=issued_on)
    except VerificationInputError as exc:
        raise _input_error(exc) from None
    if result.restored is not None:
        from PIL import Image

        _write_private_png(out, Image.fromarray(result.restored))
        click.echo(f"restored front: {out}")
        if result.issued is not None:
            compare = compare or out.with_name(f"{out.stem}-compare.png")
            _write_private_png(compare, side_by_side(result.restored, result.issued))
            click.echo(f"restored | issued: {compare}")
    if result.score is not None:
        click.echo(f"score {result.score:.2f} over {result.candidates} issued sheet(s)")
    _print_findings(result.findings, result.matches, "MATCH", "NO MATCH")
    if not result.matches:
        click.get_current_context().exit(EXIT_NOT_VERIFIED)


def _write_private_png(path: Path, image: PILImage) -> None:
    """A restored front shows the certificate's personal data: 0600 in a 0700 folder."""
    from infra.private_files import write_private_file

    png = io.BytesIO()
    image.save(png, format="PNG")
    write_private_file(path, png.getvalue())


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
    app = make_app(_context(settings))
    click.echo(f"verification page on http://{host}:{port}/ (Ctrl-C to stop)")
    web.run_app(app, host=host, port=port, print=None)
