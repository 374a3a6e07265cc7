"""Wireless M-Bus telegrams (EN 13757-4, OMS): CI dispatch over ELL, AFL and TPL, security
modes 5 and 7, and the records behind them.

``decode_wmbus`` turns one received telegram into a ``Telegram``; ``encode_wmbus`` (defined
in ``readers.wmbus_encode``) builds telegrams for the simulators.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from meterflow.errors import DecryptError, FrameError, UnsupportedError
from readers import oms_crypto
from readers.crc import crc16_en13757
from readers.datarecords import MANUFACTURER_LAYOUT, MANUFACTURER_SPECIFIC, Layout, decode_layout
from readers.model import Header, Record, Telegram
from readers.wmbus_encode import encode_wmbus
from readers.wmbus_link import FrameFormat, LinkHeader, address_header, parse_link, unframe

__all__ = ["KeyLookup", "decode_wmbus", "decode_wmbus_layout", "encode_wmbus", "no_keys"]

KeyLookup = Callable[[Header], bytes | None]

CI_NO_HEADER, CI_SHORT, CI_LONG = 0x78, 0x7A, 0x72
CI_COMPACT = {0x73: "long", 0x79: "no", 0x7B: "short"}
CI_ELL = range(0x8C, 0x90)
CI_AFL = 0x90
CI_MANUFACTURER = range(0xA0, 0xB8)
IDLE = b"\x2f\x2f"
AFL_MAC_LEN = {0: 0, 3: 2, 4: 4, 5: 8, 6: 12, 7: 16}


def no_keys(header: Header) -> bytes | None:
    """A key lookup that knows no keys."""
    return None


@dataclasses.dataclass(slots=True)
class _Afl:
    """What the authentication and fragmentation layer carries."""

    mcl: int = 0
    counter: bytes | None = None
    mac: bytes = b""


_NO_AFL = _Afl()  # shared by telegrams without an AFL; only _afl() fills in an _Afl


@dataclasses.dataclass(slots=True)
class _Tpl:
    """The transport layer header: the meter's address, access number, status, config."""

    m_field: bytes
    a_field: bytes
    access_no: int | None
    status: int | None
    config: int = 0
    config_ext: int = 0

    def header(self) -> Header:
        return address_header(self.m_field, self.a_field, self.access_no, self.status)


def decode_wmbus(
    raw: bytes,
    key_for: KeyLookup = no_keys,
    *,
    crc: bool | None = None,
    frame_format: FrameFormat | None = None,
) -> Telegram:
    """Decode one wireless M-Bus telegram; ``key_for`` gives the AES key of a meter header.

    CRC blocks are detected unless ``crc`` says whether they are present. Raises FrameError,
    CrcError, DecryptError or UnsupportedError (all DecodeError) for anything undecodable.
    """
    header, records, _ = decode_wmbus_layout(raw, key_for, crc=crc, frame_format=frame_format)
    return Telegram("wmbus", header, records)


def decode_wmbus_layout(
    raw: bytes,
    key_for: KeyLookup = no_keys,
    *,
    crc: bool | None = None,
    frame_format: FrameFormat | None = None,
) -> tuple[Header, tuple[Record, ...], Layout]:
    """Return the header and records ``decode_wmbus`` finds in ``raw``, and their layout.

    Raises what ``decode_wmbus`` raises.
    """
    frame = unframe(raw, crc, frame_format)
    link = parse_link(frame)
    pos, access_no = 10, None
    if frame[pos] in CI_ELL:
        frame, pos, access_no = _ell(frame, pos, link, key_for)
    afl = _NO_AFL
    if pos < len(frame) and frame[pos] == CI_AFL:
        afl, pos = _afl(frame, pos)
    if pos >= len(frame):
        raise FrameError("telegram ends before its transport layer CI field")
    return _tpl(frame, pos, link, access_no, afl, key_for)


