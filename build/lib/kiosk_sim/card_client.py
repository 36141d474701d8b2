"""The kiosk's side of the My Number card: JPKI and card-info operations over any card transport.

Status words become typed errors the kiosk can show: `WrongPin(tries_left)`, `PinLocked`,
`PinNotVerifiedError`, otherwise `CardError` with the status word.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk_sim.apdu import (
    MAX_SHORT_LE,
    SW_OK,
    SW_PIN_BLOCKED,
    SW_SECURITY_NOT_SATISFIED,
    SW_WRONG_PIN_BASE,
    CommandApdu,
)
from kiosk_sim.card import (
    CARD_INFO_AID,
    CLA_ISO,
    CLA_PROPRIETARY,
    EF_AUTH_CA_CERT,
    EF_AUTH_CERT,
    EF_AUTH_KEY,
    EF_AUTH_PIN,
    EF_BASIC_FOUR,
    EF_CARD_INFO_PIN,
    EF_INDIVIDUAL_NUMBER,
    EF_TOKEN_INFO,
    INS_READ_BINARY,
    INS_SELECT,
    INS_SIGN,
    INS_VERIFY,
    JPKI_AID,
    PIN_RULES,
    SIGNATURE_SIZE,
    TOKEN_INFO_SIZE,
    PinId,
)
from kiosk_sim.card_info import (
    INDIVIDUAL_NUMBER_EF_SIZE,
    CardHolder,
    basic_four_length,
    decode_basic_four,
    decode_individual_number,
)
from kiosk_sim.digest_info import digest_info_sha256
from kiosk_sim.errors import CardDataError, CardError, InvalidPinFormat, PinLocked, PinNotVerifiedError, WrongPin
from kiosk_sim.transport import BaseCardTransport

SW_PIN_BLOCKED_ALT = 0x6983  # "authentication method blocked": what some cards answer instead of 6984
MAX_OFFSET = 0x7FFF  # READ BINARY offsets are 15 bits


@dataclass(frozen=True, slots=True)
class CardAuthentication:
    """What the kiosk sends the issuing centre: the authentication certificate and the card's signature."""

    certificate_der: bytes
    challenge: bytes
    signature: bytes  # RSA PKCS#1 v1.5 over SHA-256(challenge)


def der_total_length(header: bytes) -> int:
    """Total length of a DER SEQUENCE from its first bytes (`30 82 LL LL` → LL LL + 4)."""
    if len(header) < 2 or header[0] != 0x30:
        raise CardDataError("the file does not hold a DER certificate (no SEQUENCE header)")
    first = header[1]
    if first < 0x80:
        return 2 + first
    width = first & 0x7F
    if width not in (1, 2) or len(header) < 2 + width:
        raise CardDataError("the certificate's DER length is not one the card can hold")
    return 2 + width + int.from_bytes(header[2 : 2 + width], "big")


