"""The virtual My Number card: its JPKI and card-info applications as an APDU handler (docs/card_protocol.md).

Pure: no I/O. A transport (the vpcd link, or the in-process transport of load tests) powers the card on
and hands it command APDUs; `process` answers with the response data followed by SW1 SW2.

What a real card keeps and what it forgets:
- PIN values and try counters are persistent: they survive power off and reset, so a locked PIN stays
  locked (only the municipal office resets it).
- The selected application, the current EF and which PINs were verified belong to the session: power
  off, reset and selecting an application clear them.

Behaviour chosen where the public sources are silent:
- READ BINARY from an offset inside the file returns the bytes that remain (fewer than Le) with 9000;
  an offset at or beyond the end answers 6B00.
- VERIFY without data answers 9000 when the PIN is already verified in this session, else 63Cx.
- The failure that blocks a PIN answers 6984, as do all later attempts.
- The card signs a DigestInfo for SHA-1 or SHA-2 (what hosts send); other data answers 6A80.
Not thread-safe: one card serves one reader.
"""

from __future__ import annotations

import enum
import hmac
import re
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from kiosk_sim.apdu import (
    SW_CLA_NOT_SUPPORTED,
    SW_FILE_INCOMPATIBLE,
    SW_FILE_NOT_FOUND,
    SW_INS_NOT_SUPPORTED,
    SW_NO_CURRENT_EF,
    SW_OFFSET_BEYOND_FILE,
    SW_OK,
    SW_PIN_BLOCKED,
    SW_SECURITY_NOT_SATISFIED,
    SW_WRONG_DATA,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    SW_WRONG_PIN_BASE,
    CommandApdu,
    MalformedApdu,
    status_bytes,
)
from kiosk_sim.card_info import CardHolder, encode_basic_four, encode_individual_number
from kiosk_sim.digest_info import parse_digest_info
from kiosk_sim.errors import CardConfigError, CardNotPoweredError

ATR = bytes.fromhex("3BE000FF8131FE4514")  # how OpenSC recognises a JPKI card

JPKI_AID = bytes.fromhex("D392F000260100000001")
CARD_INFO_AID = bytes.fromhex("D3921000310001010408")

# JPKI application files.
EF_AUTH_CERT = 0x000A
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018
EF_AUTH_CA_CERT = 0x000B
EF_SIGN_CERT = 0x0001
EF_SIGN_KEY = 0x001A
EF_SIGN_PIN = 0x001B
EF_SIGN_CA_CERT = 0x0002
EF_TOKEN_INFO = 0x0006
# Card-info application files (the same FIDs mean other files in another application).
EF_CARD_INFO_PIN = 0x0011
EF_INDIVIDUAL_NUMBER = 0x0001
EF_BASIC_FOUR = 0x0002

MY_NUMBER_CARD_TOKEN = "JPKIAPICCTOKEN2"
TOKEN_INFO_SIZE = 32
RSA_KEY_BITS = 2048
SIGNATURE_SIZE = RSA_KEY_BITS // 8  # 256: exactly what a short APDU's Le = 00 asks for

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80
INS_SELECT = 0xA4
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_READ_BINARY = 0xB0
INS_SIGN = 0x2A

_COMMAND_CLASSES = {
    INS_SELECT: CLA_ISO,
    INS_VERIFY: CLA_ISO,
    INS_CHANGE_REFERENCE_DATA: CLA_ISO,
    INS_READ_BINARY: CLA_ISO,
    INS_SIGN: CLA_PROPRIETARY,
}


class PinId(enum.Enum):
    AUTH = "authentication PIN"
    SIGNING = "signing password"
    CARD_INFO = "card-info PIN"


@dataclass(frozen=True, slots=True)
class PinRule:
    max_tries: int
    pattern: str  # full-match regular expression for a valid value

    def accepts(self, value: str) -> bool:
        return re.fullmatch(self.pattern, value) is not None


