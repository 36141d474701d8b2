"""The shelter intake (docs/domain.md §6.6): checks the card certificates a terminal's batch carries, then hands
the batch to the store (sinks.shelters), which finds the people and takes it in one transaction.

The terminal verified that the card holds the key of its certificate (PIN, signed challenge), but it cannot know
whether the certificate is a real one: a home-made card with a certificate of its own naming someone's serial
would pass. So here, with the certificate worker's check (certgen.card_trust: chain to the JPKI-TEST
authentication root, validity at the event's time, purpose, revocation), a card event whose certificate fails,
or whose serial is not the certificate's, is handed on marked refused with the reason, and the store refuses it
(kept with the reason, answered to the terminal) like any other."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from certgen.card_trust import CardTrust
from domain.certificate_serial import format_serial
from domain.errors import CertificateValidationError
from domain.kiosk_rules import Refusal
from domain.request_authentication import parse_certificate, validation_refusal
from domain.shelter_stays import REFUSED_TOKEN, Receipt, ReceiptStatus, TerminalEvent, TokenKind
from infra.crash_points import crash_point
from sinks.shelters import Shelters

if TYPE_CHECKING:
    from kiosk_sim.shelter_terminal import TerminalQueue


class ShelterIntake:
    def __init__(self, shelters: Shelters, trust: CardTrust, clock: Callable[[], dt.datetime]) -> None:
        self.shelters = shelters
        self._trust = trust
        self._clock = clock

    def receive(self, batch: Sequence[TerminalEvent]) -> list[Receipt]:
        """One receipt per event, in order; durable when this returns (sinks.shelters.Shelters.receive)."""
        now = self._clock()
        return self.shelters.receive([self._checked(item, now) for item in batch], now)

    def _checked(self, item: TerminalEvent, now: dt.datetime) -> TerminalEvent:
        if item.token_kind is not TokenKind.CARD:
            return item
        reason = self._card_refusal(item.token, item.event.occurred_at, now)
        return item if reason is None else replace(item, token={REFUSED_TOKEN: reason})

    def _card_refusal(self, token: Mapping[str, str], at: dt.datetime, now: dt.datetime) -> str | None:
        try:
            der = base64.b64decode(token.get("certificate", ""), validate=True)
        except (ValueError, binascii.Error):
            return "the card event carries no readable certificate"
        certificate = parse_certificate(der)
        if isinstance(certificate, Refusal):
            return f"the card's certificate is malformed: {certificate.detail}"
        if format_serial(certificate.serial_number) != token.get("serial"):
            return "the card event's serial is not its certificate's"
        try:
            self._trust.verify_certificate(certificate, at)
        except CertificateValidationError as exc:
            refused = validation_refusal(exc)
            return f"the card's certificate is not a valid JPKI one ({refused.code.value}: {refused.detail})"
        revoked = self._trust.revocation_refusal(certificate, now)
        if revoked is not None:
            return f"the card's certificate is refused ({revoked.code.value}: {revoked.detail or revoked.message})"
        return None


def sync_terminal(queue: TerminalQueue, intake: ShelterIntake, now: Callable[[], dt.datetime]) -> dict[str, int]:
    """Hand a terminal's queue to the intake, batch by batch; each batch answered once the intake committed it
    (`bcl shelter terminal sync`, and the terminals of `make demo`). How many events of each receipt status, and
    how many had been taken before ("duplicate")."""
    totals = {status.value: 0 for status in ReceiptStatus} | {"duplicate": 0}
    while batch := queue.pending():
        receipts = intake.receive(batch)
        crash_point("shelter_terminal.after_receipt")
        queue.answer(receipts, now())
        for receipt in receipts:
            totals[receipt.status.value] += 1
            totals["duplicate"] += receipt.duplicate
    return totals
