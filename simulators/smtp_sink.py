"""A local SMTP server (aiosmtpd) that keeps every mail it accepts as an .eml file.

For ``make up`` (a person opens the files to see the notices) and for tests (which read
the mails back). Plain, STARTTLS or implicit TLS, with optional AUTH; counts messages per
Message-ID, so a test sees whether one notice arrived twice. Fault injection: refuse the
next N recipients with ``451`` (temporary) or some addresses with ``550`` (permanent).
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import warnings
from collections import Counter
from collections.abc import Mapping
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]*>)", re.IGNORECASE | re.MULTILINE)


class _Handler:
    """aiosmtpd's hooks: accept, refuse on request, store."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return self.sink._rcpt(envelope, address)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.sink._store(bytes(envelope.original_content or envelope.content))


class _Controller(Controller):
    def factory(self) -> Any:
        with warnings.catch_warnings():
            # aiosmtpd warns of AUTH without STARTTLS even when the socket is implicit TLS.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()  # type: ignore[no-untyped-call]


class SmtpSink:
    """``with SmtpSink(folder, port) as sink: ...``; ``tls`` is none, starttls or implicit."""

    def __init__(
        self,
        folder: Path,
        port: int = 8025,
        host: str = "127.0.0.1",
        tls: str = "none",
        context: ssl.SSLContext | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.host, self.port = host, port
        self.users = dict(users or {})
        self.refuse: set[str] = set()
        self.fail_next = 0
        self._lock = threading.Lock()
        self._ids: Counter[str] = Counter()
        self._count = 0
        folder.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif tls == "implicit":
            options.update(ssl_context=context)
        if self.users:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                # aiosmtpd counts only STARTTLS as TLS; implicit TLS is encrypted throughout.
                auth_require_tls=tls == "starttls",
            )
        self._controller = _Controller(_Handler(self), hostname=host, port=port, **options)

    def __enter__(self) -> SmtpSink:
        # aiosmtpd logs every SMTP command at INFO: too much for thousands of mails.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def count(self) -> int:
        """Mails accepted so far."""
        with self._lock:
            return self._count

    def copies(self, message_id: str) -> int:
        """How many mails with this Message-ID (``<...>``) arrived."""
        with self._lock:
            return self._ids[message_id]

    def messages(self) -> list[EmailMessage]:
        """Every stored mail, parsed, oldest first."""
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        ok = self.users.get(user) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False)

    def _rcpt(self, envelope: Any, address: str) -> str:
        with self._lock:
            if address.lower() in self.refuse:
                return "550 5.1.1 mailbox unavailable"
            if self.fail_next > 0:
                self.fail_next -= 1
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _store(self, data: bytes) -> str:
        found = MESSAGE_ID.search(data)
        with self._lock:
            self._count += 1
            number = self._count
            if found:
                self._ids[found.group(1).decode(errors="replace")] += 1
        (self.folder / f"{number:07d}.eml").write_bytes(data)
        return f"250 OK queued as {number}"
