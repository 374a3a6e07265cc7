"""The vendor's key file: delimiters, header rows, padding and every kind of bad row."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.meter_keys import BadRow, MeterKey, load_key_file, parse_key_file
from meterflow.errors import ConfigError

KEY_A = "000102030405060708090A0B0C0D0E0F"
KEY_B = "f0e1d2c3b4a5968778695a4b3c2d1e0f"


def test_semicolon_file_with_polish_header() -> None:
    text = f"Nr licznika;Producent;Klucz AES\n12345678;kam;{KEY_A}\n   42;DME;{KEY_B}\n"
    keys, bad = parse_key_file(text)
    assert bad == []
    assert [(k.meter_id, k.manufacturer, k.serial) for k in keys] == [
        ("KAM-12345678", "KAM", "12345678"),
        ("DME-00000042", "DME", "00000042"),
    ]
    assert keys[0].aes_key == bytes(range(16))
    assert keys[1].aes_key == bytes.fromhex(KEY_B)


def test_comma_file_without_header_and_blank_lines() -> None:
    keys, bad = parse_key_file(f"\n12345678,APA,{KEY_A}\n\n87654321,ZRI,{KEY_B},extra\n")
    assert bad == []
    assert [k.meter_id for k in keys] == ["APA-12345678", "ZRI-87654321"]


def test_header_columns_in_another_order() -> None:
    text = f"AES key,manufacturer,meter id\n{KEY_A},SEN,1\n"
    keys, bad = parse_key_file(text)
    assert bad == []
    assert keys == [MeterKey("SEN", "00000001", bytes(range(16)))]


def test_every_bad_row_is_reported_with_its_line_number() -> None:
    text = (
        "meter;manufacturer;key\n"
        f"12345678;KAM;{KEY_A}\n"
        f"12345679;KAM;{KEY_A[:-2]}\n"
        f"12345680;KAM;{KEY_A[:-1]}Z\n"
        f"12345681;K4M;{KEY_A}\n"
        f"12345678;KAM;{KEY_B}\n"
        f"123456789;KAM;{KEY_A}\n"
        "12345682;KAM\n"
    )
    keys, bad = parse_key_file(text)
    assert [k.meter_id for k in keys] == ["KAM-12345678"]
    assert bad == [
        BadRow(3, "AES key has 30 hex digits, want 32"),
        BadRow(4, "AES key is not hexadecimal"),
        BadRow(5, "manufacturer 'K4M' is not 3 letters"),
        BadRow(6, "meter KAM-12345678 duplicates line 2"),
        BadRow(7, "meter id '123456789' is not 1 to 8 digits"),
        BadRow(8, "2 column(s), want meter id, manufacturer and AES key"),
    ]


def test_a_key_in_the_wrong_column_is_not_quoted() -> None:
    keys, bad = parse_key_file(f"12345678;{KEY_A};KAM\n")
    assert keys == []
    assert len(bad) == 1
    assert KEY_A not in bad[0].reason
    assert "of 32 characters" in bad[0].reason


def test_load_refuses_the_whole_file_naming_each_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_text(f"1;KAM;{KEY_A}\n2;KAM;{KEY_B}00\n3;KAM;xyz\n")
    with pytest.raises(ConfigError) as raised:
        load_key_file(path)
    message = str(raised.value)
    assert "2 bad row(s), nothing imported" in message
    assert "line 2: AES key has 34 hex digits, want 32" in message
    assert "line 3: AES key is not hexadecimal" in message
    assert KEY_A not in message and KEY_B not in message


def test_load_reads_excel_bom_and_windows_1250(tmp_path: Path) -> None:
    utf8 = tmp_path / "utf8.csv"
    utf8.write_bytes(f"\ufeffNumer;Producent;Klucz\n7;APA;{KEY_A}\r\n".encode())
    cp1250 = tmp_path / "cp1250.csv"
    cp1250.write_bytes(
        f"Numer licznika;Producent;Klucz szyfrujący\n7;APA;{KEY_A}\n".encode("cp1250")
    )
    assert [k.meter_id for k in load_key_file(utf8)] == ["APA-00000007"]
    assert [k.meter_id for k in load_key_file(cp1250)] == ["APA-00000007"]


def test_load_refuses_an_empty_or_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    path.write_text("meter;manufacturer;key\n")
    with pytest.raises(ConfigError, match="no meters"):
        load_key_file(path)
    with pytest.raises(ConfigError, match="cannot read key file"):
        load_key_file(tmp_path / "missing.csv")


def test_repr_never_shows_the_key() -> None:
    key = MeterKey("KAM", "12345678", bytes.fromhex(KEY_A))
    assert KEY_A.lower() not in repr(key).lower()
    assert "\\x00\\x01" not in repr(key)