PIN_RULES: dict[PinId, PinRule] = {
    PinId.AUTH: PinRule(3, r"[0-9]{4}"),
    # 6-16 of A-Z and 0-9 with at least one letter and one digit.
    PinId.SIGNING: PinRule(5, r"(?=.*[A-Z])(?=.*[0-9])[A-Z0-9]{6,16}"),
    PinId.CARD_INFO: PinRule(3, r"[0-9]{4}"),
}


@dataclass(frozen=True, slots=True)
class CardKey:
    """A private key on the card and the DER certificate of its public key."""

    private_key: rsa.RSAPrivateKey
    certificate_der: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, rsa.RSAPrivateKey) or self.private_key.key_size != RSA_KEY_BITS:
            raise CardConfigError(f"a My Number card key is RSA-{RSA_KEY_BITS}")

    def __repr__(self) -> str:
        return f"CardKey(<RSA-{self.private_key.key_size}>, certificate {len(self.certificate_der)} bytes)"


@dataclass(slots=True)
class _Pin:
    """Persistent: survives power cycles."""

    rule: PinRule
    value: bytes
    tries_left: int

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0


@dataclass(frozen=True, slots=True)
class _DataFile:
    content: bytes
    read_pin: PinId | None = None


@dataclass(frozen=True, slots=True)
class _PinFile:
    pin: PinId


@dataclass(frozen=True, slots=True)
class _KeyFile:
    key: rsa.RSAPrivateKey
    pin: PinId


_File = _DataFile | _PinFile | _KeyFile


@dataclass(slots=True)
class _Session:
    """Forgotten at power off, reset and application selection."""

    application: bytes | None = None
    current: _File | None = None
    verified: set[PinId] = field(default_factory=set)


def _sw(sw: int, data: bytes = b"") -> bytes:
    return data + status_bytes(sw)


