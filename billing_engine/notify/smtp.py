"""E-mail over SMTP: plain, STARTTLS or implicit TLS, optional AUTH, one kept-open connection.

``Outgoing.key`` becomes the Message-ID (``<key@domain of the sender>``), so a message staff
send again after a crash carries the same Message-ID as the first and mail stores that
collapse duplicates (and the SMTP sink's count by Message-ID) see one message.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

from billing_engine.notify.channels import DeliveryError, Outgoing, SendResult
from meterflow.errors import ConfigError

# compat32 with the CRLF line ends SMTP wants (smtplib sends bytes as they are); long
# ASCII headers (an unsubscribe URL) stay on one line, within RFC 5321's 998 octets.
WIRE = compat32.clone(linesep="\r\n", max_line_length=998)
SECURITY = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}


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
    """The MIME message as bytes: plain text, an HTML alternative, then attachments.

    Built with the compat32 classes, several times faster than ``EmailMessage``'s header
    registry on thousands of mails. Raises DeliveryError (permanent) if an address or a
    header is malformed (a line break in it would let a payload inject headers).
    """
    name, address = parseaddr(message.to)
    values = [message.to, message.subject, *(v for pair in message.headers for v in pair)]
    if "@" not in address or name or any("\r" in v or "\n" in v for v in values):
        raise DeliveryError(f"malformed address or header for {message.to!r}", permanent=True)
    body: Message = MIMEText(message.text, "plain", "utf-8")
    if message.html is not None:
        body = _multipart("alternative", body, MIMEText(message.html, "html", "utf-8"))
    if message.attachments:
        parts: list[Message] = [body]
        for item in message.attachments:
            part = MIMEApplication(item.content, item.mime_type.partition("/")[2])
            part.add_header("Content-Disposition", "attachment", filename=item.filename)
            parts.append(part)
        body = _multipart("mixed", *parts)
    sender_name, sender_address = parseaddr(sender)
    body["From"] = formataddr((sender_name, sender_address), charset="utf-8")
    body["To"] = address
    # compat32 folds a Header object itself (typeshed allows only str here).
    body["Subject"] = Header(message.subject, "utf-8", header_name="Subject")  # type: ignore[assignment]
    body["Date"] = formatdate(localtime=False, usegmt=True)
    body["Message-ID"] = f"<{message.key}@{sender_address.rpartition('@')[2] or 'localhost'}>"
    for header, value in message.headers:
        body[header] = value
    return body.as_bytes(policy=WIRE)


def _multipart(subtype: str, *parts: Message) -> MIMEMultipart:
    container = MIMEMultipart(subtype)
    for part in parts:
        container.attach(part)
    return container


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
