"""The fleet: gateways allowed on the broker and meters with their AES keys.

Registering or revoking a gateway changes the database and the broker's password and ACL
files together: the database transaction commits only after both files are written.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from ingest import broker_auth
from ingest.meter_keys import MeterKey
from meterflow.errors import ConfigError, StoreError
from meterflow.settings import Settings

Connection = psycopg.Connection[tuple[Any, ...]]
METER_STATUSES = ("unassigned", "active", "retired")


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Where the broker's password file and ACL file live."""

    password_file: Path
    acl_file: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerFiles:
        """Return the configured paths, else ``<data_dir>/broker/passwd`` and ``acl``."""
        folder = settings.data_dir / "broker"
        return cls(
            password_file=settings.broker_password_file or folder / "passwd",
            acl_file=settings.broker_acl_file or folder / "acl",
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Gateway:
    """A gateway as the database knows it."""

    gateway_id: str
    description: str
    created_at: datetime
    revoked_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class MeterSummary:
    """What ``meters list`` shows of a meter; never the key itself."""

    meter_id: str
    manufacturer: str
    status: str
    has_key: bool
    last_seen_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class ImportCounts:
    """How many meters of a key file were new, changed or already as the file says."""

    new: int
    updated: int
    unchanged: int


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[Connection]:
    """Open the database of ``settings``; psycopg errors inside become StoreError.

    Raises ConfigError if no database URL is set, StoreError if the database fails.
    """
    if not settings.database_url:
        raise ConfigError("no database configured: set METERFLOW_DATABASE_URL")
    try:
        with psycopg.connect(settings.database_url) as conn:
            yield conn
    except psycopg.errors.UndefinedTable as exc:
        raise StoreError(f"{exc.diag.message_primary}: run `meterflow migrate` first") from exc
    except psycopg.Error as exc:
        raise StoreError(f"database error: {exc}") from exc


def _check_user_free(files: BrokerFiles, name: str, role: broker_auth.Role) -> None:
    if name in broker_auth.read_acl(files.acl_file) and (
        broker_auth.role_of(files.acl_file, name) != role
    ):
        raise ConfigError(
            f"{name!r} is already a broker user with other rights in {files.acl_file}"
        )


def grant_broker_user(files: BrokerFiles, name: str, role: broker_auth.Role) -> str:
    """Give broker user ``name`` a new password and the rules of ``role``; return the password.

    Raises ConfigError if the name is invalid or the user exists with another role.
    """
    broker_auth.check_username(name)
    _check_user_free(files, name, role)
    password = broker_auth.generate_password()
    broker_auth.set_acl_user(files.acl_file, name, role)
    broker_auth.set_password(files.password_file, name, password)
    return password


def remove_broker_user(files: BrokerFiles, name: str) -> bool:
    """Remove ``name`` from the password and ACL files; return whether it was in either."""
    in_passwords = broker_auth.remove_password(files.password_file, name)
    in_acl = broker_auth.remove_acl_user(files.acl_file, name)
    return in_passwords or in_acl


def add_gateway(
    conn: Connection,
    files: BrokerFiles,
    gateway_id: str,
    description: str | None = None,
    rotate: bool = False,
) -> str:
    """Register (or re-enable) a gateway and return its new broker password.

    Raises ConfigError if the id is invalid, or the gateway is active and ``rotate`` is off.
    """
    broker_auth.check_username(gateway_id)
    with conn.transaction():
        row = conn.execute(
            "SELECT revoked_at FROM gateways WHERE gateway_id = %s FOR UPDATE", [gateway_id]
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO gateways (gateway_id, description) VALUES (%s, %s)",
                [gateway_id, description or ""],
            )
        elif row[0] is None and not rotate:
            raise ConfigError(
                f"gateway {gateway_id} is already registered; use --rotate for a new password"
            )
        else:
            conn.execute(
                "UPDATE gateways SET revoked_at = NULL,"
                " description = coalesce(%s, description) WHERE gateway_id = %s",
                [description, gateway_id],
            )
        return grant_broker_user(files, gateway_id, "gateway")


def revoke_gateway(conn: Connection, files: BrokerFiles, gateway_id: str) -> Gateway:
    """Mark a gateway revoked and remove it from the broker's files; return it.

    Raises ConfigError if no such gateway is registered.
    """
    with conn.transaction():
        row = conn.execute(
            "UPDATE gateways SET revoked_at = coalesce(revoked_at, now())"
            " WHERE gateway_id = %s"
            " RETURNING gateway_id, description, created_at, revoked_at",
            [gateway_id],
        ).fetchone()
        if row is None:
            raise ConfigError(f"no gateway {gateway_id!r} is registered")
        remove_broker_user(files, gateway_id)
        return Gateway(*row)


def list_gateways(conn: Connection) -> list[Gateway]:
    """Return every gateway, revoked ones included, by id."""
    rows = conn.execute(
        "SELECT gateway_id, description, created_at, revoked_at FROM gateways ORDER BY 1"
    ).fetchall()
    return [Gateway(*row) for row in rows]


def import_meter_keys(conn: Connection, keys: Sequence[MeterKey]) -> ImportCounts:
    """Upsert meters with their keys in one transaction and count what changed.

    Imported meters become active, except retired ones, which stay retired.
    """
    with conn.transaction():
        rows = conn.execute(
            "SELECT meter_id, manufacturer, aes_key, status FROM meters"
            " WHERE meter_id = ANY(%s) FOR UPDATE",
            [[key.meter_id for key in keys]],
        ).fetchall()
        existing = {row[0]: (row[1], bytes(row[2] or b""), row[3]) for row in rows}
        changed = [key for key in keys if _differs(existing.get(key.meter_id), key)]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO meters (meter_id, manufacturer, serial, aes_key, status)"
                " VALUES (%s, %s, %s, %s, 'active')"
                " ON CONFLICT (meter_id) DO UPDATE SET manufacturer = excluded.manufacturer,"
                " serial = excluded.serial, aes_key = excluded.aes_key,"
                " status = CASE meters.status WHEN 'retired' THEN 'retired' ELSE 'active' END",
                [(k.meter_id, k.manufacturer, k.serial, k.aes_key) for k in changed],
            )
    new = sum(1 for key in changed if key.meter_id not in existing)
    return ImportCounts(new=new, updated=len(changed) - new, unchanged=len(keys) - len(changed))


def _differs(current: tuple[str, bytes, str] | None, key: MeterKey) -> bool:
    if current is None:
        return True
    manufacturer, aes_key, status = current
    return (manufacturer, aes_key) != (key.manufacturer, key.aes_key) or status == "unassigned"


def list_meters(conn: Connection, status: str | None = None) -> list[MeterSummary]:
    """Return meters by id, only those of ``status`` when given."""
    rows = conn.execute(
        "SELECT meter_id, manufacturer, status, aes_key IS NOT NULL, last_seen_at FROM meters"
        " WHERE %(status)s::text IS NULL OR status = %(status)s ORDER BY meter_id",
        {"status": status},
    ).fetchall()
    return [MeterSummary(*row) for row in rows]
