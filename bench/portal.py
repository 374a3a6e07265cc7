"""Portal pages under load: dashboard, readings, meter history and invoices vs a trivial
endpoint of the same app on the same server, in one run.

``python -m bench.portal [--customers 100000] [--days 365] [--users 50] [--seconds 15]
[--think-ms 1000] [--paced-seconds 30]``

1. Starts a private PostgreSQL cluster (``tests.services.PrivatePostgres``; shared_buffers
   1 GB, fsync off, WAL minimal: a throwaway store) unless ``--admin-url`` names a server
   to make a database on.
2. Generates the store with set-based SQL only (generate_series, two connections in
   parallel, one month partition at a time, rows in index order): N customers with a
   meter, contract and premises each, a year of daily readings per meter, twelve monthly
   invoices per customer with their ledger charges and payments, announcements (some for
   streets), then ANALYZE.
3. Serves the portal with gunicorn and ``deploy/gunicorn.conf.py`` on a free port, logs
   ``--users`` customers in through the login form, and has wrk (one thread, ``--users``
   keep-alive connections, each request with the next user's session cookie) load one page
   at a time: ``/healthz`` (the trivial endpoint: same app, session and middleware), then
   the customer pages, in two modes: saturation (no think time: throughput and the
   dashboard's share of the trivial one) and paced users (each of the ``--users``
   connections waits ``--think-ms`` +-50 % between page loads, as a person reading a page
   does: the latency a customer sees at that many concurrent users).
4. Prints requests/s, p50 and p99 per page and mode, each page's throughput as a share of
   the trivial one's, and the CPU per request of gunicorn, PostgreSQL and wrk. Goals: the
   dashboard >= 1/4 of the trivial throughput (saturation) and p99 < 150 ms at 50 users
   (judged by the paced users; under saturation the mean latency is users / throughput).

wrk comes from Debian: ``sudo apt-get install -y wrk``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from billing_engine.demo import seed_contracts
from portal.passwords import Hasher
from schemas.migrate import migrate
from tests.services import PrivatePostgres, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Kran-Wodny-2026!"
PAGES = (
    ("trivial", "/healthz"),
    ("dashboard", "/ebok/"),
    ("readings", "/ebok/readings"),
    ("meter", "/ebok/meters/{meter}"),
    ("invoices", "/ebok/invoices"),
)
CLUSTER_SETTINGS = {
    "shared_buffers": "1GB",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "20GB",
    "checkpoint_timeout": "1h",
    "maintenance_work_mem": "256MB",
    # The store is analysed once after loading; vacuum workers would only compete with it.
    "autovacuum": "off",
}
_TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


@contextmanager
def private_cluster() -> Iterator[str]:
    """A tuned private PostgreSQL cluster for the run; yields its admin URL."""
    with PrivatePostgres() as cluster:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            for name, value in CLUSTER_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        cluster.stop()
        cluster.start()
        yield cluster.url


def _months(first: date, last: date) -> list[date]:
    month = first.replace(day=1)
    out = []
    while month <= last:
        out.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def _readings_of_month(url: str, month: date, first: datetime, last: datetime) -> None:
    """Load one month's partition: every meter's daily reading, day after day (the order
    ingest writes them), into a table made in the same transaction (no WAL at wal_level
    minimal), index it by sorting, then attach it (its CHECK spares the attach a scan)."""
    low = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = (month + timedelta(days=32)).replace(day=1)
    high = datetime(following.year, following.month, 1, tzinfo=UTC)
    names = {
        "table": sql.Identifier(f"readings_{month:%Y_%m}"),
        "check": sql.Identifier(f"readings_{month:%Y_%m}_month"),
        "low": sql.Literal(low),
        "high": sql.Literal(high),
    }
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        # The migration made empty partitions around today; those are replaced.
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {table}").format(**names))
        conn.execute(
            sql.SQL("CREATE TABLE {table} (LIKE readings INCLUDING DEFAULTS)").format(**names)
        )
        conn.execute(
            sql.SQL(_READINGS).format(**names),
            {"first": first, "from": max(first, low), "to": min(last, high - timedelta(seconds=1))},
        )
        for statement in _INDEX_AND_ATTACH:
            conn.execute(sql.SQL(statement).format(**names))
            conn.commit()


def generate(url: str, customers: int, days: int, users: int) -> tuple[list[str], float]:
    """Fill the store; return the benchmark users' e-mails and the readings' load seconds."""
    today = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=days - 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO meters (meter_id, manufacturer, serial, status)"
            " SELECT 'BEN' || lpad(m::text, 8, '0'), 'BEN', m::text, 'active'"
            " FROM generate_series(1, %s) AS m",
            (customers,),
        )
        seed_contracts(conn, installed_on=first.date())
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        months = _months(first.date(), today.date())
        list(pool.map(lambda m: _readings_of_month(url, m, first, today), months))
    readings_s = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT ensure_time_partitions(2)")
    password_hash = Hasher("default").hash(PASSWORD)
    with psycopg.connect(url, autocommit=True) as conn:
        # Consistent by construction: the bulk rows skip the per-row foreign key triggers.
        conn.execute("SET session_replication_role = replica")
        for statement in (_INVOICES, _CHARGES, _PAYMENTS, _ANNOUNCEMENTS):
            conn.execute(statement)
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute(_ACCOUNTS, (password_hash, users))
        conn.execute("ANALYZE")
        rows = conn.execute("SELECT email FROM portal_accounts ORDER BY account_id").fetchall()
    return [r[0] for r in rows], readings_s


def login(base: str, email: str) -> tuple[str, str]:
    """Log ``email`` in through the form; return its Cookie header value and its meter."""
    with httpx.Client(base_url=base, timeout=30) as client:
        token = _TOKEN.search(client.get("/login").text)
        assert token, "no CSRF token on /login"
        answer = client.post(
            "/login", data={"csrf_token": token.group(1), "email": email, "password": PASSWORD}
        )
        assert answer.status_code == 302, f"login of {email} failed: {answer.status_code}"
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        meter = re.search(r"BEN\d{8}", client.get("/ebok/").text)
        assert meter, f"{email} sees no meter on the dashboard"
        return cookie, meter.group(0)


def _check_pages(base: str, users: list[tuple[str, str]]) -> None:
    """Every page answers 200 for every user (wrk counts a redirect to login as success)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        for cookie, meter in users:
            for _, path in PAGES:
                answer = client.get(path.format(meter=meter), headers={"Cookie": cookie})
                assert answer.status_code == 200, f"{path}: HTTP {answer.status_code}"


