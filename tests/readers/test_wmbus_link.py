"""CRC-16, frame formats A and B, and the OMS cryptography, with published vectors."""

from __future__ import annotations

import pytest

from meterflow.errors import CrcError, FrameError
from readers import oms_crypto
from readers.crc import crc16_en13757
from readers.wmbus_link import add_crcs, format_a_length, parse_link, unframe

# OMS Vol. 2 annex examples (ELS gas meter 12345678), format A with CRCs.
PROFILE_A = bytes.fromhex(
    "2E44931578563412330333637A2A0020255923C95AAA26D1B2E7493BC2AD013EC4A6F6D3529B52"
    "0EDFF0EA6DEFC955B29D6D69EBF3EC8A"
)
PROFILE_B = bytes.fromhex(
    "434493157856341233038C2075900F002C25B30A000021924D4F2FB66E017A75002007109058475F"
    "4BC91DF878B80A1B0F98B629024AAC727942BFC549233C0140829B93"
)
FORMAT_B = bytes.fromhex("1444AE0C7856341201078C2027780B134365877AC5")


def test_crc_check_value_of_en13757() -> None:
    assert crc16_en13757(b"123456789") == 0xC2B7


def test_crc_of_first_block_matches_published_frame() -> None:
    assert crc16_en13757(PROFILE_A[:10]).to_bytes(2, "big") == PROFILE_A[10:12]


def test_format_a_crcs_detected_and_stripped() -> None:
    frame = unframe(PROFILE_A)
    assert len(frame) == PROFILE_A[0] + 1
    assert frame[10] == 0x7A
    assert len(PROFILE_A) == format_a_length(PROFILE_A[0])


def test_frame_without_crcs_passes_unchanged() -> None:
    assert unframe(PROFILE_B) == PROFILE_B
    assert unframe(PROFILE_B, crc=False) == PROFILE_B


def test_format_b_crc_detected() -> None:
    frame = unframe(FORMAT_B)
    assert frame == FORMAT_B[:-2]
    assert unframe(FORMAT_B, crc=True, frame_format="B") == frame


@pytest.mark.parametrize("size", [11, 20, 26, 27, 42, 126, 127, 140, 250])
@pytest.mark.parametrize("frame_format", ["A", "B"])
def test_add_crcs_round_trips(size: int, frame_format: str) -> None:
    frame = bytes([size - 1, 0x44]) + bytes(range(2, size))
    framed = add_crcs(frame, frame_format)  # type: ignore[arg-type]
    stripped = unframe(framed, crc=True, frame_format=frame_format)  # type: ignore[arg-type]
    assert stripped[1:] == frame[1:]


def test_bad_crc_names_the_block() -> None:
    damaged = bytearray(PROFILE_A)
    damaged[30] ^= 0x01
    with pytest.raises(CrcError, match="block 3"):
        unframe(bytes(damaged))


def test_bad_first_block_crc() -> None:
    damaged = bytearray(PROFILE_A)
    damaged[5] ^= 0x80
    with pytest.raises(CrcError, match="block 1"):
        unframe(bytes(damaged))


def test_truncated_frame_is_a_frame_error() -> None:
    with pytest.raises(FrameError, match="truncated"):
        unframe(PROFILE_B[:-5])
    with pytest.raises(FrameError, match="too short"):
        unframe(PROFILE_B[:6])


def test_link_header_fields() -> None:
    link = parse_link(PROFILE_B)
    header = link.header(access_no=0x75)
    assert (header.manufacturer, header.id, header.version, header.device_type) == (
        "ELS",
        "12345678",
        0x33,
        0x03,
    )
    assert link.c_field == 0x44


def test_mode5_decrypts_oms_profile_a_example() -> None:
    frame = unframe(PROFILE_A)
    key = bytes.fromhex("0102030405060708090A0B0C0D0E0F11")
    iv = oms_crypto.mode5_iv(frame[2:4], frame[4:10], frame[11])
    plain = oms_crypto.cbc_decrypt(key, iv, frame[15:47])
    assert plain.hex().upper().startswith("2F2F0C1427048502")


def test_mode7_key_derivation_and_mac_of_oms_profile_b_example() -> None:
    key = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    counter, meter_id = PROFILE_B[18:22], PROFILE_B[4:8]
    kmac = oms_crypto.derive_key(key, oms_crypto.DC_MAC_FROM_METER, counter, meter_id)
    mac = oms_crypto.cmac(kmac, bytes([PROFILE_B[17]]) + counter + PROFILE_B[30:])
    assert mac[:8] == PROFILE_B[22:30]
    kenc = oms_crypto.derive_key(key, oms_crypto.DC_ENC_FROM_METER, counter, meter_id)
    plain = oms_crypto.cbc_decrypt(kenc, oms_crypto.ZERO_IV, PROFILE_B[36:68])
    assert plain.hex().upper().startswith("2F2F0C1427048502")


def test_ctr_is_its_own_inverse() -> None:
    key = bytes(range(16))
    iv = oms_crypto.ell_iv(b"\x2d\x2c", bytes(6), 0x20, b"\x01\x02\x03\x04")
    data = bytes(range(37))
    assert oms_crypto.ctr_crypt(key, iv, oms_crypto.ctr_crypt(key, iv, data)) == data


def test_cbc_decryption_reuses_a_key_for_telegrams_with_different_ivs() -> None:
    key = bytes(range(16))
    plain = [bytes([n]) * 32 for n in range(3)]
    ivs = [bytes([n + 7]) * 16 for n in range(3)]
    secret = [oms_crypto.cbc_encrypt(key, iv, data) for iv, data in zip(ivs, plain, strict=True)]
    for _ in range(2):
        for iv, data, expected in zip(ivs, secret, plain, strict=True):
            assert oms_crypto.cbc_decrypt(key, iv, data) == expected
    assert oms_crypto.cbc_decrypt(key, ivs[0], secret[0], reuse=False) == plain[0]
    with pytest.raises(ValueError):
        oms_crypto.cbc_decrypt(key, ivs[0], secret[0][:20])


def test_crc_of_odd_and_even_lengths_matches_the_bytewise_definition() -> None:
    data = bytes(range(7, 60))
    for size in range(len(data)):
        crc = 0
        for byte in data[:size]:
            crc ^= byte << 8
            for _ in range(8):
                crc = ((crc << 1) ^ 0x3D65) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        assert crc16_en13757(data[:size]) == crc ^ 0xFFFF
