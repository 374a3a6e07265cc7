"""Decode benchmark: frames/s of readers.mbus.decode_mbus vs pymeterbus and pymbusparser.

All three decode the same mixed corpus of wired long frames (the libmbus test frames that
every one of them parses), in one run; each figure is the best of several rounds.
Run: ``.venv/bin/python -m bench.decode``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

ROUNDS = 5
ROUND_SECONDS = 0.8


def corpus() -> list[bytes]:
    """Return the libmbus test frames that all three decoders parse."""
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


def _passes(decode: Callable[[bytes], Any], frames: Sequence[bytes]) -> int:
    """Return how many corpus passes of ``decode`` fill about ROUND_SECONDS."""
    start = time.perf_counter()
    for frame in frames:
        decode(frame)
    return max(1, int(ROUND_SECONDS / max(time.perf_counter() - start, 1e-6)))


def frames_per_second(
    decoders: Sequence[Callable[[bytes], Any]], frames: Sequence[bytes]
) -> list[float]:
    """Return the best frames/s of each decoder; rounds interleave so load hits all alike."""
    passes = [_passes(decode, frames) for decode in decoders]
    best = [0.0] * len(decoders)
    for _ in range(ROUNDS):
        for index, decode in enumerate(decoders):
            start = time.perf_counter()
            for _ in range(passes[index]):
                for frame in frames:
                    decode(frame)
            rate = passes[index] * len(frames) / (time.perf_counter() - start)
            best[index] = max(best[index], rate)
    return best


def _pymeterbus(frame: bytes) -> Any:
    """Decode with pymeterbus down to record values (as ours returns values)."""
    import meterbus

    return [record.value for record in meterbus.load(frame).body.bodyPayload.records]


def main() -> None:
    """Print frames/s of each decoder and the ratios of ours to each baseline."""
    import pymbusparser

    from readers.mbus import decode_mbus

    frames = corpus()
    ours, theirs, rust = frames_per_second([decode_mbus, _pymeterbus, pymbusparser.parse], frames)
    print(f"corpus: {len(frames)} wired long frames, {sum(map(len, frames))} bytes")
    print(f"readers.mbus.decode_mbus : {ours:10.0f} frames/s")
    print(f"pymeterbus (meterbus)    : {theirs:10.0f} frames/s")
    print(f"pymbusparser (Rust)      : {rust:10.0f} frames/s")
    print(f"ours / pymeterbus   = {ours / theirs:6.1f}x")
    print(f"ours / pymbusparser = {ours / rust:6.2f}x")


if __name__ == "__main__":
    main()
