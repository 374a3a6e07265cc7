"""`meterflow gateways`, `broker` and `meters` against the real database."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from ingest import broker_auth
from meterflow import cli

Run = Callable[..., tuple[int, str, str]]
KEYS = [random.Random(n).randbytes(16) for n in range(4)]


@pytest.fixture
def run(
    migrated_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """Run ``meterflow`` with the test database and data folder; return (code, out, err)."""
    monkeypatch.setenv("METERFLOW_DATABASE_URL", migrated_db)
    monkeypatch.setenv("METERFLOW_DATA_DIR", str(tmp_path))
    # Only this part's sub-commands: the test does not depend on other parts' modules.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("ingest.fleet_cli",))

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def _serials(count: int) -> list[str]:
    start = random.randrange(10_000_000, 99_000_000)
    return [str(start + n) for n in range(count)]


def test_gateway_add_prints_only_the_password_and_writes_both_files(
    run: Run, tmp_path: Path, migrated_db: str
) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    code, out, err = run("gateways", "add", gateway, "--description", "Pump station 3")
    assert code == 0
    password = out.strip()
    assert len(password) >= 32 and "\n" not in password
    assert "reload the broker" in err
    hashed = broker_auth.read_passwords(tmp_path / "broker" / "passwd")[gateway]
    assert broker_auth.verify_password(password, hashed)
    assert broker_auth.role_of(tmp_path / "broker" / "acl", gateway) == "gateway"
    with psycopg.connect(migrated_db) as conn:
        row = conn.execute(
            "SELECT description, revoked_at FROM gateways WHERE gateway_id = %s", [gateway]
        ).fetchone()
    assert row == ("Pump station 3", None)


def test_adding_an_active_gateway_twice_needs_rotate(run: Run, tmp_path: Path) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    _, first, _ = run("gateways", "add", gateway)
    code, _, err = run("gateways", "add", gateway)
    assert code == 1
    assert "already registered; use --rotate" in err
    code, second, _ = run("gateways", "add", gateway, "--rotate")
    assert code == 0 and second != first
    hashed = broker_auth.read_passwords(tmp_path / "broker" / "passwd")[gateway]
    assert broker_auth.verify_password(second.strip(), hashed)


def test_revoke_removes_the_gateway_from_both_files_and_list_shows_it(
    run: Run, tmp_path: Path
) -> None:
    gateway, kept = f"gw-{uuid.uuid4().hex[:8]}", f"gw-{uuid.uuid4().hex[:8]}"
    run("gateways", "add", gateway, "--description", "roof")
    run("gateways", "add", kept)
    code, _, err = run("gateways", "revoke", gateway)
    assert code == 0 and f"gateway {gateway} revoked at" in err
    assert list(broker_auth.read_passwords(tmp_path / "broker" / "passwd")) == [kept]
    assert list(broker_auth.read_acl(tmp_path / "broker" / "acl")) == [kept]
    code, out, _ = run("gateways", "list")
    lines = {line.split()[0]: line.split() for line in out.splitlines()}
    assert lines["id"] == ["id", "description", "created", "revoked"]
    assert lines[gateway][1] == "roof" and lines[gateway][-1].endswith("Z")
    assert lines[kept][-1] == "-"
    code, _, err = run("gateways", "revoke", "gw-never-added")
    assert code == 1 and "no gateway 'gw-never-added'" in err


def test_revoked_gateway_can_be_added_again(run: Run, tmp_path: Path) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    run("gateways", "add", gateway)
    run("gateways", "revoke", gateway)
    code, out, _ = run("gateways", "add", gateway)
    assert code == 0
    assert broker_auth.verify_password(
        out.strip(), broker_auth.read_passwords(tmp_path / "broker" / "passwd")[gateway]
    )


def test_explicit_file_options_win_over_settings(run: Run, tmp_path: Path) -> None:
    passwd, acl = tmp_path / "etc" / "pw", tmp_path / "etc" / "acl"
    code, out, _ = run(
        "broker", "add-user", "ingest", "--role", "ingest",
        "--password-file", str(passwd), "--acl-file", str(acl),
    )  # fmt: skip
    assert code == 0
    assert broker_auth.verify_password(out.strip(), broker_auth.read_passwords(passwd)["ingest"])
    assert broker_auth.role_of(acl, "ingest") == "ingest"
    assert not (tmp_path / "broker").exists()


def test_commands_need_a_database_url(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METERFLOW_DATABASE_URL")
    code, _, err = run("gateways", "list")
    assert code == 1 and "set METERFLOW_DATABASE_URL" in err


def test_meters_import_counts_new_updated_unchanged(run: Run, tmp_path: Path) -> None:
    serials = _serials(3)
    path = tmp_path / "keys.csv"
    path.write_text(
        "Nr licznika;Producent;Klucz AES\n"
        + "".join(f"{s};KAM;{k.hex()}\n" for s, k in zip(serials, KEYS, strict=False))
    )
    code, out, err = run("meters", "import", str(path))
    assert (code, out.strip()) == (0, "3 new, 0 updated, 0 unchanged")
    code, out, _ = run("meters", "import", str(path))
    assert (code, out.strip()) == (0, "0 new, 0 updated, 3 unchanged")
    path.write_text(f"{serials[0]};KAM;{KEYS[3].hex()}\n{serials[1]};KAM;{KEYS[1].hex()}\n")
    code, out, _ = run("meters", "import", str(path))
    assert (code, out.strip()) == (0, "0 new, 1 updated, 1 unchanged")
    assert all(key.hex() not in out + err for key in KEYS)


def test_bad_rows_import_nothing(run: Run, tmp_path: Path, migrated_db: str) -> None:
    serials = _serials(5)
    path = tmp_path / "keys.csv"
    path.write_text(
        f"{serials[0]},KAM,{KEYS[0].hex()}\n"
        f"{serials[1]},KAM,{KEYS[1].hex()[:30]}\n"
        f"{serials[2]},KAM,{KEYS[2].hex()[:31]}g\n"
        f"{serials[3]},K1M,{KEYS[3].hex()}\n"
        f"{serials[0]},KAM,{KEYS[1].hex()}\n"
    )
    code, out, err = run("meters", "import", str(path))
    assert code == 1 and out == ""
    assert "line 2: AES key has 30 hex digits" in err
    assert "line 3: AES key is not hexadecimal" in err
    assert "line 4: manufacturer 'K1M' is not 3 letters" in err
    assert f"line 5: meter KAM-{serials[0]} duplicates line 1" in err
    assert all(key.hex() not in err for key in KEYS)
    with psycopg.connect(migrated_db) as conn:
        found = conn.execute(
            "SELECT count(*) FROM meters WHERE serial = ANY(%s)", [serials]
        ).fetchone()
    assert found == (0,)


def test_meters_list_shows_key_presence_never_the_key(
    run: Run, tmp_path: Path, migrated_db: str
) -> None:
    serial, unknown = _serials(2)
    path = tmp_path / "keys.csv"
    path.write_text(f"{serial},DME,{KEYS[0].hex()}\n")
    run("meters", "import", str(path))
    with psycopg.connect(migrated_db) as conn:
        conn.execute(
            "INSERT INTO meters (meter_id, manufacturer, serial, last_seen_at)"
            " VALUES (%s, 'DME', %s, '2026-11-21T10:00:00Z')",
            [f"DME-{unknown}", unknown],
        )
    code, out, _ = run("meters", "list")
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert rows["id"] == ["id", "manufacturer", "status", "key", "last", "seen"]
    assert rows[f"DME-{serial}"] == [f"DME-{serial}", "DME", "active", "yes", "-"]
    assert rows[f"DME-{unknown}"][2:] == ["unassigned", "no", "2026-11-21", "10:00:00Z"]
    assert KEYS[0].hex() not in out
    code, out, _ = run("meters", "list", "--status", "unassigned")
    assert f"DME-{unknown}" in out and f"DME-{serial}" not in out


def test_import_activates_an_unassigned_meter_and_keeps_a_retired_one(
    run: Run, tmp_path: Path, migrated_db: str
) -> None:
    unassigned, retired = _serials(2)
    with psycopg.connect(migrated_db) as conn:
        conn.execute(
            "INSERT INTO meters (meter_id, manufacturer, serial, status) VALUES"
            " (%s, 'APA', %s, 'unassigned'), (%s, 'APA', %s, 'retired')",
            [f"APA-{unassigned}", unassigned, f"APA-{retired}", retired],
        )
    path = tmp_path / "keys.csv"
    path.write_text(f"{unassigned};APA;{KEYS[0].hex()}\n{retired};APA;{KEYS[1].hex()}\n")
    code, out, _ = run("meters", "import", str(path))
    assert (code, out.strip()) == (0, "0 new, 2 updated, 0 unchanged")
    with psycopg.connect(migrated_db) as conn:
        rows = conn.execute(
            "SELECT serial, status, aes_key FROM meters WHERE serial = ANY(%s) ORDER BY serial",
            [[unassigned, retired]],
        ).fetchall()
    assert {r[0]: (r[1], bytes(r[2])) for r in rows} == {
        unassigned: ("active", KEYS[0]),
        retired: ("retired", KEYS[1]),
    }
