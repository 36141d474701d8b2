"""An online application made with a real virtual My Number card: a card of the platform's test PKI for a ledger
person's certificate serial (kiosk_sim.card.JpkiCard), read and made to sign the BCL-APPLY-v1 bytes through the
card client over the in-process transport (the APDUs of the kiosk, without pcscd: tests/streams/
test_disaster_applications.py goes through pcscd and `bcl disaster apply`), then verified and stored by the
platform's intake (chain, revocation, signature, match)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization

from certgen.user_certificates import CertificateKind
from kiosk_sim.card import CardKey, JpkiCard
from kiosk_sim.card_client import JpkiCardClient
from kiosk_sim.transport import InProcessTransport
from sinks.disaster_applications import Application
from streams.application_intake import new_draft
from streams.platform import Platform

PIN = "1234"


def uncarded(platform: Platform, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The first ledger person with a certificate serial that no card of the test PKI was issued for yet."""
    return dict(next(r for r in rows if r["jpki_serials"] and
                     platform.pki.index.get(r["jpki_serials"].split(",")[0]) is None))


def apply_with_card(platform: Platform, disaster_id: str, person: Mapping[str, Any], procedure: str,
                    mail: str = "applicant@example.jp") -> Application:
    """`person` (a ledger row) applies for `procedure` with a new card of their first serial."""
    now = dt.datetime.now(dt.UTC)
    platform.pki.initialise(now)
    issued = platform.pki.issue_card(person["jpki_serials"].split(",")[0], CertificateKind.CARD, now)
    der = issued.certificate.public_bytes(serialization.Encoding.DER)
    card = JpkiCard(auth=CardKey(issued.key, der), auth_pin=PIN)
    draft = new_draft(disaster_id, procedure, mail, now)
    with InProcessTransport(card) as transport:
        client = JpkiCardClient(transport)
        certificate = client.read_auth_certificate()
        client.verify_auth_pin(PIN)
        signature = client.sign_challenge(draft.to_sign(certificate))
    return platform.application_intake().submit(draft, certificate, signature)
