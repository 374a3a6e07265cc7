"""E-mail to a real SMTP server on loopback (aiosmtpd), read back: subject, both parts,
the invoice PDF, Message-ID, unsubscribe headers; STARTTLS, implicit TLS and AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pypdf import PdfReader

from billing_engine.notify.channels import DeliveryError, Outgoing
from billing_engine.notify.smtp import SmtpChannel, SmtpConfig
from billing_engine.settlement import RunOptions, settle
from simulators.sms_gateway import SmsGateway
from simulators.smtp_sink import SmtpSink
from tests.billing.conftest import NOW, make_fleet
from tests.notify.conftest import DEMAND, MAIL_FROM, add_customer, add_notice, make_worker
from tests.services import free_port


def test_invoice_mail_has_subject_both_parts_and_the_pdf(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    make_fleet(notify_db, 2)
    settle(notify_db, "2026-10", options=RunOptions(now=NOW))
    with psycopg.connect(notify_db) as conn:
        conn.execute("UPDATE customers SET email = 'k' || customer_id || '@example.pl'")
        first = conn.execute("SELECT min(customer_id) FROM customers").fetchone()
        assert first is not None
        conn.execute(
            "INSERT INTO notification_settings (customer_id, e_invoice) VALUES (%s, true)",
            (first[0],),
        )
        invoice_no = conn.execute(
            "SELECT invoice_no FROM invoices WHERE customer_id = %s", (first[0],)
        ).fetchone()
    assert invoice_no is not None
    with make_worker(notify_db, sink, gateway) as worker:
        counts = worker.run(once=True)
    assert (counts.routed, counts.sent) == (2, 2)
    mails = {str(m["To"]): m for m in sink.messages()}
    mail = mails[f"k{first[0]}@example.pl"]
    assert mail["Subject"].startswith(f"e-faktura {invoice_no[0]}: ")
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert invoice_no[0] in text.get_content() and "<strong>" in html.get_content()
    pdfs = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    assert pdfs[0].get_filename() == invoice_no[0].replace("/", "-") + ".pdf"
    pdf_text = PdfReader(_bytes_file(pdfs[0].get_content(), sink.folder)).pages[0].extract_text()
    assert invoice_no[0] in pdf_text
    other = next(m for to, m in mails.items() if to != f"k{first[0]}@example.pl")
    assert list(other.iter_attachments()) == []


def _bytes_file(data: bytes, folder: Path) -> Path:
    path = folder / "invoice.pdf.bin"
    path.write_bytes(data)
    return path


def test_message_id_and_one_click_unsubscribe_headers(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    with psycopg.connect(notify_db) as conn:
        customer = add_customer(conn, language="en")
        payment = add_notice(
            conn,
            "payment_reminder",
            customer,
            {"invoice_no": "FV/7/2026", "amount_gr": 9900, "due_date": "2026-12-01"},
        )
        demand = add_notice(conn, "payment_demand", customer, DEMAND)
    with make_worker(notify_db, sink, gateway) as worker:
        worker.run(once=True)
    mails = {str(m["Message-ID"]): m for m in sink.messages()}
    reminder = mails[f"<mf-{payment}-email@mpwik.example>"]
    assert reminder["Subject"] == "Payment reminder: invoice FV/7/2026 is due 01.12.2026"
    assert reminder["List-Unsubscribe"].startswith("<http://portal.test/unsubscribe/")
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    required = mails[f"<mf-{demand}-email@mpwik.example>"]
    assert required["List-Unsubscribe"] is None
    assert (
        "the law or your account's security requires it"
        in required.get_body(("plain",)).get_content()
    )


def test_permanent_refusal_is_dead_at_once_and_temporary_is_retried(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    sink.refuse.add("gone@example.pl")
    sink.fail_next = 1
    with psycopg.connect(notify_db) as conn:
        refused = add_customer(conn, email="gone@example.pl")
        gone = add_notice(conn, "payment_demand", refused, DEMAND)
        later = add_notice(conn, "payment_demand", add_customer(conn, phone=None), DEMAND)
    with make_worker(notify_db, sink, gateway) as worker:
        worker.run(once=True)
    with psycopg.connect(notify_db) as conn:
        rows = conn.execute(
            "SELECT outbox_id, status, attempts FROM notify_deliveries ORDER BY outbox_id"
        ).fetchall()
        log = conn.execute(
            "SELECT outbox_id, attempt, status FROM notify_attempts ORDER BY attempt_id"
        ).fetchall()
    assert rows == [(gone, "dead", 1), (later, "sent", 2)]
    assert (gone, 1, "dead") in log and (later, 1, "failed") in log and (later, 2, "sent") in log
    assert sink.count == 1


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(params=["starttls", "implicit"])
def tls_sink(
    request: pytest.FixtureRequest, tls_files: tuple[Path, Path], tmp_path: Path
) -> Iterator[tuple[SmtpSink, str]]:
    """A sink that wants TLS (STARTTLS or implicit) and AUTH, with the matching URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    port = free_port()
    mode = str(request.param)
    with SmtpSink(
        tmp_path / "mail", port=port, tls=mode, context=context, users={"ibok": "tajne haslo"}
    ) as server:
        scheme = "smtp+starttls" if mode == "starttls" else "smtps"
        yield server, f"{scheme}://ibok:tajne%20haslo@127.0.0.1:{port}"


