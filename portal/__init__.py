"""The customer e-office (iBOK) and staff console: a Flask app built by :func:`create_app`.

Nothing is configured at import time. ``create_app()`` reads ``METERFLOW_*`` settings once;
tests pass their own ``Settings`` and Flask config overrides, e.g.
``create_app(settings, TESTING=True, PASSWORD_HASH_PROFILE="fast")``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from meterflow.errors import ConfigError
from meterflow.settings import Settings


def create_app(settings: Settings | None = None, **config: Any) -> Flask:
    """Build the portal for ``settings`` (default: from the environment).

    Raises ConfigError if the database URL is missing or a portal setting is invalid.
    """
    from portal import auth, customer, db, i18n, payments, ratelimit, security, staff, staffconsole
    from portal.forms import password_rule
    from portal.passwords import Hasher, PasswordPolicy
    from portal.sessions import PostgresSessionInterface
    from portal.unsubscribe import bp as unsubscribe_bp

    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key or _persistent_secret(settings.data_dir),
        TERMS_VERSION=settings.portal_terms_version,
        PUBLIC_BASE_URL=settings.portal_base_url,
        COMPLAINT_ANSWER_DAYS=settings.portal_complaint_answer_days,
        RATE_LIMITS=dict(ratelimit.DEFAULT_LIMITS),
        PASSWORD_HASH_PROFILE="default",
        CUSTOMER_HOME="",
        WTF_CSRF_TIME_LIMIT=None,
        DB_POOL_MAX=8,
    )
    app.config.update(config)
    if settings.portal_proxy_hops:
        hops = settings.portal_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.extensions["meterflow.settings"] = settings
    app.extensions["meterflow.hasher"] = Hasher(app.config["PASSWORD_HASH_PROFILE"])
    app.extensions["meterflow.password_policy"] = PasswordPolicy.from_settings(settings)
    db.init_app(app, settings.database_url, max_size=int(app.config["DB_POOL_MAX"]))
    app.session_interface = PostgresSessionInterface()
    security.init_app(app, settings.portal_cookie_secure)
    CSRFProtect(app)
    i18n.init_app(app, settings.data_dir)
    app.before_request(auth.load_account)
    app.before_request(staff.load_staff)
    app.register_blueprint(auth.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(unsubscribe_bp)
    app.register_blueprint(payments.bp)
    app.register_blueprint(customer.bp)
    app.register_blueprint(staffconsole.bp)
    app.add_url_rule("/healthz", "healthz", _healthz)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.register_error_handler(HTTPException, _http_error)
    app.jinja_env.globals["current_staff"] = staff.current_staff
    app.jinja_env.globals["current_account"] = auth.current_account
    app.jinja_env.globals["password_rule"] = password_rule
    return app


def _persistent_secret(data_dir: Path) -> str:
    """Return the secret kept in ``data_dir/secret_key``, creating it once (mode 0600)."""
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    # Written aside then linked in, so workers starting together all read one whole key.
    tmp = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc}; set METERFLOW_SECRET_KEY") from exc
    return path.read_text().strip()


def _healthz() -> ResponseReturnValue:
    """A liveness answer that passes through the app's session and security middleware."""
    return "ok", 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}


def _csrf_failed(error: CSRFError) -> ResponseReturnValue:
    message = _(
        "The form has expired or was sent from another site. Go back, reload the page "
        "and try again."
    )
    return render_template("message.html", title=_("Form not accepted"), message=message), 400


def _http_error(error: HTTPException) -> ResponseReturnValue:
    if error.response is not None or error.code is None or error.code < 400:
        return error
    titles = {
        404: _("Page not found"),
        403: _("Access denied"),
        413: _("The file is too large"),
        429: _("Please wait"),
    }
    title = titles.get(error.code, _("Something went wrong"))
    return render_template("message.html", title=title, message=""), error.code
