"""Wireless M-Bus telegrams: CI fields, ELL, AFL, security modes 5 and 7, errors, round trips."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterflow.errors import CrcError, DecodeError, DecryptError, FrameError, UnsupportedError
from readers.codec import decode_frame
from readers.model import Header, Record
from readers.wmbus import decode_wmbus, encode_wmbus

# OMS Vol. 2 annex examples (ELS gas meter 12345678, 28504.27 m3), as published.
PROFILE_A = bytes.fromhex(
    "2E44931578563412330333637A2A0020255923C95AAA26D1B2E7493BC2AD013EC4A6F6D3529B52"
    "0EDFF0EA6DEFC955B29D6D69EBF3EC8A"
)
KEY_A = bytes.fromhex("0102030405060708090A0B0C0D0E0F11")
PROFILE_B = bytes.fromhex(
    "434493157856341233037AC98C2075900F002C25B30A000021924D4FBA372FB66E017A7500200710"
    "9058475F4BC9D1281DF878B80A1B0F98B629024AAC7279429398BFC549233C0140829B93BAA1"
)
PROFILE_B_ADAPTER = bytes.fromhex(
    "53082448443322110337D0468E80753A63665544330A31900F002C25E00AB30A0000AF5D74DF73A6"
    "00D972785634C027129315330375002007109058475F4BC955CF1DF878B80A1B0F98B629024AAC72"
    "79429398BFC549233C0140829B93BAA1"
)
PARTIAL = bytes.fromhex(
    "2D44934444332211553769EF7288776655934455080004100500DFE227F9A782146D1513581CD2F8"
    "3F39040CFD1040C4785634128134"
)
KEY_B = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
FORMAT_B = bytes.fromhex("1444AE0C7856341201078C2027780B134365877AC5")
MULTICAL21_ELL = bytes.fromhex(
    "2A442D2C998734761B168D2091D37CAC21576C7802FF207100041308190000441308190000615B7F616713"
)
WATER = Header("ABC", "12345678", 1, 0x07, status=0)
RECORDS = (
    Record("volume", "m3", Decimal("123.456")),
    Record("volume", "m3", Decimal("120.000"), storage=1),
    Record("date", "", date(2026, 10, 31), storage=1),
    Record("volume", "m3", Decimal("0.012"), modifiers=("backward",)),
    Record("flow", "m3/h", Decimal("0.125")),
)


def test_mode5_short_header_with_crcs() -> None:
    telegram = decode_wmbus(PROFILE_A, lambda header: KEY_A)
    assert telegram.header.meter_id == "ELS-12345678"
    assert (telegram.header.access_no, telegram.header.status) == (0x2A, 0)
    assert telegram.records[0] == Record("volume", "m3", Decimal("28504.27"))
    assert len(telegram.records) == 3


@pytest.mark.parametrize("raw", [PROFILE_B, PROFILE_B_ADAPTER], ids=["meter", "adapter"])
def test_mode7_with_ell_afl_and_kdf(raw: bytes) -> None:
    telegram = decode_wmbus(raw, lambda header: KEY_B)
    assert telegram.header.meter_id == "ELS-12345678"
    assert telegram.records[0].value == Decimal("28504.27")


def test_long_header_identity_is_the_transport_address() -> None:
    seen: list[Header] = []

    def key_for(header: Header) -> bytes:
        seen.append(header)
        return KEY_B

    telegram = decode_wmbus(PROFILE_B_ADAPTER, key_for)
    assert seen[0].meter_id == "ELS-12345678"
    assert telegram.header.device_type == 0x03


def test_mode5_long_header_partial_encryption_keeps_plain_tail() -> None:
    telegram = decode_wmbus(PARTIAL, lambda header: KEY_B)
    assert telegram.header.meter_id == "QDS-55667788"
    assert telegram.records[0].value == 1234
    assert telegram.records[-1].value == 12345678
    assert len(telegram.records) == 4


def test_format_b_with_ell_and_no_header() -> None:
    telegram = decode_wmbus(FORMAT_B)
    assert telegram.header.meter_id == "CEN-12345678"
    assert telegram.header.access_no == 0x27
    assert telegram.records == (Record("volume", "m3", Decimal("876.543")),)


def test_ell_payload_already_decrypted_is_recognised_by_its_crc() -> None:
    telegram = decode_wmbus(MULTICAL21_ELL)
    assert telegram.records[1].value == Decimal("6.408")


def test_ell_aes_ctr_wrong_key() -> None:
    header = bytearray(MULTICAL21_ELL)
    header[-1] ^= 0xFF  # break the payload CRC, so the payload must be decrypted
    with pytest.raises(DecryptError, match="wrong key for meter KAM-76348799"):
        decode_wmbus(bytes(header), lambda h: bytes(16))


def test_wrong_key_is_a_decrypt_error() -> None:
    with pytest.raises(DecryptError, match="wrong key for meter ELS-12345678"):
        decode_wmbus(PROFILE_A, lambda header: KEY_B)


def test_mode7_wrong_key_fails_the_mac() -> None:
    with pytest.raises(DecryptError, match="MAC"):
        decode_wmbus(PROFILE_B, lambda header: KEY_A)


def test_missing_key_says_how_to_fix_it() -> None:
    with pytest.raises(DecryptError, match="no key for meter ELS-12345678; import it"):
        decode_wmbus(PROFILE_A)


def test_truncated_telegram() -> None:
    with pytest.raises(FrameError):
        decode_wmbus(PROFILE_B[:40], lambda header: KEY_B)


def test_bad_crc() -> None:
    damaged = bytearray(PROFILE_A)
    damaged[20] ^= 0x10
    with pytest.raises(CrcError, match="block 2"):
        decode_wmbus(bytes(damaged), lambda header: KEY_A)


def test_unknown_ci_field() -> None:
    frame = bytes([0x0B, 0x44, 0x01, 0x06, 0x78, 0x56, 0x34, 0x12, 0x01, 0x07, 0x55, 0x00])
    with pytest.raises(UnsupportedError, match="unknown CI field 0x55"):
        decode_wmbus(frame, crc=False)


@pytest.mark.parametrize("ci", [0x79, 0x7B])
def test_compact_frame_is_unsupported_with_a_reason(ci: int) -> None:
    body = bytes([ci, 0x10, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78])
    frame = bytes([9 + len(body), 0x44, 0x01, 0x06, 0x78, 0x56, 0x34, 0x12, 0x01, 0x07]) + body
    with pytest.raises(UnsupportedError, match="previously received full frame"):
        decode_wmbus(frame, crc=False)


def test_manufacturer_specific_ci_keeps_the_payload() -> None:
    frame = bytes([0x0D, 0x44, 0x01, 0x06, 0x78, 0x56, 0x34, 0x12, 0x01, 0x07, 0xA1, 1, 2, 3])
    telegram = decode_wmbus(frame, crc=False)
    assert telegram.records == (Record("manufacturer_specific", "", b"\x01\x02\x03"),)


@pytest.mark.parametrize("ci", [0x7A, 0x72, 0x78])
@pytest.mark.parametrize("frame_format", ["A", "B"])
@pytest.mark.parametrize("with_crc", [True, False])
def test_plain_round_trip(ci: int, frame_format: str, with_crc: bool) -> None:
    raw = encode_wmbus(
        WATER,
        RECORDS,
        ci=ci,
        access_no=9,
        with_crc=with_crc,
        frame_format=frame_format,  # type: ignore[arg-type]
    )
    telegram = decode_wmbus(raw, crc=with_crc)
    assert telegram.records == RECORDS
    assert telegram.header.meter_id == WATER.meter_id


@pytest.mark.parametrize("mode", [5, 7])
@pytest.mark.parametrize("ci", [0x7A, 0x72])
def test_encrypted_round_trip(mode: int, ci: int) -> None:
    key = bytes(range(16))
    raw = encode_wmbus(WATER, RECORDS, key=key, mode=mode, ci=ci, access_no=200)
    assert b"\x2f\x2f" not in raw[12:14]
    telegram = decode_wmbus(raw, lambda header: key)
    assert telegram.records == RECORDS
    assert telegram.header.access_no == 200
    with pytest.raises(DecryptError):
        decode_wmbus(raw, lambda header: bytes(16))


def test_encoded_telegram_gets_the_generic_driver() -> None:
    raw = encode_wmbus(WATER, RECORDS, key=bytes(16), access_no=1)
    telegram = decode_frame("wmbus", raw, lambda header: bytes(16))
    assert telegram.driver == "oms_water"
    assert telegram.fields["total_m3"] == Decimal("123.456")
    assert telegram.fields["backflow_m3"] == Decimal("0.012")
    assert telegram.fields["target_date"] == date(2026, 10, 31)


SEEDS = [PROFILE_A, PROFILE_B, PROFILE_B_ADAPTER, PARTIAL, FORMAT_B, MULTICAL21_ELL]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_decode_errors(raw: bytes) -> None:
    try:
        decode_frame("wmbus", raw, lambda header: KEY_B)
    except DecodeError:
        pass


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 299), st.integers(0, 255)), max_size=4),
    st.integers(0, 300),
)
def test_mutated_telegrams_raise_only_decode_errors(
    seed: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(seed[: max(cut, 1)])
    for at, value in flips:
        raw[at % len(raw)] = value
    try:
        decode_frame("wmbus", bytes(raw), lambda header: KEY_B)
    except DecodeError:
        pass


def test_threads_decrypting_with_one_key_each_get_their_own_telegrams() -> None:
    # Decryption contexts are cached per key; each thread must use its own.
    from concurrent.futures import ThreadPoolExecutor

    key = bytes(range(16))
    frames = [
        encode_wmbus(WATER, (Record("volume", "m3", Decimal(n).scaleb(-3)),), key=key, access_no=n)
        for n in range(64)
    ]

    def volumes(offset: int) -> list[object]:
        order = frames[offset:] + frames[:offset]
        return [decode_wmbus(frame, lambda header: key).records[0].value for frame in order * 20]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(volumes, range(4)))
    for offset, values in enumerate(results):
        expected = [Decimal(n).scaleb(-3) for n in range(64)]
        assert values == (expected[offset:] + expected[:offset]) * 20
