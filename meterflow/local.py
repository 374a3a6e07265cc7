"""Embedded servers for a laptop: PostgreSQL through ``pgserver`` and a local MQTT broker."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from meterflow.errors import ConfigError, TransportError
from meterflow.supervisor import Supervisor

log = logging.getLogger(__name__)

# The embedded broker keeps offline messages only for named clients (any name, no password).
EMBEDDED_BROKER_USER = "meterflow"

# Limits match deploy/mosquitto.conf: ingest holds up to its Receive Maximum of QoS 1 messages
# unacknowledged until its batch commits, and a slow consumer's queue must not drop messages.
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 10
max_inflight_messages 1000
max_queued_messages 1000000
max_queued_bytes 0
log_dest file {data}/mosquitto.log
"""


def embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir``; return (URL, server handle).

    Raises ConfigError if the ``pgserver`` package cannot start a server here.
    """
    runtime = data_dir.parent / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    from pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = get_server(data_dir, cleanup_mode="stop")
    except Exception as exc:
        raise ConfigError(
            f"the embedded PostgreSQL could not start in {data_dir} ({exc}); "
            "set METERFLOW_DATABASE_URL to use a server of your own"
        ) from exc
    return str(server.get_uri()), server


def free_port(preferred: int) -> int:
    """Return ``preferred`` if nothing listens there, else any free loopback port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise TransportError("no free TCP port on 127.0.0.1")


def start_broker(supervisor: Supervisor, data_dir: Path) -> tuple[str, str]:
    """Start a local broker under ``supervisor``; return (URL, MQTT protocol version).

    Mosquitto when the binary is installed (MQTT 5), else the embedded amqtt broker, which
    speaks MQTT 3.1.1 only; its URL names a user, so the sessions of ingest and the
    collectors keep QoS 1 messages while they are offline.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(18830)
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosquitto:
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            shutil.chown(data_dir, "mosquitto")
        conf = data_dir / "mosquitto.conf"
        conf.write_text(MOSQUITTO_CONF.format(port=port, data=data_dir.resolve()))
        supervisor.start("broker", [mosquitto, "-c", str(conf)])
        protocol = "5"
        user = ""
    else:
        supervisor.start("broker", [sys.executable, "-m", "meterflow.embedded_broker", str(port)])
        protocol = "3.1.1"
        user = f"{EMBEDDED_BROKER_USER}@"
    wait_for_port(port)
    log.info("local broker (%s) on 127.0.0.1:%d", "mosquitto" if mosquitto else "amqtt", port)
    return f"mqtt://{user}127.0.0.1:{port}", protocol


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections.

    Raises TransportError after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TransportError(f"the local broker did not open 127.0.0.1:{port} in {timeout:.0f} s")
