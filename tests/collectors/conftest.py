"""Fixtures of the collector tests: a subscriber that records the envelopes a broker delivers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from readers.collectors.publisher import parse_mqtt_url
from schemas.envelope import Envelope, parse_envelope


class Tap:
    """A QoS 1 subscriber on a real broker; ``persistent`` keeps its session across restarts."""

    def __init__(self, url: str, topic: str, persistent: bool = False) -> None:
        address = parse_mqtt_url(url)
        self.topic = topic
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"tap-{uuid.uuid4().hex[:8]}",
            clean_session=not persistent,
        )
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the tap could not subscribe"

    def _on_connect(self, client: mqtt.Client, *args: object) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def envelopes(self) -> list[Envelope]:
        """Return the envelopes received so far, in arrival order."""
        with self._lock:
            return [parse_envelope(payload) for _, payload in self.messages]

    def frames(self) -> list[bytes]:
        """Return the frame bytes received so far, in arrival order."""
        return [frame.data for env in self.envelopes() for frame in env.frames]

    def wait_for(self, check: Callable[[Tap], bool], timeout: float = 20.0) -> bool:
        """Wait until ``check(self)`` holds; return whether it did before ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self):
                return True
            time.sleep(0.05)
        return check(self)

    def close(self) -> None:
        """Disconnect the subscriber."""
        self.client.disconnect()
        self.client.loop_stop()


def send_command(url: str, gateway: str, payload: dict[str, object] | bytes) -> None:
    """Publish one command to a gateway, as the back office would."""
    address = parse_mqtt_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(address.host, address.port)
    client.loop_start()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    client.publish(f"mf/v1/{gateway}/cmd", body, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def tap_factory() -> Iterator[Callable[..., Tap]]:
    """Make subscribers; all are disconnected at the end of the test."""
    taps: list[Tap] = []

    def make(url: str, topic: str, persistent: bool = False) -> Tap:
        tap = Tap(url, topic, persistent)
        taps.append(tap)
        return tap

    yield make
    for tap in taps:
        tap.close()


@pytest.fixture
def gateway_id() -> str:
    """A gateway id no other test uses, so tests on the shared broker do not see each other."""
    return f"gw-test-{uuid.uuid4().hex[:10]}"
