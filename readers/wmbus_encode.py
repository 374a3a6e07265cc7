"""Build wireless M-Bus telegrams (for the simulators and tests) that ``decode_wmbus`` reads."""

from __future__ import annotations

from collections.abc import Iterable

from meterflow.errors import FrameError, UnsupportedError
from readers import oms_crypto
from readers.datarecords import encode_records
from readers.model import Header, Record
from readers.wmbus_link import FrameFormat, add_crcs, address_fields

AFL_MCL = 0x25  # message counter present, AES-CMAC truncated to 8 bytes
AFL_FCL = 0x2C00  # message control, message counter and MAC present; last fragment
MAX_BLOCKS = 15


def encode_wmbus(
    header: Header,
    records: Iterable[Record],
    *,
    key: bytes | None = None,
    mode: int = 5,
    access_no: int = 0,
    c_field: int = 0x44,
    ci: int = 0x7A,
    with_crc: bool = True,
    frame_format: FrameFormat = "A",
) -> bytes:
    """Return a telegram carrying ``records`` from the meter ``header``.

    With ``key`` the records are encrypted in security mode 5 or 7 (``2F2F`` prefix, ``2F``
    padding to 16 bytes; mode 7 adds an AFL with message counter ``access_no`` and its MAC).
    ``ci`` is 0x7A (short header), 0x72 (long header) or 0x78 (no header, no encryption).
    Raises FrameError if the telegram does not fit and UnsupportedError for other choices.
    """
    m_field, a_field = address_fields(header)
    payload = encode_records(records)
    status = header.status or 0
    access_no &= 0xFF
    if ci == 0x78:
        if key is not None:
            raise UnsupportedError("CI 0x78 has no transport header, so it cannot be encrypted")
        return _finish(c_field, m_field, a_field, bytes([ci]) + payload, with_crc, frame_format)
    if ci not in (0x7A, 0x72):
        raise UnsupportedError(f"encoding CI field 0x{ci:02X} is not supported")
    config, afl, secured = 0, b"", payload
    if key is not None:
        secured = _pad(payload)
        blocks = len(secured) // 16
        if blocks > MAX_BLOCKS:
            raise FrameError(f"{blocks} encrypted blocks exceed the config word's limit of 15")
        config = (mode << 8) | (blocks << 4)
    if ci == 0x7A:
        tpl = bytes([ci, access_no, status]) + config.to_bytes(2, "little")
    else:
        tpl = bytes([ci]) + a_field[:4] + m_field + a_field[4:]
        tpl += bytes([access_no, status]) + config.to_bytes(2, "little")
    if key is None:
        body = tpl + secured
    elif mode == 5:
        iv = oms_crypto.mode5_iv(m_field, a_field, access_no)
        body = tpl + oms_crypto.cbc_encrypt(key, iv, secured)
    elif mode == 7:
        afl, body = _mode7(key, a_field[:4], access_no, tpl + b"\x10", secured)
    else:
        raise UnsupportedError(f"encoding security mode {mode} is not supported")
    return _finish(c_field, m_field, a_field, afl + body, with_crc, frame_format)


def _pad(payload: bytes) -> bytes:
    data = b"\x2f\x2f" + payload
    return data + b"\x2f" * (-len(data) % 16)


def _mode7(
    key: bytes, meter_id: bytes, counter_no: int, tpl: bytes, plain: bytes
) -> tuple[bytes, bytes]:
    """Return the AFL and the TPL with its mode 7 encrypted payload (KDF-A, zero IV)."""
    counter = counter_no.to_bytes(4, "little")
    kenc = oms_crypto.derive_key(key, oms_crypto.DC_ENC_FROM_METER, counter, meter_id)
    kmac = oms_crypto.derive_key(key, oms_crypto.DC_MAC_FROM_METER, counter, meter_id)
    body = tpl + oms_crypto.cbc_encrypt(kenc, oms_crypto.ZERO_IV, plain)
    mac = oms_crypto.cmac(kmac, bytes([AFL_MCL]) + counter + body)[:8]
    afl_fields = AFL_FCL.to_bytes(2, "little") + bytes([AFL_MCL]) + counter + mac
    return bytes([0x90, len(afl_fields)]) + afl_fields, body


def _finish(
    c_field: int,
    m_field: bytes,
    a_field: bytes,
    body: bytes,
    with_crc: bool,
    frame_format: FrameFormat,
) -> bytes:
    frame_len = 1 + 1 + len(m_field) + len(a_field) + len(body)
    if frame_len > 256 - (4 if with_crc and frame_format == "B" else 0):
        raise FrameError(f"telegram of {frame_len} bytes exceeds the L field's range")
    frame = bytes([frame_len - 1, c_field & 0xFF]) + m_field + a_field + body
    return add_crcs(frame, frame_format) if with_crc else frame
