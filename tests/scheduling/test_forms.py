"""What a clerk sees when a value is refused: the message, at the field they can fix."""

from datetime import date, datetime, time, timedelta

import pytest
import time_machine
from django.contrib.admin import site
from django.forms import modelform_factory
from django.urls import reverse
from django.utils import timezone

from scheduling.forms import BookingForm, OrderFilterForm, PatientForm
from scheduling.models import Order, Patient, Procedure, Room
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory

pytestmark = pytest.mark.django_db


def patient_data(**overrides):
    data = {
        "mrn": "HN123456",
        "issuer": "RIS",
        "family_name": "ใจดี",
        "given_name": "สมชาย",
        "romanized_family_name": "Jaidee",
        "romanized_given_name": "Somchai",
        "birth_date": "1980-05-17",
        "sex": "M",
    }
    return {**data, **overrides}


def booking_data(patient, procedure, room, day, slot, **overrides):
    data = {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "date": day.isoformat(),
        "slot": slot,
        "priority": "ROUTINE",
        "confirm_patient_overlap": "False",
    }
    return {**data, **overrides}


def tomorrow() -> date:
    return timezone.localdate() + timedelta(days=1)


AE_TITLE_RULE = "An AE title is 1 to 16 characters of A-Z, 0-9, space and - : @ _ (upper case)."


def admin_form(model, admin_user, rf, data, instance=None):
    """The admin's own form for `model` (procedures and rooms are edited only there), bound to `data`."""
    request = rf.get("/")
    request.user = admin_user
    form_class = site._registry[model].get_form(request, instance)
    return form_class(data, instance=instance)


def room_data(**overrides):
    data = {
        "name": "CT 9",
        "modality": "CT",
        "ae_title": "CT09",
        "worklist_charset": "ISO_IR 192",
        "completion": "mpps",
    }
    return {**data, **overrides}


def procedure_data(**overrides):
    data = {
        "code_value": "CTHEAD",
        "coding_scheme": "RIS",
        "code_meaning": "CT Head without contrast",
        "modality": "CT",
        "default_duration": "30",
        "body_part": "HEAD",
        "active": "on",
    }
    return {**data, **overrides}


def test_it_rejects_a_bad_ae_title():
    RoomForm = modelform_factory(Room, fields=["name", "modality", "ae_title", "worklist_charset"])
    form = RoomForm(room_data(ae_title="ct-room"))

    assert not form.is_valid()
    assert form.errors["ae_title"] == [AE_TITLE_RULE]


@pytest.mark.parametrize("ae_title", ["CT#1", "CT/ROOM", "CT.1", "ห้องซีที", "CT\\1"])
def test_it_rejects_illegal_characters_in_an_ae_title(admin_user, rf, ae_title):
    form = admin_form(Room, admin_user, rf, room_data(ae_title=ae_title))

    assert not form.is_valid()
    assert AE_TITLE_RULE in form.errors["ae_title"]


def test_it_rejects_an_ae_title_over_16_characters(admin_user, rf):
    form = admin_form(Room, admin_user, rf, room_data(ae_title="CTROOMBUILDINGA01"))  # 17

    assert not form.is_valid()
    # The length is all it says: the pattern check is not reached once the field has failed.
    assert form.errors["ae_title"] == ["Ensure this value has at most 16 characters (it has 17)."]


def test_it_rejects_illegal_characters_in_the_called_ae_title(admin_user, rf):
    form = admin_form(Room, admin_user, rf, room_data(called_ae_title="wl server"))

    assert not form.is_valid()
    assert form.errors["called_ae_title"] == [AE_TITLE_RULE]


@pytest.mark.parametrize("ae_title", ["CT01", "CT 1", "CT-1:A@B_C", "ABCDEFGHIJKLMNOP"])
def test_it_accepts_a_legal_ae_title(admin_user, rf, ae_title):
    form = admin_form(Room, admin_user, rf, room_data(ae_title=ae_title))

    assert "ae_title" not in form.errors


@pytest.mark.parametrize("body_part", ["head", "HEAD-NECK", "HEAD/NECK", "ศีรษะ"])
def test_it_rejects_a_body_part_that_is_not_a_dicom_code_string(admin_user, rf, body_part):
    form = admin_form(Procedure, admin_user, rf, procedure_data(body_part=body_part))

    assert not form.is_valid()
    assert form.errors["body_part"] == [
        "Use at most 16 upper-case letters A-Z, digits, spaces or underscores."
    ]


