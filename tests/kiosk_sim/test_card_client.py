"""The kiosk's card client over the in-process transport, and the byte formats it shares with the card."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st

from kiosk_sim.apdu import CommandApdu, MalformedApdu
from kiosk_sim.card import CardKey, JpkiCard, PinId
from kiosk_sim.card_client import JpkiCardClient, der_total_length
from kiosk_sim.card_info import (
    CardHolder,
    basic_four_length,
    decode_basic_four,
    decode_individual_number,
    encode_basic_four,
    encode_individual_number,
)
from kiosk_sim.digest_info import build_digest_info, digest_info_sha256, parse_digest_info
from kiosk_sim.errors import (
    CardDataError,
    CardError,
    InvalidPinFormat,
    PinLocked,
    PinNotVerifiedError,
    WrongPin,
)
from kiosk_sim.transport import InProcessTransport
from tests.kiosk_sim.conftest import AUTH_PIN, CARD_INFO_PIN


@pytest.fixture
def card(make_card: Callable[..., JpkiCard]) -> JpkiCard:
    return make_card()


@pytest.fixture
def client(card: JpkiCard) -> JpkiCardClient:
    return JpkiCardClient(InProcessTransport(card))


def test_read_certificate_and_token_info(client: JpkiCardClient, auth_key: CardKey) -> None:
    assert client.read_token_info() == "JPKIAPICCTOKEN2"
    assert client.read_auth_certificate() == auth_key.certificate_der
    assert client.read_auth_ca_certificate() == auth_key.certificate_der  # the fixture card's CA is self-signed
    assert client.auth_pin_tries_left() == 3


def test_authenticate_signs_the_challenge(client: JpkiCardClient, auth_key: CardKey) -> None:
    challenge = b"request=R-1|kiosk=K-7|at=2026-11-21T01:00:00Z"
    result = client.authenticate(AUTH_PIN, challenge)
    assert result.certificate_der == auth_key.certificate_der
    auth_key.private_key.public_key().verify(result.signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    assert client.auth_pin_tries_left() == 3


def test_wrong_pin_three_times_locks_the_card(client: JpkiCardClient, card: JpkiCard) -> None:
    with pytest.raises(WrongPin) as first:
        client.verify_auth_pin("0000")
    assert first.value.tries_left == 2
    assert "2 tries left" in str(first.value)
    with pytest.raises(WrongPin) as second:
        client.verify_auth_pin("1111")
    assert second.value.tries_left == 1 and "1 try left" in str(second.value)
    with pytest.raises(PinLocked) as locked:
        client.verify_auth_pin("2222")
    assert "locked" in str(locked.value) and "municipal office" in str(locked.value)
    with pytest.raises(PinLocked):
        client.verify_auth_pin(AUTH_PIN)
    with pytest.raises(PinLocked):
        client.auth_pin_tries_left()
    with pytest.raises(PinNotVerifiedError):
        client.sign_challenge(b"x")
    assert card.tries_left(PinId.AUTH) == 0


def test_a_malformed_pin_is_not_sent_and_costs_no_try(client: JpkiCardClient, card: JpkiCard) -> None:
    for bad in ("12a4", "123", "12345", ""):
        with pytest.raises(InvalidPinFormat):
            client.verify_auth_pin(bad)
    assert card.tries_left(PinId.AUTH) == 3


def test_signing_needs_a_verified_pin(client: JpkiCardClient) -> None:
    client.select_jpki()
    with pytest.raises(PinNotVerifiedError):
        client.sign_challenge(b"challenge")
    client.verify_auth_pin(AUTH_PIN)
    with pytest.raises(CardError) as refused:  # a DigestInfo the card does not know
        client.sign_digest_info(b"\x30\x00")
    assert refused.value.sw == 0x6A80


def test_read_card_holder(client: JpkiCardClient, holder: CardHolder) -> None:
    assert client.card_info_pin_tries_left() == 3
    with pytest.raises(WrongPin):
        client.read_card_holder("0000")
    assert client.card_info_pin_tries_left() == 2
    assert client.read_card_holder(CARD_INFO_PIN) == holder
    assert "花子" not in repr(holder)  # personal data stays out of logs


def test_reset_through_the_transport_drops_the_verification(card: JpkiCard) -> None:
    transport = InProcessTransport(card)
    client = JpkiCardClient(transport)
    client.verify_auth_pin(AUTH_PIN)
    transport.reset()
    client.select_jpki()
    with pytest.raises(PinNotVerifiedError):
        client.sign_challenge(b"x")
    transport.close()
    assert not card.powered


def test_a_file_that_is_no_certificate_is_reported(make_card: Callable[..., JpkiCard], auth_key: CardKey) -> None:
    card = make_card(auth=CardKey(auth_key.private_key, b"\x04\x03abc"))
    with pytest.raises(CardDataError):
        JpkiCardClient(InProcessTransport(card)).read_auth_certificate()


# -- byte formats ----------------------------------------------------------------------------------


def test_der_total_length_forms() -> None:
    assert der_total_length(bytes.fromhex("30820403")) == 0x0403 + 4
    assert der_total_length(bytes.fromhex("308190")) == 0x90 + 3
    assert der_total_length(bytes.fromhex("3005")) == 7
    for bad in ("", "04820403", "3083010000", "3082"):
        with pytest.raises(CardDataError):
            der_total_length(bytes.fromhex(bad))


@given(
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=255),
    le=st.none() | st.integers(1, 256),
)
def test_command_apdu_round_trip(cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> None:
    command = CommandApdu(cla, ins, p1, p2, data, le)
    assert CommandApdu.parse(command.to_bytes()) == command


def test_command_apdu_refuses_what_a_short_apdu_cannot_carry() -> None:
    with pytest.raises(ValueError):
        CommandApdu(0, 0xB0, 0, 0, le=257).to_bytes()
    with pytest.raises(ValueError):
        CommandApdu(0, 0xD6, 0, 0, b"x" * 256).to_bytes()
    with pytest.raises(MalformedApdu):
        CommandApdu.parse(bytes.fromhex("00B000000002AABBCC"))


def test_digest_info() -> None:
    digest = hashlib.sha256(b"abc").digest()
    encoded = digest_info_sha256(b"abc")
    assert encoded == bytes.fromhex("3031300d060960864801650304020105000420") + digest
    algorithm, parsed = parse_digest_info(encoded)
    assert isinstance(algorithm, hashes.SHA256) and parsed == digest
    with pytest.raises(ValueError):
        build_digest_info("sha256", digest[:-1])
    with pytest.raises(ValueError):
        build_digest_info("md5", hashlib.md5(b"abc").digest())
    with pytest.raises(ValueError):
        parse_digest_info(encoded + b"\x00")


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=400)


@given(
    number=st.from_regex(r"[0-9]{12}", fullmatch=True),
    family=_text,
    given_name=_text,
    address=_text,
    birth=st.from_regex(r"[0-9]{8}", fullmatch=True),
    sex=st.sampled_from(["1", "2", "9"]),
)
def test_card_info_records_round_trip(
    number: str, family: str, given_name: str, address: str, birth: str, sex: str
) -> None:
    holder = CardHolder(number, f"{family}\u3000{given_name}", address, birth, sex)
    number_record = encode_individual_number(number)
    assert len(number_record) == 17 and number_record.startswith(b"\xff\x10\x0c")
    assert decode_individual_number(number_record) == number
    record = encode_basic_four(holder)
    assert basic_four_length(record[:5]) == len(record)
    assert decode_basic_four(record, number) == holder


def test_card_holder_validates_its_fields() -> None:
    with pytest.raises(ValueError):
        CardHolder("12345678901", "山田\u3000花子", "東京都", "19800401", "2")
    with pytest.raises(ValueError):
        CardHolder("123456789018", "山田\u3000花子", "東京都", "1980-04-01", "2")
    with pytest.raises(ValueError):
        CardHolder("123456789018", "山田\u3000花子", "東京都", "19800401", "0")
