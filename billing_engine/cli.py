"""``meterflow billing``: run a settlement, preview a customer, write the report, schedule."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from meterflow.errors import ConfigError
from meterflow.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``meterflow billing`` and its sub-commands."""
    billing = subparsers.add_parser("billing", help="settle periods, preview, report, schedule")
    commands = billing.add_subparsers(dest="billing_command", metavar="ACTION", required=True)

    run = commands.add_parser("run", help="settle a period: issue the invoices due")
    run.add_argument("--period", required=True, help="period label, its first month: 2026-10")
    run.add_argument("--group", help="only this billing group")
    run.add_argument("--dry-run", action="store_true", help="compute, show, write nothing")
    run.set_defaults(handler=_run)

    preview = commands.add_parser("preview", help="a customer's account and invoices")
    preview.add_argument("--customer", required=True, help="customer id or customer number")
    preview.set_defaults(handler=_preview)

    report = commands.add_parser("report", help="settlement report per tariff group")
    report.add_argument("--period", required=True, help="period label: 2026-10")
    report.add_argument("--out", required=True, type=Path, help="FILE.csv or FILE.xlsx")
    report.set_defaults(handler=_report)

    pdf = commands.add_parser("pdf", help="write an issued invoice as PDF")
    pdf.add_argument("--invoice", required=True, type=int, help="invoice id")
    pdf.add_argument("--out", required=True, type=Path, help="FILE.pdf")
    pdf.set_defaults(handler=_pdf)

    scheduler = commands.add_parser("scheduler", help="run the billing jobs on their calendar")
    scheduler.add_argument(
        "--settle-on-start",
        action="store_true",
        help="settle the periods that ended last month right after start (demo, catch-up)",
    )
    scheduler.set_defaults(handler=_scheduler)


def _url(settings: Settings) -> str:
    if not settings.database_url:
        raise ConfigError("METERFLOW_DATABASE_URL is not set; point it at the database")
    return settings.database_url


def _options(settings: Settings) -> Any:
    from billing_engine.settlement import RunOptions

    return RunOptions(
        series=settings.billing_series,
        due_days=settings.billing_due_days,
        batch_size=settings.billing_batch_size,
    )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from billing_engine.money import format_pln
    from billing_engine.settlement import settle

    bar = tqdm(total=0, unit="contract", desc=f"billing {args.period}", file=sys.stderr)

    def progress(done: int, due: int) -> None:
        bar.total = due
        bar.n = done
        bar.refresh()

    summary = settle(
        _url(settings),
        args.period,
        group=args.group,
        dry_run=args.dry_run,
        options=_options(settings),
        progress=progress,
    )
    bar.close()
    verb = "would issue" if summary.dry_run else "issued"
    print(
        f"period {summary.label}: {summary.due} contracts due, {verb} {summary.issued}"
        f" invoices ({summary.estimated} estimated) for {format_pln(summary.gross_grosze)},"
        f" {summary.held} held for review, {len(summary.failed)} failed"
    )
    for contract_id, reason in sorted(summary.failed.items())[:20]:
        print(f"  contract {contract_id}: {reason}")
    return 0 if not summary.failed else 2


def _preview(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.preview import preview_text

    print(preview_text(_url(settings), args.customer))
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.report import write_report

    totals = write_report(_url(settings), args.period, args.out)
    print(f"report of {args.period} written to {args.out} ({len(totals)} tariff groups)")
    return 0


def _pdf(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.pdf import write_invoice_pdf

    write_invoice_pdf(_url(settings), args.invoice, args.out)
    print(f"invoice {args.invoice} written to {args.out}")
    return 0


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from billing_engine.model import DunningPolicy
    from billing_engine.scheduler import run_scheduler

    policy = DunningPolicy(settings.billing_reminder_days, settings.billing_demand_days)
    run_scheduler(
        _url(settings),
        _options(settings),
        policy,
        settle_on_start=args.settle_on_start or settings.billing_settle_on_start,
    )
    return 0
