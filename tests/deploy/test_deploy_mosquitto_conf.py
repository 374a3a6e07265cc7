"""deploy/mosquitto.conf is accepted by the real mosquitto binary and sets what it claims."""

from __future__ import annotations

from collections.abc import Callable

from secured_broker import DEPLOY_CONF, SecuredBroker

from ingest import broker_auth


def _options() -> dict[str, str]:
    options = {}
    for line in DEPLOY_CONF.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            options[name] = value
    return options


def test_production_conf_starts_a_broker_that_serves_a_user(
    secured_broker: Callable[[], SecuredBroker],
) -> None:
    broker = secured_broker()
    password = broker_auth.generate_password()
    broker_auth.set_password(broker.files.password_file, "ingest-a", password)
    broker_auth.set_acl_user(broker.files.acl_file, "ingest-a", "ingest")
    broker.start()
    client = broker.client("ingest-a", password)
    client.disconnect()
    client.loop_stop()
    log = broker.log()
    assert "Error" not in log
    assert "Opening ipv4 listen socket on port" in log
    assert broker.server.process is not None
    assert broker.pid_file.read_text().strip() == str(broker.server.process.pid)


def test_production_conf_keeps_slow_consumers_messages() -> None:
    options = _options()
    assert options["per_listener_settings"] == "false"
    assert options["allow_anonymous"] == "false"
    assert options["persistence"] == "true"
    assert int(options["max_inflight_messages"]) >= 1000
    assert int(options["max_queued_messages"]) >= 1_000_000
    assert int(options["max_queued_bytes"]) >= 1 << 30
    assert list(options)[0] == "per_listener_settings"


def test_production_conf_has_no_commented_out_options() -> None:
    names = set(_options())
    for line in DEPLOY_CONF.read_text().splitlines():
        if line.startswith("#"):
            words = line.lstrip("# ").split(" ")
            assert not (len(words) == 2 and words[0] in names), line
            assert not line.startswith("#listener"), line
