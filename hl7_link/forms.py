"""The Interface page's search over the inbound message log."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from ris.dates import LocalDateField, LocalDateInput
from scheduling.forms import BootstrapInputsMixin
from scheduling.validators import validate_calendar_date

from .models import AckCode, Sender

# What a search box may hold: longer than any MRN, placer number or error phrase anyone types.
QUERY_MAX_LENGTH = 100


def _date_input() -> LocalDateInput:
    # A text box in the interface's era, not type="date": ris/dates.py says why.
    return LocalDateInput()


class MessageSearchForm(BootstrapInputsMixin, forms.Form):
    sender = forms.ModelChoiceField(
        label=_("Sender"), required=False, queryset=Sender.objects.all(), empty_label=_("Any sender")
    )
    control_id = forms.CharField(label=_("Control ID (MSH-10)"), required=False, max_length=199)
    message_type = forms.CharField(
        label=_("Type"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": _("ORM, ADT^A08…")}),
    )
    ack_code = forms.ChoiceField(
        label=_("ACK"), required=False, choices=[("", _("Any ACK")), *AckCode.choices]
    )
    date_from = LocalDateField(
        label=_("Received from"), required=False, widget=_date_input(), validators=[validate_calendar_date]
    )
    date_to = LocalDateField(
        label=_("Received to"), required=False, widget=_date_input(), validators=[validate_calendar_date]
    )
    q = forms.CharField(
        label=_("MRN, order number or error"),
        required=False,
        max_length=QUERY_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": _("HN, accession, placer number, error text")}),
    )

    def clean_message_type(self) -> str:
        # Types are upper case in MSH-9 (ORM^O01); a lower-case search means the same.
        return self.cleaned_data["message_type"].strip().upper()

    def clean_control_id(self) -> str:
        return self.cleaned_data["control_id"].strip()

    def clean_q(self) -> str:
        return self.cleaned_data["q"].strip()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned
