"""The limits of every field of a kiosk's CertificateRequest, checked before anything else. Pure: no I/O.

Why first: the certificate worker records a request in its ledger and the certificate in the issuance
archive under the request id, and billing and statistics count by kiosk, vendor and municipality; a
value any of them cannot take must be refused before the first side effect, not found out half way
(a request id `abc|K-1` used to be claimed, then refused by the archive, and stopped the worker).
The Avro contract (schemas/avro/certificate_request.avsc) already fixes the types and the enums;
these are the limits it cannot express, stated once here and documented in its field docs:

- request_id, kiosk_id, kiosk_vendor: domain.identifiers (letters, digits, . _ -, 1-128 characters);
- kiosk_municipality_code: a municipality of the reference data (billing and statistics count by it);
- municipality_code: 6 ASCII digits (a well-formed code that is not a municipality is refused later,
  UNKNOWN_MUNICIPALITY);
- fiscal_year: null or FISCAL_YEARS;
- paid_yen: 0 to MAX_PAID_YEN;
- auth_certificate: 1 to MAX_CERTIFICATE_BYTES bytes; challenge_signature: SIGNATURE_BYTES (RSA-2048).
Copies (1-10) keep their own reason code (domain.kiosk_rules.check_copies, INVALID_COPIES).
Every violation is INVALID_REQUEST with a detail naming the field (never its value: it may be anything).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.errors import UnknownMunicipalityError
from domain.identifiers import ID_RULE, is_valid_id
from domain.kiosk_rules import ReasonCode, Refusal, refusal
from domain.municipalities import municipality

FISCAL_YEARS = range(1989, 2100)  # 平成元年 on: a tax certificate shows a year of the register's records
MAX_PAID_YEN = 100_000  # a kiosk takes at most this for one request (10 copies of the dearest fee fit)
MAX_CERTIFICATE_BYTES = 8 * 1024  # a JPKI user-authentication certificate is about 1.2 kB of DER
SIGNATURE_BYTES = 256  # RSA-2048 PKCS#1 v1.5

_ID_FIELDS = ("request_id", "kiosk_id", "kiosk_vendor")


def _invalid(detail: str) -> Refusal:
    return refusal(ReasonCode.INVALID_REQUEST, detail)


def check_request_fields(request: Mapping[str, Any]) -> Refusal | None:
    """The first field outside its limits, as an INVALID_REQUEST refusal; None when every field fits."""
    for name in _ID_FIELDS:
        if not is_valid_id(request[name]):
            return _invalid(f"{name} is not a valid id ({ID_RULE})")
    try:
        municipality(request["kiosk_municipality_code"])
    except UnknownMunicipalityError:
        return _invalid("kiosk_municipality_code is not a known municipality")
    code = request["municipality_code"]
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return _invalid("municipality_code is not 6 digits")
    fiscal_year = request["fiscal_year"]
    if fiscal_year is not None and fiscal_year not in FISCAL_YEARS:
        return _invalid(f"fiscal_year outside {FISCAL_YEARS.start}-{FISCAL_YEARS.stop - 1}")
    if not 0 <= request["paid_yen"] <= MAX_PAID_YEN:
        return _invalid(f"paid_yen outside 0-{MAX_PAID_YEN}")
    if not 0 < len(request["auth_certificate"]) <= MAX_CERTIFICATE_BYTES:
        return _invalid(f"auth_certificate is empty or longer than {MAX_CERTIFICATE_BYTES} bytes")
    if len(request["challenge_signature"]) != SIGNATURE_BYTES:
        return _invalid(f"challenge_signature is not {SIGNATURE_BYTES} bytes")
    return None
