"""Notices delivered per second by the outbox sender, against a bare smtplib loop.

``python -m bench.notify [--notices N] [--workers W]`` makes a fresh database on
METERFLOW_BENCH_ADMIN_URL's server with N outbox notices (payment reminders, e-monit) for
N/10 customers, 10 % of whom also chose SMS, and starts the SMTP sink and the SMS gateway
simulator as their own processes (``meterflow notify sink`` / ``sms-gateway``). Then:

* baseline: one smtplib connection sending the same notices' mails, rendered and built
  beforehand, to the same sink with ``sendmail`` in a loop, nothing else (a sample of up
  to 10,000 messages);
* sender: W ``Worker`` processes from the first claim to the last delivery marked sent,
  routing, rendering, marking 'sending' and 'sent' (one commit per message) included.

Printed: notices/s, e-mails/s and SMS/s of the sender, e-mails/s of the bare loop run before
and after it (the machine is shared and noisy), and the ratio to the better of the two; then
the CPU time per message of each side (less noisy than wall time on a shared machine): the
bare loop's client and the sink, the sender's worker processes and the sink (on Linux; the
sender's PostgreSQL sessions are not counted).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from billing_engine.notify.channels import Channel, Outgoing
from billing_engine.notify.rate import RetryPolicy
from billing_engine.notify.render import Renderer
from billing_engine.notify.sms import SmsapiChannel
from billing_engine.notify.smtp import SmtpChannel, SmtpConfig, build_message
from billing_engine.notify.worker import Worker, WorkerConfig
from schemas.migrate import migrate

ADMIN_URL = os.environ.get(
    "METERFLOW_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SENDER = "MPWiK iBOK <ibok@mpwik.example>"
SMTP_PORT, SMS_PORT = 18725, 18726
SECRET = "bench-secret"

_CUSTOMERS = """
INSERT INTO customers (customer_no, kind, name, email, phone)
SELECT 'B' || g, 'person', 'Klient ' || g, 'klient' || g || '@example.pl',
       '5' || lpad(g::text, 8, '0')
FROM generate_series(1, %(n)s) g
"""
_SMS_CONSENT = """
INSERT INTO notification_preferences (customer_id, kind, by_email, by_sms)
SELECT customer_id, 'payment_reminder', true, true FROM customers WHERE customer_id % 10 = 0
"""
_NOTICES = """
INSERT INTO outbox (kind, customer_id, dedup_key, payload)
SELECT 'payment_reminder', 1 + (g %% %(customers)s), 'bench:' || g,
       jsonb_build_object('invoice_no', 'FV/' || g || '/2026', 'amount_gr', 1000 + g,
                          'due_date', '2026-12-01')
