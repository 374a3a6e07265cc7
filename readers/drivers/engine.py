"""Meter drivers as data: each ``*.toml`` file here declares detect codes, named fields and
test vectors. A field matches one record by quantity, storage, tariff, subunit, function and
modifiers; manufacturer-specific payloads go through a small named hook instead.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

from meterflow.errors import ConfigError
from readers.datarecords import Layout
from readers.drivers.hooks import HOOKS
from readers.model import Header, Kind, Record, Telegram, Value

ANY = "any"
WATER_TYPES = frozenset({0x06, 0x07, 0x15, 0x16, 0x28})


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One named field: which record it takes its value from, and how to render flags."""

    name: str
    quantity: str
    storage: int | str = 0
    tariff: int | str = 0
    subunit: int | str = 0
    function: str = "instantaneous"
    modifiers: tuple[str, ...] = ()
    unit: str | None = None
    bits: tuple[tuple[int, str], ...] = ()
    ok_text: str | None = None
    mask: int | None = None

    def matches(self, record: Record) -> bool:
        """Return whether ``record`` is the one this field names."""
        return (
            record.quantity == self.quantity
            and _fits(self.storage, record.storage)
            and _fits(self.tariff, record.tariff)
            and _fits(self.subunit, record.subunit)
            and (self.function == ANY or record.function == self.function)
            and (
                self.modifiers == (ANY,)
                or tuple(m for m in record.modifiers if m != "invalid") == self.modifiers
            )
            and (self.unit is None or record.unit == self.unit)
        )

    def render(self, value: Value) -> Value:
        """Return the field value; error flags become text when the spec names their bits."""
        if self.ok_text is None or not isinstance(value, int):
            return value
        if self.mask is not None:
            value &= self.mask
        names = [text for bit, text in self.bits if value & bit]
        unknown = value & ~sum(bit for bit, _ in self.bits)
        if unknown:
            names.append(f"ERROR_FLAGS_{unknown:X}")
        return " ".join(names) if names else self.ok_text


def _fits(wanted: int | str, actual: int) -> bool:
    return wanted == ANY or wanted == actual


# Field name, index of the record that feeds it, and its spec.
Plan = tuple[tuple[str, int, FieldSpec], ...]
_PLAN_LIMIT = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Driver:
    """A meter driver: detect codes, field specs, an optional hook and its test vectors."""

    name: str
    description: str
    detect: frozenset[tuple[str, int, int]]
    fields: tuple[FieldSpec, ...]
    hook: str | None = None
    generic: bool = False
    tests: tuple[Mapping[str, Any], ...] = ()
    # Which record feeds each field, by record layout (filled as layouts are seen), least
    # recently used first.
    plans: collections.OrderedDict[Layout, Plan] = dataclasses.field(
        default_factory=collections.OrderedDict, compare=False, repr=False
    )

    def detects(self, header: Header) -> bool:
        """Return whether this driver handles the meter ``header`` names."""
        if self.generic:
            return header.device_type in WATER_TYPES
        return (header.manufacturer, header.version, header.device_type) in self.detect

    def extract(self, telegram: Telegram, layout: Layout | None = None) -> dict[str, Value]:
        """Return the named fields found in ``telegram``.

        With the ``layout`` its records were decoded in, which record feeds which field is
        worked out once per layout and reused.
        """
        fields = self.record_fields(telegram.records, layout)
        if self.hook is not None:
            fields.update(HOOKS[self.hook](telegram))
        return fields

    def record_fields(
        self, records: tuple[Record, ...], layout: Layout | None = None
    ) -> dict[str, Value]:
        """Return the fields the specs name in ``records`` (hooks not applied)."""
        fields: dict[str, Value] = {}
        for name, index, spec in _plan(self, records, layout):
            value = records[index].value
            fields[name] = value if spec.ok_text is None else spec.render(value)
        return fields


def _plan(driver: Driver, records: tuple[Record, ...], layout: Layout | None) -> Plan:
    """Return which record feeds each field, cached per driver and record layout.

    A layout names every record's quantity, unit, storage, tariff, subunit, function and
    modifiers (all a spec matches on), so one plan serves every telegram of that layout.
    """
    if layout is None or None in layout:
        return _match(driver, records)
    plans = driver.plans
    plan = plans.get(layout)
    if plan is not None:
        plans.move_to_end(layout)
        return plan
    if len(plans) >= _PLAN_LIMIT:
        plans.popitem(last=False)  # bounded, so hostile input cannot grow it
    plan = plans[layout] = _match(driver, records)
    return plan


