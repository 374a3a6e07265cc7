"""The customer pages' forms (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    EmailField,
    Form,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import TextInput

from billing_engine.periods import warsaw_day

COMPLAINT_KINDS: list[SelectChoice] = [
    SelectChoice("invoice_dispute", _l("Complaint about an invoice")),
    SelectChoice("reading_dispute", _l("Complaint about a reading")),
    SelectChoice("low_pressure", _l("Low water pressure")),
    SelectChoice("dirty_water", _l("Dirty water")),
    SelectChoice("leaking_meter", _l("Leaking meter")),
    SelectChoice("other", _l("Other matter")),
]
NOTICE_KINDS: list[tuple[str, Any]] = [
    ("invoice_issued", _l("New e-invoice")),
    ("payment_reminder", _l("Approaching due date")),
    ("contract_ending", _l("End of the contract")),
    ("announcement", _l("Network announcements (outages, water quality)")),
]


class CommaDecimalField(DecimalField):
    """A decimal field that also takes the Polish decimal comma (``123,456``); a text input,
    because a browser's number input refuses the comma in some locales."""

    widget = TextInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Read the submitted text with a comma or a dot as the decimal mark."""
        cleaned = [str(v).strip().replace(" ", "").replace(",", ".") for v in valuelist]
        super().process_formdata(cleaned)


def _three_decimals(form: Form, field: DecimalField) -> None:
    value = field.data
    if isinstance(value, Decimal) and value != value.quantize(Decimal("0.001")):
        raise ValidationError(_l("Give the reading with at most three decimals (litres)."))


def _not_future(form: Form, field: DateField) -> None:
    if field.data and field.data > warsaw_day(datetime.now(UTC)):
        raise ValidationError(_l("The date cannot be in the future."))


class ReadingForm(FlaskForm):
    meter_id = SelectField(_l("Meter"), validators=[DataRequired(_l("Choose a meter."))])
    read_on = DateField(
        _l("Date of the reading"),
        validators=[InputRequired(_l("Give the date of the reading.")), _not_future],
    )
    value_m3 = CommaDecimalField(
        _l("Meter reading (m³, black digits; red ones after the comma)"),
        places=None,
        validators=[
            InputRequired(_l("Enter the reading as a number, e.g. 123,456.")),
            NumberRange(min=0, max=99_999_999, message=_l("The reading must be 0 or more.")),
            _three_decimals,
        ],
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )


class ComplaintForm(FlaskForm):
    kind = SelectField(_l("What is it about?"), choices=COMPLAINT_KINDS)
    subject = StringField(
        _l("Subject"), validators=[DataRequired(_l("Give a short subject.")), Length(max=200)]
    )
    description = TextAreaField(
        _l("Description"),
        validators=[DataRequired(_l("Describe the matter.")), Length(max=5000)],
        render_kw={"rows": 6},
    )
    invoice_id = SelectField(_l("Invoice (for an invoice complaint)"), validators=[Optional()])
    meter_id = SelectField(_l("Meter (for a reading or meter matter)"), validators=[Optional()])
    attachments = MultipleFileField(
        _l("Attachments (PDF, JPEG or PNG, up to 5 MB each)"),
        render_kw={"accept": ".pdf,.jpg,.jpeg,.png"},
    )


class ContactForm(FlaskForm):
    email = EmailField(
        _l("Contact e-mail"),
        validators=[
            Optional(),
            Length(max=254),
            Email(_l("Enter a valid e-mail address."), check_deliverability=False),
        ],
    )
    phone = StringField(
        _l("Mobile phone (for SMS)"),
        validators=[
            Optional(),
            Regexp(r"^\+?[0-9 ]{9,15}$", message=_l("Enter a phone number, e.g. +48 500 100 200.")),
        ],
        render_kw={"inputmode": "tel", "autocomplete": "tel"},
    )


class ChannelsForm(Form):
    by_email = BooleanField(_l("e-mail"))
    by_sms = BooleanField(_l("SMS"))


class PreferencesForm(FlaskForm):
    invoice_issued = FormField(ChannelsForm, label=NOTICE_KINDS[0][1])
    payment_reminder = FormField(ChannelsForm, label=NOTICE_KINDS[1][1])
    contract_ending = FormField(ChannelsForm, label=NOTICE_KINDS[2][1])
    announcement = FormField(ChannelsForm, label=NOTICE_KINDS[3][1])


class RemoteReadForm(FlaskForm):
    """Ask for a remote reading now (the button carries only the CSRF token)."""