FROM generate_series(1, %(n)s) g
"""


def make_database(notices: int) -> str:
    """A fresh migrated database with the benchmark's customers and notices."""
    name = f"mf_bench_notify_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    migrate(url)
    customers = max(1, notices // 10)
    with psycopg.connect(url) as conn:
        conn.execute(_CUSTOMERS, {"n": customers})
        conn.execute(_SMS_CONSENT)
        conn.execute(_NOTICES, {"n": notices, "customers": customers})
    return url


def drop_database(url: str) -> None:
    """Drop the benchmark's database."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def start_simulators(folder: Path) -> list[subprocess.Popen[bytes]]:
    """The SMTP sink and the SMS gateway, each in its own process."""
    base = [sys.executable, "-m", "meterflow", "notify"]
    procs = [
        subprocess.Popen([*base, "sink", "--dir", str(folder), "--port", str(SMTP_PORT)]),
        subprocess.Popen([*base, "sms-gateway", "--port", str(SMS_PORT)]),
    ]
    deadline = time.monotonic() + 20
    for port in (SMTP_PORT, SMS_PORT):
        while True:
            try:
                __import__("socket").create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    return procs


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user and system) a running process has used so far; None without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds used by this process's children that have ended."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bare_loop(count: int) -> tuple[float, float]:
    """E-mails/s of one smtplib connection sending pre-built reminder mails, and its CPU
    seconds per mail."""
    renderer = Renderer()
    messages = []
    for i in range(count):
        payload = {"invoice_no": f"FV/{i}/2026", "amount_gr": 1000 + i, "due_date": "2026-12-01"}
        notice = renderer.render("payment_reminder", "pl", payload, {"name": f"Klient {i}"})
        outgoing = Outgoing(
            f"bare-{i}", f"klient{i}@example.pl", notice.subject, notice.text, notice.html
        )
        messages.append((outgoing.to, build_message(outgoing, SENDER)))
    client = smtplib.SMTP("127.0.0.1", SMTP_PORT)
    started, cpu = time.perf_counter(), time.process_time()
    for to, message in messages:
        client.sendmail("ibok@mpwik.example", [to], message)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    client.quit()
    return count / elapsed, cpu / count


def channels() -> list[Channel]:
    """The sender's channels, to the simulators."""
    return [
        SmtpChannel(SmtpConfig.from_url(f"smtp://127.0.0.1:{SMTP_PORT}"), SENDER),
        SmsapiChannel(f"http://127.0.0.1:{SMS_PORT}", "sandbox-token", "MPWiK"),
    ]


def run_worker(url: str, lanes: int) -> None:
    """One sender process: deliver until nothing is due."""
    config = WorkerConfig(
        policy=RetryPolicy(base_s=1),
        links=(SECRET, "http://ibok.example"),
        batch_size=500,
        lanes=lanes,
    )
    with Worker(url, channels, config) as worker:
        worker.run(once=True)


def sender(url: str, workers: int, lanes: int) -> tuple[float, float, int, int]:
    """Seconds for ``workers`` processes to deliver everything, their CPU seconds, e-mails and
    SMS sent."""
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=run_worker, args=(url, lanes)) for _ in range(workers)]
    started, cpu = time.perf_counter(), children_cpu_s()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    elapsed, cpu = time.perf_counter() - started, children_cpu_s() - cpu
    with psycopg.connect(url) as conn:
        rows: dict[str, int] = dict(
            conn.execute(
                "SELECT channel, count(*) FROM notify_deliveries WHERE status = 'sent'"
                " GROUP BY channel"
            ).fetchall()
        )
        left = conn.execute(
            "SELECT count(*) FROM notify_deliveries WHERE status <> 'sent'"
        ).fetchone()
    if left and left[0]:
        print(f"warning: {left[0]} deliveries not sent", file=sys.stderr)
    return elapsed, cpu, int(rows.get("email", 0)), int(rows.get("sms", 0))


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--lanes", type=int, default=4, help="sending streams per worker")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mf-bench-mail-"))
    url = make_database(args.notices)
    procs = start_simulators(folder)
    sink = procs[0].pid
    try:
        sample = min(args.notices, 10_000)
        sink_cpu = [process_cpu_s(sink)]
        bare_before, client_before = bare_loop(sample)
        sink_cpu.append(process_cpu_s(sink))
        elapsed, workers_cpu, emails, sms = sender(url, args.workers, args.lanes)
        sink_cpu.append(process_cpu_s(sink))
        bare_after, client_after = bare_loop(sample)
        sink_cpu.append(process_cpu_s(sink))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        drop_database(url)
        shutil.rmtree(folder, ignore_errors=True)
    rate = emails / elapsed
    print(
        f"notices: {args.notices} ({emails} e-mails, {sms} SMS), "
        f"{args.workers} worker(s) x {args.lanes} lane(s)"
    )
    print(
        f"sender:    {args.notices / elapsed:8.0f} notices/s, {rate:7.0f} e-mails/s, "
        f"{sms / elapsed:6.0f} SMS/s ({elapsed:.1f} s)"
    )
    bare = max(bare_before, bare_after)
    print(
        f"bare loop: {bare_before:8.0f} e-mails/s before, {bare_after:.0f} after "
        f"(smtplib, one connection, pre-built messages)"
    )
    print(f"ratio sender/best bare (e-mails/s): {rate / bare:.2f}  (goal >= 0.5)")
    ms = 1000.0
    best = 0 if bare_before >= bare_after else 2  # the bare run the ratio is to
    print(
        f"CPU per mail, best bare run: client {(client_before, client_after)[best // 2] * ms:.3f}"
        f" ms{_sink_share(sink_cpu[best], sink_cpu[best + 1], sample)}"
    )
    print(
        f"CPU per notice, sender: workers {workers_cpu / args.notices * ms:.3f}"
        f" ms{_sink_share(sink_cpu[1], sink_cpu[2], emails)} (PostgreSQL not counted)"
    )


def _sink_share(before: float | None, after: float | None, mails: int) -> str:
    if before is None or after is None or not mails:
        return ""
    return f", sink {(after - before) / mails * 1000.0:.3f} ms per mail"


if __name__ == "__main__":
    main()
