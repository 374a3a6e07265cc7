"""Remote reading on request: a ``read`` command to the gateway that last heard the meter.

The command is DESIGN.md's ``mf/v1/<gateway>/cmd`` JSON ``{"v":1, "id":<uuid>,
"action":"read", "meter":<id>}``. The answer is an ordinary frame; a request is answered
by the first reading of the meter received after it was made.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from psycopg.rows import DictRow

from billing_engine.inputs import VOLUME
from meterflow.errors import TransportError
from portal.db import Conn
from readers.collectors.publisher import parse_mqtt_url

# A customer may ask again for the same meter only after this many minutes.
REPEAT_MINUTES = 10


@dataclass(frozen=True)
class Answer:
    """The reading that answered a request and the use since the reading before it."""

    read_at: datetime
    value_m3: Decimal
    used_m3: Decimal | None


def command_payload(request_id: uuid.UUID, meter_id: str) -> bytes:
    """The JSON command asking a gateway to read ``meter_id`` now."""
    body = {"v": 1, "id": str(request_id), "action": "read", "meter": meter_id}
    return json.dumps(body, separators=(",", ":")).encode()


def publish_command(mqtt_url: str, gateway_id: str, payload: bytes, timeout_s: float = 5) -> None:
    """Publish ``payload`` on ``mf/v1/<gateway_id>/cmd`` with QoS 1 and wait for the broker.

    Raises TransportError if the broker cannot be reached, refuses us or does not confirm.
    Raises ConfigError if the URL is not an MQTT URL.
    """
    address = parse_mqtt_url(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(c: mqtt.Client, u: object, f: object, code: ReasonCode, p: object) -> None:
        if code.is_failure:
            refused.append(str(code))
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=15)
    except OSError as exc:
        raise TransportError(f"cannot reach the MQTT broker {address.host}: {exc}") from exc
    client.loop_start()
    try:
        if not connected.wait(timeout_s) or refused:
            raise TransportError(f"the MQTT broker did not accept us: {refused or 'no answer'}")
        info = client.publish(f"mf/v1/{gateway_id}/cmd", payload, qos=1)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise TransportError("the MQTT broker did not confirm the command in time")
    except (RuntimeError, ValueError) as exc:
        raise TransportError(f"the command could not be published: {exc}") from exc
    finally:
        client.disconnect()
        client.loop_stop()


def gateway_of(conn: Conn, meter_id: str) -> str | None:
    """The gateway that delivered the meter's newest reading, or None if none did."""
    row = conn.execute(
        f"SELECT gateway_id FROM readings WHERE meter_id = %s AND {VOLUME}"
        " AND gateway_id IS NOT NULL ORDER BY read_at DESC LIMIT 1",
        (meter_id,),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT gateway_id FROM raw_frames WHERE meter_id = %s"
            " AND received_at > now() - interval '35 days' ORDER BY received_at DESC LIMIT 1",
            (meter_id,),
        ).fetchone()
    return str(row["gateway_id"]) if row else None


def recent_request(conn: Conn, customer_id: int, meter_id: str) -> bool:
    """True if the customer asked for this meter in the last REPEAT_MINUTES minutes."""
    row = conn.execute(
        "SELECT 1 FROM remote_read_requests WHERE customer_id = %s AND meter_id = %s"
        " AND status = 'sent' AND requested_at > now() - make_interval(mins => %s)",
        (customer_id, meter_id, REPEAT_MINUTES),
    ).fetchone()
    return row is not None


def record(
    conn: Conn,
    request_id: uuid.UUID,
    customer_id: int,
    meter_id: str,
    gateway_id: str | None,
    error: str | None,
) -> None:
    """Store a request: sent, or failed with the reason."""
    conn.execute(
        "INSERT INTO remote_read_requests (request_id, customer_id, meter_id, gateway_id,"
        " status, error) VALUES (%s, %s, %s, %s, %s, %s)",
        (request_id, customer_id, meter_id, gateway_id, "failed" if error else "sent", error),
    )


def requests(conn: Conn, customer_id: int, meter_id: str) -> list[tuple[DictRow, Answer | None]]:
    """The customer's last requests for the meter, each with its answer once it came."""
    rows = conn.execute(
        "SELECT request_id, requested_at, status, error, gateway_id FROM remote_read_requests"
        " WHERE customer_id = %s AND meter_id = %s ORDER BY requested_at DESC LIMIT 10",
        (customer_id, meter_id),
    ).fetchall()
    return [
        (row, _answer(conn, meter_id, row) if row["status"] == "sent" else None) for row in rows
    ]


def _answer(conn: Conn, meter_id: str, request: DictRow) -> Answer | None:
    row = conn.execute(
        f"SELECT read_at, value FROM readings WHERE meter_id = %s AND {VOLUME}"
        " AND read_at >= %s - interval '1 day' AND received_at >= %s ORDER BY read_at LIMIT 1",
        (meter_id, request["requested_at"], request["requested_at"]),
    ).fetchone()
    if row is None:
        return None
    before = conn.execute(
        f"SELECT value FROM readings WHERE meter_id = %s AND {VOLUME} AND read_at < %s"
        " ORDER BY read_at DESC LIMIT 1",
        (meter_id, row["read_at"]),
    ).fetchone()
    used = row["value"] - before["value"] if before else None
    return Answer(row["read_at"], row["value"], used)
