"""Form fields and validators shared by the customer and staff forms (Flask-WTF, CSRF on)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from wtforms import EmailField, Field, Form, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from portal.passwords import PasswordPolicy

PROBLEM_MESSAGES: dict[str, Any] = {
    "too_short": _l("The password is too short."),
    "too_long": _l("The password is too long."),
    "digit": _l("The password needs a digit."),
    "upper": _l("The password needs an upper-case letter."),
    "lower": _l("The password needs a lower-case letter."),
    "special": _l("The password needs a special character."),
    "common": _l("This password is too common; choose another."),
    "email": _l("The password must not contain your e-mail address."),
}


class StrongPassword:
    """Validator: the password rule of the terms plus the common-password check."""

    def __init__(self, email_field: str | None = "email") -> None:
        self.email_field = email_field

    def __call__(self, form: Form, field: Field) -> None:
        policy: PasswordPolicy = current_app.extensions["meterflow.password_policy"]
        email = ""
        if self.email_field and self.email_field in form:
            email = str(form[self.email_field].data or "")
        problems = policy.problems(str(field.data or ""), email)
        if problems:
            raise ValidationError(" ".join(str(PROBLEM_MESSAGES[p]) for p in problems))


def email_field(label: Any = None) -> EmailField:
    """An e-mail field: required, syntax-checked offline, at most 254 characters."""
    return EmailField(
        label or _l("E-mail address"),
        validators=[
            DataRequired(_l("Enter your e-mail address.")),
            Length(max=254),
            Email(_l("Enter a valid e-mail address."), check_deliverability=False),
        ],
        render_kw={"autocomplete": "email", "inputmode": "email"},
    )


def new_password_fields() -> tuple[PasswordField, PasswordField]:
    """The new password and its repetition."""
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(_l("Enter a password.")), StrongPassword()],
        render_kw={"autocomplete": "new-password"},
    )
    again = PasswordField(
        _l("Repeat the new password"),
        validators=[
            DataRequired(_l("Repeat the password.")),
            EqualTo("password", _l("The passwords differ.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    return password, again


def current_password_field() -> PasswordField:
    """The current password, asked again before a sensitive change."""
    return PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


def password_rule() -> str:
    """The password rule in words, as configured."""
    from flask_babel import gettext as _

    policy: PasswordPolicy = current_app.extensions["meterflow.password_policy"]
    text = _("Password: %(min)s-%(max)s characters.", min=policy.min_length, max=policy.max_length)
    names = {
        "digit": _("a digit"),
        "upper": _("an upper-case letter"),
        "lower": _("a lower-case letter"),
        "special": _("a special character"),
    }
    needed = [str(names[c]) for c in ("digit", "upper", "lower", "special") if c in policy.classes]
    if needed:
        text += " " + _("It must contain %(classes)s.", classes=", ".join(needed))
    return str(text)


def add_error(field: Field, message: str) -> None:
    """Attach ``message`` to ``field`` after validation (e.g. a wrong password)."""
    errors = field.errors
    assert isinstance(errors, list)
    errors.append(message)
