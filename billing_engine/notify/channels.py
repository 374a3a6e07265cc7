"""What a delivery channel is: a message to send, the provider's answer, and its failures.

A channel adapter (``smtp.SmtpChannel``, ``sms.SmsapiChannel``, or any other gateway) takes an
``Outgoing`` and returns a ``SendResult`` or raises ``DeliveryError``; the worker does the
bookkeeping (attempts, retries, dead state, crash recovery) the same way for every channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from meterflow.errors import TransportError


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to an e-mail."""

    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered notice for one channel and address.

    ``key`` is stable across attempts of the same delivery: the e-mail's Message-ID and the
    SMS gateway's idempotency key are derived from it, so a resend is recognisable.
    """

    key: str
    to: str
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted the message (``duplicate``: it had it already under that key)."""

    provider_id: str | None
    duplicate: bool = False


class DeliveryError(TransportError):
    """A channel could not deliver; ``permanent`` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    """A way to reach a customer; ``name`` is ``email`` or ``sms``.

    ``resend_after_crash`` says whether a delivery interrupted by a crash (maybe sent, maybe
    not) may be sent again: true only when the provider deduplicates by ``Outgoing.key``.
    """

    name: str
    resend_after_crash: bool

    def send(self, message: Outgoing) -> SendResult:
        """Hand ``message`` to the provider. Raises DeliveryError if it was not accepted."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
