"""Wired M-Bus frames: parse and build the four frame types, checks, selection, fixed data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meterflow.errors import ChecksumError, FrameError, UnsupportedError
from readers.mbus import (
    Ack,
    ControlFrame,
    LongFrame,
    SecondarySelection,
    ShortFrame,
    decode_mbus,
    encode_application_reset,
    encode_long,
    encode_req_ud2,
    encode_select_secondary,
    encode_snd_nke,
    more_records_follow,
    parse_frame,
    parse_select_secondary,
)
from readers.model import Header


def test_single_character_ack() -> None:
    assert parse_frame(b"\xe5") == Ack()


def test_snd_nke_and_req_ud2_with_frame_count_bit() -> None:
    assert encode_snd_nke(5).hex() == "1040054516"
    assert encode_req_ud2(5).hex() == "105b056016"
    assert encode_req_ud2(5, fcb=True).hex() == "107b058016"
    assert parse_frame(encode_req_ud2(1, fcb=True)) == ShortFrame(0x7B, 1)


def test_application_reset_control_frame() -> None:
    assert encode_application_reset(1).hex() == "6803036853015" + "0a416"
    assert parse_frame(encode_application_reset(1)) == ControlFrame(0x53, 1, 0x50)


def test_long_frame_round_trip() -> None:
    frame = encode_long(0x08, 3, 0x72, b"\x01\x02")
    assert parse_frame(frame) == LongFrame(0x08, 3, 0x72, b"\x01\x02")


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("105b056116", ChecksumError),
        ("105b056015", FrameError),
        ("6804036808017201" + "7c16", FrameError),
        ("680303680801727c16", ChecksumError),
        ("e5e5", FrameError),
        ("", FrameError),
        ("42", FrameError),
    ],
)
def test_broken_frames_are_refused(raw: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_frame(bytes.fromhex(raw))


def test_select_secondary_with_wildcards_round_trip() -> None:
    selection = SecondarySelection("1234FFFF", None, None, 7)
    frame = encode_select_secondary(selection)
    assert frame.hex() == "680b0b6853fd52" + "ffff3412" + "ffff" + "ff" + "07" + "ea16"
    parsed = parse_frame(frame)
    assert isinstance(parsed, LongFrame)
    assert parse_select_secondary(parsed) == selection
    assert selection.matches(Header("KAM", "12349876", 1, 7))
    assert not selection.matches(Header("KAM", "12359876", 1, 7))
    assert not selection.matches(Header("KAM", "12349876", 1, 6))


def test_fixed_data_structure_bcd_counters() -> None:
    telegram = decode_mbus(bytes.fromhex("681313680801739392919010000569316500006900000" + "03f16"))
    assert telegram.header.id == "90919293" and telegram.header.device_type == 4
    assert [(r.quantity, r.value) for r in telegram.records] == [
        ("energy", Decimal("6531000")),
        ("volume", Decimal("0.069")),
    ]


def test_short_header_telegram_is_named_by_primary_address() -> None:
    frame = encode_long(0x08, 12, 0x7A, bytes.fromhex("2A000000" + "0413" + "39300000"))
    telegram = decode_mbus(frame)
    assert (telegram.header.manufacturer, telegram.header.id) == ("@@@", "00000012")
    assert telegram.header.access_no == 0x2A


def test_more_records_follow_is_reported() -> None:
    frame = encode_long(0x08, 1, 0x72, bytes.fromhex("785634122D2C0107010000001F"))
    assert more_records_follow(decode_mbus(frame))


def test_unsupported_ci_fields() -> None:
    with pytest.raises(UnsupportedError):
        decode_mbus(encode_long(0x08, 1, 0x76, bytes(12)))
    with pytest.raises(UnsupportedError):
        decode_mbus(encode_long(0x08, 1, 0x51, bytes(4)))
    with pytest.raises(FrameError):
        decode_mbus(b"\xe5")
