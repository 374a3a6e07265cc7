"""SMS through an SMSAPI-style HTTP gateway (the API of the Polish SMSAPI.pl, simplified).

The request: ``POST {base}/sms.do`` with ``Authorization: Bearer <token>`` and a form of
``to`` (MSISDN, digits with country code), ``message``, ``from`` (sender name), ``idx`` (our
idempotency key), ``check_idx=1`` (refuse a second message with an ``idx`` already used) and
``format=json``. The answer: ``{"count": 1, "list": [{"id": ..., "points": ..., "number":
..., "status": "QUEUE", "idx": ...}]}`` or ``{"error": CODE, "message": TEXT}``. Codes:
11 message empty or too long, 13 no valid number, 14 bad sender name (permanent); 101 bad
token, 103 no credits (temporary: the operator must act, the notice waits); 105 the ``idx``
was already used: the gateway has the message, so a resend after a crash is not sent twice.
HTTP 5xx and connection failures are temporary.

Another gateway is another class with ``name``, ``resend_after_crash``, ``send`` and
``close`` (see ``channels.Channel``).
"""

from __future__ import annotations

import http.client
import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

from billing_engine.notify.channels import DeliveryError, Outgoing, SendResult
from meterflow.errors import ConfigError

PERMANENT_CODES = frozenset({11, 13, 14})
DUPLICATE_IDX = 105
MAX_LENGTH = 918  # six concatenated GSM-7 parts; longer texts are cut by the renderer


def msisdn(phone: str) -> str:
    """A Polish or international phone number as digits with the country code.

    Raises DeliveryError (permanent) if it is not a phone number.
    """
    digits = re.sub(r"[\s\-()]", "", phone)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    elif len(digits) == 9:
        digits = "48" + digits
    if not digits.isdigit() or not 10 <= len(digits) <= 15:
        raise DeliveryError(f"not a phone number: {phone!r}", permanent=True)
    return digits


class SmsapiChannel:
    """The SMS channel over one kept-alive HTTP connection."""

    name = "sms"
    # The gateway refuses a second message under the same idx: a resend is safe.
    resend_after_crash = True

    def __init__(self, base_url: str, token: str, sender: str, timeout_s: float = 15.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"bad SMS gateway URL {base_url!r}: use http(s)://host:port")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + "/sms.do"
        self._token = token
        self._sender = sender
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def send(self, message: Outgoing) -> SendResult:
        """Send one SMS. Raises DeliveryError if the gateway refused it or is unreachable."""
        form = {
            "to": msisdn(message.to),
            "message": message.text[:MAX_LENGTH],
            "from": self._sender,
            "idx": message.key,
            "check_idx": "1",
            "format": "json",
        }
        status, answer = self._post(urlencode(form).encode())
        if "error" in answer:
            return self._refused(answer)
        if status >= 300 or not answer.get("list"):
            raise DeliveryError(f"SMS gateway answered HTTP {status}: {answer!r}")
        return SendResult(provider_id=str(answer["list"][0].get("id")))

    def _refused(self, answer: dict[str, Any]) -> SendResult:
        code = int(answer.get("error", 0))
        if code == DUPLICATE_IDX:
            return SendResult(provider_id=None, duplicate=True)
        text = f"SMS gateway error {code}: {answer.get('message', '')}"
        raise DeliveryError(text, permanent=code in PERMANENT_CODES)

    def _post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        try:
            conn = self._connection()
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise DeliveryError(f"SMS gateway unreachable: {exc}") from exc
        if response.status >= 500:
            raise DeliveryError(f"SMS gateway answered HTTP {response.status}")
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise DeliveryError(f"SMS gateway answered no JSON: {raw[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise DeliveryError(f"SMS gateway answered {answer!r}")
        return response.status, answer

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            https = self._scheme == "https"
            cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout_s)
        return self._conn

    def close(self) -> None:
        """Close the HTTP connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
