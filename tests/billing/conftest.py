"""Billing store fixtures: a fresh migrated database per test, cloned from a template."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import psycopg
import pytest

# Readings of the test fleets run from 2026-07-01 to 2026-10-31; runs happen after that.
NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def billing_template(migrated_db: str) -> Iterator[str]:
    """The name of a migrated template database for the billing tests."""
    base, _ = migrated_db.rsplit("/", 1)
    name = f"mf_bill_tpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_db.rsplit("/", 1)[1]}"')
    yield name
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def billing_db(migrated_db: str, billing_template: str) -> Iterator[str]:
    """A migrated, empty database of one test; returns its URL."""
    base = migrated_db.rsplit("/", 1)[0]
    name = f"mf_bill_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{billing_template}"')
    yield f"{base}/{name}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_fleet(
    url: str,
    meters: int,
    *,
    first_day: date = date(2026, 7, 1),
    last_day: date = date(2026, 10, 31),
    litres_per_day: int = 150,
    billing_period: str = "monthly",
) -> None:
    """``meters`` meters with one reading a day (00:30 Warsaw), then demo contracts for them."""
    from billing_engine.demo import seed_contracts

    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO meters (meter_id, manufacturer, serial, status)"
            " SELECT 'T' || lpad(g::text, 7, '0'), 'TST', lpad(g::text, 8, '0'), 'active'"
            " FROM generate_series(1, %s) g",
            (meters,),
        )
        conn.execute(
            "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity,"
            " function, unit, value, received_at)"
            " SELECT 'T' || lpad(g::text, 7, '0'), ts, 0, 0, 0, 'volume', 'instantaneous', 'm3',"
            "   (100 * g + (d::date - %(first)s::date) * %(lpd)s * (1 + g %% 3) / 1000.0)"
            "   ::numeric(14, 3), ts"
            " FROM generate_series(1, %(n)s) g,"
            " generate_series(%(first)s::date, %(last)s::date, interval '1 day') d,"
            " LATERAL (SELECT (d::timestamp + interval '30 minutes')"
            "          AT TIME ZONE 'Europe/Warsaw' AS ts) t",
            {"n": meters, "first": first_day, "last": last_day, "lpd": litres_per_day},
        )
        seed_contracts(conn, installed_on=first_day, billing_period=billing_period)
        conn.execute(
            "UPDATE meter_installations i SET initial_m3 = 100 * substr(i.meter_id, 2)::int"
        )
        conn.commit()
