"""One customer's journey in a real headless browser (Debian's chromium via Playwright):
register, verify, log in, submit a reading, open an invoice PDF, file a complaint, log out.

The app runs in a real werkzeug HTTP server thread on a free loopback port.
``tests/e2e/install.sh`` installs chromium and Playwright; without chromium the test skips.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from werkzeug.serving import make_server

from meterflow.settings import Settings
from portal import create_app
from portal.db import close_pool
from tests.portal.customer_rows import invoice, remote_readings, supply

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "Zawor-Glowny-77!"

pytestmark = pytest.mark.slow


@pytest.fixture
def base_url(migrated_db: str, tmp_path: Path) -> Iterator[str]:
    """The portal served over real HTTP on a free port."""
    settings = Settings(
        database_url=migrated_db,
        data_dir=tmp_path,
        secret_key="e2e-" + uuid.uuid4().hex,
        portal_cookie_secure=False,
    )
    app = create_app(settings, PASSWORD_HASH_PROFILE="fast")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    close_pool(app)


def _customer_with_invoice(url: str) -> tuple[str, str, str]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as db:
        tag = uuid.uuid4().hex[:8]
        row = db.execute(
            "INSERT INTO customers (customer_no, kind, name, address) VALUES (%s, 'person',"
            " 'Anna Przeglądarka', 'ul. Wodna 5') RETURNING customer_id",
            (f"E2E-{tag}",),
        ).fetchone()
        assert row is not None
        s = supply(db, row["customer_id"])
        start = datetime.now(UTC) - timedelta(days=3)
        remote_readings(db, s.meter_id, start, 2, timedelta(days=1), Decimal(1), Decimal(200))
        invoice_id = invoice(db, s)
        number = db.execute("SELECT invoice_no FROM invoices WHERE invoice_id = %s", (invoice_id,))
        found = number.fetchone()
        assert found is not None
        return f"E2E-{tag}", str(found["invoice_no"]), s.meter_id


def _verify_link(url: str, email: str) -> str:
    with psycopg.connect(url, row_factory=dict_row) as db:
        row = db.execute(
            "SELECT payload->>'url' AS link FROM outbox WHERE kind = 'portal_verify_email'"
            " AND payload->>'to' = %s ORDER BY outbox_id DESC LIMIT 1",
            (email,),
        ).fetchone()
    assert row is not None
    return str(row["link"])


def test_register_verify_read_invoice_complain_logout(base_url: str, migrated_db: str) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed: run tests/e2e/install.sh")
    sync_api = pytest.importorskip("playwright.sync_api")
    customer_no, invoice_no, meter_id = _customer_with_invoice(migrated_db)
    email = f"anna-{uuid.uuid4().hex[:8]}@example.com"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, accept_downloads=True)
        page.goto(f"{base_url}/register")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=password_again]", PASSWORD)
        page.fill("input[name=customer_no]", customer_no)
        page.fill("input[name=invoice_no]", invoice_no)
        page.check("input[name=accept_terms]")
        page.check("input[name=accept_privacy]")
        page.click("main button[type=submit]")
        page.wait_for_url("**/register/sent")

        page.goto(_verify_link(migrated_db, email))
        page.click("main button[type=submit]")
        page.wait_for_url("**/login")

        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url("**/ebok/")
        assert meter_id in page.content()

        page.goto(f"{base_url}/ebok/readings")
        page.select_option("select[name=meter_id]", meter_id)
        page.fill("input[name=value_m3]", "201,500")
        page.click("main form button[type=submit]")
        page.wait_for_url(f"**/ebok/meters/{meter_id}")
        assert "201,500" in page.content()

        page.goto(f"{base_url}/ebok/invoices")
        with page.expect_download() as download:
            page.click("text=PDF")
        pdf = Path(download.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF-")

        page.goto(f"{base_url}/ebok/complaints")
        page.select_option("select[name=kind]", "low_pressure")
        page.fill("input[name=subject]", "Słabe ciśnienie wody")
        page.fill("textarea[name=description]", "Od tygodnia woda ledwo leci na piętrze.")
        page.click("main form[enctype] button[type=submit]")
        page.wait_for_url("**/ebok/complaints/*")
        assert "Słabe ciśnienie wody" in page.content()

        page.click("form[action='/logout'] button")
        page.wait_for_url("**/login")
        page.goto(f"{base_url}/ebok/")
        assert "/login" in page.url
        browser.close()
