"""The pure rules of online applications: the signed bytes, the automatic match, duplicates, "ready to issue",
and the texts between the page and the card client."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from domain.application_token import draft_text, read_draft, read_signed, signed_text
from domain.disaster_applications import (
    ApplicationDecisionError,
    ApplicationDraft,
    ApplicationError,
    ApplicationStatus,
    LedgerPerson,
    Procedure,
    applicant_key,
    decision_reason,
    mail_address,
    match_application,
    procedure,
    ready_to_issue,
)

AT = dt.datetime(2026, 11, 21, 1, 2, 3, 456000, tzinfo=dt.UTC)
DRAFT = ApplicationDraft("a-1", "d-1", Procedure.RISAI_CERTIFICATE, "hanako@example.jp", AT)
PERSON = LedgerPerson("045811", "R1", True, "H1", "D1", frozenset())


def test_every_signed_field_changes_the_bytes() -> None:
    base = DRAFT.to_sign(b"certificate")
    assert base.startswith(b"BCL-APPLY-v1")
    changed = [dataclasses.replace(DRAFT, application_id="a-2"), dataclasses.replace(DRAFT, disaster_id="d-2"),
               dataclasses.replace(DRAFT, procedure=Procedure.HISAI_CERTIFICATE),
               dataclasses.replace(DRAFT, mail_address="thief@example.jp"),
               dataclasses.replace(DRAFT, applied_at=AT + dt.timedelta(milliseconds=1))]
    assert all(d.to_sign(b"certificate") != base for d in changed)
    assert DRAFT.to_sign(b"another certificate") != base


def test_the_match() -> None:
    codes = ["045811"]
    assert match_application(Procedure.RISAI_CERTIFICATE, codes, [PERSON], {"D1"}).matched
    outside = match_application(Procedure.RISAI_CERTIFICATE, codes, [], set())
    assert not outside.matched and "outside the disaster area" in outside.reason
    no_dwelling = match_application(Procedure.RISAI_CERTIFICATE, codes, [PERSON], set())
    assert not no_dwelling.matched and "dwelling" in no_dwelling.reason
    # 被災証明書 and the condolence money do not go by the dwelling's level.
    assert match_application(Procedure.HISAI_CERTIFICATE, codes, [PERSON], set()).matched
    arrived = dataclasses.replace(PERSON, in_base=False, dwelling_id=None)
    assert "arrived after" in match_application(Procedure.CONDOLENCE, codes, [arrived], set()).reason
    assert not match_application(Procedure.RISAI_CERTIFICATE, codes, [PERSON, PERSON], {"D1"}).matched
    no_household = dataclasses.replace(PERSON, household_number=None)
    assert not match_application(Procedure.HISAI_CERTIFICATE, codes, [no_household], {"D1"}).matched


def test_the_applicant_is_the_resident_when_matched_else_the_serial() -> None:
    matched = match_application(Procedure.RISAI_CERTIFICATE, ["045811"], [PERSON], {"D1"})
    assert applicant_key(matched, "s1") == applicant_key(matched, "s2") == "resident:045811:R1"
    assert applicant_key(match_application(Procedure.RISAI_CERTIFICATE, ["045811"], [], set()), "s1") == "serial:s1"


def test_ready_to_issue() -> None:
    assert not ready_to_issue(Procedure.RISAI_CERTIFICATE, ApplicationStatus.ACCEPTED, surveyed=False)
    assert ready_to_issue(Procedure.RISAI_CERTIFICATE, ApplicationStatus.ACCEPTED, surveyed=True)
    assert ready_to_issue(Procedure.HISAI_CERTIFICATE, ApplicationStatus.ACCEPTED, surveyed=False)
    assert not ready_to_issue(Procedure.HISAI_CERTIFICATE, ApplicationStatus.OPEN, surveyed=True)


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ApplicationError, match="unknown procedure"):
        procedure("罹災")
    assert procedure("risai-certificate") is Procedure.RISAI_CERTIFICATE
    for bad in ("no-at-sign", "a@b", "a b@example.jp", "x@example.jp\r\nBcc: y@example.jp", "a" * 250 + "@e.jp"):
        with pytest.raises(ApplicationError):
            mail_address(bad)
    with pytest.raises(ApplicationDecisionError, match="--reason"):
        decision_reason("  ", required=True)
    with pytest.raises(ApplicationDecisionError, match="one line"):
        decision_reason("a\nb", required=True)
    assert decision_reason(None, required=False) is None


def test_the_texts_round_trip_and_refuse_damage() -> None:
    assert read_draft(draft_text(DRAFT)) == DRAFT
    assert read_draft(" " + draft_text(DRAFT)[:30] + "\n" + draft_text(DRAFT)[30:]) == DRAFT  # wrapped by a terminal
    assert read_signed(signed_text(DRAFT, b"cert", b"sig")) == (DRAFT, b"cert", b"sig")
    for bad in ("", "BCL-DRAFT-1.", "BCL-DRAFT-1.!!!", draft_text(DRAFT)[:-8], signed_text(DRAFT, b"c", b"s")):
        with pytest.raises(ApplicationError):
            read_draft(bad)
    with pytest.raises(ApplicationError):
        read_signed(draft_text(DRAFT))
