"""The topic catalogue: the one place that knows topic names, partitions and settings.

Both deployments are built from it: the embedded cluster creates every topic at start (the
librdkafka mock has no CreateTopics API), and the production scripts are generated from it by
`kafka_topics_script`: `infra/production/create-topics.sh` for one site, `infra/production/centres/create-topics.sh`
for the cluster stretched over the two issuing centres (`two_centre_catalogue`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 3
    # Broker-side topic configuration, applied in production only (the embedded mock ignores it).
    config: dict[str, str] = field(default_factory=dict)
    doc: str = ""


REGISTER_DIFFS = "bcl.register.diffs"
RESIDENTS = "bcl.residents"
KIOSK_REQUESTS = "bcl.kiosk.requests"
KIOSK_RESPONSES = "bcl.kiosk.responses"
KIOSK_CLAIMS = "bcl.kiosk.claims"
CERTIFICATES_ISSUED = "bcl.certificates.issued"
JPKI_REVOCATIONS = "bcl.jpki.revocations"
DLQ = "bcl.dlq"
DISASTER_EVENTS = "bcl.disaster.events"
DISASTER_ASSESSMENTS = "bcl.disaster.assessments"
DISASTER_APPLICATIONS = "bcl.disaster.applications"
SHELTER_STAYS = "bcl.shelter.stays"
WELFARE_STATUS = "bcl.welfare.status"

# Not a topic: the source a dead letter of the shelter intake names (sinks.shelters), whose input is a terminal's
# own queue (kiosk_sim.shelter_terminal), synced in-process; ':' cannot be in a topic's name, so it is never one.
SHELTER_TERMINAL_SOURCE = "shelter-terminal"


def shelter_terminal_source(terminal_id: str) -> str:
    """The `topic` of a refused terminal event's dead letter: the terminal's queue it came from."""
    return f"{SHELTER_TERMINAL_SOURCE}:{terminal_id}"


_COMPACTED = {"cleanup.policy": "compact", "min.insync.replicas": "2"}
_RETAINED = {"cleanup.policy": "delete", "retention.ms": "-1", "min.insync.replicas": "2"}

# The kiosk answers carry the certificate PDFs, personal data that nobody needs once the kiosk has
# printed: a kiosk waits seconds for its answer (30 s by default) and a request is stale after the
# freshness window (±5 minutes, domain.request_authentication). They are kept an hour, a margin for a
# kiosk that reconnects and for the worker's in-doubt recovery (which reads the recent answers so as not
# to send one twice; after the hour it sends it again, to nobody waiting). Kafka deletes only closed
# segments, so segments roll every 10 minutes: with the default 7-day segments an answer would stay a week.
ANSWER_RETENTION = dt.timedelta(hours=1)
ANSWER_SEGMENT = dt.timedelta(minutes=10)
_ANSWERS = {"cleanup.policy": "delete", "retention.ms": str(int(ANSWER_RETENTION.total_seconds() * 1000)),
            "segment.ms": str(int(ANSWER_SEGMENT.total_seconds() * 1000)), "min.insync.replicas": "2"}

# The bulk topics carry a full national load (tens of millions of records). The embedded mock keeps
# at most 5 MiB per partition and trims older data beyond that (hard-coded in librdkafka), so they
# get 64 partitions; in production 64 partitions also spread the load over the brokers.
BULK_PARTITIONS = 64

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(REGISTER_DIFFS, BULK_PARTITIONS, config=_RETAINED,
              doc="ResidentChange keyed by municipality + resident code"),
    TopicSpec(RESIDENTS, BULK_PARTITIONS, config=_COMPACTED, doc="Resident: the materialised backup, latest state"),
    TopicSpec(KIOSK_REQUESTS, 6, config=_RETAINED, doc="CertificateRequest keyed by request id"),
    TopicSpec(KIOSK_RESPONSES, 6, config=_ANSWERS,
              doc="CertificateResponse keyed by request id (with the PDF: kept an hour, see ANSWER_RETENTION)"),
    # The certificate workers' claims, replicated between the two centres (streams.centre_claims): the first claim
    # of a request id decides it. It carries the answer, as the responses do, and is kept as long. 64 partitions:
    # the embedded mock trims a partition beyond 5 MiB, and a claim must outlive the retries of its request.
    TopicSpec(KIOSK_CLAIMS, BULK_PARTITIONS, config=_ANSWERS,
              doc="CertificateResponse claimed by a centre's worker, keyed by request id (the first one answers)"),
    TopicSpec(CERTIFICATES_ISSUED, 6, config=_RETAINED, doc="CertificateIssued keyed by municipality code"),
    TopicSpec(JPKI_REVOCATIONS, 3, config=_COMPACTED, doc="Revocation keyed by certificate serial"),
    TopicSpec(DLQ, 3, config=_RETAINED, doc="DeadLetter keyed by the original key"),
    # Published by the disaster relay from the disaster store's outbox (sinks.disaster_store), which is the
    # durable copy: a new cluster is filled again from it.
    TopicSpec(DISASTER_EVENTS, 3, config=_RETAINED, doc="DisasterEvent (declared, closed) keyed by disaster id"),
    # From the same outbox: each damage survey, and each area registration (in parts of at most
    # sinks.damage_assessment.AREA_EVENT_DWELLINGS dwellings, well below the brokers' 1 MB message limit).
    TopicSpec(DISASTER_ASSESSMENTS, 3, config=_RETAINED,
              doc="DwellingAssessment (a survey, or part of an area registration) keyed by disaster id"),
    # From the same outbox: each online application submitted, accepted or rejected (sinks.disaster_applications).
    TopicSpec(DISASTER_APPLICATIONS, 3, config=_RETAINED,
              doc="DisasterApplication (submitted, accepted, rejected) keyed by disaster id"),
    # From the same outbox: each check-in and check-out taken from a shelter terminal, and each check-out of a
    # shelter's closing (sinks.shelters).
    TopicSpec(SHELTER_STAYS, 3, config=_RETAINED,
              doc="ShelterStay (check-in, check-out, with the person's shelter after it) keyed by disaster id"),
    # From the municipalities' welfare systems through their adapters: the whole status after each change, so the
    # latest per key is what counts (compacted, like the register).
    TopicSpec(WELFARE_STATUS, 6, config=_COMPACTED,
              doc="WelfareStatus (care level, disability certificates, 指定難病, at home) keyed by municipality + "
                  "resident code"),
)


# The cluster stretched over East and West (infra/production/centres/README.md): two replicas in each centre
# (rack-aware placement over broker.rack) and min.insync.replicas=2, so that with acks=all an acknowledged write is
# in both centres while both run, and each centre's two replicas still take writes for what it leads when the
# link between them is cut.
CENTRES_REPLICATION_FACTOR = 4
CENTRES_MIN_INSYNC_REPLICAS = 2


def two_centre_catalogue(specs: Iterable[TopicSpec] = CATALOGUE) -> tuple[TopicSpec, ...]:
    """The catalogue as the two-centre cluster has it: replication factor 4, min.insync.replicas 2 on every topic."""
    return tuple(dataclasses.replace(s, replication_factor=CENTRES_REPLICATION_FACTOR,
                                     config={**s.config, "min.insync.replicas": str(CENTRES_MIN_INSYNC_REPLICAS)})
                 for s in specs)


@dataclass(frozen=True)
class ScriptLayout:
    """What differs between the generated topic scripts: where they live, the brokers they talk to by default."""

    path: str
    option: str  # the `bcl cluster topics` options that print it
    bootstrap: str
    site: str


SINGLE_SITE = ScriptLayout("infra/production/create-topics.sh", "--kafka-topics-script",
                           "kafka-1:19092,kafka-2:19092,kafka-3:19092", "an Apache Kafka cluster")
TWO_CENTRES = ScriptLayout("infra/production/centres/create-topics.sh", "--kafka-topics-script --centres",
                           "kafka-east-1.bcl.internal:9092,kafka-east-2.bcl.internal:9092,"
                           "kafka-west-1.bcl.internal:9092,kafka-west-2.bcl.internal:9092",
                           "the Apache Kafka cluster stretched over the East and West centres (RF 4, two replicas "
                           "in each)")


def kafka_topics_commands(
    specs: Iterable[TopicSpec] = CATALOGUE,
    *,
    bootstrap: str = '"${BOOTSTRAP_SERVER}"',
    program: str = '"${KAFKA_TOPICS}"',
) -> list[str]:
    """Shell commands creating the topics with Apache Kafka's kafka-topics.sh (idempotent: --if-not-exists).
    bootstrap and program are inserted verbatim, so they may be shell variable references."""
    commands = []
    for spec in specs:
        words = [
            program, "--bootstrap-server", bootstrap, "--create", "--if-not-exists",
            "--topic", shlex.quote(spec.name),
            "--partitions", str(spec.partitions),
            "--replication-factor", str(spec.replication_factor),
        ]
        for key, value in sorted(spec.config.items()):
            words += ["--config", shlex.quote(f"{key}={value}")]
        commands.append(" ".join(words))
    return commands


def kafka_topics_script(specs: Iterable[TopicSpec] = CATALOGUE, layout: ScriptLayout = SINGLE_SITE) -> str:
    """A POSIX shell script creating the catalogue on Apache Kafka, written to `layout.path`.
    Regenerate with `bcl cluster topics --kafka-topics-script > infra/production/create-topics.sh` (one site) or
    `bcl cluster topics --kafka-topics-script --centres > infra/production/centres/create-topics.sh`."""
    header = [
        "#!/bin/sh",
        f"# Creates the BCL topic catalogue on {layout.site}. Idempotent (--if-not-exists).",
        f"# GENERATED from infra/topics.py by `bcl cluster topics {layout.option}`; do not edit by hand.",
        f"#   BOOTSTRAP_SERVER  brokers to talk to (default {layout.bootstrap})",
        "#   KAFKA_TOPICS      the kafka-topics.sh program (default /opt/kafka/bin/kafka-topics.sh)",
        "set -eu",
        f': "${{BOOTSTRAP_SERVER:={layout.bootstrap}}}"',
        ': "${KAFKA_TOPICS:=/opt/kafka/bin/kafka-topics.sh}"',
        "",
    ]
    lines = header + kafka_topics_commands(specs) + [
        "",
        '"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --list',
    ]
    return "\n".join(lines) + "\n"
