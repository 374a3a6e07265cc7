"""Shared fixtures: a fresh PostgreSQL database per test run and the local Mosquitto broker."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest

ADMIN_URL = os.environ.get(
    "METERFLOW_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BROKER_HOST = os.environ.get("METERFLOW_TEST_BROKER_HOST", "127.0.0.1")
BROKER_PORT = int(os.environ.get("METERFLOW_TEST_BROKER_PORT", "1883"))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A new, empty database of this test run, dropped at the end."""
    name = f"mf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_db(database_url: str) -> str:
    """The test run's database with every schema migration applied; returns its URL."""
    from schemas.migrate import migrate

    migrate(database_url)
    return database_url


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """The URL of the real Mosquitto broker on loopback."""
    try:
        socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2).close()
    except OSError as exc:
        pytest.fail(f"no MQTT broker at {BROKER_HOST}:{BROKER_PORT} ({exc}); start mosquitto")
    return f"mqtt://{BROKER_HOST}:{BROKER_PORT}"
