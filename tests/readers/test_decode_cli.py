"""``meterflow decode`` prints frames as JSON and rejects bad input with one line."""

from __future__ import annotations

import json

import pytest

from meterflow import cli

PROFILE_A = (
    "2E44931578563412330333637A2A0020255923C95AAA26D1B2E7493BC2AD013EC4A6F6D3529B52"
    "0EDFF0EA6DEFC955B29D6D69EBF3EC8A"
)
KEY_A = "0102030405060708090A0B0C0D0E0F11"
IPERL = "1844AE4C4455223368077A55000000041389E20100023B0000"


@pytest.fixture(autouse=True)
def only_decode_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register just this command, so the test does not depend on other parts' modules."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("readers.cli",))


def test_decode_prints_header_records_and_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", IPERL]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["header"] == {
        "manufacturer": "SEN",
        "id": "33225544",
        "version": 0x68,
        "device_type": 7,
        "access_no": 0x55,
        "status": 0,
    }
    assert data["records"][0]["quantity"] == "volume"
    assert data["records"][0]["value"] == "123.529"
    assert data["driver"] == "iperl"
    assert data["fields"]["total_m3"] == "123.529"


def test_decode_with_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", "--key", KEY_A, "--kind", "wmbus", PROFILE_A]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["records"][0]["value"] == "28504.27"
    assert "driver" not in data


def test_missing_key_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", PROFILE_A]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no key for meter ELS-12345678" in err


def test_wrong_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", "--key", "00" * 16, PROFILE_A]) == 1
    assert "wrong key" in capsys.readouterr().err


def test_not_hex(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", "zz12"]) == 1
    assert "not hex" in capsys.readouterr().err


def test_malformed_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", "--key", "abc", IPERL]) == 1
    assert "32 hex digits" in capsys.readouterr().err
