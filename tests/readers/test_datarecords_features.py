"""Exact byte-level tests of single data-record features (EN 13757-3)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from meterflow.errors import FrameError, UnsupportedError
from readers.datarecords import decode_records, encode_records
from readers.datatypes import METER_ZONE
from readers.model import Record


def one(hex_text: str) -> Record:
    """Return the single record decoded from ``hex_text``."""
    (record,) = decode_records(bytes.fromhex(hex_text))
    return record


def test_volume_vif_scale_applied_exactly() -> None:
    assert one("0413 39300000") == Record("volume", "m3", Decimal("12.345"))


def test_negative_bcd_has_f_in_top_nibble() -> None:
    assert one("0A5A 12F1").value == Decimal("-11.2")
    assert one("0C13 785634F2").value == Decimal("-2345.678")


def test_invalid_bcd_is_none_and_marked() -> None:
    record = one("0A5A DDBE")
    assert record.value is None and record.modifiers == ("invalid",)


def test_type_g_date() -> None:
    assert one("426C 5F1C").value == date(2010, 12, 31)


def test_type_f_datetime_is_meter_local_time() -> None:
    value = one("046D 1A2F6511").value
    assert value == datetime(2011, 1, 5, 15, 26, tzinfo=METER_ZONE)


def test_type_f_summer_time_bit_picks_the_first_of_two_autumn_hours() -> None:
    summer = one("046D 1E821B3A").value  # 2024-10-27 02:30, SU set
    winter = one("046D 1E021B3A").value  # same wall time, SU clear
    assert isinstance(summer, datetime) and isinstance(winter, datetime)
    assert summer.utcoffset() != winter.utcoffset()


def test_invalid_time_bit_gives_none() -> None:
    assert one("046D 9A2F6511").value is None


def test_plain_text_vif_unit_is_the_reversed_text() -> None:
    record = one("0B7C 03 6D3362 563412")
    assert (record.quantity, record.unit, record.value) == ("plain_text", "b3m", 123456)


def test_variable_length_ascii_string_is_reversed() -> None:
    assert one("0DFD0B 05 3132484657").value == "WFH21"


def test_manufacturer_specific_rest_is_one_record() -> None:
    assert decode_records(bytes.fromhex("0C1300000000 0F 0102FF")) == (
        Record("volume", "m3", Decimal("0.000")),
        Record("manufacturer_specific", "", b"\x01\x02\xff"),
    )


def test_dif_1f_announces_more_records() -> None:
    assert one("1F").modifiers == ("more_records_follow",)


def test_idle_filler_is_skipped() -> None:
    assert decode_records(bytes.fromhex("2F2F 0413 01000000 2F")) == (
        Record("volume", "m3", Decimal("0.001")),
    )


def test_multi_dife_storage_tariff_subunit() -> None:
    record = one("C4 81 41 13 01000000")
    assert (record.storage, record.tariff, record.subunit) == (1 + 2 + 32, 0, 2)
    record = one("84 A0 10 13 01000000")
    assert (record.storage, record.tariff, record.subunit) == (0, 2 + 4, 0)


def test_function_field() -> None:
    assert one("1413 01000000").function == "maximum"
    assert one("2413 01000000").function == "minimum"
    assert one("3413 01000000").function == "error"


def test_fd_extension_error_flags_and_fb_extension_energy() -> None:
    assert one("02FD17 0500") == Record("error_flags", "", 5)
    assert one("04FB00 08000000") == Record("energy", "Wh", Decimal("800000"))


def test_combinable_vifes_become_modifiers_and_scales() -> None:
    assert one("0493 3C 02000000").modifiers == ("backward",)
    assert one("0493 3B 02000000").modifiers == ("forward",)
    assert one("0496 7D 02000000").value == Decimal("2000")
    assert one("0496 72 02000000").value == Decimal("0.0002")


def test_real_value_is_exact_decimal() -> None:
    assert one("055B 0000C841").value == Decimal("25.0")


@pytest.mark.parametrize(
    ("hex_text", "error"),
    [
        ("0413 3930", FrameError),
        ("84", FrameError),
        ("3F", UnsupportedError),
        ("046F 00000000", UnsupportedError),
        ("0DFD0B 09 31", FrameError),
    ],
)
def test_broken_records_raise_decode_errors(hex_text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_records(bytes.fromhex(hex_text))


def test_encoder_writes_the_usual_water_meter_record() -> None:
    assert encode_records([Record("volume", "m3", Decimal("12.345"))]).hex() == "0213" + "3930"
    assert encode_records([Record("volume", "m3", Decimal("12.345"))], bcd=True).hex() == (
        "0b13" + "452301"
    )


def test_encoder_refuses_what_it_cannot_write_exactly() -> None:
    with pytest.raises(UnsupportedError):
        encode_records([Record("volume", "m3", Decimal("1E-13"))])
    with pytest.raises(UnsupportedError):
        encode_records([Record("nonsense", "m3", Decimal(1))])


def test_zero_digit_lvar_bcd_has_no_value() -> None:
    assert one("0D00 C0").value is None


def test_vifes_after_manufacturer_vif_are_manufacturer_specific() -> None:
    # EN 13757-3: after VIF 0xFF every VIFE is the manufacturer's, never a standard code
    # (0x20 would be "per second", 0x1B is reserved in the combinable table).
    assert one("02FF20 3412") == Record(
        "manufacturer_vif", "", 0x1234, modifiers=("manufacturer_vife_20",)
    )
    assert one("06FF1B 067000097000") == Record(
        "manufacturer_vif", "", 0x007009007006, modifiers=("manufacturer_vife_1b",)
    )
    assert one("04FF9B20 01000000").modifiers == ("manufacturer_vife_1b", "manufacturer_vife_20")


def test_vife_ff_makes_the_later_vifes_manufacturer_specific() -> None:
    record = one("0493FF20 01000000")
    assert (record.quantity, record.value) == ("volume", Decimal("0.001"))
    assert record.modifiers == ("manufacturer_vifes", "manufacturer_vife_20")


def test_compact_profile_data_is_returned_undecoded() -> None:
    record = one("8D04 9313 03 C00102")
    assert (record.quantity, record.storage) == ("volume", 8)
    assert record.modifiers == ("reverse_compact_profile",)
    assert record.value == bytes.fromhex("C00102")


def test_a_layout_seen_before_decodes_to_the_same_records() -> None:
    data = bytes.fromhex("0413 39300000 8410 13 01000000 02FD17 0500 426C 5F1C 0F 0102")
    first = decode_records(data)
    assert decode_records(data) == first
    assert decode_records(data[:-3]) == first[:-1]
    with pytest.raises(FrameError):
        decode_records(data[:3])


def test_records_decode_from_a_bytearray_too() -> None:
    data = bytes.fromhex("0413 39300000 02FD17 0500 0F 0102")
    assert decode_records(bytearray(data)) == decode_records(data)
