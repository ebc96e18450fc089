"""Example tests for what the property tests found, so each fix stays in place whatever the examples drawn."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.forms import modelform_factory
from django.urls import reverse
from django.utils import timezone, translation

from scheduling.forms import BookingForm, OrderFilterForm, PatientForm
from scheduling.models import Patient, Room
from scheduling.roles import FRONT_DESK
from tests.factories import OrderFactory, UserFactory

from .helpers import assert_exportable
from .test_forms import valid_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(client):
    client.force_login(UserFactory(username="reg-frontdesk", roles=[FRONT_DESK]))
    return client


def test_it_refuses_a_name_whose_parts_together_exceed_a_dicom_pn_group():
    # Each part is legal on its own; family^given^middle^prefix^suffix is 69 characters.
    form = PatientForm(
        {
            **valid_patient(),
            "family_name": "a" * 40,
            "given_name": "b" * 20,
            "name_prefix": "Mr",
            "name_suffix": "Jr",
        }
    )

    assert not form.is_valid()
    assert form.errors["family_name"] == [
        "The name is too long for the scanners: all its parts together must fit in 64 characters "
        "(now 68). Shorten or leave out a part."
    ]


def test_it_refuses_a_romanised_name_too_long_for_a_latin1_station():
    form = PatientForm(
        {**valid_patient(), "romanized_family_name": "a" * 40, "romanized_given_name": "b" * 30}
    )

    assert not form.is_valid()
    assert "(now 71)" in form.errors["romanized_family_name"][0]


def test_a_name_of_exactly_64_characters_exports(room, procedure):
    form = PatientForm({**valid_patient(), "family_name": "a" * 40, "given_name": "b" * 23})

    assert form.is_valid(), form.errors
    assert_exportable(patient=form.save(commit=False), room=room, procedure=procedure)


def test_a_refused_long_name_saves_nothing(clerk):
    response = clerk.post(
        reverse("scheduling:patient_create"),
        {**valid_patient(), "family_name": "a" * 50, "given_name": "b" * 20},
    )

    assert response.status_code == 200
    assert "too long for the scanners" in response.content.decode()
    assert not Patient.objects.exists()


def test_it_refuses_a_station_name_the_rooms_character_set_cannot_hold():
    RoomForm = modelform_factory(Room, fields="__all__")
    form = RoomForm(
        {
            "name": "CT 9",
            "modality": "CT",
            "ae_title": "CT09",
            "station_name": "ห้อง 9",
            "location": "Salle é",
            "worklist_charset": "ISO_IR 100",
            "completion": "mpps",
        }
    )

    assert not form.is_valid()
    assert form.errors["station_name"] == [
        "The worklist character set Latin-1 (ISO_IR 100) cannot hold ง ห อ ้; use other letters here."
    ]
    assert "location" not in form.errors  # é is Latin-1


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "31/12/9999"])
def test_the_order_list_says_a_far_date_is_out_of_range(clerk, day):
    response = clerk.get(reverse("scheduling:order_list"), {"date_from": day, "date_to": day})

    assert response.status_code == 200
    assert "From: Enter a date between 01/01/1900 and 31/12/2999." in response.content.decode()


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_the_day_board_shows_today_for_a_far_date(clerk, day):
    response = clerk.get(reverse("scheduling:schedule"), {"date": day})

    assert response.status_code == 200
    assert response.context["day"] == timezone.localdate()
    assert "Enter a date between 01/01/1900 and 31/12/2999." in response.content.decode()


def test_the_booking_and_filter_forms_refuse_a_far_date(patient, procedure, room):
    booking = BookingForm(
        {
            "patient": patient.pk,
            "procedure": procedure.pk,
            "room": room.pk,
            "date": "9999-12-31",
            "slot": "09:00",
        }
    )

    assert booking.errors["date"] == ["Enter a date between 01/01/1900 and 31/12/2999."]
    assert OrderFilterForm({"date_to": "0001-01-01"}).errors["date_to"] == [
        "Enter a date between 01/01/1900 and 31/12/2999."
    ]
    # In Thai the bounds are written as a Thai clerk types dates: the year in B.E.
    with translation.override("th"):
        message = OrderFilterForm({"date_to": "0001-01-01"}).errors["date_to"][0]
    assert "01/01/2443" in message and "31/12/3542" in message


@pytest.mark.parametrize(("target", "location"), [("^", "%5E"), ("board", "board"), ("orders", "orders")])
def test_cancel_follows_a_next_without_a_slash_instead_of_failing(
    clerk, patient, procedure, room, user, target, location
):
    start = timezone.now() + timedelta(days=1)
    order = OrderFactory(
        patient=patient, procedure=procedure, room=room, booked_by=user, scheduled_start=start
    )

    response = clerk.post(
        reverse("scheduling:order_cancel", args=[order.pk]), {"reason": "ill", "next": target}
    )

    assert response.status_code == 302
    assert response["Location"] == location


def test_the_autocomplete_refuses_a_nul_character_with_a_message(clerk, patient):
    response = clerk.get(reverse("scheduling:patient_autocomplete"), {"q": "Jai\x00"})

    assert response.status_code == 400
    assert response.json() == {"results": [], "errors": {"q": ["Null characters are not allowed."]}}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": 70000}, "The port must be between 1 and 65535, not 70000."),
        ({"port": 0}, "The port must be between 1 and 65535, not 0."),
        ({"ae_title": "RIS.MWL"}, "AE title 'RIS.MWL': An AE title is 1 to 16 characters"),
        ({"ae_title": "A" * 17}, "AE title 'AAAAAAAAAAAAAAAAA': An AE title is 1 to 16 characters"),
        ({"ae_title": ""}, "AE title '': An AE title is 1 to 16 characters"),
    ],
)
def test_serve_dicom_refuses_a_bad_port_or_ae_title(options, message):
    with pytest.raises(CommandError, match="^" + message.replace("(", r"\(")):
        call_command("serve_dicom", **options)


def test_export_worklists_says_the_layout_setting_is_wrong(settings):
    settings.WORKLIST_LAYOUT = "flat"

    with pytest.raises(CommandError, match="WORKLIST_LAYOUT must be 'orthanc' or 'wlmscpfs', not 'flat'"):
        call_command("export_worklists")
