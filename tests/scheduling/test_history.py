"""The audit trail: who booked, moved, changed or cancelled an order, and who edited a patient."""

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduling import selectors, services
from scheduling.roles import FRONT_DESK
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def tomorrow() -> str:
    """Tomorrow as the history writes it: SHORT_DATE_FORMAT, day first in English."""
    return f"{timezone.localdate() + timedelta(days=1):%d/%m/%Y}"


@pytest.fixture
def booked(patient, procedure, room, user, tomorrow_at):
    return services.order_book(
        patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
    )


def test_book_reschedule_cancel_leaves_three_rows_with_who_and_what(booked, user, tomorrow_at):
    other = UserFactory(username="som", roles=[FRONT_DESK])
    services.order_reschedule(order=booked, start=tomorrow_at(11), user=other)
    services.order_cancel(order=booked, reason="Patient called", user=user)

    rows = selectors.record_history(instance=booked)

    assert [(row.action, row.who) for row in rows] == [
        ("created", "frontdesk"),
        ("changed", "som"),
        ("changed", "frontdesk"),
    ]
    moved = {c.field: (c.old, c.new) for c in rows[1].changes}
    day = tomorrow()
    assert moved == {"scheduled start": (f"{day} 09:00", f"{day} 11:00")}
    cancelled = {c.field: (c.old, c.new) for c in rows[2].changes}
    assert cancelled == {
        "status": ("Scheduled", "Cancelled"),
        "cancellation reason": ("—", "Patient called"),
    }
    assert booked.history.count() == 3


def test_a_move_to_another_room_shows_the_room_names(booked, user, tomorrow_at):
    from tests.factories import RoomFactory

    ct2 = RoomFactory(name="CT 2", ae_title="CT02")
    services.order_reschedule(order=booked, start=tomorrow_at(9), room=ct2, user=user)

    change = selectors.record_history(instance=booked)[-1].changes
    assert [(c.field, c.old, c.new) for c in change] == [("room", "CT 1 (CT)", "CT 2 (CT)")]


def test_a_patient_edit_on_the_page_is_recorded_with_the_clerk(client, user, patient):
    client.force_login(user)

    client.post(
        reverse("scheduling:patient_update", args=[patient.pk]),
        {
            "mrn": patient.mrn,
            "issuer": "RIS",
            "family_name": "Srisuk",
            "given_name": patient.given_name,
            "birth_date": "1980-05-17",
            "sex": "M",
        },
    )

    rows = selectors.record_history(instance=patient)
    assert rows[-1].who == "frontdesk"
    assert [(c.field, c.old, c.new) for c in rows[-1].changes] == [("family name", "Jaidee", "Srisuk")]
    html = client.get(patient.get_absolute_url()).content.decode()
    assert "<del>Jaidee</del> → <ins>Srisuk</ins>" in html


def test_the_order_page_shows_the_history(client, booked, user, tomorrow_at):
    services.order_update_details(order=booked, user=user, priority="STAT")
    client.force_login(user)

    html = client.get(booked.get_absolute_url()).content.decode()

    section = html[html.index('id="history"') :]
    assert "Created" in section and "frontdesk" in section
    assert "<del>Routine</del> → <ins>STAT</ins>" in section


def test_the_admin_shows_an_orders_history(admin_client, booked):
    response = admin_client.get(reverse("admin:scheduling_order_history", args=[booked.pk]))

    assert response.status_code == 200
    assert "frontdesk" in response.content.decode()


def test_every_service_that_writes_a_patient_or_an_order_records_who(patient, procedure, room, tomorrow_at):
    """Outside a request (MPPS from the DICOM server, a command, a task) no middleware knows the user:
    each service must put its `user` on the history row itself."""
    order = services.order_book(
        patient=patient,
        procedure=procedure,
        room=room,
        start=tomorrow_at(9),
        user=UserFactory(username="book"),
    )
    steps = {
        "reschedule": lambda user: services.order_reschedule(order=order, start=tomorrow_at(10), user=user),
        "details": lambda user: services.order_update_details(order=order, priority="STAT", user=user),
        "arrive": lambda user: services.order_arrive(order=order, user=user),
        "start": lambda user: services.order_start(order=order, user=user),
        "discontinue": lambda user: services.order_discontinue(order=order, reason="Moved", user=user),
        "cancel": lambda user: services.order_cancel(order=order, reason="Went home", user=user),
        "update patient": lambda user: services.patient_update(
            patient=patient, phone="081 000 0000", user=user
        ),
        "register patient": lambda user: services.patient_register(
            mrn="HN777",
            issuer="RIS",
            family_name="Srisuk",
            given_name="Anan",
            birth_date=date(1970, 1, 2),
            user=user,
        ),
    }
    who = {"book": order.history.latest().history_user.username}

    for name, step in steps.items():
        record = step(UserFactory(username=name))
        who[name] = getattr(record.history.latest().history_user, "username", None)

    assert who == {name: name for name in ["book", *steps]}
