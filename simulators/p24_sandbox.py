"""A Przelewy24 sandbox: the REST v1 API the portal talks to, on a local HTTP server.

- ``POST /api/v1/transaction/register`` (basic auth ``posId:apiKey``, register sign checked)
  answers ``{"data": {"token": ...}, "responseCode": 0}``;
- ``GET /trnRequest/<token>`` is the payment page: with ``auto_pay`` it pays at once, else
  it shows a "Pay" button (``POST /trnRequest/<token>/pay``). Paying POSTs the signed status
  notification to ``urlStatus`` and then redirects the browser to ``urlReturn``;
- ``PUT /api/v1/transaction/verify`` checks the verify sign, order id and amount;
- ``GET /api/v1/testAccess``.

Faults (``sandbox.faults``, a set the caller may change at any time): ``repeat_notification``
(sent twice), ``late_notification`` (the browser is redirected first, the notification sent
``late_delay_s`` later), ``wrong_amount`` (a correctly signed notification of another
amount), ``bad_signature``. Every notification sent is kept in ``sandbox.deliveries``.
"""

from __future__ import annotations

import argparse
import base64
import html
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from billing_engine.p24 import notification_sign, register_sign, verify_sign
from meterflow.settings import Settings

FAULTS = frozenset({"repeat_notification", "late_notification", "wrong_amount", "bad_signature"})


@dataclass
class Registered:
    """A transaction registered with the sandbox."""

    session_id: str
    amount: int
    currency: str
    url_return: str
    url_status: str
    description: str
    order_id: int | None = None
    verified: bool = False


@dataclass(frozen=True)
class Delivery:
    """One notification sent to ``urlStatus`` and the HTTP status it got (0: no answer)."""

    session_id: str
    body: dict[str, Any]
    status: int