def _lua(users: list[tuple[str, str]], path: str, think_ms: int) -> str:
    entries = ",\n".join(
        f"  {{{json.dumps(cookie)}, {json.dumps(path.format(meter=meter))}}}"
        for cookie, meter in users
    )
    script = _WRK_SCRIPT.replace("USERS", entries)
    return script + (_WRK_THINK.replace("THINK_MS", str(think_ms)) if think_ms else "")


def run_wrk(
    base: str, users: list[tuple[str, str]], path: str, seconds: float, think_ms: int = 0
) -> dict[str, float]:
    """Load ``path`` with wrk (each connection pausing about ``think_ms`` between requests);
    return requests/s, p50/p99 ms, errors and wrk's CPU seconds."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(users, path, think_ms))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            ["wrk", "-t1", f"-c{len(users)}", f"-d{int(seconds)}s", "-s", script.name, base],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        os.unlink(script.name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in done.stdout.splitlines() if x.startswith("JSON "))
    figures: dict[str, float] = json.loads(line[5:])
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return figures


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used by ``root``, its live children and the children it has reaped
    (gunicorn's recycled workers, PostgreSQL's ended backends)."""
    ticks = sum(int(x) for x in _stat(root)[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == root:
                ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _postmaster(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(_stat(conn.info.backend_pid)[1])


def serve(url: str, data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """Start gunicorn with the deployment's configuration on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "METERFLOW_DATABASE_URL": url,
        "METERFLOW_DATA_DIR": str(data_dir),
        "METERFLOW_SECRET_KEY": uuid.uuid4().hex,
        "METERFLOW_PORTAL_COOKIE_SECURE": "false",
        "METERFLOW_PORTAL_BIND": f"127.0.0.1:{port}",
        "METERFLOW_PORTAL_WORKERS": str(workers),
        "METERFLOW_LOG_LEVEL": "WARNING",
    }
    log = open(data_dir / "gunicorn.log", "wb")  # noqa: SIM115  (closed with the process)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "portal:create_app()",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, timeout=30)
    return process, f"http://127.0.0.1:{port}"


def _load(
    base: str,
    users: list[tuple[str, str]],
    path: str,
    seconds: float,
    think_ms: int,
    roots: tuple[int, int],
) -> dict[str, float]:
    """One wrk run of ``path`` with the CPU the app, PostgreSQL and the machine spent in it."""
    busy = _busy_seconds()
    used = [tree_cpu_seconds(root) for root in roots]
    figures = run_wrk(base, users, path, seconds, think_ms)
    figures["machine_busy_s"] = _busy_seconds() - busy
    after = [tree_cpu_seconds(root) for root in roots]
    figures["app_cpu_s"] = after[0] - used[0]
    figures["db_cpu_s"] = after[1] - used[1]
    figures["seconds"] = seconds
    return figures


def measure(
    url: str, emails: list[str], seconds: float, workers: int, think_ms: int, paced_s: float
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Serve the portal, log the users in and load every page in turn: saturated, then paced
    (``think_ms`` between a user's page loads; skipped when 0)."""
    saturated: dict[str, dict[str, float]] = {}
    paced: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as data_dir:
        server, base = serve(url, Path(data_dir), workers)
        try:
            users = [login(base, email) for email in emails]
            _check_pages(base, users)
            roots = (server.pid, _postmaster(url))
            for name, path in PAGES:
                run_wrk(base, users, path, 2)  # warm up
                saturated[name] = _load(base, users, path, seconds, 0, roots)
            for name, path in PAGES if think_ms else ():
                paced[name] = _load(base, users, path, paced_s, think_ms, roots)
        finally:
            server.terminate()
            server.wait(20)
    return saturated, paced


def report(results: dict[str, dict[str, float]], trivial: float) -> None:
    """Print one mode's figures (throughput shares against ``trivial`` req/s)."""
    cores = os.cpu_count() or 1
    print(
        "page          req/s  p50 ms  p99 ms  x trivial  errors | CPU ms per request:"
        " gunicorn  postgres  wrk | wrk share  machine busy"
    )
    for page, r in results.items():
        per = 1000 / r["requests"]
        print(
            f"{page:10} {r['rps']:8.1f} {r['p50_us'] / 1000:7.1f} {r['p99_us'] / 1000:7.1f}"
            f" {r['rps'] / trivial:10.2f} {int(r['errors']):7d} |"
            f" {r['app_cpu_s'] * per:28.2f} {r['db_cpu_s'] * per:9.2f}"
            f" {r['wrk_cpu_s'] * per:4.2f} |"
            f" {100 * r['wrk_cpu_s'] / (r['seconds'] * cores):8.1f}%"
            f" {100 * r['machine_busy_s'] / (r['seconds'] * cores):12.0f}%"
        )


def verdict(saturated: dict[str, dict[str, float]], paced: dict[str, dict[str, float]]) -> bool:
    """Print and return whether both goals are met (p99 judged by the paced users)."""
    share = saturated["dashboard"]["rps"] / saturated["trivial"]["rps"]
    print(f"dashboard share of the trivial throughput (saturated): {share:.2f} (goal >= 0.25)")
    ok = share >= 0.25
    if paced:
        worst = max(r["p99_us"] for r in paced.values()) / 1000
        errors = sum(int(r["errors"]) for r in paced.values())
        print(f"worst p99 of paced users: {worst:.0f} ms, {errors} errors (goal < 150 ms)")
        ok = ok and worst < 150 and not errors
    print("goals:", "met" if ok else "NOT met")
    return ok


def main() -> None:
    """Generate, serve, load, print."""
    parser = argparse.ArgumentParser(prog="python -m bench.portal")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--think-ms", type=int, default=1000, help="paced users' pause between pages; 0: none"
    )
    parser.add_argument("--paced-seconds", type=float, default=30)
    parser.add_argument("--admin-url", help="make the database on this server instead")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit(
            "bench.portal needs wrk (the HTTP load generator), which is not on PATH;"
            " install it from Debian: sudo apt-get install -y wrk"
        )
    with _admin(args.admin_url) as admin_url:
        name = f"mf_bench_portal_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        try:
            started = time.perf_counter()
            migrate(url)
            emails, readings_s = generate(url, args.customers, args.days, args.users)
            print(
                f"generated {args.customers} customers x {args.days} days of readings"
                f" ({args.customers * args.days / 1e6:.1f} M rows in {readings_s:.0f} s),"
                f" 12 invoices each, {len(emails)} users: {time.perf_counter() - started:.0f} s"
            )
            saturated, paced = measure(
                url, emails, args.seconds, args.workers, args.think_ms, args.paced_seconds
            )
            print(f"saturation: {args.users} users, no think time")
            report(saturated, saturated["trivial"]["rps"])
            if paced:
                print(f"paced: {args.users} users, {args.think_ms} ms +-50 % between pages")
                report(paced, paced["trivial"]["rps"])
            verdict(saturated, paced)
        finally:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _admin(admin_url: str | None) -> Iterator[str]:
    if admin_url:
        yield admin_url
    else:
        with private_cluster() as url:
            yield url


# One month of daily readings: day after day, every meter each day.
_READINGS = """
INSERT INTO {table} (meter_id, read_at, storage, tariff, subunit, quantity, function, unit,
                      value, received_at, gateway_id)
SELECT 'BEN' || lpad(m::text, 8, '0'), d, 0, 0, 0, 'volume', 'instantaneous', 'm3',
       round(10 + (extract(epoch FROM d - %(first)s)::bigint / 86400) * (100 + m %% 7 * 30)
             / 1000.0, 3),
       d + interval '40 seconds', 'gw-' || (m %% 50)
FROM generate_series(%(from)s::timestamptz, %(to)s::timestamptz, interval '1 day') AS d
CROSS JOIN generate_series(1, (SELECT count(*) FROM meters)::int) AS m
"""
_INDEX_AND_ATTACH = (
    "ALTER TABLE {table} ADD PRIMARY KEY"
    " (meter_id, quantity, function, storage, tariff, subunit, read_at)",
    "CREATE INDEX ON {table} (meter_id, read_at)",
    "ALTER TABLE {table} ADD CONSTRAINT {check} CHECK (read_at >= {low} AND read_at < {high})",
    "ALTER TABLE readings ATTACH PARTITION {table} FOR VALUES FROM ({low}) TO ({high})",
)
_ACCOUNTS = """
INSERT INTO portal_accounts (email, password_hash, customer_id, status, created_by,
                             email_verified_at, activated_at)
SELECT 'bench' || customer_id || '@example.com', %s, customer_id, 'active', 'staff', now(), now()
FROM customers ORDER BY customer_id LIMIT %s
"""
# Twelve monthly invoices per contract, the newest issued at the start of this month.
_INVOICES = """
INSERT INTO invoices (contract_id, customer_id, status, series, year, number, period_start,
                      period_end, issue_date, due_date, net_gr, vat_gr, gross_gr, issued_at)
SELECT k.contract_id, k.customer_id, 'issued', 'FB',
       extract(year FROM p.issued)::int,
       row_number() OVER (PARTITION BY extract(year FROM p.issued) ORDER BY p.issued,
                          k.contract_id),
       p.issued - interval '1 month', p.issued - interval '1 day', p.issued,
       p.issued + interval '14 days',
       4000 + k.contract_id % 50 * 100, (4000 + k.contract_id % 50 * 100) * 8 / 100,
       (4000 + k.contract_id % 50 * 100) * 108 / 100, p.issued
FROM contracts k
CROSS JOIN LATERAL (SELECT (date_trunc('month', now()) - n * interval '1 month')::date AS issued
                    FROM generate_series(0, 11) AS n) AS p
"""
_CHARGES = """
INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date, invoice_id)
SELECT customer_id, 'charge', gross_gr, issue_date, due_date, invoice_id FROM invoices
"""
# Everything is paid a few days before it is due, except this month's invoice and every
# tenth customer's last two (overdue debt on their dashboard).
_PAYMENTS = """
INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, reference)
SELECT customer_id, 'payment', -gross_gr, due_date - 3, 'BENCH-' || invoice_id FROM invoices
WHERE issue_date < date_trunc('month', now())::date
  AND NOT (customer_id % 10 = 0 AND issue_date >= date_trunc('month', now())::date - 62)
"""
_ANNOUNCEMENTS = """
WITH a AS (
    INSERT INTO announcements (kind, title, body, starts_at, ends_at)
    SELECT k, t, 'Prace na sieci wodociągowej.', now() + n * interval '1 day',
           now() + n * interval '1 day' + interval '8 hours'
    FROM (VALUES (1, 'outage', 'Przerwa w dostawie wody'), (2, 'works', 'Płukanie sieci'),
                 (3, 'info', 'Nowa taryfa')) AS v(n, k, t)
    RETURNING announcement_id, kind
)
INSERT INTO announcement_streets (announcement_id, street, city)
SELECT announcement_id, street, '' FROM a,
       (VALUES ('ul. Źródlana 1'), ('ul. Źródlana 2'), ('ul. Lipowa')) AS s(street)
WHERE a.kind <> 'info'
"""

_WRK_SCRIPT = """
local users = {
USERS
}
local i = 0
request = function()
  i = i % #users + 1
  return wrk.format("GET", users[i][2], {["Cookie"] = users[i][1]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""
# A person's pause between page loads, spread +-50 % so the users do not march in step.
# wrk also delays each connection's first request: those arrivals are spread evenly over
# one pause (users arriving one by one, not all in the same millisecond; gunicorn's gthread
# workers would otherwise hold a thread per new connection until its first request comes).
_WRK_THINK = """
math.randomseed(os.time())
local arrived = 0
delay = function()
  if arrived < #users then
    arrived = arrived + 1
    return math.floor(arrived * THINK_MS / #users)
  end
  return math.floor(THINK_MS * (0.5 + math.random()))
end
"""

if __name__ == "__main__":
    main()
