"""E-mail over SMTP: plain, STARTTLS or implicit TLS, optional AUTH, one kept-open connection.

``Outgoing.key`` becomes the Message-ID (``<key@domain of the sender>``), so a message staff
send again after a crash carries the same Message-ID as the first and mail stores that
collapse duplicates (and the SMTP sink's count by Message-ID) see one message.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from base64 import b64encode, encodebytes
from dataclasses import dataclass
from email.utils import formatdate, parseaddr
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from billing_engine.notify.channels import Attachment, DeliveryError, Outgoing, SendResult
from meterflow.errors import ConfigError

SECURITY = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}
# An addr-spec with a dot-atom local part and a host name: parseaddr would return it as is.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PLAIN_ADDRESS = re.compile(rf"{_ATOM}(\.{_ATOM})*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\Z")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to connect."""

    host: str
    port: int
    security: str
    user: str | None = None
    password: str | None = None
    timeout_s: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://[user:password@]host[:port]``.

        Raises ConfigError if the scheme is unknown or the host is missing.
        """
        parts = urlsplit(url)
        if parts.scheme not in SECURITY or not parts.hostname:
            raise ConfigError(
                f"bad SMTP URL {url!r}: use smtp://, smtp+starttls:// or smtps://host:port"
            )
        security = SECURITY[parts.scheme]
        port = parts.port or {"none": 25, "starttls": 587, "tls": 465}[security]
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, security, user, password)


def build_message(message: Outgoing, sender: str) -> bytes:
    """The MIME message as bytes (CRLF lines): plain text, an HTML alternative, attachments.

    Written directly rather than through ``email``'s generator, which folds every header
    through its ``Header`` class and costs more than the SMTP exchange itself. Raises
    DeliveryError (permanent) if an address or a header is malformed (a line break in it
    would let a payload inject headers).
    """
    address = _bare_address(message.to)
    values = [message.subject, *(v for pair in message.headers for v in pair)]
    if address is None or any("\r" in v or "\n" in v for v in values):
        raise DeliveryError(f"malformed address or header for {message.to!r}", permanent=True)
    from_header, domain = _sender(sender)
    head = [
        from_header,
        f"To: {address}",
        f"Subject: {_encoded_words(message.subject)}",
        f"Date: {formatdate(localtime=False, usegmt=True)}",
        f"Message-ID: <{message.key}@{domain}>",
        "MIME-Version: 1.0",
        *(f"{header}: {value}" for header, value in message.headers),
    ]
    body = _text_part("plain", message.text)
    if message.html is not None:
        body = _multipart("alternative", message.key, [body, _text_part("html", message.html)])
    if message.attachments:
        parts = [body, *(_attachment(item) for item in message.attachments)]
        body = _multipart("mixed", message.key, parts)
    return ("\r\n".join(head) + "\r\n").encode("ascii") + body


def _bare_address(to: str) -> str | None:
    """The address of ``to`` if it is a bare address (no display name), else None."""
    if PLAIN_ADDRESS.match(to):  # the usual case, without the cost of parseaddr
        return to
    if "\r" in to or "\n" in to:
        return None
    name, address = parseaddr(to)
    return address if "@" in address and not name else None


@lru_cache(maxsize=16)
def _sender(sender: str) -> tuple[str, str]:
    """The From header and the Message-ID domain of ``sender`` (the same for every mail)."""
    name, address = parseaddr(sender)
    header = f"From: {_phrase(name)} <{address}>" if name else f"From: {sender}"
    return header, address.rpartition("@")[2] or "localhost"


def _encoded_words(text: str) -> str:
    """An unstructured header value: as is when ASCII, else RFC 2047 base64 words."""
    if text.isascii():
        return text
    data, words, start = text.encode(), [], 0
    while start < len(data):
        end = min(start + 45, len(data))  # 45 bytes -> 60 base64 characters per word
        while end < len(data) and data[end] & 0xC0 == 0x80:  # not inside a character
            end -= 1
        words.append(data[start:end])
        start = end
    return "\r\n ".join(f"=?utf-8?b?{b64encode(w).decode()}?=" for w in words)


def _phrase(name: str) -> str:
    if name.isascii():
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _encoded_words(name)


def _text_part(subtype: str, text: str) -> bytes:
    return (
        f"Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + _base64_lines(text.encode())


def _attachment(item: Attachment) -> bytes:
    filename = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in item.filename
    )
    return (
        f"Content-Type: {item.mime_type}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{filename}"\r\n\r\n'
    ).encode() + _base64_lines(item.content)


def _base64_lines(data: bytes) -> bytes:
    return encodebytes(data).replace(b"\n", b"\r\n")


def _multipart(subtype: str, key: str, parts: list[bytes]) -> bytes:
    # "=_" occurs in no base64 line and the part headers are ours: no mail can contain it.
    boundary = f"=_{subtype}_{key}"
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()]
    for part in parts:
        out.append(f"--{boundary}\r\n".encode() + part + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


class SmtpChannel:
    """The e-mail channel; reconnects when the server dropped the connection."""

    name = "email"
    # SMTP cannot be asked whether a message arrived: never resend blindly after a crash.
    resend_after_crash = False

    def __init__(self, config: SmtpConfig, sender: str, cafile: Path | None = None) -> None:
        self.config = config
        self.sender = sender
        self._envelope_from = parseaddr(sender)[1]
        self._domain = self._envelope_from.rpartition("@")[2] or "localhost"
        self._context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        self._client: smtplib.SMTP | None = None

    def send(self, message: Outgoing) -> SendResult:
        """Send one mail. Raises DeliveryError if the server refused it or is unreachable."""
        mail = build_message(message, self.sender)
        try:
            client = self._connected()
            refused = client.sendmail(self._envelope_from, [message.to], mail)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            reason = f"recipient refused: {code} {text!r}"
            raise DeliveryError(reason, permanent=code >= 500) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # The sender's credentials are wrong: staff must fix them, the notice waits.
            self.close()
            raise DeliveryError(f"SMTP authentication failed: {exc.smtp_error!r}") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise DeliveryError(
                f"SMTP {exc.smtp_code} {exc.smtp_error!r}", permanent=exc.smtp_code >= 500
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryError(f"SMTP connection failed: {exc}") from exc
        if refused:
            raise DeliveryError(f"recipient refused: {refused}", permanent=True)
        return SendResult(provider_id=f"<{message.key}@{self._domain}>")

    def _connected(self) -> smtplib.SMTP:
        if self._client is not None:
            return self._client
        cfg = self.config
        client: smtplib.SMTP
        if cfg.security == "tls":
            client = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout_s, context=self._context
            )
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        try:
            # A mail's last partial segment must not wait for the server's delayed ACK.
            if client.sock is not None:
                client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if cfg.security == "starttls":
                client.starttls(context=self._context)
            if cfg.user:
                client.login(cfg.user, cfg.password or "")
        except BaseException:
            client.close()
            raise
        self._client = client
        return client

    def close(self) -> None:
        """Say QUIT if the connection is still open."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()
