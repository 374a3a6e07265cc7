"""The customer's account forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from portal.forms import current_password_field, email_field, new_password_fields

_NUMBER = Regexp(r"^[A-Za-z0-9/\-. ]+$", message=_l("Use letters, digits, / - . only."))


class LoginForm(FlaskForm):
    email = email_field()
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("Enter your password.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


class RegisterForm(FlaskForm):
    email = email_field()
    password, password_again = new_password_fields()
    customer_no = StringField(
        _l("Customer number"),
        validators=[DataRequired(_l("Enter your customer number.")), Length(max=40), _NUMBER],
    )
    invoice_no = StringField(
        _l("Number of a recent invoice"),
        validators=[
            DataRequired(_l("Enter the number of a recent invoice.")),
            Length(max=40),
            _NUMBER,
        ],
    )
    accept_terms = BooleanField(
        _l("I accept the terms of the e-office"),
        validators=[DataRequired(_l("You must accept the terms."))],
    )
    accept_privacy = BooleanField(
        _l("I have read the privacy policy"),
        validators=[DataRequired(_l("You must accept the privacy policy."))],
    )


class ForgotForm(FlaskForm):
    email = email_field()


class ResetForm(FlaskForm):
    password, password_again = new_password_fields()


class ChangePasswordForm(FlaskForm):
    current_password = current_password_field()
    password, password_again = new_password_fields()


class ChangeEmailForm(FlaskForm):
    current_password = current_password_field()
    email = email_field(_l("New e-mail address"))


class DeleteAccountForm(FlaskForm):
    current_password = current_password_field()
    confirm = BooleanField(
        _l("I understand that my e-office account will be deleted"),
        validators=[DataRequired(_l("Confirm the deletion."))],
    )


class ResendForm(FlaskForm):
    email = email_field()
