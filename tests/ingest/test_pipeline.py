"""Batches are decoded while earlier ones are still being written: dedup must not depend on it."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

from ingest.mqtt import Message
from ingest.worker import Worker, open_message
from tests.factories import T0, envelope, frames_topic, meter_id, wmbus_frame
from tests.ingest.harness import ingest_settings, scalar


def _message(gateway: str, frame: bytes, seconds: int) -> Message:
    payload = envelope(gateway, [frame], T0 + timedelta(seconds=seconds))
    return Message(frames_topic(gateway), payload, 1, 1, 1)


def test_copies_of_a_clockless_frame_in_unwritten_batches_are_one_reading(
    migrated_db: str,
) -> None:
    worker = Worker(ingest_settings(migrated_db, "mqtt://127.0.0.1:1"), threading.Event())
    frame = wmbus_frame(6001, Decimal("1.5"), plain=True, access_no=3)
    try:
        first = worker._prepare([open_message(_message("gw-p1", frame, 0))])
        # The first batch is not written yet when the second copy is decoded.
        second = worker._prepare([open_message(_message("gw-p2", frame, 2))])
        assert first is not None and second is not None
        assert first.rows.frames[0][7] == second.rows.frames[0][7] == T0
        worker.store.write(second.rows)
        worker.store.write(first.rows)
    finally:
        worker.lookups.close()
        worker.store.close()
    sql = "SELECT count(*) FROM readings WHERE meter_id = %s"
    assert scalar(migrated_db, sql, (meter_id(6001),)) == 1
    sql = "SELECT count(*) FROM raw_frames WHERE meter_id = %s"
    assert scalar(migrated_db, sql, (meter_id(6001),)) == 2


def test_copies_of_a_frame_in_one_batch_keep_their_own_gateway_and_time(
    migrated_db: str,
) -> None:
    worker = Worker(ingest_settings(migrated_db, "mqtt://127.0.0.1:1"), threading.Event())
    frame = wmbus_frame(6002, Decimal("2.5"), plain=True, at=T0)
    batch = [open_message(_message(f"gw-q{k}", frame, k)) for k in range(3)]
    try:
        prepared = worker._prepare(batch)
    finally:
        worker.lookups.close()
    assert prepared is not None
    receptions = [(row[1], row[0]) for row in prepared.rows.frames]
    assert receptions == [(f"gw-q{k}", T0 + timedelta(seconds=k)) for k in range(3)]
    assert len(prepared.rows.readings) == 1
