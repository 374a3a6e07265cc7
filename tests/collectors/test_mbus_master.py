"""The M-Bus master polls the virtual bus over TCP: addressing, scan, telegrams, retries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import Tap, send_command
from services import free_port

from meterflow.errors import ConfigError, TransportError
from readers.collectors.mbus_master import MbusMaster
from readers.collectors.mbus_poll import MbusPoller, parse_target, target_from_header
from readers.collectors.publisher import FramePublisher
from readers.mbus import SecondarySelection, decode_mbus
from readers.model import Header, Record
from schemas.envelope import RawFrame, topic
from simulators.mbus_bus import MbusBus, VirtualSlave

IDS = ("10000001", "11000002", "12000003", "50000004", "90000005")
TIMEOUT_S = 0.25


def slave(primary: int, ident: str, per_telegram: int | None = None) -> VirtualSlave:
    records = [
        Record("volume", "m3", Decimal(f"{primary}.125")),
        Record("flow", "m3/h", Decimal("0.012")),
        Record("volume", "m3", Decimal(f"{primary}.000"), storage=1),
        Record("error_flags", "", 0),
    ]
    maker = "KAM" if primary % 2 else "APA"
    return VirtualSlave(primary, Header(maker, ident, 1, 0x07), lambda: records, per_telegram)


@pytest.fixture
def bus() -> Iterator[MbusBus]:
    with MbusBus([slave(i + 1, ident) for i, ident in enumerate(IDS)]) as bus:
        yield bus


@pytest.fixture
def master(bus: MbusBus) -> Iterator[MbusMaster]:
    with MbusMaster(bus.url, answer_timeout_s=TIMEOUT_S) as master:
        yield master


class ListSink:
    def __init__(self) -> None:
        self.frames: list[RawFrame] = []

    def publish(self, frames: Sequence[RawFrame]) -> None:
        self.frames.extend(frames)


def test_a_primary_read_returns_the_meters_rsp_ud(master: MbusMaster) -> None:
    [raw] = master.read_primary(3)
    telegram = decode_mbus(raw)
    assert telegram.header.meter_id == "KAM-12000003"
    assert telegram.records[0] == Record("volume", "m3", Decimal("3.125"))


def test_a_secondary_read_selects_by_id_and_manufacturer(master: MbusMaster) -> None:
    [raw] = master.read_secondary(SecondarySelection("50000004", "APA"))
    assert decode_mbus(raw).header.id == "50000004"


def test_repeated_secondary_reads_get_fresh_telegrams(master: MbusMaster) -> None:
    first = decode_mbus(master.read_secondary(SecondarySelection("50000004"))[0])
    second = decode_mbus(master.read_secondary(SecondarySelection("50000004"))[0])
    assert second.header.access_no == (first.header.access_no or 0) + 1


def test_the_wildcard_scan_finds_every_slave(master: MbusMaster) -> None:
    found = master.scan_secondary()
    assert sorted(header.id for header in found) == sorted(IDS)
    assert master.stats.collisions >= 2


def test_the_scan_of_a_single_slave_needs_one_probe() -> None:
    with (
        MbusBus([slave(1, "12345678")]) as bus,
        MbusMaster(bus.url, answer_timeout_s=TIMEOUT_S) as m,
    ):
        [header] = m.scan_secondary()
    assert header.meter_id == "KAM-12345678"
    assert m.stats.collisions == 0


def test_a_multi_telegram_answer_is_followed_to_its_last_telegram() -> None:
    with (
        MbusBus([slave(9, "99999999", per_telegram=1)]) as bus,
        MbusMaster(bus.url, answer_timeout_s=TIMEOUT_S) as master,
    ):
        telegrams = [decode_mbus(raw) for raw in master.read_primary(9)]
    assert len(telegrams) == 4
    values = [t.records[0].value for t in telegrams]
    assert values == [Decimal("9.125"), Decimal("0.012"), Decimal("9.000"), 0]


def test_a_missed_answer_is_retried(bus: MbusBus, master: MbusMaster) -> None:
    bus.slaves[1].faults.ignore_next = 2
    [raw] = master.read_primary(2)
    assert decode_mbus(raw).header.id == "11000002"
    assert (master.stats.no_answer, master.stats.retries) == (2, 2)


def test_a_bad_checksum_is_counted_and_the_repeat_is_the_same_telegram(
    bus: MbusBus, master: MbusMaster
) -> None:
    reference = decode_mbus(master.read_primary(4)[0]).header.access_no or 0
    bus.slaves[3].faults.corrupt_next = 1
    [raw] = master.read_primary(4)
    assert master.stats.bad_frames == 1 and master.stats.retries == 1
    assert decode_mbus(raw).header.access_no == reference + 1


def test_a_silent_meter_raises_transport_error_after_the_retries(
    bus: MbusBus, master: MbusMaster
) -> None:
    bus.slaves[0].faults.ignore_next = 100
    with pytest.raises(TransportError, match="no answer after 3 tries"):
        master.read_primary(1)
    with pytest.raises(TransportError, match="outside"):
        master.read_primary(251)


def test_a_line_that_cannot_be_opened_raises_transport_error() -> None:
    with pytest.raises(TransportError, match="cannot open"):
        MbusMaster(f"socket://127.0.0.1:{free_port()}")


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("5", 5),
        ("12345678", SecondarySelection("12345678")),
        ("1234ffff", SecondarySelection("1234FFFF")),
        ("apa-12345678", SecondarySelection("12345678", "APA")),
    ],
)
def test_meter_names_become_targets(text: str, target: object) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["251", "1234567", "APA-1234", "meter"])
def test_invalid_meter_names_raise_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_target(text)


def test_the_poller_publishes_every_telegram_and_counts_failures(
    bus: MbusBus, master: MbusMaster
) -> None:
    bus.slaves[4].faults.ignore_next = 100
    sink = ListSink()
    targets = [1, target_from_header(bus.slaves[3].header), 5]
    poller = MbusPoller(master, sink, targets, interval_s=60)
    assert poller.poll_once() == 2
    assert [decode_mbus(f.data).header.id for f in sink.frames] == ["10000001", "50000004"]
    assert poller.failures == 1
    assert all(f.received_at.tzinfo is not None for f in sink.frames)


def test_polled_frames_and_read_commands_reach_the_broker(
    bus: MbusBus,
    master: MbusMaster,
    mqtt_url: str,
    gateway_id: str,
    tmp_path: Path,
    tap_factory: Callable[..., Tap],
) -> None:
    frames = tap_factory(mqtt_url, topic(gateway_id, "mbus"))
    acks = tap_factory(mqtt_url, f"mf/v1/{gateway_id}/cmd/ack")
    with FramePublisher(mqtt_url, gateway_id, "mbus", tmp_path / "s.db") as publisher:
        poller = MbusPoller(master, publisher, [1, 2], interval_s=60)
        publisher.set_command_handler(poller.on_command)
        assert publisher.wait_ready(10)
        poller.poll_once()
        send_command(
            mqtt_url, gateway_id, {"v": 1, "id": "r-1", "action": "read", "meter": "KAM-90000005"}
        )
        assert acks.wait_for(lambda t: len(t.messages) >= 1)
        assert publisher.flush(10)
    assert frames.wait_for(lambda t: len(t.frames()) >= 3)
    assert [decode_mbus(raw).header.id for raw in frames.frames()] == [
        "10000001",
        "11000002",
        "90000005",
    ]
    assert json.loads(acks.messages[0][1]) == {"v": 1, "id": "r-1", "status": "done"}
