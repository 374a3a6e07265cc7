"""Nothing is lost or doubled when the worker dies, the broker restarts or the database stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.migrate import migrate
from tests.factories import T0, envelope, frames_topic, wmbus_frame
from tests.ingest.harness import (
    BROKER_LIMITS,
    Publisher,
    ingest_settings,
    running_worker,
    scalar,
    wait_until,
)
from tests.services import PrivateMosquitto, PrivatePostgres

ENVELOPE_FRAMES = 20


def _messages(gateway: str, first_meter: int, count: int) -> list[tuple[str, bytes]]:
    """``count`` unencrypted frames of distinct meters, in envelopes of 20."""
    frames = [
        wmbus_frame(first_meter + i, Decimal(i) / 1000, plain=True, at=T0) for i in range(count)
    ]
    return [
        (frames_topic(gateway), envelope(gateway, frames[i : i + ENVELOPE_FRAMES]))
        for i in range(0, count, ENVELOPE_FRAMES)
    ]


def _stored(database_url: str, gateway: str) -> tuple[int, int]:
    frames = scalar(
        database_url, "SELECT count(*) FROM raw_frames WHERE gateway_id = %s", (gateway,)
    )
    readings = scalar(
        database_url, "SELECT count(*) FROM readings WHERE gateway_id = %s", (gateway,)
    )
    assert isinstance(frames, int) and isinstance(readings, int)
    return frames, readings


@contextmanager
def worker_process(
    env: dict[str, str], log: Path, nth: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m meterflow ingest``; wait for the ``nth`` subscription in ``log``."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "meterflow", "ingest"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while log.read_text().count("subscribed to") < nth:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(20)


@pytest.mark.parametrize("shared", [False, True], ids=["plain", "shared"])
def test_kill_9_mid_stream_loses_and_doubles_nothing(
    migrated_db: str, broker: PrivateMosquitto, publisher: Publisher, tmp_path: Path, shared: bool
) -> None:
    gateway = f"gw-kill-{'s' if shared else 'p'}"
    count = 3000
    messages = _messages(gateway, 100_000 if shared else 200_000, count)
    env = {
        "METERFLOW_DATABASE_URL": migrated_db,
        "METERFLOW_MQTT_URL": broker.url,
        "METERFLOW_INGEST_CLIENT_ID": f"ingest-kill-{shared}",
        "METERFLOW_INGEST_SHARED": str(shared).lower(),
        "METERFLOW_INGEST_BATCH_FRAMES": "200",
        "METERFLOW_INGEST_BATCH_MS": "20",
        "METERFLOW_METRICS_PORT": "0",
    }
    log = tmp_path / "ingest.log"
    with worker_process(env, log) as first:
        sender = threading.Thread(target=publisher.publish, args=(messages,))
        sender.start()
        wait_until(lambda: _stored(migrated_db, gateway)[0] >= count // 5, what="first frames")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        sender.join(60)
    assert _stored(migrated_db, gateway)[0] < count, "killed too late to prove anything"
    with worker_process(env, log, nth=2):
        wait_until(lambda: _stored(migrated_db, gateway)[0] == count, 60, "every frame")
        time.sleep(0.5)
    assert _stored(migrated_db, gateway) == (count, count)


def test_broker_restart_loses_nothing(migrated_db: str) -> None:
    gateway = "gw-broker-restart"
    count = 2000
    messages = _messages(gateway, 300_000, count)
    half = len(messages) // 2
    with PrivateMosquitto(BROKER_LIMITS) as server:
        with running_worker(ingest_settings(migrated_db, server.url, ingest_batch_frames=200)):
            first = Publisher(server.url)
            first.publish(messages[:half])
            first.close()
            server.stop()
            server.start()
            second = Publisher(server.url)
            second.publish(messages[half:])
            second.close()
            wait_until(lambda: _stored(migrated_db, gateway)[0] == count, 60, "every frame")
    assert _stored(migrated_db, gateway) == (count, count)


@pytest.mark.slow
def test_database_outage_of_30_s_under_load_loses_nothing(broker: PrivateMosquitto) -> None:
    gateway = "gw-pg-outage"
    count = 2000
    messages = _messages(gateway, 400_000, count)
    half = len(messages) // 2
    with PrivatePostgres() as postgres:
        migrate(postgres.url)
        settings = ingest_settings(postgres.url, broker.url, ingest_batch_frames=200)
        with running_worker(settings) as worker:
            pub = Publisher(broker.url)
            pub.publish(messages[:half])
            wait_until(lambda: _stored(postgres.url, gateway)[0] == count // 2, 30, "first half")
            postgres.stop("fast")
            pub.publish(messages[half:])
            time.sleep(30)
            errors = worker.metrics.store_errors._value.get()
            postgres.start()
            wait_until(lambda: _stored(postgres.url, gateway)[0] == count, 60, "every frame")
            pub.close()
        assert errors >= 1
        assert _stored(postgres.url, gateway) == (count, count)
