"""`bcl disaster apply|sign|applications|accept|reject|mailer|application-page`: online applications for disaster
support (docs/domain.md §6.3, §6.4), on the `bcl disaster` group. Each a thin shell over the composition root:
the card through PC/SC (like the kiosk), the intake (streams.application_intake), the store
(sinks.disaster_applications), the mailer (streams.disaster_mailer) and the resident's page
(streams.application_web)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from domain.disaster_applications import PROCEDURE_NAMES, ApplicationDraft, ApplicationStatus, Procedure
from domain.japan_time import format_instant
from streams.commands.disaster import disaster
from streams.commands.option_types import JSON_OPTION
from streams.settings import Settings

if TYPE_CHECKING:
    from sinks.disaster_applications import Application

_PROCEDURES = [p.value for p in Procedure]
_pin_option = click.option("--pin", required=True,
                           help="The card's 4-digit authentication PIN (3 tries, then the card locks).")
_reader_option = click.option("--reader", help="PC/SC reader whose name contains this (default: any reader with a "
                                               "card).")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sign(draft: ApplicationDraft, pin: str, reader: str | None) -> tuple[bytes, bytes]:
    """The card's authentication certificate and its signature over the draft, through pcscd (nothing sent if the
    PIN is wrong or the card locked)."""
    from kiosk_sim.transport import PcscTransport
    from streams.application_intake import card_signature

    with PcscTransport.open(reader, timeout=5) as transport:
        return card_signature(transport, draft, pin)


def _values(a: Application) -> dict[str, Any]:
    return {"application_id": a.application_id, "disaster_id": a.disaster_id, "procedure": a.procedure.value,
            "procedure_name": PROCEDURE_NAMES[a.procedure], "applied_at": format_instant(a.applied_at),
            "municipality_code": a.municipality_code, "resident_code": a.resident_code,
            "household_number": a.household_number, "dwelling_id": a.dwelling_id, "matched": a.matched,
            "match_reason": a.match_reason, "status": a.status.value, "decided_by": a.decided_by,
            "decided_at": None if a.decided_at is None else format_instant(a.decided_at),
            "decision_reason": a.decision_reason,
            "ready_told_at": None if a.ready_told_at is None else format_instant(a.ready_told_at)}


def _line(a: Application) -> str:
    match = "matched" if a.matched else "NOT MATCHED"
    decided = f" by {a.decided_by}" + (f" ({a.decision_reason})" if a.decision_reason else "") if a.decided_by else ""
    return (f"{a.application_id}  {PROCEDURE_NAMES[a.procedure]}  {a.status.value}{decided}  "
            f"{a.municipality_code or '-'}  {match}: {a.match_reason}")


@disaster.command()
@click.argument("disaster_id")
@click.option("--procedure", "procedure_name", required=True, type=click.Choice(_PROCEDURES, case_sensitive=False),
              help="What to apply for: RISAI_CERTIFICATE 罹災証明書, HISAI_CERTIFICATE 被災証明書, "
                   "LIVELIHOOD_RECOVERY_SUPPORT 被災者生活再建支援金, CONDOLENCE 災害弔慰金, DISABILITY_CONDOLENCE "
                   "災害障害見舞金, RELIEF_LOAN 災害援護資金.")
@click.option("--mail", required=True, metavar="ADDRESS", help="Where the decision and 'ready to issue' are mailed.")
@_pin_option
@_reader_option
@JSON_OPTION
@click.pass_obj
def apply(settings: Settings, disaster_id: str, procedure_name: str, mail: str, pin: str, reader: str | None,
          as_json: bool) -> None:
    """Apply online: the card in a PC/SC reader signs the application with its authentication key, the server
    verifies the signature and the certificate (chain, revocation), matches it against the ledger and stores it.
    Prints the application id once it is stored durably (the staff are mailed)."""
    from streams.application_intake import new_draft
    from streams.platform import Platform

    platform = Platform(settings)
    platform.disaster_store.disaster(disaster_id.strip())  # an unknown disaster ends here, before the card
    draft = new_draft(disaster_id.strip(), procedure_name, mail, _now())
    certificate, signature = _sign(draft, pin, reader)
    stored = platform.application_intake().submit(draft, certificate, signature)
    if as_json:
        click.echo(json.dumps(_values(stored), ensure_ascii=False))
        return
    click.echo(stored.application_id)
    click.echo(("matched the ledger: " if stored.matched else "did NOT match the ledger (staff will check): ")
               + stored.match_reason, err=True)


@disaster.command()
@click.argument("draft_text", metavar="DRAFT")
@_pin_option
@_reader_option
def sign(draft_text: str, pin: str, reader: str | None) -> None:
    """Sign a draft application from the resident's page with the card (through pcscd) and print the signed
    application, one line to paste back into the page. The PIN goes to the card only."""
    from domain.application_token import read_draft, signed_text

    draft = read_draft(draft_text)
    click.echo(f"{PROCEDURE_NAMES[draft.procedure]} — disaster {draft.disaster_id}, mails to {draft.mail_address}",
               err=True)
    certificate, signature = _sign(draft, pin, reader)
    click.echo(signed_text(draft, certificate, signature))


@disaster.command()
@click.argument("disaster_id")
@click.option("--municipality", metavar="CODE", help="Only this municipality's applications (and the unmatched).")
@click.option("--status", type=click.Choice([s.value for s in ApplicationStatus], case_sensitive=False),
              help="Only the applications of this status.")
@JSON_OPTION
@click.pass_obj
def applications(settings: Settings, disaster_id: str, municipality: str | None, status: str | None,
                 as_json: bool) -> None:
    """The applications of a disaster, oldest first, with the automatic match and why it failed."""
    from sinks.audit import record_access
    from streams.platform import Platform

    found = Platform(settings).disaster_applications.applications(
        disaster_id.strip(), municipality, None if status is None else ApplicationStatus(status.upper()))
    # The list names residents and mail addresses (in --json): a read of personal data, audited.
    record_access(settings.audit_file, "disaster.applications.list", municipality or "*", len(found),
                  disaster_id=disaster_id.strip())
    if as_json:
        click.echo(json.dumps({"applications": [{**_values(a), "mail_address": a.mail_address} for a in found]},
                              ensure_ascii=False))
        return
    for a in found:
        click.echo(_line(a))
    if not found:
        click.echo("no application")


_staff_option = click.option("--staff", required=True, help="Who decides (kept with the decision).")


@disaster.command()
@click.argument("application_id")
@_staff_option
@click.option("--reason", help="Why (optional).")
@JSON_OPTION
@click.pass_obj
def accept(settings: Settings, application_id: str, staff: str, reason: str | None, as_json: bool) -> None:
    """Accept an open application (stored with who and when; the applicant is mailed "ready to issue" once the
    dwelling is surveyed)."""
    from streams.platform import Platform

    decided = Platform(settings).disaster_applications.accept(application_id.strip(), staff, _now(), reason)
    click.echo(json.dumps(_values(decided), ensure_ascii=False) if as_json else _line(decided))


@disaster.command()
@click.argument("application_id")
@_staff_option
@click.option("--reason", required=True, help="Why: mailed to the applicant.")
@JSON_OPTION
@click.pass_obj
def reject(settings: Settings, application_id: str, staff: str, reason: str, as_json: bool) -> None:
    """Reject an open application with a reason; the applicant is mailed it."""
    from streams.platform import Platform

    decided = Platform(settings).disaster_applications.reject(application_id.strip(), staff, reason, _now())
    click.echo(json.dumps(_values(decided), ensure_ascii=False) if as_json else _line(decided))


@disaster.command()
@click.option("--once", is_flag=True, help="One round (queue due mails, send the unsent), then exit.")
@click.option("--interval", type=click.FloatRange(0.1), default=2.0, show_default=True,
              help="Seconds between rounds.")
@click.pass_obj
def mailer(settings: Settings, once: bool, interval: float) -> None:
    """Send the mail outbox of disaster support through the SMTP server of the settings (smtp_host, smtp_port),
    each mail marked sent after the server accepted it."""
    from streams.platform import Platform

    mail = Platform(settings).disaster_mailer()
    if once:
        click.echo(f"{mail.run_once()} mail(s) sent")
        return
    stop = threading.Event()
    try:
        mail.run(stop, interval)
    except KeyboardInterrupt:
        stop.set()


@disaster.command("application-page")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8481, show_default=True, help="Port to listen on.")
@click.pass_obj
def application_page(settings: Settings, host: str, port: int) -> None:
    """Serve the resident's application page: the form, the draft to sign with `bcl disaster sign`, the signed
    application pasted back (verified and stored like `bcl disaster apply`)."""
    from aiohttp import web

    from streams.application_web import make_app
    from streams.platform import Platform

    platform = Platform(settings)
    store = platform.disaster_store
    app = make_app(platform.application_intake(), lambda: [d for d in store.disasters() if d.closed_at is None])
    click.echo(f"application page on http://{host}:{port}/", err=True)
    web.run_app(app, host=host, port=port, print=None)


@disaster.command("mail-capture")
@click.option("--folder", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Where each accepted message is written as <Message-ID>.eml (e.g. var/demo/mail).")
@click.option("--port", type=click.IntRange(1, 65535), default=8025, show_default=True,
              help="Port on 127.0.0.1 (the settings' smtp_port).")
def mail_capture(folder: Path, port: int) -> None:
    """An SMTP server on 127.0.0.1 that keeps every mail as an .eml file instead of delivering it (the demo's and
    the tests' mail server; runs until Ctrl-C)."""
    from infra.mail_capture import MailCapture

    stop = threading.Event()
    with MailCapture(folder, port):
        click.echo(f"capturing mails on 127.0.0.1:{port} into {folder}", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
