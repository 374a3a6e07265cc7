"""Decode benchmark: frames/s of the readers codec vs pymeterbus and pymbusparser.

Wired: ``readers.mbus.decode_mbus``, pymeterbus and pymbusparser decode the same mixed
corpus of wired long frames (the libmbus test frames that every one of them parses).
Wireless: ``readers.codec.decode_frame`` on encrypted OMS mode 5 water meter telegrams
(format A CRC blocks, AES-128-CBC, 7 records, driver applied); no library decodes those, so
its figure is printed as a ratio to our wired figure. Everything runs in one thread (one
core) in interleaved rounds, so machine load hits every decoder alike. Rates are frames per
second of this process's CPU time (time spent waiting for a core shared with other work is
not counted); each figure is the best round. Run: ``.venv/bin/python -m bench.decode``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

ROUNDS = 9
ROUND_SECONDS = 0.5
RADIO_METERS = 500

Decoder = Callable[[bytes], Any]


def corpus() -> list[bytes]:
    """Return the libmbus test frames that all three wired decoders parse."""
    import pymbusparser

    from readers.mbus import decode_mbus
    from tests.readers.vectors_mbus import VECTORS

    frames = []
    for vector in VECTORS:
        raw = bytes.fromhex(vector.hex)
        try:
            decode_mbus(raw)
            _pymeterbus(raw)
            pymbusparser.parse(raw)
        except Exception:  # noqa: BLE001 - a frame one decoder rejects leaves the corpus
            continue
        frames.append(raw)
    return frames


def radio_corpus() -> tuple[list[bytes], dict[str, bytes]]:
    """Return mode 5 telegrams of RADIO_METERS water meters and their keys by meter id.

    Each carries what a simulated water meter sends: volume, reversed volume, flow, meter
    time, last month's volume and date, error flags.
    """
    from readers.datatypes import METER_ZONE
    from readers.model import Header, Record
    from readers.wmbus_encode import encode_wmbus

    frames, keys = [], {}
    start = datetime(2026, 11, 21, 10, tzinfo=UTC)
    for n in range(RADIO_METERS):
        header = Header("KAM", f"{n:08d}", 0x1B, 0x07, access_no=n % 256, status=0)
        keys[header.meter_id] = (n + 1).to_bytes(4, "big") * 4
        records = [
            Record("volume", "m3", Decimal(123_456 + 37 * n).scaleb(-3)),
            Record("volume", "m3", Decimal(n % 7).scaleb(-3), modifiers=("backward",)),
            Record("flow", "m3/h", Decimal(n % 50).scaleb(-3)),
            Record("datetime", "", (start + timedelta(minutes=n)).astimezone(METER_ZONE)),
            Record("volume", "m3", Decimal(120_000 + n).scaleb(-3), storage=1),
            Record("date", "", date(2026, 10, 31), storage=1),
            Record("error_flags", "", n % 3),
        ]
        key = keys[header.meter_id]
        frames.append(encode_wmbus(header, records, key=key, mode=5, access_no=n % 256))
    return frames, keys


def _passes(decode: Decoder, frames: Sequence[bytes]) -> int:
    """Return how many corpus passes of ``decode`` fill about ROUND_SECONDS."""
    start = time.process_time()
    for frame in frames:
        decode(frame)
    return max(1, int(ROUND_SECONDS / max(time.process_time() - start, 1e-6)))


def frames_per_second(runs: Sequence[tuple[Decoder, Sequence[bytes]]]) -> list[float]:
    """Return the best frames/s of each (decoder, corpus); rounds interleave the decoders."""
    passes = [_passes(decode, frames) for decode, frames in runs]
    best = [0.0] * len(runs)
    for _ in range(ROUNDS):
        for index, (decode, frames) in enumerate(runs):
            start = time.process_time()
            for _ in range(passes[index]):
                for frame in frames:
                    decode(frame)
            rate = passes[index] * len(frames) / (time.process_time() - start)
            best[index] = max(best[index], rate)
    return best


def _pymeterbus(frame: bytes) -> Any:
    """Decode with pymeterbus down to record values (as ours returns values)."""
    import meterbus

    return [record.value for record in meterbus.load(frame).body.bodyPayload.records]


def main() -> None:
    """Print frames/s of each decoder and the ratios of ours to each baseline."""
    import pymbusparser

    from readers.codec import decode_frame
    from readers.mbus import decode_mbus
    from readers.model import Header

    wired = corpus()
    radio, keys = radio_corpus()

    def key_for(header: Header) -> bytes | None:
        return keys.get(header.meter_id)

    def decode_radio(frame: bytes) -> Any:
        return decode_frame("wmbus", frame, key_for)

    ours, theirs, rust, wireless = frames_per_second(
        [(decode_mbus, wired), (_pymeterbus, wired), (pymbusparser.parse, wired)]
        + [(decode_radio, radio)]
    )
    print(f"wired corpus: {len(wired)} long frames, {sum(map(len, wired))} bytes")
    print(f"readers.mbus.decode_mbus : {ours:10.0f} frames/s")
    print(f"pymeterbus (meterbus)    : {theirs:10.0f} frames/s")
    print(f"pymbusparser (Rust)      : {rust:10.0f} frames/s")
    print(f"ours / pymeterbus   = {ours / theirs:6.1f}x")
    print(f"ours / pymbusparser = {ours / rust:6.2f}x")
    size = sum(map(len, radio)) // len(radio)
    print(f"wM-Bus corpus: {len(radio)} mode 5 telegrams of {size} bytes, 7 records each")
    print(f"readers.codec.decode_frame (wmbus, AES, driver): {wireless:10.0f} frames/s per core")
    print(f"wM-Bus / wired decode_mbus = {wireless / ours:6.2f}x")


if __name__ == "__main__":
    main()
