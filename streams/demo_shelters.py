"""`make demo`, the disaster's shelters (docs/operations.md "Shelters in `make demo`"): the 避難行動要支援者名簿 kept by
its processor from the register and the welfare feed; the shipped shelters imported, some opened in 女川町 and 田辺市
with capacities by day and by night; three shelter terminals, each with its own queue: check-ins with the virtual
My Number cards through the real pcscd and its vpcd reader, a printed registration QR read back from its PNG, a
staff entry by name and birth date; one terminal offline, its queue synced later; one person moving between
shelters; the occupancy; a listed person found in a shelter. Everything goes through the same pieces as
`bcl shelter terminal ...` (kiosk_sim.shelter_terminal, streams.shelter_intake), on the demo's simulated clock.

Called from streams.demo with what it chose there (the ledger rows, the residents with cards in the ledger), so
that this module imports nothing of streams.demo (which runs as __main__)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from domain.disaster_ledger import is_damaged
from domain.japan_time import format_instant, to_japan_time
from domain.shelter_stays import StayAction, TokenKind
from domain.shelters import capacity
from infra import topics
from infra.kafka import make_consumer
from kiosk_sim.shelter_terminal import TerminalQueue
from sinks.audit import record_access
from streams.shelter_intake import sync_terminal
from streams.simulated_clock import SimulatedClock

if TYPE_CHECKING:
    from domain.disasters import Disaster
    from kiosk_sim.population import VirtualResident
    from sinks.evacuation_roster import RosterPerson
    from sinks.unaccounted import SafetyCounts
    from streams.platform import Platform
    from streams.settings import Settings

ONAGAWA, TANABE = "045811", "302066"
# Opened for the demo's disaster, with the capacities staff enter (day, night): the open data publishes none.
OPENED = {"E0458100001111": (120, 80),  # 大沢安住集会所, 女川町
          "E0458100003111": (150, 100),  # 浦宿二区集会所, 女川町
          "E3020600189201": (400, 300)}  # 鮎川小学校, 田辺市
ONAGAWA_A, ONAGAWA_B, TANABE_A = OPENED
SHELTER_STAFF = "避難所班 佐藤"
# The second vpcd slot (port 35964): the tests use the first, and pcscd is the machine's.
VPCD_SLOT_PORT, VPCD_SLOT_READER = 35964, "Virtual PCD 00 01"
ROSTER_WAIT_SECONDS = 600.0  # a bound, not a wait: by the shelter step the processor has read for minutes

console = Console()


@dataclass
class ShelterCast:
    """What streams.demo hands over: the disaster, its ledger rows by municipality and resident code, and the demo's
    residents whose virtual card is the one their ledger row knows (by municipality)."""

    disaster: Disaster
    ledger: Mapping[str, Mapping[str, Mapping[str, Any]]]
    with_cards: Mapping[str, Sequence[VirtualResident]]


# -- the roster, from the register and the welfare feed --------------------------------------------


def _committed_to_end(bootstrap_servers: str, group_id: str, topic_names: Sequence[str]) -> tuple[int, int]:
    """(events behind, events in the topics) of a consumer group: what it has not committed yet."""
    from confluent_kafka import TopicPartition

    consumer = make_consumer(bootstrap_servers, f"{group_id}.lag-probe")
    try:
        partitions = [TopicPartition(t, p) for t in topic_names
                      for p in consumer.list_topics(t, timeout=10).topics[t].partitions]
        ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
    finally:
        consumer.close()
    group = make_consumer(bootstrap_servers, group_id)
    try:
        committed = group.committed(partitions, timeout=10)
    finally:
        group.close()
    behind = sum(max(0, ends[(tp.topic, tp.partition)] - max(tp.offset, 0)) for tp in committed)
    return behind, sum(ends.values())


class RosterProcessor:
    """`bcl roster processor` (the Faust app) as a child process, started before the register is loaded and left to
    read the register the materialiser publishes and the welfare feed while the demo goes on (as it runs beside the
    other processors in production)."""

    def __init__(self, platform: Platform) -> None:
        settings = platform.settings
        self.platform = platform
        self.log = settings.data_dir / "roster-processor.log"
        self._began = time.perf_counter()
        with self.log.open("wb") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "--data-dir", str(settings.data_dir), "roster", "processor"],
                stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"BCL_LOG_LEVEL": "warning"})

    def caught_up(self, codes: Sequence[str]) -> dict[str, int]:
        """Wait until the processor's group has committed everything of bcl.residents and bcl.welfare.status, then
        stop it (SIGTERM: it commits and leaves its group). Listed people by municipality."""
        from streams.evacuation_roster_processor import PROCESSOR

        console.rule("[bold]避難行動要支援者名簿: kept by its processor from bcl.residents and the welfare feed")
        waited = time.perf_counter()
        deadline = time.monotonic() + ROSTER_WAIT_SECONDS
        with console.status("the roster processor reads the register and the welfare feed"):
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"bcl roster processor exited {self._process.returncode} (see {self.log})")
                behind, total = _committed_to_end(self.platform.bootstrap_servers, PROCESSOR,
                                                  (topics.RESIDENTS, topics.WELFARE_STATUS))
                if behind == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bcl roster processor is still {behind:,} events behind (see {self.log})")
                time.sleep(2)
        self.stop()
        listed = {code: len(self.platform.evacuation_roster.listed(code, actor="make demo",
                                                                    action="demo.roster.count")) for code in codes}
        console.print(f"  {total:,} events read in {time.perf_counter() - self._began:.0f} s since it started "
                      f"(the demo waited {time.perf_counter() - waited:.1f} s for the rest); listed: "
                      + ", ".join(f"{code} {n:,}" for code, n in listed.items()))
        return listed

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(60)


# -- the terminals -------------------------------------------------------------------------------------------------


@dataclass
class DemoTerminal:
    queue: TerminalQueue
    online: bool = True

    @property
    def name(self) -> str:
        return self.queue.identity.terminal_id


class ShelterFloor:
    """The terminals of the demo's shelters on one simulated clock, each arrival a few minutes after the last."""

    def __init__(self, platform: Platform, disaster: Disaster, clock: SimulatedClock) -> None:
        self.platform, self.disaster, self.clock = platform, disaster, clock
        self.intake = platform.shelter_intake(clock)
        self.lines: list[tuple[str, str, str, str, str]] = []  # terminal, token, who, status, detail

    def terminal(self, terminal_id: str, shelter_id: str, settings: Settings) -> DemoTerminal:
        return DemoTerminal(TerminalQueue.create(settings.shelter_terminals_dir / f"{terminal_id}.sqlite3",
                                                 self.disaster.disaster_id, shelter_id, terminal_id, self.clock()))

    def arrive(self, terminal: DemoTerminal, kind: TokenKind, token: Mapping[str, str], who: str,
               action: StayAction = StayAction.CHECK_IN) -> str:
        """One event kept by the terminal (then synced if it is online); its status as the terminal shows it."""
        self.clock.set(self.clock() + dt.timedelta(minutes=4))
        event = terminal.queue.record(action, kind, token, self.clock())
        if terminal.online:
            sync_terminal(terminal.queue, self.intake, self.clock)
        status, detail = terminal.queue.status(event.event.event_id)
        self.lines.append((terminal.name, kind.value, who, status or "QUEUED", detail or "kept on the terminal"))
        return status or "QUEUED"

    def card(self, terminal: DemoTerminal, resident: VirtualResident, who: str) -> str:
        from kiosk_sim.shelter_terminal import read_card
        from kiosk_sim.vpcd import inserted

        with inserted(resident.card, VPCD_SLOT_PORT):
            token = read_card(resident.pin, VPCD_SLOT_READER)
        return self.arrive(terminal, TokenKind.CARD, token, who)

    def sync(self, terminal: DemoTerminal) -> dict[str, int]:
        terminal.online = True
        return sync_terminal(terminal.queue, self.intake, self.clock)