class JpkiCard:
    """A My Number card with its JPKI application and, if a holder is given, its card-info application."""

    def __init__(
        self,
        *,
        auth: CardKey,
        auth_pin: str,
        auth_ca_certificate_der: bytes | None = None,
        signing: CardKey | None = None,
        signing_password: str | None = None,
        signing_ca_certificate_der: bytes | None = None,
        token_info: str = MY_NUMBER_CARD_TOKEN,
        holder: CardHolder | None = None,
        card_info_pin: str | None = None,
    ) -> None:
        self._pins: dict[PinId, _Pin] = {PinId.AUTH: self._new_pin(PinId.AUTH, auth_pin)}
        jpki: dict[int, _File] = {
            EF_AUTH_CERT: _DataFile(auth.certificate_der),
            EF_AUTH_KEY: _KeyFile(auth.private_key, PinId.AUTH),
            EF_AUTH_PIN: _PinFile(PinId.AUTH),
            EF_TOKEN_INFO: _DataFile(self._token_info(token_info)),
        }
        if auth_ca_certificate_der is not None:
            jpki[EF_AUTH_CA_CERT] = _DataFile(auth_ca_certificate_der)
        if (signing is None) != (signing_password is None):
            raise CardConfigError("the signing key and the signing password come together")
        if signing is not None and signing_password is not None:
            self._pins[PinId.SIGNING] = self._new_pin(PinId.SIGNING, signing_password)
            jpki[EF_SIGN_CERT] = _DataFile(signing.certificate_der, read_pin=PinId.SIGNING)
            jpki[EF_SIGN_KEY] = _KeyFile(signing.private_key, PinId.SIGNING)
            jpki[EF_SIGN_PIN] = _PinFile(PinId.SIGNING)
        if signing_ca_certificate_der is not None:
            jpki[EF_SIGN_CA_CERT] = _DataFile(signing_ca_certificate_der)
        self._applications: dict[bytes, dict[int, _File]] = {JPKI_AID: jpki}
        if (holder is None) != (card_info_pin is None):
            raise CardConfigError("the card holder's data and the card-info PIN come together")
        if holder is not None and card_info_pin is not None:
            self._pins[PinId.CARD_INFO] = self._new_pin(PinId.CARD_INFO, card_info_pin)
            self._applications[CARD_INFO_AID] = {
                EF_CARD_INFO_PIN: _PinFile(PinId.CARD_INFO),
                EF_INDIVIDUAL_NUMBER: _DataFile(
                    encode_individual_number(holder.individual_number), read_pin=PinId.CARD_INFO
                ),
                EF_BASIC_FOUR: _DataFile(encode_basic_four(holder), read_pin=PinId.CARD_INFO),
            }
        self._session: _Session | None = None  # None: powered off

    @staticmethod
    def _new_pin(pin_id: PinId, value: str) -> _Pin:
        rule = PIN_RULES[pin_id]
        if not rule.accepts(value):
            raise CardConfigError(f"the {pin_id.value} does not have the required format ({rule.pattern})")
        return _Pin(rule, value.encode("ascii"), rule.max_tries)

    @staticmethod
    def _token_info(token: str) -> bytes:
        raw = token.encode("ascii")
        if len(raw) > TOKEN_INFO_SIZE:
            raise CardConfigError(f"token info is at most {TOKEN_INFO_SIZE} characters")
        return raw.ljust(TOKEN_INFO_SIZE, b" ")

    # -- power -------------------------------------------------------------------------------------

    @property
    def powered(self) -> bool:
        return self._session is not None

    def power_on(self) -> bytes:
        """Cold start: a fresh session; answers the ATR."""
        self._session = _Session()
        return ATR

    def reset(self) -> bytes:
        """Warm reset: same as power on for this card."""
        return self.power_on()

    def power_off(self) -> None:
        self._session = None

    def tries_left(self, pin: PinId) -> int:
        """The persistent try counter (what the card's issuer sees; the host asks with VERIFY)."""
        return self._pins[pin].tries_left

    # -- APDUs -------------------------------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with response data + SW1 SW2."""
        session = self._session
        if session is None:
            raise CardNotPoweredError("the virtual card received an APDU while powered off")
        try:
            command = CommandApdu.parse(apdu)
        except MalformedApdu:
            return _sw(SW_WRONG_LENGTH)
        expected_cla = _COMMAND_CLASSES.get(command.ins)
        if expected_cla is None:
            return _sw(SW_INS_NOT_SUPPORTED)
        if command.cla != expected_cla:
            return _sw(SW_CLA_NOT_SUPPORTED)
        if command.ins == INS_SELECT:
            return self._select(session, command)
        if command.ins == INS_VERIFY:
            return self._verify(session, command)
        if command.ins == INS_CHANGE_REFERENCE_DATA:
            return self._change_pin(session, command)
        if command.ins == INS_READ_BINARY:
            return self._read_binary(session, command)
        return self._sign(session, command)

    def _select(self, session: _Session, command: CommandApdu) -> bytes:
        if command.p2 != 0x0C:  # this card returns no FCI
            return _sw(SW_WRONG_P1P2)
        if command.le is not None:
            return _sw(SW_WRONG_LENGTH)
        if command.p1 == 0x04:  # by DF name (AID)
            if not command.data:
                return _sw(SW_WRONG_LENGTH)
            if command.data not in self._applications:
                return _sw(SW_FILE_NOT_FOUND)
            # Leaving (or re-entering) an application drops its security state, as on a real card.
            session.application = command.data
            session.current = None
            session.verified.clear()
            return _sw(SW_OK)
        if command.p1 == 0x02:  # EF by file identifier under the current application
            if len(command.data) != 2:
                return _sw(SW_WRONG_LENGTH)
            if session.application is None:
                return _sw(SW_FILE_NOT_FOUND)
            found = self._applications[session.application].get(int.from_bytes(command.data, "big"))
            if found is None:
                return _sw(SW_FILE_NOT_FOUND)
            session.current = found
            return _sw(SW_OK)
        return _sw(SW_WRONG_P1P2)

    def _selected_pin(self, session: _Session) -> tuple[PinId, _Pin] | bytes:
        """The PIN of the currently selected PIN EF, or the status word refusing the command."""
        if not isinstance(session.current, _PinFile):
            return _sw(SW_NO_CURRENT_EF)
        pin = self._pins[session.current.pin]
        if pin.blocked:
            return _sw(SW_PIN_BLOCKED)
        return session.current.pin, pin

    def _verify(self, session: _Session, command: CommandApdu) -> bytes:
        if command.p1 != 0x00 or command.p2 != 0x80:
            return _sw(SW_WRONG_P1P2)
        if command.le is not None:
            return _sw(SW_WRONG_LENGTH)
        selected = self._selected_pin(session)
        if isinstance(selected, bytes):
            return selected
        pin_id, pin = selected
        if not command.data:  # a status query: uses no try
            if pin_id in session.verified:
                return _sw(SW_OK)
            return _sw(SW_WRONG_PIN_BASE | pin.tries_left)
        if hmac.compare_digest(command.data, pin.value):
            pin.tries_left = pin.rule.max_tries
            session.verified.add(pin_id)
            return _sw(SW_OK)
        pin.tries_left -= 1
        session.verified.discard(pin_id)
        if pin.blocked:
            return _sw(SW_PIN_BLOCKED)
        return _sw(SW_WRONG_PIN_BASE | pin.tries_left)

    def _change_pin(self, session: _Session, command: CommandApdu) -> bytes:
        if command.p1 != 0x01 or command.p2 != 0x80:
            return _sw(SW_WRONG_P1P2)
        if not command.data or command.le is not None:
            return _sw(SW_WRONG_LENGTH)
        selected = self._selected_pin(session)
        if isinstance(selected, bytes):
            return selected
        pin_id, pin = selected
        if pin_id not in session.verified:
            return _sw(SW_SECURITY_NOT_SATISFIED)
        try:
            new_value = command.data.decode("ascii")
        except UnicodeDecodeError:
            return _sw(SW_WRONG_DATA)
        if not pin.rule.accepts(new_value):
            return _sw(SW_WRONG_DATA)
        pin.value = command.data
        return _sw(SW_OK)

    def _read_binary(self, session: _Session, command: CommandApdu) -> bytes:
        if command.p1 & 0x80:  # short EF identifier addressing: not offered by this card
            return _sw(SW_WRONG_P1P2)
        if command.le is None or command.data:
            return _sw(SW_WRONG_LENGTH)
        current = session.current
        if current is None:
            return _sw(SW_NO_CURRENT_EF)
        if not isinstance(current, _DataFile):
            return _sw(SW_FILE_INCOMPATIBLE)
        if current.read_pin is not None and current.read_pin not in session.verified:
            return _sw(SW_SECURITY_NOT_SATISFIED)
        offset = (command.p1 << 8) | command.p2
        if offset >= len(current.content):
            return _sw(SW_OFFSET_BEYOND_FILE)
        return _sw(SW_OK, current.content[offset : offset + command.le])

    def _sign(self, session: _Session, command: CommandApdu) -> bytes:
        if command.p1 != 0x00 or command.p2 != 0x80:
            return _sw(SW_WRONG_P1P2)
        if not command.data:
            return _sw(SW_WRONG_LENGTH)
        current = session.current
        if not isinstance(current, _KeyFile):
            return _sw(SW_NO_CURRENT_EF)
        if command.le is not None and command.le != SIGNATURE_SIZE:
            return _sw(SW_WRONG_LENGTH)
        if current.pin not in session.verified:
            return _sw(SW_SECURITY_NOT_SATISFIED)
        try:
            algorithm, digest = parse_digest_info(command.data)
        except ValueError:
            return _sw(SW_WRONG_DATA)
        # The host built the DigestInfo; signing the digest as prehashed makes cryptography emit exactly
        # EMSA-PKCS1-v1_5 over that DigestInfo (RFC 8017 §9.2), the card's raw RSA operation.
        signature = current.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(algorithm))
        return _sw(SW_OK, signature)