def _ell(frame: bytes, pos: int, link: LinkHeader, key_for: KeyLookup) -> tuple[bytes, int, int]:
    """Parse an extended link layer; decrypt its AES-CTR payload; return frame, pos, ACC."""
    ci = frame[pos]
    size = {0x8C: 2, 0x8D: 8, 0x8E: 10, 0x8F: 16}[ci]
    if len(frame) < pos + 1 + size:
        raise FrameError(f"telegram truncated in extended link layer 0x{ci:02X}")
    cc, acc = frame[pos + 1], frame[pos + 2]
    if ci in (0x8C, 0x8E):
        return frame, pos + 1 + size, acc
    sn_at = pos + 3 + (8 if ci == 0x8F else 0)
    session = frame[sn_at : sn_at + 4]
    body_at = sn_at + 4
    if (int.from_bytes(session, "little") >> 29) & 0x7 and not _ell_crc_ok(frame[body_at:]):
        key = _key(link.header(acc), key_for)
        iv = oms_crypto.ell_iv(link.m_field, link.a_field, cc, session)
        plain = oms_crypto.ctr_crypt(key, iv, frame[body_at:])
        if not _ell_crc_ok(plain):
            raise DecryptError(
                f"wrong key for meter {link.header().meter_id}: ELL payload CRC does not match"
            )
        frame = frame[:body_at] + plain
    elif not _ell_crc_ok(frame[body_at:]):
        raise FrameError("extended link layer payload CRC does not match")
    return frame, body_at + 2, acc


def _ell_crc_ok(payload: bytes) -> bool:
    return len(payload) >= 2 and crc16_en13757(payload[2:]) == int.from_bytes(payload[:2], "little")


def _afl(frame: bytes, pos: int) -> tuple[_Afl, int]:
    """Parse the authentication and fragmentation layer; return it and the next position."""
    if len(frame) < pos + 4:
        raise FrameError("telegram truncated in the authentication and fragmentation layer")
    end = pos + 2 + frame[pos + 1]
    fcl = int.from_bytes(frame[pos + 2 : pos + 4], "little")
    if fcl & 0x4000 or fcl & 0xFF > 1:
        raise UnsupportedError("fragmented telegrams (AFL more-fragments) are not supported")
    afl, at = _Afl(), pos + 4
    if fcl & 0x2000:
        afl.mcl, at = frame[at], at + 1
    if fcl & 0x0200:
        at += 2
    if fcl & 0x0800:
        afl.counter, at = frame[at : at + 4], at + 4
    if fcl & 0x0400:
        mac_len = AFL_MAC_LEN.get(afl.mcl & 0x0F)
        if mac_len is None:
            raise UnsupportedError(f"AFL authentication type {afl.mcl & 0x0F} is not supported")
        afl.mac, at = frame[at : at + mac_len], at + mac_len
    if at > end or end > len(frame):
        raise FrameError("authentication and fragmentation layer overruns the telegram")
    return afl, end


def _tpl(
    frame: bytes, pos: int, link: LinkHeader, access_no: int | None, afl: _Afl, key_for: KeyLookup
) -> tuple[Header, tuple[Record, ...], Layout]:
    """Dispatch on the transport layer CI field and decode the application data."""
    ci = frame[pos]
    if ci == CI_NO_HEADER:
        return _telegram(link.header(access_no), frame[pos + 1 :])
    if ci in CI_MANUFACTURER:
        record = Record(MANUFACTURER_SPECIFIC, "", bytes(frame[pos + 1 :]))
        return link.header(access_no), (record,), MANUFACTURER_LAYOUT
    if ci in (CI_SHORT, 0x7B):
        tpl, at = _short_tpl(frame, pos + 1, link)
    elif ci in (CI_LONG, 0x73):
        tpl, at = _long_tpl(frame, pos + 1)
    elif ci == 0x79:
        tpl, at = _Tpl(link.m_field, link.a_field, access_no, None), pos + 1
    else:
        raise UnsupportedError(f"unknown CI field 0x{ci:02X}")
    header = tpl.header()
    payload = _unsecure(frame, pos, at, tpl, afl, header, key_for)
    if ci in CI_COMPACT:
        raise UnsupportedError(
            f"compact frame (CI 0x{ci:02X}) of meter {header.meter_id} needs the format of a "
            "previously received full frame; wait for a full telegram"
        )
    return _telegram(header, payload)


def _telegram(header: Header, data: bytes) -> tuple[Header, tuple[Record, ...], Layout]:
    records, layout = decode_layout(data)
    return header, records, layout


def _short_tpl(frame: bytes, at: int, link: LinkHeader) -> tuple[_Tpl, int]:
    if len(frame) < at + 4:
        raise FrameError("telegram truncated in the short transport layer header")
    config = int.from_bytes(frame[at + 2 : at + 4], "little")
    tpl = _Tpl(link.m_field, link.a_field, frame[at], frame[at + 1], config)
    return _config_ext(frame, at + 4, tpl)