def _who(code: str, resident_code: str) -> str:
    """How a person is shown in the demo's output: municipality and resident code, never the name."""
    return f"{code}-{resident_code}"


def _occupancy(platform: Platform, disaster: Disaster, at: dt.datetime) -> tuple[Table, int]:
    rows = platform.shelters.occupancy(disaster.disaster_id, at)
    table = Table(title=f"occupancy at {format_instant(at)} (bcl shelter occupancy)")
    for col in ("shelter", "name", "municipality", "headcount", "period", "capacity", "occupancy"):
        table.add_column(col)
    for r in rows:
        o = r.occupancy
        table.add_row(r.entry.shelter.shelter_id, r.entry.shelter.name, r.entry.shelter.municipality_code,
                      str(o.headcount), o.period.value.lower(), "-" if o.capacity is None else str(o.capacity),
                      "-" if o.ratio is None else f"{o.ratio:.0%}")
    return table, sum(r.occupancy.headcount for r in rows)


def _listed_in_ledger(platform: Platform, cast: ShelterCast, code: str, *, unique_reading: bool
                      ) -> list[RosterPerson]:
    """The listed people of a municipality who are in its ledger as of 発災日時 and still there; with unique_reading,
    only those whose reading and birth date name no one else of the ledger (a staff entry finds them)."""
    from domain.shelter_stays import kana_key

    rows = cast.ledger[code]
    keys = Counter((kana_key(f"{r['family_name_kana']}{r['given_name_kana']}"), str(r["birth_date"]))
                   for r in rows.values())
    found = []
    for person in platform.evacuation_roster.listed(code, actor="make demo", action="demo.roster.choose"):
        row = rows.get(person.resident_code)
        if row is None or not row["in_base"] or row["flags"]:
            continue
        key = (kana_key(f"{row['family_name_kana']}{row['given_name_kana']}"), str(row["birth_date"]))
        if not unique_reading or keys[key] == 1:
            found.append(person)
    if not found:
        raise RuntimeError(f"no listed person of {code} in its ledger for the demo to find")
    return found


