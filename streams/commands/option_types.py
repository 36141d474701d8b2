"""Click types and options shared by the commands: one reading rule for every command.

- INSTANT (`--as-of`, `--at`, `--start`...): ISO 8601, read by domain.japan_time.parse_instant: an offset
  is kept, a value without one is Japan time, a date alone is 00:00 Japan time. Gives an aware UTC datetime.
- JAPAN_DAY (`--issued-on`): a calendar day, YYYY-MM-DD (an instant is taken as its Japan-time day).
- SERIAL (`--serial`): a certificate serial in either case, given back in the one register form
  (domain.certificate_serial).
Instants are shown to people with domain.japan_time.format_instant (Japan time, ISO 8601).
- RuleType: an option read by a rule of domain/; options_of_rule: a rule's refusal named as the option typed.
- JSON_OPTION: `--json`, the answer as one JSON object; yen: an amount as printed to people.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from domain.certificate_serial import read_serial
from domain.errors import InvalidArgumentError, InvalidInstantError, InvalidSerialError
from domain.japan_time import japan_date, parse_instant
from domain.kiosk_rules import SERVICE_CLOSES, SERVICE_OPENS


def _option_name(param: click.Parameter | None) -> str:
    return param.opts[0] if param is not None and getattr(param, "opts", None) else "value"


class InstantType(click.ParamType):
    name = "instant"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        if isinstance(value, dt.datetime):  # a default given as a datetime
            return parse_instant(value.isoformat(), _option_name(param))
        try:
            return parse_instant(str(value), _option_name(param))
        except InvalidInstantError as exc:
            self.fail(str(exc), param, ctx)


class JapanDayType(click.ParamType):
    name = "date"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            return japan_date(parse_instant(str(value), _option_name(param)))
        except InvalidInstantError as exc:
            self.fail(str(exc), param, ctx)


class SerialType(click.ParamType):
    name = "serial"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return read_serial(str(value))
        except InvalidSerialError as exc:
            self.fail(str(exc), param, ctx)


INSTANT = InstantType()
JAPAN_DAY = JapanDayType()
SERIAL = SerialType()


# `--at TIME` of the commands that can run on a simulated clock (`bcl kiosk issue|load`, `bcl worker run`).
at_option = click.option(
    "--at", "at", metavar="TIME", type=INSTANT,
    help="Run on a simulated clock that reads TIME now and runs on from it (ISO 8601; without a zone, Japan "
         f"time), e.g. to try the service hours ({SERVICE_OPENS:%H:%M}–{SERVICE_CLOSES:%H:%M}) at any hour. "
         "Worker and kiosks must agree: a "
         "kiosk without --at follows a running `bcl worker run --at`.")


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON object.")


@contextmanager
def options_of_rule() -> Iterator[None]:
    """A rule's refusal names its parameter; the parameters are named like the options (`household_size` is
    `--household-size`), so the message a person reads names the option they typed."""
    try:
        yield
    except InvalidArgumentError as exc:
        raise click.BadParameter(exc.reason, param_hint=f"'--{exc.argument.replace('_', '-')}'") from exc


class RuleType(click.ParamType):
    """An option read by a rule of domain/ (which refuses a bad value with its reason)."""

    def __init__(self, name: str, read: Callable[[str], Any]) -> None:
        self.name = name
        self._read = read

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # already converted (a default)
            return value
        try:
            return self._read(value)
        except InvalidArgumentError as exc:
            self.fail(exc.reason, param, ctx)


def yen(amount: int) -> str:
    """An amount as printed to people: 1,234,000 円."""
    return f"{amount:,} 円"
