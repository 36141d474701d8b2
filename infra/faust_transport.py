"""Faust's aiokafka transport with the platform's fetch wait, registered as the `bcl` broker scheme (the
`faust.transports` entry point in pyproject.toml): `faust.App(broker="bcl://host:port,...")`.

Faust builds its aiokafka consumer with a fixed fetch_max_wait_ms of 1500. The embedded broker (librdkafka's mock)
holds a fetch for the whole wait even when data arrives meanwhile (a real broker answers as soon as there is
data), so on an idle topic every new record waited up to 1.5 s: measured, a register change took 1.44 s (p50) to
reach the ledger. This transport gives the consumer the platform's wait (infra.kafka.FETCH_WAIT_MAX_MS), as the
librdkafka consumers have; against a real broker a shorter wait only means more empty fetches while idle."""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from infra.kafka import FETCH_WAIT_MAX_MS


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it makes its fetcher (aiokafka pinned in pyproject.toml).
        consumer._fetch_max_wait_ms = FETCH_WAIT_MAX_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
