"""From decoded telegrams to store rows: reading identity, times and quantity names (no I/O).

A reading's time is the meter's own clock when the telegram carries it (the storage-0
``datetime`` record); historical values (storage > 0) take the date record of their storage
number. Without a meter clock the caller supplies a reading time shared by every copy of the
same radio telegram (see ``ReadTimes``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from readers.model import Record, Telegram

# Meters keep local wall time; bare dates are local days of the utility.
LOCAL_ZONE = ZoneInfo("Europe/Warsaw")
TIME_QUANTITIES = ("datetime", "date")
# Identical frame bytes from one meter received within this window are one transmission
# heard by several gateways (or redelivered), not a new reading.
DEDUP_WINDOW = timedelta(seconds=60)

ReadingRow = tuple[str, datetime, int, int, int, str, str, str, Decimal, datetime, str]


def quantity_name(record: Record) -> str:
    """Return the stored quantity: the record's quantity with its modifiers, ``volume:backward``."""
    if not record.modifiers:
        return record.quantity
    return ":".join((record.quantity, *record.modifiers))


def as_instant(value: object) -> datetime | None:
    """Return a meter time value as an aware datetime (dates are local midnight), else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=LOCAL_ZONE)
    if isinstance(value, date):
        return datetime.combine(value, time(), LOCAL_ZONE)
    return None


def storage_times(records: Iterable[Record]) -> dict[int, datetime]:
    """Return the meter's time of each storage number that carries a date or date-time record."""
    times: dict[int, datetime] = {}
    for record in records:
        if record.quantity in TIME_QUANTITIES and record.tariff == 0 and record.subunit == 0:
            moment = as_instant(record.value)
            if moment is not None and (
                record.quantity == "datetime" or record.storage not in times
            ):
                times[record.storage] = moment
    return times


def reading_rows(
    telegram: Telegram,
    read_at: datetime,
    received_at: datetime,
    gateway_id: str,
    times: Mapping[int, datetime] | None = None,
) -> list[ReadingRow]:
    """Return one row per numeric value of ``telegram``; storage 0 values are at ``read_at``.

    ``times`` are the telegram's ``storage_times`` when the caller has them already.
    """
    if times is None:
        times = storage_times(telegram.records)
    meter_id = telegram.header.meter_id
    rows: list[ReadingRow] = []
    for record in telegram.records:
        value = record.value
        if type(value) is Decimal:
            number = value
        elif isinstance(value, Decimal | int) and not isinstance(value, bool):
            number = Decimal(value)
        else:
            continue
        at = read_at if record.storage == 0 else times.get(record.storage, read_at)
        rows.append(
            (
                meter_id,
                at,
                record.storage,
                record.tariff,
                record.subunit,
                quantity_name(record),
                record.function,
                record.unit,
                number,
                received_at,
                gateway_id,
            )
        )
    return rows


@dataclasses.dataclass(slots=True)
class ReadTimes:
    """Reading times of frames without a meter clock, keyed by frame hash.

    The first reception of given frame bytes fixes the reading time; every later reception
    within ``DEDUP_WINDOW`` of a known one (another gateway, a redelivery) reuses it, so the
    readings land once. ``known`` is seeded from receptions already in the store.
    """

    known: dict[bytes, list[tuple[datetime, datetime]]] = dataclasses.field(default_factory=dict)

    def assign(self, frame_sha: bytes, received_at: datetime) -> datetime:
        """Return the reading time of a reception and remember it."""
        seen = self.known.setdefault(frame_sha, [])
        for earlier_received, read_at in seen:
            if abs(received_at - earlier_received) <= DEDUP_WINDOW:
                seen.append((received_at, read_at))
                return read_at
        seen.append((received_at, received_at))
        return received_at
