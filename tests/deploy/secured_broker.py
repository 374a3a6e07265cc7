"""A private Mosquitto run with deploy/mosquitto.conf, its paths moved into a temp folder."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from services import PrivateMosquitto

from ingest.fleet import BrokerFiles

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto.conf"


def production_conf(port: int, workdir: Path) -> str:
    """Return deploy/mosquitto.conf with its listener, files and logging moved for a test."""
    moved = {
        "listener": f"listener {port} 127.0.0.1",
        "password_file": f"password_file {workdir}/passwd",
        "acl_file": f"acl_file {workdir}/acl",
        "persistence_location": f"persistence_location {workdir}/",
        "pid_file": f"pid_file {workdir}/mosquitto.pid",
        "log_dest": f"log_dest file {workdir}/mosquitto.log",
    }
    lines = []
    for line in DEPLOY_CONF.read_text().splitlines():
        option = line.split(" ", 1)[0]
        lines.append(moved.pop(option, line))
    assert not moved, f"deploy/mosquitto.conf lacks {sorted(moved)}"
    return "\n".join(lines) + "\n"


class SecuredBroker:
    """A production-configured broker with the password and ACL files meterflow writes."""

    def __init__(self) -> None:
        self.server = PrivateMosquitto()
        self.workdir = self.server.workdir
        self.port = self.server.port
        self.files = BrokerFiles(self.workdir / "passwd", self.workdir / "acl")
        self.pid_file = self.workdir / "mosquitto.pid"
        self.server.conf.write_text(production_conf(self.port, self.workdir))

    def start(self) -> None:
        """Start the broker (the password and ACL files must exist by now)."""
        self.server.start()

    def log(self) -> str:
        """Return the broker's log so far."""
        return (self.workdir / "mosquitto.log").read_text()

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        """Wait until the broker has logged ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"broker never logged {text!r}"
            time.sleep(0.05)

    def client(self, user: str, password: str) -> mqtt.Client:
        """Return a connected MQTT 5 client; fail the test if the broker refuses it."""
        client, reason = self.try_connect(user, password)
        assert reason is not None and not reason.is_failure, f"{user} refused: {reason}"
        return client

    def try_connect(self, user: str, password: str) -> tuple[mqtt.Client, ReasonCode | None]:
        """Connect as ``user``; return the client and the broker's CONNACK reason."""
        answers: list[ReasonCode] = []
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{user}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(user, password)
        client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        deadline = time.monotonic() + 10
        while not answers and time.monotonic() < deadline:
            time.sleep(0.02)
        if answers and answers[0].is_failure:
            client.loop_stop()
        return client, answers[0] if answers else None
