"""Online applications for disaster support (docs/domain.md §6.3, §6.4) and the mails they cause, on the disaster
store's database (sinks.disaster_store).

- `disaster_applications`: one row per application: what was applied for, the card's certificate serial and
  signature (the proof), the applicant's mail address, the automatic match against the ledger (and why it failed),
  the status, who decided and when, and when the applicant was told "ready to issue".
- `mail_outbox`: one row per mail to send (sinks.mail_outbox): written in the transaction of the change that
  causes it, sent by the mailer (streams.disaster_mailer).

Each change is one transaction: the application's row, its DisasterApplication event in the store's outbox
(published by the disaster relay on bcl.disaster.applications) and its mails. A submission is acknowledged once
committed. The signature and certificate are verified before (streams.application_intake: this module trusts
what it is given); the duplicate check and the match run inside the transaction, so two copies of an application
sent at once cannot both be taken (and a partial unique index refuses a second open application anyway).

"Ready to issue" (§6.3) needs the application accepted and, for a procedure by damage level, the dwelling
surveyed; the survey is entered by damage assessment (sinks.damage_assessment), which knows nothing of
applications. So `announce_ready` looks for accepted applications that became ready and, in one transaction per
application, marks them told and queues the mail: each applicant is told once, whichever came last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.disaster_applications import (
    DWELLING_PROCEDURES,
    OPEN_STATUSES,
    PROCEDURE_NAMES,
    ApplicationDecisionError,
    ApplicationRefusedError,
    ApplicationStatus,
    LedgerPerson,
    Match,
    Procedure,
    applicant_key,
    decision_reason,
    match_application,
    ready_to_issue,
)
from domain.disasters import Disaster, DisasterClosedError, to_millisecond
from infra import topics
from schemas.wire import AvroSerde
from sinks.disaster_store import DisasterStore
from sinks.mail_outbox import MailOutbox, OutgoingMail

_TABLES = """
    CREATE TABLE IF NOT EXISTS disaster_applications (
        application_id TEXT PRIMARY KEY, disaster_id TEXT NOT NULL, procedure TEXT NOT NULL,
        applicant_key TEXT NOT NULL, certificate_serial TEXT NOT NULL, certificate_der BLOB NOT NULL,
        signature BLOB NOT NULL, mail_address TEXT NOT NULL, applied_at INTEGER NOT NULL,
        municipality_code TEXT, resident_code TEXT, household_number TEXT, dwelling_id TEXT,
        matched INTEGER NOT NULL, match_reason TEXT NOT NULL, status TEXT NOT NULL,
        decided_by TEXT, decided_at INTEGER, decision_reason TEXT, ready_told_at INTEGER,
        recorded_at INTEGER NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS disaster_applications_open
        ON disaster_applications (disaster_id, procedure, applicant_key) WHERE status != 'REJECTED';
    CREATE INDEX IF NOT EXISTS disaster_applications_of ON disaster_applications (disaster_id, status);
    -- the certificate worker's look-up of a household's accepted 被災証明書 application (sinks.household_facts)
    CREATE INDEX IF NOT EXISTS disaster_applications_household
        ON disaster_applications (disaster_id, household_number);
"""

_COLUMNS = ("application_id", "disaster_id", "procedure", "certificate_serial", "mail_address", "applied_at",
            "municipality_code", "resident_code", "household_number", "dwelling_id", "matched", "match_reason",
            "status", "decided_by", "decided_at", "decision_reason", "ready_told_at", "recorded_at")

# The staff address of a municipality, from the settings' template (streams.settings.disaster_staff_mail).
StaffAddress = Callable[[str], str]


@dataclass(frozen=True)
class SignedApplication:
    """An application whose signature and certificate were verified (streams.application_intake)."""

    application_id: str
    disaster_id: str
    procedure: Procedure
    mail_address: str
    applied_at: dt.datetime
    certificate_serial: str
    certificate_der: bytes
    signature: bytes


@dataclass(frozen=True)
class Application:
    """An application as staff see it."""

    application_id: str
    disaster_id: str
    procedure: Procedure
    certificate_serial: str
    mail_address: str
    applied_at: dt.datetime
    municipality_code: str | None
    resident_code: str | None
    household_number: str | None
    dwelling_id: str | None
    matched: bool
    match_reason: str
    status: ApplicationStatus
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None
    ready_told_at: dt.datetime | None
    recorded_at: dt.datetime


def _ms(instant: dt.datetime) -> int:
    return int(to_millisecond(instant).timestamp() * 1000)


def _instant(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _application(row: tuple[Any, ...]) -> Application:
    (application_id, disaster_id, proc, serial, mail, applied_at, municipality_code, resident_code, household,
     dwelling, matched, reason, status, decided_by, decided_at, decision, ready_told_at, recorded_at) = row
    applied, recorded = _instant(applied_at), _instant(recorded_at)
    assert applied is not None and recorded is not None  # NOT NULL columns
    return Application(application_id, disaster_id, Procedure(proc), serial, mail, applied, municipality_code,
                       resident_code, household, dwelling, bool(matched), reason, ApplicationStatus(status),
                       decided_by, _instant(decided_at), decision, _instant(ready_told_at), recorded)


class DisasterApplications:
    """The applications of the disasters, over the disaster store's connection and outbox."""

    def __init__(self, store: DisasterStore, serde: AvroSerde, mails: MailOutbox, staff_address: StaffAddress,
                 topic: str = topics.DISASTER_APPLICATIONS) -> None:
        self.store = store
        self.mails = mails
        self.topic = topic
        self._serde = serde
        self._staff_address = staff_address
        self._con = store.connection
        with store.transaction():
            for statement in _TABLES.split(";"):
                if statement.strip():
                    self._con.execute(statement)

    # -- submitting ------------------------------------------------------------------------------

    def submit(self, application: SignedApplication, now: dt.datetime) -> Application:
        """Store a verified application with its match, its SUBMITTED event and the staff mail, in one
        transaction. ApplicationRefusedError (nothing stored) for a closed disaster or a duplicate."""
        with self.store.transaction():
            disaster = self.store.disaster(application.disaster_id)
            if disaster.closed_at is not None and disaster.closed_at <= now:
                raise DisasterClosedError(f"disaster {disaster.disaster_id} ({disaster.name}) is closed: "
                                          "it takes no more applications")
            if self._con.execute("SELECT 1 FROM disaster_applications WHERE application_id=?",
                                 (application.application_id,)).fetchone() is not None:
                raise ApplicationRefusedError(f"application {application.application_id} was already submitted "
                                              "(each signed application is taken once)")
            match = self._match(disaster, application)
            key = applicant_key(match, application.certificate_serial)
            marks = ",".join("?" * len(OPEN_STATUSES))
            duplicate = self._con.execute(
                "SELECT application_id, status FROM disaster_applications WHERE disaster_id=? AND procedure=? "
                f"AND applicant_key=? AND status IN ({marks})",
                (disaster.disaster_id, application.procedure.value, key, *sorted(OPEN_STATUSES))).fetchone()
            if duplicate is not None:
                raise ApplicationRefusedError(
                    f"a duplicate: application {duplicate[0]} for {PROCEDURE_NAMES[application.procedure]} of "
                    f"this applicant under this disaster is still {duplicate[1].lower()}")
            person = match.person
            self._con.execute(
                "INSERT INTO disaster_applications (application_id, disaster_id, procedure, applicant_key, "
                "certificate_serial, certificate_der, signature, mail_address, applied_at, municipality_code, "
                "resident_code, household_number, dwelling_id, matched, match_reason, status, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (application.application_id, disaster.disaster_id, application.procedure.value, key,
                 application.certificate_serial, application.certificate_der, application.signature,
                 application.mail_address, _ms(application.applied_at),
                 None if person is None else person.municipality_code,
                 None if person is None else person.resident_code,
                 None if person is None else person.household_number,
                 None if person is None else person.dwelling_id,
                 int(match.matched), match.reason, ApplicationStatus.OPEN.value, _ms(now)))
            stored = self._get(application.application_id)
            self._announce("SUBMITTED", stored, now)
            codes = [person.municipality_code] if person is not None else list(disaster.municipality_codes)
            for code in codes:
                self.mails.queue(self._staff_mail(code, disaster, stored), now)
        return stored

    def _match(self, disaster: Disaster, application: SignedApplication) -> Match:
        # The serials are stored comma-joined (sinks.disaster_ledger); delimiting both sides matches whole serials.
        rows = self._con.execute(
            "SELECT municipality_code, resident_code, in_base, household_number, dwelling_id, flags "
            "FROM ledger_residents WHERE disaster_id=? AND instr(',' || jpki_serials || ',', ?) > 0",
            (disaster.disaster_id, f",{application.certificate_serial},")).fetchall()
        people = [LedgerPerson(m, r, bool(b), h, d, frozenset(filter(None, (f or "").split(","))))
                  for m, r, b, h, d, f in rows]
        dwellings: set[str] = set()
        if len(people) == 1 and people[0].dwelling_id is not None:
            found = self._con.execute("SELECT dwelling_id FROM ledger_dwellings WHERE disaster_id=? AND dwelling_id=? "
                                      "AND municipality_code=?", (disaster.disaster_id, people[0].dwelling_id,
                                                                  people[0].municipality_code)).fetchone()
            dwellings = {found[0]} if found else set()
        return match_application(application.procedure, disaster.municipality_codes, people, dwellings)

    # -- staff decisions -------------------------------------------------------------------------

    def accept(self, application_id: str, staff: str, now: dt.datetime, reason: str | None = None) -> Application:
        """Accept an open application (one transaction with its ACCEPTED event); the applicant is told "ready to
        issue" at once if it is (announce_ready does it otherwise, once the dwelling is surveyed)."""
        return self._decide(application_id, ApplicationStatus.ACCEPTED, staff, decision_reason(reason, False), now)

    def reject(self, application_id: str, staff: str, reason: str | None, now: dt.datetime) -> Application:
        """Reject an open application with a reason, mailed to the applicant in the same transaction."""
        return self._decide(application_id, ApplicationStatus.REJECTED, staff, decision_reason(reason, True), now)

    def _decide(self, application_id: str, status: ApplicationStatus, staff: str, reason: str | None,
                now: dt.datetime) -> Application:
        if not staff.strip():
            raise ApplicationDecisionError("name the staff member who decides (--staff)")
        with self.store.transaction():
            current = self._get(application_id)
            if current.status is not ApplicationStatus.OPEN:
                raise ApplicationDecisionError(f"application {application_id} was already {current.status.lower()} "
                                               f"by {current.decided_by}")
            self._con.execute("UPDATE disaster_applications SET status=?, decided_by=?, decided_at=?, "
                              "decision_reason=? WHERE application_id=?",
                              (status.value, staff.strip(), _ms(now), reason, application_id))
            decided = self._get(application_id)
            self._announce(status.value, decided, now)
            if status is ApplicationStatus.REJECTED:
                self.mails.queue(self._rejection_mail(decided), now)
            else:
                decided = self._tell_if_ready(decided, now)
        return decided

    def announce_ready(self, now: dt.datetime) -> int:
        """Queue the "ready to issue" mail of every accepted application that became ready (its dwelling was
        surveyed after it was accepted) and was not told yet; each in one transaction. Returns how many."""
        if not self._has_surveys():
            return 0
        procedures = sorted(p.value for p in DWELLING_PROCEDURES)
        marks = ",".join("?" * len(procedures))
        ids = [i for (i,) in self._con.execute(
            "SELECT a.application_id FROM disaster_applications a JOIN dwelling_surveys s "
            "ON s.disaster_id = a.disaster_id AND s.dwelling_id = a.dwelling_id "
            f"WHERE a.status='ACCEPTED' AND a.ready_told_at IS NULL AND a.procedure IN ({marks})", procedures)]
        told = 0
        for application_id in ids:
            with self.store.transaction():
                current = self._get(application_id)
                if current.ready_told_at is None and self._tell_if_ready(current, now).ready_told_at is not None:
                    told += 1
        return told

    def _tell_if_ready(self, application: Application, now: dt.datetime) -> Application:
        """Inside a transaction: mark the application told and queue its mail, if it is ready and was not told."""
        if application.ready_told_at is not None or not ready_to_issue(
                application.procedure, application.status, self._surveyed(application)):
            return application
        self._con.execute("UPDATE disaster_applications SET ready_told_at=? WHERE application_id=?",
                          (_ms(now), application.application_id))
        self.mails.queue(self._ready_mail(application), now)
        return self._get(application.application_id)

    def _has_surveys(self) -> bool:
        return self._con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='dwelling_surveys'"
                                 ).fetchone() is not None

    def _surveyed(self, application: Application) -> bool:
        if application.dwelling_id is None or not self._has_surveys():
            return False
        return self._con.execute("SELECT 1 FROM dwelling_surveys WHERE disaster_id=? AND dwelling_id=?",
                                 (application.disaster_id, application.dwelling_id)).fetchone() is not None

    # -- reading ---------------------------------------------------------------------------------

    def application(self, application_id: str) -> Application:
        return self._get(application_id)

    def applications(self, disaster_id: str, municipality_code: str | None = None,
                     status: ApplicationStatus | None = None) -> list[Application]:
        """The applications of a disaster, oldest first; of one municipality (its matched applicants, and the
        unmatched ones, which every municipality of the disaster is shown), of one status."""
        self.store.disaster(disaster_id)  # UnknownDisasterError for a wrong id
        query = f"SELECT {', '.join(_COLUMNS)} FROM disaster_applications WHERE disaster_id=?"
        values: list[object] = [disaster_id]
        if municipality_code is not None:
            query += " AND (municipality_code=? OR municipality_code IS NULL)"
            values.append(municipality_code)
        if status is not None:
            query += " AND status=?"
            values.append(status.value)
        return [_application(row) for row in self._con.execute(query + " ORDER BY recorded_at, rowid", values)]

    def _get(self, application_id: str) -> Application:
        row = self._con.execute(f"SELECT {', '.join(_COLUMNS)} FROM disaster_applications WHERE application_id=?",
                                (application_id,)).fetchone()
        if row is None:
            raise ApplicationDecisionError(f"no application {application_id!r} "
                                           "(`bcl disaster applications DISASTER_ID` lists them)")
        return _application(row)

    # -- events and mails ------------------------------------------------------------------------

    def _announce(self, event_type: str, application: Application, now: dt.datetime) -> None:
        self.store.append_outbox(self.topic, application.disaster_id.encode(), self._serde, {
            "event_type": event_type, "application_id": application.application_id,
            "disaster_id": application.disaster_id, "procedure": application.procedure.value,
            "municipality_code": application.municipality_code, "resident_code": application.resident_code,
            "matched": application.matched, "match_reason": application.match_reason,
            "status": application.status.value, "decided_by": application.decided_by,
            "reason": application.decision_reason, "recorded_at": to_millisecond(now)}, now)

    def _staff_mail(self, municipality_code: str, disaster: Disaster, application: Application) -> OutgoingMail:
        match = "一致" if application.matched else "不一致"
        return OutgoingMail(
            "STAFF_NEW_APPLICATION", application.application_id, self._staff_address(municipality_code),
            f"[BCL] 新しい申請: {PROCEDURE_NAMES[application.procedure]}（{disaster.name}）",
            "\n".join([
                "オンライン申請を受け付けました。職員の確認をお願いします。", "",
                f"申請番号: {application.application_id}", f"災害: {disaster.name} ({disaster.disaster_id})",
                f"手続: {PROCEDURE_NAMES[application.procedure]}",
                f"台帳との自動照合: {match} — {application.match_reason}", "",
                f"bcl disaster applications {disaster.disaster_id}"]))

    def _rejection_mail(self, application: Application) -> OutgoingMail:
        return OutgoingMail(
            "APPLICANT_REJECTED", application.application_id, application.mail_address,
            f"[BCL] {PROCEDURE_NAMES[application.procedure]}の申請について",
            "\n".join([f"申請番号 {application.application_id} の{PROCEDURE_NAMES[application.procedure]}の申請は、"
                       "次の理由により受理できませんでした。", "", f"理由: {application.decision_reason}", "",
                       "ご不明な点は市区町村の窓口にお問い合わせください。"]))

    def _ready_mail(self, application: Application) -> OutgoingMail:
        return OutgoingMail(
            "APPLICANT_READY", application.application_id, application.mail_address,
            f"[BCL] {PROCEDURE_NAMES[application.procedure]}の交付準備ができました",
            "\n".join([f"申請番号 {application.application_id} の{PROCEDURE_NAMES[application.procedure]}は、"
                       "交付の準備ができました。", "",
                       "マイナンバーカードをお持ちのうえ、窓口またはコンビニエンスストアのキオスク端末で受け取れます。"]))
