"""The Unmatched studies page's forms: link a study to an order, mark it as not ours, find a patient's orders.

They validate and convert; pacs_link.services decides (a cancelled order, one with another study) and its
refusals are shown at the field by the view.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ris.dates import date_format
from scheduling.forms import BootstrapInputsMixin
from scheduling.models import Order

# As long as a DICOM AccessionNumber (SH 16) or a PatientID (LO 64) can be.
ACCESSION_MAX = 16
PATIENT_ID_MAX = 64
REASON_MAX = 200


class StudyLinkForm(forms.Form):
    """Either one of the candidate orders offered (the patient's open orders), or an accession number
    (which wins when both are given: it was typed on purpose). Only the orders offered are accepted
    from the radio, so a forged id links nothing the clerk was not shown."""

    order = forms.ModelChoiceField(
        label=_("Order"),
        required=False,
        queryset=Order.objects.none(),
        widget=forms.RadioSelect,
        empty_label=None,
    )
    accession_number = forms.CharField(
        label=_("or the order's accession number"), required=False, max_length=ACCESSION_MAX
    )

    def __init__(self, *args: Any, candidates: list[Order] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["order"]
        field.queryset = Order.objects.filter(pk__in=[order.pk for order in candidates])
        # The radio labels from the rows already loaded, in their order (latest first).
        field.choices = [(order.pk, order_label(order)) for order in candidates]
        if not candidates:
            field.widget = forms.HiddenInput()

    def clean_accession_number(self) -> str:
        return self.cleaned_data["accession_number"].strip()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        accession = cleaned.get("accession_number")
        if self.errors:
            return cleaned
        if accession:
            found = Order.objects.filter(accession_number=accession).first()
            if found is None:
                self.add_error(
                    "accession_number",
                    forms.ValidationError(
                        _("No order has the accession number %(accession)s."),
                        code="unknown_accession",
                        params={"accession": accession},
                    ),
                )
            else:
                cleaned["order"] = found
        elif cleaned.get("order") is None:
            self.add_error(
                "accession_number" if isinstance(self.fields["order"].widget, forms.HiddenInput) else "order",
                forms.ValidationError(_("Choose an order or type its accession number."), code="required"),
            )
        return cleaned


def order_label(order: Order) -> str:
    """One line per candidate: accession, procedure, when, status, patient."""
    when = order.scheduled_start or order.requested_start
    parts = [
        order.accession_number,
        order.procedure.code_meaning,
        date_format(timezone.localtime(when), "SHORT_DATETIME_FORMAT") if when else str(_("not booked")),
        order.get_status_display(),
        str(order.patient),
    ]
    return " · ".join(parts)


class NotOursForm(forms.Form):
    reason = forms.CharField(
        label=_("Why it is not ours"),
        max_length=REASON_MAX,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("Another hospital's study, a test image…")}),
    )

    def clean_reason(self) -> str:
        return self.cleaned_data["reason"].strip()


class PatientOrdersForm(BootstrapInputsMixin, forms.Form):
    """Find the orders of another patient than the one the study names (a wrong PatientID typed at
    the modality)."""

    mrn = forms.CharField(
        label=_("Orders of the patient with MRN"), required=False, max_length=PATIENT_ID_MAX
    )

    def clean_mrn(self) -> str:
        return self.cleaned_data["mrn"].strip()