def test_it_accepts_a_body_part_code_string_or_none(admin_user, rf):
    for body_part in ("CHEST", "L_SPINE", "HEAD AND NECK", ""):
        form = admin_form(Procedure, admin_user, rf, procedure_data(body_part=body_part))
        assert form.is_valid(), (body_part, form.errors)


@pytest.mark.parametrize("minutes", ["0", "721", "1440"])
def test_it_rejects_a_default_duration_outside_1_to_720_minutes(admin_user, rf, minutes):
    form = admin_form(Procedure, admin_user, rf, procedure_data(default_duration=minutes))

    assert not form.is_valid()
    assert form.errors["default_duration"] == ["Duration must be between 1 and 720 minutes."]


@pytest.mark.parametrize("minutes", ["1", "720"])
def test_it_accepts_a_default_duration_at_the_limits(admin_user, rf, minutes):
    assert admin_form(Procedure, admin_user, rf, procedure_data(default_duration=minutes)).is_valid()


@pytest.mark.parametrize("minutes", ["0", "721"])
def test_it_rejects_an_order_duration_outside_1_to_720_minutes(admin_user, rf, minutes):
    order = OrderFactory()
    data = {
        "patient": order.patient.pk,
        "procedure": order.procedure.pk,
        "room": order.room.pk,
        "scheduled_start_0": f"{order.scheduled_start:%Y-%m-%d}",
        "scheduled_start_1": "09:00",
        "duration_minutes": minutes,
        "priority": "ROUTINE",
        "status": "SCHEDULED",
    }

    form = admin_form(Order, admin_user, rf, data, instance=order)

    assert not form.is_valid()
    assert form.errors["duration_minutes"] == ["Duration must be between 1 and 720 minutes."]
    order.refresh_from_db()
    assert order.duration_minutes == 30  # nothing half-saved


@pytest.mark.parametrize("weight", ["0", "0.0", "500.1", "999"])
def test_it_rejects_a_weight_out_of_range(weight):
    form = PatientForm(patient_data(weight_kg=weight))

    assert not form.is_valid()
    assert form.errors["weight_kg"] == ["Weight must be between 0.1 and 500 kg."]


@pytest.mark.parametrize("weight", ["0.1", "72.5", "500"])
def test_it_accepts_a_weight_in_range(weight):
    assert PatientForm(patient_data(weight_kg=weight)).is_valid()


@pytest.mark.parametrize(
    "field", ["family_name", "given_name", "middle_name", "romanized_family_name", "romanized_given_name"]
)
def test_it_rejects_a_backslash_in_a_name(field):
    form = PatientForm(patient_data(**{field: "Jai\\dee"}))

    assert not form.is_valid()
    assert form.errors[field] == ["The backslash character (\\) is not allowed here."]


def test_it_rejects_a_birth_date_before_1880():
    form = PatientForm(patient_data(birth_date="1879-12-31"))

    assert not form.is_valid()
    assert form.errors["birth_date"] == ["Check the birth date: it is before 1880."]


def test_it_accepts_a_birth_date_in_1880_and_today():
    assert PatientForm(patient_data(birth_date="1880-01-01")).is_valid()
    assert PatientForm(patient_data(birth_date=timezone.localdate().isoformat())).is_valid()


@pytest.mark.parametrize("name", ["Jai^dee", "Jaidee=ใจดี"])
def test_it_rejects_dicom_name_delimiters(name):
    form = PatientForm(patient_data(family_name=name))

    assert not form.is_valid()
    assert "are not allowed in a name" in form.errors["family_name"][0]


def test_it_rejects_thai_letters_in_the_romanised_name():
    form = PatientForm(patient_data(romanized_family_name="ใจดี"))

    assert not form.is_valid()
    assert "Use Latin letters only" in form.errors["romanized_family_name"][0]


def test_it_rejects_a_birth_date_in_the_future():
    form = PatientForm(patient_data(birth_date=(timezone.localdate() + timedelta(days=1)).isoformat()))

    assert not form.is_valid()
    assert form.errors["birth_date"] == ["The birth date cannot be in the future."]


def test_it_says_at_the_mrn_field_that_the_mrn_is_taken():
    PatientFactory(mrn="HN123456", issuer="RIS", family_name="Smith", given_name="John")

    form = PatientForm(patient_data(mrn="HN123456"))

    assert not form.is_valid()
    assert form.errors["mrn"] == ["MRN HN123456 of RIS is already registered to John Smith."]
    assert not form.non_field_errors()


