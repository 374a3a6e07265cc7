"""Portal pages under load: dashboard, readings and invoices vs a trivial endpoint, one run.

``python -m bench.portal [--customers N] [--users 50] [--seconds 15]`` makes a fresh
database on METERFLOW_BENCH_ADMIN_URL's server, generates N customers (meters, contracts)
with a year of daily readings (SQL generate_series, two connections in parallel), twelve
invoices each for the benchmark users, starts gunicorn with the portal on a free port, logs
``--users`` customers in and has each load one page in a loop (asyncio + httpx), page after
page: the trivial endpoint (the stylesheet, through the same app, session and middleware)
first, then the dashboard, readings and invoices. Prints requests/s, p50 and p99 per page
and each page's throughput as a share of the trivial one's. Goal: p99 < 150 ms at 50 users
and the dashboard >= 1/4 of the trivial throughput. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from billing_engine.demo import seed_contracts
from portal.passwords import Hasher
from schemas.migrate import migrate
from tests.services import free_port, wait_for_port

ADMIN_URL = os.environ.get(
    "METERFLOW_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "Kran-Wodny-2026!"
PAGES = (
    ("trivial", "/static/portal.css"),
    ("dashboard", "/ebok/"),
    ("readings", "/ebok/readings"),
    ("invoices", "/ebok/invoices"),
)
_TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def _readings(url: str, first: int, last: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity,"
            " function, unit, value, received_at, gateway_id)"
            " SELECT 'BEN' || lpad(m::text, 8, '0'), d, 0, 0, 0, 'volume', 'instantaneous',"
            " 'm3', round(10 + (d::date - date '2025-01-01') * (0.1 + m %% 7 * 0.03), 3), d,"
            " 'gw-' || (m %% 50)"
            " FROM generate_series(%s::int, %s::int) AS m,"
            " generate_series(now() - interval '365 days', now(), interval '1 day') AS d",
            (first, last),
        )


def generate(url: str, customers: int, users: int) -> list[str]:
    """Fill the store; return the login e-mails of ``users`` customers with invoices."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO meters (meter_id, manufacturer, serial, status)"
            " SELECT 'BEN' || lpad(m::text, 8, '0'), 'BEN', m::text, 'active'"
            " FROM generate_series(1, %s) AS m",
            (customers,),
        )
    half = customers // 2
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda r: _readings(url, *r), [(1, half), (half + 1, customers)]))
    with psycopg.connect(url) as conn:
        seed_contracts(conn)
        conn.commit()
    password_hash = Hasher("default").hash(PASSWORD)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_ACCOUNTS, (password_hash, users))
        conn.execute(_INVOICES)
        conn.execute(_CHARGES)
        conn.execute("ANALYZE")
        rows = conn.execute("SELECT email FROM portal_accounts ORDER BY account_id").fetchall()
    return [r[0] for r in rows]


async def _login(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/login")
    match = _TOKEN.search(page.text)
    assert match, "no CSRF token on /login"
    answer = await client.post(
        "/login", data={"csrf_token": match.group(1), "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 302, f"login of {email} failed: {answer.status_code}"


async def _user(client: httpx.AsyncClient, path: str, until: float, times: list[float]) -> None:
    while time.perf_counter() < until:
        start = time.perf_counter()
        answer = await client.get(path)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {answer.status_code}")
        times.append(time.perf_counter() - start)


async def measure(
    base: str, emails: list[str], seconds: float
) -> dict[str, tuple[float, float, float]]:
    """Per page: requests/s, p50 ms, p99 ms with every user loading that page at once."""
    limits = httpx.Limits(max_connections=1)
    clients = [httpx.AsyncClient(base_url=base, limits=limits, timeout=30) for _ in emails]
    await asyncio.gather(*(_login(c, e) for c, e in zip(clients, emails, strict=True)))
    results: dict[str, tuple[float, float, float]] = {}
    for name, path in PAGES:
        await asyncio.gather(*(c.get(path) for c in clients))  # warm up
        times: list[float] = []
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(*(_user(c, path, until, times) for c in clients))
        elapsed = time.perf_counter() - start
        cuts = statistics.quantiles(times, n=100)
        results[name] = (len(times) / elapsed, cuts[49] * 1000, cuts[98] * 1000)
    await asyncio.gather(*(c.aclose() for c in clients))
    return results


def _serve(url: str, data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "METERFLOW_DATABASE_URL": url,
        "METERFLOW_DATA_DIR": str(data_dir),
        "METERFLOW_SECRET_KEY": uuid.uuid4().hex,
        "METERFLOW_PORTAL_COOKIE_SECURE": "false",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "portal:create_app()",
        ],
        env=env,
    )
    wait_for_port(port, timeout=30)
    return process, f"http://127.0.0.1:{port}"


def main() -> None:
    """Generate, serve, load, print."""
    parser = argparse.ArgumentParser(prog="python -m bench.portal")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    name = f"mf_bench_portal_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    server: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        migrate(url)
        emails = generate(url, args.customers, args.users)
        print(
            f"generated {args.customers} customers, a year of daily readings, "
            f"{len(emails)} users in {time.perf_counter() - started:.0f} s"
        )
        with tempfile.TemporaryDirectory() as data_dir:
            server, base = _serve(url, Path(data_dir), args.workers)
            results = asyncio.run(measure(base, emails, args.seconds))
        trivial = results["trivial"][0]
        for page, (rps, p50, p99) in results.items():
            print(
                f"{page:10} {rps:8.1f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
                f"  {rps / trivial:5.2f} x trivial"
            )
        ok = results["dashboard"][0] >= trivial / 4 and all(r[2] < 150 for r in results.values())
        print("goal (p99 < 150 ms, dashboard >= 1/4 trivial):", "met" if ok else "NOT met")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_ACCOUNTS = """
INSERT INTO portal_accounts (email, password_hash, customer_id, status, created_by,
                             email_verified_at, activated_at)
SELECT 'bench' || customer_id || '@example.com', %s, customer_id, 'active', 'staff', now(), now()
FROM customers ORDER BY customer_id LIMIT %s
"""
_INVOICES = """
INSERT INTO invoices (contract_id, customer_id, status, series, year, number, period_start,
                      period_end, issue_date, due_date, net_gr, vat_gr, gross_gr, issued_at)
SELECT k.contract_id, k.customer_id, 'issued', 'FB', 2026,
       row_number() OVER (), date_trunc('month', now())::date - (n || ' month')::interval,
       (date_trunc('month', now()) - ((n - 1) || ' month')::interval - interval '1 day')::date,
       (date_trunc('month', now()) - ((n - 1) || ' month')::interval)::date,
       (date_trunc('month', now()) - ((n - 1) || ' month')::interval + interval '14 days')::date,
       10000, 800, 10800, now()
FROM contracts k CROSS JOIN generate_series(1, 12) AS n
WHERE k.customer_id IN (SELECT customer_id FROM portal_accounts)
"""
_CHARGES = """
INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date, invoice_id)
SELECT customer_id, 'charge', gross_gr, issue_date, due_date, invoice_id FROM invoices
"""

if __name__ == "__main__":
    main()
