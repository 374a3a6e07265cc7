"""Frame and envelope factories shared by the tests: OMS water meters, keys, envelopes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from readers.datatypes import METER_ZONE
from readers.model import Header, Kind, Record
from readers.wmbus_encode import encode_wmbus
from schemas.envelope import RawFrame, build_envelope, topic

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def meter_header(n: int, manufacturer: str = "KAM", access_no: int = 0) -> Header:
    """The header of water meter number ``n`` (id ``n`` as 8 digits)."""
    return Header(manufacturer, f"{n:08d}", 0x1B, 0x07, access_no=access_no % 256, status=0)


def meter_id(n: int, manufacturer: str = "KAM") -> str:
    """The store's id of water meter number ``n``."""
    return meter_header(n, manufacturer).meter_id


def meter_key(n: int) -> bytes:
    """A deterministic AES-128 key of water meter number ``n``."""
    return hashlib.sha256(f"meterflow-test-key-{n}".encode()).digest()[:16]


def water_records(
    volume: Decimal, at: datetime | None = None, history: Sequence[tuple[date, Decimal]] = ()
) -> list[Record]:
    """Records of a water meter: volume, its clock when ``at`` is given, monthly history."""
    records = [Record("volume", "m3", volume)]
    if at is not None:
        records.append(Record("datetime", "", at.astimezone(METER_ZONE).replace(second=0)))
    for storage, (day, value) in enumerate(history, start=1):
        records.append(Record("date", "", day, storage=storage))
        records.append(Record("volume", "m3", value, storage=storage))
    return records


def wmbus_frame(
    n: int,
    volume: Decimal,
    *,
    at: datetime | None = None,
    key: bytes | None = None,
    plain: bool = False,
    with_crc: bool = True,
    access_no: int = 0,
    history: Sequence[tuple[date, Decimal]] = (),
) -> bytes:
    """A wM-Bus frame of meter ``n``: mode 5 with its key (or ``key``), unencrypted if ``plain``."""
    return encode_wmbus(
        meter_header(n, access_no=access_no),
        water_records(volume, at, history),
        key=None if plain else key or meter_key(n),
        mode=5,
        access_no=access_no,
        with_crc=with_crc,
    )


def envelope(
    gateway: str,
    frames: Iterable[bytes],
    received_at: datetime = T0,
    kind: Kind = "wmbus",
    step: timedelta = timedelta(milliseconds=1),
) -> bytes:
    """An envelope of ``frames`` received ``step`` apart from ``received_at``."""
    raw = [RawFrame(received_at + i * step, data, -70) for i, data in enumerate(frames)]
    return build_envelope(gateway, kind, raw)


def frames_topic(gateway: str, kind: Kind = "wmbus") -> str:
    """The topic a gateway publishes frames on."""
    return topic(gateway, kind)
