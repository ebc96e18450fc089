"""The Reports page's choice: a range of clinic days, and optionally a room and a modality."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from scheduling.forms import DaysForm
from scheduling.models import Modality, Room

from .selectors import Filters

# Two years at most: a year against the one before.
MAX_DAYS = 731
# The page opens on the last four weeks, today included.
DEFAULT_DAYS = 28


class ReportForm(DaysForm):
    MAX_DAYS = MAX_DAYS
    DEFAULT_DAYS = DEFAULT_DAYS
    OTHER_FIELDS = ("room", "modality")

    room = forms.ModelChoiceField(
        label=_("Room"), queryset=Room.objects.order_by("name"), required=False, empty_label=_("All rooms")
    )
    modality = forms.ChoiceField(
        label=_("Modality"), choices=[("", _("All modalities")), *Modality.choices], required=False
    )

    @property
    def filters(self) -> Filters:
        data = self.cleaned_data
        return Filters(
            date_from=data["date_from"],
            date_to=data["date_to"],
            room=data.get("room"),
            modality=data.get("modality") or "",
        )
