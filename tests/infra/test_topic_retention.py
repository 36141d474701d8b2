"""Certificate PDFs are not kept forever in production (issue 8 item 6): every topic whose events carry a
PDF deletes them after a bounded time, long enough for the kiosk that waits for the answer, and in
segments short enough that Kafka (which deletes only closed segments) actually deletes them then."""

from __future__ import annotations

import datetime as dt

from domain.request_authentication import FRESHNESS_WINDOW
from infra.topics import CATALOGUE, KIOSK_CLAIMS, KIOSK_RESPONSES
from schemas.contracts import CONTRACTS, expanded_schema


def _ms(spec_config: dict[str, str], key: str) -> dt.timedelta:
    return dt.timedelta(milliseconds=int(spec_config[key]))


def test_every_topic_carrying_certificate_pdfs_keeps_them_only_while_a_kiosk_needs_them() -> None:
    with_pdfs = {spec.name: spec for spec in CATALOGUE if spec.name in CONTRACTS
                 and any(f["name"] == "pdf" for f in expanded_schema(CONTRACTS[spec.name])["fields"])}
    assert set(with_pdfs) == {KIOSK_RESPONSES, KIOSK_CLAIMS}  # the claims carry the answer, for the other centre
    for name, spec in with_pdfs.items():
        assert spec.config.get("cleanup.policy") == "delete", name
        retention = _ms(spec.config, "retention.ms")
        assert 2 * FRESHNESS_WINDOW <= retention <= dt.timedelta(days=1), (name, retention)
        # Without a short segment.ms the active segment (7 days by default) would keep the PDFs a week.
        assert _ms(spec.config, "segment.ms") <= retention, name
