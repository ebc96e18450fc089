"""The admin and the HL7 link's records: requested orders (no room or time yet) listed, filtered, booked
and corrected through the services; a patient's national ID edited and a merge shown read-only."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduling.models import Order, OrderEvent, OrderEventKind, OrderStatus, Patient
from scheduling.validators import thai_national_id_check_digit
from tests.factories import OrderFactory, PatientFactory

pytestmark = pytest.mark.django_db


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


@pytest.fixture
def waiting(patient, procedure, user, tomorrow_at) -> Order:
    """A requested order as the HIS leaves one when no room was free at the time it asked for."""
    return OrderFactory(
        accession_number="26010100009",
        patient=patient,
        procedure=procedure,
        status=OrderStatus.REQUESTED,
        room=None,
        scheduled_start=None,
        scheduled_end=None,
        requested_start=tomorrow_at(9),
        booked_by=user,
    )


def change_data(order, **overrides) -> dict:
    """The change form as the admin page posts it back unchanged (room and time empty while requested)."""
    start = timezone.localtime(order.scheduled_start) if order.scheduled_start else None
    data = {
        "room": order.room.pk if order.room else "",
        "scheduled_start_0": start.date().isoformat() if start else "",
        "scheduled_start_1": f"{start:%H:%M}" if start else "",
        "duration_minutes": order.duration_minutes,
        "priority": order.priority,
        "referring_physician": order.referring_physician,
        "requesting_physician": order.requesting_physician,
        "reason": order.reason,
        "notes": order.notes,
        "status": order.status,
        "cancel_reason": order.cancel_reason,
        "version": order.version,
    }
    return {**data, **overrides}


def change_url(order) -> str:
    return reverse("admin:scheduling_order_change", args=[order.pk])


# --- the order list and page ------------------------------------------------------------------------


def test_the_list_shows_a_requested_order_and_filters_by_requested(admin_client, waiting, order):
    url = reverse("admin:scheduling_order_changelist")

    everything = admin_client.get(url)
    requested = admin_client.get(url, {"status__exact": OrderStatus.REQUESTED})
    without_room = admin_client.get(url, {"room__isnull": "True"})

    assert everything.status_code == 200
    assert list(everything.context["cl"].result_list) != []
    assert {o.pk for o in everything.context["cl"].result_list} == {waiting.pk, order.pk}
    assert [o.pk for o in requested.context["cl"].result_list] == [waiting.pk]
    assert [o.pk for o in without_room.context["cl"].result_list] == [waiting.pk]
    # The status filter offers Requested among the statuses.
    assert "?status__exact=REQUESTED" in everything.content.decode()


def test_the_page_of_a_requested_order_renders_with_the_time_asked_for(admin_client, waiting, tomorrow_at):
    response = admin_client.get(change_url(waiting))

    assert response.status_code == 200
    assert "requested_start" in response.context["adminform"].readonly_fields
    assert response.context["adminform"].form.fields["room"].required is False


# --- booking and correcting a requested order ---------------------------------------------------------


def test_giving_a_room_and_a_start_books_it_through_the_service(
    admin_client, admin_user, waiting, room, tomorrow_at
):
    response = admin_client.post(
        change_url(waiting),
        change_data(
            waiting, room=room.pk, scheduled_start_0=tomorrow().isoformat(), scheduled_start_1="10:00"
        ),
    )

    assert response.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.status, waiting.room, waiting.scheduled_start) == (
        OrderStatus.SCHEDULED,
        room,
        tomorrow_at(10),
    )
    assert waiting.scheduled_end == tomorrow_at(10, 30)
    assert waiting.accession_number == "26010100009"
    assert OrderEvent.objects.filter(order=waiting).latest("id").kind == OrderEventKind.BOOKED
    assert waiting.history.latest().history_user == admin_user


@pytest.mark.parametrize(
    "given",
    [
        {"scheduled_start_0": "tomorrow", "scheduled_start_1": "10:00"},
        {"room": "room"},
    ],
)
def test_a_room_without_a_start_or_the_reverse_is_refused_and_saves_nothing(
    admin_client, waiting, room, given
):
    given = {
        k: (room.pk if v == "room" else tomorrow().isoformat() if v == "tomorrow" else v)
        for k, v in given.items()
    }

    response = admin_client.post(change_url(waiting), change_data(waiting, **given))

    assert response.status_code == 200
    assert "Give the room and the start to book this requested order." in response.content.decode()
    waiting.refresh_from_db()
    assert (waiting.status, waiting.room, waiting.scheduled_start) == (OrderStatus.REQUESTED, None, None)


def test_booking_it_into_a_taken_slot_is_refused_in_the_rules_words(admin_client, waiting, order, room):
    response = admin_client.post(
        change_url(waiting),
        change_data(
            waiting, room=room.pk, scheduled_start_0=tomorrow().isoformat(), scheduled_start_1="09:15"
        ),
    )

    assert response.status_code == 200
    assert "CT 1 is already booked 09:00-09:30 (accession 26010100001)" in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == OrderStatus.REQUESTED


def test_its_details_change_and_it_stays_requested(admin_client, waiting):
    response = admin_client.post(
        change_url(waiting), change_data(waiting, priority="STAT", notes="Call ward 5")
    )

    assert response.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.priority, waiting.notes, waiting.status) == ("STAT", "Call ward 5", OrderStatus.REQUESTED)
    assert waiting.room is None


def test_it_is_cancelled_with_a_reason(admin_client, waiting):
    url = change_url(waiting)

    refused = admin_client.post(url, change_data(waiting, status=OrderStatus.CANCELLED))
    cancelled = admin_client.post(
        url, change_data(waiting, status=OrderStatus.CANCELLED, cancel_reason="Ordered twice")
    )

    assert "Give a reason for the cancellation." in refused.content.decode()
    assert cancelled.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.status, waiting.cancel_reason) == (OrderStatus.CANCELLED, "Ordered twice")


def test_it_cannot_be_marked_scheduled_without_being_booked(admin_client, waiting):
    response = admin_client.post(change_url(waiting), change_data(waiting, status=OrderStatus.SCHEDULED))

    assert "An order that is requested cannot be marked scheduled." in response.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == OrderStatus.REQUESTED


def test_a_request_cancelled_before_booking_shows_and_stays_unbooked(admin_client, waiting, room):
    Order.objects.filter(pk=waiting.pk).update(status=OrderStatus.CANCELLED, cancel_reason="Ordered twice")
    waiting.refresh_from_db()

    page = admin_client.get(change_url(waiting))
    moved = admin_client.post(
        change_url(waiting),
        change_data(
            waiting, room=room.pk, scheduled_start_0=tomorrow().isoformat(), scheduled_start_1="10:00"
        ),
    )

    assert page.status_code == 200
    assert "A cancelled order cannot be rescheduled." in moved.content.decode()
    waiting.refresh_from_db()
    assert (waiting.status, waiting.room) == (OrderStatus.CANCELLED, None)


# --- a booked order and a new one still need a room and a time ----------------------------------------


def test_a_new_order_without_a_room_is_refused_at_the_room(admin_client, patient, procedure):
    response = admin_client.post(
        reverse("admin:scheduling_order_add"),
        {
            "patient": patient.pk,
            "procedure": procedure.pk,
            "room": "",
            "scheduled_start_0": tomorrow().isoformat(),
            "scheduled_start_1": "13:00",
            "priority": "ROUTINE",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["room"] == ["This field is required."]
    assert not Order.objects.exists()


def test_a_booked_order_cannot_lose_its_room_or_time(admin_client, order, tomorrow_at):
    response = admin_client.post(
        change_url(order), change_data(order, room="", scheduled_start_0="", scheduled_start_1="")
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) >= {"room", "scheduled_start"}
    order.refresh_from_db()
    assert (order.room_id is not None, order.scheduled_start) == (True, tomorrow_at(9))


# --- patients: the national ID, a merge -------------------------------------------------------------


def national_id(first12: str) -> str:
    return f"{first12}{thai_national_id_check_digit(first12)}"


def patient_data(patient, **overrides) -> dict:
    data = {
        "mrn": patient.mrn,
        "issuer": patient.issuer,
        "family_name": patient.family_name,
        "given_name": patient.given_name,
        "birth_date": patient.birth_date.isoformat(),
        "national_id": patient.national_id,
        "version": patient.version,
    }
    return {**data, **overrides}


def test_a_national_id_is_edited_through_the_service(admin_client, admin_user, patient):
    value = national_id("110170020345")

    response = admin_client.post(
        reverse("admin:scheduling_patient_change", args=[patient.pk]),
        patient_data(patient, national_id=value),
    )

    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.national_id, patient.version) == (value, 2)
    assert patient.history.latest().history_user == admin_user


def test_a_wrong_or_taken_national_id_is_refused_at_the_field(admin_client, patient):
    value = national_id("350010012345")
    PatientFactory(national_id=value)
    url = reverse("admin:scheduling_patient_change", args=[patient.pk])
    wrong = value[:12] + str((int(value[12]) + 1) % 10)

    taken = admin_client.post(url, patient_data(patient, national_id=value))
    checksum = admin_client.post(url, patient_data(patient, national_id=wrong))

    assert "national_id" in taken.context["adminform"].form.errors
    assert checksum.context["adminform"].form.errors["national_id"] == [
        "This national ID's check digit is wrong: check the number against the ID card."
    ]
    patient.refresh_from_db()
    assert patient.national_id == ""


def test_a_merged_record_shows_where_it_went_read_only(admin_client, patient):
    old = PatientFactory(family_name="Oldrecord")
    Patient.objects.filter(pk=old.pk).update(merged_into=patient)

    page = admin_client.get(reverse("admin:scheduling_patient_change", args=[old.pk]))
    merged = admin_client.get(reverse("admin:scheduling_patient_changelist"), {"merged_into__isempty": "0"})

    assert page.status_code == 200
    assert "merged_into" in page.context["adminform"].readonly_fields
    assert 'name="merged_into"' not in page.content.decode()
    assert str(patient) in page.content.decode()
    assert [p.pk for p in merged.context["cl"].result_list] == [old.pk]
