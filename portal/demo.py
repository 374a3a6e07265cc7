"""Demo logins for ``meterflow up``: one staff administrator and one customer account.

The passwords are made once, kept in ``<data_dir>/demo/logins.json`` and printed at every
start, so a person trying the laptop demo can log in without a mail round trip.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from portal.auth import accounts
from portal.db import Conn
from portal.passwords import Hasher
from portal.staff import users

STAFF_EMAIL = "admin@mpwik.example"
CUSTOMER_EMAIL = "klient@mpwik.example"


@dataclasses.dataclass(frozen=True, slots=True)
class DemoLogin:
    """Who may log in to the demo portal, and how."""

    role: str
    email: str
    password: str


def seed_demo_logins(conninfo: str, data_dir: Path) -> list[DemoLogin]:
    """Create the demo logins that do not exist yet; return every demo login.

    The customer login is made only once a demo customer with a contract exists.
    """
    store = data_dir / "demo" / "logins.json"
    passwords: dict[str, str] = json.loads(store.read_text()) if store.exists() else {}
    hasher = Hasher()
    made: list[DemoLogin] = []
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        staff = users.by_email(conn, STAFF_EMAIL)
        if staff is None or STAFF_EMAIL not in passwords:
            passwords[STAFF_EMAIL] = users.random_password()
            password_hash = hasher.hash(passwords[STAFF_EMAIL])
            staff_id = int(staff["staff_id"]) if staff else None
            if staff_id is None:
                staff_id = users.create(conn, STAFF_EMAIL, ["admin"], password_hash, "Demo")
            users.set_password(conn, staff_id, password_hash)
        made.append(DemoLogin("staff (admin)", STAFF_EMAIL, passwords[STAFF_EMAIL]))
        customer_id = _first_customer_with_contract(conn)
        if customer_id is not None:
            account = accounts.by_email(conn, CUSTOMER_EMAIL)
            if account is None or CUSTOMER_EMAIL not in passwords:
                passwords[CUSTOMER_EMAIL] = users.random_password()
                password_hash = hasher.hash(passwords[CUSTOMER_EMAIL])
                account_id = int(account["account_id"]) if account else None
                if account_id is None:
                    account_id = accounts.create_by_staff(
                        conn, customer_id, CUSTOMER_EMAIL, password_hash
                    )
                accounts.set_password(conn, account_id, password_hash)
            made.append(DemoLogin("customer", CUSTOMER_EMAIL, passwords[CUSTOMER_EMAIL]))
        conn.commit()
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(passwords))
    store.chmod(0o600)
    return made


def _first_customer_with_contract(conn: Conn) -> int | None:
    row = conn.execute("SELECT customer_id FROM contracts ORDER BY customer_id LIMIT 1").fetchone()
    return None if row is None else int(row["customer_id"])
