"""One decoding entry point for ingest: wired or wireless frame in, driver-named telegram out."""

from __future__ import annotations

from meterflow.errors import DecodeError, FrameError
from readers.drivers.engine import apply_driver, build_telegram
from readers.mbus import decode_mbus_layout
from readers.model import Kind, Telegram
from readers.wmbus import KeyLookup, decode_wmbus_layout, no_keys

MBUS_STARTS = (0x68, 0x10, 0xE5)


def guess_kind(raw: bytes) -> Kind:
    """Return ``"mbus"`` for a wired frame (start 0x68/0x10, stop 0x16, or a lone 0xE5)."""
    if raw == b"\xe5" or (len(raw) >= 5 and raw[0] in MBUS_STARTS and raw[-1] == 0x16):
        return "mbus"
    return "wmbus"


def decode_frame(kind: Kind, raw: bytes, key_for: KeyLookup = no_keys) -> Telegram:
    """Decode a raw frame of ``kind`` and apply the matching meter driver.

    Raises only DecodeError subclasses, whatever the input bytes are.
    """
    try:
        if kind == "wmbus":
            header, records, layout = decode_wmbus_layout(raw, key_for)
            return build_telegram(kind, header, records, layout)
        if kind == "mbus":
            telegram, mbus_layout = decode_mbus_layout(raw)
            return apply_driver(telegram, mbus_layout)
        raise DecodeError(f"unknown frame kind {kind!r}; expected mbus or wmbus")
    except DecodeError:
        raise
    except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as exc:
        # A malformed frame must become a dead letter with a reason, never crash ingest.
        raise FrameError(f"undecodable {kind} frame: {type(exc).__name__}: {exc}") from exc