@dataclass
class Sandbox:
    """The sandbox's state and configuration; ``serve`` starts its HTTP server."""

    merchant_id: int
    pos_id: int
    api_key: str
    crc: str
    auto_pay: bool = True
    faults: set[str] = field(default_factory=set)
    late_delay_s: float = 0.5
    transactions: dict[str, Registered] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    _orders: itertools.count[int] = field(default_factory=lambda: itertools.count(300_000_001))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Sandbox:
        """A sandbox accepting the merchant credentials of ``settings``."""
        return cls(
            settings.p24_merchant_id,
            settings.p24_pos_id,
            settings.p24_api_key,
            settings.p24_crc,
            **options,
        )

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        """Start the HTTP server in a daemon thread; return it (``server_address`` has the port)."""
        handler = type("Handler", (_Handler,), {"sandbox": self})
        server = ThreadingHTTPServer((host, port), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True, name="p24-sandbox").start()
        return server

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until every late notification has been sent."""
        for thread in list(self._threads):
            thread.join(timeout_s)

    def register(self, body: dict[str, Any]) -> str | None:
        """Store a registration whose sign is right; return its token, or None."""
        try:
            expected = register_sign(
                body["sessionId"], self.merchant_id, body["amount"], body["currency"], self.crc
            )
            ok = body["merchantId"] == self.merchant_id and body["sign"] == expected
            registered = Registered(
                str(body["sessionId"]),
                int(body["amount"]),
                str(body["currency"]),
                str(body["urlReturn"]),
                str(body["urlStatus"]),
                str(body.get("description", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if not ok:
            return None
        token = secrets.token_hex(16).upper()
        with self._lock:
            self.transactions[token] = registered
        return token

    def pay(self, token: str) -> str:
        """Pay a registered transaction: notify ``urlStatus``; return ``urlReturn``."""
        with self._lock:
            trn = self.transactions[token]
            if trn.order_id is None:
                trn.order_id = next(self._orders)
        body = self.notification(trn)
        times = 2 if "repeat_notification" in self.faults else 1
        if "late_notification" in self.faults:
            thread = threading.Thread(target=self._send_late, args=(trn, body, times), daemon=True)
            self._threads.append(thread)
            thread.start()
        else:
            for _ in range(times):
                self._send(trn, body)
        return trn.url_return

    def notification(self, trn: Registered) -> dict[str, Any]:
        """The signed status notification of a paid transaction (faults applied)."""
        amount = trn.amount + 100 if "wrong_amount" in self.faults else trn.amount
        fields: dict[str, Any] = {
            "merchantId": self.merchant_id,
            "posId": self.pos_id,
            "sessionId": trn.session_id,
            "amount": amount,
            "originAmount": amount,
            "currency": trn.currency,
            "orderId": trn.order_id,
            "methodId": 25,
            "statement": f"p24-{trn.order_id}",
        }
        fields["sign"] = notification_sign(fields, self.crc)
        if "bad_signature" in self.faults:
            fields["sign"] = fields["sign"][::-1]
        return fields

    def verify(self, body: dict[str, Any]) -> bool:
        """Mark a transaction verified if the call's sign, order id and amount are right."""
        try:
            expected = verify_sign(
                body["sessionId"], body["orderId"], body["amount"], body["currency"], self.crc
            )
        except (KeyError, TypeError):
            return False
        with self._lock:
            trn = next(
                (t for t in self.transactions.values() if t.session_id == body["sessionId"]), None
            )
            if trn is None or body.get("sign") != expected or trn.order_id != body["orderId"]:
                return False
            if trn.amount != body["amount"] or trn.currency != body["currency"]:
                return False
            trn.verified = True
        return True

    def _send_late(self, trn: Registered, body: dict[str, Any], times: int) -> None:
        time.sleep(self.late_delay_s)
        for _ in range(times):
            self._send(trn, body)

    def _send(self, trn: Registered, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            trn.url_status,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        with self._lock:
            self.deliveries.append(Delivery(trn.session_id, body, status))


class _Handler(BaseHTTPRequestHandler):
    sandbox: Sandbox

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the sandbox quiet."""

    def do_GET(self) -> None:
        """Answer testAccess and the payment page."""
        if self.path == "/api/v1/testAccess":
            self._json(200, {"data": True, "error": ""})
        elif self.path.startswith("/trnRequest/"):
            token = self.path.removeprefix("/trnRequest/").split("?")[0]
            if token not in self.sandbox.transactions:
                self._json(404, {"error": "Unknown token", "code": 404})
            elif self.sandbox.auto_pay:
                self._redirect(self.sandbox.pay(token))
            else:
                self._page(token)
        else:
            self._json(404, {"error": "Not found", "code": 404})

    def do_POST(self) -> None:
        """Register a transaction, or pay one from the payment page."""
        if self.path.startswith("/trnRequest/") and self.path.endswith("/pay"):
            token = self.path.removeprefix("/trnRequest/").removesuffix("/pay")
            if token in self.sandbox.transactions:
                self._redirect(self.sandbox.pay(token))
            else:
                self._json(404, {"error": "Unknown token", "code": 404})
        elif self.path == "/api/v1/transaction/register" and self._authorised():
            registered = self.sandbox.register(self._body())
            if registered is None:
                self._json(400, {"error": "Incorrect sign or fields", "code": 400})
            else:
                self._json(200, {"data": {"token": registered}, "responseCode": 0})
        elif self.path == "/api/v1/transaction/register":
            self._json(401, {"error": "Incorrect authentication", "code": 401})
        else:
            self._json(404, {"error": "Not found", "code": 404})

    def do_PUT(self) -> None:
        """Verify a transaction."""
        if self.path != "/api/v1/transaction/verify":
            self._json(404, {"error": "Not found", "code": 404})
        elif not self._authorised():
            self._json(401, {"error": "Incorrect authentication", "code": 401})
        elif self.sandbox.verify(self._body()):
            self._json(200, {"data": {"status": "success"}, "responseCode": 0})
        else:
            self._json(400, {"error": "Transaction verification failed", "code": 400})

    def _authorised(self) -> bool:
        expected = f"{self.sandbox.pos_id}:{self.sandbox.api_key}".encode()
        given = self.headers.get("Authorization", "")
        return given == "Basic " + base64.b64encode(expected).decode()

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _page(self, token: str) -> None:
        trn = self.sandbox.transactions[token]
        page = (
            "<!doctype html><title>Przelewy24 sandbox</title>"
            f"<h1>{html.escape(trn.description)}</h1>"
            f"<p>{trn.amount // 100},{trn.amount % 100:02d} {html.escape(trn.currency)}</p>"
            f'<form method="post" action="/trnRequest/{token}/pay">'
            '<button type="submit">Pay</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


def register(subparsers: Any) -> None:
    """Add ``meterflow p24-sandbox``."""
    parser = subparsers.add_parser("p24-sandbox", help="run the Przelewy24 sandbox locally")
    parser.add_argument("--port", type=int, default=8024)
    parser.add_argument("--manual", action="store_true", help="show a Pay button, no auto-pay")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    sandbox = Sandbox.from_settings(settings, auto_pay=not args.manual)
    server = sandbox.serve(port=args.port)
    print(f"Przelewy24 sandbox on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
    return 0
