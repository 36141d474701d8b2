"""The kiosk terminal (キオスク端末): the resident's card, PIN and choices in; a printed certificate out.

One session, as at a convenience-store terminal:
1. read the user-authentication certificate from the card (no PIN needed);
2. check the PIN counter without using a try (a locked card is turned away at once), verify the PIN;
   a wrong or locked PIN is shown on the screen in Japanese and NOTHING is sent to BCL;
3. have the card sign the challenge (domain/challenge.py, BCL-KIOSK-v2: every field of the request, so
   what is issued, shown and billed is what the resident chose);
4. send a CertificateRequest to bcl.kiosk.requests (key = request id) and wait for the matching
   CertificateResponse, which the process's one ResponseRouter hands over; with two issuing centres
   (domain.issuing_centres) it is sent to the vendor's centre, and the same bytes to the other centre if no answer
   comes within the failover time, the answer of either centre ending the wait;
5. "print": save the PDF of an issued certificate; show the message of a refusal.

With two centres the kiosk is also a claimant of its request (kiosk_sim.withdrawal): when no answer comes within its
response time-out it withdraws the request on bcl.kiosk.claims and does what the first claim of the request id says,
printing the answer a worker claimed first, or refunding if its withdrawal came first. Until it knows, the session
is unresolved: the screen says MESSAGE_CONFIRMING, nothing is refunded and nothing printed.

`KioskConnection` is what a kiosk process holds once: the producer, the request serde and the
response router. Any number of `Kiosk` terminals (threads) share it. The card reaches the kiosk
through a transport (in-process or PC/SC): the kiosk cannot tell which.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message

from domain.certificate_types import NOT_AVAILABLE_VIA_BCL, CertificateType
from domain.challenge import challenge_bytes
from domain.issuing_centres import CENTRE_HEADER, CentreAvailability, other_centre, preferred_centre
from domain.kiosk_rules import ISSUING_CENTRES, MAX_COPIES, MIN_COPIES, FeeTable
from infra.kafka import make_producer, produce
from infra.private_files import write_private_file
from infra.topics import KIOSK_CLAIMS, KIOSK_REQUESTS, KIOSK_RESPONSES
from kiosk_sim.card_client import JpkiCardClient
from kiosk_sim.errors import (
    CardDataError,
    CardError,
    InvalidPinFormat,
    KioskSimError,
    PinLocked,
    PinNotVerifiedError,
    TransportError,
    WrongPin,
)
from kiosk_sim.response_router import PendingResponse, ResponseRouter, RoutedResponse
from kiosk_sim.transport import BaseCardTransport
from kiosk_sim.undecided_requests import UndecidedRequests
from kiosk_sim.withdrawal import ClaimMark, ClaimsUnreachable, Withdrawals
from schemas.contracts import CONTRACTS
from schemas.registry import BaseSchemaRegistry
from schemas.wire import AvroSerde

FEES = FeeTable()  # the default kiosk fees; municipalities' own fees are the centre's concern

DEFAULT_RESPONSE_TIMEOUT = 30.0

# What the resident can pick (the RequestedCertificate symbols of certificate_request.avsc).
CERTIFICATE_TYPES = tuple(kind.value for kind in CertificateType)
HOUSEHOLD_SCOPES = ("SELF", "WHOLE_HOUSEHOLD")

# The price the kiosk collects per copy (yen) before sending: (municipality code, certificate type) -> yen.
# The municipality's fee table sets it; the centre checks the payment and answers with the fee charged.
PricePerCopy = Callable[[str, str], int]

# Messages on the kiosk screen.
MESSAGE_WRONG_PIN = "暗証番号が正しくありません。あと{tries}回間違えるとカードがロックされます。"
MESSAGE_PIN_LOCKED = ("暗証番号がロックされているため、このカードはご利用いただけません。"
                      "お住まいの市区町村の窓口で暗証番号の再設定を行ってください。")
MESSAGE_PIN_FORMAT = "暗証番号は4桁の数字で入力してください。"
MESSAGE_CARD_ERROR = "カードを読み取れませんでした。カードを置き直して、もう一度お試しください。"
MESSAGE_NO_RESPONSE = ("ただいま証明書を発行できません。料金は返金いたします。"
                       "しばらくしてからもう一度お試しください。")
MESSAGE_ISSUED = "証明書を印刷しました。お取り忘れのないようご注意ください。"
# While a withdrawn request is undecided (its claim partition out of reach): neither printed nor refunded yet.
MESSAGE_CONFIRMING = ("ただいま発行状況を確認しています。画面が切り替わるまでこのままお待ちください。"
                      "料金の精算はまだ行われていません。")


class KioskError(KioskSimError):
    """The kiosk cannot start a session: a bad choice, or its link to BCL is down."""


class OutcomeStatus(enum.StrEnum):
    ISSUED = "ISSUED"  # the centre issued; the PDF was printed
    REFUSED = "REFUSED"  # the centre refused with a reason (the kiosk refunds)
    WRONG_PIN = "WRONG_PIN"  # nothing sent
    PIN_LOCKED = "PIN_LOCKED"  # nothing sent
    CARD_ERROR = "CARD_ERROR"  # nothing sent: the card could not be read, or the PIN was not 4 digits
    NO_RESPONSE = "NO_RESPONSE"  # sent, but no answer in time (or an answer the kiosk cannot read)
    WITHDRAWN = "WITHDRAWN"  # two centres: no answer in time, and the kiosk's withdrawal was the first claim
    SEND_FAILED = "SEND_FAILED"  # the request could not be delivered to the cluster


@dataclass(frozen=True, slots=True)
class KioskTerminal:
    """A terminal: which vendor runs it, which centre that vendor is assigned to, where it stands."""

    kiosk_id: str
    vendor: str
    centre: str
    municipality_code: str

    def __post_init__(self) -> None:
        if self.centre not in ISSUING_CENTRES:
            raise KioskError(f"centre must be one of {', '.join(ISSUING_CENTRES)}, got {self.centre!r}")


@dataclass(frozen=True, slots=True)
class CertificateChoice:
    """What the resident picks on the screen."""

    municipality_code: str
    certificate_type: str
    household_scope: str = "SELF"
    include_head_and_relationship: bool = False
    include_domicile: bool = False
    fiscal_year: int | None = None
    copies: int = 1

    def __post_init__(self) -> None:
        if self.certificate_type not in CERTIFICATE_TYPES:
            raise KioskError(f"unknown certificate type {self.certificate_type!r} "
                             f"(one of {', '.join(CERTIFICATE_TYPES)})")
        if self.household_scope not in HOUSEHOLD_SCOPES:
            raise KioskError(f"household scope must be SELF or WHOLE_HOUSEHOLD, got {self.household_scope!r}")
        if not MIN_COPIES <= self.copies <= MAX_COPIES:
            raise KioskError(f"copies must be {MIN_COPIES}-{MAX_COPIES}, got {self.copies}")
        if len(self.municipality_code) != 6 or not self.municipality_code.isdigit():
            raise KioskError(f"a municipality code has 6 digits, got {self.municipality_code!r}")

    def price(self, per_copy: PricePerCopy) -> int:
        return per_copy(self.municipality_code, self.certificate_type) * self.copies


@dataclass(frozen=True, slots=True)
class KioskOutcome:
    """What happened in one session. `latency` is request sent → response received (None if nothing
    was sent); `session_seconds` covers the whole session including the card."""

    status: OutcomeStatus
    message: str
    request_id: str | None = None
    reason_code: str | None = None
    latency: float | None = None
    session_seconds: float = 0.0
    printed_to: Path | None = None
    pages: int = 0
    fee_yen: int = 0
    certificate_ids: tuple[str, ...] = ()
    pdf_bytes: int = 0
    centre: str | None = None  # the centre that answered (two centres), or the one last sent to
    unresolved_seconds: float = 0.0  # two centres: how long the kiosk waited to learn the first claim

    @property
    def sent(self) -> bool:
        return self.request_id is not None


@dataclass(frozen=True, slots=True)
class SettledRequest:
    """A request a previous run of the kiosk process left undecided, now settled: `answer` is the response a worker
    claimed first (a certificate to hand over, or a refusal), None if the kiosk's withdrawal was first (the
    resident is owed the refund)."""

    request_id: str
    kiosk_id: str
    answer: dict[str, Any] | None
    centre: str | None = None

    @property
    def withdrawn(self) -> bool:
        return self.answer is None


@dataclass(frozen=True, slots=True)
class KioskTopics:
    requests: str = KIOSK_REQUESTS
    responses: str = KIOSK_RESPONSES
    claims: str = KIOSK_CLAIMS  # two centres: where the kiosk withdraws a request it gave up on


@dataclass
class ConnectionCounters:
    sent: int = 0
    send_failures: int = 0
    timeouts: int = 0
    failovers: int = 0  # requests sent again to the other centre
    withdrawn: int = 0  # two centres: given up on, and the kiosk's withdrawal came first (refunded)
    claimed_answers: int = 0  # two centres: given up on, but a worker's claim came first (its answer printed)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


class KioskConnection:
    """A kiosk process's link to BCL: one producer, one response router, shared by its terminals."""

    def __init__(self, bootstrap_servers: str, registry: BaseSchemaRegistry, *, topics: KioskTopics = KioskTopics(),
                 response_timeout: float = DEFAULT_RESPONSE_TIMEOUT, centres: CentreAvailability | None = None,
                 vendor_centres: Mapping[str, str] | None = None, undecided: Path | None = None) -> None:
        """undecided: with two centres, the file where the requests sent and not yet settled are kept, so that a
        restarted kiosk process settles them (kiosk_sim.undecided_requests; None: in memory only)."""
        self.topics = topics
        self.response_timeout = response_timeout
        # Two centres (domain.issuing_centres): each request is sent to one, named in its CENTRE_HEADER, and to the
        # other if the first does not answer in time. None: one site, no header, no failover.
        self.centres = centres
        self.vendor_centres = dict(vendor_centres or {})
        self._serde = AvroSerde(registry, CONTRACTS[KIOSK_REQUESTS])
        self.responses = AvroSerde(registry, CONTRACTS[KIOSK_RESPONSES])  # what a worker's claim carries
        self.claims = AvroSerde(registry, CONTRACTS[KIOSK_CLAIMS])
        # linger 1 ms: a kiosk request is one small message and someone is waiting for it.
        self._producer = make_producer(bootstrap_servers, **{"linger.ms": 1})
        self.router = ResponseRouter(bootstrap_servers, registry, topic=topics.responses)
        self.withdrawals = None if centres is None else Withdrawals(
            bootstrap_servers, self._producer, topics.claims,
            undecided=None if undecided is None else UndecidedRequests(undecided))
        self._failed: dict[str, str] = {}
        self._failed_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_producer, name="kiosk-producer-poll", daemon=True)
        self.counters = ConnectionCounters()

    def start(self) -> KioskConnection:
        self.router.start()
        self._poller.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._poller.is_alive():
            self._poller.join(timeout=5)
        self._producer.flush(10)
        self.router.close()
        if self.withdrawals is not None:
            self.withdrawals.close()

    def __enter__(self) -> KioskConnection:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _poll_producer(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def send(self, request: dict[str, Any], centre: str | None = None) -> PendingResponse:
        """Register the request with the router, then produce it (key = request id), to `centre` if given."""
        self.router.check()
        request_id = request["request_id"]
        pending = self.router.expect(request_id)
        self._produce(request_id, self._serde.encode(request), pending, centre)
        return pending

    def resend(self, request: dict[str, Any], pending: PendingResponse, centre: str) -> None:
        """The same request (same id, same signed bytes) to another centre; the answer, from either centre, still
        reaches `pending`."""
        self.router.check()
        self._produce(request["request_id"], self._serde.encode(request), pending, centre)
        self.counters.add("failovers")

    def _produce(self, request_id: str, value: bytes, pending: PendingResponse, centre: str | None) -> None:

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                with self._failed_lock:
                    self._failed[request_id] = err.str()
                self.router.forget(request_id)
                pending.wake()  # the waiting kiosk: it finds no response and the failure

        headers = None if centre is None else [(CENTRE_HEADER, centre.encode())]
        produce(self._producer, self.topics.requests, value, request_id.encode(), on_delivery=delivered,
                headers=headers)
        self.counters.add("sent")

    def withdrawal(self, request_id: str) -> bytes:
        """The value of the kiosk's WITHDRAWN claim for a request id (a CertificateResponse: no certificate, no fee)."""
        return self.claims.encode({
            "request_id": request_id, "status": "WITHDRAWN", "reason_code": "WITHDRAWN",
            "message": MESSAGE_NO_RESPONSE, "certificate_ids": [], "pdf": None, "pages": 0, "fee_yen": 0,
            "responded_at": _utc_now_millis()})

    def settle_undecided(self) -> list[SettledRequest]:
        """What a previous run of this kiosk process sent and did not settle (it died mid-session): withdraw each
        request and take what its first claim says, as a kiosk that gives up does. Blocks until all are settled."""
        withdrawals = self.withdrawals
        if withdrawals is None or withdrawals.undecided is None:
            return []
        settled: list[SettledRequest] = []
        for request_id, kiosk_id, partition, offset in withdrawals.undecided.all():
            mark = ClaimMark(request_id, partition, offset)
            first = withdrawals.settle(mark, kiosk_id, self.withdrawal(request_id))
            answer = None if first.withdrawn else self.responses.decode(first.response)
            withdrawals.settled(mark)
            settled.append(SettledRequest(request_id, kiosk_id, answer, first.centre))
        return settled

    def delivery_failure(self, request_id: str) -> str | None:
        with self._failed_lock:
            return self._failed.pop(request_id, None)

    def delivery_failure_pending(self, request_id: str) -> bool:
        """Whether the request could not be delivered (then there is no centre to blame: the cluster refused it)."""
        with self._failed_lock:
            return request_id in self._failed


def kiosk_price(municipality_code: str, certificate_type: str) -> int:
    """The municipality's kiosk fee per copy; 0 for what BCL does not issue (the centre refuses those
    before any payment)."""
    kind = CertificateType(certificate_type)
    if kind in NOT_AVAILABLE_VIA_BCL:
        return 0
    return FEES.fee(municipality_code, kind)


def _utc_now_millis() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Kiosk:
    """One terminal. Sessions on one terminal are sequential (one resident at a time); different
    terminals may run concurrently on one connection."""

    def __init__(self, terminal: KioskTerminal, connection: KioskConnection, *,
                 clock: Callable[[], dt.datetime] = _utc_now_millis,
                 price_per_copy: PricePerCopy = kiosk_price,
                 screen: Callable[[str], None] = lambda message: None) -> None:
        self.terminal = terminal
        self.connection = connection
        self._clock = clock
        self._price_per_copy = price_per_copy
        self._screen = screen  # what the kiosk shows while a session is still going on (MESSAGE_CONFIRMING)

    def issue(self, transport: BaseCardTransport, pin: str, choice: CertificateChoice, *,
              print_to: Path | None = None) -> KioskOutcome:
        """One session with the card in `transport`. `print_to`: where to save the PDF (None: not kept)."""
        started = time.perf_counter()
        client = JpkiCardClient(transport)
        request_id = str(uuid.uuid4())
        requested_at = self._clock().astimezone(dt.UTC)
        requested_at = requested_at.replace(microsecond=requested_at.microsecond // 1000 * 1000)
        try:
            certificate = client.read_auth_certificate()
            client.auth_pin_tries_left()  # raises PinLocked without using a try
            client.verify_auth_pin(pin)
            request = self._request(request_id, requested_at, certificate, choice)
            request["challenge_signature"] = client.sign_challenge(challenge_bytes(request))
        except WrongPin as wrong:
            return self._local(OutcomeStatus.WRONG_PIN, MESSAGE_WRONG_PIN.format(tries=wrong.tries_left), started)
        except PinLocked:
            return self._local(OutcomeStatus.PIN_LOCKED, MESSAGE_PIN_LOCKED, started)
        except InvalidPinFormat:
            return self._local(OutcomeStatus.CARD_ERROR, MESSAGE_PIN_FORMAT, started)
        except (CardError, CardDataError, TransportError, PinNotVerifiedError):
            return self._local(OutcomeStatus.CARD_ERROR, MESSAGE_CARD_ERROR, started)

        mark = None
        if self.connection.withdrawals is not None:
            try:
                mark = self.connection.withdrawals.mark(request_id, self.terminal.kiosk_id,
                                                        self.connection.response_timeout)
            except ClaimsUnreachable:
                # Not sent: a request the kiosk could not withdraw could be issued to nobody after a refund.
                self.connection.counters.add("send_failures")
                return KioskOutcome(OutcomeStatus.SEND_FAILED, MESSAGE_NO_RESPONSE, reason_code="CLAIMS_UNREACHABLE",
                                    session_seconds=time.perf_counter() - started)
        outcome = self._send(request, started, print_to, mark)
        withdrawals = self.connection.withdrawals
        if mark is not None and withdrawals is not None:
            withdrawals.settled(mark)  # only once the session has ended: a restart settles it otherwise
        return outcome

    def _send(self, request: dict[str, Any], started: float, print_to: Path | None,
              mark: ClaimMark | None) -> KioskOutcome:
        """Send the request and end the session: the answer, a withdrawal (with a mark), or the kiosk's no-answer."""
        request_id = request["request_id"]
        sent_at = time.perf_counter()
        routed, centre = self._send_and_wait(request)
        self.connection.router.forget(request_id)
        failure = self.connection.delivery_failure(request_id)
        if failure is not None:
            self.connection.counters.add("send_failures")
            return KioskOutcome(OutcomeStatus.SEND_FAILED, MESSAGE_NO_RESPONSE, request_id,
                                reason_code="SEND_FAILED", session_seconds=time.perf_counter() - started)
        if mark is not None and routed is None:
            return self._withdraw(mark, sent_at, started, print_to, centre)
        if routed is None or routed.record is None:
            self.connection.router.check()
            self.connection.counters.add("timeouts")
            return KioskOutcome(OutcomeStatus.NO_RESPONSE, MESSAGE_NO_RESPONSE, request_id,
                                reason_code="NO_RESPONSE" if routed is None else "UNREADABLE_RESPONSE",
                                session_seconds=time.perf_counter() - started)
        return self._answered(routed.record, request_id, routed.received_at - sent_at, started, print_to,
                              routed.centre or centre)

    def _withdraw(self, mark: ClaimMark, sent_at: float, started: float, print_to: Path | None,
                  centre: str | None) -> KioskOutcome:
        """No answer in time: withdraw the request and do what its first claim says (kiosk_sim.withdrawal)."""
        connection = self.connection
        assert connection.withdrawals is not None
        self._screen(MESSAGE_CONFIRMING)
        confirming = time.perf_counter()
        first = connection.withdrawals.settle(mark, self.terminal.kiosk_id, connection.withdrawal(mark.request_id))
        settled = time.perf_counter()
        if first.withdrawn:
            connection.counters.add("withdrawn")
            return KioskOutcome(OutcomeStatus.WITHDRAWN, MESSAGE_NO_RESPONSE, mark.request_id,
                                reason_code="WITHDRAWN", session_seconds=settled - started, centre=centre,
                                unresolved_seconds=settled - confirming)
        connection.counters.add("claimed_answers")
        outcome = self._answered(connection.responses.decode(first.response), mark.request_id, settled - sent_at,
                                 started, print_to, first.centre)
        return dataclasses.replace(outcome, unresolved_seconds=settled - confirming)

    def _send_and_wait(self, request: dict[str, Any]) -> tuple[RoutedResponse | None, str | None]:
        """Send the request and wait for its answer: with two centres, to the vendor's preferred one (unless it is
        known lost), then, after fail_after seconds without an answer, the same request to the other one. Returns
        the answer and the centre last sent to."""
        connection = self.connection
        centres = connection.centres
        timeout = connection.response_timeout
        if centres is None:
            return connection.send(request).wait(timeout), None
        started = time.monotonic()
        preferred = preferred_centre(self.terminal.vendor, connection.vendor_centres, self.terminal.centre)
        centre = centres.centre_for(preferred, started)
        pending = connection.send(request, centre)
        routed = pending.wait(min(centres.fail_after, timeout))
        if routed is None and not connection.delivery_failure_pending(request["request_id"]):
            centres.no_answer(centre, time.monotonic())
            centre = other_centre(centre)
            connection.resend(request, pending, centre)
            routed = pending.wait(max(0.0, timeout - (time.monotonic() - started)))
        if routed is not None and routed.centre is not None:
            centres.answered(routed.centre)
        return routed, centre

    def _request(self, request_id: str, requested_at: dt.datetime, certificate: bytes,
                 choice: CertificateChoice) -> dict[str, Any]:
        """The request as it will be sent, but for challenge_signature (the card signs the rest)."""
        return {
            "request_id": request_id,
            "kiosk_id": self.terminal.kiosk_id,
            "kiosk_vendor": self.terminal.vendor,
            "centre": self.terminal.centre,
            "kiosk_municipality_code": self.terminal.municipality_code,
            "municipality_code": choice.municipality_code,
            "certificate_type": choice.certificate_type,
            "household_scope": choice.household_scope,
            "include_head_and_relationship": choice.include_head_and_relationship,
            "include_domicile": choice.include_domicile,
            "fiscal_year": choice.fiscal_year,
            "copies": choice.copies,
            "auth_certificate": certificate,
            "requested_at": requested_at,
            "paid_yen": choice.price(self._price_per_copy),
        }

    def _answered(self, record: dict[str, Any], request_id: str, latency: float, started: float,
                  print_to: Path | None, centre: str | None = None) -> KioskOutcome:
        common = {"request_id": request_id, "latency": latency, "reason_code": record.get("reason_code"),
                  "centre": centre}
        if record["status"] != "ISSUED":
            return KioskOutcome(OutcomeStatus.REFUSED, record.get("message") or "証明書を発行できませんでした。",
                                session_seconds=time.perf_counter() - started, **common)
        pdf: bytes = record.get("pdf") or b""
        if print_to is not None:
            write_private_file(print_to, pdf)  # the certificate is personal data: 0600 in a 0700 folder
        return KioskOutcome(OutcomeStatus.ISSUED, record.get("message") or MESSAGE_ISSUED,
                            session_seconds=time.perf_counter() - started, printed_to=print_to,
                            pages=int(record.get("pages") or 0), fee_yen=int(record.get("fee_yen") or 0),
                            certificate_ids=tuple(record.get("certificate_ids") or ()), pdf_bytes=len(pdf),
                            **common)

    @staticmethod
    def _local(status: OutcomeStatus, message: str, started: float) -> KioskOutcome:
        return KioskOutcome(status, message, session_seconds=time.perf_counter() - started)