def _match(driver: Driver, records: tuple[Record, ...]) -> Plan:
    """Return, for each field, the first record its spec matches (a name is taken once)."""
    plan: list[tuple[str, int, FieldSpec]] = []
    taken: set[str] = set()
    for spec in driver.fields:
        if spec.name in taken:
            continue
        for index, record in enumerate(records):
            if spec.matches(record):
                plan.append((spec.name, index, spec))
                taken.add(spec.name)
                break
    return tuple(plan)


def _spec(data: Mapping[str, Any], driver: str) -> FieldSpec:
    known = {f.name for f in dataclasses.fields(FieldSpec)}
    unknown = set(data) - known
    if unknown or "name" not in data or "quantity" not in data:
        raise ConfigError(f"driver {driver}: bad field {dict(data)!r}")
    values = dict(data)
    values["modifiers"] = tuple(values.get("modifiers", ()))
    values["bits"] = tuple(sorted((int(k, 0), v) for k, v in values.get("bits", {}).items()))
    return FieldSpec(**values)


def parse_driver(data: Mapping[str, Any]) -> Driver:
    """Build a driver from its TOML data.

    Raises ConfigError if a required key is missing or a hook is unknown.
    """
    name = data.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"driver file without a name: {sorted(data)}")
    hook = data.get("hook")
    if hook is not None and hook not in HOOKS:
        raise ConfigError(f"driver {name}: unknown hook {hook!r}")
    try:
        detect = frozenset((str(m), int(v), int(t)) for m, v, t in data.get("detect", ()))
    except (TypeError, ValueError):
        message = f"driver {name}: detect entries are [manufacturer, version, type]"
        raise ConfigError(message) from None
    return Driver(
        name=name,
        description=str(data.get("description", "")),
        detect=detect,
        fields=tuple(_spec(f, name) for f in data.get("fields", ())),
        hook=hook,
        generic=bool(data.get("generic", False)),
        tests=tuple(data.get("tests", ())),
    )


@functools.cache
def load_drivers() -> tuple[Driver, ...]:
    """Return every shipped driver, specific drivers first and generic ones last."""
    files = resources.files("readers.drivers")
    drivers = [
        parse_driver(tomllib.loads(entry.read_text(encoding="utf-8")))
        for entry in sorted(files.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml")
    ]
    return tuple(sorted(drivers, key=lambda d: (d.generic, d.name)))


@functools.lru_cache(maxsize=1024)
def _driver_for(manufacturer: str, version: int, device_type: int) -> Driver | None:
    probe = Header(manufacturer, "00000000", version, device_type)
    return next((d for d in load_drivers() if d.detects(probe)), None)


def find_driver(header: Header) -> Driver | None:
    """Return the driver for the meter ``header`` names, or None."""
    return _driver_for(header.manufacturer, header.version, header.device_type)


def apply_driver(telegram: Telegram, layout: Layout | None = None) -> Telegram:
    """Return ``telegram`` with ``driver`` and ``fields`` filled when a driver matches.

    ``layout`` (from ``decode_layout``) lets the driver reuse its field plan.
    """
    header = telegram.header
    driver = _driver_for(header.manufacturer, header.version, header.device_type)
    if driver is None:
        return telegram
    fields = driver.extract(telegram, layout)
    return Telegram(telegram.kind, header, telegram.records, driver.name, fields)


def build_telegram(
    kind: Kind, header: Header, records: tuple[Record, ...], layout: Layout | None
) -> Telegram:
    """Return the telegram of decoded parts, with the matching driver's fields.

    The same as ``apply_driver(Telegram(kind, header, records), layout)``, building one
    telegram instead of two when the driver has no hook.
    """
    driver = _driver_for(header.manufacturer, header.version, header.device_type)
    if driver is None:
        return Telegram(kind, header, records)
    if driver.hook is not None:
        return apply_driver(Telegram(kind, header, records), layout)
    return Telegram(kind, header, records, driver.name, driver.record_fields(records, layout))
