"""Forms of the staff console pages (CSRF on every one that changes something)."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DateTimeLocalField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from portal.customer.forms import CommaDecimalField

ANNOUNCEMENT_KINDS: list[SelectChoice] = [
    SelectChoice("outage", _l("Planned outage")),
    SelectChoice("water_quality", _l("Water not fit to drink")),
    SelectChoice("works", _l("Network works")),
    SelectChoice("info", _l("Information")),
]


class SearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(
        _l("Customer number, name, address or meter"),
        validators=[Optional(), Length(min=2, max=100)],
    )


class KeyForm(FlaskForm):
    key_hex = StringField(
        _l("New AES-128 key (32 hexadecimal digits)"),
        validators=[
            DataRequired(_l("Enter the key.")),
            Regexp(
                r"^\s*([0-9A-Fa-f]{2}[\s:-]?){15}[0-9A-Fa-f]{2}\s*$",
                message=_l("The key must be 32 hexadecimal digits."),
            ),
        ],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )

    def key_bytes(self) -> bytes:
        """The key as 16 bytes."""
        return bytes.fromhex(re.sub(r"[\s:-]", "", self.key_hex.data or ""))


class ResolveForm(FlaskForm):
    resolution = StringField(
        _l("Resolution"),
        validators=[DataRequired(_l("Say how the reading was resolved.")), Length(max=500)],
    )


class AnswerForm(FlaskForm):
    status = SelectField(
        _l("Status"),
        choices=[
            SelectChoice("in_progress", _l("in progress")),
            SelectChoice("answered", _l("answered")),
            SelectChoice("closed", _l("closed")),
        ],
    )
    answer = TextAreaField(
        _l("Answer to the customer"), validators=[Length(max=5000)], render_kw={"rows": 6}
    )


class AnnouncementForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=ANNOUNCEMENT_KINDS)
    title = StringField(
        _l("Title"), validators=[DataRequired(_l("Give a title.")), Length(max=200)]
    )
    body = TextAreaField(_l("Text"), validators=[Length(max=5000)], render_kw={"rows": 4})
    starts_at = DateTimeLocalField(
        _l("From (Warsaw time)"), validators=[InputRequired(_l("Give the start."))]
    )
    ends_at = DateTimeLocalField(
        _l("Until (Warsaw time)"), validators=[InputRequired(_l("Give the end."))]
    )
    streets = TextAreaField(
        _l("Streets concerned, one per line (e.g. ul. Wodna); empty: everybody"),
        validators=[Length(max=5000)],
        render_kw={"rows": 4},
    )

    def validate_ends_at(self, field: DateTimeLocalField) -> None:
        if self.starts_at.data and field.data and field.data <= self.starts_at.data:
            raise ValidationError(_l("The end must be after the start."))


class TariffVersionForm(FlaskForm):
    valid_from = DateField(_l("Valid from"), validators=[InputRequired(_l("Give the date."))])
    water_price = CommaDecimalField(
        _l("Water, PLN/m³ net"), places=None, validators=[InputRequired(_l("Give the price."))]
    )
    sewage_price = CommaDecimalField(
        _l("Sewage, PLN/m³ net"), places=None, validators=[InputRequired(_l("Give the price."))]
    )
    subscription = CommaDecimalField(
        _l("Subscription, PLN per month net"),
        places=None,
        validators=[InputRequired(_l("Give the fee."))],
    )


class RunForm(FlaskForm):
    label = StringField(
        _l("Period (YYYY-MM, its first month)"),
        validators=[
            DataRequired(_l("Give the period.")),
            Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", message=_l("Use the form YYYY-MM.")),
        ],
    )
    mode = SelectField(
        _l("Mode"),
        choices=[
            SelectChoice("dry", _l("dry run (nothing issued)")),
            SelectChoice("issue", _l("issue the invoices")),
        ],
    )


class AssignForm(FlaskForm):
    customer_no = StringField(
        _l("Customer number"),
        validators=[DataRequired(_l("Give the customer number.")), Length(max=100)],
    )


class IgnoreForm(FlaskForm):
    note = TextAreaField(
        _l("Why is the credit left out (e.g. to be returned to the sender)?"),
        validators=[
            DataRequired(_l("Say why the credit is ignored.")),
            Length(min=5, max=500, message=_l("Write between 5 and 500 characters.")),
        ],
        render_kw={"rows": 3},
    )
