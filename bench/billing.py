"""Billing benchmark: settle N contracts with three months of daily readings.

Builds a private database on the server of ``METERFLOW_BENCH_ADMIN_URL`` (default: the
local PostgreSQL), fills it with ``generate_series`` (not timed), then measures in child
processes, each with its own wall time and peak RSS:

- the bare SQL aggregate computing every contract's October consumption, fetched to Python;
- ``meterflow billing run --period 2026-10``: consumption, invoices, ledger and outbox.

Run: ``python -m bench.billing [--contracts 100000] [--keep | --reuse NAME]``. With
``--keep`` the built database is kept unbilled and the figures are measured on a copy of it;
``--reuse NAME`` skips the build and measures on a fresh copy of that kept database, so every
measurement starts from the same state.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

ADMIN_URL = os.environ.get(
    "METERFLOW_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

BARE_AGGREGATE = """
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    rows = conn.execute(
        "SELECT c.contract_id, max(r.value) - min(r.value) FROM contracts c"
        " JOIN meter_installations m USING (service_point_id)"
        " JOIN readings r ON r.meter_id = m.meter_id"
        " WHERE r.quantity = 'volume' AND r.function = 'instantaneous' AND r.storage = 0"
        " AND r.tariff = 0 AND r.subunit = 0"
        " AND r.read_at >= '2026-09-28' AND r.read_at < '2026-11-04'"
        " GROUP BY c.contract_id").fetchall()
print(len(rows))
"""


@dataclass(frozen=True)
class Measured:
    """Wall time, CPU time (user + system) and peak resident memory of one child process."""

    seconds: float
    cpu_seconds: float
    peak_mib: float
    output: str


def measure(argv: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``argv`` as a child; return its wall time and peak RSS."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert child.stdout is not None
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{argv[:4]} failed with status {status}: {output}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(seconds, cpu, usage.ru_maxrss / 1024, output.strip())


def build(url: str, contracts: int) -> float:
    """Migrate and fill the benchmark database; return the seconds it took."""
    from billing_engine.demo import seed_contracts
    from schemas.migrate import migrate

    started = time.perf_counter()
    migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(
            "INSERT INTO meters (meter_id, manufacturer, serial, status)"
            " SELECT 'B' || lpad(g::text, 7, '0'), 'BEN', lpad(g::text, 8, '0'), 'active'"
            " FROM generate_series(1, %s) g",
            (contracts,),
        )
        # Loading without the indexes and building them once afterwards is several times
        # faster than maintaining them row by row; each day's instant is computed once.
        conn.execute("DROP INDEX readings_meter_read_at")
        conn.execute("ALTER TABLE readings DROP CONSTRAINT readings_pkey")
        conn.execute(
            "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity,"
            " function, unit, value, received_at)"
            " SELECT 'B' || lpad(g::text, 7, '0'), days.ts, 0, 0, 0, 'volume',"
            "  'instantaneous', 'm3',"
            "  ((g::bigint * 1000 + days.n * (50 + g %% 400))::numeric / 1000)::numeric(14, 3),"
            "  days.ts"
            " FROM (SELECT (d::timestamp + interval '2 hours') AT TIME ZONE 'Europe/Warsaw'"
            "         AS ts, d::date - date '2026-08-01' AS n"
            "       FROM generate_series(date '2026-08-01', date '2026-11-02', interval '1 day')"
            "       d) days"
            " CROSS JOIN generate_series(1, %s) g",
            (contracts,),
        )
        conn.execute(
            "ALTER TABLE readings ADD PRIMARY KEY"
            " (meter_id, quantity, function, storage, tariff, subunit, read_at)"
        )
        conn.execute("CREATE INDEX readings_meter_read_at ON readings (meter_id, read_at)")
        seed_contracts(conn, installed_on=None)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def copy_database(admin: psycopg.Connection[Any], source: str, name: str) -> None:
    """Create ``name`` as a file copy of ``source`` (a checkpoint, then no WAL to replay)."""
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}" STRATEGY FILE_COPY')


def drop_database(name: str) -> None:
    """Drop ``name``, closing any connection left to it."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_figures(url: str) -> None:
    """Measure the bare aggregate and the billing run against ``url``; print the figures."""
    bare = measure([sys.executable, "-c", BARE_AGGREGATE, url])
    env = dict(os.environ, METERFLOW_DATABASE_URL=url, METERFLOW_LOG_LEVEL="WARNING")
    run = measure([sys.executable, "-m", "meterflow", "billing", "run", "--period", "2026-10"], env)
    print(
        f"bare SQL aggregate: {bare.seconds:.2f} s (cpu {bare.cpu_seconds:.2f} s),"
        f" peak {bare.peak_mib:.0f} MiB ({bare.output} contracts)"
    )
    print(
        f"billing run:        {run.seconds:.2f} s (cpu {run.cpu_seconds:.2f} s),"
        f" peak {run.peak_mib:.0f} MiB"
    )
    print(f"  {run.output}")
    print(f"ratio run / bare: {run.seconds / bare.seconds:.2f}x")


def main() -> None:
    """Build (or reuse), measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument(
        "--keep", action="store_true", help="keep the built database, unbilled, for --reuse"
    )
    parser.add_argument("--reuse", metavar="NAME", help="measure on a copy of a kept database")
    args = parser.parse_args()
    base = ADMIN_URL.rsplit("/", 1)[0]
    name = f"mf_bench_billing_{uuid.uuid4().hex[:8]}"
    kept = args.reuse
    if kept is None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            built = build(f"{base}/{name}", args.contracts)
        except BaseException:
            drop_database(name)
            raise
        print(f"built {args.contracts} contracts, ~{args.contracts * 94} readings in {built:.1f} s")
        if not args.keep:
            try:
                run_figures(f"{base}/{name}")
            finally:
                drop_database(name)
            return
        kept, name = name, f"{name}_run"
        print(f"kept unbilled as {kept}; measure again with --reuse {kept}")
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        copy_database(admin, kept, name)
    try:
        run_figures(f"{base}/{name}")
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
