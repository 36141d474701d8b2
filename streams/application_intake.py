"""The application server's intake of online applications (docs/domain.md §6.3): verify what the card signed,
then store it (sinks.disaster_applications), which matches it against the ledger.

The checks are the certificate worker's (certgen.card_trust: chain to the JPKI-TEST authentication root, validity,
purpose, revocation by CRL or OCSP) and domain.request_authentication's (fresh, the signature over exactly these
BCL-APPLY-v1 bytes by the certificate's key). A refused application is not stored: ApplicationRefusedError with
the reason. Used by `bcl disaster apply` and by the resident's page (streams.application_web)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from certgen.card_trust import CardTrust
from domain.disaster_applications import (
    SIGNATURE_WINDOW,
    ApplicationDraft,
    ApplicationRefusedError,
    mail_address,
    procedure,
)
from domain.disasters import to_millisecond
from domain.kiosk_rules import Refusal
from domain.request_authentication import authenticate_request
from kiosk_sim.card_client import JpkiCardClient
from kiosk_sim.transport import BaseCardTransport
from sinks.disaster_applications import Application, DisasterApplications, SignedApplication


def new_draft(disaster_id: str, procedure_name: str, mail: str, now: dt.datetime) -> ApplicationDraft:
    """A fresh application to sign: a new id, now; the procedure and mail address read (ApplicationError)."""
    return ApplicationDraft(str(uuid.uuid4()), disaster_id, procedure(procedure_name), mail_address(mail),
                            to_millisecond(now.astimezone(dt.UTC)))


def card_signature(transport: BaseCardTransport, draft: ApplicationDraft, pin: str) -> tuple[bytes, bytes]:
    """What the resident's card gives for an application: its authentication certificate and its signature over
    the draft's BCL-APPLY-v1 bytes. A wrong PIN (WrongPin, with the tries left) or a locked card ends here."""
    client = JpkiCardClient(transport)
    certificate = client.read_auth_certificate()
    client.verify_auth_pin(pin)
    return certificate, client.sign_challenge(draft.to_sign(certificate))


class ApplicationIntake:
    def __init__(self, applications: DisasterApplications, trust: CardTrust,
                 clock: Callable[[], dt.datetime]) -> None:
        self.applications = applications
        self._trust = trust
        self._clock = clock

    def now(self) -> dt.datetime:
        return self._clock()

    def submit(self, draft: ApplicationDraft, certificate_der: bytes, signature: bytes) -> Application:
        """Verify the card's signature over the draft and store the application; acknowledged (durable, matched,
        the staff mailed through the outbox) when this returns."""
        now = self._clock()
        self.applications.store.disaster(draft.disaster_id)  # UnknownDisasterError before any card check
        card = authenticate_request(challenge=draft.to_sign(certificate_der), requested_at=draft.applied_at,
                                    certificate_der=certificate_der, signature=signature,
                                    verify_certificate=self._trust.verify_certificate, now=now,
                                    window=SIGNATURE_WINDOW)
        if isinstance(card, Refusal):
            raise ApplicationRefusedError(f"refused: {card.code.value}: {card.detail or card.message}")
        revoked = self._trust.revocation_refusal(card.certificate, now)
        if revoked is not None:
            raise ApplicationRefusedError(f"refused: {revoked.code.value}: {revoked.detail or revoked.message}")
        return self.applications.submit(SignedApplication(
            draft.application_id, draft.disaster_id, draft.procedure, draft.mail_address, draft.applied_at,
            card.serial, certificate_der, signature), now)
