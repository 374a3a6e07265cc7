"""Fleet (load) mode: many virtual meters on many virtual gateways, published to the broker.

One process generates every telegram: a mode 5 telegram costs about 0.1 ms to build and
encrypt (see docs/simulators.md for the figures), so one core sends several thousand a
second, more than a city's meters send at their usual intervals. Meters are built lazily
from the seed, and the key file lets ingest decrypt what they send.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from meterflow.errors import ConfigError
from readers.model import Header
from simulators.consumption import Traits, VirtualMeter, hash64
from simulators.radio_gateway import FrameSink, SimClock, VirtualRadio, run_radio

# Water meter makers common in Polish utilities, with a plausible version byte each.
MAKERS = (("APA", 0x14), ("DME", 0x70), ("ZRI", 0x0C), ("SEN", 0x68), ("BMT", 0x13))
DEVICE_WATER = 0x07
FIRST_ID = 10_000_000
MAX_METERS = 1_000_000
KEY_FILE_HEADER = "meter id;manufacturer;AES key"


@dataclasses.dataclass(frozen=True, slots=True)
class FleetConfig:
    """What to simulate: how many meters and gateways, how often and how fast."""

    meters: int
    gateways: int = 1
    interval_s: float = 120.0
    speed: float = 1.0
    duration_s: float | None = None
    seed: int = 1
    overlap: float = 0.1
    corrupt_rate: float = 0.0
    gateway_prefix: str = "gw-sim"

    def check(self) -> None:
        """Raises ConfigError if a number is out of range."""
        if not 1 <= self.meters <= MAX_METERS:
            raise ConfigError(f"--meters {self.meters} must be from 1 to {MAX_METERS}")
        if not 1 <= self.gateways <= 1000:
            raise ConfigError(f"--gateways {self.gateways} must be from 1 to 1000")
        if self.interval_s <= 0 or self.speed <= 0:
            raise ConfigError("--interval and --speed must be positive")
        if self.duration_s is not None and self.duration_s < 0:
            raise ConfigError("--duration must not be negative")


def fleet_meter(index: int, seed: int, start: datetime) -> VirtualMeter:
    """Return meter ``index`` of the fleet of ``seed``: always the same id, key and habits."""
    rng = random.Random(hash64(seed, index, 30))
    maker, version = MAKERS[index % len(MAKERS)]
    header = Header(maker, f"{FIRST_ID + index:08d}", version, DEVICE_WATER)
    key = rng.randbytes(16)
    return VirtualMeter(
        header, key, hash64(seed, index), start=start, traits=Traits.draw(rng, start)
    )


def gateway_ids(count: int, prefix: str = "gw-sim") -> list[str]:
    """Return the ids of ``count`` simulated gateways."""
    return [f"{prefix}-{n:04d}" for n in range(1, count + 1)]


def build_radio(config: FleetConfig, start: datetime) -> VirtualRadio:
    """Return the virtual radio of ``config``, its clock starting at ``start``.

    Raises ConfigError if the configuration is out of range.
    """
    config.check()
    meters = [fleet_meter(index, config.seed, start) for index in range(config.meters)]
    return VirtualRadio(
        meters,
        gateway_ids(config.gateways, config.gateway_prefix),
        start=start,
        interval_s=config.interval_s,
        overlap=config.overlap,
        corrupt_rate=config.corrupt_rate,
        seed=config.seed,
    )


def write_key_file(path: Path, meters: Sequence[VirtualMeter]) -> int:
    """Write the vendor key file (``meter id;manufacturer;AES key``) of ``meters``.

    Replaced meters contribute their successor too. Returns the number of rows written.
    Raises ConfigError if the file cannot be written.
    """
    rows = [KEY_FILE_HEADER]
    for meter in meters:
        rows.append(f"{meter.header.id};{meter.header.manufacturer};{meter.key.hex().upper()}")
        traits = meter.traits
        if traits.replaced_at is not None and traits.replacement_id is not None:
            key = (traits.replacement_key or meter.key).hex().upper()
            rows.append(f"{traits.replacement_id};{meter.header.manufacturer};{key}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write key file {path}: {exc.strerror}") from None
    return len(rows) - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    """A snapshot of a fleet run, printed as one line."""

    elapsed_s: float
    simulated: datetime
    telegrams: int
    frames: int
    corrupted: int
    pending: int

    def line(self) -> str:
        """Return the figures as one line of text."""
        rate = self.telegrams / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"{self.elapsed_s:7.1f} s  sim {self.simulated:%Y-%m-%d %H:%M:%S}  "
            f"telegrams {self.telegrams}  ({rate:.0f}/s sent)  frames {self.frames}  "
            f"corrupted {self.corrupted}  pending {self.pending}"
        )


def run_fleet(
    radio: VirtualRadio,
    sinks: Mapping[str, FrameSink],
    clock: SimClock,
    stop: threading.Event,
    *,
    duration_s: float | None = None,
    report: Callable[[Figures], None] | None = None,
    report_every_s: float = 5.0,
    pending: Callable[[], int] = lambda: 0,
) -> Figures:
    """Run the radio until ``stop`` is set; after ``duration_s`` real seconds, set ``stop``.

    ``report`` gets a snapshot every ``report_every_s`` seconds; the last one is returned.
    """
    began = time.monotonic()
    done = threading.Event()

    def snapshot() -> Figures:
        stats = radio.stats
        elapsed = time.monotonic() - began
        return Figures(
            elapsed, clock.now(), stats.telegrams, stats.frames, stats.corrupted, pending()
        )

    def timer() -> None:
        next_report = report_every_s
        while not done.wait(0.05):
            elapsed = time.monotonic() - began
            if duration_s is not None and elapsed >= duration_s:
                stop.set()
            if report is not None and elapsed >= next_report:
                next_report += report_every_s
                report(snapshot())

    thread = threading.Thread(target=timer, name="mf-fleet-timer", daemon=True)
    thread.start()
    try:
        run_radio(radio, sinks, clock, stop)
    finally:
        done.set()
        thread.join()
    return snapshot()