def test_it_accepts_the_same_mrn_from_another_issuer():
    PatientFactory(mrn="HN123456", issuer="OTHERHOSP")

    assert PatientForm(patient_data(mrn="HN123456")).is_valid()


def test_it_lets_a_patient_keep_their_own_mrn_on_edit():
    patient = PatientFactory(mrn="HN123456")

    assert PatientForm(patient_data(mrn="HN123456"), instance=patient).is_valid()


def test_it_asks_for_a_start_time(patient, procedure, room):
    form = BookingForm(booking_data(patient, procedure, room, tomorrow(), ""))

    assert not form.is_valid()
    assert form.errors["slot"] == ["Choose a start time."]


def test_it_asks_for_the_patient_first(procedure, room):
    form = BookingForm(
        {"procedure": procedure.pk, "room": room.pk, "date": tomorrow().isoformat(), "slot": "09:00"}
    )

    assert not form.is_valid()
    assert form.errors["patient"] == ["Choose the patient first."]


def test_it_offers_only_free_slots(patient, procedure, room, tomorrow_at, user):
    OrderFactory(room=room, procedure=procedure, scheduled_start=tomorrow_at(9), booked_by=user)

    form = BookingForm(
        initial={"patient": patient.pk, "procedure": procedure.pk, "room": room.pk, "date": tomorrow()}
    )

    offered = [value for value, _ in form.fields["slot"].choices if value]
    assert offered[:4] == ["08:00", "08:15", "08:30", "09:30"]  # 30 minutes at 08:45 would run into 09:00
    assert offered[-1] == "16:30"  # a 30-minute exam must end by 17:00


def test_it_refuses_a_slot_that_has_passed(client, user, patient, procedure, room):
    today = timezone.localdate()
    with time_machine.travel(timezone.make_aware(datetime.combine(today, time(12))), tick=False):
        # Logged in at noon: a login from before the jump (early morning, local time) would have been
        # idle for hours by then, and the idle logout would answer instead of the form.
        client.force_login(user)
        response = client.post(
            reverse("scheduling:order_create"), booking_data(patient, procedure, room, today, "09:00")
        )

    assert response.status_code == 200
    assert response.context["form"].errors["slot"] == ["This time has already passed; choose a later one."]
    assert not Order.objects.exists()


def test_it_refuses_a_slot_that_collides(clerk, patient, procedure, room, tomorrow_at, user):
    OrderFactory(accession_number="26010100001", room=room, scheduled_start=tomorrow_at(9), booked_by=user)

    response = clerk.post(
        reverse("scheduling:order_create"), booking_data(patient, procedure, room, tomorrow(), "09:15")
    )

    assert response.context["form"].errors["slot"] == [
        "CT 1 is already booked 09:00-09:30 (accession 26010100001). Choose a free slot."
    ]


def test_it_refuses_a_room_of_another_modality(clerk, patient, procedure):
    mr_room = RoomFactory(name="MR 1", modality="MR", ae_title="MR01")

    response = clerk.post(
        reverse("scheduling:order_create"), booking_data(patient, procedure, mr_room, tomorrow(), "09:00")
    )

    assert response.context["form"].errors["room"] == [
        "MR 1 is a MR room; CT Head without contrast needs a CT room."
    ]


def test_it_refuses_a_time_outside_opening_hours(clerk, patient, procedure, room):
    response = clerk.post(
        reverse("scheduling:order_create"), booking_data(patient, procedure, room, tomorrow(), "16:45")
    )

    assert "CT 1 is open 08:00-17:00 on that day" in response.context["form"].errors["slot"][0]


def test_it_rejects_a_garbled_slot(patient, procedure, room):
    form = BookingForm(booking_data(patient, procedure, room, tomorrow(), "9 o'clock"))

    assert form.errors["slot"] == ["Choose a start time from the list."]


def test_it_hides_inactive_procedures_and_rooms(patient):
    old_procedure = ProcedureFactory(active=False)
    closed_room = RoomFactory(active=False)

    form = BookingForm()

    assert old_procedure not in form.fields["procedure"].queryset
    assert closed_room not in form.fields["room"].queryset


def test_it_rejects_a_filter_range_that_ends_before_it_starts():
    form = OrderFilterForm({"date_from": "2026-05-02", "date_to": "2026-05-01"})

    assert form.errors["date_to"] == ["The end date is before the start date."]


def test_the_patient_form_covers_every_editable_patient_field():
    editable = {f.name for f in Patient._meta.concrete_fields if f.editable and not f.primary_key}
    assert editable - {"created_at", "updated_at"} == set(PatientForm.Meta.fields)
