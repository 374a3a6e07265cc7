"""Ingest test helpers: worker settings, an in-process worker, a QoS 1 publisher, polling."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest.mqtt import BrokerAddress
from ingest.worker import Worker
from meterflow.settings import Settings

# Limits under which Mosquitto never drops a QoS 1 message of a slow or absent consumer.
BROKER_LIMITS = (
    "allow_anonymous true\n"
    "max_inflight_messages 0\nmax_queued_messages 0\nmax_queued_bytes 0\n"
    "persistent_client_expiration 1d\nautosave_interval 1\n"
)


def ingest_settings(database_url: str, mqtt_url: str, **changes: object) -> Settings:
    """Settings of a test worker: unique client id, plain subscription, fast batches."""
    values: dict[str, object] = {
        "database_url": database_url,
        "mqtt_url": mqtt_url,
        "ingest_client_id": f"ingest-test-{uuid.uuid4().hex[:8]}",
        "ingest_shared": False,
        "ingest_batch_ms": 50,
        "metrics_port": 0,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


@contextmanager
def running_worker(settings: Settings) -> Iterator[Worker]:
    """Run a worker in a thread until the block ends; fail if it does not subscribe."""
    stop = threading.Event()
    worker = Worker(settings, stop)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(worker.run()), daemon=True)
    thread.start()
    assert worker.consumer.wait_subscribed(10), "ingest worker did not subscribe"
    try:
        yield worker
    finally:
        stop.set()
        thread.join(20)
    assert codes == [0]


class Publisher:
    """A QoS 1 publisher that waits until the broker has every message."""

    def __init__(self, url: str, protocol: MQTTProtocolVersion = paho.MQTTv5) -> None:
        address = BrokerAddress.parse(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        self.client.max_queued_messages_set(0)
        self.client.connect(address.host, address.port)
        self.client.loop_start()

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish ``(topic, payload)`` pairs at QoS 1 and wait for every PUBACK."""
        for start in range(0, len(messages), 1000):
            infos = [self.client.publish(t, p, qos=1) for t, p in messages[start : start + 1000]]
            for info in infos:
                info.wait_for_publish(30)
                assert info.is_published()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``check`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def scalar(database_url: str, sql: str, params: tuple[object, ...] = ()) -> object:
    """Return the first column of the first row of a query."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql.encode(), params).fetchone()
    assert row is not None
    return row[0]
