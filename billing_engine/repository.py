"""Master data in the store: customers, service points, tariffs, contracts, meters fitted.

Writers validate with the pure rules first (a tariff goes through ``Tariff``), so bad input
is refused with a clear BillingError before anything is written; the store's constraints
(NIP checksum, overlapping versions, one contract per premises) back the rules up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from billing_engine.db import Conn, store_errors
from billing_engine.model import PeriodKind, TariffVersion
from billing_engine.tariffs import Tariff
from meterflow.errors import BillingError

NIP_WEIGHTS = (6, 5, 7, 2, 3, 4, 5, 6, 7)


def nip_is_valid(nip: str) -> bool:
    """True if ``nip`` is ten digits whose last one is the NIP checksum of the others."""
    if len(nip) != 10 or not nip.isdigit():
        return False
    check = sum(int(d) * w for d, w in zip(nip, NIP_WEIGHTS, strict=False)) % 11
    return check == int(nip[9])


def add_customer(
    conn: Conn,
    customer_no: str,
    name: str,
    *,
    nip: str | None = None,
    email: str | None = None,
    address: str = "",
) -> int:
    """Create a customer (a business when ``nip`` is given, else a person); return its id.

    Raises BillingError if the NIP's checksum is wrong or the customer number is taken.
    """
    if nip is not None:
        nip = nip.replace("-", "").replace(" ", "")
        if not nip_is_valid(nip):
            raise BillingError(f"NIP {nip!r} is not valid: ten digits with a correct checksum")
    kind = "person" if nip is None else "business"
    with store_errors(f"customer {customer_no}"):
        row = conn.execute(
            "INSERT INTO customers (customer_no, kind, name, nip, email, address)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING customer_id",
            (customer_no, kind, name, nip, email, address),
        ).fetchone()
    assert row is not None
    return int(row[0])


def add_service_point(conn: Conn, address: str, postal_code: str = "", city: str = "") -> int:
    """Create a service point (premises); return its id."""
    with store_errors(f"service point {address}"):
        row = conn.execute(
            "INSERT INTO service_points (address, postal_code, city) VALUES (%s, %s, %s)"
            " RETURNING service_point_id",
            (address, postal_code, city),
        ).fetchone()
    assert row is not None
    return int(row[0])


def ensure_billing_group(conn: Conn, group_code: str, name: str = "", settle_day: int = 1) -> None:
    """Create the billing group if it does not exist yet."""
    with store_errors(f"billing group {group_code}"):
        conn.execute(
            "INSERT INTO billing_groups (group_code, name, settle_day) VALUES (%s, %s, %s)"
            " ON CONFLICT (group_code) DO NOTHING",
            (group_code, name, settle_day),
        )


def add_tariff(conn: Conn, tariff: Tariff, name: str = "") -> int:
    """Store a tariff group with its versions (validated by ``Tariff``); return its id.

    Raises BillingError if the group exists already or a version overlaps another.
    """
    with store_errors(f"tariff {tariff.group}"):
        row = conn.execute(
            "INSERT INTO tariffs (tariff_group, name, norm_m3_per_day) VALUES (%s, %s, %s)"
            " RETURNING tariff_id",
            (tariff.group, name, tariff.norm_m3_per_day),
        ).fetchone()
        assert row is not None
        tariff_id = int(row[0])
        add_tariff_versions(conn, tariff_id, tariff.versions)
    return tariff_id


def add_tariff_versions(conn: Conn, tariff_id: int, versions: Sequence[TariffVersion]) -> None:
    """Add versions to a stored tariff.

    Raises BillingError if a version overlaps a stored one or has a negative price.
    """
    with store_errors(f"tariff {tariff_id} versions"), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO tariff_versions (tariff_id, valid_from, valid_to, water_price_per_m3,"
            " sewage_price_per_m3, subscription_gr_per_month, vat_rate)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    tariff_id,
                    v.valid_from,
                    v.valid_to,
                    v.water_price_per_m3,
                    v.sewage_price_per_m3,
                    v.subscription_fee_per_month,
                    v.vat_rate,
                )
                for v in versions
            ],
        )


def load_tariffs(conn: Conn) -> dict[int, Tariff]:
    """Every stored tariff as the rules' ``Tariff``, by id.

    Raises BillingError if a stored tariff breaks the rules (e.g. no versions).
    """
    rows = conn.execute(
        "SELECT t.tariff_id, t.tariff_group, t.norm_m3_per_day, v.valid_from, v.valid_to,"
        " v.water_price_per_m3, v.sewage_price_per_m3, v.subscription_gr_per_month, v.vat_rate"
        " FROM tariffs t JOIN tariff_versions v USING (tariff_id) ORDER BY 1, 4"
    ).fetchall()
    grouped: dict[int, tuple[str, Decimal, list[TariffVersion]]] = {}
    for tid, group, norm, *version in rows:
        grouped.setdefault(tid, (group, norm, []))[2].append(
            TariffVersion(
                version[0], version[1], version[2], version[3], int(version[4]), version[5]
            )
        )
    return {tid: Tariff(g, tuple(vs), norm) for tid, (g, norm, vs) in grouped.items()}


def add_contract(
    conn: Conn,
    contract_no: str,
    customer_id: int,
    service_point_id: int,
    tariff_id: int,
    valid_from: date,
    *,
    group_code: str = "default",
    billing_period: PeriodKind = "monthly",
    water: bool = True,
    sewage: bool = True,
    valid_to: date | None = None,
) -> int:
    """Create a supply contract; return its id.

    Raises BillingError if the premises already has a contract on those dates.
    """
    ensure_billing_group(conn, group_code)
    with store_errors(f"contract {contract_no}"):
        row = conn.execute(
            "INSERT INTO contracts (contract_no, customer_id, service_point_id, tariff_id,"
            " valid_from, valid_to, group_code, billing_period, water, sewage)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING contract_id",
            (
                contract_no,
                customer_id,
                service_point_id,
                tariff_id,
                valid_from,
                valid_to,
                group_code,
                billing_period,
                water,
                sewage,
            ),
        ).fetchone()
    assert row is not None
    return int(row[0])


def install_meter(
    conn: Conn,
    meter_id: str,
    service_point_id: int,
    installed_on: date,
    *,
    initial_m3: Decimal = Decimal(0),
    role: str = "main",
) -> int:
    """Fit a meter at a service point; return the installation id.

    Raises BillingError if the point already has a meter in that role on that day.
    """
    with store_errors(f"installation of meter {meter_id}"):
        row = conn.execute(
            "INSERT INTO meter_installations (meter_id, service_point_id, role, installed_on,"
            " initial_m3) VALUES (%s, %s, %s, %s, %s) RETURNING installation_id",
            (meter_id, service_point_id, role, installed_on, initial_m3),
        ).fetchone()
    assert row is not None
    return int(row[0])


def remove_meter(conn: Conn, installation_id: int, removed_on: date, final_m3: Decimal) -> None:
    """Record a meter's removal with its final reading."""
    with store_errors(f"removal of installation {installation_id}"):
        conn.execute(
            "UPDATE meter_installations SET removed_on = %s, final_m3 = %s"
            " WHERE installation_id = %s",
            (removed_on, final_m3, installation_id),
        )
