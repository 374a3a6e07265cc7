"""The radio collector's inputs: hex lines, rtl_wmbus lines and an L-field framed byte stream."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from meterflow.errors import CrcError, DecodeError, FrameError, TransportError
from readers.collectors.radio import (
    LFieldFramer,
    check_telegram,
    collect_lines,
    collect_serial,
    open_serial,
    parse_hex_line,
    parse_rtlwmbus_line,
)
from readers.crc import crc16_en13757
from schemas.envelope import RawFrame

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
# A public Qundis telegram as rtl_wmbus prints it (CRCs stripped), from wmbusmeters' sources.
QDS_HEX = (
    "49449344590474943508780dff5f3500827f0000f10007b06effff530100005f2c620100007f21180100"
    "00008000800080008000000000000000000e003f005500d4ff2f046d10086922"
)
QDS = bytes.fromhex(QDS_HEX)
RTL_LINE = f"C1;1;1;2019-02-09 07:14:18.000;117;102;94740459;0x{QDS_HEX}"


def with_format_a_crcs(frame: bytes) -> bytes:
    blocks = [frame[:10]] + [frame[i : i + 16] for i in range(10, len(frame), 16)]
    return b"".join(block + crc16_en13757(block).to_bytes(2, "big") for block in blocks)


def test_rtlwmbus_line_gives_the_telegram_and_its_utc_time() -> None:
    (frame,) = parse_rtlwmbus_line(RTL_LINE + "\n", NOW)
    assert frame == RawFrame(datetime(2019, 2, 9, 7, 14, 18, tzinfo=UTC), QDS, None)


def test_rtlwmbus_line_with_two_telegrams_gives_both() -> None:
    frames = parse_rtlwmbus_line(f"{RTL_LINE};0x{QDS_HEX}", NOW)
    assert [frame.data for frame in frames] == [QDS, QDS]


@pytest.mark.parametrize(
    ("line", "error", "reason"),
    [
        (RTL_LINE.replace("C1;1;1", "C1;0;1"), CrcError, "CRC error"),
        (RTL_LINE.replace("C1;1;1", "T1;1;0"), CrcError, "3-out-of-6"),
        (RTL_LINE.replace("C1;", "X9;"), FrameError, "not an rtl_wmbus line"),
        ("T1;1;1;2019-02-09 07:14:18.000;117", FrameError, "not an rtl_wmbus line"),
        (RTL_LINE.replace("2019-02-09", "09.02.2019"), FrameError, "time"),
        (RTL_LINE.replace(";0x49", ";49"), FrameError, "0x"),
        (RTL_LINE.replace(";0x49", ";0xZZ"), FrameError, "not hex"),
        (RTL_LINE[:-10], FrameError, "L field"),
    ],
)
def test_bad_rtlwmbus_lines_raise_a_clear_decode_error(
    line: str, error: type[DecodeError], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        parse_rtlwmbus_line(line, NOW)


def test_hex_line_alone_gets_the_receive_time() -> None:
    assert parse_hex_line(QDS_HEX, NOW) == (RawFrame(NOW, QDS, None),)
    assert parse_hex_line("0x" + QDS_HEX.upper(), NOW) == (RawFrame(NOW, QDS, None),)


@pytest.mark.parametrize(
    ("line", "time", "rssi"),
    [
        (f"2026-11-20T08:00:00Z {QDS_HEX} -71", datetime(2026, 11, 20, 8, tzinfo=UTC), -71),
        (f"2026-11-20 08:00:00.250;{QDS_HEX};-80dBm", datetime(2026, 11, 20, 8, 0, 0, 250000, UTC),
         -80),
        (f"2026-11-20T09:00:00+01:00,{QDS_HEX}", datetime(2026, 11, 20, 8, tzinfo=UTC), None),
        (f"{QDS_HEX} -65 dBm", NOW, -65),
    ],
)  # fmt: skip
def test_hex_line_with_time_and_rssi(line: str, time: datetime, rssi: int | None) -> None:
    (frame,) = parse_hex_line(line, NOW)
    assert frame == RawFrame(time, QDS, rssi)


def test_hex_line_may_keep_its_format_a_crcs() -> None:
    raw = with_format_a_crcs(QDS)
    assert parse_hex_line(raw.hex(), NOW)[0].data == raw


@pytest.mark.parametrize("line", ["", "   ", "# a comment"])
def test_blank_and_comment_lines_give_nothing(line: str) -> None:
    assert parse_hex_line(line, NOW) == ()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("hello world", "not a hex telegram line"),
        (QDS_HEX[:-1], "odd number"),
        (QDS_HEX[:-2], "L field"),
        ("0a0b0c", "too short"),
        (f"{QDS_HEX} -300", "out of range"),
        (f"2026-13-45T99:00:00Z {QDS_HEX}", "ISO 8601"),
    ],
)
def test_bad_hex_lines_raise_a_clear_decode_error(line: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        parse_hex_line(line, NOW)


def test_collect_lines_skips_and_counts_bad_lines(caplog: pytest.LogCaptureFixture) -> None:
    lines = [QDS_HEX, "garbage", "", QDS_HEX[:-2], f"{QDS_HEX} -70", "\x00\xff"]
    batches: list[list[RawFrame]] = []
    with caplog.at_level(logging.WARNING):
        stats = collect_lines(
            lines, parse_hex_line, lambda b: batches.append(list(b)), batch_size=1
        )
    assert (stats.frames, stats.skipped) == (2, 3)
    assert [frame.rssi_dbm for batch in batches for frame in batch] == [None, -70]
    assert "line 2 skipped" in caplog.text and "line 4 skipped" in caplog.text


def test_check_telegram_rejects_an_impossible_l_field() -> None:
    with pytest.raises(FrameError, match="L field"):
        check_telegram(bytes([5]) + QDS[1:])


def test_framer_cuts_a_stream_split_anywhere() -> None:
    framer = LFieldFramer()
    stream = QDS + QDS
    out: list[bytes] = []
    for start in range(0, len(stream), 7):
        out += framer.feed(stream[start : start + 7])
    assert out == [QDS, QDS]


def test_framer_resynchronises_after_noise_and_reads_crc_frames() -> None:
    raw = with_format_a_crcs(QDS)
    framer = LFieldFramer(crc=True)
    assert framer.feed(b"\x00\x03\x01" + raw) == [raw]
    assert framer.skipped_bytes == 3


def test_serial_loop_url_delivers_telegrams() -> None:
    port = open_serial("loop://")
    stop = threading.Event()
    received: list[RawFrame] = []

    def sink(frames: Any) -> None:
        received.extend(frames)
        if len(received) >= 2:
            stop.set()

    port.write(QDS + QDS)
    stats = collect_serial(port, LFieldFramer(), sink, stop, clock=lambda: NOW)
    port.close()
    assert stats.frames == 2
    assert received == [RawFrame(NOW, QDS), RawFrame(NOW, QDS)]


def test_unknown_serial_port_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="cannot open serial port"):
        open_serial("/dev/does-not-exist-mf")
