"""domain.certificate_types is the one enum of certificate types, and it matches the Avro contracts."""

from __future__ import annotations

import json
from importlib import resources

from domain.billing import type_label
from domain.certificate_types import ISSUED_VIA_BCL, NOT_AVAILABLE_VIA_BCL, TITLES, CertificateType
from domain.statistics import CATEGORY_OF_TYPE, category_of


def _symbols(contract: str, enum_name: str) -> list[str]:
    schema = json.loads(resources.files("schemas").joinpath("avro", contract).read_text(encoding="utf-8"))
    for field in schema["fields"]:
        kind = field["type"]
        if isinstance(kind, dict) and kind.get("name") == enum_name:
            return list(kind["symbols"])
    raise AssertionError(f"{enum_name} not in {contract}")


def test_members_are_the_contract_symbols() -> None:
    assert [t.value for t in CertificateType] == _symbols("certificate_request.avsc", "RequestedCertificate")
    assert sorted(ISSUED_VIA_BCL) == sorted(_symbols("certificate_issued.avsc", "CertificateType"))
    assert not ISSUED_VIA_BCL & NOT_AVAILABLE_VIA_BCL


def test_every_type_has_a_title_and_every_issued_type_a_category() -> None:
    assert set(TITLES) == set(CertificateType)
    assert set(CATEGORY_OF_TYPE) == ISSUED_VIA_BCL
    assert category_of("INCOME") == "税" and type_label("SEAL_REGISTRATION") == "印鑑登録証明書"
