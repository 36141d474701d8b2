"""Prometheus metrics of the processors, and the `/metrics` endpoint every long-running command serves.

The metric objects live once per process (prometheus_client's default registry): every processor,
and every reader inside one, is a value of the `processor` label (its consumer group), so two
instances in one process (tests, the demo) add up instead of clashing. The processor runtime
(infra.processor_runtime) feeds the common ones; the certificate worker adds its request metrics."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.registry import CollectorRegistry

log = structlog.get_logger("metrics")

CONSUMED = Counter("bcl_messages_consumed", "Messages the processor took from its input topics", ["processor"])
APPLIED = Counter("bcl_messages_applied", "Messages whose effect the processor made durable", ["processor"])
DEAD_LETTERED = Counter("bcl_messages_dead_lettered", "Messages sent to the dead-letter topic", ["processor"])
CONSUMER_LAG = Gauge("bcl_consumer_lag", "High watermark minus the consumer's position, per input partition",
                     ["processor", "topic", "partition"])
BATCH_SECONDS = Histogram("bcl_batch_seconds", "Time to process one polled batch (with its checkpoint, if due)",
                          ["processor"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                                  10, 30))
# Request received by the worker → its response delivered to the responses topic.
REQUEST_SECONDS = Histogram("bcl_certificate_request_seconds", "Certificate request latency in the worker",
                            ["processor"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30))
REQUEST_OUTCOMES = Counter("bcl_certificate_requests", "Certificate requests answered, by outcome and reason code",
                           ["processor", "outcome", "reason_code"])
# Refused ISSUE_FAILED (also in bcl_certificate_requests): the request killed the renderer rendering it alone.
RENDERER_KILLED = Counter("bcl_certificate_renderer_killed",
                          "Certificate requests whose rendering killed the renderer process (refused)", ["processor"])


@dataclass(frozen=True)
class Totals:
    """What a processor has done so far (monotonic counts), as the runtime reads them from its handler."""

    applied: int = 0
    dead_lettered: int = 0


class ProcessorMetrics:
    """The common metrics of one processor. Applied and dead-lettered counts are taken from the handler's
    own totals at checkpoints (one increment per checkpoint, not one per message: the hot loops stay as
    fast as without metrics)."""

    def __init__(self, processor: str) -> None:
        self.processor = processor
        self.consumed = CONSUMED.labels(processor)
        self._applied = APPLIED.labels(processor)
        self._dead_lettered = DEAD_LETTERED.labels(processor)
        self.batch_seconds = BATCH_SECONDS.labels(processor)
        self._reported = Totals()

    def record_totals(self, totals: Totals) -> None:
        if totals.applied > self._reported.applied:
            self._applied.inc(totals.applied - self._reported.applied)
        if totals.dead_lettered > self._reported.dead_lettered:
            self._dead_lettered.inc(totals.dead_lettered - self._reported.dead_lettered)
        self._reported = totals

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        CONSUMER_LAG.labels(self.processor, topic, str(partition)).set(lag)


@dataclass
class MetricsServer:
    url: str
    _server: object

    def close(self) -> None:
        self._server.shutdown()  # type: ignore[attr-defined]
        self._server.server_close()  # type: ignore[attr-defined]


def serve_metrics(port: int | None, host: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY) -> MetricsServer:
    """Serve `/metrics` in a daemon thread (port None: one the OS chooses) and log where."""
    server, _thread = start_http_server(port or 0, host, registry)
    url = f"http://{host}:{server.server_port}/metrics"
    log.info("metrics serving", url=url)
    return MetricsServer(url, server)
