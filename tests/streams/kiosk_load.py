"""Steady kiosk load for the two-centre tests: terminals in threads, one session after another each, until stopped.

In the test's process (`Load`), or as a process of its own so that it can run as one centre's kiosks (the link
cut of infra.centre_link matches a process's group id):

    python -m tests.streams.kiosk_load '<json config>'

The config names the cluster, the kiosk topics (requests, responses, claims), the vendors to run ({vendor: centre},
two terminals each), every vendor's centre, the card holders (an index into the world's key pool and the card's
certificate), the kiosks' time-outs and, optionally, their file of undecided requests. It prints READY once
connected, one `SESSION <json>` line per session as it ends, and DONE when it has stopped (SIGTERM)."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from certgen.keys import KeyPool
from domain.issuing_centres import CentreAvailability
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskConnection, KioskOutcome, KioskTerminal, KioskTopics
from kiosk_sim.transport import InProcessTransport
from schemas.registry import FileSchemaRegistry
from tests.streams.kiosk_world import CHIYODA, PIN, TANABE, Holder, ShiftableClock


@dataclasses.dataclass
class Session:
    vendor: str
    sent: float  # time.monotonic(): the system's monotonic clock, comparable between processes
    outcome: KioskOutcome


class Load:
    """Kiosk terminals in threads, one session after another each, until stopped."""

    def __init__(self, connection: KioskConnection, holders: list[Holder], vendors: dict[str, str]) -> None:
        self.sessions: list[Session] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.on_session: Callable[[Session], None] = lambda session: None  # called as each session ends
        clock = ShiftableClock()
        self._threads = []
        for i, (vendor, centre) in enumerate(vendors.items()):
            for j in range(2):
                holder = holders[(2 * i + j) % len(holders)]
                terminal = KioskTerminal(f"{vendor}-{j}", vendor, centre, CHIYODA)
                kiosk = Kiosk(terminal, connection, clock=clock)
                card = JpkiCard(auth=CardKey(holder.key, holder.certificate_der), auth_pin=PIN)
                self._threads.append(threading.Thread(target=self._run, args=(kiosk, card), daemon=True))

    def _run(self, kiosk: Kiosk, card: JpkiCard) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            outcome = kiosk.issue(InProcessTransport(card), PIN, CertificateChoice(TANABE, "RESIDENT_RECORD"))
            session = Session(kiosk.terminal.vendor, sent, outcome)
            with self._lock:
                self.sessions.append(session)
                self.on_session(session)
            time.sleep(0.2)

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


def session_line(session: Session) -> str:
    o = session.outcome
    return "SESSION " + json.dumps({"vendor": session.vendor, "sent": session.sent, "status": o.status.value,
                                    "request_id": o.request_id, "reason_code": o.reason_code,
                                    "session_seconds": o.session_seconds, "centre": o.centre,
                                    "unresolved_seconds": o.unresolved_seconds,
                                    "certificate_ids": list(o.certificate_ids)})


def main(config: dict[str, Any]) -> None:
    keys = KeyPool(Path(config["keys"]), int(config["key_count"])).load()
    holders = [Holder(h["serial"], keys[h["key"]], bytes.fromhex(h["certificate"])) for h in config["holders"]]
    connection = KioskConnection(
        config["bootstrap"], FileSchemaRegistry(),
        topics=KioskTopics(config["requests"], config["responses"], config["claims"]),
        response_timeout=float(config["response_timeout"]),
        centres=CentreAvailability(float(config["fail_after"]), float(config["probe_after"])),
        vendor_centres=config["vendor_centres"],
        undecided=Path(config["undecided"]) if config.get("undecided") else None).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    load = Load(connection, holders, config["vendors"])
    load.on_session = lambda session: print(session_line(session), flush=True)
    load.start()
    print("READY", flush=True)
    stop.wait()
    load.stop()
    connection.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
