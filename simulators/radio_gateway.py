"""A virtual wireless M-Bus radio: meters sending encrypted OMS telegrams to virtual gateways.

Every meter transmits an OMS security mode 5 telegram (format A, CRCs present, short header)
every ``interval_s`` simulated seconds. Each meter is heard by one gateway, some by a second
one too (the same bytes, a weaker signal); each reception gets a realistic RSSI and, at
``corrupt_rate``, one flipped bit so its CRC fails. A simulated clock may run faster than real
time. ``run_radio`` publishes what each gateway hears through its own frame sink (a
``FramePublisher`` of kind ``wmbus``), and ``read_now`` answers a gateway's ``read`` command.
"""

from __future__ import annotations

import dataclasses
import heapq
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from meterflow.errors import ConfigError
from readers.wmbus_encode import encode_wmbus
from schemas.envelope import RawFrame
from simulators.consumption import VirtualMeter, hash64, uniform

SECOND_GATEWAY_LOSS_DB = 8


class FrameSink(Protocol):
    """Where a gateway's frames go: ``FramePublisher`` or anything with its ``publish``."""

    def publish(self, frames: Sequence[RawFrame]) -> None:
        """Queue ``frames`` for delivery."""


class SimClock:
    """Simulated time: starts at ``start`` and runs ``speed`` times faster than real time."""

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ConfigError(f"simulation speed {speed} must be positive")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        """Return the current simulated time."""
        elapsed = (self._monotonic() - self._origin) * self.speed
        return self.start + timedelta(seconds=elapsed)

    def real_seconds_until(self, moment: datetime) -> float:
        """Return how many real seconds remain until the simulated ``moment``."""
        return max(0.0, (moment - self.now()).total_seconds() / self.speed)


@dataclasses.dataclass(frozen=True, slots=True)
class Reception:
    """A gateway that hears a meter, and the meter's mean signal strength there."""

    gateway: str
    rssi_dbm: int


@dataclasses.dataclass(slots=True)
class RadioStats:
    """Counts of a radio run."""

    telegrams: int = 0
    frames: int = 0
    corrupted: int = 0