class JpkiCardClient:
    """Card operations of a kiosk. Each method selects what it needs, so calls may come in any order,
    except that signing must follow a PIN verification in the same card session."""

    def __init__(self, transport: BaseCardTransport) -> None:
        self._transport = transport

    # -- plumbing ----------------------------------------------------------------------------------

    def _send(self, operation: str, command: CommandApdu) -> bytes:
        data, sw1, sw2 = self._transport.transmit(command.to_bytes())
        sw = (sw1 << 8) | sw2
        if sw == SW_OK:
            return data
        if sw in (SW_PIN_BLOCKED, SW_PIN_BLOCKED_ALT):
            raise PinLocked()
        if sw & 0xFFF0 == SW_WRONG_PIN_BASE:
            if sw == SW_WRONG_PIN_BASE:  # 63C0: no tries left
                raise PinLocked()
            raise WrongPin(sw & 0x0F)
        if sw == SW_SECURITY_NOT_SATISFIED:
            raise PinNotVerifiedError(operation)
        raise CardError(operation, sw1, sw2)

    def _select_application(self, aid: bytes, name: str) -> None:
        self._send(f"select the {name} application", CommandApdu(CLA_ISO, INS_SELECT, 0x04, 0x0C, aid))

    def _select_file(self, fid: int) -> None:
        self._send(f"select file {fid:04X}", CommandApdu(CLA_ISO, INS_SELECT, 0x02, 0x0C, fid.to_bytes(2, "big")))

    def _read(self, offset: int, length: int) -> bytes:
        if not 0 <= offset <= MAX_OFFSET:
            raise CardDataError(f"offset {offset} is beyond what READ BINARY can address")
        command = CommandApdu(CLA_ISO, INS_READ_BINARY, offset >> 8, offset & 0xFF, le=length)
        return self._send(f"read at offset {offset}", command)

    def _read_exact(self, total: int, first: bytes = b"") -> bytes:
        """The first `total` bytes of the current EF, continuing after the `first` bytes already read."""
        content = bytearray(first[:total])
        while len(content) < total:
            chunk = self._read(len(content), min(MAX_SHORT_LE, total - len(content)))
            if not chunk:
                raise CardDataError("the card returned no data before the end of the file")
            content += chunk
        return bytes(content[:total])

    def _read_der(self, what: str) -> bytes:
        head = self._read(0, MAX_SHORT_LE)
        total = der_total_length(head)
        if total > MAX_OFFSET + 1:
            raise CardDataError(f"the {what} is longer than a card file can be")
        return self._read_exact(total, head)

    def _verify(self, pin_id: PinId, pin: str) -> None:
        rule = PIN_RULES[pin_id]
        if not rule.accepts(pin):
            # Never send a value the card would reject anyway: it would cost the resident a try.
            raise InvalidPinFormat(
                f"that is not a valid {pin_id.value}: "
                + ("enter 6-16 capital letters and digits" if pin_id is PinId.SIGNING else "enter 4 digits")
            )
        self._send(f"verify the {pin_id.value}", CommandApdu(CLA_ISO, INS_VERIFY, 0x00, 0x80, pin.encode("ascii")))

    def _tries_left(self, pin_id: PinId) -> int:
        try:
            self._send(f"query the {pin_id.value}", CommandApdu(CLA_ISO, INS_VERIFY, 0x00, 0x80))
        except WrongPin as answer:  # 63Cx is the normal answer to the query
            return answer.tries_left
        return PIN_RULES[pin_id].max_tries  # 9000: verified in this session, so the counter is full

    # -- JPKI application --------------------------------------------------------------------------

    def select_jpki(self) -> None:
        self._select_application(JPKI_AID, "JPKI")

    def read_token_info(self) -> str:
        """`JPKIAPICCTOKEN2` on a My Number card (other values on smartphones)."""
        self.select_jpki()
        self._select_file(EF_TOKEN_INFO)
        return self._read(0, TOKEN_INFO_SIZE).decode("ascii", errors="replace").rstrip(" ")

    def read_auth_certificate(self) -> bytes:
        """The user-authentication certificate (DER); needs no PIN."""
        self.select_jpki()
        self._select_file(EF_AUTH_CERT)
        return self._read_der("authentication certificate")

    def read_auth_ca_certificate(self) -> bytes:
        self.select_jpki()
        self._select_file(EF_AUTH_CA_CERT)
        return self._read_der("authentication CA certificate")

    def auth_pin_tries_left(self) -> int:
        """Tries left for the authentication PIN without using one; raises PinLocked if none."""
        self.select_jpki()
        self._select_file(EF_AUTH_PIN)
        return self._tries_left(PinId.AUTH)

    def verify_auth_pin(self, pin: str) -> None:
        """Raises WrongPin(tries_left) or PinLocked. A correct PIN opens the authentication key for this session."""
        self.select_jpki()
        self._select_file(EF_AUTH_PIN)
        self._verify(PinId.AUTH, pin)

    def sign_digest_info(self, digest_info: bytes) -> bytes:
        """The authentication key's signature (256 bytes) over a DigestInfo; the PIN must be verified first.
        Does not re-select the application: that would drop the verified PIN."""
        self._select_file(EF_AUTH_KEY)
        command = CommandApdu(CLA_PROPRIETARY, INS_SIGN, 0x00, 0x80, digest_info, le=MAX_SHORT_LE)
        signature = self._send("sign with the authentication key", command)
        if len(signature) != SIGNATURE_SIZE:
            raise CardDataError(f"the card returned a {len(signature)}-byte signature, expected {SIGNATURE_SIZE}")
        return signature

    def sign_challenge(self, challenge: bytes) -> bytes:
        """Signature over SHA-256(challenge): PKCS#1 v1.5, verifiable with the certificate's public key."""
        return self.sign_digest_info(digest_info_sha256(challenge))

    def authenticate(self, pin: str, challenge: bytes) -> CardAuthentication:
        """The kiosk's whole card step: read the certificate, verify the PIN, sign the challenge."""
        certificate = self.read_auth_certificate()
        self.verify_auth_pin(pin)
        return CardAuthentication(certificate, challenge, self.sign_challenge(challenge))

    # -- card-info application ---------------------------------------------------------------------

    def read_card_holder(self, pin: str) -> CardHolder:
        """The individual number and the basic four items, opened with the card-info PIN."""
        self._select_application(CARD_INFO_AID, "card-info")
        self._select_file(EF_CARD_INFO_PIN)
        self._verify(PinId.CARD_INFO, pin)
        self._select_file(EF_INDIVIDUAL_NUMBER)
        number_record = self._read(0, INDIVIDUAL_NUMBER_EF_SIZE)
        self._select_file(EF_BASIC_FOUR)
        head = self._read(0, MAX_SHORT_LE)
        try:
            number = decode_individual_number(number_record)
            record = self._read_exact(basic_four_length(head), head)
            return decode_basic_four(record, number)
        except ValueError as exc:
            raise CardDataError(f"the card-info application holds malformed data: {exc}") from exc

    def card_info_pin_tries_left(self) -> int:
        self._select_application(CARD_INFO_AID, "card-info")
        self._select_file(EF_CARD_INFO_PIN)
        return self._tries_left(PinId.CARD_INFO)

