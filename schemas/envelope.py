"""The MQTT envelope of version 1: topic names, building and strict parsing.

``envelope.schema.json`` beside this module is the published contract; ``parse_envelope``
checks the same rules by hand because it runs once per message on the ingest hot path.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

from meterflow.errors import EnvelopeError
from readers.model import Kind

VERSION = 1
TOPIC_PREFIX = "mf/v1"
KINDS: tuple[Kind, ...] = ("mbus", "wmbus")
MAX_FRAMES = 1000
MAX_FRAME_BYTES = 512
GATEWAY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FRAME_KEYS = frozenset({"received_at", "hex", "rssi_dbm"})
TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


@dataclasses.dataclass(frozen=True, slots=True)
class RawFrame:
    """One frame as a gateway received it."""

    received_at: datetime
    data: bytes
    rssi_dbm: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    """One MQTT message: a gateway's frames of one kind."""

    gateway: str
    kind: Kind
    frames: tuple[RawFrame, ...]


def topic(gateway: str, kind: str) -> str:
    """Return the topic a gateway publishes frames of ``kind`` on."""
    return f"{TOPIC_PREFIX}/{gateway}/{kind}"


def parse_topic(name: str) -> tuple[str, Kind]:
    """Return (gateway, kind) of a frames topic.

    Raises EnvelopeError if the topic is not ``mf/v1/<gateway>/<kind>``.
    """
    parts = name.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_PREFIX:
        raise EnvelopeError(f"topic {name!r} is not {TOPIC_PREFIX}/<gateway>/<kind>")
    gateway, kind = parts[2], parts[3]
    if not GATEWAY_RE.fullmatch(gateway):
        raise EnvelopeError(f"topic {name!r} has an invalid gateway id")
    if kind not in KINDS:
        raise EnvelopeError(f"topic {name!r} has unknown kind {kind!r} (want mbus or wmbus)")
    return gateway, kind


def format_time(moment: datetime) -> str:
    """Return ``moment`` as UTC ISO 8601 with milliseconds and ``Z``."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def build_envelope(gateway: str, kind: Kind, frames: Iterable[RawFrame]) -> bytes:
    """Return the JSON payload carrying ``frames``."""
    items: list[dict[str, Any]] = []
    for frame in frames:
        item: dict[str, Any] = {
            "received_at": format_time(frame.received_at),
            "hex": frame.data.hex(),
        }
        if frame.rssi_dbm is not None:
            item["rssi_dbm"] = frame.rssi_dbm
        items.append(item)
    document = {"v": VERSION, "gateway": gateway, "kind": kind, "frames": items}
    return json.dumps(document, separators=(",", ":")).encode()


def parse_envelope(payload: bytes) -> Envelope:
    """Parse and check a payload against the version 1 envelope.

    Raises EnvelopeError naming the first rule the payload breaks.
    """
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"payload is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise EnvelopeError("envelope must be a JSON object")
    extra = set(document) - {"v", "gateway", "kind", "frames"}
    if extra:
        raise EnvelopeError(f"envelope has unknown keys {sorted(extra)}")
    if document.get("v") != VERSION or isinstance(document.get("v"), bool):
        raise EnvelopeError(f"envelope version {document.get('v')!r} is not supported (want 1)")
    gateway = document.get("gateway")
    if not isinstance(gateway, str) or not GATEWAY_RE.fullmatch(gateway):
        raise EnvelopeError(f"envelope gateway {gateway!r} is not a valid gateway id")
    kind = document.get("kind")
    if kind not in KINDS:
        raise EnvelopeError(f"envelope kind {kind!r} is not mbus or wmbus")
    items = document.get("frames")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_FRAMES:
        raise EnvelopeError(f"envelope frames must be a list of 1 to {MAX_FRAMES} frames")
    frames = tuple([_parse_frame(index, item) for index, item in enumerate(items)])
    return Envelope(gateway, cast(Kind, kind), frames)


def _parse_frame(index: int, item: Any) -> RawFrame:
    if not isinstance(item, dict):
        raise EnvelopeError(f"frames[{index}] must be an object")
    if not item.keys() <= FRAME_KEYS:
        raise EnvelopeError(f"frames[{index}] has unknown keys {sorted(set(item) - FRAME_KEYS)}")
    stamp = item.get("received_at")
    if not isinstance(stamp, str) or not TIME_RE.fullmatch(stamp):
        raise EnvelopeError(f"frames[{index}].received_at {stamp!r} is not an ISO 8601 UTC time")
    try:
        received_at = datetime.fromisoformat(stamp)
    except ValueError:
        raise EnvelopeError(f"frames[{index}].received_at {stamp!r} is not a valid time") from None
    if stamp[-1] != "Z":
        received_at = received_at.astimezone(UTC)
    text = item.get("hex")
    if not isinstance(text, str) or not 2 <= len(text) <= 2 * MAX_FRAME_BYTES:
        raise EnvelopeError(f"frames[{index}].hex must hold 1 to {MAX_FRAME_BYTES} bytes of hex")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise EnvelopeError(f"frames[{index}].hex is not hexadecimal") from None
    if len(data) * 2 != len(text):
        raise EnvelopeError(f"frames[{index}].hex must not contain spaces")
    rssi = item.get("rssi_dbm")
    if rssi is not None and (type(rssi) is not int or not -200 <= rssi <= 50):
        raise EnvelopeError(f"frames[{index}].rssi_dbm {rssi!r} must be an integer from -200 to 50")
    return RawFrame(received_at, data, rssi)
