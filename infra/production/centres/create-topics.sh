#!/bin/sh
# Creates the BCL topic catalogue on the Apache Kafka cluster stretched over the East and West centres (RF 4, two replicas in each). Idempotent (--if-not-exists).
# GENERATED from infra/topics.py by `bcl cluster topics --kafka-topics-script --centres`; do not edit by hand.
#   BOOTSTRAP_SERVER  brokers to talk to (default kafka-east-1.bcl.internal:9092,kafka-east-2.bcl.internal:9092,kafka-west-1.bcl.internal:9092,kafka-west-2.bcl.internal:9092)
#   KAFKA_TOPICS      the kafka-topics.sh program (default /opt/kafka/bin/kafka-topics.sh)
set -eu
: "${BOOTSTRAP_SERVER:=kafka-east-1.bcl.internal:9092,kafka-east-2.bcl.internal:9092,kafka-west-1.bcl.internal:9092,kafka-west-2.bcl.internal:9092}"
: "${KAFKA_TOPICS:=/opt/kafka/bin/kafka-topics.sh}"

"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.register.diffs --partitions 64 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=-1
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.residents --partitions 64 --replication-factor 4 --config cleanup.policy=compact --config min.insync.replicas=2
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.kiosk.requests --partitions 6 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=-1
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.kiosk.responses --partitions 6 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=3600000 --config segment.ms=600000
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.kiosk.claims --partitions 64 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=3600000 --config segment.ms=600000
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.certificates.issued --partitions 6 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=-1
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.jpki.revocations --partitions 3 --replication-factor 4 --config cleanup.policy=compact --config min.insync.replicas=2
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.dlq --partitions 3 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=-1
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.disaster.events --partitions 3 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=-1
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.disaster.assessments --partitions 3 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=-1
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.disaster.applications --partitions 3 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=-1
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.shelter.stays --partitions 3 --replication-factor 4 --config cleanup.policy=delete --config min.insync.replicas=2 --config retention.ms=-1
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --create --if-not-exists --topic bcl.welfare.status --partitions 6 --replication-factor 4 --config cleanup.policy=compact --config min.insync.replicas=2

"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP_SERVER}" --list
