"""The on-disk spool: order, removal, durability across reopen, the size bound."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from meterflow.errors import StoreError
from readers.collectors.spool import Spool
from schemas.envelope import RawFrame

T0 = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)


def frames(start: int, count: int) -> list[RawFrame]:
    return [
        RawFrame(T0 + timedelta(seconds=i), i.to_bytes(4, "big"), -70 if i % 2 else None)
        for i in range(start, start + count)
    ]


def test_frames_come_out_in_the_order_they_were_put(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        spool.put(frames(0, 5))
        spool.put(frames(5, 5))
        assert [item.frame for item in spool.peek(100)] == frames(0, 10)
        assert len(spool) == 10


def test_peek_after_an_id_skips_frames_already_taken(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        spool.put(frames(0, 10))
        first = spool.peek(4)
        rest = spool.peek(100, after=first[-1].id)
        assert [item.frame for item in rest] == frames(4, 6)


def test_remove_deletes_every_frame_up_to_an_id(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        spool.put(frames(0, 10))
        spool.remove(spool.peek(3)[-1].id)
        assert [item.frame for item in spool.peek(100)] == frames(3, 7)
        assert len(spool) == 7


def test_frames_survive_closing_and_reopening(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        spool.put(frames(0, 10))
        spool.remove(spool.peek(2)[-1].id)
    with Spool(tmp_path / "s.db") as spool:
        assert len(spool) == 8
        assert [item.frame for item in spool.peek(100)] == frames(2, 8)


def test_ids_keep_growing_after_the_spool_was_emptied(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        spool.put(frames(0, 3))
        last = spool.peek(3)[-1].id
        spool.remove(last)
        spool.put(frames(3, 1))
        assert spool.peek(1)[0].id > last


def test_full_spool_drops_the_oldest_loudly_and_counts_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path / "s.db", max_frames=10) as spool:
        spool.put(frames(0, 8))
        with caplog.at_level(logging.ERROR):
            spool.put(frames(8, 5))
        assert [item.frame for item in spool.peek(100)] == frames(3, 10)
        assert spool.dropped == 3
        assert "dropped the 3 oldest" in caplog.text
    with Spool(tmp_path / "s.db", max_frames=10) as spool:
        assert spool.dropped == 3


def test_a_spool_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open spool"):
        Spool(blocker / "s.db")


def test_a_file_that_is_not_a_spool_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Spool(path)