def test_tls_and_authentication(
    tls_sink: tuple[SmtpSink, str], tls_files: tuple[Path, Path]
) -> None:
    server, url = tls_sink
    channel = SmtpChannel(SmtpConfig.from_url(url), MAIL_FROM, cafile=tls_files[0])
    try:
        result = channel.send(Outgoing("mf-1-email", "jan@example.pl", "Próba", "Treść ąę"))
    finally:
        channel.close()
    assert result.provider_id == "<mf-1-email@mpwik.example>"
    assert server.count == 1 and server.messages()[0]["Subject"] == "Próba"


def test_wrong_password_is_a_temporary_delivery_error(
    tls_sink: tuple[SmtpSink, str], tls_files: tuple[Path, Path]
) -> None:
    _, url = tls_sink
    config = SmtpConfig.from_url(url.replace("tajne%20haslo", "zle"))
    channel = SmtpChannel(config, MAIL_FROM, tls_files[0])
    with pytest.raises(DeliveryError, match="authentication failed") as refused:
        channel.send(Outgoing("mf-2-email", "jan@example.pl", "Próba", "Treść"))
    channel.close()
    assert not refused.value.permanent  # staff fix the credentials; notices wait


def test_several_lanes_send_each_notice_once(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    with psycopg.connect(notify_db) as conn:
        notices = [add_notice(conn, "payment_demand", add_customer(conn), DEMAND) for _ in range(9)]
    with make_worker(notify_db, sink, gateway, lanes=3) as worker:
        counts = worker.run(once=True)
    assert (counts.sent, sink.count) == (9, 9)
    assert all(sink.copies(f"<mf-{n}-email@mpwik.example>") == 1 for n in notices)


def test_a_notice_that_cannot_be_rendered_is_dead_with_the_reason(
    notify_db: str, sink: SmtpSink, gateway: SmsGateway
) -> None:
    with psycopg.connect(notify_db) as conn:
        notice = add_notice(conn, "payment_demand", add_customer(conn), {"overdue_gr": 1})
    with make_worker(notify_db, sink, gateway) as worker:
        worker.run(once=True)
    with psycopg.connect(notify_db) as conn:
        row = conn.execute(
            "SELECT status, attempts, last_error FROM notify_deliveries WHERE outbox_id = %s",
            (notice,),
        ).fetchone()
    assert row is not None and row[:2] == ("dead", 1) and "pay_by" in row[2]
    assert sink.count == 0
