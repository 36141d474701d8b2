"""The topic catalogue: the one place that knows topic names, partitions and settings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 3
    config: dict[str, str] = field(default_factory=dict)
    doc: str = ""


REGISTER_DIFFS = "bcl.register.diffs"
RESIDENTS = "bcl.residents"
KIOSK_REQUESTS = "bcl.kiosk.requests"
KIOSK_RESPONSES = "bcl.kiosk.responses"
CERTIFICATES_ISSUED = "bcl.certificates.issued"
JPKI_REVOCATIONS = "bcl.jpki.revocations"
DLQ = "bcl.dlq"

_COMPACTED = {"cleanup.policy": "compact", "min.insync.replicas": "2"}
_RETAINED = {"cleanup.policy": "delete", "retention.ms": "-1", "min.insync.replicas": "2"}

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(REGISTER_DIFFS, 6, config=_RETAINED, doc="ResidentChange keyed by municipality + resident code"),
    TopicSpec(RESIDENTS, 6, config=_COMPACTED, doc="Resident: the materialised backup, latest state"),
    TopicSpec(KIOSK_REQUESTS, 6, config=_RETAINED, doc="CertificateRequest keyed by request id"),
    TopicSpec(KIOSK_RESPONSES, 6, config=_RETAINED, doc="CertificateResponse keyed by request id"),
    TopicSpec(CERTIFICATES_ISSUED, 6, config=_RETAINED, doc="CertificateIssued keyed by municipality code"),
    TopicSpec(JPKI_REVOCATIONS, 3, config=_COMPACTED, doc="Revocation keyed by certificate serial"),
    TopicSpec(DLQ, 3, config=_RETAINED, doc="DeadLetter keyed by the original key"),
)
