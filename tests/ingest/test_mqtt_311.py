"""The worker over MQTT 3.1.1, against the embedded pure-Python broker ``meterflow up`` uses."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal

import paho.mqtt.client as paho
import pytest

from ingest.worker import Worker
from meterflow.errors import ConfigError
from tests.factories import T0, envelope, frames_topic, wmbus_frame
from tests.ingest.harness import Publisher, ingest_settings, running_worker, scalar, wait_until
from tests.services import free_port, wait_for_port

GATEWAY = "gw-311"


@pytest.fixture(scope="module")
def embedded_broker() -> Iterator[str]:
    """``python -m meterflow.embedded_broker PORT`` (amqtt, MQTT 3.1.1 only)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "meterflow.embedded_broker", str(port)])
    try:
        wait_for_port(port, 30)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _stored(database_url: str) -> int:
    value = scalar(
        database_url, "SELECT count(*) FROM raw_frames WHERE gateway_id = %s", (GATEWAY,)
    )
    assert isinstance(value, int)
    return value


def _publish(url: str, first_meter: int, count: int) -> None:
    frames = [wmbus_frame(first_meter + i, Decimal(i), plain=True, at=T0) for i in range(count)]
    publisher = Publisher(url, protocol=paho.MQTTv311)
    publisher.publish(
        [
            (frames_topic(GATEWAY), envelope(GATEWAY, frames[i : i + 20]))
            for i in range(0, count, 20)
        ]
    )
    publisher.close()


def test_worker_stores_frames_over_mqtt_3_1_1(migrated_db: str, embedded_broker: str) -> None:
    settings = ingest_settings(migrated_db, embedded_broker, mqtt_protocol="3.1.1")
    with running_worker(settings) as worker:
        _publish(embedded_broker, 700_000, 60)
        wait_until(lambda: _stored(migrated_db) == 60, what="60 frames over MQTT 3.1.1")
        assert worker.consumer.wait_subscribed(0)
    readings = scalar(
        migrated_db, "SELECT count(*) FROM readings WHERE gateway_id = %s", (GATEWAY,)
    )
    assert readings == 60


def test_unknown_mqtt_protocol_is_a_config_error(migrated_db: str) -> None:
    settings = ingest_settings(migrated_db, "mqtt://127.0.0.1:1", mqtt_protocol="4")
    with pytest.raises(ConfigError, match="METERFLOW_MQTT_PROTOCOL"):
        Worker(settings, threading.Event())
