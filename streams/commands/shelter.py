"""`bcl shelter`: shelters of disaster support (docs/domain.md §6.6) — the open data imported, opened and closed per
disaster, capacities by day and by night, occupancy and who is where (sinks.shelters), the printed registration QR
(domain.shelter_pass) — and `bcl shelter terminal`: a shelter terminal's check-in and check-out with the card, the
QR or a staff entry, kept in the terminal's own queue (kiosk_sim.shelter_terminal) and synced to the intake. Each
command a thin shell."""

from __future__ import annotations

import datetime as dt
import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from domain.japan_time import format_instant
from domain.shelter_stays import ReceiptStatus, StayAction, StayError, TokenKind
from streams.commands.option_types import INSTANT, JSON_OPTION
from streams.settings import Settings

if TYPE_CHECKING:
    from kiosk_sim.shelter_terminal import TerminalQueue
    from streams.platform import Platform

_staff_option = click.option("--staff", required=True, help="The staff member who does it (kept with the change).")
_at_option = click.option("--at", type=INSTANT, metavar="TIME", help="When (default now); Japan time if no offset.")
_municipality_option = click.option("--municipality", metavar="CODE", help="Only this municipality's.")
_terminal_option = click.option("--terminal", "terminal_id", required=True, metavar="ID",
                                help="The terminal's id; its queue is the file ID.sqlite3 of the data dir's "
                                     "shelter-terminals folder.")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _emit(values: dict[str, Any], as_json: bool, line: str) -> None:
    click.echo(json.dumps(values, ensure_ascii=False) if as_json else line)


def _platform(settings: Settings) -> Platform:
    from streams.platform import Platform

    return Platform(settings)


@click.group()
def shelter() -> None:
    """Shelters (避難所): import the open data, open and close per disaster, capacity, occupancy, terminals."""


@shelter.command("import")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@_municipality_option
@JSON_OPTION
@click.pass_obj
def import_shelters(settings: Settings, file: Path | None, municipality: str | None, as_json: bool) -> None:
    """Import shelters from a CSV of the open-data format (default: the shipped GSI data of the sample
    municipalities); with --municipality, every row must be of it. All or nothing; capacities entered are kept."""
    shelters = _platform(settings).shelters
    if file is None:
        with resources.as_file(resources.files("domain").joinpath("data", "shelters.csv")) as shipped:
            count = shelters.import_csv(shipped, municipality, _now())
    else:
        count = shelters.import_csv(file, municipality, _now())
    _emit({"imported": count}, as_json, f"{count} shelters imported")


@shelter.command("list")
@_municipality_option
@JSON_OPTION
@click.pass_obj
def list_shelters(settings: Settings, municipality: str | None, as_json: bool) -> None:
    """The imported shelters with their capacities."""
    entries = _platform(settings).shelters.shelters(municipality)
    values = [{"shelter_id": e.shelter.shelter_id, "municipality_code": e.shelter.municipality_code,
               "name": e.shelter.name, "address": e.shelter.address, "kind": e.shelter.kind.value,
               "latitude": e.shelter.latitude, "longitude": e.shelter.longitude,
               "hazards": sorted(e.shelter.hazards),
               "capacity_day": None if e.capacity is None else e.capacity.day,
               "capacity_night": None if e.capacity is None else e.capacity.night} for e in entries]
    if as_json:
        click.echo(json.dumps({"shelters": values}, ensure_ascii=False))
        return
    for v in values:
        capacity = "capacity not entered" if v["capacity_day"] is None else \
            f"capacity day {v['capacity_day']} / night {v['capacity_night']}"
        click.echo(f"{v['shelter_id']}  {v['municipality_code']}  {v['name']} ({v['kind']}), {capacity}")


