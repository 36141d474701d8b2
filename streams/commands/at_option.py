"""`--at TIME` of the commands that can run on a simulated clock (`bcl kiosk issue|load`, `bcl worker run`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import click

JAPAN = ZoneInfo("Asia/Tokyo")


def parse_instant(value: str, param_hint: str = "'--at'") -> dt.datetime:
    """An ISO 8601 instant; without a zone it is Japan time (as kiosks and clerks read the time).
    The one parser of these options, to be replaced by the project's shared instant parser."""
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-17T12:00+09:00",
                                 param_hint=param_hint) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=JAPAN)


def _callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.datetime | None:
    return None if value is None else parse_instant(value)


at_option = click.option(
    "--at", "at", metavar="TIME", callback=_callback,
    help="Run on a simulated clock that reads TIME now and runs on from it (ISO 8601; without a zone, Japan "
         "time), e.g. to try the service hours (06:30–23:00) at any hour. Worker and kiosks must agree: a "
         "kiosk without --at follows a running `bcl worker run --at`.")
