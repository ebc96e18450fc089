"""The admin: every page renders, and order edits go through the booking rules."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduling.models import AccessionCounter, Order, OrderStatus, Patient, Procedure, Room
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def later_order(procedure, room, user, tomorrow_at):
    return OrderFactory(
        accession_number="26010100002",
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(10),
        booked_by=user,
    )


def change_data(order, day, hhmm, **overrides):
    data = {
        "room": order.room.pk,
        "scheduled_start_0": day.isoformat(),
        "scheduled_start_1": hhmm,
        "duration_minutes": order.duration_minutes,
        "priority": order.priority,
        "referring_physician": order.referring_physician,
        "requesting_physician": order.requesting_physician,
        "reason": order.reason,
        "notes": order.notes,
        "status": order.status,
        "cancel_reason": order.cancel_reason,
    }
    return {**data, **overrides}


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


def test_every_changelist_and_add_page_renders(admin_client, order):
    AccessionCounter.objects.create(day=timezone.localdate(), last_value=3)
    for model in (Patient, Procedure, Room, Order, AccessionCounter):
        url = reverse(f"admin:scheduling_{model._meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
        assert admin_client.get(url, {"q": "HN"}).status_code == 200, url
    for model in (Patient, Procedure, Room, Order):
        url = reverse(f"admin:scheduling_{model._meta.model_name}_add")
        assert admin_client.get(url).status_code == 200, url


def test_every_change_page_renders(admin_client, order):
    counter = AccessionCounter.objects.create(day=timezone.localdate(), last_value=3)
    for obj in (order.patient, order.procedure, order.room, order, counter):
        url = reverse(f"admin:scheduling_{obj._meta.model_name}_change", args=[obj.pk])
        assert admin_client.get(url).status_code == 200, url


def test_the_order_page_shows_identifiers_read_only(admin_client, order):
    content = admin_client.get(reverse("admin:scheduling_order_change", args=[order.pk])).content.decode()

    assert order.study_instance_uid in content
    assert 'name="accession_number"' not in content
    assert 'name="study_instance_uid"' not in content


def test_an_admin_edit_that_double_books_is_refused_and_saves_nothing(
    admin_client, order, later_order, tomorrow_at
):
    response = admin_client.post(
        reverse("admin:scheduling_order_change", args=[later_order.pk]),
        change_data(later_order, tomorrow(), "09:15", notes="moved"),
    )

    assert response.status_code == 200
    assert "CT 1 is already booked 09:00-09:30 (accession 26010100001)" in response.content.decode()
    later_order.refresh_from_db()
    assert later_order.scheduled_start == tomorrow_at(10)
    assert later_order.notes == ""


def test_an_admin_reschedule_moves_the_order(admin_client, later_order, tomorrow_at):
    response = admin_client.post(
        reverse("admin:scheduling_order_change", args=[later_order.pk]),
        change_data(later_order, tomorrow(), "11:00", duration_minutes=45),
    )

    assert response.status_code == 302
    later_order.refresh_from_db()
    assert later_order.scheduled_start == tomorrow_at(11)
    assert later_order.scheduled_end == tomorrow_at(11, 45)


def test_an_admin_status_change_follows_the_workflow(admin_client, order):
    url = reverse("admin:scheduling_order_change", args=[order.pk])

    response = admin_client.post(url, change_data(order, tomorrow(), "09:00", status=OrderStatus.COMPLETED))
    assert "An order that is scheduled cannot be marked completed." in response.content.decode()

    response = admin_client.post(url, change_data(order, tomorrow(), "09:00", status=OrderStatus.CANCELLED))
    assert "Give a reason for the cancellation." in response.content.decode()

    response = admin_client.post(
        url, change_data(order, tomorrow(), "09:00", status=OrderStatus.CANCELLED, cancel_reason="Duplicate")
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "Duplicate")


def test_an_admin_detail_edit_is_saved(admin_client, order):
    response = admin_client.post(
        reverse("admin:scheduling_order_change", args=[order.pk]),
        change_data(order, tomorrow(), "09:00", priority="STAT", reason="Fall"),
    )

    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.priority, order.reason) == ("STAT", "Fall")


def test_an_admin_add_books_through_the_service(
    admin_client, admin_user, patient, procedure, room, tomorrow_at
):
    response = admin_client.post(
        reverse("admin:scheduling_order_add"),
        {
            "patient": patient.pk,
            "procedure": procedure.pk,
            "room": room.pk,
            "scheduled_start_0": tomorrow().isoformat(),
            "scheduled_start_1": "13:00",
            "duration_minutes": "",
            "priority": "ROUTINE",
        },
    )

    assert response.status_code == 302
    order = Order.objects.get()
    assert order.booked_by == admin_user
    assert order.accession_number.endswith("00001")
    assert order.scheduled_end == tomorrow_at(13, 30)  # the procedure's default duration


def test_an_admin_add_in_the_past_is_refused(admin_client, patient, procedure, room):
    yesterday = timezone.localdate() - timedelta(days=1)
    response = admin_client.post(
        reverse("admin:scheduling_order_add"),
        {
            "patient": patient.pk,
            "procedure": procedure.pk,
            "room": room.pk,
            "scheduled_start_0": yesterday.isoformat(),
            "scheduled_start_1": "10:00",
            "priority": "ROUTINE",
        },
    )

    assert "This time has already passed" in response.content.decode()
    assert not Order.objects.exists()


def test_orders_cannot_be_deleted_in_the_admin(admin_client, order):
    response = admin_client.get(reverse("admin:scheduling_order_delete", args=[order.pk]))

    assert response.status_code == 403


def test_an_admin_patient_edit_is_saved_and_a_taken_mrn_refused(admin_client, patient):
    other = Patient.objects.create(mrn="HN999", issuer="RIS", family_name="Other", birth_date="1990-01-01")
    url = reverse("admin:scheduling_patient_change", args=[other.pk])
    data = {"mrn": patient.mrn, "issuer": "RIS", "family_name": "Other", "birth_date": "1990-01-01"}

    response = admin_client.post(url, data)
    assert f"MRN {patient.mrn} of RIS is already registered" in response.content.decode()

    response = admin_client.post(url, {**data, "mrn": "HN1000"})
    assert response.status_code == 302
    other.refresh_from_db()
    assert other.mrn == "HN1000"


def test_an_admin_patient_add_registers(admin_client):
    response = admin_client.post(
        reverse("admin:scheduling_patient_add"),
        {
            "mrn": "HN42",
            "issuer": "RIS",
            "family_name": "Brown",
            "given_name": "Emily",
            "birth_date": "1994-12-01",
        },
    )

    assert response.status_code == 302
    assert Patient.objects.get(mrn="HN42").display_name == "Emily Brown"
