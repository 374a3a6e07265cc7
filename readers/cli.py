"""``meterflow decode``: print a raw M-Bus or wireless M-Bus frame as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from meterflow.errors import ConfigError, FrameError
from meterflow.settings import Settings


def register(subparsers: Any) -> None:
    """Add the ``decode`` sub-command."""
    parser = subparsers.add_parser(
        "decode",
        help="decode raw frames given as hex and print them as JSON",
        description="Decode M-Bus or wireless M-Bus frames (hex) and print them as JSON.",
    )
    parser.add_argument("frames", nargs="+", metavar="HEX", help="a frame in hex")
    parser.add_argument("--key", help="the meter's AES-128 key in hex (32 digits)")
    parser.add_argument(
        "--kind", choices=("mbus", "wmbus", "auto"), default="auto", help="frame kind"
    )
    parser.set_defaults(handler=run)


def _hex(text: str, what: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "").replace("_", "").replace("|", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise FrameError(f"{what} {text!r} is not hex") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Decode each frame and print one JSON document per frame.

    Raises ConfigError for a malformed key and DecodeError for an undecodable frame.
    """
    from readers.codec import decode_frame, guess_kind

    key = None
    if args.key is not None:
        try:
            key = bytes.fromhex(args.key)
        except ValueError:
            key = b""
        if len(key) != 16:
            raise ConfigError("--key must be 32 hex digits (an AES-128 key)")
    for text in args.frames:
        raw = _hex(text, "frame")
        kind = guess_kind(raw) if args.kind == "auto" else args.kind
        telegram = decode_frame(kind, raw, lambda header: key)
        print(json.dumps(telegram.as_json(), indent=2))
    return 0
