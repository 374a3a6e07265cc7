"""Store-and-forward publishing of raw frames to the broker: a thin adapter over paho-mqtt.

Every frame goes to the on-disk spool first. A sender thread reads the spool in order,
publishes envelopes of up to ``frames_per_envelope`` frames with QoS 1 (MQTT 3.1.1, clean
session), keeps at most ``max_inflight`` envelopes unacknowledged and deletes frames from the
spool only when their PUBACK arrives. After each (re)connection it starts again from the head
of the spool, so delivery resumes in order; an envelope whose PUBACK was lost is sent twice
(ingest stores a frame once however often it arrives). paho reconnects with exponential
back-off. The same connection serves gateway commands on ``mf/v1/<gateway>/cmd``.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from meterflow.errors import ConfigError, EnvelopeError, MeterflowError, TransportError
from readers.collectors.spool import DEFAULT_MAX_FRAMES, Spool
from readers.model import Kind
from schemas.envelope import GATEWAY_RE, KINDS, TOPIC_PREFIX, RawFrame, build_envelope, topic

log = logging.getLogger(__name__)

MAX_MESSAGE_IDS = 65_535


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    """A command sent to a gateway: ``action`` ``"read"`` asks for one meter to be read now."""

    id: str
    action: str
    meter: str


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and how to log in, parsed from an ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


@dataclasses.dataclass(slots=True)
class _InFlight:
    upto_id: int
    acked: bool = False


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Return the broker address of ``mqtt://[user[:password]@]host[:port]``.

    Raises ConfigError if the scheme is not mqtt or mqtts or the host is missing.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"MQTT URL {url!r} must look like mqtt://host:1883 or mqtts://host")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"MQTT URL {url!r} has an invalid port") from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return BrokerAddress(parts.hostname, port, tls, username, password)


def parse_command(payload: bytes | bytearray) -> Command:
    """Parse a gateway command ``{"v":1,"id":..,"action":"read","meter":..}``.

    Raises EnvelopeError if the payload is not such a command.
    """
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"command is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("v") != 1:
        raise EnvelopeError("command must be a JSON object with version 1")
    fields = {name: document.get(name) for name in ("id", "action", "meter")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise EnvelopeError(f"command {name} must be a non-empty string")
    if fields["action"] != "read":
        raise EnvelopeError(f"command action {fields['action']!r} is not supported (want read)")
    return Command(str(fields["id"]), str(fields["action"]), str(fields["meter"]))


class FramePublisher:
    """Publishes raw frames of one gateway and kind through an on-disk spool."""

    def __init__(
        self,
        mqtt_url: str,
        gateway_id: str,
        kind: Kind,
        spool_path: Path | str,
        *,
        username: str | None = None,
        password: str | None = None,
        max_inflight: int = 100,
        frames_per_envelope: int = 20,
        max_spool_frames: int = DEFAULT_MAX_FRAMES,
        on_command: Callable[[Command], None] | None = None,
        client_id: str | None = None,
        reconnect_max_s: int = 30,
    ) -> None:
        """Open the spool, connect in the background and start sending what it holds.

        Raises ConfigError if an argument is invalid, StoreError if the spool cannot be
        opened, TransportError if the MQTT client cannot be set up.
        """
        _check_arguments(gateway_id, kind, max_inflight, frames_per_envelope)
        address = parse_mqtt_url(mqtt_url)
        self.gateway_id = gateway_id
        self.kind: Kind = kind
        self.max_inflight = max_inflight
        self.frames_per_envelope = frames_per_envelope
        self._topic = topic(gateway_id, kind)
        self._cmd_topic = f"{TOPIC_PREFIX}/{gateway_id}/cmd"
        self._on_command = on_command
        self._spool = Spool(spool_path, max_spool_frames)
        self._events: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        self._commands: queue.SimpleQueue[Command | None] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._drained = threading.Condition()
        self._publish_lock = threading.Lock()
        self._conn_gen = 0
        self._gen: int | None = None
        self._inflight: collections.OrderedDict[int, _InFlight] = collections.OrderedDict()
        self._next_after = 0
        self._stopping = False
        self._client = self._make_client(
            address,
            username or address.username,
            password or address.password,
            client_id or f"collector-{gateway_id}-{kind}",
            reconnect_max_s,
        )
        self._sender = threading.Thread(target=self._send_loop, name="mf-publisher", daemon=True)
        self._commander = threading.Thread(
            target=self._command_loop, name="mf-commands", daemon=True
        )
        try:
            self._start_client(address)
        except TransportError:
            self._spool.close()
            raise
        self._sender.start()
        self._commander.start()

    def publish(self, frames: Sequence[RawFrame]) -> None:
        """Queue ``frames`` on disk for delivery; returns once they are durable.

        Raises StoreError if the spool cannot be written.
        """
        self._spool.put(frames)
        self._wake.set()

    def set_command_handler(self, on_command: Callable[[Command], None] | None) -> None:
        """Hand later gateway commands to ``on_command`` (None rejects them)."""
        self._on_command = on_command

    def pending(self) -> int:
        """Return how many frames wait for the broker's acknowledgement."""
        return len(self._spool)

    @property
    def dropped(self) -> int:
        """How many frames the full spool dropped (oldest first) over its whole life."""
        return self._spool.dropped

    @property
    def connected(self) -> bool:
        """Whether the sender currently has a connection to the broker."""
        return self._gen is not None

    def wait_ready(self, timeout: float) -> bool:
        """Wait until connected and subscribed to commands; return False if ``timeout`` passed."""
        return self._ready.wait(timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued frame is acknowledged; return False if ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        with self._drained:
            while len(self._spool) > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._drained.wait(min(remaining, 0.5))
        return True

    def close(self) -> None:
        """Stop sending and disconnect; frames not yet acknowledged stay in the spool."""
        self._stopping = True
        self._wake.set()
        self._commands.put(None)
        self._sender.join()
        self._commander.join()
        self._client.disconnect()
        self._client.loop_stop()
        self._spool.close()

    def __enter__(self) -> FramePublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make_client(
        self,
        address: BrokerAddress,
        username: str | None,
        password: str | None,
        client_id: str,
        reconnect_max_s: int,
    ) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.max_inflight_messages = self.max_inflight
        client.reconnect_delay_set(1, max(1, reconnect_max_s))
        if username is not None:
            client.username_pw_set(username, password)
        if address.tls:
            try:
                client.tls_set()
            except (OSError, ValueError) as exc:
                raise TransportError(f"cannot set up TLS to {address.host}: {exc}") from exc
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _start_client(self, address: BrokerAddress) -> None:
        try:
            self._client.connect_async(address.host, address.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise TransportError(f"cannot connect to {address.host}:{address.port}: {exc}") from exc
        if self._client.loop_start() != mqtt.MQTT_ERR_SUCCESS:
            raise TransportError("cannot start the MQTT network thread")

    # paho callbacks, run on paho's network thread: they only queue events.

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection of %s: %s", self.gateway_id, reason)
            return
        with self._publish_lock:
            # paho would resend its own copies of unacknowledged envelopes now; drop them,
            # the sender restarts from the head of the spool instead, keeping the order.
            client.drop_out_messages()
            self._conn_gen += 1
            self._events.put(("connected", self._conn_gen))
        client.subscribe(self._cmd_topic, qos=1)
        log.info("connected to the broker as gateway %s", self.gateway_id)
        self._wake.set()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        self._ready.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._ready.clear()
        self._events.put(("disconnected", 0))
        if not self._stopping:
            log.warning("lost the broker (%s); frames are kept on disk", reason)
        self._wake.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        self._events.put(("acked", mid))
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            command = parse_command(message.payload)
        except EnvelopeError as exc:
            log.warning("ignored a command on %s: %s", message.topic, exc)
            self._reject(message.payload, str(exc))
            return
        self._commands.put(command)

    # The sender thread owns the in-flight window and the spool position.

    def _send_loop(self) -> None:
        while not self._stopping:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self._drain_events()
                self._remove_acked()
                self._fill_window()
            except MeterflowError as exc:
                log.error("publisher of %s: %s; retrying", self.gateway_id, exc)
                time.sleep(1.0)

    def _drain_events(self) -> None:
        while True:
            try:
                event, value = self._events.get_nowait()
            except queue.Empty:
                return
            if event == "acked":
                entry = self._inflight.get(value)
                if entry is not None:
                    entry.acked = True
            else:
                self._gen = value if event == "connected" else None
                self._inflight.clear()
                self._next_after = 0

    def _remove_acked(self) -> None:
        upto = 0
        while self._inflight:
            mid, entry = next(iter(self._inflight.items()))
            if not entry.acked:
                break
            upto = entry.upto_id
            del self._inflight[mid]
        if upto:
            self._spool.remove(upto)
            with self._drained:
                self._drained.notify_all()

    def _fill_window(self) -> None:
        while self._gen is not None and len(self._inflight) < self.max_inflight:
            batch = self._spool.peek(self.frames_per_envelope, after=self._next_after)
            if not batch:
                return
            payload = build_envelope(self.gateway_id, self.kind, [item.frame for item in batch])
            with self._publish_lock:
                if self._conn_gen != self._gen:
                    return  # a reconnection is queued; it restarts from the head
                info = self._client.publish(self._topic, payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                raise TransportError(f"paho refused to publish: {mqtt.error_string(info.rc)}")
            self._inflight[info.mid] = _InFlight(batch[-1].id)
            self._next_after = batch[-1].id

    # The command thread runs the callback so a slow read never stalls the network thread.

    def _command_loop(self) -> None:
        while (command := self._commands.get()) is not None:
            if self._on_command is None:
                self._acknowledge(command.id, "rejected", "this collector takes no commands")
                continue
            try:
                self._on_command(command)
            except MeterflowError as exc:
                log.error("command %s for meter %s failed: %s", command.id, command.meter, exc)
                self._acknowledge(command.id, "failed", str(exc))
                continue
            self._acknowledge(command.id, "done")

    def _reject(self, payload: bytes | bytearray, reason: str) -> None:
        try:
            command_id = json.loads(payload).get("id")
        except (ValueError, AttributeError):
            return
        if isinstance(command_id, str) and command_id:
            self._acknowledge(command_id, "rejected", reason)

    def _acknowledge(self, command_id: str, status: str, error: str | None = None) -> None:
        document: dict[str, Any] = {"v": 1, "id": command_id, "status": status}
        if error is not None:
            document["error"] = error
        payload = json.dumps(document, separators=(",", ":"))
        self._client.publish(f"{self._cmd_topic}/ack", payload, qos=1)


def _check_arguments(
    gateway_id: str, kind: str, max_inflight: int, frames_per_envelope: int
) -> None:
    if not GATEWAY_RE.fullmatch(gateway_id):
        raise ConfigError(f"gateway id {gateway_id!r} must be letters, digits, '_', '.', '-'")
    if kind not in KINDS:
        raise ConfigError(f"kind {kind!r} must be mbus or wmbus")
    if not 1 <= max_inflight <= MAX_MESSAGE_IDS // 2:
        raise ConfigError(f"max_inflight {max_inflight} must be from 1 to {MAX_MESSAGE_IDS // 2}")
    if not 1 <= frames_per_envelope <= 1000:
        raise ConfigError(f"frames_per_envelope {frames_per_envelope} must be from 1 to 1000")
