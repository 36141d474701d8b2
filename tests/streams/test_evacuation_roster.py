"""The 避難行動要支援者名簿 end to end: `bcl roster processor` (the Faust app) on an embedded cluster of the test's own,
fed register states on bcl.residents and welfare events on bcl.welfare.status as the materialiser and the adapter
publish them; the roster in the disaster store; the real `bcl roster` commands (sweep, tasks, consent, phone, list,
export, pdf) and pdftotext on the PDF. A resident's welfare event lists them, a death removes them (kept in the
history), turning 75 alone creates a task on the day's sweep, a household member moving out leaves a one-person
household of the elderly, consent is recorded with its date; malformed and invalid welfare events are dead-lettered
while the processor goes on; `bcl adapter welfare` publishes the synthetic welfare systems' events."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.evacuation_roster import Criterion
from domain.japan_time import JST, japan_date
from domain.register_validation import message_key
from infra import kafka, topics
from infra.cluster_control import ClusterHandle
from infra.crash_points import CRASH_EXIT_STATUS, ENVIRONMENT_VARIABLE
from schemas.contracts import CONTRACTS
from schemas.wire import AvroSerde
from sinks.evacuation_roster import EvacuationRoster
from streams.adapter import publish_signed, publish_welfare
from streams.evacuation_roster_processor import AFTER_SINK
from streams.register.reference import load_reference_data
from streams.register.simulator import RegisterSimulator
from tests.factories import make_resident
from tests.platforms import make_platform
from tests.streams.commands.test_ingest_cli import BCL, environment
from tests.topic_reader import read_topic

pytestmark = pytest.mark.integration
TANABE = "302066"


def _years_before(day: dt.date, years: int) -> dt.date:
    return day.replace(year=day.year - years)


def _person(n: int, household: str, birth: dt.date, **overrides: Any) -> dict[str, Any]:
    return make_resident(TANABE, n, household_number=household, birth_date=birth,
                         given_name=f"名{n}", given_name_kana=f"ナ{n}", **overrides)


def _welfare(n: int, *, municipality_code: str = TANABE, at: dt.datetime | None = None,
             **status: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "municipality_code": municipality_code, "resident_code": f"{n:011d}",
            "event_time": at or dt.datetime.now(dt.UTC), "care_level": None, "physical_grade": None,
            "intellectual_grade": None, "mental_grade": None, "intractable_disease": False,
            "living_at_home": True, **status}


class World:
    def __init__(self, cluster: ClusterHandle, data_dir: Path) -> None:
        self.cluster = cluster
        self.data_dir = data_dir
        self.env = environment(cluster, data_dir) | {"BCL_LOG_FORMAT": "json"}
        # The platform of the processor's data dir: its trust store holds the keys the welfare messages are signed
        # with (register_signer makes and registers them, as for the register).
        self.platform = make_platform(data_dir, cluster)
        self.residents = AvroSerde(self.platform.registry, CONTRACTS[topics.RESIDENTS])
        self.welfare = AvroSerde(self.platform.registry, CONTRACTS[topics.WELFARE_STATUS])
        self.producer = kafka.make_producer(cluster.bootstrap_servers)

    def register(self, *records: dict[str, Any]) -> None:
        for r in records:
            kafka.produce(self.producer, topics.RESIDENTS, self.residents.encode(r),
                          message_key(r["municipality_code"], r["resident_code"]))
        assert self.producer.flush(30) == 0

    def send_welfare(self, *events: dict[str, Any]) -> None:
        """Signed by the municipality's key, as the adapter sends them (streams.adapter.publish_welfare)."""
        publish_welfare(events, self.cluster.bootstrap_servers, self.platform.registry, self.platform.register_signer)

    def signed_as(self, signer: str, key: bytes, value: bytes) -> None:
        publish_signed([(signer, key, value)], self.cluster.bootstrap_servers, self.platform.register_signer,
                       topic=topics.WELFARE_STATUS)

    def unsigned(self, event: dict[str, Any]) -> None:
        kafka.produce(self.producer, topics.WELFARE_STATUS, self.welfare.encode(event),
                      message_key(event["municipality_code"], event["resident_code"]))
        assert self.producer.flush(30) == 0

    def bcl(self, *args: str) -> subprocess.CompletedProcess[str]:
        began = time.monotonic()
        try:
            return subprocess.run([str(BCL), *args], env=self.env, capture_output=True, text=True, timeout=120)
        finally:
            print("bcl", *args[:2], f"{time.monotonic() - began:.1f} s")

    def roster(self) -> EvacuationRoster:
        return make_platform(self.data_dir).evacuation_roster  # a fresh store each time: what the file holds

    def listed(self) -> dict[str, tuple[Criterion, ...]]:
        return {p.resident_code: p.reasons for p in self.roster().listed(TANABE, actor="test")}


