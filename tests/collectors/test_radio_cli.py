"""`meterflow collect radio`: lines from a file reach the broker; bad lines are skipped."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Tap

from meterflow.errors import ConfigError
from meterflow.settings import Settings
from readers.collectors import radio_cli
from schemas.envelope import topic

QDS_HEX = (
    "49449344590474943508780dff5f3500827f0000f10007b06effff530100005f2c620100007f21180100"
    "00008000800080008000000000000000000e003f005500d4ff2f046d10086922"
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    radio_cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_rtlwmbus_file_is_published_and_bad_lines_counted(
    mqtt_url: str,
    gateway_id: str,
    tmp_path: Path,
    tap_factory: Callable[..., Tap],
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "rtl.txt"
    source.write_text(
        f"T1;1;1;2026-11-21 10:00:01.000;117;102;94740459;0x{QDS_HEX}\n"
        f"T1;0;1;2026-11-21 10:00:02.000;117;102;94740459;0x{QDS_HEX}\n"
        "rtl_wmbus 0.9 starting\n"
        f"C1;1;1;2026-11-21 10:00:03.000;90;80;94740459;0x{QDS_HEX}\n"
    )
    tap = tap_factory(mqtt_url, topic(gateway_id, "wmbus"))
    args = parse(
        ["collect", "radio", "--input", str(source), "--format", "rtlwmbus"]
        + ["--gateway", gateway_id]
    )
    assert args.handler(args, Settings(mqtt_url=mqtt_url, data_dir=tmp_path)) == 0
    assert "2 telegrams queued, 2 skipped" in capsys.readouterr().err
    assert tap.wait_for(lambda t: len(t.frames()) >= 2)
    frames = [frame for env in tap.envelopes() for frame in env.frames]
    assert [f.data.hex() for f in frames] == [QDS_HEX, QDS_HEX]
    assert [f.received_at.second for f in frames] == [1, 3]


def parse_with_gateway(argv: list[str]) -> argparse.Namespace:
    return parse([*argv, "--gateway", "gw-x"])


def test_missing_input_file_is_a_config_error(mqtt_url: str, tmp_path: Path) -> None:
    args = parse_with_gateway(["collect", "radio", "--input", "/nope.txt", "--format", "hex"])
    with pytest.raises(ConfigError, match="cannot read"):
        args.handler(args, Settings(mqtt_url=mqtt_url, data_dir=tmp_path))


def test_collect_radio_needs_a_broker(tmp_path: Path) -> None:
    args = parse_with_gateway(["collect", "radio", "--input", "-", "--format", "hex"])
    with pytest.raises(ConfigError, match="METERFLOW_MQTT_URL"):
        args.handler(args, Settings(data_dir=tmp_path))
