"""Gateways registered by meterflow reach the production-configured broker only as allowed."""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from secured_broker import SecuredBroker

from ingest import broker_auth
from ingest.fleet import add_gateway, grant_broker_user, revoke_gateway
from meterflow import cli

Messages = queue.Queue[tuple[str, bytes]]


@pytest.fixture
def conn(migrated_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(migrated_db) as connection:
        yield connection


def _gateway_id() -> str:
    return f"gw-{uuid.uuid4().hex[:10]}"


def _subscribe(client: mqtt.Client, *topics: str) -> Messages:
    """Subscribe ``client`` to ``topics`` and wait for the SUBACK; return its inbox."""
    inbox: Messages = queue.Queue()
    granted: queue.Queue[list[ReasonCode]] = queue.Queue()
    client.on_message = lambda _c, _u, message: inbox.put((message.topic, bytes(message.payload)))
    client.on_subscribe = lambda _c, _u, _mid, reasons, _p: granted.put(reasons)
    client.subscribe([(topic, 1) for topic in topics])
    reasons = granted.get(timeout=10)
    assert not any(reason.is_failure for reason in reasons), f"refused: {reasons}"
    return inbox


def _publish(client: mqtt.Client, topic: str, payload: bytes) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)


def _close(*clients: mqtt.Client) -> None:
    for client in clients:
        client.disconnect()
        client.loop_stop()


def _started(make: Callable[[], SecuredBroker]) -> tuple[SecuredBroker, mqtt.Client, Messages]:
    """A running broker with an ingest user subscribed the way ingest workers are."""
    broker = make()
    password = grant_broker_user(broker.files, "ingest", "ingest")
    broker.start()
    ingest = broker.client("ingest", password)
    return broker, ingest, _subscribe(ingest, "$share/ingest/mf/v1/+/+")


def _wait_for_reload(broker: SecuredBroker, before: int) -> None:
    """Wait until the broker has logged more than ``before`` reloads."""
    deadline = time.monotonic() + 10
    while broker.log().count("Reloading config") == before:
        assert time.monotonic() < deadline, "broker did not reload"
        time.sleep(0.05)


def _reload(broker: SecuredBroker) -> None:
    before = broker.log().count("Reloading config")
    broker_auth.reload_broker(broker.pid_file)
    _wait_for_reload(broker, before)


def test_added_gateway_publishes_to_the_ingest_user(
    conn: psycopg.Connection[tuple[object, ...]], secured_broker: Callable[[], SecuredBroker]
) -> None:
    gateway = _gateway_id()
    broker, ingest, inbox = _started(secured_broker)
    password = add_gateway(conn, broker.files, gateway, "pump station")
    _reload(broker)
    client = broker.client(gateway, password)
    _publish(client, f"mf/v1/{gateway}/wmbus", b"frames")
    assert inbox.get(timeout=10) == (f"mf/v1/{gateway}/wmbus", b"frames")
    _close(client, ingest)


def test_gateway_cannot_publish_under_another_gateways_topic(
    conn: psycopg.Connection[tuple[object, ...]], secured_broker: Callable[[], SecuredBroker]
) -> None:
    own, other = _gateway_id(), _gateway_id()
    broker = secured_broker()
    password = add_gateway(conn, broker.files, own)
    add_gateway(conn, broker.files, other)
    ingest_password = grant_broker_user(broker.files, "ingest", "ingest")
    broker.start()
    ingest = broker.client("ingest", ingest_password)
    inbox = _subscribe(ingest, "mf/v1/+/+")
    client = broker.client(own, password)
    _publish(client, f"mf/v1/{other}/wmbus", b"forged")
    _publish(client, f"mf/v1/{own}/cmd", b"forged command")
    # The broker handles one client's publishes in order: once this marker arrives, the
    # forged messages would have arrived before it had they been let through.
    _publish(client, f"mf/v1/{own}/mbus", b"marker")
    assert inbox.get(timeout=10) == (f"mf/v1/{own}/mbus", b"marker")
    assert inbox.empty()
    _close(client, ingest)


