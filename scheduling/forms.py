"""Forms of the front desk. They parse and check what a clerk typed; the rules live in the services.

A service refuses with a ValidationError keyed by the thing to fix ("start", "room", ...);
`add_service_error` puts that message next to the matching form field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import prefetch_related_objects
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ris.dates import LocalDateField, LocalDateInput

from . import rules, selectors, services
from .models import NAME_PREFIXES, Modality, Order, OrderStatus, Patient, Procedure, Room
from .services import ORDER_DETAIL_FIELDS, PATIENT_FIELDS
from .validators import validate_calendar_date

# Where a booking service's error keys belong on the booking and reschedule forms.
BOOKING_ERROR_FIELDS = {"start": "slot"}


def add_service_error(form: forms.Form, error: ValidationError, field_map: Mapping[str, str] = {}) -> None:
    """Show a service's refusal on `form`: keyed messages at their field, anything else on top."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, errors in error.error_dict.items():
        name = field_map.get(key, key)
        form.add_error(name if name in form.fields else None, errors)


def ask_confirmation(form: forms.Form, field: str, warning: ValidationError) -> None:
    """Show a warning the clerk may override, and the checkbox to override it with."""
    form.add_error(None, warning)
    form.fields[field].widget = forms.CheckboxInput()


def add_problems(form: forms.Form, problems: list[rules.Problem], field_map: Mapping[str, str] = {}) -> None:
    """Show the problems a rules check found: each at its field (through `field_map`), else on top; a
    warning with the checkbox that confirms it."""
    for problem in problems:
        error = ValidationError(problem.message, code=problem.code)
        if problem.confirm and problem.confirm in form.fields:
            ask_confirmation(form, problem.confirm, error)
            continue
        name = field_map.get(problem.field, problem.field) if problem.field else None
        form.add_error(name if name in form.fields else None, error)


def version_field() -> forms.IntegerField:
    # The record's version when the clerk opened the edit form (services.edit_conflict); empty for a
    # new record, and from a form rendered before versions existed (then nothing is checked).
    return forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


def _open_version(form: forms.ModelForm) -> None:
    if form.instance.pk is not None:
        form.initial.setdefault("version", form.instance.version)


def show_edit_conflict(form: forms.Form, conflict: services.EditConflict) -> None:
    """Show both values of each field someone else changed meanwhile, and carry their version: the
    clerk who submits again has seen the other change and saves their own values over it."""
    add_service_error(form, conflict)
    form.data = form.data.copy()
    form.data[form.add_prefix("version")] = str(conflict.version)


def check_edit_conflict(form: forms.ModelForm, values: Mapping[str, Any]) -> None:
    """In clean(): refuse saving `values` over changes made since the form was opened. The services
    check again with the row locked, for an edit saved in between."""
    version = form.cleaned_data.get("version")
    if form.instance.pk is None or version is None:
        return
    conflict = services.edit_conflict(record=form.instance, expected_version=version, values=values)
    if conflict is not None:
        show_edit_conflict(form, conflict)


def _confirm_field(label: str) -> forms.BooleanField:
    # Hidden until the service warns; then ask_confirmation turns it into a checkbox.
    return forms.BooleanField(label=label, required=False, widget=forms.HiddenInput)


def _date_input() -> LocalDateInput:
    # A text box in the interface's era, not type="date": ris/dates.py says why.
    return LocalDateInput()


def _model_field(model: type, name: str, **kwargs: Any) -> forms.Field:
    """The form field of a model field, with its label and DICOM validators."""
    return model._meta.get_field(name).formfield(**kwargs)


# --- patients -----------------------------------------------------------------------------------


