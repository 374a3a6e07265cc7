"""Database connections of the billing edge, with psycopg errors mapped into ours."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import TupleRow

from meterflow.errors import BillingError, StoreError

Conn = psycopg.Connection[TupleRow]


def connect(conninfo: str, *, autocommit: bool = False) -> Conn:
    """Open a connection to the billing database.

    Raises StoreError if the database cannot be reached.
    """
    try:
        return psycopg.connect(conninfo, autocommit=autocommit)
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to the database: {exc}") from exc


def id_array(ids: Iterable[int]) -> str:
    """``ids`` as an array literal for a ``%s::bigint[]`` parameter.

    psycopg adapts a list element by element (a few microseconds each); a batch's thousands
    of ids go as one string instead.
    """
    return "{" + ",".join(map(str, ids)) + "}"


def text_array(values: Iterable[str]) -> str:
    """``values`` as an array literal for a ``%s::text[]`` parameter, each quoted."""
    return "{" + ",".join(_quoted(v) for v in values) + "}"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Map psycopg errors raised inside the block to BillingError (bad data) or StoreError.

    Raises BillingError if a constraint rejected the data, StoreError on any other failure.
    """
    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        raise BillingError(f"{what}: the data breaks a rule of the store: {_detail(exc)}") from exc
    except psycopg.errors.DataError as exc:
        raise BillingError(f"{what}: invalid value: {_detail(exc)}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"{what}: {exc}") from exc


def _detail(exc: psycopg.Error) -> str:
    diag = exc.diag
    parts = [diag.message_primary or str(exc)]
    if diag.constraint_name:
        parts.append(f"(constraint {diag.constraint_name})")
    if diag.message_detail:
        parts.append(diag.message_detail)
    return " ".join(parts)
