"""A Przelewy24 REST v1 client: register, redirect, status notification, verify.

Signatures are SHA-384 hex digests of a JSON object with the fields in the order P24
documents, serialised as PHP's ``json_encode(..., JSON_UNESCAPED_UNICODE |
JSON_UNESCAPED_SLASHES)`` does: no spaces, non-ASCII and ``/`` left as they are, integers
as numbers. Requests authenticate with HTTP basic auth ``posId:apiKey``. HTTP and network
failures become TransportError, a 401 AuthError; a notification with a wrong signature is
refused with AuthError.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meterflow.errors import AuthError, TransportError
from meterflow.settings import Settings

TIMEOUT_S = 15
NOTIFICATION_FIELDS = (
    ("merchantId", int),
    ("posId", int),
    ("sessionId", str),
    ("amount", int),
    ("originAmount", int),
    ("currency", str),
    ("orderId", int),
    ("methodId", int),
    ("statement", str),
)


@dataclass(frozen=True)
class P24Config:
    """Merchant credentials and the gateway's base URL (production, sandbox or simulator)."""

    base_url: str
    merchant_id: int
    pos_id: int
    api_key: str
    crc: str

    @classmethod
    def from_settings(cls, settings: Settings) -> P24Config:
        """The gateway configuration of ``settings``."""
        return cls(
            settings.p24_base_url.rstrip("/"),
            settings.p24_merchant_id,
            settings.p24_pos_id,
            settings.p24_api_key,
            settings.p24_crc,
        )


@dataclass(frozen=True)
class Notification:
    """A status notification whose signature was checked."""

    merchant_id: int
    pos_id: int
    session_id: str
    amount: int
    origin_amount: int
    currency: str
    order_id: int
    method_id: int
    statement: str


def sign(fields: Mapping[str, Any]) -> str:
    """SHA-384 hex of ``fields`` as P24's JSON (keys in the given order, no spaces)."""
    text = json.dumps(dict(fields), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha384(text.encode("utf-8")).hexdigest()


def register_sign(session_id: str, merchant_id: int, amount: int, currency: str, crc: str) -> str:
    """The ``sign`` of transaction/register."""
    return sign(
        {
            "sessionId": session_id,
            "merchantId": merchant_id,
            "amount": amount,
            "currency": currency,
            "crc": crc,
        }
    )


def verify_sign(session_id: str, order_id: int, amount: int, currency: str, crc: str) -> str:
    """The ``sign`` of transaction/verify."""
    return sign(
        {
            "sessionId": session_id,
            "orderId": order_id,
            "amount": amount,
            "currency": currency,
            "crc": crc,
        }
    )


def notification_sign(fields: Mapping[str, Any], crc: str) -> str:
    """The ``sign`` a status notification with these fields must carry."""
    return sign({**{name: fields[name] for name, _ in NOTIFICATION_FIELDS}, "crc": crc})


def parse_notification(body: Mapping[str, Any], config: P24Config) -> Notification:
    """Check a status notification's fields and signature; return it.

    Raises AuthError if a field is missing or mistyped, the signature is wrong, or it is
    for another merchant or point of sale.
    """
    values: dict[str, Any] = {}
    for name, kind in NOTIFICATION_FIELDS:
        value = body.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise AuthError(f"notification field {name!r} is missing or not {kind.__name__}")
        values[name] = value
    expected = notification_sign(values, config.crc)
    if not hmac.compare_digest(str(body.get("sign", "")), expected):
        raise AuthError(f"notification for session {values['sessionId']!r}: bad signature")
    if values["merchantId"] != config.merchant_id or values["posId"] != config.pos_id:
        raise AuthError(f"notification for session {values['sessionId']!r}: another merchant")
    return Notification(*values.values())


class P24Client:
    """Calls to the gateway's REST API with the merchant's credentials."""

    def __init__(self, config: P24Config) -> None:
        self.config = config

    def register(
        self,
        session_id: str,
        amount: int,
        *,
        description: str,
        email: str,
        url_return: str,
        url_status: str,
        currency: str = "PLN",
        language: str = "pl",
    ) -> str:
        """Register a transaction of ``amount`` grosze; return its token.

        Raises TransportError if the gateway cannot be reached or refuses, AuthError on 401.
        """
        c = self.config
        body = {
            "merchantId": c.merchant_id,
            "posId": c.pos_id,
            "sessionId": session_id,
            "amount": amount,
            "currency": currency,
            "description": description,
            "email": email,
            "country": "PL",
            "language": language,
            "urlReturn": url_return,
            "urlStatus": url_status,
            "sign": register_sign(session_id, c.merchant_id, amount, currency, c.crc),
        }
        data = self._call("POST", "/api/v1/transaction/register", body)
        token = data.get("data", {}).get("token") if isinstance(data.get("data"), dict) else None
        if not isinstance(token, str) or not token:
            raise TransportError(f"register of {session_id}: no token in the answer {data!r}")
        return token

    def redirect_url(self, token: str) -> str:
        """Where to send the customer to pay."""
        return f"{self.config.base_url}/trnRequest/{token}"

    def verify(self, session_id: str, order_id: int, amount: int, currency: str = "PLN") -> None:
        """Confirm a notified transaction (without it the money is not settled).

        Raises TransportError if the gateway refuses or cannot be reached, AuthError on 401.
        """
        c = self.config
        body = {
            "merchantId": c.merchant_id,
            "posId": c.pos_id,
            "sessionId": session_id,
            "amount": amount,
            "currency": currency,
            "orderId": order_id,
            "sign": verify_sign(session_id, order_id, amount, currency, c.crc),
        }
        data = self._call("PUT", "/api/v1/transaction/verify", body)
        status = data.get("data", {}).get("status") if isinstance(data.get("data"), dict) else None
        if status != "success":
            raise TransportError(f"verify of {session_id}: the gateway answered {data!r}")

    def _call(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        credentials = f"{self.config.pos_id}:{self.config.api_key}".encode()
        request = urllib.request.Request(
            self.config.base_url + path,
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            method=method,
            headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            if exc.code == 401:
                raise AuthError(f"P24 {path}: credentials refused (posId/apiKey)") from exc
            raise TransportError(f"P24 {path}: HTTP {exc.code} {detail}") from exc
        except (OSError, ValueError) as exc:
            raise TransportError(f"P24 {path}: {exc}") from exc
        if not isinstance(answer, dict):
            raise TransportError(f"P24 {path}: the answer is not a JSON object")
        return answer
