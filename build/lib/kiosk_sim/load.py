"""The kiosk load generator: many terminals of several vendors and centres, open-loop Poisson arrivals.

Open loop: residents arrive at the times of a Poisson process of rate R for S seconds, whether or not
earlier sessions have finished (a closed loop would slow down with the system and hide its latency).
Each arrival picks a resident with a virtual card and a terminal: usually one in the resident's own
municipality, sometimes one in another municipality (コンビニ交付 works anywhere in Japan). A terminal
serves one resident at a time; a resident whose terminal is busy waits for it (that wait is in the
session time, not in the request→response latency).

The mix follows docs/domain.md §1 and §3: kiosks by chain (Seven-Eleven ~45 %, Lawson ~20 %, FamilyMart
~20 %, others), vendors assigned to centres (vendor A → East, B and C → West), certificates 住民票の写し
~55 % (self or whole household, optional items), 印鑑登録証明書 ~30 %, tax certificates ~15 %, plus a few
requests BCL must refuse (住民票記載事項証明書, 戸籍), a few residents asking for what the register does not
hold (a seal certificate without a registration) and a few wrong PIN entries (nothing is sent).
The certificate is chosen first, then a resident it applies to: people who ask for a seal certificate
mostly have a registered seal.
Cards are in-process (no PC/SC): the card steps cost what the card's RSA signature costs.
"""

from __future__ import annotations

import datetime as dt
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from kiosk_sim.errors import KioskSimError
from kiosk_sim.kiosk import CertificateChoice, Kiosk, KioskConnection, KioskOutcome, KioskTerminal, OutcomeStatus
from kiosk_sim.population import ResidentProfile, VirtualResident
from kiosk_sim.transport import InProcessTransport


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    share: float
    centre: str


# Kiosk operators and the centre each is assigned to (vendor A → East, B and C → West).
VENDORS: tuple[Vendor, ...] = (
    Vendor("seven-eleven", 0.45, "EAST"),
    Vendor("lawson", 0.20, "WEST"),
    Vendor("familymart", 0.20, "WEST"),
    Vendor("ministop", 0.05, "EAST"),
    Vendor("supermarket", 0.04, "WEST"),
    Vendor("post-office", 0.03, "EAST"),
    Vendor("town-hall", 0.03, "WEST"),
)

OTHER_MUNICIPALITY_SHARE = 0.06  # requests made at a kiosk outside the resident's municipality
WRONG_PIN_SHARE = 0.01  # sessions where the resident mistypes the PIN (the kiosk sends nothing)
NOT_VIA_BCL_SHARE = 0.01  # 住民票記載事項証明書 / 戸籍: refused with a reason
# Residents asking for what the register does not hold (a seal certificate without a registration,
# a tax certificate without a record): refused. The others who ask for it have it.
MISTAKEN_SHARE = 0.03


class LoadError(KioskSimError):
    """The load cannot run with what it was given (no residents, no kiosks, a bad rate)."""


def make_terminals(count: int, municipality_codes: Sequence[str], other_codes: Sequence[str],
                   rng: random.Random, *, other_share: float = OTHER_MUNICIPALITY_SHARE) -> list[KioskTerminal]:
    """`count` terminals, vendors drawn by market share; most stand in the loaded municipalities (in turn),
    a share in `other_codes` (neighbouring municipalities) so that out-of-town requests exist."""
    if count < 1:
        raise LoadError(f"at least one kiosk is needed, got {count}")
    if not municipality_codes:
        raise LoadError("no municipality to place kiosks in")
    others = [c for c in other_codes if c not in municipality_codes]
    n_other = round(count * other_share) if others and count > len(municipality_codes) else 0
    weights = [v.share for v in VENDORS]
    terminals = []
    for i in range(count):
        vendor = rng.choices(VENDORS, weights)[0]
        code = others[i % len(others)] if i < n_other else municipality_codes[(i - n_other) % len(municipality_codes)]
        terminals.append(KioskTerminal(f"{vendor.name}-{code}-{i:05d}", vendor.name, vendor.centre, code))
    return terminals


