"""Every form, driven directly: any input is either accepted, and then exports, or refused at a field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.forms import modelform_factory
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from mwl_server.forms import ModalityQueryForm
from scheduling.forms import (
    PATIENT_FIELDS,
    BookingForm,
    CancelForm,
    OrderDetailsForm,
    OrderFilterForm,
    PatientForm,
    PatientSearchForm,
    RescheduleForm,
    SlotQueryForm,
)
from scheduling.models import CharacterSet, Modality, Order, Procedure, Room
from tests.factories import OrderFactory

from .helpers import (
    ae_titles,
    assert_exportable,
    assert_messages_at_fields,
    counted,
    date_strings,
    future_date_strings,
    ids,
    texts,
)

pytestmark = pytest.mark.django_db

# Every free-text field of the patient form (the form's own list, less its dates and choices).
PATIENT_TEXT_FIELDS = tuple(
    name for name in PATIENT_FIELDS if name not in ("birth_date", "sex", "weight_kg", "pregnancy_status")
)


def valid_patient() -> dict[str, str]:
    return {
        "mrn": "HN900001",
        "issuer": "RIS",
        "family_name": "ใจดี",
        "given_name": "สมชาย",
        "romanized_family_name": "Jaidee",
        "romanized_given_name": "Somchai",
        "birth_date": "1980-05-17",
        "sex": "M",
    }


def patient_changes() -> st.SearchStrategy[dict[str, str]]:
    """A valid patient with one to four fields replaced by anything."""
    return st.fixed_dictionaries(
        {},
        optional={
            **{name: texts() for name in PATIENT_TEXT_FIELDS},
            "birth_date": st.one_of(date_strings(), future_date_strings()),
            "sex": st.one_of(st.sampled_from(["", "F", "M", "O", "X", "f"]), texts(3)),
            "weight_kg": st.one_of(
                st.decimals(allow_nan=True, allow_infinity=True).map(str),
                st.sampled_from(["0", "0.05", "0.1", "500", "500.1", "72.55", "1e3", "-5", "NaN", "inf"]),
                texts(8),
            ),
            "pregnancy_status": st.one_of(st.sampled_from(["", "1", "2", "3", "4", "5", "0"]), texts(3)),
        },
    ).filter(lambda d: 1 <= len(d) <= 4)


def all_names_in_one_group() -> st.SearchStrategy[dict[str, str]]:
    """Every name part filled at once: the parts are checked one by one, DICOM counts the whole group."""
    part = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzก"), min_size=1, max_size=64)
    return st.fixed_dictionaries(
        {name: part for name in ("name_prefix", "given_name", "middle_name", "family_name", "name_suffix")}
    )


NAME_PARTS = {"name_prefix", "given_name", "middle_name", "family_name", "name_suffix"}
ROMANISED_PARTS = {"romanized_given_name", "romanized_middle_name", "romanized_family_name"}
PASSPORT_PARTS = {"passport_number", "passport_country"}


def name_group_fields(changes) -> set[str]:
    """Where a name too long as a whole is reported: at the family name of the group. And where a
    passport number without its country (or the other way round) is: at the one missing."""
    fields = set()
    if NAME_PARTS & set(changes):
        fields |= {"family_name", "romanized_family_name"}  # prefix and suffix count in both groups
    if ROMANISED_PARTS & set(changes):
        fields.add("romanized_family_name")
    if PASSPORT_PARTS & set(changes):
        fields |= PASSPORT_PARTS  # a number needs its country and a country its number
    return fields


def _check_patient_form(changes, instance=None) -> None:
    form = PatientForm({**valid_patient(), **changes}, instance=instance)
    if form.is_valid():
        patient = form.save(commit=False)
        assert_exportable(
            patient=patient,
            room=Room(name="CT 1", ae_title="CT01", modality="CT"),
            procedure=Procedure(code_value="CT1", code_meaning="CT Head", modality="CT"),
        )
    else:
        assert_messages_at_fields(form)
        assert set(form.errors) <= {*changes, *name_group_fields(changes), "__all__"}, (changes, form.errors)


@given(changes=patient_changes())
@counted
def test_patient_form_accepts_only_what_exports(changes):
    _check_patient_form(changes)


@given(changes=all_names_in_one_group())
@counted
def test_patient_form_counts_the_whole_name_group(changes):
    _check_patient_form(changes)


@given(changes=patient_changes())
@counted
def test_patient_edit_form_accepts_only_what_exports(patient, changes):
    # As saved: validating a form writes its values onto the instance, and the fields with a default
    # that an example leaves out of its data keep what the example before put there.
    patient.refresh_from_db()
    _check_patient_form(changes, instance=patient)


@given(birth_date=future_date_strings())
@counted
def test_a_birth_date_in_the_future_is_refused(birth_date):
    form = PatientForm({**valid_patient(), "birth_date": birth_date})

    assert not form.is_valid()
    assert form.errors["birth_date"]


@given(
    family=texts(70),
    given_name=texts(70),
    middle=texts(70),
    charset=st.sampled_from(CharacterSet.values),
)
@counted
def test_a_romanised_name_the_form_accepts_exports_to_a_latin1_station(family, given_name, middle, charset):
    changes = {
        "romanized_family_name": family,
        "romanized_given_name": given_name,
        "romanized_middle_name": middle,
    }
    form = PatientForm({**valid_patient(), "mrn": "HN1", "issuer": "RIS", **changes})
    if not form.is_valid():
        assert_messages_at_fields(form)
        assert set(form.errors) <= {*changes, *name_group_fields(changes), "__all__"}
        return
    patient = form.save(commit=False)
    if patient.has_romanized_name:
        assert_exportable(
            patient=patient,
            room=Room(name="X", ae_title="X1", modality="CT", worklist_charset=CharacterSet.LATIN1),
            procedure=Procedure(code_value="CT1", code_meaning="CT Head", modality="CT"),
        )


def booking_changes(patient, procedure, room) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "patient": ids(),
            "procedure": ids(),
            "room": ids(),
            "date": date_strings(),
            "slot": st.one_of(
                st.sampled_from(["", "09:00", "24:00", "9:5", "23:59", "00:00", "9 o'clock", "09:00:00"]),
                st.times().map(lambda t: f"{t:%H:%M}"),
                texts(8),
            ),
            "priority": st.one_of(st.sampled_from(["STAT", "ROUTINE", "stat", ""]), texts(10)),
            "referring_physician": texts(),
            "requesting_physician": texts(),
            "reason": texts(),
            "notes": texts(300),
            "confirm_patient_overlap": st.sampled_from(["", "on", "False", "True", "garbage"]),
        },
    )


def valid_booking(patient, procedure, room) -> dict[str, str]:
    return {
        "patient": str(patient.pk),
        "procedure": str(procedure.pk),
        "room": str(room.pk),
        "date": (timezone.localdate() + timedelta(days=1)).isoformat(),
        "slot": "09:00",
        "priority": "ROUTINE",
    }


@given(data=st.data())
@counted
def test_booking_form_refuses_at_a_field(patient, procedure, room, data):
    changes = data.draw(booking_changes(patient, procedure, room))
    form = BookingForm({**valid_booking(patient, procedure, room), **changes})
    # A valid form's start is not in the past (the rules refuse it at the start time).
    if form.is_valid():
        assert form.cleaned_data["start"] >= timezone.now()
        order = Order(
            accession_number="26010100001",
            requested_procedure_id="26010100001",
            sps_id="26010100001S1",
            study_instance_uid="2.25.1",
            scheduled_start=form.cleaned_data["start"],
            duration_minutes=15,
            **{
                k: form.cleaned_data[k]
                for k in (
                    "patient",
                    "procedure",
                    "room",
                    "priority",
                    "referring_physician",
                    "requesting_physician",
                    "reason",
                )
            },
        )
        assert_exportable(order=order)
    elif not form.is_valid():
        assert_messages_at_fields(form)
        # The date and the start time make one start: a date that puts the exam in the past, or out
        # of the room's hours, is refused at the start time (the field the clerk changes to fix it).
        companions = {"slot"} if "date" in changes else set()
        assert set(form.errors) <= {*changes, *companions, "__all__"}, (changes, form.errors)


@given(room_id=ids(), day=date_strings(), slot=texts(8))
@counted
def test_reschedule_form_refuses_at_a_field(patient, procedure, room, user, tomorrow_at, room_id, day, slot):
    order = OrderFactory.build(patient=patient, procedure=procedure, room=room, booked_by=user)
    form = RescheduleForm({"room": room_id, "date": day, "slot": slot}, order=order)
    if not form.is_valid():
        assert_messages_at_fields(form)


@given(reason=texts(300))
@counted
def test_cancel_form_refuses_at_the_reason(reason):
    form = CancelForm({"reason": reason})
    if form.is_valid():
        assert 0 < len(form.cleaned_data["reason"]) <= 200
    else:
        assert set(form.errors) == {"reason"}
        assert_messages_at_fields(form)


@given(
    changes=st.fixed_dictionaries(
        {},
        optional={
            "priority": st.one_of(st.sampled_from(["STAT", "HIGH", "LOW", "", "stat"]), texts(10)),
            "referring_physician": texts(),
            "requesting_physician": texts(),
            "reason": texts(),
            "notes": texts(500),
        },
    )
)
@counted
def test_order_details_form_accepts_only_what_exports(patient, procedure, room, user, changes):
    order = OrderFactory.build(patient=patient, procedure=procedure, room=room, booked_by=user)
    form = OrderDetailsForm({"priority": "ROUTINE", **changes}, instance=order)
    if form.is_valid():
        assert_exportable(order=form.save(commit=False))
    else:
        assert_messages_at_fields(form)
        assert set(form.errors) <= {*changes, "__all__"}


@given(
    query=st.fixed_dictionaries(
        {},
        optional={
            "date_from": date_strings(),
            "date_to": date_strings(),
            "status": texts(12),
            "modality": st.one_of(st.sampled_from(Modality.values), texts(4)),
            "room": ids(),
            "sort": st.one_of(st.sampled_from(["start", "-start"]), texts(6)),
        },
    )
)
@counted
def test_filter_forms_refuse_at_a_field(query):
    for form in (OrderFilterForm(query), PatientSearchForm({"q": query.get("status", ""), **query})):
        if not form.is_valid():
            assert_messages_at_fields(form)


@given(room=ids(), day=date_strings(), procedure=ids(), order=ids())
@counted
def test_slot_query_form_refuses_at_a_field(room, day, procedure, order):
    form = SlotQueryForm({"room": room, "date": day, "procedure": procedure, "order": order})
    if not form.is_valid():
        assert_messages_at_fields(form)


@given(room=ids(), day=date_strings(), target=texts(12))
@counted
def test_modality_query_form_refuses_at_a_field(room, day, target):
    form = ModalityQueryForm({"room": room, "day": day, "target": target})
    if not form.is_valid():
        assert_messages_at_fields(form)


RoomForm = modelform_factory(Room, fields="__all__")
ProcedureForm = modelform_factory(Procedure, fields="__all__")


# Letters that one station character set holds and another does not.
OTHER_SCRIPTS = ["ห้อง 1", "Salle é", "王", "Zoë", "ตึก ก"]


def room_data() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {
            "name": st.one_of(st.just("CT 9"), texts(70)),
            "modality": st.one_of(st.just("CT"), texts(4)),
            "ae_title": ae_titles(),
            "station_name": st.one_of(st.just(""), st.sampled_from(OTHER_SCRIPTS), texts(20)),
            "location": st.one_of(st.just(""), st.sampled_from(OTHER_SCRIPTS), texts(20)),
            "worklist_charset": st.one_of(st.sampled_from(CharacterSet.values), texts(12)),
            "called_ae_title": st.one_of(st.just(""), ae_titles()),
            "active": st.sampled_from(["on", ""]),
        }
    )


@given(data=room_data())
@counted
def test_room_form_accepts_only_what_exports(patient, procedure, data):
    form = RoomForm(data)
    if form.is_valid():
        procedure.modality = form.cleaned_data["modality"]
        assert_exportable(
            patient=patient.__class__(
                mrn="HN1", issuer="RIS", family_name="Jaidee", birth_date=patient.birth_date
            ),
            procedure=procedure,
            room=form.save(commit=False),
        )
    else:
        assert_messages_at_fields(form)


def procedure_data() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {
            "code_value": st.one_of(st.just("CT9"), texts(20)),
            "coding_scheme": st.one_of(st.just("RIS"), texts(20)),
            "code_meaning": st.one_of(st.just("CT Chest"), texts(70)),
            "modality": st.one_of(st.just("CT"), texts(4)),
            "default_duration": st.one_of(st.integers(-(2**64), 2**64).map(str), texts(5)),
            "body_part": st.one_of(st.just(""), texts(20)),
            "instructions_th": texts(200),
            "instructions_en": texts(200),
            "active": st.sampled_from(["on", ""]),
        }
    )


@given(data=procedure_data())
@counted
def test_procedure_form_accepts_only_what_exports(patient, room, data):
    form = ProcedureForm(data)
    if form.is_valid():
        procedure = form.save(commit=False)
        room.modality = procedure.modality
        assert_exportable(patient=patient, procedure=procedure, room=room)
    else:
        assert_messages_at_fields(form)
