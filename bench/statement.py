"""Statement import benchmark: a 100,000-line MT940 statement against 100,000 customers.

Builds a private database on the server of ``METERFLOW_BENCH_ADMIN_URL`` (default: the
local PostgreSQL) with N customers, each with a virtual account and one open charge (not
timed), writes an MT940 file of N credits (one in twenty to an unknown account), then
measures in the same run:

- a bare ``COPY`` of the same N lines (already parsed) into a plain table: the floor;
- ``read_statements`` + ``import_statements``: parse, match, book, settle FIFO, record;
- the same file imported again (everything a duplicate, nothing booked).

Run: ``python -m bench.statement [--lines 100000] [--keep]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg

from billing_engine.bank.iban import virtual_iban
from billing_engine.bank.importer import ensure_virtual_accounts, import_statements, read_statements
from schemas.migrate import migrate

ADMIN_URL = os.environ.get(
    "METERFLOW_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SORT_CODE = "10901014"
PREFIX = "7000"
OUR_ACCOUNT = "PL61109010140000071219812874"
UNKNOWN = "PL10105000997603123456789123"


def build(url: str, customers: int) -> float:
    """Customers, virtual accounts and one open charge each; return seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO customers (customer_no, kind, name)"
            " SELECT 'B-' || n, 'person', 'Customer ' || n FROM generate_series(1, %s) n",
            (customers,),
        )
        conn.execute(
            "INSERT INTO ledger_entries (customer_id, kind, amount_gr, booked_on, due_date)"
            " SELECT customer_id, 'charge', 10000, '2026-01-15', '2026-01-29' FROM customers"
        )
        ensure_virtual_accounts(conn, SORT_CODE, PREFIX)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def write_mt940(path: Path, ids: list[int]) -> None:
    """An MT940 statement with one credit per customer id (every 20th to an unknown account)."""
    lines = [":20:BENCH/1", f":25:/{OUR_ACCOUNT}", ":28C:00001/00001", ":60F:C260201PLN0,00"]
    for n, customer_id in enumerate(ids):
        account = UNKNOWN if n % 20 == 19 else virtual_iban(SORT_CODE, PREFIX, customer_id)
        amount = 5000 + n % 10000
        lines.append(f":61:2602020202C{amount // 100},{amount % 100:02d}N240NONREF//B{n}")
        lines.append(f":86:240^00PRZELEW^20Zaplata {n}^32KLIENT {customer_id}^38{account}")
    lines.append(":62F:C260202PLN0,00")
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


def bare_copy(url: str, path: Path) -> float:
    """Seconds to COPY the file's parsed lines into a plain table (parsing not timed)."""
    [statement] = read_statements(path, "mt940")
    rows = [
        (statement.dedup_key(i), i.booked_on, i.amount_gr, i.currency, i.accounts[0], i.title)
        for i in statement.items
    ]
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE bare_copy (dedup_key text, booked_on date, amount_gr bigint,"
            " currency text, account text, title text)"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy("COPY bare_copy FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started


def timed_import(url: str, path: Path) -> tuple[float, str]:
    """Seconds to read, parse, match, book and record the statement; and the counts."""
    started = time.perf_counter()
    statements = read_statements(path, "mt940")
    with psycopg.connect(url) as conn:
        result = import_statements(conn, statements, SORT_CODE, PREFIX, source=path.name)
    seconds = time.perf_counter() - started
    return seconds, (
        f"{result.booked} booked, {result.unmatched} unmatched, {result.duplicates} duplicates"
    )


def main() -> None:
    """Build, measure and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="customers = lines")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    name = f"mf_bench_statement_{uuid.uuid4().hex[:8]}"
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        migrate(url)
        built = build(url, args.lines)
        with psycopg.connect(url) as conn:
            ids = [int(r[0]) for r in conn.execute("SELECT customer_id FROM customers ORDER BY 1")]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.sta"
            write_mt940(path, ids)
            size_mib = path.stat().st_size / 2**20
            print(f"built {args.lines} customers in {built:.1f} s; statement {size_mib:.1f} MiB")
            floor = bare_copy(url, path)
            first, counts = timed_import(url, path)
            again, counts_again = timed_import(url, path)
        print(f"bare COPY of {args.lines} lines: {floor:.2f} s")
        print(f"import:                  {first:.2f} s  ({counts})")
        print(f"re-import:               {again:.2f} s  ({counts_again})")
        print(
            f"ratio import / bare COPY: {first / floor:.1f}x; goal under 30 s: "
            f"{'met' if first < 30 else 'missed'} on {date.today()}"
        )
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


if __name__ == "__main__":
    main()