def _safety(platform: Platform, disaster: Disaster) -> dict[str, SafetyCounts]:
    # 女川町's only: the demo surveys its dwellings and builds its roster; no one of 田辺市 is looked for.
    return {ONAGAWA: platform.unaccounted.counts(disaster.disaster_id, ONAGAWA)}


def _safety_table(stages: Sequence[tuple[str, Mapping[str, SafetyCounts]]]) -> Table:
    table = Table(title="who is unaccounted for (bcl safety unaccounted): counts, no names")
    for col in ("when", "municipality", "looked for", "unaccounted", "of them listed", "sheltered", "confirmed"):
        table.add_column(col)
    for stage, counts in stages:
        for code, c in counts.items():
            table.add_row(stage, code, f"{c.looked_for:,}", f"{c.unaccounted:,}",
                          f"{c.unaccounted_by_category.get('LISTED', 0):,}",
                          f"{c.sheltered + c.sheltered_elsewhere:,}", f"{sum(c.confirmed.values()):,}")
    return table


def shelters_and_evacuees(platform: Platform, cast: ShelterCast, roster: RosterProcessor, evening: dt.datetime,
                          outputs: dict[str, Path], figures: dict[str, str]) -> None:
    """The shelter step of the demo's disaster (see the module doc). `evening`: when the terminals start."""
    from certgen.shelter_pass_image import read_pass_png, write_pass_png
    from domain.shelter_pass import ShelterPass, pass_text
    from infra.pcscd import PcscDaemon
    from infra.private_files import private_folder

    settings, disaster = platform.settings, cast.disaster
    began = time.perf_counter()
    listed = roster.caught_up(disaster.municipality_codes)

    console.rule("[bold]Shelters open in 女川町 and 田辺市; evacuees check in at three terminals (one offline)")
    clock = SimulatedClock(evening)
    with resources.as_file(resources.files("domain").joinpath("data", "shelters.csv")) as shipped:
        imported = platform.shelters.import_csv(shipped, None, clock())
    towns = {code: len(platform.shelters.shelters(code)) for code in disaster.municipality_codes}
    console.print(f"  {imported} shelters of the shipped open data imported (GSI); "
                  + ", ".join(f"{code}: {n}" for code, n in towns.items()))
    opened_at = disaster.occurred_at + dt.timedelta(minutes=30)
    for shelter_id, (day, night) in OPENED.items():
        platform.shelters.open(disaster.disaster_id, shelter_id, SHELTER_STAFF, clock(), opened_at)
        entry = platform.shelters.set_capacity(shelter_id, capacity(day, night), SHELTER_STAFF, clock())
        console.print(f"  opened {format_instant(opened_at)}: {shelter_id} {entry.shelter.name} "
                      f"({entry.shelter.municipality_code}), capacity day {day} / night {night}")

    floor = ShelterFloor(platform, disaster, clock)
    first = floor.terminal("ONAGAWA-A-1", ONAGAWA_A, settings)
    offline = floor.terminal("ONAGAWA-B-1", ONAGAWA_B, settings)
    tanabe = floor.terminal("TANABE-A-1", TANABE_A, settings)
    offline.online = False  # the network of the second shelter is down
    # The people the terminals see: a listed person of 女川町 entered by staff (no card at hand), one of 田辺市 with a
    # printed registration QR, one of 女川町 confirmed safe by telephone later; residents with their cards, those
    # of damaged dwellings first (they are looked for: the unaccounted-for view shrinks as they check in).
    person, *others = _listed_in_ledger(platform, cast, ONAGAWA, unique_reading=True)
    if not others:
        raise RuntimeError(f"a single listed person of {ONAGAWA} in its ledger: the demo needs two")
    phoned = others[-1]
    listed_codes = {person.resident_code, phoned.resident_code}
    damaged = {a.dwelling_id for a in platform.damage_assessment.assessments(disaster.disaster_id)
               if is_damaged(a.level)}
    onagawa_cards = sorted((r for r in cast.with_cards[ONAGAWA] if r.profile.resident_code not in listed_codes),
                           key=lambda r: cast.ledger[ONAGAWA][r.profile.resident_code]["dwelling_id"] not in damaged)
    tanabe_cards = cast.with_cards[TANABE]
    if len(onagawa_cards) < 4 or len(tanabe_cards) < 2:
        raise RuntimeError("too few residents with a virtual card in the ledgers for the shelter step")
    with_card = {c.profile.resident_code for c in tanabe_cards}
    by_pass = next(r for r in cast.ledger[TANABE].values()
                   if r["in_base"] and not r["flags"] and r["resident_code"] not in with_card)
    stages = [("shelters opened", _safety(platform, disaster))]
    qr_png = private_folder(settings.data_dir / "disaster") / "shelter-pass.png"
    platform.shelters.ledger_person(disaster.disaster_id, TANABE, by_pass["resident_code"])
    write_pass_png(pass_text(ShelterPass(disaster.disaster_id, TANABE, by_pass["resident_code"]),
                             platform.shelter_pass_key), qr_png)
    outputs["registration QR (PNG)"] = qr_png

    def who(resident: VirtualResident, note: str = "") -> str:
        return _who(resident.profile.municipality_code, resident.profile.resident_code) + note

    pcscd = PcscDaemon.ensure_running(log_path=settings.data_dir / "pcscd.log")
    try:
        for resident in onagawa_cards[:2]:
            floor.card(first, resident, who(resident))
        console.print(f"  terminal {offline.name} is offline: its check-ins wait in {offline.queue.path}")
        for resident in onagawa_cards[2:4]:
            floor.card(offline, resident, who(resident))
        staff_entry = {"kana": person.name_kana, "birth_date": person.birth_date.isoformat(), "staff": SHELTER_STAFF}
        floor.arrive(offline, TokenKind.STAFF, staff_entry, _who(ONAGAWA, person.resident_code) + " (listed)")
        waiting = offline.queue.counts()["waiting"]
        for resident in tanabe_cards[:2]:
            floor.card(tanabe, resident, who(resident))
        text = read_pass_png(qr_png)
        if text is None:
            raise RuntimeError(f"the terminal could not read the registration QR of {qr_png}")
        floor.arrive(tanabe, TokenKind.QR, {"text": text}, _who(TANABE, by_pass["resident_code"]))
        _, before_sync = _occupancy(platform, disaster, clock())
        synced = floor.sync(offline)
        _, after_sync = _occupancy(platform, disaster, clock())
        console.print(f"  {offline.name} back online: {waiting} queued event(s) synced → {json.dumps(synced)}")
        # The first arrival of the first shelter moves to the second (a check-in there ends the first stay: MOVED).
        mover = onagawa_cards[0]
        floor.card(offline, mover, who(mover, " (moves)"))
        # A check-in twice at the same shelter is answered REPEATED (the person is there already).
        floor.card(offline, mover, who(mover, " (again)"))
    finally:
        pcscd.stop()
    table = Table(title="what the terminals answered (people by municipality and 住民票コード)")
    for col in ("terminal", "token", "person", "status", "detail"):
        table.add_column(col)
    for line in floor.lines:
        table.add_row(*line)
    console.print(table)

    stages.append(("after the terminals", _safety(platform, disaster)))
    clock.set(clock() + dt.timedelta(minutes=10))
    platform.unaccounted.confirm(disaster.disaster_id, ONAGAWA, phoned.resident_code, status="SAFE",
                                 method="PHONED", note="本人と電話で確認（親族宅に避難）", by=SHELTER_STAFF,
                                 now=clock())
    stages.append(("a listed person phoned", _safety(platform, disaster)))
    console.print(_safety_table(stages))
    shown, headcount = _occupancy(platform, disaster, clock())
    console.print(shown)
    moves = platform.shelters.stays_of(disaster.disaster_id, ONAGAWA, mover.profile.resident_code)
    console.print("  the one who moved: " + " → ".join(
        f"{s.shelter_id} from {to_japan_time(s.checked_in_at):%H:%M}"
        + ("" if s.ended_by is None else f" (ended {s.ended_by.value})") for s in moves))
    stays = platform.shelters.stays_of(disaster.disaster_id, ONAGAWA, person.resident_code)
    record_access(settings.audit_file, "demo.shelter.listed-found", ONAGAWA, 1, disaster_id=disaster.disaster_id)
    if not stays or stays[-1].checked_out_at is not None:
        raise RuntimeError("the listed person entered by staff is not checked in")
    console.print(f"  listed person {_who(ONAGAWA, person.resident_code)} ({person.reason_text}) found: checked in "
                  "at "
                  f"{stays[-1].shelter_id} since {format_instant(stays[-1].checked_in_at)}; listed person "
                  f"{ONAGAWA}-{phoned.resident_code} ({phoned.reason_text}) confirmed safe by telephone")
    if not stages[1][1][ONAGAWA].unaccounted < stages[0][1][ONAGAWA].unaccounted:
        raise RuntimeError(f"the unaccounted-for count of {ONAGAWA} did not shrink with the check-ins")
    if stages[-1][1][ONAGAWA].unaccounted >= stages[1][1][ONAGAWA].unaccounted:
        raise RuntimeError("the listed person confirmed safe is still counted unaccounted for")
    if len(moves) != 2 or moves[0].ended_by is None or moves[0].ended_by.value != "MOVED":
        raise RuntimeError("the person who moved between shelters was not moved")
    if after_sync != before_sync + waiting or headcount != after_sync:
        raise RuntimeError(f"the offline terminal's {waiting} check-ins are not all in the occupancy after its sync")
    published = platform.disaster_relay().publish_pending()
    console.print(f"  relay: {published} event(s) to bcl.shelter.stays and the other disaster topics")
    outputs["shelter terminal queues (SQLite)"] = settings.shelter_terminals_dir
    figures["避難行動要支援者名簿"] = ", ".join(f"{code} {n:,} listed" for code, n in listed.items())
    figures["unaccounted for"] = (f"{ONAGAWA} {stages[0][1][ONAGAWA].unaccounted:,} → "
                                  f"{stages[-1][1][ONAGAWA].unaccounted:,} (of {stages[0][1][ONAGAWA].looked_for:,} "
                                  "looked for)")
    figures["shelters"] = (f"{len(OPENED)} opened, {headcount} checked in ({len(floor.lines)} terminal events, "
                           f"{waiting} queued offline then synced), in {time.perf_counter() - began:.1f} s "
                           f"with the roster of {ONAGAWA}")
