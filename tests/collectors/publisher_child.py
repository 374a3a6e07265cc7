"""A collector process for the kill -9 tests: spools COUNT numbered frames, says so, keeps sending.

Usage: publisher_child.py MQTT_URL GATEWAY SPOOL_PATH COUNT FRAMES_PER_ENVELOPE
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from readers.collectors.publisher import FramePublisher
from schemas.envelope import RawFrame

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def main() -> None:
    url, gateway, spool_path, count, per_envelope = sys.argv[1:6]
    frames = [RawFrame(T0 + timedelta(seconds=i), i.to_bytes(4, "big")) for i in range(int(count))]
    publisher = FramePublisher(
        url, gateway, "mbus", spool_path, frames_per_envelope=int(per_envelope), max_inflight=5
    )
    publisher.publish(frames)
    print("queued", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
