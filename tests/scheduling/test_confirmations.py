"""A confirmation is given only by the clerk, on the page, by POST; nothing typed into a form goes into a URL.

A link such as /orders/new/?patient=3&confirm_patient_overlap=on once pre-ticked "book anyway", and the
"Show free times" button submitted the form by GET, putting the CSRF token, the reason and the notes
into the address (and the web server's access log).
"""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from scheduling.models import Order
from tests.factories import OrderFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked(patient, procedure, room, user, tomorrow_at):
    """The patient's exam tomorrow 09:00 in `room`."""
    return OrderFactory(
        patient=patient, procedure=procedure, room=room, scheduled_start=tomorrow_at(9), booked_by=user
    )


@pytest.fixture
def second_room(room):
    return RoomFactory(name="CT 2", ae_title="CT02", modality=room.modality)


def tomorrow() -> str:
    return (timezone.localdate() + timedelta(days=1)).isoformat()


def hidden_value(html: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html)
    assert tag, f"no input {name}"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return value.group(1) if value else None


def posted_back(html: str) -> dict[str, str]:
    """The hidden inputs of the page, as a browser posts them back."""
    return {
        name: value
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)
        if name != "csrfmiddlewaretoken"
    }


def test_a_link_cannot_pre_tick_the_overlap_confirmation_of_a_booking(clerk, booked, procedure, second_room):
    page = clerk.get(
        reverse("scheduling:order_create"),
        {"patient": booked.patient.pk, "confirm_patient_overlap": "on"},
    ).content.decode()

    assert hidden_value(page, "confirm_patient_overlap") in (None, "", "False")
    # Posting the page as it came books nothing past the warning.
    response = clerk.post(
        reverse("scheduling:order_create"),
        {
            **posted_back(page),
            "procedure": procedure.pk,
            "room": second_room.pk,
            "date": tomorrow(),
            "slot": "09:00",
            "priority": "ROUTINE",
        },
    )

    assert response.status_code == 200
    assert "already has" in response.content.decode()
    assert Order.objects.count() == 1


def test_a_link_still_presets_patient_room_and_date(clerk, patient, procedure, room):
    response = clerk.get(
        reverse("scheduling:order_create"),
        {"patient": patient.pk, "procedure": procedure.pk, "room": room.pk, "date": tomorrow()},
    )

    form = response.context["form"]
    assert (form["patient"].value(), form["room"].value(), form["date"].value()) == (
        str(patient.pk),
        str(room.pk),
        tomorrow(),
    )
    assert b'<option value="08:00">08:00</option>' in response.content


def test_a_link_cannot_pre_tick_the_overlap_confirmation_of_a_reschedule(
    clerk, booked, procedure, room, user, tomorrow_at
):
    other = OrderFactory(
        patient=booked.patient,
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(11),
        booked_by=user,
    )
    url = reverse("scheduling:order_reschedule", args=[other.pk])

    page = clerk.get(url, {"confirm_patient_overlap": "on", "slot": "09:00"}).content.decode()

    assert hidden_value(page, "confirm_patient_overlap") in (None, "", "False")


def test_show_free_times_posts_the_form_and_books_nothing(clerk, patient, procedure, room):
    page = clerk.get(reverse("scheduling:order_create"), {"patient": patient.pk}).content.decode()
    assert 'formmethod="get"' not in page
    assert re.search(r'<button[^>]*name="refresh"[^>]*>Show free times</button>', page)

    response = clerk.post(
        reverse("scheduling:order_create"),
        {
            "patient": patient.pk,
            "procedure": procedure.pk,
            "room": room.pk,
            "date": tomorrow(),
            "slot": "09:00",
            "priority": "ROUTINE",
            "reason": "Headache",
            "notes": "Claustrophobic",
            "confirm_patient_overlap": "on",
            "refresh": "1",
        },
    )

    assert response.status_code == 200
    assert not Order.objects.exists()
    form = response.context["form"]
    assert not form.is_bound  # not validated: no "choose a start time" for a clerk still choosing
    assert b'<option value="08:00">08:00</option>' in response.content
    assert (form["reason"].value(), form["notes"].value()) == ("Headache", "Claustrophobic")
    assert not form["confirm_patient_overlap"].value()


def test_show_free_times_on_the_reschedule_page_posts_and_moves_nothing(
    clerk, booked, room, second_room, tomorrow_at
):
    url = reverse("scheduling:order_reschedule", args=[booked.pk])
    assert 'formmethod="get"' not in clerk.get(url).content.decode()

    response = clerk.post(url, {"room": second_room.pk, "date": tomorrow(), "slot": "10:00", "refresh": "1"})

    assert response.status_code == 200
    assert response.context["form"]["room"].value() == str(second_room.pk)
    assert b'<option value="08:00">08:00</option>' in response.content
    booked.refresh_from_db()
    assert (booked.room, booked.scheduled_start) == (room, tomorrow_at(9))


def test_the_free_slots_query_of_the_script_carries_no_patient_data():
    script = (Path(settings.BASE_DIR) / "static" / "scheduling" / "slots.js").read_text()
    query = re.search(r"new URLSearchParams\(\{(.*?)\}\)", script, re.S).group(1)

    assert re.findall(r"(\w+):", query) == ["room", "date", "procedure", "order"]
