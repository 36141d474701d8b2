"""`bcl worker`: the certificate worker that answers kiosks (a foreground service)."""

from __future__ import annotations

import datetime as dt
import json

import click

from streams.settings import Settings


def _maintenance(value: str) -> tuple[str, dt.datetime, dt.datetime]:
    code, _, interval = value.partition("=")
    start, _, end = interval.partition("/")
    try:
        begin, finish = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected CODE=START/END in ISO 8601, "
                                 "e.g. 131016=2026-11-21T01:00+09:00/2026-11-21T03:00+09:00",
                                 param_hint="--maintenance") from None
    if begin.tzinfo is None or finish.tzinfo is None:
        raise click.BadParameter(f"{value!r}: give the times with a zone, e.g. +09:00", param_hint="--maintenance")
    return code, begin, finish


@click.group()
def worker() -> None:
    """The certificate worker: kiosk requests → certificates, responses and billing events."""


@worker.command()
@click.option("--revocation", type=click.Choice(["crl", "ocsp"]), default="crl", show_default=True,
              help="How card revocation is checked: the daily CRL (plus bcl.jpki.revocations) or OCSP per request.")
@click.option("--ocsp-url", help="OCSP responder URL (default: the one named in each card certificate).")
@click.option("--render-processes", type=int, default=None,
              help="Renderer processes (default: the machine's cores, at most 4; 0 renders in the worker).")
@click.option("--maintenance", "maintenance", multiple=True, metavar="CODE=START/END",
              help="A municipality's maintenance window (repeatable), ISO 8601 with zone.")
@click.option("--no-back-side", is_flag=True, help="Print no scramble image on the back (faster; for tests only).")
@click.pass_obj
def run(settings: Settings, revocation: str, ocsp_url: str | None, render_processes: int | None,
        maintenance: tuple[str, ...], no_back_side: bool) -> None:
    """Serve kiosk requests until interrupted (Ctrl-C / SIGTERM). Logs one JSON line per request."""
    import os
    import signal
    import threading

    from domain.kiosk_rules import MaintenanceWindow
    from infra.log import configure_logging
    from streams.certificate_worker import WorkerOptions, build_certificate_worker

    configure_logging("json", settings.log_level)
    windows = []
    for value in maintenance:
        code, start, end = _maintenance(value)
        try:
            windows.append(MaintenanceWindow(code, start, end))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--maintenance") from None
    processes = render_processes if render_processes is not None else min(os.cpu_count() or 1, 4)
    options = WorkerOptions(revocation=revocation, ocsp_url=ocsp_url, render_processes=processes,
                            back_side=not no_back_side, maintenance=tuple(windows))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from infra.metrics import serve_metrics
    serve_metrics(settings.metrics_port)
    counters = build_certificate_worker(settings, options=options).run(stop)
    click.echo(json.dumps(counters.as_dict()))
