"""The Reports page's choice: a range of clinic days, and optionally a room and a modality."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ris.dates import LocalDateField, LocalDateInput
from scheduling.forms import BootstrapInputsMixin
from scheduling.models import Modality, Room
from scheduling.validators import validate_calendar_date

from .selectors import Filters

# Two years at most: a year against the one before.
MAX_DAYS = 731
# The page opens on the last four weeks, today included.
DEFAULT_DAYS = 28


class ReportForm(BootstrapInputsMixin, forms.Form):
    date_from = LocalDateField(label=_("From"), widget=LocalDateInput(), validators=[validate_calendar_date])
    date_to = LocalDateField(label=_("To"), widget=LocalDateInput(), validators=[validate_calendar_date])
    room = forms.ModelChoiceField(
        label=_("Room"), queryset=Room.objects.order_by("name"), required=False, empty_label=_("All rooms")
    )
    modality = forms.ChoiceField(
        label=_("Modality"), choices=[("", _("All modalities")), *Modality.choices], required=False
    )

    @classmethod
    def for_query(cls, query: Mapping[str, Any]) -> ReportForm:
        """The form of the page's address, the last four weeks filled in for the dates it leaves out."""
        today = timezone.localdate()
        defaults = {
            "date_from": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
            "date_to": today.isoformat(),
            "room": "",
            "modality": "",
        }
        return cls({**defaults, **{k: v for k, v in query.items() if k in defaults and v}})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end date is before the start date."))
        elif date_from and date_to and (date_to - date_from).days >= MAX_DAYS:
            self.add_error("date_to", _("Choose at most %(days)s days.") % {"days": MAX_DAYS})
        return cleaned

    @property
    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            date_from=data["date_from"],
            date_to=data["date_to"],
            room=data.get("room"),
            modality=data.get("modality") or "",
        )