def _wait(condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the roster did not reach the expected state"
        time.sleep(0.25)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[World, subprocess.Popen[str]]]:
    with ClusterHandle.start(brokers=1, data_dir=tmp_path / "cluster") as cluster:
        world = World(cluster, tmp_path / "var")
        proc = subprocess.Popen([str(BCL), "roster", "processor"], env=world.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            yield world, proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)


def _code(n: int) -> str:
    return f"{n:011d}"


def test_the_roster_is_kept_live_from_the_register_and_the_welfare_feed(
        world: tuple[World, subprocess.Popen[str]], tmp_path: Path) -> None:
    w, proc = world
    today = japan_date(dt.datetime.now(dt.UTC))
    birthday = today + dt.timedelta(days=10)
    # 1 (80) lives with 2 (50); 4 (74, 75 in ten days) lives alone; 5 (78) lives with 6 (40).
    one = _person(1, "H1", _years_before(today, 80))
    two = _person(2, "H1", _years_before(today, 50))
    four = _person(4, "H2", _years_before(birthday, 75), address={**one["address"], "town": "上屋敷一丁目"})
    five = _person(5, "H3", _years_before(today, 78))
    six = _person(6, "H3", _years_before(today, 40))
    w.register(one, two, four, five, six)
    # Resident 1 is certified 要介護4 at home: listed, with a consent task.
    w.send_welfare(_welfare(1, care_level="CARE_4"))
    _wait(lambda: w.listed() == {_code(1): (Criterion.CARE,)}, proc)
    tasks = w.roster().tasks(TANABE, actor="test")
    assert [(t.resident_code, t.cause.value) for t in tasks] == [(_code(1), "NEW_CONDITION")]

    # Bad welfare input goes to the dead-letter topic; the processor goes on: bytes that are not a WelfareStatus, a
    # grade out of range, an unsigned message, one about another municipality than its signer's.
    w.signed_as(TANABE, message_key(TANABE, _code(7)), b"not avro at all")
    w.send_welfare(_welfare(8, physical_grade=9))
    w.unsigned(_welfare(10, care_level="CARE_5"))
    w.signed_as(TANABE, message_key("045811", _code(9)), w.welfare.encode(_welfare(9, municipality_code="045811")))
    # An older status than the one held changes nothing (the latest wins whatever the arrival order).
    w.send_welfare(_welfare(1, at=dt.datetime(2020, 1, 1, tzinfo=JST)))
    # Resident 6 moves out: 5 (78) is now a one-person household of the elderly; resident 1 dies.
    w.register({**six, "status": "DELETED", "deletion_reason": "MOVE_OUT", "deleted_on": today},
               {**one, "status": "DELETED", "deletion_reason": "DEATH", "deleted_on": today})
    _wait(lambda: w.listed() == {_code(5): (Criterion.ELDERLY_HOUSEHOLD,)}, proc)
    history = w.roster().history(TANABE, _code(1), actor="test")
    assert [(c.change, c.detail) for c in history] == [("LISTED", None), ("REMOVED", "死亡")]
    tasks = w.roster().tasks(TANABE, actor="test", open_only=False)
    assert {(t.resident_code, t.cause.value, t.outcome) for t in tasks} == {
        (_code(1), "NEW_CONDITION", "REMOVED"), (_code(5), "ONE_PERSON_HOUSEHOLD", None)}

    dead = AvroSerde(make_platform(tmp_path / "reader").registry, CONTRACTS[topics.DLQ])
    letters: dict[bytes, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(letters) < 4 and time.monotonic() < deadline:
        letters = {m.key(): dead.decode(m.value()) for m in read_topic(w.cluster.bootstrap_servers, topics.DLQ)}
    reasons = {key.decode(): letter["reason_code"] for key, letter in letters.items()}
    assert reasons == {f"{TANABE}:{_code(7)}": "MALFORMED", f"{TANABE}:{_code(8)}": "BAD_WELFARE_STATUS",
                       f"{TANABE}:{_code(10)}": "UNSIGNED", f"045811:{_code(9)}": "SIGNER_MISMATCH"}
    assert all(letter["topic"] == topics.WELFARE_STATUS for letter in letters.values())

    # The day's passing: the sweep on resident 4's 75th birthday lists them (alone) and asks for consent.
    swept = w.bcl("roster", "sweep", "--municipality", TANABE, "--on", birthday.isoformat())
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout)["listings_changed"] >= 1
    open_tasks = w.bcl("roster", "tasks", "--municipality", TANABE, "--json")
    causes = {json.loads(line)["resident_code"]: json.loads(line)["cause"] for line in open_tasks.stdout.splitlines()}
    assert causes == {_code(4): "TURNED_ELDERLY", _code(5): "ONE_PERSON_HOUSEHOLD"}

    # Consent recorded with its date closes the task; a telephone number entered by staff.
    consent_day = birthday + dt.timedelta(days=2)
    done = w.bcl("roster", "consent", "--municipality", TANABE, "--resident", _code(4), "--decision", "given",
                 "--on", consent_day.isoformat())
    assert done.returncode == 0, done.stderr
    assert w.bcl("roster", "phone", "--municipality", TANABE, "--resident", _code(4), "--number",
                 "0739-22-0000").returncode == 0
    open_tasks = w.bcl("roster", "tasks", "--municipality", TANABE, "--json")
    assert [json.loads(line)["resident_code"] for line in open_tasks.stdout.splitlines()] == [_code(5)]
    consented = w.bcl("roster", "list", "--municipality", TANABE, "--consent", "given", "--json")
    [line] = consented.stdout.splitlines()
    assert json.loads(line)["resident_code"] == _code(4)
    assert json.loads(line)["consent_on"] == consent_day.isoformat()
    by_town = w.bcl("roster", "list", "--municipality", TANABE, "--town", "上屋敷一丁目", "--json")
    assert [json.loads(x)["resident_code"] for x in by_town.stdout.splitlines()] == [_code(4)]

    # CSV and PDF with the legal items.
    out = tmp_path / "roster.csv"
    exported = w.bcl("roster", "export", "--municipality", TANABE, "--criterion", "elderly_household", "--out",
                     str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["住民票コード"], r["避難支援等を必要とする事由"], r["平常時の情報提供の同意"], r["電話番号"])
            for r in rows] == [(_code(4), "75歳以上の一人暮らし", "同意", "0739-22-0000"),
                               (_code(5), "75歳以上の一人暮らし", "未確認", "")]
    assert rows[0]["氏名"] == "田辺\u3000名4" and rows[0]["生年月日"] == four["birth_date"].isoformat()
    pdf = tmp_path / "roster.pdf"
    printed = w.bcl("roster", "pdf", "--municipality", TANABE, "--out", str(pdf))
    assert printed.returncode == 0, printed.stderr
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = "".join(text.split())
    for item in ("避難行動要支援者名簿", "田辺市", "氏名", "生年月日", "性別", "住所", "電話番号",
                 "避難支援等を必要とする事由", "田辺名4", "田辺名5", "0739-22-0000", "75歳以上の一人暮らし",
                 "今福一丁目"):
        assert item in flat, item
    assert "田辺名1" not in flat and "田辺名2" not in flat  # the dead and the unlisted are not printed

    # Every read of personal data is in the audit log.
    audit_file = make_platform(w.data_dir).settings.audit_file
    audit = [json.loads(x) for x in audit_file.read_text().splitlines()]
    assert {"roster.list", "roster.tasks", "roster.export", "roster.pdf"} <= {a["action"] for a in audit}

    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    totals = json.loads(stdout.strip().splitlines()[-1])
    assert totals["dead_lettered"] == 4 and totals["register_states"] == 7 and totals["welfare_statuses"] == 2
    assert "Traceback" not in stderr


