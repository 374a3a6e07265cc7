"""Polish first, English second: Flask-Babel with catalogues compiled from the shipped .po files.

The .po files in ``portal/translations`` are the source; each app compiles them into
``<data_dir>/translations`` when a .po is newer than its .mo (atomic replace, so gunicorn
workers starting together never read half a file). Message ids are English; update the
catalogue with ``pybabel extract -F portal/babel.cfg -k _l -o /tmp/messages.pot .`` and
``pybabel update -i /tmp/messages.pot -d portal/translations``.
"""

from __future__ import annotations

import io
import os
import tempfile
from importlib import resources
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations
from flask import Blueprint, Flask, g, redirect, request, session, url_for
from flask_babel import Babel, get_translations
from werkzeug.wrappers import Response

from portal.security import safe_next

LANGUAGES: tuple[str, ...] = ("pl", "en")
DEFAULT_LANGUAGE = "pl"
bp = Blueprint("i18n", __name__)


def init_app(app: Flask, data_dir: Path) -> None:
    """Compile the catalogues into ``data_dir`` and install Flask-Babel on ``app``."""
    target = data_dir / "translations"
    compile_catalogues(target)
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LANGUAGE
    app.config["BABEL_DEFAULT_TIMEZONE"] = "Europe/Warsaw"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    Babel(app, locale_selector=current_language)
    # Templates call gettext dozens of times a page; Flask-Babel looks the catalogue up anew
    # on every call, so the request's catalogue is kept on ``g`` (the language of a request
    # never changes while it renders).
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        newstyle=True,
    )
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = current_language
    app.register_blueprint(bp)


def current_language() -> str:
    """Return the language of this request: the visitor's choice, else Polish."""
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def request_translations() -> NullTranslations:
    """The catalogue of this request's language (looked up once per request)."""
    found: NullTranslations | None = g.get("_mf_translations")
    if found is None:
        found = g._mf_translations = get_translations()
    return found


def compile_catalogues(target: Path) -> list[Path]:
    """Compile every shipped .po newer than its .mo under ``target``; return what was written."""
    written: list[Path] = []
    source = resources.files("portal").joinpath("translations")
    for language in LANGUAGES:
        po = source.joinpath(language, "LC_MESSAGES", "messages.po")
        if not po.is_file():
            continue
        mo = target / language / "LC_MESSAGES" / "messages.mo"
        po_text = po.read_bytes()
        if mo.exists() and mo.stat().st_mtime >= Path(str(po)).stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        catalog = read_po(io.BytesIO(po_text), locale=language)
        fd, tmp = tempfile.mkstemp(dir=mo.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog)
        os.replace(tmp, mo)
        written.append(mo)
    return written


@bp.post("/lang/<code>")
def switch_language(code: str) -> Response:
    """Remember the visitor's language and go back where they were."""
    if code in LANGUAGES:
        session["lang"] = code
    target = safe_next(request.form.get("next")) or url_for("auth.login")
    return redirect(target)