@shelter.command("open")
@click.argument("disaster_id")
@click.argument("shelter_id")
@_staff_option
@_at_option
@click.pass_obj
def open_shelter(settings: Settings, disaster_id: str, shelter_id: str, staff: str, at: dt.datetime | None) -> None:
    """Open a shelter for a declared disaster."""
    opening = _platform(settings).shelters.open(disaster_id.strip(), shelter_id.strip(), staff, _now(), at)
    click.echo(f"shelter {opening.shelter_id} opened {format_instant(opening.opened_at)}")


@shelter.command("close")
@click.argument("disaster_id")
@click.argument("shelter_id")
@_staff_option
@_at_option
@click.pass_obj
def close_shelter(settings: Settings, disaster_id: str, shelter_id: str, staff: str, at: dt.datetime | None) -> None:
    """Close a shelter: everyone in it is checked out (published by `bcl disaster relay`)."""
    opening, count = _platform(settings).shelters.close(disaster_id.strip(), shelter_id.strip(), staff, _now(), at)
    assert opening.closed_at is not None
    click.echo(f"shelter {opening.shelter_id} closed {format_instant(opening.closed_at)}: {count} checked out")


@shelter.command()
@click.argument("shelter_id")
@click.option("--day", required=True, help="How many people it holds by day.")
@click.option("--night", required=True, help="How many people it holds at night (18:00–06:00).")
@_staff_option
@click.pass_obj
def capacity(settings: Settings, shelter_id: str, day: str, night: str, staff: str) -> None:
    """Enter a shelter's capacity by day and by night (the open data publishes none)."""
    from domain.shelters import capacity as read_capacity

    entry = _platform(settings).shelters.set_capacity(shelter_id.strip(), read_capacity(day, night), staff, _now())
    assert entry.capacity is not None
    click.echo(f"shelter {shelter_id}: capacity day {entry.capacity.day} / night {entry.capacity.night}")


@shelter.command()
@click.argument("disaster_id")
@_municipality_option
@_at_option
@JSON_OPTION
@click.pass_obj
def occupancy(settings: Settings, disaster_id: str, municipality: str | None, at: dt.datetime | None,
              as_json: bool) -> None:
    """Headcount and occupancy of every shelter opened for the disaster (counts only: no personal data)."""
    instant = _now() if at is None else at
    rows = _platform(settings).shelters.occupancy(disaster_id.strip(), instant, municipality)
    values = [{"shelter_id": r.entry.shelter.shelter_id, "name": r.entry.shelter.name,
               "municipality_code": r.entry.shelter.municipality_code,
               "open": r.opening.closed_at is None or r.opening.closed_at > instant,
               "headcount": r.occupancy.headcount, "period": r.occupancy.period.value,
               "capacity": r.occupancy.capacity,
               "occupancy": None if r.occupancy.ratio is None else round(r.occupancy.ratio, 3)} for r in rows]
    if as_json:
        click.echo(json.dumps({"at": format_instant(instant), "shelters": values}, ensure_ascii=False))
        return
    for v in values:
        share = "" if v["occupancy"] is None else f" ({v['occupancy']:.0%} of {v['capacity']})"
        click.echo(f"{v['shelter_id']}  {v['name']}: {v['headcount']} {v['period'].lower()}{share}"
                   + ("" if v["open"] else ", closed"))


@shelter.command()
@click.argument("disaster_id")
@click.option("--shelter", "shelter_id", help="Only the people checked in at this shelter.")
@_municipality_option
@JSON_OPTION
@click.pass_obj
def evacuees(settings: Settings, disaster_id: str, shelter_id: str | None, municipality: str | None,
             as_json: bool) -> None:
    """Who is checked in now, where and since when (names from the ledger: audited)."""
    from sinks.audit import record_access

    people = _platform(settings).shelters.evacuees(disaster_id.strip(), shelter_id=shelter_id,
                                                   municipality_code=municipality)
    record_access(settings.audit_file, "shelter.evacuees", sorted({p.municipality_code for p in people}),
                  len(people), disaster_id=disaster_id.strip(), shelter_id=shelter_id)
    values = [{"municipality_code": p.municipality_code, "resident_code": p.resident_code,
               "name": f"{p.family_name or ''} {p.given_name or ''}".strip(), "shelter_id": p.shelter_id,
               "since": format_instant(p.since)} for p in people]
    if as_json:
        click.echo(json.dumps({"evacuees": values}, ensure_ascii=False))
        return
    for v in values:
        click.echo(f"{v['shelter_id']}  {v['municipality_code']}-{v['resident_code']}  {v['name']}  since {v['since']}")


