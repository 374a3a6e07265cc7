"""Forms of the staff console's foundation."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import current_password_field, email_field, new_password_fields


class StaffLoginForm(FlaskForm):
    email = email_field()
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("Enter your password.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


class StaffPasswordForm(FlaskForm):
    current_password = current_password_field()
    password, password_again = new_password_fields()


class ApproveForm(FlaskForm):
    customer_no = StringField(
        _l("Customer number"),
        validators=[DataRequired(_l("Enter the customer number.")), Length(max=40)],
    )


class RejectForm(FlaskForm):
    pass


class BlockForm(FlaskForm):
    reason = StringField(
        _l("Reason"), validators=[DataRequired(_l("Give a reason.")), Length(max=500)]
    )


class UnblockForm(FlaskForm):
    pass


class SearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("E-mail or customer number"), validators=[Optional(), Length(max=254)])


class NewAccountForm(FlaskForm):
    customer_no = StringField(
        _l("Customer number"),
        validators=[DataRequired(_l("Enter the customer number.")), Length(max=40)],
    )
    email = email_field(_l("Login e-mail address"))
    channel = SelectField(
        _l("Send the initial password by"),
        choices=[
            SelectChoice("letter", _l("letter")),
            SelectChoice("sms", _l("SMS")),
            SelectChoice("email", _l("e-mail")),
        ],
        validators=[DataRequired()],
    )
