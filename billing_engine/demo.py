"""Demo data: a tariff, a billing group, and a customer with a contract for every meter in
the ``meters`` table that is not fitted anywhere yet (set-based SQL, fast for 100,000).

Every tenth customer is a business with a valid NIP. A meter is fitted on the day of its
first reading with that reading as its initial value (today and 0 if it has none).

``seed_demo`` (what ``meterflow up`` runs on every start) is idempotent and made for a
laptop whose simulated fleet has only just started reading: it gives each new meter a
made-up history of daily readings from the first day of last month up to its first real
reading (``readings.source = 'demo'``, ending at that reading's value), so last month can
be settled at once (``meterflow billing scheduler --settle-on-start``) and a person sees
invoices within the first minutes. Meters with no reading yet are left for the next call.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing_engine.db import Conn, connect, store_errors
from billing_engine.model import TariffVersion
from billing_engine.repository import add_tariff, ensure_billing_group
from billing_engine.tariffs import Tariff

DEMO_TARIFF = Tariff(
    "W1",
    (
        TariffVersion(date(2025, 1, 1), date(2026, 6, 30), Decimal("5.43"), Decimal("7.12"), 450),
        TariffVersion(date(2026, 7, 1), None, Decimal("5.89"), Decimal("7.64"), 480),
    ),
    Decimal("0.1"),
)
DEMO_GROUP = "G1"
WARSAW = ZoneInfo("Europe/Warsaw")


def seed_demo(conninfo: str, today: date | None = None) -> int:
    """Seed the demo tariff, group, history and a contract per new read meter; return count.

    Safe on every start: meters fitted already are left alone.
    Raises StoreError if the database cannot be reached.
    """
    today = today or datetime.now(WARSAW).date()
    since = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    with connect(conninfo) as conn:
        with store_errors("demo history"):
            conn.execute(_HISTORY, {"since": since})
        made = seed_contracts(conn, read_only=True)
        conn.commit()
    return made


def seed_contracts(
    conn: Conn,
    *,
    tariff: Tariff = DEMO_TARIFF,
    group_code: str = DEMO_GROUP,
    billing_period: str = "monthly",
    installed_on: date | None = None,
    read_only: bool = False,
) -> int:
    """Contracts (with customer, premises, installation) for every unfitted meter.

    ``installed_on`` overrides the day of the first reading as the installation day;
    ``read_only`` leaves out meters without any reading yet.
    """
    ensure_billing_group(conn, group_code, "Demo group")
    row = conn.execute("SELECT tariff_id FROM tariffs WHERE tariff_group = %s", (tariff.group,))
    found = row.fetchone()
    tariff_id = int(found[0]) if found else add_tariff(conn, tariff, "Demo tariff")
    params = {
        "tariff": tariff_id,
        "group": group_code,
        "kind": billing_period,
        "installed": installed_on,
        "read_only": read_only,
    }
    with store_errors("demo contracts"):
        conn.execute("DROP TABLE IF EXISTS demo_todo")
        conn.execute(_UNFITTED_METERS, params)
        for statement in _INSERTS:
            conn.execute(statement, params)
        count = conn.execute("SELECT count(*) FROM demo_todo").fetchone()
        conn.execute("DROP TABLE demo_todo")
    return int(count[0]) if count else 0


_UNFITTED_METERS = """
CREATE TEMP TABLE demo_todo AS
SELECT m.meter_id, t.n,
       nextval('customers_customer_id_seq') AS customer_id,
       nextval('service_points_service_point_id_seq') AS point_id,
       lpad((100000000 + t.n * 7919 %% 899999999)::text, 9, '0') AS nip_base,
       coalesce(%(installed)s::date, (first.read_at AT TIME ZONE 'Europe/Warsaw')::date,
                current_date) AS installed_on,
       CASE WHEN %(installed)s::date IS NULL THEN coalesce(first.value, 0) ELSE 0 END AS initial
