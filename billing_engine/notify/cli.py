"""``meterflow notify``: the sender worker, the staff delivery log, resends, announcements,
and the local SMTP sink and SMS gateway simulator that ``make up`` points the sender at."""

from __future__ import annotations

import argparse
import threading
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from meterflow.errors import ConfigError
from meterflow.settings import Settings

WARSAW = ZoneInfo("Europe/Warsaw")

if TYPE_CHECKING:
    from billing_engine.notify.channels import Channel
    from billing_engine.notify.worker import Worker

LOG_QUERY = """
SELECT d.outbox_id, o.kind, coalesce(cu.customer_no, ''), d.channel, d.address, d.status,
       d.attempts, to_char(d.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
       coalesce(d.last_error, d.provider_id, '')
FROM notify_deliveries d
JOIN outbox o ON o.outbox_id = d.outbox_id
LEFT JOIN customers cu ON cu.customer_id = o.customer_id
WHERE (%(status)s::text IS NULL OR d.status = %(status)s)
  AND (%(customer)s::text IS NULL OR cu.customer_no = %(customer)s)
  AND (%(outbox)s::bigint IS NULL OR d.outbox_id = %(outbox)s)
ORDER BY d.updated_at DESC, d.outbox_id DESC
LIMIT %(limit)s
"""


def register(subparsers: Any) -> None:
    """Add ``meterflow notify`` and its sub-commands."""
    parser = subparsers.add_parser(
        "notify", help="deliver outbox notices by e-mail and SMS", description=__doc__
    )
    commands = parser.add_subparsers(dest="notify_command", metavar="COMMAND", required=True)
    send = commands.add_parser("send", help="run the sender worker")
    send.add_argument("--once", action="store_true", help="stop when nothing is due now")
    send.set_defaults(handler=_send)
    log = commands.add_parser("log", help="the delivery log, newest first (for staff)")
    log.add_argument("--status", help="pending, sending, sent, dead, uncertain, skipped...")
    log.add_argument("--customer", metavar="NO", help="only this customer number")
    log.add_argument("--outbox", type=int, metavar="ID", help="only this notice, with attempts")
    log.add_argument("--limit", type=int, default=50)
    log.set_defaults(handler=_log)
    resend = commands.add_parser("resend", help="send an uncertain or dead delivery again")
    resend.add_argument("outbox_id", type=int)
    resend.add_argument("--channel", default="email", choices=("email", "sms"))
    resend.set_defaults(handler=_resend)
    announce = commands.add_parser("announce", help="queue an announcement (e-komunikat)")
    announce.add_argument("announcement_id", type=int)
    announce.add_argument("--group", help="only customers of this billing group")
    announce.set_defaults(handler=_announce)
    due = commands.add_parser("queue-due", help="queue overdue reminders and contract endings")
    due.add_argument("--today", type=date.fromisoformat, help="ISO date (default: today)")
    due.set_defaults(handler=_queue_due)
    sink = commands.add_parser("sink", help="local SMTP server keeping mails as .eml files")
    sink.add_argument("--dir", type=Path, help="folder (default: DATA_DIR/mail)")
    sink.add_argument("--port", type=int, default=8025)
    sink.set_defaults(handler=_sink)
    gateway = commands.add_parser("sms-gateway", help="SMS gateway simulator (SMSAPI-style)")
    gateway.add_argument("--port", type=int, default=8026)
    gateway.add_argument("--journal", type=Path, help="append messages here as JSON lines")
    gateway.set_defaults(handler=_sms_gateway)


def build_worker(settings: Settings, crash_after_send: str | None = None) -> Worker:
    """A sender worker configured from ``settings`` (not started).

    Raises ConfigError if the database URL or a channel setting is missing or malformed.
    """
    from billing_engine.notify.preferences import link_secret
    from billing_engine.notify.rate import RetryPolicy, TokenBucket
    from billing_engine.notify.sms import SmsapiChannel
    from billing_engine.notify.smtp import SmtpChannel, SmtpConfig
    from billing_engine.notify.worker import Worker, WorkerConfig

    url = _database_url(settings)
    smtp = SmtpConfig.from_url(settings.notify_smtp_url)

    def channels() -> list[Channel]:
        return [
            SmtpChannel(smtp, settings.notify_mail_from, settings.notify_tls_cafile),
            SmsapiChannel(
                settings.notify_sms_url, settings.notify_sms_token, settings.notify_sms_sender
            ),
        ]

    config = WorkerConfig(
        policy=RetryPolicy(settings.notify_max_attempts, float(settings.notify_retry_base_s)),
        limits={
            "email": TokenBucket(settings.notify_email_per_s),
            "sms": TokenBucket(settings.notify_sms_per_s),
        },
        links=(link_secret(settings), settings.portal_base_url or f"http://{settings.portal_bind}"),
        crash_after_send=crash_after_send,
        lanes=settings.notify_lanes,
    )
    return Worker(url, channels, config)


