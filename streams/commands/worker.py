"""`bcl worker`: the certificate worker that answers kiosks (a foreground service)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator

import click

from domain.errors import InvalidInstantError
from domain.japan_time import parse_instant
from streams.commands.option_types import at_option
from streams.settings import Settings


def _maintenance(value: str) -> tuple[str, dt.datetime, dt.datetime]:
    code, _, interval = value.partition("=")
    start, _, end = interval.partition("/")
    try:  # the one reading rule of every time option: without a zone, Japan time
        begin, finish = parse_instant(start, "--maintenance start"), parse_instant(end, "--maintenance end")
    except InvalidInstantError:
        raise click.BadParameter(f"{value!r}: expected CODE=START/END in ISO 8601, "
                                 "e.g. 131016=2026-11-21T01:00+09:00/2026-11-21T03:00+09:00",
                                 param_hint="--maintenance") from None
    return code, begin, finish


@contextlib.contextmanager
def _pid_file(settings: Settings, centre: str | None) -> Iterator[None]:
    """A centre's worker names its pid for `bcl centre fail` (a drill kills it) and `bcl centre status`."""
    if centre is None:
        yield
        return
    from streams.commands.centre import worker_pid_file

    path = worker_pid_file(settings, centre)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@click.group()
def worker() -> None:
    """The certificate worker: kiosk requests → certificates, responses and billing events."""


@worker.command()
@click.option("--revocation", type=click.Choice(["crl", "ocsp"]), default="crl", show_default=True,
              help="How card revocation is checked: the daily CRL (plus bcl.jpki.revocations) or OCSP per request.")
@click.option("--ocsp-url", help="OCSP responder URL (default: the one named in each card certificate).")
@click.option("--render-processes", type=int, default=None,
              help="Renderer processes (default: the machine's cores, at most 4; 0 renders in the worker).")
@click.option("--render-time-limit", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="A render not done this long after the worker waits for it is taken for a hung renderer: its "
                   "processes are killed and its requests rendered again one by one (default 30).")
@click.option("--maintenance", "maintenance", multiple=True, metavar="CODE=START/END",
              help="A municipality's maintenance window (repeatable), ISO 8601 (without a zone: Japan time).")
@click.option("--no-back-side", is_flag=True, help="Print no scramble image on the back (faster; for tests only).")
@click.option("--centre", "centre_name", type=click.Choice(["EAST", "WEST"], case_sensitive=False),
              help="Run as that issuing centre's worker: answer the requests sent to it, arbitrate every answer with "
                   "the other centre's worker (bcl.kiosk.claims), own ledger and archive under DATA_DIR/centres/.")
@at_option
@click.pass_obj
def run(settings: Settings, revocation: str, ocsp_url: str | None, render_processes: int | None,
        render_time_limit: float | None, maintenance: tuple[str, ...], no_back_side: bool, centre_name: str | None,
        at: dt.datetime | None) -> None:
    """Serve kiosk requests until interrupted (Ctrl-C / SIGTERM). Logs one JSON line per request.

    The worker publishes its clock (real or --at) in DATA_DIR/worker/clocks while it runs, so that kiosk
    commands on the same data directory use a time it accepts."""
    import signal
    import threading

    from domain.issuance_decision import IssuancePolicy
    from domain.kiosk_rules import MaintenanceWindow
    from infra.log import configure_logging
    from streams.centre_claims import centre_group_id
    from streams.certificate_rendering import RENDER_TIME_LIMIT_SECONDS
    from streams.certificate_worker import WorkerOptions, utc_now
    from streams.platform import MAX_DEFAULT_RENDERERS, Platform
    from streams.simulated_clock import SimulatedClock, published_worker_clock

    configure_logging("json", settings.log_level)
    windows = []
    for value in maintenance:
        code, start, end = _maintenance(value)
        try:
            windows.append(MaintenanceWindow(code, start, end))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--maintenance") from None
    processes = render_processes if render_processes is not None else min(os.cpu_count() or 1, MAX_DEFAULT_RENDERERS)
    options = WorkerOptions(revocation=revocation, ocsp_url=ocsp_url, render_processes=processes,
                            render_time_limit=render_time_limit or RENDER_TIME_LIMIT_SECONDS,
                            back_side=not no_back_side, policy=IssuancePolicy(maintenance=tuple(windows)),
                            centre=centre_name.upper() if centre_name else None)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from infra.metrics import serve_metrics

    serve_metrics(settings.metrics_port)
    clock = SimulatedClock(at) if at is not None else None
    overrides = {} if options.centre is None else {"group_id": centre_group_id(options.centre)}
    worker = Platform(settings).certificate_worker(options=options, clock=clock or utc_now, **overrides)
    with published_worker_clock(settings.worker_clock_dir, clock.offset if clock else dt.timedelta(0),
                                options.policy.freshness), _pid_file(settings, options.centre):
        counters = worker.run(stop)
    click.echo(json.dumps(counters.as_dict()))
