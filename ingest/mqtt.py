"""A thin paho-mqtt adapter: a persistent MQTT 5 (or 3.1.1) session feeding a queue.

The paho network thread only enqueues; the worker acknowledges with ``ack`` after its commit.
A message is acknowledged only on the connection that delivered it: after a reconnect the
broker redelivers what was not acknowledged, and an old packet id may already name a new
message, so acknowledging it would be wrong.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from meterflow.errors import ConfigError, TransportError

log = logging.getLogger(__name__)

SHARED_FILTER = "$share/ingest/mf/v1/+/+"
PLAIN_FILTER = "mf/v1/+/+"
# METERFLOW_MQTT_PROTOCOL values: MQTT 5, or 3.1.1 for brokers without 5 (the embedded one).
PROTOCOLS = {"5": paho.MQTTv5, "3.1.1": paho.MQTTv311}


def protocol_version(name: str) -> MQTTProtocolVersion:
    """Return paho's protocol constant for a ``METERFLOW_MQTT_PROTOCOL`` value.

    Raises ConfigError if the value is neither ``5`` nor ``3.1.1``.
    """
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(
            f"METERFLOW_MQTT_PROTOCOL={name!r} is not supported; use 5 or 3.1.1"
        ) from None


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One received PUBLISH, tagged with the connection it came on."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Host, port and credentials parsed from an ``mqtt://[user:pass@]host[:port]`` URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """Parse a broker URL.

        Raises ConfigError if it is not ``mqtt://host[:port]``.
        """
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ConfigError(f"broker URL {url!r} must look like mqtt://host:1883")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, parts.port or 1883, user, password)


class Consumer:
    """A persistent-session QoS 1 subscriber with manual acknowledgement.

    With MQTT 5 the session has an expiry and a Receive Maximum; with MQTT 3.1.1 it is a
    ``clean_session=False`` session and the broker's own in-flight limit applies.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        topic_filter: str,
        *,
        session_expiry_s: int,
        receive_maximum: int,
        protocol: str = "5",
    ) -> None:
        self.address = BrokerAddress.parse(url)
        self._v5 = protocol_version(protocol) == paho.MQTTv5
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.topic_filter = topic_filter
        self._connection = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = False
        self._lock = threading.Lock()
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol_version(protocol),
            clean_session=None if self._v5 else False,
            manual_ack=True,
        )
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        self._properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        self._properties.SessionExpiryInterval = session_expiry_s
        self._properties.ReceiveMaximum = receive_maximum

    def start(self) -> None:
        """Start connecting in the background; paho reconnects with back-off after a drop."""
        if self._v5:
            self._client.connect_async(
                self.address.host,
                self.address.port,
                keepalive=30,
                clean_start=False,
                properties=self._properties,
            )
        else:
            self._client.connect_async(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the broker has confirmed the subscription; return whether it has."""
        return self._subscribed.wait(timeout)

    def ack(self, message: Message) -> bool:
        """Acknowledge ``message`` if its connection is still the current one.

        Raises TransportError if paho refuses the acknowledgement.
        """
        with self._lock:
            if message.connection != self._connection or not self._connected.is_set():
                return False
            code = self._client.ack(message.mid, message.qos)
        if code not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise TransportError(f"cannot acknowledge message {message.mid}: {code}")
        return code == MQTTErrorCode.MQTT_ERR_SUCCESS

    def stop(self) -> None:
        """Disconnect (the session stays on the broker) and stop the network thread."""
        self._stopping = True
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        with self._lock:
            self._connection += 1
        log.info(
            "connected to %s:%d (session present: %s), subscribing to %s",
            self.address.host,
            self.address.port,
            flags.session_present,
            self.topic_filter,
        )
        if self._v5:
            client.subscribe(self.topic_filter, options=SubscribeOptions(qos=1))
        else:
            client.subscribe(self.topic_filter, qos=1)
        self._connected.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if self._stopping:
            log.info("disconnected from the broker")
        else:
            log.warning("disconnected from the broker (%s); reconnecting with back-off", reason)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            log.error("broker refused the subscription to %s: %s", self.topic_filter, reasons)
            return
        log.info("subscribed to %s", self.topic_filter)
        self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self.inbox.put(Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._connection))
