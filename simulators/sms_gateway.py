"""An SMS gateway simulator speaking the SMSAPI-style API of ``billing_engine.notify.sms``.

``POST /sms.do`` (bearer token; form ``to``, ``message``, ``from``, ``idx``, ``check_idx``)
stores the message and answers like the real gateway; a second message under an ``idx``
already used is refused with error 105 when ``check_idx=1``, so a sender that resends after
a crash does not reach the phone twice. ``GET /_sim/messages`` lists what arrived.
Fault injection: ``fail_next`` answers HTTP 500, ``error_next`` answers ``error_code``.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

SENDER = re.compile(r"^[A-Za-z0-9 .\-]{1,11}$")


class SmsGateway:
    """``with SmsGateway(port=...) as gateway: ...``; ``messages`` holds what arrived."""

    def __init__(
        self,
        port: int = 8026,
        host: str = "127.0.0.1",
        token: str = "sandbox-token",
        journal: Path | None = None,
    ) -> None:
        self.token = token
        self.journal = journal
        self.messages: list[dict[str, Any]] = []
        self.requests = 0
        self.fail_next = 0
        self.error_next = 0
        self.error_code = 103
        self._by_idx: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> SmsGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def to(self, number: str) -> list[dict[str, Any]]:
        """Messages that reached ``number`` (digits with the country code)."""
        with self._lock:
            return [m for m in self.messages if m["number"] == number]

    def answer(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        """The gateway's reply to one send request: (HTTP status, JSON body)."""
        with self._lock:
            self.requests += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"error": 8, "message": "internal error"}
            if self.error_next > 0:
                self.error_next -= 1
                return 200, {"error": self.error_code, "message": "injected fault"}
            if authorization != f"Bearer {self.token}":
                return 401, {"error": 101, "message": "invalid authorization"}
            refused = _validate(form)
            if refused is not None:
                return 200, refused
            idx = form.get("idx", "")
            if idx and form.get("check_idx") == "1" and idx in self._by_idx:
                return 200, {"error": 105, "message": f"idx {idx} already used"}
            return 200, {"count": 1, "list": [self._keep(form, idx)]}

    def _keep(self, form: dict[str, str], idx: str) -> dict[str, Any]:
        number = len(self.messages) + 1
        parts = 1 if len(form["message"]) <= 160 else -(-len(form["message"]) // 153)
        message = {
            "id": f"sim{number:010d}",
            "points": round(0.16 * parts, 2),
            "number": form["to"],
            "status": "QUEUE",
            "idx": idx or None,
            "from": form.get("from", ""),
            "message": form["message"],
        }
        self.messages.append(message)
        if idx:
            self._by_idx[idx] = message
        if self.journal is not None:
            with self.journal.open("a", encoding="utf-8") as out:
                out.write(json.dumps(message, ensure_ascii=False) + "\n")
        return {k: message[k] for k in ("id", "points", "number", "status", "idx")}


def _validate(form: dict[str, str]) -> dict[str, Any] | None:
    if not re.fullmatch(r"\d{10,15}", form.get("to", "")):
        return {"error": 13, "message": "no correct phone number"}
    if not form.get("message") or len(form["message"]) > 918:
        return {"error": 11, "message": "message empty or too long"}
    if not SENDER.match(form.get("from", "")):
        return {"error": 14, "message": "invalid sender name"}
    return None


def _handler_for(gateway: SmsGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every answer back ~40 ms.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            raw = parse_qs(self.rfile.read(length).decode("utf-8"), keep_blank_values=True)
            form = {key: values[-1] for key, values in raw.items()}
            if self.path.split("?")[0].rstrip("/").endswith("/sms.do"):
                status, body = gateway.answer(form, self.headers.get("Authorization", ""))
            else:
                status, body = 404, {"error": 8, "message": "unknown endpoint"}
            self._reply(status, body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/_sim/messages"):
                with gateway._lock:
                    listing = list(gateway.messages)
                self._reply(200, {"count": len(listing), "list": listing})
            else:
                self._reply(404, {"error": 8, "message": "unknown endpoint"})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