def test_killed_after_the_roster_wrote_it_is_given_the_batch_again_and_changes_nothing(tmp_path: Path) -> None:
    with ClusterHandle.start(brokers=1, data_dir=tmp_path / "cluster") as cluster:
        w = World(cluster, tmp_path / "var")
        today = japan_date(dt.datetime.now(dt.UTC))
        people = [_person(n, f"H{n}", _years_before(today, 40)) for n in range(1, 41)]
        w.register(*people)
        w.send_welfare(*[_welfare(n, physical_grade=1) for n in range(1, 41)])
        crashed = subprocess.run([str(BCL), "roster", "processor"], env=w.env | {ENVIRONMENT_VARIABLE: AFTER_SINK},
                                 capture_output=True, text=True, timeout=180)
        assert crashed.returncode == CRASH_EXIT_STATUS, crashed.stderr
        written = len(w.listed())
        log = tmp_path / "restarted.log"
        with log.open("w") as err:
            proc = subprocess.Popen([str(BCL), "roster", "processor"], env=w.env, stdout=subprocess.PIPE,
                                    stderr=err, text=True)
        try:
            # Ready (its partitions assigned at the committed offsets), then given the uncommitted batch again.
            deadline = time.monotonic() + 90
            while "Ready" not in log.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            _wait(lambda: len(w.listed()) == 40, proc)
            time.sleep(2)
            proc.send_signal(signal.SIGTERM)
            stdout, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, log.read_text()
        # The crashed batch came again (it had been written: the roster held some of it), and changed nothing:
        # one task and one history line per person, however often their records were applied.
        totals = json.loads(stdout.strip().splitlines()[-1])
        assert written > 0 and totals["register_states"] + totals["welfare_statuses"] == 80
        tasks = w.roster().tasks(TANABE, actor="test")
        assert sorted(t.resident_code for t in tasks) == [_code(n) for n in range(1, 41)]
        con = w.roster().store.connection
        assert con.execute("SELECT count(*) FROM roster_history").fetchone()[0] == 40


