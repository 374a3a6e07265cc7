"""The frame publisher on the shared broker: envelopes in order, the window, gateway commands."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Tap, send_command

from meterflow.errors import ConfigError, EnvelopeError, TransportError
from readers.collectors.publisher import Command, FramePublisher, parse_command, parse_mqtt_url
from schemas.envelope import RawFrame, topic

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def numbered(start: int, count: int) -> list[RawFrame]:
    return [
        RawFrame(T0 + timedelta(seconds=i), i.to_bytes(4, "big"))
        for i in range(start, start + count)
    ]


def test_frames_arrive_in_order_in_envelopes_of_the_configured_size(
    mqtt_url: str, gateway_id: str, tmp_path: Path, tap_factory: Callable[..., Tap]
) -> None:
    tap = tap_factory(mqtt_url, topic(gateway_id, "mbus"))
    with FramePublisher(
        mqtt_url, gateway_id, "mbus", tmp_path / "s.db", frames_per_envelope=7, max_inflight=3
    ) as publisher:
        publisher.publish(numbered(0, 100))
        assert publisher.flush(20)
        assert publisher.pending() == 0
    assert tap.wait_for(lambda t: len(t.frames()) >= 100)
    envelopes = tap.envelopes()
    assert [frame.data for env in envelopes for frame in env.frames] == [
        f.data for f in numbered(0, 100)
    ]
    assert [len(env.frames) for env in envelopes] == [7] * 14 + [2]
    assert {(env.gateway, env.kind) for env in envelopes} == {(gateway_id, "mbus")}
    assert envelopes[0].frames[0].received_at == T0


def test_a_window_of_one_envelope_still_delivers_everything(
    mqtt_url: str, gateway_id: str, tmp_path: Path, tap_factory: Callable[..., Tap]
) -> None:
    tap = tap_factory(mqtt_url, topic(gateway_id, "wmbus"))
    with FramePublisher(
        mqtt_url, gateway_id, "wmbus", tmp_path / "s.db", frames_per_envelope=1, max_inflight=1
    ) as publisher:
        publisher.publish(numbered(0, 50))
        assert publisher.flush(20)
    assert tap.wait_for(lambda t: len(t.frames()) >= 50)
    assert tap.frames() == [f.data for f in numbered(0, 50)]


@pytest.mark.parametrize(
    "arguments",
    [
        {"gateway_id": "bad/gateway"},
        {"kind": "lora"},
        {"max_inflight": 70_000},
        {"frames_per_envelope": 0},
        {"mqtt_url": "http://127.0.0.1:1883"},
    ],
)
def test_invalid_arguments_raise_config_error(
    mqtt_url: str, tmp_path: Path, arguments: dict[str, object]
) -> None:
    values: dict[str, object] = {
        "mqtt_url": mqtt_url,
        "gateway_id": "gw-1",
        "kind": "mbus",
        "spool_path": tmp_path / "s.db",
    }
    values.update(arguments)
    with pytest.raises(ConfigError):
        FramePublisher(**values)  # type: ignore[arg-type]


def test_a_read_command_reaches_the_callback_and_is_acknowledged_with_its_id(
    mqtt_url: str, gateway_id: str, tmp_path: Path, tap_factory: Callable[..., Tap]
) -> None:
    acks = tap_factory(mqtt_url, f"mf/v1/{gateway_id}/cmd/ack")
    received: list[Command] = []
    called = threading.Event()

    def on_command(command: Command) -> None:
        received.append(command)
        called.set()

    with FramePublisher(
        mqtt_url, gateway_id, "mbus", tmp_path / "s.db", on_command=on_command
    ) as publisher:
        assert publisher.wait_ready(10)
        send_command(
            mqtt_url, gateway_id, {"v": 1, "id": "c-1", "action": "read", "meter": "APA-00000001"}
        )
        assert called.wait(10)
        assert acks.wait_for(lambda t: len(t.messages) >= 1)
    assert received == [Command("c-1", "read", "APA-00000001")]
    assert json.loads(acks.messages[0][1]) == {"v": 1, "id": "c-1", "status": "done"}


def test_a_failing_command_is_acknowledged_as_failed_with_the_reason(
    mqtt_url: str, gateway_id: str, tmp_path: Path, tap_factory: Callable[..., Tap]
) -> None:
    acks = tap_factory(mqtt_url, f"mf/v1/{gateway_id}/cmd/ack")

    def on_command(command: Command) -> None:
        raise TransportError("no answer from the meter")

    with FramePublisher(
        mqtt_url, gateway_id, "mbus", tmp_path / "s.db", on_command=on_command
    ) as publisher:
        assert publisher.wait_ready(10)
        send_command(mqtt_url, gateway_id, {"v": 1, "id": "c-2", "action": "read", "meter": "x"})
        assert acks.wait_for(lambda t: len(t.messages) >= 1)
    assert json.loads(acks.messages[0][1]) == {
        "v": 1,
        "id": "c-2",
        "status": "failed",
        "error": "no answer from the meter",
    }


def test_a_malformed_command_is_rejected_under_its_id(
    mqtt_url: str, gateway_id: str, tmp_path: Path, tap_factory: Callable[..., Tap]
) -> None:
    acks = tap_factory(mqtt_url, f"mf/v1/{gateway_id}/cmd/ack")
    with FramePublisher(
        mqtt_url, gateway_id, "mbus", tmp_path / "s.db", on_command=lambda c: None
    ) as publisher:
        assert publisher.wait_ready(10)
        send_command(mqtt_url, gateway_id, b"not json")
        send_command(mqtt_url, gateway_id, {"v": 1, "id": "c-3", "action": "reboot", "meter": "x"})
        assert acks.wait_for(lambda t: len(t.messages) >= 1)
    answer = json.loads(acks.messages[0][1])
    assert (answer["id"], answer["status"]) == ("c-3", "rejected")
    assert "reboot" in answer["error"]


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        b'{"v":2,"id":"a","action":"read","meter":"m"}',
        b'{"v":1,"action":"read","meter":"m"}',
    ],
)
def test_parse_command_refuses_anything_but_a_version_1_read(payload: bytes) -> None:
    with pytest.raises(EnvelopeError):
        parse_command(payload)


def test_mqtt_url_carries_credentials_and_tls() -> None:
    address = parse_mqtt_url("mqtts://gw%2D1:s%40cret@broker.example")
    assert (address.host, address.port, address.tls) == ("broker.example", 8883, True)
    assert (address.username, address.password) == ("gw-1", "s@cret")