class SuggestionsInput(forms.TextInput):
    """A text input with suggestions to choose from (an HTML <datalist>), anything else still typed.

    The browser's own list: reached with the arrow keys, read by screen readers as the input's
    suggestions, and no script (the site's Content-Security-Policy allows none inline).
    """

    def __init__(self, suggestions: tuple[str, ...], attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.suggestions = suggestions

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer=None) -> str:
        list_id = f"{(attrs or {}).get('id') or name}-suggestions"
        attrs = {**(attrs or {}), "list": list_id, "autocomplete": "off"}
        options = format_html_join("", '<option value="{}"></option>', ((s,) for s in self.suggestions))
        return format_html(
            '{}<datalist id="{}">{}</datalist>',
            super().render(name, value, attrs, renderer),
            list_id,
            options,
        )


class PatientForm(forms.ModelForm):
    confirm_duplicate = _confirm_field(_("Register anyway: this is a different person"))
    version = version_field()

    class Meta:
        model = Patient
        fields = PATIENT_FIELDS
        field_classes = {"birth_date": LocalDateField}
        widgets = {
            "birth_date": _date_input(),
            "address": forms.Textarea(attrs={"rows": 2}),
            "name_prefix": SuggestionsInput(NAME_PREFIXES),
            "national_id": forms.TextInput(attrs={"inputmode": "numeric", "maxlength": 13}),
            "passport_country": forms.TextInput(attrs={"maxlength": 3, "autocapitalize": "characters"}),
            "passport_number": forms.TextInput(attrs={"autocapitalize": "characters"}),
        }
        help_texts = {
            "name_prefix": _("Choose from the list (นาย, นาง, นางสาว, Mr, Mrs ...) or type another."),
            "national_id": _("13 digits, without dashes or spaces."),
            "passport_number": _("For a patient without a Thai national ID: with the passport's country."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _open_version(self)
        # A form posted without the choice (one opened before the field existed, a script) keeps the
        # record's language, Thai for a new patient, rather than failing at a field the clerk never saw.
        self.fields["preferred_language"].required = False

    def clean_preferred_language(self) -> str:
        return self.cleaned_data["preferred_language"] or self.instance.preferred_language

    def clean_passport_number(self) -> str:
        # As the passport prints it: capitals, no spaces ("aa 123 4567" is AA1234567).
        return "".join(self.cleaned_data["passport_number"].split()).upper()

    def clean_passport_country(self) -> str:
        return self.cleaned_data["passport_country"].strip().upper()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        mrn, issuer = cleaned.get("mrn"), cleaned.get("issuer")
        if mrn and issuer:
            # Said here, at the field, rather than as the model's generic unique-together message.
            taken = services.mrn_taken(mrn=mrn, issuer=issuer, exclude_pk=self.instance.pk)
            if taken is not None:
                add_service_error(self, taken)
        if national_id := cleaned.get("national_id"):
            # At the field, as the MRN: the model's own words name the constraint, not the other patient.
            taken = services.national_id_taken(national_id=national_id, exclude_pk=self.instance.pk)
            if taken is not None and self.instance.merged_into_id is None:
                add_service_error(self, taken)
        if (number := cleaned.get("passport_number")) and (country := cleaned.get("passport_country")):
            taken = services.passport_taken(
                passport_number=number, passport_country=country, exclude_pk=self.instance.pk
            )
            if taken is not None and self.instance.merged_into_id is None:
                add_service_error(self, taken)
        check_edit_conflict(self, {name: cleaned[name] for name in PATIENT_FIELDS if name in cleaned})
        return cleaned

    def patient_fields(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in PATIENT_FIELDS}


class BootstrapInputsMixin:
    """For filter forms laid out by hand in a row rather than by crispy: Bootstrap classes on inputs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.setdefault("class", css)


class PatientSearchForm(BootstrapInputsMixin, forms.Form):
    q = forms.CharField(
        label=_("MRN, name or ID"),
        required=False,
        widget=forms.TextInput(
            attrs={
                "placeholder": _("MRN, Thai or Latin name, national ID or passport"),
                "autofocus": True,
                "data-autocomplete-url": reverse_lazy("scheduling:patient_autocomplete"),
            }
        ),
    )
    birth_date = LocalDateField(label=_("Birth date"), required=False, widget=_date_input())


# --- booking ------------------------------------------------------------------------------------


class SlotField(forms.ChoiceField):
    """A start time offered as a list of free slots.

    Any HH:MM is accepted, not only the listed ones: when a listed slot has just been taken or has
    passed, the booking service then says why, which tells the clerk more than "not a valid choice".
    """

    default_error_messages = {
        "required": _("Choose a start time."),
        "invalid_time": _("Choose a start time from the list."),
    }

    def valid_value(self, value: Any) -> bool:
        return True

    def to_python(self, value: Any) -> time | None:
        value = super().to_python(value)
        if not value:
            return None
        try:
            return datetime.strptime(value, "%H:%M").time()
        except ValueError:
            raise ValidationError(self.error_messages["invalid_time"], code="invalid_time") from None


# What a booking page takes from its address (the patient page's "Book exam", the patient picker):
# who, what, where and when. Never a confirmation: a link must not tick "book anyway" for the clerk.
SLOT_QUERY_FIELDS = ("patient", "procedure", "room", "date", "slot")


class SlotFormMixin:
    """Offers the free start times of the chosen room, day and duration in the `slot` field."""

    @classmethod
    def refreshed(cls, data: Mapping[str, Any], **kwargs: Any) -> forms.Form:
        """The form again with the posted values and the free slots they select ("Show free times"
        without JavaScript): not validated, nothing booked, and no confirmation carried over."""
        initial = {
            name: data[name] for name in cls.base_fields if name in data and not name.startswith("confirm_")
        }
        return cls(initial=initial, **kwargs)

    def _peek(self, name: str) -> Any:
        """The current value of a field (posted, or initial) before full validation, or None."""
        field = self.fields[name]
        if self.is_bound:
            raw = field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
        else:
            raw = self.initial.get(name, field.initial)
        try:
            return field.clean(raw)
        except ValidationError:
            return None

    def _chosen(self, name: str) -> Any:
        """A field's value: the cleaned one once the form is validated (loaded already), else peeked."""
        if hasattr(self, "cleaned_data"):
            return self.cleaned_data.get(name)
        return self._peek(name)

    def _offer_slots(self, *, duration: Callable[[], int | None], exclude: Order | None = None) -> None:
        # Looked up when the page shows the field, not when the form is made: a booking that goes
        # through never shows them, and a form shown again after validation reuses its loaded room.
        self.fields["slot"].choices = partial(self._slot_choices, duration, exclude)

    def _slot_choices(self, duration: Callable[[], int | None], exclude: Order | None) -> list:
        if not hasattr(self, "_slot_choice_list"):
            self._slot_choice_list = self._free_slot_choices(
                room=self._chosen("room"), day=self._chosen("date"), duration=duration(), exclude=exclude
            )
        return self._slot_choice_list

    @staticmethod
    def _free_slot_choices(
        *, room: Room | None, day: date | None, duration: int | None, exclude=None
    ) -> list:
        if room is None or day is None or duration is None:
            return [("", _("Choose procedure, room and date first"))]
        slots = selectors.room_free_slots(room=room, day=day, duration_minutes=duration, exclude=exclude)
        if not slots:
            return [("", _("No free time on this day"))]
        return [("", "---------")] + [
            (hhmm, hhmm) for hhmm in (f"{timezone.localtime(s):%H:%M}" for s in slots)
        ]

    def _start(self, cleaned: dict[str, Any]) -> None:
        day, slot = cleaned.get("date"), cleaned.get("slot")
        if day is not None and slot is not None:
            cleaned["start"] = timezone.make_aware(datetime.combine(day, slot))


class BookingForm(SlotFormMixin, forms.Form):
    patient = forms.ModelChoiceField(
        queryset=Patient.objects.all(),
        widget=forms.HiddenInput,
        error_messages={"required": _("Choose the patient first.")},
    )
    procedure = forms.ModelChoiceField(label=_("Procedure"), queryset=Procedure.objects.filter(active=True))
    room = forms.ModelChoiceField(label=_("Room"), queryset=Room.objects.filter(active=True))
    date = LocalDateField(label=_("Date"), widget=_date_input(), validators=[validate_calendar_date])
    slot = SlotField(label=_("Start time"))
    priority = _model_field(Order, "priority")
    referring_physician = _model_field(Order, "referring_physician")
    requesting_physician = _model_field(Order, "requesting_physician")
    reason = _model_field(Order, "reason")
    notes = _model_field(Order, "notes", widget=forms.Textarea(attrs={"rows": 2}))
    confirm_patient_overlap = _confirm_field(_("Book anyway: the patient has an overlapping exam"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound and self.chosen_patient is not None:
            # The clerk arrives here from the patient: start typing at the first thing to choose.
            self.fields["procedure"].widget.attrs["autofocus"] = True
        self._offer_slots(duration=self._duration)

    @cached_property
    def chosen_patient(self) -> Patient | None:
        return self._chosen("patient")

    def _duration(self) -> int | None:
        procedure = self._chosen("procedure")
        return procedure.default_duration if procedure else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("room") is not None:
            # Read once for the rules check here, the booking service's check and the free slots.
            prefetch_related_objects([cleaned["room"]], "opening_hours")
        self._start(cleaned)
        if not self.errors and "start" in cleaned:
            problems = rules.check_booking(
                patient=cleaned["patient"],
                procedure=cleaned["procedure"],
                room=cleaned["room"],
                start=cleaned["start"],
                duration_minutes=cleaned["procedure"].default_duration,
                confirm_patient_overlap=cleaned["confirm_patient_overlap"],
            )
            add_problems(self, problems, BOOKING_ERROR_FIELDS)
        return cleaned

    def booking_fields(self) -> dict[str, Any]:
        names = ("patient", "procedure", "room", "start", "confirm_patient_overlap", *ORDER_DETAIL_FIELDS)
        return {name: self.cleaned_data[name] for name in names}


class RescheduleForm(SlotFormMixin, forms.Form):
    room = forms.ModelChoiceField(label=_("Room"), queryset=Room.objects.filter(active=True))
    date = LocalDateField(label=_("Date"), widget=_date_input(), validators=[validate_calendar_date])
    slot = SlotField(label=_("Start time"))
    confirm_patient_overlap = _confirm_field(_("Book anyway: the patient has an overlapping exam"))

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order
        self._offer_slots(duration=lambda: order.duration_minutes, exclude=order)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self._start(cleaned)
        if not self.errors and "start" in cleaned:
            add_problems(self, self._problems(cleaned), BOOKING_ERROR_FIELDS)
        return cleaned

    def _problems(self, cleaned: dict[str, Any]) -> list[rules.Problem]:
        return rules.check_reschedule(
            order=self.order,
            start=cleaned["start"],
            room=cleaned["room"],
            confirm_patient_overlap=cleaned["confirm_patient_overlap"],
        )


class ScheduleForm(RescheduleForm):
    """The booking of a requested order (the To schedule list's "Book"): a room of its procedure's
    modality, a day and a free start time, held to the rules of a booking."""

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        super().__init__(*args, order=order, **kwargs)
        self.fields["room"].queryset = Room.objects.filter(active=True, modality=order.procedure.modality)

    def _problems(self, cleaned: dict[str, Any]) -> list[rules.Problem]:
        return rules.check_schedule(
            order=self.order,
            room=cleaned["room"],
            start=cleaned["start"],
            confirm_patient_overlap=cleaned["confirm_patient_overlap"],
        )


class SlotQueryForm(forms.Form):
    """The query of the free-slots endpoint the booking page calls when room, date or procedure change."""

    room = forms.ModelChoiceField(queryset=Room.objects.all())
    date = LocalDateField(validators=[validate_calendar_date])
    procedure = forms.ModelChoiceField(queryset=Procedure.objects.all())
    order = forms.ModelChoiceField(queryset=Order.objects.all(), required=False)


# --- orders -------------------------------------------------------------------------------------


class OrderDetailsForm(forms.ModelForm):
    version = version_field()

    class Meta:
        model = Order
        fields = ORDER_DETAIL_FIELDS
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _open_version(self)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk is not None:
            add_problems(self, rules.check_editable(order=self.instance))
            check_edit_conflict(
                self, {name: cleaned[name] for name in ORDER_DETAIL_FIELDS if name in cleaned}
            )
        return cleaned

    def detail_fields(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in ORDER_DETAIL_FIELDS}


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for cancellation"),
        max_length=rules.REASON_MAX,
        error_messages={"required": _("Give a reason for the cancellation.")},
    )

    def __init__(self, *args: Any, order: Order | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order = order  # None on the day board, which renders one form for every block

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.order is not None and not self.errors:
            problems = rules.check_transition(
                order=self.order, to=OrderStatus.CANCELLED, reason=cleaned["reason"]
            )
            add_problems(self, problems)
        return cleaned


class OrderFilterForm(BootstrapInputsMixin, forms.Form):
    date_from = LocalDateField(
        label=_("From"), required=False, widget=_date_input(), validators=[validate_calendar_date]
    )
    date_to = LocalDateField(
        label=_("To"), required=False, widget=_date_input(), validators=[validate_calendar_date]
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any status")), *OrderStatus.choices]
    )
    modality = forms.ChoiceField(
        label=_("Modality"), required=False, choices=[("", _("Any modality")), *Modality.choices]
    )
    room = forms.ModelChoiceField(
        label=_("Room"), required=False, queryset=Room.objects.all(), empty_label=_("Any room")
    )
    sort = forms.ChoiceField(
        label=_("Order by"),
        required=False,
        choices=[("start", _("Earliest first")), ("-start", _("Latest first"))],
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned


# --- no-shows -----------------------------------------------------------------------------------

# The widest span the no-show counts cover at once: a quarter, a small table.
NO_SHOW_COUNTS_MAX_DAYS = 92


class DaysForm(BootstrapInputsMixin, forms.Form):
    """A range of clinic days, From and To, at most MAX_DAYS; the page's address fills it in, the
    last DEFAULT_DAYS up to today for what it leaves out. The To call back page's counts, the Reports."""

    MAX_DAYS = 92
    DEFAULT_DAYS = 7
    # Further fields of a subclass that the address may set (empty by default).
    OTHER_FIELDS: tuple[str, ...] = ()

    date_from = LocalDateField(label=_("From"), widget=_date_input(), validators=[validate_calendar_date])
    date_to = LocalDateField(label=_("To"), widget=_date_input(), validators=[validate_calendar_date])

    @classmethod
    def for_query(cls, query: Mapping[str, Any]):
        today = timezone.localdate()
        defaults = {
            "date_from": (today - timedelta(days=cls.DEFAULT_DAYS - 1)).isoformat(),
            "date_to": today.isoformat(),
            **dict.fromkeys(cls.OTHER_FIELDS, ""),
        }
        return cls({**defaults, **{k: v for k, v in query.items() if k in defaults and v}})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end date is before the start date."))
        elif date_from and date_to and (date_to - date_from).days >= self.MAX_DAYS:
            self.add_error("date_to", _("Choose at most %(days)s days.") % {"days": self.MAX_DAYS})
        return cleaned


class NoShowCountsForm(DaysForm):
    """The days the "To call back" page counts no-shows over: the last week unless the clerk chooses."""

    MAX_DAYS = NO_SHOW_COUNTS_MAX_DAYS
