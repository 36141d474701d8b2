"""The certificate rules of register changes (domain/card_lifecycle.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from domain.card_lifecycle import CertificateEntry, card_actions, entries

CARD = CertificateEntry("00000000000000a1", "CARD", date(2022, 4, 1), date(2027, 3, 31))
PHONE = CertificateEntry("00000000000000b2", "SMARTPHONE", date(2023, 6, 1), date(2027, 3, 31))
NEW_CARD = CertificateEntry("00000000000000c3", "CARD", date(2027, 2, 10), date(2032, 2, 9))


def record(*certs: CertificateEntry, status: str = "CURRENT", deletion_reason: str | None = None) -> dict[str, Any]:
    return {"status": status, "deletion_reason": deletion_reason,
            "jpki_certificates": [{"serial": c.serial, "kind": c.kind, "not_before": c.not_before,
                                   "not_after": c.not_after} for c in certs]}


def revoked(actions) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {c.serial: reason for c, reason in actions.revoke}


def test_renewal_supersedes_the_old_card_and_issues_the_new_one() -> None:
    actions = card_actions("CARD_RENEWED", (CARD, PHONE), record(NEW_CARD, PHONE))
    assert actions.issue == (NEW_CARD,)
    assert revoked(actions) == {CARD.serial: "RENEWAL"}


def test_first_card_and_smartphone_certificate_are_issued() -> None:
    assert card_actions("CARD_ISSUED", (), record(CARD)).issue == (CARD,)
    actions = card_actions("CARD_ISSUED", (CARD,), record(CARD, PHONE))
    assert actions.issue == (PHONE,) and not actions.revoke


def test_card_revoked_is_treated_as_lost() -> None:
    actions = card_actions("CARD_REVOKED", (CARD, PHONE), record())
    assert revoked(actions) == {CARD.serial: "LOST_CARD", PHONE.serial: "LOST_CARD"} and not actions.issue


@pytest.mark.parametrize(("deletion_reason", "reason"), [
    ("DEATH", "DEATH"), ("EMIGRATION", "MOVED_ABROAD"), ("OTHER", "CARD_RETURNED"), (None, "CARD_RETURNED")])
def test_deletions_other_than_a_move_end_every_certificate(deletion_reason: str | None, reason: str) -> None:
    # The after-image may still list the serials (emigration) or not (death): all of them end.
    for after in (record(CARD, PHONE, status="DELETED", deletion_reason=deletion_reason),
                  record(status="DELETED", deletion_reason=deletion_reason)):
        actions = card_actions("MOVE_OUT" if deletion_reason != "DEATH" else "DEATH", (CARD, PHONE), after)
        assert revoked(actions) == {CARD.serial: reason, PHONE.serial: reason}
        assert not actions.issue


def test_moves_within_japan_keep_the_certificates() -> None:
    assert not card_actions("MOVE_OUT", (CARD, PHONE), record(CARD, PHONE, status="DELETED",
                                                               deletion_reason="MOVE_OUT"))
    assert not card_actions("MOVE_WITHIN", (CARD,), record(CARD))
    assert not card_actions("TAX_ASSESSED", (CARD,), record(CARD))


def test_a_removed_record_ends_its_certificates_as_returned() -> None:
    assert revoked(card_actions("RECORD_REMOVED", (CARD,), None)) == {CARD.serial: "CARD_RETURNED"}
    assert not card_actions("RECORD_REMOVED", (), None)


def test_full_load_and_move_in_issue_what_the_record_lists() -> None:
    assert card_actions("FULL_LOAD", (), record(CARD, PHONE)).issue == (CARD, PHONE)
    assert card_actions("MOVE_IN", (), record(CARD)).issue == (CARD,)
    assert entries(None) == ()
