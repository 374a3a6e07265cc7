"""The M-Bus poll schedule: read each meter every interval and publish its raw telegrams.

A meter is named by its primary address (``"5"``), its 8-digit id (``"12345678"``, F digits
are wildcards) or its store identity (``"APA-12345678"``, manufacturer and id). Each RSP_UD
telegram becomes one raw frame of kind ``mbus``, stamped with the time it was received.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from meterflow.errors import ConfigError, TransportError
from readers.collectors.mbus_master import MAX_PRIMARY, MbusMaster
from readers.collectors.publisher import Command
from readers.mbus import SecondarySelection
from readers.model import Header
from schemas.envelope import RawFrame

log = logging.getLogger(__name__)

Target = int | SecondarySelection
_ID_RE = re.compile(r"[0-9Ff]{8}")
_METER_RE = re.compile(r"([A-Za-z]{3})-([0-9]{8})")


class FrameSink(Protocol):
    """Where raw frames go: a ``FramePublisher`` in production."""

    def publish(self, frames: Sequence[RawFrame]) -> None:
        """Queue ``frames`` for delivery."""


def parse_target(text: str) -> Target:
    """Return the target a meter name denotes (primary address, id or ``MAN-ID``).

    Raises ConfigError if ``text`` is none of these.
    """
    text = text.strip()
    if text.isdigit() and len(text) <= 3:
        address = int(text)
        if address > MAX_PRIMARY:
            raise ConfigError(f"primary address {address} is outside 0-{MAX_PRIMARY}")
        return address
    if _ID_RE.fullmatch(text):
        return SecondarySelection(text.upper())
    match = _METER_RE.fullmatch(text)
    if match:
        return SecondarySelection(match.group(2), match.group(1).upper())
    raise ConfigError(
        f"meter {text!r} is not a primary address (0-250), an 8-digit id or MAN-12345678"
    )


def target_from_header(header: Header) -> SecondarySelection:
    """Return the exact secondary selection of the meter a scan found."""
    return SecondarySelection(header.id, header.manufacturer, header.version, header.device_type)


def target_name(target: Target) -> str:
    """Return how logs and errors name ``target``."""
    if isinstance(target, int):
        return f"primary {target}"
    if target.manufacturer is not None:
        return f"{target.manufacturer}-{target.id_pattern}"
    return target.id_pattern


class MbusPoller:
    """Reads a list of meters on one line and publishes what they answer."""

    def __init__(
        self,
        master: MbusMaster,
        sink: FrameSink,
        targets: Sequence[Target],
        interval_s: float,
    ) -> None:
        self.master = master
        self.sink = sink
        self.targets = list(targets)
        self.interval_s = interval_s
        self.failures = 0

    def read(self, target: Target) -> int:
        """Read one meter now and publish its telegrams; return how many were published.

        Raises TransportError if the meter does not answer validly after the retries.
        """
        if isinstance(target, int):
            telegrams = self.master.read_primary(target)
        else:
            telegrams = self.master.read_secondary(target)
        received_at = datetime.now(UTC)
        self.sink.publish([RawFrame(received_at, raw) for raw in telegrams])
        return len(telegrams)

    def poll_once(self) -> int:
        """Read every meter once; return the telegrams published. Failures are logged."""
        published = 0
        for target in self.targets:
            try:
                published += self.read(target)
            except TransportError as exc:
                self.failures += 1
                log.warning("meter %s not read: %s", target_name(target), exc)
        return published

    def run(self, stop: threading.Event) -> None:
        """Poll every ``interval_s`` seconds (on a fixed grid) until ``stop`` is set."""
        started = time.monotonic()
        rounds = 0
        while not stop.is_set():
            count = self.poll_once()
            rounds += 1
            log.info("poll round %d: %d telegrams from %d meters", rounds, count, len(self.targets))
            next_at = started + rounds * self.interval_s
            stop.wait(max(0.0, next_at - time.monotonic()))

    def on_command(self, command: Command) -> None:
        """Serve a gateway command ``read``: read the named meter now.

        Raises ConfigError if the meter name is invalid, TransportError if it does not answer.
        """
        self.read(parse_target(command.meter))
