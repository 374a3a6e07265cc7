"""One psycopg connection pool per app; ``get_conn()`` lends a connection to a request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import psycopg
from flask import Flask, Response, current_app, g, has_request_context, request
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg_pool import ConnectionPool

from billing_engine.db import Conn as BillingConn
from meterflow.errors import ConfigError, StoreError

Conn = psycopg.Connection[DictRow]
EXTENSION_KEY = "meterflow.pool"
View = TypeVar("View", bound=Callable[..., Any])


def init_app(app: Flask, database_url: str | None, min_size: int = 1, max_size: int = 8) -> None:
    """Open the app's pool (lazily connecting) and return connections after each request.

    Raises ConfigError if no database URL is configured.
    """
    if not database_url:
        raise ConfigError("the portal needs a database: set METERFLOW_DATABASE_URL")
    pool: ConnectionPool[Conn] = ConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row},
        connection_class=psycopg.Connection[DictRow],
        open=False,
        name="portal",
    )
    pool.open(wait=False)
    app.extensions[EXTENSION_KEY] = pool
    app.after_request(_finish)
    app.teardown_appcontext(_give_back)


def pool_of(app: Flask) -> ConnectionPool[Conn]:
    """Return the pool of ``app``."""
    pool: ConnectionPool[Conn] = app.extensions[EXTENSION_KEY]
    return pool


def read_only(view: View) -> View:
    """Mark a view whose GET only reads: its statements then run without a transaction
    (autocommit, no BEGIN and COMMIT round trips). Other methods stay transactional."""
    view._mf_read_only = True  # type: ignore[attr-defined]
    return view


def get_conn(*, reading: bool = False) -> Conn:
    """Return this request's connection (taken from the pool on first use).

    Statements run in one transaction, committed before the response goes out when its
    status is below 400 and rolled back otherwise (so a failed commit is a 500, never a
    success the database forgot); the GET of a ``read_only`` view, and a caller that only
    ``reading`` before the view is known (the session), run them in autocommit instead.
    Raises StoreError if no connection can be had.
    """
    conn: Conn | None = g.get("_mf_conn")
    if conn is None:
        try:
            conn = pool_of(current_app).getconn(timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"no database connection for the portal: {exc}") from exc
        g._mf_conn = conn
    wanted = reading or _reads_only()
    if conn.autocommit != wanted and conn.info.transaction_status == TransactionStatus.IDLE:
        conn.autocommit = wanted
    return conn


def _reads_only() -> bool:
    if not has_request_context() or request.method not in ("GET", "HEAD"):
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "_mf_read_only", False))


@contextmanager
def tuple_rows(conn: Conn) -> Iterator[BillingConn]:
    """Lend the request's connection to billing's functions, which read plain tuples."""
    conn.row_factory = tuple_row  # type: ignore[assignment]
    try:
        yield cast(BillingConn, conn)
    finally:
        conn.row_factory = dict_row


def _finish(response: Response) -> Response:
    conn: Conn | None = g.get("_mf_conn")
    if conn is not None and not conn.closed:
        if response.status_code < 400:
            conn.commit()
        else:
            conn.rollback()
    return response


def _give_back(exc: BaseException | None) -> None:
    conn: Conn | None = g.pop("_mf_conn", None)
    if conn is None:
        return
    try:
        if not conn.closed:
            conn.rollback()
    finally:
        pool_of(current_app).putconn(conn)


def close_pool(app: Flask, **_: Any) -> None:
    """Close the pool of ``app`` (tests and shutdown)."""
    pool = app.extensions.pop(EXTENSION_KEY, None)
    if pool is not None:
        pool.close()
