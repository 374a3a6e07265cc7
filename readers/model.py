"""The values every codec returns: a header, data records and driver fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple, cast

Kind = Literal["mbus", "wmbus"]
Value = Decimal | int | str | datetime | date | bytes | None


def _slot_setters(cls: type) -> tuple[Callable[[Any, Any], None], ...]:
    """Return the setters of the slots of a frozen slots dataclass, in field order."""
    return tuple(
        cast(Callable[[Any, Any], None], vars(cls)[name].__set__) for name in vars(cls)["__slots__"]
    )


class Record(NamedTuple):
    """One data record of the variable data structure, with the VIF scaling applied.

    ``quantity`` names what is measured (``volume``, ``flow``, ``datetime``, ``error_flags``,
    ``manufacturer_specific``...), ``unit`` its unit (``m3``, ``m3/h``, ``C``, or ``""``),
    ``function`` is ``instantaneous``, ``maximum``, ``minimum`` or ``error``. ``modifiers``
    lists VIFE meanings that qualify the quantity (``"backward"`` for reversed flow...).

    An immutable named tuple rather than a dataclass: decoders build one per value, and a
    tuple is built in a fraction of the time of a frozen dataclass.
    """

    quantity: str
    unit: str
    value: Value
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    function: str = "instantaneous"
    modifiers: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """Return the record as JSON-ready data; exact values become strings."""
        return {
            "quantity": self.quantity,
            "unit": self.unit,
            "value": value_text(self.value),
            "storage": self.storage,
            "tariff": self.tariff,
            "subunit": self.subunit,
            "function": self.function,
            "modifiers": list(self.modifiers),
        }


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class Header:
    """Who sent a telegram: the meter's secondary address plus access number and status."""

    manufacturer: str
    id: str
    version: int
    device_type: int
    access_no: int | None = None
    status: int | None = None

    def __init__(
        self,
        manufacturer: str,
        id: str,
        version: int,
        device_type: int,
        access_no: int | None = None,
        status: int | None = None,
    ) -> None:
        # One Header per telegram: setting the slots directly costs half the generated frozen
        # __init__ (which looks up object.__setattr__ for every field).
        m, i, v, d, a, s = _HEADER_SLOTS
        m(self, manufacturer)
        i(self, id)
        v(self, version)
        d(self, device_type)
        a(self, access_no)
        s(self, status)

    @property
    def meter_id(self) -> str:
        """The meter's identity in the store: manufacturer code and 8-digit id."""
        return f"{self.manufacturer}-{self.id}"

    def as_json(self) -> dict[str, Any]:
        """Return the header as JSON-ready data."""
        return {
            "manufacturer": self.manufacturer,
            "id": self.id,
            "version": self.version,
            "device_type": self.device_type,
            "access_no": self.access_no,
            "status": self.status,
        }


_HEADER_SLOTS = _slot_setters(Header)


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class Telegram:
    """A decoded frame: its header, its records and, when a driver matched, named fields."""

    kind: Kind
    header: Header
    records: tuple[Record, ...]
    driver: str | None = None
    fields: Mapping[str, Value] = dataclasses.field(default_factory=dict)

    def __init__(
        self,
        kind: Kind,
        header: Header,
        records: tuple[Record, ...],
        driver: str | None = None,
        fields: Mapping[str, Value] | None = None,
    ) -> None:
        # One Telegram per frame: set the slots directly, as Header does.
        k, h, r, d, f = _TELEGRAM_SLOTS
        k(self, kind)
        h(self, header)
        r(self, records)
        d(self, driver)
        f(self, {} if fields is None else fields)

    def as_json(self) -> dict[str, Any]:
        """Return the telegram as JSON-ready data, as ``meterflow decode`` prints it."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "header": self.header.as_json(),
            "records": [record.as_json() for record in self.records],
        }
        if self.driver is not None:
            data["driver"] = self.driver
            data["fields"] = {name: value_text(v) for name, v in self.fields.items()}
        return data


_TELEGRAM_SLOTS = _slot_setters(Telegram)


def value_text(value: Value) -> str | int | None:
    """Render an exact value for JSON: decimals and dates as strings, bytes as hex."""
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
