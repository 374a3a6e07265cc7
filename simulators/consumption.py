"""Virtual water meters: a deterministic household consumption model with exact registers.

A meter's consumption is drawn per clock hour from a hash of (seed, hour), so the register at
any moment is a pure function of the seed and the time, however ``advance`` is chunked. Inside
an hour the register grows linearly in whole litres. Floats appear only as random draws that are
rounded to whole litres at once; registers are ``int`` litres and reported as ``Decimal`` m3.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from readers.model import Header, Record

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
LITRES_PER_M3 = 1000

# Mean litres per person in each hour of the day (about 100 litres a day in total).
WEEKDAY_PROFILE = (
    0.3, 0.2, 0.2, 0.2, 0.3, 1.5, 8.0, 11.0, 7.0, 3.5, 2.5, 2.5,
    3.5, 3.0, 2.5, 2.5, 3.5, 5.0, 7.0, 8.5, 9.0, 7.0, 4.0, 1.3,
)  # fmt: skip
WEEKEND_PROFILE = (
    0.5, 0.3, 0.2, 0.2, 0.2, 0.3, 1.0, 3.0, 7.0, 10.0, 9.0, 7.0,
    6.0, 5.0, 4.0, 3.5, 4.0, 5.0, 6.5, 7.5, 8.0, 6.5, 4.5, 2.0,
)  # fmt: skip
# More water in summer (gardens, showers), less in winter.
SEASON = (0.90, 0.90, 0.95, 1.00, 1.05, 1.15, 1.20, 1.20, 1.05, 1.00, 0.95, 0.90)

# Bits of the ``error_flags`` record of a virtual meter.
FLAG_BATTERY_LOW = 0x04
FLAG_LEAK = 0x08
FLAG_REVERSE_FLOW = 0x10
# OMS status byte of the application header: bit 2 is "power low".
STATUS_POWER_LOW = 0x04
# A leak is flagged once it has run this long without a break.
LEAK_ALARM_AFTER = timedelta(hours=24)


@dataclasses.dataclass(frozen=True, slots=True)
class Traits:
    """What makes one household and its meter behave as they do."""

    persons: int = 2
    initial_litres: int = 0
    leak_lph: int = 0
    leak_from: datetime | None = None
    reverse_per_day: float = 0.0
    battery_low_from: datetime | None = None
    replaced_at: datetime | None = None
    replacement_id: str | None = None
    replacement_key: bytes | None = None

    @classmethod
    def draw(cls, rng: random.Random, start: datetime) -> Traits:
        """Return traits of a typical fleet member: 2% leak, 1% reverse flow, 1% battery."""
        persons = rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5))
        leaking = rng.random() < 0.02
        battery = rng.random() < 0.01
        return cls(
            persons=persons,
            initial_litres=rng.randrange(0, 900_000),
            leak_lph=rng.randrange(2, 30) if leaking else 0,
            leak_from=start + timedelta(hours=rng.randrange(0, 24 * 30)) if leaking else None,
            reverse_per_day=0.2 if rng.random() < 0.01 else 0.0,
            battery_low_from=start + timedelta(days=rng.randrange(0, 60)) if battery else None,
        )


def hour_index(moment: datetime) -> int:
    """Return the number of whole hours from 2000-01-01 UTC to ``moment``."""
    return int((moment - EPOCH).total_seconds() // 3600)


def hour_start(index: int) -> datetime:
    """Return the UTC start of hour ``index``."""
    return EPOCH + timedelta(hours=index)


def litres_m3(litres: int) -> Decimal:
    """Return whole litres as exact cubic metres with three decimals."""
    return Decimal(litres).scaleb(-3)


def hash64(*parts: int) -> int:
    """Return a 64-bit hash of integers (splitmix64 rounds): cheap, stable across runs."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & 0xFFFFFFFFFFFFFFFF)) + 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x


def uniform(*parts: int) -> float:
    """Return a uniform draw in [0, 1) determined by ``parts``."""
    return (hash64(*parts) >> 11) / float(1 << 53)


