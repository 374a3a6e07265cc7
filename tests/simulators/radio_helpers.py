"""Helpers of the radio simulator tests: a small fleet and a subscriber on the real broker."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from readers.collectors.publisher import parse_mqtt_url
from readers.model import Header
from simulators.consumption import Traits, VirtualMeter

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def small_fleet(count: int, seed: int = 1) -> list[VirtualMeter]:
    """Return ``count`` meters with distinct ids and keys."""
    return [
        VirtualMeter(
            Header("APA", f"{70000000 + i:08d}", 0x14, 0x07),
            bytes((i + b) % 256 for b in range(16)),
            seed * 1000 + i,
            start=START,
            traits=Traits(persons=1 + i % 4, initial_litres=10_000 * i),
        )
        for i in range(count)
    ]


class Subscriber:
    """Records the messages the broker delivers on ``topic`` (QoS 1, clean session)."""

    def __init__(self, url: str, topic: str) -> None:
        address = parse_mqtt_url(url)
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, f"sim-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda client, *args: client.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert subscribed.wait(10), "could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def received(self) -> list[tuple[str, bytes]]:
        """Return the messages received so far."""
        with self._lock:
            return list(self.messages)

    def wait_for(
        self, check: Callable[[list[tuple[str, bytes]]], bool], timeout: float = 20
    ) -> bool:
        """Wait until ``check`` holds for the received messages."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not check(self.received()):
            time.sleep(0.05)
        return check(self.received())

    def send(self, topic: str, document: dict[str, object]) -> None:
        """Publish a JSON document with QoS 1 and wait until the broker has it."""
        self.client.publish(topic, json.dumps(document), qos=1).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