def test_gateway_cannot_read_another_gateways_commands(
    conn: psycopg.Connection[tuple[object, ...]], secured_broker: Callable[[], SecuredBroker]
) -> None:
    own, other = _gateway_id(), _gateway_id()
    broker = secured_broker()
    password = add_gateway(conn, broker.files, own)
    portal_password = grant_broker_user(broker.files, "portal", "commands")
    broker.start()
    gateway = broker.client(own, password)
    # Mosquitto 2 grants the subscription and applies the read rule to each message.
    commands = _subscribe(gateway, f"mf/v1/{other}/cmd", f"mf/v1/{own}/cmd")
    portal = broker.client("portal", portal_password)
    acks = _subscribe(portal, "mf/v1/+/cmd/ack")
    _publish(portal, f"mf/v1/{other}/cmd", b'{"action":"read"}')
    _publish(portal, f"mf/v1/{own}/cmd", b'{"action":"read"}')
    assert commands.get(timeout=10) == (f"mf/v1/{own}/cmd", b'{"action":"read"}')
    assert commands.empty()
    _publish(gateway, f"mf/v1/{own}/cmd/ack", b"ok")
    assert acks.get(timeout=10) == (f"mf/v1/{own}/cmd/ack", b"ok")
    _close(gateway, portal)


def test_revoked_gateway_is_cut_off_and_cannot_connect(
    conn: psycopg.Connection[tuple[object, ...]], secured_broker: Callable[[], SecuredBroker]
) -> None:
    gateway = _gateway_id()
    broker = secured_broker()
    password = add_gateway(conn, broker.files, gateway)
    broker.start()
    still_open = broker.client(gateway, password)
    revoke_gateway(conn, broker.files, gateway)
    _reload(broker)
    # Mosquitto 2 re-checks connected clients against the reloaded password file.
    broker.wait_for_log(f"Client {still_open._client_id.decode()} disconnected")
    still_open.loop_stop()
    client, reason = broker.try_connect(gateway, password)
    assert reason is not None and reason.is_failure
    assert reason.getName() == "Not authorized"
    client.loop_stop()


def test_wrong_password_is_refused(
    conn: psycopg.Connection[tuple[object, ...]], secured_broker: Callable[[], SecuredBroker]
) -> None:
    gateway = _gateway_id()
    broker = secured_broker()
    password = add_gateway(conn, broker.files, gateway)
    broker.start()
    client, reason = broker.try_connect(gateway, password[:-1] + "x")
    assert reason is not None and reason.is_failure
    client.loop_stop()
    anonymous, reason = broker.try_connect("", "")
    assert reason is not None and reason.is_failure
    anonymous.loop_stop()


def test_cli_adds_a_gateway_and_reloads_the_running_broker(
    migrated_db: str,
    secured_broker: Callable[[], SecuredBroker],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = _gateway_id()
    broker, ingest, inbox = _started(secured_broker)
    monkeypatch.setenv("METERFLOW_DATABASE_URL", migrated_db)
    monkeypatch.setenv("METERFLOW_BROKER_PASSWORD_FILE", str(broker.files.password_file))
    monkeypatch.setenv("METERFLOW_BROKER_ACL_FILE", str(broker.files.acl_file))
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("ingest.fleet_cli",))
    reloads = broker.log().count("Reloading config")
    code = cli.main(["gateways", "add", gateway, "--reload-pid", str(broker.pid_file)])
    out, err = capsys.readouterr()
    assert code == 0 and "sent SIGHUP to the broker" in err
    _wait_for_reload(broker, reloads)
    client = broker.client(gateway, out.strip())
    _publish(client, f"mf/v1/{gateway}/mbus", b"hello")
    assert inbox.get(timeout=10) == (f"mf/v1/{gateway}/mbus", b"hello")
    _close(client, ingest)