@shelter.command("pass")
@click.argument("disaster_id")
@click.argument("municipality_code")
@click.argument("resident_code")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="The PNG file of the QR code to print.")
@click.pass_obj
def shelter_pass(settings: Settings, disaster_id: str, municipality_code: str, resident_code: str,
                 out: Path) -> None:
    """Print a registration QR for a person of a disaster's ledger (for a check-in without the card)."""
    from certgen.shelter_pass_image import write_pass_png
    from domain.shelter_pass import ShelterPass, pass_text

    platform = _platform(settings)
    platform.shelters.ledger_person(disaster_id, municipality_code, resident_code)  # StayError if not there
    write_pass_png(pass_text(ShelterPass(disaster_id, municipality_code, resident_code), platform.shelter_pass_key),
                   out)
    click.echo(f"registration QR written to {out}")


# -- the terminal ----------------------------------------------------------------------------------


@shelter.group()
def terminal() -> None:
    """A shelter terminal: check-in and check-out kept in its own queue, synced to the intake when online."""


def _queue_path(settings: Settings, terminal_id: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", terminal_id):
        raise StayError(f"{terminal_id!r} is not a terminal id (1 to 40 letters, digits, - or _)")
    return settings.shelter_terminals_dir / f"{terminal_id}.sqlite3"


def _queue(settings: Settings, terminal_id: str) -> TerminalQueue:
    from kiosk_sim.shelter_terminal import TerminalQueue

    return TerminalQueue(_queue_path(settings, terminal_id))


@terminal.command("init")
@_terminal_option
@click.option("--disaster", "disaster_id", required=True, help="The disaster the shelter was opened for.")
@click.option("--shelter", "shelter_id", required=True, help="The shelter the terminal stands in.")
@click.pass_obj
def terminal_init(settings: Settings, terminal_id: str, disaster_id: str, shelter_id: str) -> None:
    """Make a terminal's queue for a shelter opened for a disaster (checked now, while online)."""
    from kiosk_sim.shelter_terminal import TerminalQueue

    shelters = _platform(settings).shelters
    shelters.shelter(shelter_id.strip())  # an unknown shelter is refused here
    if not any(o.shelter_id == shelter_id.strip() and o.closed_at is None
               for o in shelters.openings(disaster_id.strip())):
        raise StayError(f"shelter {shelter_id} is not open for disaster {disaster_id} (`bcl shelter open`)")
    queue = TerminalQueue.create(_queue_path(settings, terminal_id), disaster_id.strip(), shelter_id.strip(),
                                 terminal_id, _now())
    queue.close()
    click.echo(f"terminal {terminal_id} ready at shelter {shelter_id}")


def _token(card: bool, pin: str | None, reader: str | None, qr: str | None, qr_image: Path | None,
           kana: str | None, birth_date: str | None, staff: str | None) -> tuple[TokenKind, dict[str, str]]:
    """The one token given: the card (read now), a QR's text (or its image), or a staff entry."""
    given = [card, qr is not None or qr_image is not None, kana is not None or birth_date is not None]
    if sum(given) != 1:
        raise click.UsageError("give one token: --card (with --pin), --qr/--qr-image, or --kana with --birth-date "
                               "and --staff")
    if card:
        if pin is None:
            raise click.UsageError("--card needs the card's authentication PIN (--pin)")
        from kiosk_sim.shelter_terminal import read_card

        return TokenKind.CARD, read_card(pin, reader)
    if qr_image is not None:
        from certgen.shelter_pass_image import read_pass_png

        qr = read_pass_png(qr_image)
        if qr is None:
            raise StayError(f"no registration QR code found in {qr_image}: scan it again or enter the person by name")
    if qr is not None:
        return TokenKind.QR, {"text": qr}
    if not (kana and birth_date and staff and staff.strip()):
        raise click.UsageError("a staff entry needs --kana, --birth-date (YYYY-MM-DD) and --staff")
    try:
        day = dt.date.fromisoformat(birth_date.strip()).isoformat()
    except ValueError:
        raise click.BadParameter(f"{birth_date!r} is not a date (YYYY-MM-DD)", param_hint="'--birth-date'") from None
    return TokenKind.STAFF, {"kana": kana, "birth_date": day, "staff": staff.strip()}


def _sync(settings: Settings, queue: TerminalQueue) -> dict[str, int]:
    from streams.shelter_intake import sync_terminal

    return sync_terminal(queue, _platform(settings).shelter_intake(), _now)


def _stay_command(action: StayAction) -> click.Command:
    @_terminal_option
    @click.option("--card", is_flag=True, help="Read the My Number card in the PC/SC reader (with --pin).")
    @click.option("--pin", help="The card's 4-digit authentication PIN (3 tries, then the card locks).")
    @click.option("--reader", help="PC/SC reader whose name contains this (default: any reader with a card).")
    @click.option("--qr", help="The text of a printed registration QR code, as a scanner reads it.")
    @click.option("--qr-image", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                  help="A photo or scan of a printed registration QR code.")
    @click.option("--kana", help="Staff entry: the person's name in kana (family and given name).")
    @click.option("--birth-date", help="Staff entry: the person's birth date, YYYY-MM-DD.")
    @click.option("--staff", help="Staff entry: the staff member who entered it.")
    @click.option("--offline", is_flag=True, help="Keep the event in the terminal's queue only (no network).")
    @JSON_OPTION
    @click.pass_obj
    def command(settings: Settings, terminal_id: str, card: bool, pin: str | None, reader: str | None,
                qr: str | None, qr_image: Path | None, kana: str | None, birth_date: str | None, staff: str | None,
                offline: bool, as_json: bool) -> None:
        queue = _queue(settings, terminal_id)
        kind, token = _token(card, pin, reader, qr, qr_image, kana, birth_date, staff)
        event = queue.record(action, kind, token, _now())
        values: dict[str, Any] = {"event_id": event.event.event_id, "terminal_sequence": event.event.terminal_sequence,
                                  "status": "QUEUED", "detail": "kept on the terminal: `sync` when online"}
        if not offline:
            _sync(settings, queue)
            status, detail = queue.status(event.event.event_id)
            values |= {"status": status, "detail": detail}
            if status != ReceiptStatus.APPLIED.value:
                raise StayError(detail if (detail or "").startswith("refused") else f"refused: {detail}")
        _emit(values, as_json, f"{action.value.lower().replace('_', '-')} {values['status'].lower()}: "
                               f"{values['detail']}")

    command.__doc__ = (f"{'Check in' if action is StayAction.CHECK_IN else 'Check out'} a person at the terminal's "
                       "shelter, by card, registration QR or staff entry (synced at once unless --offline).")
    return command


terminal.command("check-in")(_stay_command(StayAction.CHECK_IN))
terminal.command("check-out")(_stay_command(StayAction.CHECK_OUT))


@terminal.command("sync")
@_terminal_option
@JSON_OPTION
@click.pass_obj
def terminal_sync(settings: Settings, terminal_id: str, as_json: bool) -> None:
    """Send the terminal's unanswered events to the intake (each once, whatever was sent before)."""
    queue = _queue(settings, terminal_id)
    totals = _sync(settings, queue)
    _emit(totals | queue.counts(), as_json,
          f"synced: {totals['APPLIED']} applied, {totals['REPEATED']} repeated, {totals['UNMATCHED']} unmatched, "
          f"{totals['REFUSED']} refused ({totals['duplicate']} had been taken before)")
