"""The broker's password file and ACL as meterflow writes them."""

from __future__ import annotations

import base64
import hashlib
import stat
import subprocess
from pathlib import Path

import pytest

from ingest import broker_auth
from ingest.fleet import BrokerFiles, grant_broker_user, remove_broker_user
from meterflow.errors import ConfigError


def test_hash_has_mosquitto_2_format() -> None:
    salt = bytes(range(12))
    encoded = broker_auth.hash_password("secret", salt)
    _, kind, iterations, salt_b64, digest_b64 = encoded.split("$")
    assert (kind, iterations, salt_b64) == ("7", "101", base64.b64encode(salt).decode())
    expected = hashlib.pbkdf2_hmac("sha512", b"secret", salt, 101)
    assert base64.b64decode(digest_b64) == expected
    assert len(expected) == 64


def test_hash_written_by_mosquitto_passwd_verifies(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "gw-1", "s3cret"], check=True)
    hashed = broker_auth.read_passwords(path)["gw-1"]
    assert broker_auth.verify_password("s3cret", hashed)
    assert not broker_auth.verify_password("s3cret!", hashed)


def test_generated_passwords_are_long_and_different() -> None:
    first, second = broker_auth.generate_password(), broker_auth.generate_password()
    assert first != second
    assert len(first) >= 32


def test_password_file_keeps_other_users(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("operator:$7$101$c2FsdA==$aGFzaA==\n")
    broker_auth.set_password(path, "gw-1", "one")
    broker_auth.set_password(path, "gw-1", "two")
    entries = broker_auth.read_passwords(path)
    assert list(entries) == ["operator", "gw-1"]
    assert entries["operator"] == "$7$101$c2FsdA==$aGFzaA=="
    assert broker_auth.verify_password("two", entries["gw-1"])
    assert broker_auth.remove_password(path, "gw-1")
    assert not broker_auth.remove_password(path, "gw-1")
    assert path.read_text() == "operator:$7$101$c2FsdA==$aGFzaA==\n"


def test_rewrite_keeps_file_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("")
    path.chmod(0o600)
    broker_auth.set_password(path, "gw-1", "pw")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd", "passwd.lock"]


def test_new_file_is_readable_by_the_folders_group(tmp_path: Path) -> None:
    path = tmp_path / "broker" / "acl"
    broker_auth.set_acl_user(path, "gw-1", "gateway")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_gid == path.parent.stat().st_gid


def test_gateway_rules_confine_it_to_its_own_topics(tmp_path: Path) -> None:
    path = tmp_path / "acl"
    broker_auth.set_acl_user(path, "gw-7", "gateway")
    assert broker_auth.read_acl(path) == {
        "gw-7": [
            "topic write mf/v1/gw-7/mbus",
            "topic write mf/v1/gw-7/wmbus",
            "topic write mf/v1/gw-7/cmd/ack",
            "topic read mf/v1/gw-7/cmd",
        ]
    }
    assert broker_auth.role_of(path, "gw-7") == "gateway"


def test_acl_keeps_other_users_and_anonymous_rules(tmp_path: Path) -> None:
    path = tmp_path / "acl"
    path.write_text(
        "# site rules\ntopic read $SYS/#\n\nuser monitor\ntopic read mf/v1/#\n"
        "pattern write $SYS/broker/connection/%c/state\n"
    )
    broker_auth.set_acl_user(path, "ingest", "ingest")
    broker_auth.set_acl_user(path, "gw-1", "gateway")
    assert broker_auth.remove_acl_user(path, "gw-1")
    users = broker_auth.read_acl(path)
    assert users[""] == ["topic read $SYS/#"]
    assert users["monitor"] == [
        "topic read mf/v1/#",
        "pattern write $SYS/broker/connection/%c/state",
    ]
    assert users["ingest"] == ["topic read mf/v1/+/+", "topic read $share/+/mf/v1/+/+"]
    assert path.read_text().index("topic read $SYS/#") < path.read_text().index("user ")


@pytest.mark.parametrize("name", ["", "gw/1", "gw+", "#", "gw 1", "-gw", "x" * 65, "gw:1"])
def test_names_that_would_widen_the_acl_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="not a valid name"):
        broker_auth.set_acl_user(tmp_path / "acl", name, "gateway")


def test_unreadable_acl_line_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "acl"
    path.write_text("user a\ntopic read x\nallow everything\n")
    with pytest.raises(ConfigError, match=r"acl:3: cannot read ACL line"):
        broker_auth.read_acl(path)


def test_service_user_cannot_take_a_gateways_name(tmp_path: Path) -> None:
    files = BrokerFiles(tmp_path / "passwd", tmp_path / "acl")
    grant_broker_user(files, "gw-1", "gateway")
    with pytest.raises(ConfigError, match="already a broker user with other rights"):
        grant_broker_user(files, "gw-1", "ingest")
    password = grant_broker_user(files, "portal", "commands")
    assert broker_auth.verify_password(
        password, broker_auth.read_passwords(files.password_file)["portal"]
    )
    assert remove_broker_user(files, "portal")
    assert not remove_broker_user(files, "portal")
    assert list(broker_auth.read_acl(files.acl_file)) == ["gw-1"]


def test_reload_with_a_stale_pid_file_is_a_config_error(tmp_path: Path) -> None:
    pid_file = tmp_path / "mosquitto.pid"
    with pytest.raises(ConfigError, match="does not exist"):
        broker_auth.reload_broker(pid_file)
    pid_file.write_text("not a pid\n")
    with pytest.raises(ConfigError, match="does not hold a process id"):
        broker_auth.reload_broker(pid_file)