def _database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise ConfigError("METERFLOW_DATABASE_URL is not set")
    return settings.database_url


def _send(args: argparse.Namespace, settings: Settings) -> int:
    import os
    import signal

    # Test hook: die right after a send on this channel (the crash-safety test).
    crash = os.environ.get("METERFLOW_NOTIFY_TEST_CRASH_AFTER_SEND") or None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with build_worker(settings, crash) as worker:
        try:
            counts = worker.run(once=args.once, stop=stop)
        except KeyboardInterrupt:
            counts = worker.counts
    print(
        f"routed {counts.routed}, sent {counts.sent + counts.duplicate}, "
        f"retrying {counts.failed}, dead {counts.dead}, uncertain {counts.uncertain}"
    )
    return 0


def _log(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.db import connect

    params = {
        "status": args.status,
        "customer": args.customer,
        "outbox": args.outbox,
        "limit": args.limit,
    }
    with connect(_database_url(settings)) as conn:
        rows = conn.execute(LOG_QUERY, params).fetchall()
        attempts = []
        if args.outbox is not None:
            attempts = conn.execute(
                "SELECT channel, attempt, status, to_char(at AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD HH24:MI:SS'), coalesce(error, provider_id, '')"
                " FROM notify_attempts WHERE outbox_id = %s ORDER BY at, attempt_id",
                (args.outbox,),
            ).fetchall()
    print("outbox  kind                      customer    channel  status     tries  updated (UTC)")
    for r in rows:
        print(f"{r[0]:<7} {r[1]:<25} {r[2]:<11} {r[3]:<8} {r[5]:<10} {r[6]:<6} {r[7]}  {r[8]}")
    for a in attempts:
        print(f"  {a[0]:<6} attempt {a[1]}: {a[2]:<10} {a[3]}  {a[4]}")
    return 0


def _resend(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.db import connect
    from billing_engine.notify.store import resend

    with connect(_database_url(settings), autocommit=True) as conn:
        if not resend(conn, args.outbox_id, args.channel):
            print(f"no uncertain or dead {args.channel} delivery of notice {args.outbox_id}")
            return 1
    print(f"notice {args.outbox_id} will be sent again by {args.channel}")
    return 0


def _announce(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.db import connect
    from billing_engine.notify.announce import fan_out_announcement

    with connect(_database_url(settings)) as conn:
        queued = fan_out_announcement(conn, args.announcement_id, args.group)
    print(f"queued {queued} notices of announcement {args.announcement_id}")
    return 0


def _queue_due(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.db import connect
    from billing_engine.notify.due import queue_contract_endings, queue_overdue_reminders

    today = args.today or datetime.now(WARSAW).date()
    with connect(_database_url(settings)) as conn:
        overdue = queue_overdue_reminders(conn, today)
        endings = queue_contract_endings(conn, today)
    print(f"queued {overdue} overdue reminders and {endings} contract-ending notices")
    return 0


def _sink(args: argparse.Namespace, settings: Settings) -> int:
    from simulators.smtp_sink import SmtpSink

    folder = args.dir or settings.data_dir / "mail"
    with SmtpSink(folder, port=args.port):
        print(f"SMTP sink on 127.0.0.1:{args.port}, mails in {folder}")
        _wait_forever()
    return 0


def _sms_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from simulators.sms_gateway import SmsGateway

    with SmsGateway(port=args.port, token=settings.notify_sms_token, journal=args.journal) as gw:
        print(f"SMS gateway simulator on {gw.url} (messages: {gw.url}/_sim/messages)")
        _wait_forever()
    return 0


def _wait_forever() -> None:
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        return
