"""Security headers, session-cookie hardening and safe redirects for every response."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, session

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def csp_with_form_target(origin: str) -> str:
    """Return the policy with ``origin`` allowed as a form target too.

    A page whose form posts here and is redirected to a payment gateway needs it: browsers
    apply ``form-action`` to the redirect as well.
    """
    parts = urlsplit(origin)
    return CSP.replace("form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}")


def init_app(app: Flask, cookie_secure: bool) -> None:
    """Harden the session cookie and add the security headers to every response."""
    app.config.update(
        SESSION_COOKIE_NAME="mf_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=app.config.get("MAX_CONTENT_LENGTH") or 12 * 1024 * 1024,
    )
    app.after_request(_add_headers)


def _add_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if getattr(session, "account_id", None) or getattr(session, "staff_id", None):
        # Pages of a logged-in person must not stay in shared caches or the back button.
        response.headers["Cache-Control"] = "no-store"
    if response.headers.get("Content-Disposition", "").startswith("attachment"):
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ch in target for ch in "\r\n\\"):
        return None
    return target
