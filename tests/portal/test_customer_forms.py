"""Customer forms: readings judged by billing's rule, remote reading over MQTT, complaints."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion

from meterflow.settings import Settings
from portal import create_app
from portal.db import close_pool
from tests.portal.conftest import ROOMY_LIMITS
from tests.portal.customer_rows import Db, Supply, invoice, remote_readings, supply
from tests.portal.helpers import Account, login, post_form

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def home(
    client: FlaskClient, db: Db, make_customer_account: Callable[..., Account]
) -> tuple[FlaskClient, Account, Supply]:
    """A logged-in customer whose meter read 150 m³ remotely ten days ago."""
    account = make_customer_account()
    s = supply(db, account.customer_id)
    start = datetime.now(UTC) - timedelta(days=10)
    remote_readings(db, s.meter_id, start, 1, timedelta(days=1), Decimal(0), Decimal("150"))
    assert login(client, account.email, account.password).status_code == 302
    return client, account, s


def _reading(client: FlaskClient, meter_id: str, value: str, day: str | None = None) -> str:
    response = post_form(
        client,
        "/ebok/readings",
        {
            "meter_id": meter_id,
            "read_on": day or datetime.now(UTC).date().isoformat(),
            "value_m3": value,
        },
    )
    return f"{response.status_code} {response.get_data(as_text=True)}"


def test_accepted_reading_is_stored_with_a_polish_decimal_comma(
    home: tuple[FlaskClient, Account, Supply], db: Db
) -> None:
    client, _, s = home
    assert _reading(client, s.meter_id, "151,250").startswith("302")
    row = db.execute(
        "SELECT value_m3, source FROM customer_readings WHERE meter_id = %s", (s.meter_id,)
    ).fetchone()
    assert row == {"value_m3": Decimal("151.250"), "source": "customer"}


def test_reading_below_the_last_actual_is_refused_with_billing_reason(
    home: tuple[FlaskClient, Account, Supply], db: Db
) -> None:
    client, _, s = home
    answer = _reading(client, s.meter_id, "149.5")
    assert answer.startswith("422")
    assert "150" in answer and 'class="error"' in answer
    assert db.execute(
        "SELECT count(*) AS n FROM customer_readings WHERE meter_id = %s", (s.meter_id,)
    ).fetchone() == {"n": 0}


def test_second_reading_of_the_same_day_is_refused(
    home: tuple[FlaskClient, Account, Supply],
) -> None:
    client, _, s = home
    assert _reading(client, s.meter_id, "151").startswith("302")
    assert _reading(client, s.meter_id, "152").startswith("422")


@pytest.mark.parametrize(
    "value, day",
    [("", None), ("abc", None), ("-1", None), ("1.2345", None), ("151", "2999-01-01")],
)
def test_bad_reading_input_is_refused(
    home: tuple[FlaskClient, Account, Supply], value: str, day: str | None
) -> None:
    client, _, s = home
    assert _reading(client, s.meter_id, value, day).startswith("400")


def test_reading_for_someone_elses_meter_is_refused(
    home: tuple[FlaskClient, Account, Supply],
    db: Db,
    make_customer_account: Callable[..., Account],
) -> None:
    client, _, _ = home
    other = supply(db, make_customer_account().customer_id)
    assert _reading(client, other.meter_id, "151").startswith("400")  # not a choice


def test_remote_reading_publishes_the_command_to_the_last_gateway(
    home: tuple[FlaskClient, Account, Supply],
    db: Db,
    mqtt_url: str,
    portal_settings: Settings,
) -> None:
    _, account, s = home
    got: list[tuple[str, bytes]] = []
    ready = threading.Event()
    arrived = threading.Event()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2)
    listener.on_connect = lambda c, u, f, rc, p: c.subscribe("mf/v1/gw-test/cmd", qos=1)
    listener.on_subscribe = lambda c, u, m, rc, p: ready.set()

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        got.append((message.topic, message.payload))
        arrived.set()

    listener.on_message = on_message
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    listener.connect(host, int(port))
    listener.loop_start()
    app = create_app(
        portal_settings.replace(mqtt_url=mqtt_url),
        TESTING=True,
        PASSWORD_HASH_PROFILE="fast",
        RATE_LIMITS=ROOMY_LIMITS,
    )
    try:
        assert ready.wait(5)
        client = app.test_client()
        login(client, account.email, account.password)
        page = f"/ebok/meters/{s.meter_id}"
        response = post_form(client, f"{page}/remote-read", {}, form_page=page)
        assert response.status_code == 302
        assert arrived.wait(5)
        command = json.loads(got[0][1])
        assert command["meter"] == s.meter_id and command["action"] == "read"
        assert command["v"] == 1
        remote_readings(
            db, s.meter_id, datetime.now(UTC), 1, timedelta(hours=1), Decimal(0), Decimal("151")
        )
        shown = client.get(page).get_data(as_text=True)
        assert "151,000 m³" in shown, shown[shown.find("<table") :][:1500]
        assert ": 1,000 m³" in shown  # the use since the reading before
    finally:
        listener.loop_stop()
        listener.disconnect()
        close_pool(app)


def test_remote_reading_without_a_broker_fails_politely(
    home: tuple[FlaskClient, Account, Supply], db: Db, app: Flask
) -> None:
    client, account, s = home
    page = f"/ebok/meters/{s.meter_id}"
    response = post_form(client, f"{page}/remote-read", {}, form_page=page)
    assert response.status_code == 302
    row = db.execute(
        "SELECT status, error FROM remote_read_requests WHERE customer_id = %s",
        (account.customer_id,),
    ).fetchone()
    assert row is not None and row["status"] == "failed"
    assert "flash error" in client.get(page).get_data(as_text=True)


def test_complaint_with_attachment_gets_deadline_and_download(
    home: tuple[FlaskClient, Account, Supply], db: Db
) -> None:
    client, account, s = home
    invoice_id = invoice(db, s)
    response = post_form(
        client,
        "/ebok/complaints",
        {
            "kind": "invoice_dispute",
            "subject": "Za wysoka faktura",
            "description": "Zużycie jest dwa razy większe niż zwykle.",
            "invoice_id": str(invoice_id),
            "meter_id": "",
            "attachments": (io.BytesIO(PNG), "zdjecie.png"),  # type: ignore[dict-item]
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    row = db.execute(
        "SELECT complaint_id, due_on, filed_at FROM complaints WHERE customer_id = %s",
        (account.customer_id,),
    ).fetchone()
    assert row is not None
    assert (row["due_on"] - row["filed_at"].date()).days in (13, 14)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "zdjecie.png" in page
    upload = db.execute(
        "SELECT upload_id FROM complaint_attachments WHERE complaint_id = %s",
        (row["complaint_id"],),
    ).fetchone()
    assert upload is not None
    download = client.get(f"/ebok/complaints/{row['complaint_id']}/files/{upload['upload_id']}")
    assert download.data == PNG
    assert download.headers["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "other", "subject": "", "description": "x"},
        {"kind": "other", "subject": "x", "description": ""},
        {"kind": "nonsense", "subject": "x", "description": "x"},
        {"kind": "invoice_dispute", "subject": "x", "description": "x", "invoice_id": ""},
        {"kind": "other", "subject": "x" * 201, "description": "x"},
    ],
)
def test_bad_complaints_are_refused(
    home: tuple[FlaskClient, Account, Supply], db: Db, fields: dict[str, str]
) -> None:
    client, account, _ = home
    response = post_form(client, "/ebok/complaints", fields)
    assert response.status_code == 400
    assert db.execute(
        "SELECT count(*) AS n FROM complaints WHERE customer_id = %s", (account.customer_id,)
    ).fetchone() == {"n": 0}


def test_complaint_attachment_of_wrong_type_stores_nothing(
    home: tuple[FlaskClient, Account, Supply], db: Db
) -> None:
    client, account, _ = home
    response = post_form(
        client,
        "/ebok/complaints",
        {
            "kind": "dirty_water",
            "subject": "Brudna woda",
            "description": "Brązowa woda z kranu.",
            "attachments": (io.BytesIO(b"<html>hi</html>"), "x.png"),  # type: ignore[dict-item]
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert db.execute(
        "SELECT count(*) AS n FROM complaints WHERE customer_id = %s", (account.customer_id,)
    ).fetchone() == {"n": 0}
