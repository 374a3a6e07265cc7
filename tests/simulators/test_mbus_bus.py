"""The virtual M-Bus: link-layer answers, FCB, multi-telegram, selection, collisions, faults."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest

from meterflow.errors import ChecksumError, FrameError
from readers.mbus import (
    ACK,
    SecondarySelection,
    decode_mbus,
    encode_req_ud2,
    encode_select_secondary,
    encode_snd_nke,
    more_records_follow,
    parse_frame,
)
from readers.model import Header, Record
from simulators.mbus_bus import MbusBus, VirtualSlave, collide, demo_slaves

E5 = bytes([ACK])


def slave(
    primary: int, ident: str, maker: str = "APA", per_telegram: int | None = None
) -> VirtualSlave:
    records = [
        Record("volume", "m3", Decimal(f"{primary}.125")),
        Record("flow", "m3/h", Decimal("0.012")),
        Record("error_flags", "", 0),
    ]
    return VirtualSlave(primary, Header(maker, ident, 1, 0x07), lambda: records, per_telegram)


@pytest.fixture
def bus() -> MbusBus:
    return MbusBus([slave(1, "11111111"), slave(2, "11112222", "KAM"), slave(3, "22223333")])


def test_snd_nke_is_acknowledged_with_e5(bus: MbusBus) -> None:
    assert bus.handle(encode_snd_nke(1)) == E5


def test_req_ud2_is_answered_with_the_slaves_records(bus: MbusBus) -> None:
    telegram = decode_mbus(bus.handle(encode_req_ud2(2, fcb=True)))
    assert telegram.header.meter_id == "KAM-11112222"
    assert telegram.records[0] == Record("volume", "m3", Decimal("2.125"))


def test_the_same_fcb_repeats_the_answer_and_a_toggled_fcb_gets_a_new_one(bus: MbusBus) -> None:
    first = bus.handle(encode_req_ud2(1, fcb=True))
    assert bus.handle(encode_req_ud2(1, fcb=True)) == first
    fresh = decode_mbus(bus.handle(encode_req_ud2(1, fcb=False)))
    assert fresh.header.access_no == decode_mbus(first).header.access_no + 1


def test_records_split_over_telegrams_announce_that_more_follow() -> None:
    bus = MbusBus([slave(7, "77777777", per_telegram=2)])
    first = decode_mbus(bus.handle(encode_req_ud2(7, fcb=True)))
    second = decode_mbus(bus.handle(encode_req_ud2(7, fcb=False)))
    assert more_records_follow(first) and not more_records_follow(second)
    assert [r.quantity for r in first.records[:2] + second.records] == [
        "volume",
        "flow",
        "error_flags",
    ]


def test_snd_nke_restarts_a_multi_telegram_answer() -> None:
    bus = MbusBus([slave(7, "77777777", per_telegram=2)])
    bus.handle(encode_req_ud2(7, fcb=True))
    bus.handle(encode_snd_nke(7))
    again = decode_mbus(bus.handle(encode_req_ud2(7, fcb=False)))
    assert again.records[0].quantity == "volume"


def test_silence_for_an_unknown_address_a_broadcast_or_a_bad_checksum(bus: MbusBus) -> None:
    assert bus.handle(encode_snd_nke(99)) == b""
    assert bus.handle(encode_snd_nke(0xFF)) == b""
    broken = bytearray(encode_snd_nke(1))
    broken[3] ^= 0xFF
    assert bus.handle(bytes(broken)) == b""


def test_secondary_selection_then_address_fd_reads_the_selected_slave(bus: MbusBus) -> None:
    assert bus.handle(encode_select_secondary(SecondarySelection("22223333"))) == E5
    telegram = decode_mbus(bus.handle(encode_req_ud2(0xFD, fcb=True)))
    assert telegram.header.id == "22223333"
    assert bus.handle(encode_snd_nke(0xFD)) == E5
    assert bus.handle(encode_req_ud2(0xFD, fcb=False)) == b""


def test_selection_honours_wildcards_and_the_manufacturer(bus: MbusBus) -> None:
    assert bus.handle(encode_select_secondary(SecondarySelection("1111FFFF", "KAM"))) == E5
    assert decode_mbus(bus.handle(encode_req_ud2(0xFD, fcb=True))).header.id == "11112222"
    assert bus.handle(encode_select_secondary(SecondarySelection("9FFFFFFF"))) == b""


def test_several_selected_slaves_garble_their_answers(bus: MbusBus) -> None:
    # Identical E5s overlap into one clean E5; different telegrams do not survive.
    assert bus.handle(encode_select_secondary(SecondarySelection("1111FFFF"))) == E5
    line = bus.handle(encode_req_ud2(0xFD, fcb=True))
    with pytest.raises((FrameError, ChecksumError)):
        parse_frame(line)


def test_collide_is_the_bitwise_and_of_the_answers() -> None:
    assert collide([b"\xe5", b"\xe5"]) == b"\xe5"
    assert collide([b"\xf0\x0f", b"\x3c"]) == b"\x30\x0f"
    assert collide([]) == b""


def test_an_ignoring_slave_is_silent_once_then_answers(bus: MbusBus) -> None:
    bus.slaves[0].faults.ignore_next = 1
    assert bus.handle(encode_snd_nke(1)) == b""
    assert bus.handle(encode_snd_nke(1)) == E5


def test_a_corrupted_answer_has_a_bad_checksum_and_the_repeat_is_clean(bus: MbusBus) -> None:
    bus.slaves[0].faults.corrupt_next = 1
    bad = bus.handle(encode_req_ud2(1, fcb=True))
    with pytest.raises(ChecksumError):
        parse_frame(bad)
    good = bus.handle(encode_req_ud2(1, fcb=True))
    assert bad[:-2] == good[:-2] and bad[-2] != good[-2]


def test_the_bus_answers_over_tcp_frames_split_across_writes() -> None:
    with (
        MbusBus([slave(1, "11111111")]) as bus,
        socket.create_connection((bus.host, bus.port), timeout=5) as conn,
    ):
        request = encode_snd_nke(1)
        conn.sendall(b"\x00\x99" + request[:2])
        conn.sendall(request[2:])
        assert conn.recv(16) == E5


def test_demo_slaves_carry_a_virtual_meters_records() -> None:
    slaves = demo_slaves(3, seed=4)
    assert [s.primary for s in slaves] == [1, 2, 3]
    assert len({s.header.id for s in slaves}) == 3
    telegram = decode_mbus(MbusBus(slaves).handle(encode_req_ud2(2, fcb=True)))
    assert telegram.records[0].quantity == "volume"
