"""The codec's caches stay bounded and correct when a city's meters outnumber them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from meterflow.errors import ConfigError, DecryptError
from readers import datarecords, oms_crypto
from readers.codec import decode_frame
from readers.drivers.engine import find_driver
from readers.model import Header, Record
from readers.wmbus_encode import encode_wmbus


@pytest.fixture
def small_cache() -> Iterator[int]:
    """Limit the decryption cache to 4 keys for one test."""
    before = oms_crypto.decryption_cache_keys()
    oms_crypto.set_decryption_cache_keys(4)
    yield 4
    oms_crypto.set_decryption_cache_keys(before)


def _reference(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def test_more_keys_than_the_cache_holds_still_decrypt_right(small_cache: int) -> None:
    keys = [os.urandom(16) for _ in range(3 * small_cache)]
    for round_ in range(3):
        for key in keys:
            iv, data = os.urandom(16), os.urandom(48)
            assert oms_crypto.cbc_decrypt(key, iv, data) == _reference(key, iv, data), round_
    assert len(oms_crypto._DECRYPTORS.by_key) == small_cache


def test_decryption_cache_evicts_the_least_recently_used_key(small_cache: int) -> None:
    keys = [bytes([n]) * 16 for n in range(small_cache + 1)]
    iv, data = bytes(16), bytes(32)
    for key in keys[:small_cache]:
        oms_crypto.cbc_decrypt(key, iv, data)
    oms_crypto.cbc_decrypt(keys[0], iv, data)  # the first key is now the most recent
    oms_crypto.cbc_decrypt(keys[-1], iv, data)
    cached = set(oms_crypto._DECRYPTORS.by_key)
    assert keys[0] in cached
    assert keys[1] not in cached


def test_shrinking_the_decryption_cache_drops_the_oldest_keys(small_cache: int) -> None:
    for n in range(small_cache):
        oms_crypto.cbc_decrypt(bytes([n]) * 16, bytes(16), bytes(16))
    oms_crypto.set_decryption_cache_keys(1)
    assert list(oms_crypto._DECRYPTORS.by_key) == [bytes([small_cache - 1]) * 16]


def test_an_empty_decryption_cache_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one key"):
        oms_crypto.set_decryption_cache_keys(0)


def test_a_wrong_length_key_is_a_decrypt_error_not_a_cached_context() -> None:
    with pytest.raises(DecryptError, match="16 bytes"):
        oms_crypto.cbc_decrypt(b"short", bytes(16), bytes(16))
    assert b"short" not in oms_crypto._DECRYPTORS.by_key


def _meter_frame(n: int, key: bytes) -> bytes:
    header = Header("KAM", f"{n:08d}", 0x1B, 0x07, access_no=n % 256, status=0)
    records = [Record("volume", "m3", Decimal(n) / 1000)]
    return encode_wmbus(header, records, key=key, mode=5, access_no=n % 256)


def test_many_meters_with_their_own_keys_decode_past_every_cache_bound(small_cache: int) -> None:
    keys = {n: n.to_bytes(4, "big") * 4 for n in range(10 * small_cache)}
    frames = {n: _meter_frame(n, key) for n, key in keys.items()}
    for _ in range(2):
        for n, frame in frames.items():
            telegram = decode_frame("wmbus", frame, lambda header: keys[int(header.id)])
            assert telegram.header.id == f"{n:08d}"
            assert telegram.header.manufacturer == "KAM"
            assert telegram.records[0].value == Decimal(n) / 1000


def test_record_shapes_past_the_cache_bound_evict_the_oldest_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(datarecords, "_SHAPES", type(datarecords._SHAPES)())
    monkeypatch.setattr(datarecords, "_CACHE_LIMIT", 2)
    volume, energy, power = bytes([0x04, 0x13]), bytes([0x04, 0x06]), bytes([0x04, 0x2B])
    value = (1234).to_bytes(4, "little")
    for header in (volume, energy, power):
        (record,) = datarecords.decode_records(header + value)
        assert record.value is not None
    assert list(datarecords._SHAPES) == [energy, power]
    assert datarecords.decode_records(volume + value)[0].value == Decimal("1.234")


def test_driver_field_plans_are_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = find_driver(Header("KAM", "00000001", 0x1B, 0x07))
    assert driver is not None
    monkeypatch.setattr("readers.drivers.engine._PLAN_LIMIT", 2)
    saved = dict(driver.plans)
    driver.plans.clear()
    try:
        records, layouts = (Record("volume", "m3", Decimal(1)),), [(9001,), (9002,), (9003,)]
        driver.record_fields(records, layouts[0])
        driver.record_fields(records, layouts[1])
        driver.record_fields(records, layouts[0])
        driver.record_fields(records, layouts[2])
        assert list(driver.plans) == [layouts[0], layouts[2]]
    finally:
        driver.plans.clear()
        driver.plans.update(saved)