class VirtualRadio:
    """Virtual meters on the air and the gateways that hear them; safe to share by threads."""

    def __init__(
        self,
        meters: Sequence[VirtualMeter],
        gateways: Sequence[str],
        *,
        start: datetime,
        interval_s: float = 120.0,
        overlap: float = 0.1,
        corrupt_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        """Place the meters among the gateways and schedule their first transmissions.

        Raises ConfigError if there are no gateways or a rate is outside 0..1.
        """
        if not gateways:
            raise ConfigError("a virtual radio needs at least one gateway")
        if not (0.0 <= overlap <= 1.0 and 0.0 <= corrupt_rate <= 1.0 and interval_s > 0):
            raise ConfigError("overlap and corrupt_rate must be 0..1 and interval_s positive")
        self.meters = list(meters)
        self.gateways = list(gateways)
        self.interval = timedelta(seconds=interval_s)
        self.corrupt_rate = corrupt_rate
        self.seed = seed
        self.stats = RadioStats()
        self._lock = threading.Lock()
        self._coverage = [self._place(index, overlap) for index in range(len(self.meters))]
        self._by_id = {meter.header.meter_id: index for index, meter in enumerate(self.meters)}
        self._due = [
            (start + self.interval * uniform(seed, index, 10), index)
            for index in range(len(self.meters))
        ]
        heapq.heapify(self._due)
        self._receptions = 0

    def _place(self, index: int, overlap: float) -> tuple[Reception, ...]:
        count = len(self.gateways)
        first = hash64(self.seed, index, 11) % count
        rssi = -105 + int(uniform(self.seed, index, 12) * 45)
        heard = [Reception(self.gateways[first], rssi)]
        if count > 1 and uniform(self.seed, index, 13) < overlap:
            second = (first + 1 + hash64(self.seed, index, 14) % (count - 1)) % count
            heard.append(Reception(self.gateways[second], rssi - SECOND_GATEWAY_LOSS_DB))
        return tuple(heard)

    def coverage(self, index: int) -> tuple[Reception, ...]:
        """Return the gateways that hear meter ``index``."""
        return self._coverage[index]

    def next_due(self) -> datetime | None:
        """Return the simulated time of the next transmission, if any meter is left."""
        with self._lock:
            return self._due[0][0] if self._due else None

    def telegram(self, index: int, at: datetime) -> bytes:
        """Advance meter ``index`` to ``at`` and return its encrypted telegram."""
        meter = self.meters[index]
        records = meter.records(at)
        header = meter.next_header()
        return encode_wmbus(header, records, key=meter.key, access_no=meter.access_no)

    def step(self, until: datetime, limit: int | None = None) -> dict[str, list[RawFrame]]:
        """Transmit the telegrams due by ``until`` (at most ``limit``, earliest first); return
        the frames each gateway heard."""
        heard: dict[str, list[RawFrame]] = {}
        budget = -1 if limit is None else limit
        with self._lock:
            while self._due and self._due[0][0] <= until and budget != 0:
                budget -= 1
                at, index = heapq.heappop(self._due)
                data = self.telegram(index, at)
                self.stats.telegrams += 1
                for reception in self._coverage[index]:
                    heard.setdefault(reception.gateway, []).append(
                        self._receive(reception, at, data)
                    )
                jitter = 0.95 + 0.1 * uniform(self.seed, index, self.stats.telegrams)
                heapq.heappush(self._due, (at + self.interval * jitter, index))
        return heard

    def _receive(self, reception: Reception, at: datetime, data: bytes) -> RawFrame:
        self._receptions += 1
        self.stats.frames += 1
        draw = self._receptions
        rssi = reception.rssi_dbm + int(uniform(self.seed, draw, 20) * 7) - 3
        if self.corrupt_rate and uniform(self.seed, draw, 21) < self.corrupt_rate:
            self.stats.corrupted += 1
            data = _flip_bit(data, hash64(self.seed, draw, 22))
        return RawFrame(at, data, rssi)

    def read_now(self, gateway: str, meter_ref: str, at: datetime) -> RawFrame:
        """Return a fresh telegram of the meter ``meter_ref`` as ``gateway`` hears it now.

        ``meter_ref`` is ``MAN-12345678`` or the bare id. Raises ConfigError if no such
        meter is in range of ``gateway``.
        """
        with self._lock:
            index = self._find(meter_ref)
            heard = [r for r in self._coverage[index] if r.gateway == gateway]
            if not heard:
                raise ConfigError(f"meter {meter_ref} is not in range of gateway {gateway}")
            at = max(at, self.meters[index].clock)
            data = self.telegram(index, at)
            self.stats.telegrams += 1
            return self._receive(heard[0], at, data)

    def _find(self, meter_ref: str) -> int:
        index = self._by_id.get(meter_ref)
        if index is not None and self.meters[index].header.meter_id == meter_ref:
            return index
        # Replaced meters change their id; a bare id is looked up the slow way.
        for index, meter in enumerate(self.meters):
            if meter_ref in (meter.header.meter_id, meter.header.id):
                return index
        raise ConfigError(f"meter {meter_ref} is not one of the simulated meters")


def _flip_bit(data: bytes, draw: int) -> bytes:
    """Return ``data`` with one bit flipped after the L field (so the CRC catches it)."""
    position = 1 + draw % (len(data) - 1)
    corrupted = bytearray(data)
    corrupted[position] ^= 1 << (draw >> 32) % 8
    return bytes(corrupted)


def run_radio(
    radio: VirtualRadio,
    sinks: Mapping[str, FrameSink],
    clock: SimClock,
    stop: threading.Event,
    *,
    tick_s: float = 0.2,
    until: datetime | None = None,
    batch: int = 2000,
) -> RadioStats:
    """Transmit on the simulated clock until ``stop`` is set or simulated ``until`` passes.

    Each gateway's frames of one step (at most ``batch`` telegrams) go to its sink in one
    ``publish`` call. When generating falls behind the clock, telegrams keep their scheduled
    times and the run catches up before it stops at ``until``.
    """
    while not stop.is_set():
        now = clock.now()
        final = until is not None and now >= until
        if until is not None and final:
            now = until
        before = radio.stats.telegrams
        for gateway, frames in radio.step(now, batch).items():
            sinks[gateway].publish(frames)
        if radio.stats.telegrams - before >= batch:
            continue  # behind the clock: catch up before waiting
        if final:
            break
        upcoming = radio.next_due()
        wait = tick_s if upcoming is None else min(tick_s, clock.real_seconds_until(upcoming))
        stop.wait(max(wait, 0.005))
    return radio.stats
