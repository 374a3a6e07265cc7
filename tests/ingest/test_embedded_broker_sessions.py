"""The embedded broker of ``meterflow up`` keeps frames for a stopped ingest worker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal

import paho.mqtt.client as paho
import pytest

from meterflow.local import EMBEDDED_BROKER_USER
from tests.factories import T0, envelope, frames_topic, wmbus_frame
from tests.ingest.harness import Publisher, ingest_settings, running_worker, scalar, wait_until
from tests.services import free_port, wait_for_port

GATEWAY = "gw-offline"


@pytest.fixture
def embedded_broker() -> Iterator[int]:
    """A private ``python -m meterflow.embedded_broker PORT``; yields its port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "meterflow.embedded_broker", str(port)])
    try:
        wait_for_port(port, 30)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _stored(database_url: str) -> int:
    value = scalar(
        database_url, "SELECT count(*) FROM raw_frames WHERE gateway_id = %s", (GATEWAY,)
    )
    assert isinstance(value, int)
    return value


def test_frames_published_while_the_worker_is_stopped_are_stored_after_restart(
    migrated_db: str, embedded_broker: int
) -> None:
    url = f"mqtt://{EMBEDDED_BROKER_USER}@127.0.0.1:{embedded_broker}"
    settings = ingest_settings(
        migrated_db, url, mqtt_protocol="3.1.1", ingest_client_id=f"off-{uuid.uuid4().hex[:8]}"
    )
    with running_worker(settings):
        pass  # the broker now holds a persistent session with the subscription
    frames = [wmbus_frame(710_000 + i, Decimal(i), plain=True, at=T0) for i in range(100)]
    publisher = Publisher(f"mqtt://127.0.0.1:{embedded_broker}", protocol=paho.MQTTv311)
    publisher.publish(
        [(frames_topic(GATEWAY), envelope(GATEWAY, frames[i : i + 20])) for i in range(0, 100, 20)]
    )
    publisher.close()
    with running_worker(settings):
        wait_until(lambda: _stored(migrated_db) == 100, what="100 frames kept while offline")
    assert _stored(migrated_db) == 100