FROM meters m
JOIN (SELECT meter_id, row_number() OVER (ORDER BY meter_id) AS n FROM meters) t USING (meter_id)
LEFT JOIN LATERAL (
    SELECT r.read_at, r.value FROM readings r
    WHERE r.meter_id = m.meter_id AND r.quantity = 'volume' AND r.function = 'instantaneous'
      AND r.storage = 0 AND r.tariff = 0 AND r.subunit = 0
    ORDER BY r.read_at LIMIT 1) AS first ON true
WHERE NOT EXISTS (SELECT 1 FROM meter_installations i WHERE i.meter_id = m.meter_id)
  AND (NOT %(read_only)s OR first.read_at IS NOT NULL)
"""

# Daily demo readings (00:30 Warsaw) from %(since)s to the day before each unfitted meter's
# first reading, falling back from its value by up to 120 litres a day (never below 0).
_HISTORY = """
INSERT INTO readings (meter_id, read_at, storage, tariff, subunit, quantity, function, unit,
                      value, received_at, source)
SELECT f.meter_id, h.at, 0, 0, 0, 'volume', 'instantaneous', 'm3',
       round(greatest(f.value - f.rate * (f.first_day - h.day), 0), 3), h.at, 'demo'
FROM (
    SELECT m.meter_id, first.value, (first.read_at AT TIME ZONE 'Europe/Warsaw')::date AS first_day,
           least(0.12, first.value / greatest(
               (first.read_at AT TIME ZONE 'Europe/Warsaw')::date - %(since)s::date + 1, 1))
               AS rate
    FROM meters m CROSS JOIN LATERAL (
        SELECT r.read_at, r.value FROM readings r
        WHERE r.meter_id = m.meter_id AND r.quantity = 'volume'
          AND r.function = 'instantaneous' AND r.storage = 0 AND r.tariff = 0 AND r.subunit = 0
        ORDER BY r.read_at LIMIT 1) AS first
    WHERE NOT EXISTS (SELECT 1 FROM meter_installations i WHERE i.meter_id = m.meter_id)
      AND first.read_at > %(since)s::date
) f
CROSS JOIN LATERAL (
    SELECT d::date AS day, (d::timestamp + interval '30 minutes') AT TIME ZONE 'Europe/Warsaw' AS at
    FROM generate_series(%(since)s::date, f.first_day - 1, interval '1 day') d
) h
ON CONFLICT DO NOTHING
"""

_NIP = """
    CASE WHEN d.n %% 10 = 0 AND (SELECT sum(substr(d.nip_base, i::int, 1)::int * w) %% 11
              FROM unnest(ARRAY[6, 5, 7, 2, 3, 4, 5, 6, 7]) WITH ORDINALITY AS x(w, i)) < 10
         THEN d.nip_base || (SELECT sum(substr(d.nip_base, i::int, 1)::int * w) %% 11
              FROM unnest(ARRAY[6, 5, 7, 2, 3, 4, 5, 6, 7]) WITH ORDINALITY AS x(w, i))
    END
"""

_INSERTS = (
    f"""
    INSERT INTO customers (customer_id, customer_no, kind, name, nip, email, address)
    SELECT d.customer_id, 'K-' || d.meter_id, CASE WHEN nip IS NULL THEN 'person'
           ELSE 'business' END,
           CASE WHEN nip IS NULL THEN 'Klient Łódzki ' || d.n ELSE 'Zakład Żółć Sp. z o.o. '
           || d.n END, nip, 'klient' || d.n || '@example.com', 'ul. Źródlana ' || d.n
    FROM demo_todo d CROSS JOIN LATERAL (SELECT {_NIP} AS nip) AS x
    """,
    """
    INSERT INTO service_points (service_point_id, address, postal_code, city)
    SELECT point_id, 'ul. Źródlana ' || n, '42-500', 'Będzin' FROM demo_todo
    """,
    """
    INSERT INTO meter_installations (meter_id, service_point_id, installed_on, initial_m3)
    SELECT meter_id, point_id, installed_on, initial FROM demo_todo
    """,
    """
    INSERT INTO contracts (contract_no, customer_id, service_point_id, tariff_id, valid_from,
                           group_code, billing_period)
    SELECT 'U-' || meter_id, customer_id, point_id, %(tariff)s, installed_on, %(group)s,
           %(kind)s
    FROM demo_todo
    """,
)