class VirtualMeter:
    """One water meter of one household, advanced through simulated time.

    ``total_litres`` is the net volume register (forward minus backward flow), and
    ``backward_litres`` the reverse-flow register; both are whole litres.
    """

    def __init__(
        self,
        header: Header,
        key: bytes,
        seed: int,
        *,
        start: datetime,
        traits: Traits | None = None,
    ) -> None:
        self.header = header
        self.key = key
        self.seed = seed
        self.traits = traits or Traits()
        self.clock = start
        self.access_no = seed & 0xFF
        self._hour = hour_index(start)
        self._memo: tuple[int, tuple[int, int]] = (-1, (0, 0))
        self._base_litres = self.traits.initial_litres
        self._forward_done = 0
        self._backward_done = 0
        self._target = self._initial_target(start)
        self._replace_hour = (
            hour_index(self.traits.replaced_at) if self.traits.replaced_at is not None else None
        )

    def _initial_target(self, start: datetime) -> tuple[int, date]:
        month_start = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        days = (start - month_start).days
        estimate = days * 100 * self.traits.persons
        return max(0, self.traits.initial_litres - estimate), month_start.date() - timedelta(1)

    def hourly_litres(self, index: int) -> tuple[int, int]:
        """Return the (forward, backward) litres that flow in hour ``index``."""
        if self._memo[0] == index:
            return self._memo[1]
        litres = self._draw_hour(index)
        self._memo = (index, litres)
        return litres

    def _draw_hour(self, index: int) -> tuple[int, int]:
        moment = hour_start(index)
        profile = WEEKEND_PROFILE if moment.weekday() >= 5 else WEEKDAY_PROFILE
        mean = profile[moment.hour] * self.traits.persons * SEASON[moment.month - 1]
        forward = int(mean * (0.3 + 1.4 * uniform(self.seed, index, 1)) + 0.5)
        leak_from = self.traits.leak_from
        if self.traits.leak_lph and leak_from is not None and moment >= leak_from:
            forward += self.traits.leak_lph
        return forward, self._backward_in(index)

    def _backward_in(self, index: int) -> int:
        if not self.traits.reverse_per_day:
            return 0
        day = index // 24
        if uniform(self.seed, day, 2) >= self.traits.reverse_per_day:
            return 0
        if index % 24 != int(uniform(self.seed, day, 3) * 24):
            return 0
        return 1 + int(uniform(self.seed, day, 4) * 20)

    def advance(self, to: datetime) -> None:
        """Run the meter until ``to``; times before the meter's clock are ignored."""
        if to <= self.clock:
            return
        target_hour = hour_index(to)
        while self._hour < target_hour:
            forward, backward = self.hourly_litres(self._hour)
            self._forward_done += forward
            self._backward_done += backward
            self._hour += 1
            self._on_hour_start(self._hour)
        self.clock = to

    def _on_hour_start(self, index: int) -> None:
        if index == self._replace_hour:
            self._replace()
        moment = hour_start(index)
        if moment.day == 1 and moment.hour == 0:
            self._target = (self._net_at_hour_start(), moment.date() - timedelta(1))

    def _replace(self) -> None:
        new_id = self.traits.replacement_id or f"{(int(self.header.id) + 1) % 10**8:08d}"
        self.header = dataclasses.replace(self.header, id=new_id)
        self.key = self.traits.replacement_key or self.key
        self._base_litres = 0
        self._forward_done = self._backward_done = 0
        self._target = (0, hour_start(self._hour).date())

    def _net_at_hour_start(self) -> int:
        return self._base_litres + self._forward_done - self._backward_done

    def _partial(self) -> tuple[int, int]:
        seconds = int((self.clock - hour_start(self._hour)).total_seconds())
        forward, backward = self.hourly_litres(self._hour)
        return forward * seconds // 3600, backward * seconds // 3600

    @property
    def total_litres(self) -> int:
        """The net volume register at the meter's clock, in whole litres."""
        forward, backward = self._partial()
        return self._net_at_hour_start() + forward - backward

    @property
    def backward_litres(self) -> int:
        """The reverse-flow register at the meter's clock, in whole litres."""
        return self._backward_done + self._partial()[1]

    @property
    def flow_litres_per_hour(self) -> int:
        """The current net flow in litres per hour (negative while flow is reversed)."""
        forward, backward = self.hourly_litres(self._hour)
        return forward - backward

    @property
    def target(self) -> tuple[int, date]:
        """The register at the last month end (litres) and that month end's date."""
        return self._target

    def error_flags(self) -> int:
        """Return the alarm bits active at the meter's clock."""
        flags = 0
        traits = self.traits
        if traits.battery_low_from is not None and self.clock >= traits.battery_low_from:
            flags |= FLAG_BATTERY_LOW
        if traits.leak_lph and traits.leak_from is not None:
            if self.clock - traits.leak_from >= LEAK_ALARM_AFTER:
                flags |= FLAG_LEAK
        if self.hourly_litres(self._hour)[1]:
            flags |= FLAG_REVERSE_FLOW
        return flags

    def status(self) -> int:
        """Return the OMS status byte of the application header."""
        return STATUS_POWER_LOW if self.error_flags() & FLAG_BATTERY_LOW else 0

    def records(self, at: datetime) -> tuple[Record, ...]:
        """Advance to ``at`` and return the data records a telegram of this meter carries."""
        self.advance(at)
        target_litres, target_date = self._target
        stamp = self.clock.astimezone(UTC).replace(second=0, microsecond=0)
        return (
            Record("volume", "m3", litres_m3(self.total_litres)),
            Record("volume", "m3", litres_m3(self.backward_litres), modifiers=("backward",)),
            Record("flow", "m3/h", litres_m3(self.flow_litres_per_hour)),
            Record("datetime", "", stamp),
            Record("volume", "m3", litres_m3(target_litres), storage=1),
            Record("date", "", target_date, storage=1),
            Record("error_flags", "", self.error_flags()),
        )

    def next_header(self) -> Header:
        """Return the header of the next telegram, stepping the access number."""
        self.access_no = (self.access_no + 1) & 0xFF
        return dataclasses.replace(self.header, access_no=self.access_no, status=self.status())