def choose_kind(rng: random.Random) -> str:
    """The certificate a resident arriving at a kiosk wants (the mix of the module docstring)."""
    u = rng.random()
    if u < NOT_VIA_BCL_SHARE:
        return rng.choice(("RESIDENT_RECORD_ITEMS", "FAMILY_REGISTER", "FAMILY_REGISTER_ANNEX"))
    if u < 0.55:
        return "RESIDENT_RECORD"
    if u < 0.85:
        return "SEAL_REGISTRATION"
    return rng.choices(("INCOME", "TAXATION", "TAX_PAYMENT"), (0.45, 0.35, 0.20))[0]


def eligible(profile: ResidentProfile, kind: str) -> bool:
    """Whether the register holds what the certificate certifies (a seal registration, a tax record)."""
    if kind == "SEAL_REGISTRATION":
        return profile.has_seal
    if kind in ("INCOME", "TAXATION", "TAX_PAYMENT"):
        return bool(profile.tax_years)
    return True


def choose_options(profile: ResidentProfile, kind: str, rng: random.Random) -> CertificateChoice:
    """The options a resident picks for the certificate."""
    code = profile.municipality_code
    copies = rng.choices((1, 2, 3), (0.90, 0.08, 0.02))[0]
    if kind == "RESIDENT_RECORD":
        return CertificateChoice(
            code, kind,
            household_scope="WHOLE_HOUSEHOLD" if rng.random() < 0.45 else "SELF",
            include_head_and_relationship=rng.random() < 0.6,
            include_domicile=rng.random() < 0.1,
            copies=copies,
        )
    if kind in ("INCOME", "TAXATION", "TAX_PAYMENT"):
        fiscal_year = None
        if profile.tax_years and rng.random() < 0.1:  # a year other than the latest
            fiscal_year = rng.choice(profile.tax_years)
        return CertificateChoice(code, kind, fiscal_year=fiscal_year, copies=copies)
    if kind == "SEAL_REGISTRATION":
        return CertificateChoice(code, kind, copies=copies)
    return CertificateChoice(code, kind)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One arrival's session. Kept in memory for the report and for replaying the same certificates
    (bench/kiosk.py); the profile holds codes, never printed."""

    choice: CertificateChoice
    profile: ResidentProfile
    vendor: str
    centre: str
    out_of_town: bool
    outcome: KioskOutcome
    queued_seconds: float  # waiting for a free terminal

    @property
    def certificate_type(self) -> str:
        return self.choice.certificate_type


@dataclass
class LoadReport:
    rate: float
    duration: float
    kiosks: int
    arrivals: int = 0
    wall_seconds: float = 0.0
    sessions: list[SessionRecord] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # sessions that raised (the kiosk process's bugs)

    @property
    def answered(self) -> list[SessionRecord]:
        return [s for s in self.sessions if s.outcome.latency is not None]

    def latencies_ms(self) -> np.ndarray:
        return np.array([s.outcome.latency for s in self.answered], dtype=float) * 1000.0

    def percentiles_ms(self, quantiles: Sequence[float] = (50, 95, 99, 100)) -> dict[float, float]:
        values = self.latencies_ms()
        if values.size == 0:
            return {q: float("nan") for q in quantiles}
        return {q: float(np.percentile(values, q)) for q in quantiles}

    def by_status(self) -> Counter[str]:
        return Counter(s.outcome.status.value for s in self.sessions)

    def by_reason(self) -> Counter[str]:
        return Counter(f"{s.outcome.status.value} {s.outcome.reason_code or ''}".strip() for s in self.sessions)

    def by_certificate(self) -> Counter[str]:
        return Counter(s.certificate_type for s in self.sessions)

    def by_vendor(self) -> Counter[str]:
        return Counter(f"{s.vendor} ({s.centre})" for s in self.sessions)

    @property
    def issued(self) -> int:
        return sum(1 for s in self.sessions if s.outcome.status is OutcomeStatus.ISSUED)

    @property
    def issued_per_second(self) -> float:
        """Issued requests (each one certificate, or several copies) per second of the run."""
        return self.issued / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def answered_per_second(self) -> float:
        return len(self.answered) / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def offered_rate(self) -> float:
        return self.arrivals / self.duration if self.duration else 0.0


class LoadGenerator:
    """Drives sessions on `terminals` for `residents` through one KioskConnection."""

    def __init__(self, connection: KioskConnection, residents: Sequence[VirtualResident],
                 terminals: Sequence[KioskTerminal], *, seed: int = 0,
                 wrong_pin_share: float = WRONG_PIN_SHARE, clock: Callable[[], dt.datetime] | None = None) -> None:
        if not residents:
            raise LoadError("no residents with virtual cards to send to the kiosks")
        if not terminals:
            raise LoadError("no kiosks")
        self._connection = connection
        self._residents = list(residents)
        self._terminals = list(terminals)
        self._seed = seed
        self._sessions = 0
        self._rng = random.Random(seed)
        self._wrong_pin_share = wrong_pin_share
        self._idle: dict[str, queue.Queue[Kiosk]] = {}
        for terminal in terminals:
            kiosk = Kiosk(terminal, connection) if clock is None else Kiosk(terminal, connection, clock=clock)
            self._idle.setdefault(terminal.municipality_code, queue.Queue()).put(kiosk)
        self._home_codes = sorted({r.profile.municipality_code for r in residents})
        self._busy: set[int] = set()
        self._busy_lock = threading.Lock()

    def run(self, rate: float, duration: float, *, progress: Callable[[int], None] | None = None,
            stop: threading.Event | None = None) -> LoadReport:
        """Arrivals at `rate` per second (Poisson) for `duration` seconds; returns when every session ended."""
        if rate <= 0 or duration <= 0:
            raise LoadError(f"rate and duration must be positive, got {rate}/s for {duration} s")
        report = LoadReport(rate, duration, len(self._terminals))
        lock = threading.Lock()
        workers = max(len(self._terminals), 8)

        def session(index: int, arrived: float) -> None:
            try:
                record = self._session(index, arrived)
            except Exception as exc:  # outermost boundary of a session thread: count it, keep the run going
                with lock:
                    report.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                with lock:
                    report.sessions.append(record)
            if progress is not None:
                progress(1)

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kiosk") as pool:
            next_at = 0.0
            index = 0
            first = self._sessions  # session numbers run on across runs: each session draws its own choices
            while True:
                next_at += self._rng.expovariate(rate)
                if next_at >= duration or (stop is not None and stop.is_set()):
                    break
                delay = start + next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(session, first + index, time.perf_counter())
                index += 1
            self._sessions += index
            report.arrivals = index
        report.wall_seconds = time.perf_counter() - start
        return report

    def _pick_resident(self, rng: random.Random, kind: str) -> tuple[int, VirtualResident]:
        """A resident not at a kiosk right now; one the certificate applies to, except for a mistaken few."""
        mistaken = rng.random() < MISTAKEN_SHARE
        with self._busy_lock:
            fallback = None
            for _ in range(200):
                i = rng.randrange(len(self._residents))
                if i in self._busy:
                    continue
                if mistaken or eligible(self._residents[i].profile, kind):
                    self._busy.add(i)
                    return i, self._residents[i]
                fallback = i if fallback is None else fallback
            if fallback is not None:  # nobody here holds what is asked: someone asks anyway
                self._busy.add(fallback)
                return fallback, self._residents[fallback]
        raise LoadError("every virtual card is in use: load more residents or lower the rate")

    def _session(self, index: int, arrived: float) -> SessionRecord:
        rng = random.Random(self._seed * 1_000_003 + index)
        kind = choose_kind(rng)
        i, resident = self._pick_resident(rng, kind)
        try:
            home = resident.profile.municipality_code
            away = [c for c in self._idle if c != home]
            out_of_town = home not in self._idle or (bool(away) and rng.random() < OTHER_MUNICIPALITY_SHARE)
            where = rng.choice(away) if out_of_town and away else home
            idle = self._idle[where]
            kiosk = idle.get()
            queued = time.perf_counter() - arrived
            try:
                choice = choose_options(resident.profile, kind, rng)
                pin = resident.pin
                if rng.random() < self._wrong_pin_share:
                    pin = f"{(int(pin) + 1 + rng.randrange(9998)) % 10000:04d}"
                with InProcessTransport(resident.card) as transport:
                    outcome = kiosk.issue(transport, pin, choice)
            finally:
                idle.put(kiosk)
            terminal = kiosk.terminal
            return SessionRecord(choice, resident.profile, terminal.vendor, terminal.centre,
                                 terminal.municipality_code != home, outcome, queued)
        finally:
            with self._busy_lock:
                self._busy.discard(i)
