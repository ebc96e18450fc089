from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ris.dates import LocalDateField
from scheduling.models import Room
from scheduling.validators import validate_calendar_date

from .query import query_targets


class ModalityQueryForm(forms.Form):
    room = forms.ModelChoiceField(
        label=_("Room"), queryset=Room.objects.filter(active=True), empty_label=None
    )
    # Typed in the interface's era (ris/dates.py); the query sent to the worklist server is C.E.
    day = LocalDateField(label=_("Date"), required=False, validators=[validate_calendar_date])
    target = forms.ChoiceField(label=_("Worklist server"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(t.key, t.label) for t in query_targets().values()]
        self.fields["day"].initial = timezone.localdate()
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", css)

    def clean_day(self):
        return self.cleaned_data["day"] or timezone.localdate()