def test_the_adapter_publishes_the_synthetic_welfare_systems(tmp_path: Path) -> None:
    with ClusterHandle.start(brokers=1, data_dir=tmp_path / "cluster") as cluster:
        w = World(cluster, tmp_path / "var")
        code = "045811"
        start = "2026-11-01T00:00:00+09:00"
        assert w.bcl("adapter", "full-load", "--municipality", code, "--population", "2000", "--start",
                     start).returncode == 0
        assert w.bcl("adapter", "diffs", "--municipality", code, "--days", "90").returncode == 0
        sent = w.bcl("adapter", "welfare", "--municipality", code)
        assert sent.returncode == 0, sent.stderr
        again = w.bcl("adapter", "welfare", "--municipality", code)  # nothing new: days 91–90
        assert again.returncode == 0 and "published 0 welfare events" in again.stdout, again.stdout
        settings = make_platform(w.data_dir).settings
        sim = RegisterSimulator(load_reference_data(), code, population=2000, seed=settings.seed,
                                start=dt.datetime.fromisoformat(start), font_path=settings.mincho_font)
        expected = [*sim.welfare_full_load(), *sim.welfare_changes(90)]
        assert expected and any(e["event_time"] > sim.start for e in expected)
        held = [w.welfare.decode(m.value()) for m in read_topic(cluster.bootstrap_servers, topics.WELFARE_STATUS)]
        assert sorted(e["event_id"] for e in held) == sorted(e["event_id"] for e in expected)
        assert all(m.headers() for m in read_topic(cluster.bootstrap_servers, topics.WELFARE_STATUS))  # signed
