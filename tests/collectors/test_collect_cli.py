"""``meterflow collect mbus``: one polling round against the virtual bus, frames on the broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Tap

from meterflow.cli import main
from readers.mbus import decode_mbus
from schemas.envelope import topic
from simulators.mbus_bus import MbusBus, demo_slaves


@pytest.fixture
def bus() -> Iterator[MbusBus]:
    with MbusBus(demo_slaves(3, seed=7)) as bus:
        yield bus


@pytest.fixture
def env(mqtt_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERFLOW_MQTT_URL", mqtt_url)
    monkeypatch.setenv("METERFLOW_DATA_DIR", str(tmp_path))


@pytest.mark.parametrize("which", [["--address", "1,3"], ["--scan"]])
def test_collect_mbus_once_publishes_a_telegram_per_meter(
    bus: MbusBus,
    env: None,
    mqtt_url: str,
    gateway_id: str,
    tmp_path: Path,
    tap_factory: Callable[..., Tap],
    which: list[str],
) -> None:
    tap = tap_factory(mqtt_url, topic(gateway_id, "mbus"))
    argv = ["collect", "mbus", "--port", bus.url, "--gateway", gateway_id, "--once"]
    assert main([*argv, "--timeout", "0.25", *which]) == 0
    expected = 2 if which[0] == "--address" else 3
    assert tap.wait_for(lambda t: len(t.frames()) >= expected)
    ids = sorted(decode_mbus(raw).header.id for raw in tap.frames())
    wanted = [0, 2] if expected == 2 else [0, 1, 2]
    assert ids == sorted(bus.slaves[i].header.id for i in wanted)
    assert (tmp_path / f"spool-{gateway_id}-mbus.db").exists()


def test_collect_mbus_rejects_a_bad_address_list(
    bus: MbusBus, env: None, gateway_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["collect", "mbus", "--port", bus.url, "--gateway", gateway_id, "--once"]
    assert main([*argv, "--address", "1,APA-12345678"]) == 1
    assert "primary addresses" in capsys.readouterr().err
