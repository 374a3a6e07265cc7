"""The ingest worker against a real broker and database: storage, dedup, dead letters."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from decimal import Decimal

import psycopg

from tests.factories import T0, envelope, frames_topic, meter_id, meter_key, wmbus_frame
from tests.ingest.harness import Publisher, ingest_settings, running_worker, scalar, wait_until
from tests.services import PrivateMosquitto


def _set_key(database_url: str, n: int, key: bytes) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO meters (meter_id, manufacturer, serial, aes_key, status)"
            " VALUES (%s, 'KAM', %s, %s, 'active')"
            " ON CONFLICT (meter_id) DO UPDATE SET aes_key = EXCLUDED.aes_key",
            (meter_id(n), f"{n:08d}", key),
        )


def _count(database_url: str, sql: str, *params: object) -> int:
    value = scalar(database_url, sql, params)
    assert isinstance(value, int)
    return value


def test_frames_become_readings_and_unknown_meters_are_registered(
    migrated_db: str, broker: PrivateMosquitto, publisher: Publisher
) -> None:
    meters = range(1001, 1041)
    for n in meters:
        _set_key(migrated_db, n, meter_key(n))
    frames = [wmbus_frame(n, Decimal(n) / 1000, at=T0) for n in meters]
    frames.append(wmbus_frame(1099, Decimal("5.5"), plain=True, at=T0))
    messages = [
        (frames_topic("gw-a"), envelope("gw-a", frames[i : i + 20])) for i in range(0, 41, 20)
    ]
    with running_worker(ingest_settings(migrated_db, broker.url)):
        publisher.publish(messages)
        wait_until(
            lambda: (
                _count(migrated_db, "SELECT count(*) FROM raw_frames WHERE gateway_id = 'gw-a'")
                == 41
            ),
            what="41 raw frames",
        )
    volume = scalar(
        migrated_db,
        "SELECT value FROM readings WHERE meter_id = %s AND quantity = 'volume' AND storage = 0",
        (meter_id(1005),),
    )
    assert volume == Decimal("1.005")
    read_at = scalar(
        migrated_db, "SELECT read_at FROM readings WHERE meter_id = %s LIMIT 1", (meter_id(1005),)
    )
    assert read_at == T0
    seen = scalar(
        migrated_db, "SELECT last_seen_at FROM meters WHERE meter_id = %s", (meter_id(1005),)
    )
    assert seen == T0 + timedelta(milliseconds=4)
    status = scalar(
        migrated_db,
        "SELECT status || ' ' || serial FROM meters WHERE meter_id = %s",
        (meter_id(1099),),
    )
    assert status == "unassigned 00001099"


def test_one_frame_heard_by_three_gateways_is_one_reading_and_three_receptions(
    migrated_db: str, broker: PrivateMosquitto, publisher: Publisher
) -> None:
    _set_key(migrated_db, 2001, meter_key(2001))
    with_clock = wmbus_frame(2001, Decimal("3.141"), at=T0, access_no=7)
    clockless = wmbus_frame(2002, Decimal("2.718"), plain=True, access_no=9)
    # Receive times differ by seconds; the latest reception is published first.
    messages = [
        (frames_topic(gw), envelope(gw, [with_clock, clockless], T0 + timedelta(seconds=s)))
        for gw, s in (("gw-c", 3), ("gw-a", 0), ("gw-b", 1))
    ]
    settings = ingest_settings(migrated_db, broker.url, ingest_batch_frames=2)
    with running_worker(settings):
        publisher.publish(messages)
        publisher.publish(messages[1:2])  # a redelivery of the same message
        wait_until(
            lambda: (
                _count(
                    migrated_db,
                    "SELECT count(*) FROM raw_frames WHERE meter_id IN (%s, %s)",
                    meter_id(2001),
                    meter_id(2002),
                )
                == 6
            ),
            what="six receptions",
        )
    for n in (2001, 2002):
        assert (
            _count(migrated_db, "SELECT count(*) FROM readings WHERE meter_id = %s", meter_id(n))
            == 1
        )
    assert scalar(
        migrated_db, "SELECT read_at FROM readings WHERE meter_id = %s", (meter_id(2002),)
    ) == T0 + timedelta(seconds=3, milliseconds=1)


def test_undecodable_input_becomes_dead_letters_and_good_frames_still_land(
    migrated_db: str, broker: PrivateMosquitto, publisher: Publisher
) -> None:
    for n in range(3001, 3006):
        _set_key(migrated_db, n, meter_key(n))
    good = wmbus_frame(3001, Decimal("1.000"), at=T0)
    wrong_key = wmbus_frame(3002, Decimal("1.000"), at=T0, key=bytes(16))
    truncated = wmbus_frame(3003, Decimal("1.000"), at=T0)[:-9]
    bad_crc = bytearray(wmbus_frame(3004, Decimal("1.000"), at=T0))
    bad_crc[12] ^= 0xFF
    unknown_ci = bytearray(wmbus_frame(3005, Decimal("1"), plain=True, with_crc=False, at=T0))
    unknown_ci[10] = 0x55  # the CI field of a frame without CRC blocks
    frames = [good, wrong_key, truncated, bytes(bad_crc), bytes(unknown_ci)]
    broken_json = b'{"v":1, "gateway": "gw-d"'
    wrong_version = json.dumps({"v": 2, "gateway": "gw-d", "kind": "wmbus", "frames": []})
    spoofed = envelope("gw-x", [good])
    settings = ingest_settings(migrated_db, broker.url)
    with running_worker(settings) as worker:
        publisher.publish(
            [
                (frames_topic("gw-d"), envelope("gw-d", frames)),
                (frames_topic("gw-d"), broken_json),
                (frames_topic("gw-d"), wrong_version.encode()),
                (frames_topic("gw-d"), spoofed),
            ]
        )
        wait_until(
            lambda: (
                _count(migrated_db, "SELECT count(*) FROM dead_letters WHERE gateway_id = 'gw-d'")
                == 7
            ),
            what="seven dead letters",
        )
        port = worker.metrics_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    with psycopg.connect(migrated_db) as conn:
        reasons = [
            r[0]
            for r in conn.execute(
                "SELECT split_part(reason, ':', 1) FROM dead_letters WHERE gateway_id = 'gw-d'"
                " ORDER BY id"
            )
        ]
    assert len(reasons) == 7
    assert reasons.count("EnvelopeError") == 3 and reasons.count("DecryptError") == 1
    assert "CrcError" in reasons and "UnsupportedError" in reasons
    assert set(reasons) <= {
        "EnvelopeError",
        "DecryptError",
        "FrameError",
        "CrcError",
        "UnsupportedError",
    }
    assert (
        _count(migrated_db, "SELECT count(*) FROM readings WHERE meter_id = %s", meter_id(3001))
        == 1
    )
    assert _count(migrated_db, "SELECT count(*) FROM raw_frames WHERE gateway_id = 'gw-d'") == 5
    assert 'meterflow_ingest_dead_letters_total{reason="DecryptError"} 1.0' in text
