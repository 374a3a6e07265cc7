"""E-mail over SMTP: plain, STARTTLS or implicit TLS, optional AUTH, one kept-open connection.

``Outgoing.key`` becomes the Message-ID (``<key@domain of the sender>``), so a message staff
send again after a crash carries the same Message-ID as the first and mail stores that
collapse duplicates (and the SMTP sink's count by Message-ID) see one message.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from pathlib import Path
from urllib.parse import unquote, urlsplit

from billing_engine.notify.channels import DeliveryError, Outgoing, SendResult
from meterflow.errors import ConfigError

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


def build_message(message: Outgoing, sender: str) -> EmailMessage:
    """The MIME message: plain text, an HTML alternative, then attachments.

    Raises DeliveryError (permanent) if an address or header is malformed.
    """
    domain = getaddresses([sender])[0][1].rpartition("@")[2] or "localhost"
    mail = EmailMessage()
    try:
        mail["From"] = sender
        mail["To"] = Address(addr_spec=message.to)
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = f"<{message.key}@{domain}>"
        for name, value in message.headers:
            mail[name] = value
    except (ValueError, IndexError) as exc:
        raise DeliveryError(f"malformed address or header: {exc}", permanent=True) from exc
    mail.set_content(message.text)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
    for item in message.attachments:
        main, _, sub = item.mime_type.partition("/")
        mail.add_attachment(item.content, maintype=main, subtype=sub, filename=item.filename)
    return mail


class SmtpChannel:
    """The e-mail channel; reconnects when the server dropped the connection."""

    name = "email"
    # SMTP cannot be asked whether a message arrived: never resend blindly after a crash.
    resend_after_crash = False

    def __init__(self, config: SmtpConfig, sender: str, cafile: Path | None = None) -> None:
        self.config = config
        self.sender = sender
        self._context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        self._client: smtplib.SMTP | None = None

    def send(self, message: Outgoing) -> SendResult:
        """Send one mail. Raises DeliveryError if the server refused it or is unreachable."""
        mail = build_message(message, self.sender)
        try:
            client = self._connected()
            refused = client.send_message(mail)
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
        return SendResult(provider_id=str(mail["Message-ID"]))

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
