"""e-komunikat fan-out: customers of the announcement's streets (or all, or one billing
group), with a contract in force during it; once per customer however often it runs."""

from __future__ import annotations

from datetime import date

import psycopg

from billing_engine.notify.announce import fan_out_announcement
from tests.notify.conftest import add_customer


def _contract(
    conn: psycopg.Connection[object], address: str, city: str, group: str, valid_to: date | None
) -> int:
    customer = add_customer(conn)
    point = conn.execute(
        "INSERT INTO service_points (address, city) VALUES (%s, %s) RETURNING service_point_id",
        (address, city),
    ).fetchone()
    assert point is not None
    conn.execute(
        "INSERT INTO contracts (contract_no, customer_id, service_point_id, valid_from, valid_to,"
        " group_code, tariff_id) VALUES (%s, %s, %s, '2020-01-01', %s, %s,"
        " (SELECT tariff_id FROM tariffs))",
        (f"U/{customer}", customer, point[0], valid_to, group),
    )
    return customer


def _announcement(conn: psycopg.Connection[object], streets: list[tuple[str, str]]) -> int:
    row = conn.execute(
        "INSERT INTO announcements (kind, title, body, starts_at, ends_at) VALUES"
        " ('outage', 'Awaria', 'Brak wody', '2026-11-21 08:00+00', '2026-11-21 16:00+00')"
        " RETURNING announcement_id"
    ).fetchone()
    assert row is not None
    for street, city in streets:
        conn.execute(
            "INSERT INTO announcement_streets (announcement_id, street, city) VALUES (%s, %s, %s)",
            (row[0], street, city),
        )
    return int(row[0])


def test_announcement_reaches_the_customers_of_its_streets_once(notify_db: str) -> None:
    with psycopg.connect(notify_db) as conn:
        conn.execute("INSERT INTO billing_groups (group_code) VALUES ('A'), ('B')")
        conn.execute("INSERT INTO tariffs (tariff_group) VALUES ('G1')")
        wodna = _contract(conn, "ul. Wodna 1", "Będzin", "A", None)
        wodna_b = _contract(conn, "UL. WODNA 7/2", "Będzin", "B", None)
        elsewhere = _contract(conn, "ul. Wodna 1", "Sosnowiec", "A", None)
        other_street = _contract(conn, "ul. Polna 3", "Będzin", "A", None)
        ended = _contract(conn, "ul. Wodna 9", "Będzin", "A", date(2026, 10, 31))
        streets = _announcement(conn, [("ul. Wodna", "Będzin")])
        everyone = _announcement(conn, [])

        assert fan_out_announcement(conn, streets) == 2
        assert fan_out_announcement(conn, streets) == 0
        assert fan_out_announcement(conn, everyone, group_code="A") == 3
        rows = conn.execute(
            "SELECT payload->>'announcement_id', customer_id, payload->>'title' FROM outbox"
            " WHERE kind = 'announcement' ORDER BY 1, 2"
        ).fetchall()
    assert rows == [
        (str(streets), wodna, "Awaria"),
        (str(streets), wodna_b, "Awaria"),
        (str(everyone), wodna, "Awaria"),
        (str(everyone), elsewhere, "Awaria"),
        (str(everyone), other_street, "Awaria"),
    ]
    assert ended not in {r[1] for r in rows}