def _long_tpl(frame: bytes, at: int) -> tuple[_Tpl, int]:
    if len(frame) < at + 12:
        raise FrameError("telegram truncated in the long transport layer header")
    a_field = frame[at : at + 4] + frame[at + 6 : at + 8]
    config = int.from_bytes(frame[at + 10 : at + 12], "little")
    tpl = _Tpl(frame[at + 4 : at + 6], a_field, frame[at + 8], frame[at + 9], config)
    return _config_ext(frame, at + 12, tpl)


def _config_ext(frame: bytes, at: int, tpl: _Tpl) -> tuple[_Tpl, int]:
    """Read the mode 7 configuration field extension byte that follows the config word."""
    if (tpl.config >> 8) & 0x1F != 7:
        return tpl, at
    if len(frame) <= at:
        raise FrameError("telegram truncated in the mode 7 configuration field extension")
    tpl.config_ext = frame[at]
    return tpl, at + 1


def _unsecure(
    frame: bytes,
    ci_at: int,
    at: int,
    tpl: _Tpl,
    afl: _Afl,
    header: Header,
    key_for: KeyLookup,
) -> bytes:
    """Return the application data after the TPL header, decrypted when the config says so."""
    mode = (tpl.config >> 8) & 0x1F
    data = frame[at:]
    if mode == 0:
        return data
    if mode not in (5, 7):
        raise UnsupportedError(f"security mode {mode} of meter {header.meter_id} is not supported")
    blocks = (tpl.config >> 4) & 0x0F
    size = blocks * 16 if blocks else len(data) - len(data) % 16
    if size == 0 or len(data) < size:
        raise FrameError(
            f"encrypted part of meter {header.meter_id} needs {size} bytes, got {len(data)}"
        )
    encrypted, rest = data[:size], data[size:]
    key = key_for(header)
    if key is None and encrypted.startswith(IDLE):
        return data  # a receiver or simulator has already decrypted it
    key = _key(header, key_for, key)
    if mode == 5:
        iv = oms_crypto.mode5_iv(tpl.m_field, tpl.a_field, tpl.access_no or 0)
        plain = oms_crypto.cbc_decrypt(key, iv, encrypted)
    else:
        plain = _mode7(frame[ci_at:], tpl, afl, header, key, encrypted)
    if not plain.startswith(IDLE):
        if encrypted.startswith(IDLE):
            return data
        raise DecryptError(
            f"wrong key for meter {header.meter_id}: decrypted data does not start with 2F2F"
        )
    return plain + rest


def _mode7(
    from_ci: bytes, tpl: _Tpl, afl: _Afl, header: Header, key: bytes, encrypted: bytes
) -> bytes:
    """Decrypt a mode 7 payload: derive Kenc (and check the AFL MAC with Kmac) per OMS KDF-A."""
    kdf = (tpl.config_ext >> 4) & 0x03
    if kdf == 0:
        return oms_crypto.cbc_decrypt(key, oms_crypto.ZERO_IV, encrypted)
    if kdf != 1:
        raise UnsupportedError(f"mode 7 key derivation {kdf} is not supported")
    if afl.counter is None:
        raise FrameError(f"mode 7 telegram of meter {header.meter_id} has no AFL message counter")
    meter_id = tpl.a_field[:4]
    if afl.mac:
        kmac = oms_crypto.derive_key(key, oms_crypto.DC_MAC_FROM_METER, afl.counter, meter_id)
        mac = oms_crypto.cmac(kmac, bytes([afl.mcl]) + afl.counter + from_ci)
        if mac[: len(afl.mac)] != afl.mac:
            raise DecryptError(f"wrong key for meter {header.meter_id}: AFL MAC does not match")
    kenc = oms_crypto.derive_key(key, oms_crypto.DC_ENC_FROM_METER, afl.counter, meter_id)
    return oms_crypto.cbc_decrypt(kenc, oms_crypto.ZERO_IV, encrypted, reuse=False)


def _key(header: Header, key_for: KeyLookup, key: bytes | None = None) -> bytes:
    key = key if key is not None else key_for(header)
    if key is None:
        raise DecryptError(
            f"no key for meter {header.meter_id}; import it with `meterflow meters import`"
        )
    if len(key) != 16:
        raise DecryptError(f"key for meter {header.meter_id} must be 16 bytes, got {len(key)}")
    return key
