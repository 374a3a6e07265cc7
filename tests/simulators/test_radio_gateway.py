"""The virtual radio gateway: decodable encrypted telegrams, envelopes on the broker, commands."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from radio_helpers import START, Subscriber, small_fleet

from meterflow.errors import ConfigError, CrcError, DecodeError
from readers.codec import decode_frame
from readers.collectors.publisher import Command, FramePublisher
from readers.model import Header, Telegram
from schemas.envelope import parse_envelope
from simulators.radio_gateway import SimClock, VirtualRadio, run_radio


def keys_of(radio: VirtualRadio) -> dict[str, bytes]:
    return {meter.header.meter_id: meter.key for meter in radio.meters}


def decode(data: bytes, keys: dict[str, bytes]) -> Telegram:
    def key_for(header: Header) -> bytes | None:
        return keys.get(header.meter_id)

    return decode_frame("wmbus", data, key_for)


def test_telegrams_decode_with_their_keys_and_carry_the_exact_register() -> None:
    meters = small_fleet(5)
    radio = VirtualRadio(meters, ["gw-a"], start=START, interval_s=300)
    keys = keys_of(radio)
    heard = radio.step(START + timedelta(hours=3))["gw-a"]
    assert len(heard) >= 5 * 3 * 12 - 5
    last: dict[str, Decimal] = {}
    for frame in heard:
        telegram = decode(frame.data, keys)
        volume = next(r.value for r in telegram.records if r.quantity == "volume" and not r.storage)
        assert isinstance(volume, Decimal)
        meter_id = telegram.header.meter_id
        assert volume >= last.get(meter_id, Decimal(0))
        last[meter_id] = volume
        assert -115 <= (frame.rssi_dbm or 0) <= -55
    for meter in meters:
        assert last[meter.header.meter_id] == Decimal(meter.total_litres) / 1000
    final = decode(heard[-1].data, keys)
    assert final.fields["total_m3"] == last[final.header.meter_id]


def test_a_wrong_key_does_not_decrypt() -> None:
    radio = VirtualRadio(small_fleet(1), ["gw-a"], start=START)
    (frame,) = radio.step(START + timedelta(seconds=120))["gw-a"]
    with pytest.raises(DecodeError):
        decode(frame.data, {"APA-70000000": bytes(16)})


def test_some_meters_are_heard_by_two_gateways_with_the_same_bytes() -> None:
    radio = VirtualRadio(small_fleet(60), ["gw-a", "gw-b", "gw-c"], start=START, overlap=0.3)
    heard = radio.step(START + timedelta(seconds=119))
    by_gateway = {gw: {f.data for f in frames} for gw, frames in heard.items()}
    shared = (by_gateway["gw-a"] & by_gateway["gw-b"]) | (by_gateway["gw-b"] & by_gateway["gw-c"])
    shared |= by_gateway["gw-a"] & by_gateway["gw-c"]
    assert 5 <= len(shared) <= 35
    assert sum(len(frames) for frames in heard.values()) == 60 + len(shared)
    twice = [i for i in range(60) if len(radio.coverage(i)) == 2]
    assert len(twice) == len(shared)
    assert all(a.rssi_dbm - b.rssi_dbm == 8 for a, b in (radio.coverage(i) for i in twice))


def test_corrupted_receptions_fail_their_crc_at_the_configured_rate() -> None:
    radio = VirtualRadio(small_fleet(50), ["gw-a"], start=START, corrupt_rate=0.1, interval_s=60)
    keys = keys_of(radio)
    outcome: Counter[str] = Counter()
    for frame in radio.step(START + timedelta(minutes=20))["gw-a"]:
        try:
            decode(frame.data, keys)
            outcome["good"] += 1
        except CrcError:
            outcome["crc"] += 1
    assert outcome["crc"] == radio.stats.corrupted
    assert 0.05 < outcome["crc"] / radio.stats.frames < 0.15


def test_compressed_time_runs_the_simulated_clock_faster() -> None:
    now = [100.0]
    clock = SimClock(START, speed=60, monotonic=lambda: now[0])
    now[0] += 2.5
    assert clock.now() == START + timedelta(seconds=150)
    assert clock.real_seconds_until(START + timedelta(seconds=210)) == 1.0


def test_read_of_an_unknown_meter_is_refused() -> None:
    radio = VirtualRadio(small_fleet(10), ["gw-a", "gw-b"], start=START, overlap=0)
    with pytest.raises(ConfigError, match="not one of"):
        radio.read_now("gw-a", "APA-99999999", START)
    index = next(i for i in range(10) if radio.coverage(i)[0].gateway == "gw-b")
    with pytest.raises(ConfigError, match="not in range"):
        radio.read_now("gw-a", radio.meters[index].header.meter_id, START)


def test_gateways_publish_envelopes_a_subscriber_receives(mqtt_url: str, tmp_path: Path) -> None:
    gateways = [f"gw-sim-{uuid.uuid4().hex[:8]}-{n}" for n in range(2)]
    radio = VirtualRadio(small_fleet(20), gateways, start=START, interval_s=600, overlap=0.2)
    keys = keys_of(radio)
    subscriber = Subscriber(mqtt_url, "mf/v1/+/wmbus")
    publishers = {
        gw: FramePublisher(mqtt_url, gw, "wmbus", tmp_path / f"{gw}.db") for gw in gateways
    }
    try:
        clock = SimClock(START, speed=1e6)
        stats = run_radio(
            radio, publishers, clock, threading.Event(), until=START + timedelta(hours=1)
        )
        assert all(p.flush(20) for p in publishers.values())
        assert subscriber.wait_for(
            lambda msgs: (
                sum(len(parse_envelope(p).frames) for t, p in msgs if t.split("/")[2] in gateways)
                >= stats.frames
            )
        )
    finally:
        for publisher in publishers.values():
            publisher.close()
        subscriber.close()
    envelopes = [parse_envelope(p) for t, p in subscriber.received() if t.split("/")[2] in gateways]
    assert {env.kind for env in envelopes} == {"wmbus"}
    frames = [frame for env in envelopes for frame in env.frames]
    assert len(frames) == stats.frames and stats.telegrams >= 20 * 6
    for frame in frames:
        assert decode(frame.data, keys).header.manufacturer == "APA"
        assert START <= frame.received_at <= START + timedelta(hours=1)


def test_read_command_sends_the_telegram_at_once_and_acks(mqtt_url: str, tmp_path: Path) -> None:
    gateway = f"gw-sim-{uuid.uuid4().hex[:8]}"
    radio = VirtualRadio(small_fleet(3), [gateway], start=START, interval_s=86400)
    keys = keys_of(radio)
    subscriber = Subscriber(mqtt_url, f"mf/v1/{gateway}/#")
    publishers: dict[str, FramePublisher] = {}

    def on_command(command: Command) -> None:
        frame = radio.read_now(gateway, command.meter, START + timedelta(minutes=5))
        publishers[gateway].publish([frame])

    publishers[gateway] = FramePublisher(
        mqtt_url, gateway, "wmbus", tmp_path / "gw.db", on_command=on_command
    )
    try:
        assert publishers[gateway].flush(5)
        subscriber.wait_for(lambda msgs: False, timeout=0.5)
        for ident, meter in (("c1", "APA-70000001"), ("c2", "70000002"), ("c3", "APA-1")):
            subscriber.send(
                f"mf/v1/{gateway}/cmd", {"v": 1, "id": ident, "action": "read", "meter": meter}
            )
        assert subscriber.wait_for(
            lambda msgs: (
                sum(t.endswith("/cmd/ack") for t, _ in msgs) >= 3
                and sum(t.endswith("/wmbus") for t, _ in msgs) >= 2
            )
        )
    finally:
        publishers[gateway].close()
        subscriber.close()
    messages = subscriber.received()
    acks = {json.loads(p)["id"]: json.loads(p) for t, p in messages if t.endswith("/cmd/ack")}
    assert acks["c1"]["status"] == acks["c2"]["status"] == "done"
    assert acks["c3"]["status"] == "failed" and "not one of" in acks["c3"]["error"]
    read = [f for t, p in messages if t.endswith("/wmbus") for f in parse_envelope(p).frames]
    ids = sorted(decode(frame.data, keys).header.meter_id for frame in read)
    assert ids == ["APA-70000001", "APA-70000002"]
