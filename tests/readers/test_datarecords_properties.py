"""Property tests: any bytes raise only DecodeError; encode then decode is the identity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from meterflow.errors import DecodeError
from readers.datarecords import decode_records, encode_records
from readers.header import encode_long_header
from readers.mbus import decode_mbus, encode_long, encode_rsp_ud, parse_frame
from readers.model import Header, Record
from tests.readers.vectors_mbus import VECTORS

FRAMES = [bytes.fromhex(v.hex) for v in VECTORS]
SCALED = [
    ("volume", "m3"),
    ("flow", "m3/h"),
    ("energy", "Wh"),
    ("power", "W"),
    ("flow_temperature", "C"),
    ("return_temperature", "C"),
    ("external_temperature", "C"),
    ("temperature_difference", "K"),
    ("pressure", "bar"),
    ("mass", "kg"),
    ("operating_time", "h"),
    ("on_time", "d"),
    ("remaining_battery", "d"),
    ("voltage", "V"),
]
COUNTS = ["error_flags", "fabrication_no", "access_number", "firmware_version", "digital_input"]
MODIFIERS = ["forward", "backward", "per_hour", "lower_limit", "uncorrected"]


@st.composite
def records(draw: st.DrawFn) -> Record:
    """Draw one record the encoder supports."""
    place = {
        "storage": draw(st.integers(0, 2**20)),
        "tariff": draw(st.integers(0, 15)),
        "subunit": draw(st.integers(0, 7)),
        "function": draw(st.sampled_from(["instantaneous", "maximum", "minimum", "error"])),
    }
    kind = draw(st.sampled_from(["scaled", "count", "date", "datetime", "text"]))
    if kind == "scaled":
        quantity, unit = draw(st.sampled_from(SCALED))
        value = Decimal(draw(st.integers(-(2**40), 2**40))).scaleb(draw(st.integers(-6, 4)))
        mods = tuple(draw(st.lists(st.sampled_from(MODIFIERS), max_size=2, unique=True)))
        return Record(quantity, unit, value, modifiers=mods, **place)
    if kind == "count":
        return Record(draw(st.sampled_from(COUNTS)), "", draw(st.integers(0, 2**63)), **place)
    if kind == "date":
        return Record("date", "", draw(st.dates(date(1981, 1, 1), date(2080, 12, 31))), **place)
    if kind == "datetime":
        moment = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
            minutes=draw(st.integers(0, 60 * 24 * 365 * 70))
        )
        return Record("datetime", "", moment + timedelta(seconds=draw(st.integers(0, 59))), **place)
    text = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20))
    return Record("customer", "", text, **place)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_random_record_bytes_raise_only_decode_errors(data: bytes) -> None:
    try:
        decode_records(data)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=260))
def test_random_frame_bytes_raise_only_decode_errors(data: bytes) -> None:
    for function in (parse_frame, decode_mbus):
        try:
            function(data)
        except DecodeError:
            pass


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FRAMES), st.data())
def test_mutated_frames_raise_only_decode_errors(frame: bytes, data: st.DataObject) -> None:
    raw = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    body = bytes(raw[4:-2])
    for candidate in (bytes(raw), encode_long(body[0], body[1], body[2], body[3:])):
        try:
            decode_mbus(candidate)
        except DecodeError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), max_size=8))
def test_encode_then_decode_returns_the_records(items: list[Record]) -> None:
    assert decode_records(encode_records(items)) == tuple(items)
    assert decode_records(encode_records(items, bcd=True)) == tuple(items)


@settings(max_examples=100, deadline=None)
@given(st.lists(records(), max_size=4), st.integers(0, 250), st.booleans())
def test_rsp_ud_frame_round_trip(items: list[Record], address: int, more: bool) -> None:
    header = Header("KAM", "12345678", 1, 7, 9, 0)
    frame = encode_rsp_ud(header, items, address, more_records_follow=more)
    parsed = parse_frame(frame)
    telegram = decode_mbus(frame)
    assert getattr(parsed, "a", None) == address
    assert telegram.header == header
    assert telegram.records[: len(items)] == tuple(items)
    assert len(telegram.records) == len(items) + more
    assert encode_long_header(header) == frame[7:19]
