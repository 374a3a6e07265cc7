"""Server-side sessions in PostgreSQL: the cookie holds only a random id.

A session row may belong to one customer account or one staff user, so logging out or
changing a password can end every other session of that person, in every gunicorn worker.
Call :func:`begin` at login (it issues a fresh id) and :func:`end_all` at logout.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from portal.db import Conn, get_conn, pool_of

IDLE = timedelta(minutes=60)
ABSOLUTE = timedelta(hours=12)
# Sliding expiry is written back at most this often, not on every request.
TOUCH_EVERY = timedelta(minutes=5)
_serializer = TaggedJSONSerializer()


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """The session of one request: its data plus who it belongs to."""

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        sid: str | None = None,
        account_id: int | None = None,
        staff_id: int | None = None,
        created_at: datetime | None = None,
        seen_at: datetime | None = None,
    ) -> None:
        def on_update(_: object) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.account_id = account_id
        self.staff_id = staff_id
        self.created_at = created_at
        self.seen_at = seen_at
        self.regenerate = False
        self.modified = False

    @property
    def new(self) -> bool:  # type: ignore[override]
        """True if no row stands behind this session yet."""
        return self.sid is None


def begin(
    session: SessionMixin, account_id: int | None = None, staff_id: int | None = None
) -> None:
    """Bind ``session`` to a person under a fresh id (the old id dies); keeps the language."""
    assert isinstance(session, ServerSession)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    session.account_id = account_id
    session.staff_id = staff_id
    session.created_at = None
    session.regenerate = True
    session.modified = True


def end_all(
    conn: Conn, account_id: int | None = None, staff_id: int | None = None, keep: str | None = None
) -> int:
    """Delete every session of the account or staff user except ``keep``; return how many."""
    keep_hash = _hash(keep) if keep else b""
    cur = conn.execute(
        "DELETE FROM portal_sessions WHERE (account_id = %s OR staff_id = %s)"
        " AND session_hash <> %s",
        (account_id, staff_id, keep_hash),
    )
    return cur.rowcount


def purge_expired(conn: Conn) -> int:
    """Delete expired sessions; return how many."""
    return conn.execute("DELETE FROM portal_sessions WHERE expires_at < now()").rowcount


class PostgresSessionInterface(SessionInterface):
    """Flask session interface storing sessions in ``portal_sessions``."""

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        """Load the session named by the cookie, or start an empty one."""
        sid = request.cookies.get(self.get_cookie_name(app))
        if not sid or len(sid) > 100:
            return ServerSession()
        # Read on the request's own connection, before any transaction: no extra round trips.
        row = (
            get_conn(reading=True)
            .execute(
                "SELECT data, account_id, staff_id, created_at, seen_at FROM portal_sessions"
                " WHERE session_hash = %s AND expires_at > now()",
                (_hash(sid),),
            )
            .fetchone()
        )
        if row is None:
            return ServerSession()
        data = _serializer.loads(row["data"])
        return ServerSession(
            data, sid, row["account_id"], row["staff_id"], row["created_at"], row["seen_at"]
        )

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write the session back, issue a new id if asked, or drop it when empty."""
        assert isinstance(session, ServerSession)
        name = self.get_cookie_name(app)
        bound = session.account_id is not None or session.staff_id is not None
        if not session and not bound:
            if session.sid is not None:
                self._delete(app, session.sid)
                response.delete_cookie(name, path=self.get_cookie_path(app))
            return
        now = datetime.now(UTC)
        if session.regenerate or session.sid is None:
            if session.sid is not None:
                self._delete(app, session.sid)
            session.sid = secrets.token_urlsafe(32)
            session.created_at = now
            self._write(app, session, now, insert=True)
        elif session.modified or _stale(session, now):
            self._write(app, session, now, insert=False)
        else:
            return
        response.set_cookie(
            name,
            session.sid,
            httponly=True,
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
            path=self.get_cookie_path(app),
            domain=self.get_cookie_domain(app),
        )
        response.vary.add("Cookie")

    def _write(self, app: Flask, session: ServerSession, now: datetime, insert: bool) -> None:
        assert session.sid is not None and session.created_at is not None
        expires = min(session.created_at + ABSOLUTE, now + IDLE)
        data = _serializer.dumps(dict(session))
        with pool_of(app).connection() as conn:
            if insert:
                conn.execute(
                    "INSERT INTO portal_sessions (session_hash, account_id, staff_id, data,"
                    " created_at, seen_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (
                        _hash(session.sid),
                        session.account_id,
                        session.staff_id,
                        data,
                        now,
                        now,
                        expires,
                    ),
                )
            else:
                conn.execute(
                    "UPDATE portal_sessions SET data = %s, seen_at = %s, expires_at = %s"
                    " WHERE session_hash = %s",
                    (data, now, expires, _hash(session.sid)),
                )

    def _delete(self, app: Flask, sid: str) -> None:
        with pool_of(app).connection() as conn:
            conn.execute("DELETE FROM portal_sessions WHERE session_hash = %s", (_hash(sid),))


def _stale(session: ServerSession, now: datetime) -> bool:
    return session.seen_at is None or now - session.seen_at > TOUCH_EVERY


def _hash(sid: str) -> bytes:
    return hashlib.sha256(sid.encode()).digest()
