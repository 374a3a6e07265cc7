"""Notify fixtures: a fresh migrated database per test (cloned from a template this package
migrates itself, so no other package's connections block the clone), a real SMTP sink
(aiosmtpd) and a real SMS gateway simulator on loopback, customers and outbox notices.

- ``notify_db``: URL of the test's database.
- ``sink``: ``simulators.smtp_sink.SmtpSink`` on a free port, mails in tmp_path/mail.
- ``gateway``: ``simulators.sms_gateway.SmsGateway`` on a free port.
- ``make_worker(url, sink, gateway, **config)``: a started sender worker (context manager).
- ``add_customer(conn, ...)`` and ``add_notice(conn, kind, customer_id, payload)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from billing_engine.notify.channels import Channel
from billing_engine.notify.rate import RetryPolicy
from billing_engine.notify.sms import SmsapiChannel
from billing_engine.notify.smtp import SmtpChannel, SmtpConfig
from billing_engine.notify.worker import Worker, WorkerConfig
from schemas.migrate import migrate
from simulators.sms_gateway import SmsGateway
from simulators.smtp_sink import SmtpSink
from tests.services import free_port

SECRET = "notify-test-secret"
MAIL_FROM = "MPWiK iBOK <ibok@mpwik.example>"


def _admin(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


@pytest.fixture(scope="session")
def notify_template(database_url: str) -> Iterator[str]:
    """A database with every migration applied, used only as a template."""
    name = f"mf_notify_tpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin(database_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    migrate(database_url.rsplit("/", 1)[0] + "/" + name)
    yield name
    with psycopg.connect(_admin(database_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def notify_db(database_url: str, notify_template: str) -> Iterator[str]:
    """A migrated, empty database of one test."""
    name = f"mf_notify_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin(database_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{notify_template}"')
    yield database_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(_admin(database_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A plain SMTP sink on loopback."""
    with SmtpSink(tmp_path / "mail", port=free_port()) as server:
        yield server


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    """The SMS gateway simulator on loopback."""
    with SmsGateway(port=free_port(), token="test-token") as server:
        yield server


@contextmanager
def make_worker(url: str, sink: SmtpSink, gateway: SmsGateway, **config: Any) -> Iterator[Worker]:
    """A started worker sending to ``sink`` and ``gateway`` (retries without waiting)."""

    def channels() -> list[Channel]:
        return [
            SmtpChannel(SmtpConfig.from_url(f"smtp://127.0.0.1:{sink.port}"), MAIL_FROM),
            SmsapiChannel(gateway.url, "test-token", "MPWiK"),
        ]

    config.setdefault("policy", RetryPolicy(max_attempts=3, base_s=0))
    config.setdefault("links", (SECRET, "http://portal.test"))
    with Worker(url, channels, WorkerConfig(**config)) as worker:
        yield worker


def add_customer(
    conn: psycopg.Connection[Any],
    *,
    email: str | None = "jan@example.pl",
    phone: str | None = "500100200",
    language: str | None = None,
    e_invoice: bool = False,
) -> int:
    """A customer (person) with contact data and, if given, language and e-invoice choice."""
    row = conn.execute(
        "INSERT INTO customers (customer_no, kind, name, email, phone)"
        " VALUES (%s, 'person', 'Jan Kowalski', %s, %s) RETURNING customer_id",
        (f"K{uuid.uuid4().hex[:8]}", email, phone),
    ).fetchone()
    assert row is not None
    customer_id = int(row[0])
    if language is not None or e_invoice:
        conn.execute(
            "INSERT INTO notification_settings (customer_id, language, e_invoice)"
            " VALUES (%s, %s, %s)",
            (customer_id, language or "pl", e_invoice),
        )
    return customer_id


def add_notice(
    conn: psycopg.Connection[Any], kind: str, customer_id: int | None, payload: dict[str, Any]
) -> int:
    """One outbox notice."""
    row = conn.execute(
        "INSERT INTO outbox (kind, customer_id, dedup_key, payload) VALUES (%s, %s, %s, %s)"
        " RETURNING outbox_id",
        (kind, customer_id, f"{kind}:{uuid.uuid4().hex}", Jsonb(payload)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def deliveries(url: str) -> dict[tuple[int, str], tuple[str, int]]:
    """(outbox id, channel) -> (status, attempts) of every delivery."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT outbox_id, channel, status, attempts FROM notify_deliveries"
        ).fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


DEMAND = {"overdue_gr": 12345, "pay_by": "2026-12-01"}
ANNOUNCEMENT = {
    "announcement_kind": "water_quality",
    "title": "Woda niezdatna do picia",
    "body": "Prosimy gotować wodę.",
    "starts_at": "2026-11-21T10:00:00+00:00",
    "ends_at": "2026-11-22T10:00:00+00:00",
}
