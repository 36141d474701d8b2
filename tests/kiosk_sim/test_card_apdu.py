"""The virtual card's APDU handler, driven with raw command APDUs: every status word path."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk_sim.card import (
    ATR,
    CARD_INFO_AID,
    JPKI_AID,
    CardKey,
    JpkiCard,
    PinId,
)
from kiosk_sim.card_info import CardHolder, decode_basic_four, decode_individual_number
from kiosk_sim.digest_info import build_digest_info, digest_info_sha256
from kiosk_sim.errors import CardConfigError, CardNotPoweredError
from tests.kiosk_sim.conftest import AUTH_PIN, CARD_INFO_PIN, SIGNING_PASSWORD

SELECT_JPKI = "00A4040C0A" + JPKI_AID.hex()
SELECT_CARD_INFO = "00A4040C0A" + CARD_INFO_AID.hex()


def select_ef(fid: int) -> str:
    return f"00A4020C02{fid:04X}"


def verify(pin: str = "") -> str:
    return "00200080" + (f"{len(pin):02X}" + pin.encode().hex() if pin else "")


def read(offset: int, le: int) -> str:
    return f"00B0{offset:04X}{le & 0xFF:02X}"


def sign(digest_info: bytes) -> str:
    return f"802A0080{len(digest_info):02X}{digest_info.hex()}00"


def send(card: JpkiCard, *apdus: str) -> tuple[bytes, int]:
    """Send the APDUs in order; (data, SW) of the last one, after checking the others answered 9000."""
    response = b""
    for i, apdu in enumerate(apdus):
        response = card.process(bytes.fromhex(apdu))
        if i < len(apdus) - 1:
            assert response[-2:] == b"\x90\x00", f"{apdu} answered {response[-2:].hex()}"
    return response[:-2], int.from_bytes(response[-2:], "big")


@pytest.fixture
def card(make_card: Callable[..., JpkiCard]) -> JpkiCard:
    card = make_card()
    assert card.power_on() == ATR
    return card


# -- power and framing -----------------------------------------------------------------------------


def test_an_unpowered_card_takes_no_apdu(make_card: Callable[..., JpkiCard]) -> None:
    card = make_card()
    with pytest.raises(CardNotPoweredError):
        card.process(bytes.fromhex(SELECT_JPKI))
    assert card.power_on() == bytes.fromhex("3BE000FF8131FE4514")
    card.power_off()
    with pytest.raises(CardNotPoweredError):
        card.process(bytes.fromhex(SELECT_JPKI))


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("00A404", 0x6700),  # shorter than a header
        ("00A4040C00", 0x6700),  # select with Le (case 2) instead of an AID
        ("00A4040C000001AA", 0x6700),  # extended length
        ("00A4040C05D392F000", 0x6700),  # Lc larger than the data
        ("00CA000000", 0x6D00),  # GET DATA: not offered
        ("80A4040C0A" + JPKI_AID.hex(), 0x6E00),  # SELECT needs CLA 00
        ("002A0080" + "03" + "AABBCC", 0x6E00),  # SIGN needs CLA 80
    ],
)
def test_malformed_and_unknown_commands(card: JpkiCard, apdu: str, sw: int) -> None:
    assert send(card, apdu) == (b"", sw)


# -- SELECT ----------------------------------------------------------------------------------------


def test_select_application_and_files(card: JpkiCard) -> None:
    assert send(card, SELECT_JPKI) == (b"", 0x9000)
    assert send(card, select_ef(0x000A)) == (b"", 0x9000)
    assert send(card, "00A4040C0AD392F000260100000002") == (b"", 0x6A82)  # unknown AID
    assert send(card, SELECT_JPKI, select_ef(0x1234)) == (b"", 0x6A82)  # unknown FID
    assert send(card, "00A4020C03000A00") == (b"", 0x6700)  # a FID has 2 bytes
    assert send(card, "00A4040C" + "00") == (b"", 0x6700)  # Le only, no AID
    assert send(card, "00A40400" + "0A" + JPKI_AID.hex()) == (b"", 0x6A86)  # P2 00 would ask for the FCI
    assert send(card, "00A4010C02000A") == (b"", 0x6A86)  # P1 01: not a selection this card offers


def test_selecting_a_file_needs_an_application(card: JpkiCard) -> None:
    assert send(card, select_ef(0x000A)) == (b"", 0x6A82)


def test_card_info_application_is_absent_without_holder_data(make_card: Callable[..., JpkiCard]) -> None:
    card = make_card(holder=None, card_info_pin=None)
    card.power_on()
    assert send(card, SELECT_CARD_INFO) == (b"", 0x6A82)


def test_signing_files_are_absent_without_a_signing_key(make_card: Callable[..., JpkiCard]) -> None:
    card = make_card(signing=None, signing_password=None)
    card.power_on()
    for fid in (0x0001, 0x001A, 0x001B):
        assert send(card, SELECT_JPKI, select_ef(fid)) == (b"", 0x6A82)


# -- READ BINARY -----------------------------------------------------------------------------------


def test_token_info(card: JpkiCard, make_card: Callable[..., JpkiCard]) -> None:
    assert send(card, SELECT_JPKI, select_ef(0x0006), read(0, 32)) == (b"JPKIAPICCTOKEN2".ljust(32), 0x9000)
    phone = make_card(token_info="JPKIAPGPSETOKEN")
    phone.power_on()
    data, sw = send(phone, SELECT_JPKI, select_ef(0x0006), read(0, 0))
    assert (data, sw) == (b"JPKIAPGPSETOKEN".ljust(32), 0x9000)


def test_read_the_authentication_certificate_by_its_der_header(card: JpkiCard, auth_key: CardKey) -> None:
    head, sw = send(card, SELECT_JPKI, select_ef(0x000A), read(0, 4))
    assert sw == 0x9000 and head[:2] == b"\x30\x82"
    total = int.from_bytes(head[2:4], "big") + 4
    content = b""
    while len(content) < total:
        chunk, sw = send(card, read(len(content), min(256, total - len(content))))
        assert sw == 0x9000
        content += chunk
    assert content == auth_key.certificate_der
    assert send(card, read(total, 1)) == (b"", 0x6B00)


@settings(max_examples=300, deadline=None)
@given(offset=st.integers(0, 0x7FFF), le=st.integers(1, 256))
def test_read_binary_at_any_15_bit_offset(auth_key: CardKey, offset: int, le: int) -> None:
    card = JpkiCard(auth=auth_key, auth_pin=AUTH_PIN)
    card.power_on()
    content = auth_key.certificate_der
    data, sw = send(card, SELECT_JPKI, select_ef(0x000A), read(offset, le))
    if offset < len(content):
        assert (data, sw) == (content[offset : offset + le], 0x9000)
    else:
        assert (data, sw) == (b"", 0x6B00)


def test_read_binary_status_words(card: JpkiCard) -> None:
    assert send(card, SELECT_JPKI, read(0, 4)) == (b"", 0x6986)  # no current EF
    assert send(card, select_ef(0x000A), "00B08100" + "10") == (b"", 0x6A86)  # short EF id addressing
    assert send(card, "00B00000") == (b"", 0x6700)  # no Le
    assert send(card, "00B0000001AA10") == (b"", 0x6700)  # a data field
    assert send(card, select_ef(0x0018), read(0, 4)) == (b"", 0x6981)  # a PIN is not readable
    assert send(card, select_ef(0x0017), read(0, 4)) == (b"", 0x6981)  # nor is a private key


def test_the_signing_certificate_needs_the_signing_password(card: JpkiCard, signing_key: CardKey) -> None:
    assert send(card, SELECT_JPKI, select_ef(0x0001), read(0, 4)) == (b"", 0x6982)
    assert send(card, select_ef(0x001B), verify(SIGNING_PASSWORD)) == (b"", 0x9000)
    assert send(card, select_ef(0x0001), read(0, 8)) == (signing_key.certificate_der[:8], 0x9000)


def test_ca_certificates_are_free(card: JpkiCard, auth_key: CardKey) -> None:
    assert send(card, SELECT_JPKI, select_ef(0x000B), read(0, 16)) == (auth_key.certificate_der[:16], 0x9000)


# -- VERIFY and the try counter --------------------------------------------------------------------


def test_wrong_pin_three_times_locks_and_a_correct_pin_then_fails(card: JpkiCard) -> None:
    assert send(card, SELECT_JPKI, select_ef(0x0018), verify()) == (b"", 0x63C3)
    assert send(card, verify("0000")) == (b"", 0x63C2)
    assert send(card, verify("0000")) == (b"", 0x63C1)
    assert send(card, verify()) == (b"", 0x63C1)  # the query uses no try
    assert send(card, verify("9999")) == (b"", 0x6984)  # the blocking failure
    assert card.tries_left(PinId.AUTH) == 0
    assert send(card, verify(AUTH_PIN)) == (b"", 0x6984)
    assert send(card, verify()) == (b"", 0x6984)
    assert send(card, select_ef(0x0017), sign(digest_info_sha256(b"x"))) == (b"", 0x6982)


def test_a_locked_pin_stays_locked_across_power_cycles(card: JpkiCard) -> None:
    for _ in range(3):
        send(card, SELECT_JPKI, select_ef(0x0018), verify("0000"))
    card.power_off()
    card.power_on()
    assert send(card, SELECT_JPKI, select_ef(0x0018), verify(AUTH_PIN)) == (b"", 0x6984)
    card.reset()
    assert send(card, SELECT_JPKI, select_ef(0x0018), verify()) == (b"", 0x6984)


def test_a_correct_pin_resets_the_counter(card: JpkiCard) -> None:
    assert send(card, SELECT_JPKI, select_ef(0x0018), verify("0000")) == (b"", 0x63C2)
    assert send(card, verify("1111")) == (b"", 0x63C1)
    assert send(card, verify(AUTH_PIN)) == (b"", 0x9000)
    assert card.tries_left(PinId.AUTH) == 3
    assert send(card, verify()) == (b"", 0x9000)  # verified in this session
    card.reset()
    assert send(card, SELECT_JPKI, select_ef(0x0018), verify()) == (b"", 0x63C3)
    # Failures counted in an earlier session still count.
    send(card, verify("0000"))
    card.power_off()
    card.power_on()
    assert send(card, SELECT_JPKI, select_ef(0x0018), verify()) == (b"", 0x63C2)


def test_the_signing_password_has_five_tries(card: JpkiCard) -> None:
    assert send(card, SELECT_JPKI, select_ef(0x001B), verify()) == (b"", 0x63C5)
    for left in (4, 3, 2, 1):
        assert send(card, verify("WRONG1")) == (b"", 0x63C0 | left)
    assert send(card, verify("WRONG1")) == (b"", 0x6984)
    assert card.tries_left(PinId.SIGNING) == 0
    assert card.tries_left(PinId.AUTH) == 3  # the PINs are independent


def test_verify_status_words(card: JpkiCard) -> None:
    assert send(card, SELECT_JPKI, verify(AUTH_PIN)) == (b"", 0x6986)  # no PIN EF selected
    assert send(card, select_ef(0x000A), verify(AUTH_PIN)) == (b"", 0x6986)  # a certificate is no PIN
    assert send(card, select_ef(0x0018), "00200081" + "04" + AUTH_PIN.encode().hex()) == (b"", 0x6A86)
    assert send(card, "00200080" + "04" + AUTH_PIN.encode().hex() + "00") == (b"", 0x6700)
    assert card.tries_left(PinId.AUTH) == 3


# -- CHANGE REFERENCE DATA -------------------------------------------------------------------------


def test_change_pin(card: JpkiCard) -> None:
    change = "00240180" + "04" + b"4321".hex()
    assert send(card, SELECT_JPKI, select_ef(0x0018), change) == (b"", 0x6982)  # not verified yet
    assert send(card, verify(AUTH_PIN), "00240180" + "03" + b"432".hex()) == (b"", 0x6A80)  # not 4 digits
    assert send(card, "00240080" + "04" + b"4321".hex()) == (b"", 0x6A86)
    assert send(card, change) == (b"", 0x9000)
    card.reset()
    assert send(card, SELECT_JPKI, select_ef(0x0018), verify(AUTH_PIN)) == (b"", 0x63C2)
    assert send(card, verify("4321")) == (b"", 0x9000)


# -- SIGN ------------------------------------------------------------------------------------------


def test_sign_after_verify(card: JpkiCard, auth_key: CardKey) -> None:
    challenge = b"request 42, kiosk 7, 2026-11-21T10:00:00+09:00"
    assert send(card, SELECT_JPKI, select_ef(0x0017), sign(digest_info_sha256(challenge))) == (b"", 0x6982)
    digest_info = digest_info_sha256(challenge)
    signature, sw = send(card, select_ef(0x0018), verify(AUTH_PIN), select_ef(0x0017), sign(digest_info))
    assert sw == 0x9000 and len(signature) == 256
    auth_key.private_key.public_key().verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())


def test_sign_any_sha2_digest_info(card: JpkiCard, auth_key: CardKey) -> None:
    import hashlib

    message = b"a SHA-384 host"
    digest_info = build_digest_info("sha384", hashlib.sha384(message).digest())
    signature, sw = send(card, SELECT_JPKI, select_ef(0x0018), verify(AUTH_PIN), select_ef(0x0017), sign(digest_info))
    assert sw == 0x9000
    auth_key.private_key.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA384())


def test_sign_status_words(card: JpkiCard) -> None:
    digest_info = digest_info_sha256(b"x")
    send(card, SELECT_JPKI, select_ef(0x0018), verify(AUTH_PIN))
    assert send(card, sign(digest_info)) == (b"", 0x6986)  # the current EF is the PIN, not a key
    assert send(card, select_ef(0x0017), "802A0081" + f"{len(digest_info):02X}" + digest_info.hex() + "00") == (
        b"",
        0x6A86,
    )
    assert send(card, sign(b"\x01" * 51)) == (b"", 0x6A80)  # not a DigestInfo
    assert send(card, sign(digest_info[:-1])) == (b"", 0x6A80)  # truncated digest
    assert send(card, "802A0080" + f"{len(digest_info):02X}" + digest_info.hex() + "80") == (b"", 0x6700)  # Le 128
    assert send(card, "802A0080") == (b"", 0x6700)  # no data
    # The authentication PIN does not open the signing key.
    assert send(card, select_ef(0x001A), sign(digest_info)) == (b"", 0x6982)


def test_verification_is_lost_on_reset_and_on_reselecting_the_application(card: JpkiCard) -> None:
    digest_info = digest_info_sha256(b"x")
    send(card, SELECT_JPKI, select_ef(0x0018), verify(AUTH_PIN))
    card.reset()
    assert send(card, SELECT_JPKI, select_ef(0x0017), sign(digest_info)) == (b"", 0x6982)
    send(card, select_ef(0x0018), verify(AUTH_PIN))
    assert send(card, SELECT_JPKI, select_ef(0x0017), sign(digest_info)) == (b"", 0x6982)


# -- the card-info application ---------------------------------------------------------------------


def test_card_info_application(card: JpkiCard, holder: CardHolder) -> None:
    # The JPKI PIN opens nothing in the card-info application.
    send(card, SELECT_JPKI, select_ef(0x0018), verify(AUTH_PIN))
    assert send(card, SELECT_CARD_INFO, select_ef(0x0001), read(0, 17)) == (b"", 0x6982)
    assert send(card, select_ef(0x0011), verify()) == (b"", 0x63C3)
    assert send(card, verify(CARD_INFO_PIN)) == (b"", 0x9000)
    number, sw = send(card, select_ef(0x0001), read(0, 17))
    assert sw == 0x9000 and len(number) == 17 and number[:3] == b"\xff\x10\x0c"
    assert decode_individual_number(number) == holder.individual_number
    record, sw = send(card, select_ef(0x0002), read(0, 0))
    assert sw == 0x9000 and record[:2] == b"\xff\x20"
    assert decode_basic_four(record, holder.individual_number) == holder
    assert send(card, select_ef(0x000A)) == (b"", 0x6A82)  # JPKI files are not in this application


def test_card_info_pin_locks_after_three_failures(card: JpkiCard) -> None:
    assert send(card, SELECT_CARD_INFO, select_ef(0x0011), verify("0000")) == (b"", 0x63C2)
    send(card, verify("0000"))
    assert send(card, verify("0000")) == (b"", 0x6984)
    assert card.tries_left(PinId.CARD_INFO) == 0
    assert card.tries_left(PinId.AUTH) == 3


# -- building a card -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"auth_pin": "12345"},
        {"auth_pin": "12a4"},
        {"signing_password": "abc123"},  # lower case
        {"signing_password": "ABCDEF"},  # no digit
        {"signing_password": "A1"},  # too short
        {"signing_password": None},  # a signing key without its password
        {"card_info_pin": None},  # holder data without its PIN
        {"token_info": "X" * 33},
    ],
)
def test_a_card_refuses_bad_contents(make_card: Callable[..., JpkiCard], overrides: dict[str, object]) -> None:
    with pytest.raises(CardConfigError):
        make_card(**overrides)


def test_a_card_key_is_rsa_2048(auth_key: CardKey) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CardConfigError, match="RSA-2048"):
        CardKey(small, auth_key.certificate_der)
