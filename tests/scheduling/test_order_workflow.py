"""Reschedule, status transitions and cancellation."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from scheduling import services
from scheduling.models import Order, OrderStatus
from tests.factories import PatientFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(patient, procedure, room, user, tomorrow_at):
    return services.order_book(
        patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
    )


def test_reschedule_keeps_study_uid_and_accession(order, user, tomorrow_at):
    uid, accession = order.study_instance_uid, order.accession_number

    moved = services.order_reschedule(order=order, start=tomorrow_at(10, 30), user=user)

    assert moved.scheduled_start == tomorrow_at(10, 30)
    assert moved.scheduled_end == tomorrow_at(11)
    assert (moved.study_instance_uid, moved.accession_number) == (uid, accession)


def test_reschedule_into_own_slot_overlap_is_allowed(order, user, tomorrow_at):
    """Moving by 15 minutes overlaps only the order itself."""
    services.order_reschedule(order=order, start=tomorrow_at(9, 15), user=user)

    order.refresh_from_db()
    assert (order.scheduled_start, order.scheduled_end) == (tomorrow_at(9, 15), tomorrow_at(9, 45))


def test_reschedule_onto_a_booked_slot_is_refused(order, procedure, room, user, tomorrow_at):
    services.order_book(
        patient=PatientFactory(), procedure=procedure, room=room, start=tomorrow_at(11), user=user
    )

    with pytest.raises(ValidationError) as exc:
        services.order_reschedule(order=order, start=tomorrow_at(11), user=user)

    assert "already booked" in exc.value.message_dict["start"][0]
    order.refresh_from_db()
    assert order.scheduled_start == tomorrow_at(9)


def test_reschedule_to_another_room(order, user, tomorrow_at):
    other = RoomFactory()
    moved = services.order_reschedule(order=order, start=tomorrow_at(9), room=other, user=user)
    assert moved.room == other


def test_full_lifecycle(order, user):
    services.order_arrive(order=order, user=user)
    services.order_start(order=order, user=user)
    services.order_complete(order=order, user=user)
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED


def test_each_step_of_the_exam_stamps_its_time(order, user):
    # The reports' turnaround reads these columns; the events hold the same moments.
    assert (order.arrived_at, order.started_at, order.completed_at) == (None, None, None)
    services.order_arrive(order=order, user=user)
    services.order_start(order=order, user=user)
    first_start = Order.objects.get(pk=order.pk).started_at
    # Stopped at the modality and started again: the latest start counts, the arrival stays.
    services.order_discontinue(order=order, reason="Contrast reaction", user=user)
    services.order_start(order=order, user=user)
    services.order_complete(order=order, user=user)
    order.refresh_from_db()
    times = {e.kind: e.at for e in order.events.order_by("id")}  # the latest of each kind
    assert abs(order.arrived_at - times["arrived"]) < timedelta(seconds=1)
    assert abs(order.started_at - times["started"]) < timedelta(seconds=1)
    assert order.started_at > first_start
    assert abs(order.completed_at - times["completed"]) < timedelta(seconds=1)


@pytest.mark.parametrize(
    "path, illegal",
    [
        ([], OrderStatus.IN_PROGRESS),
        ([], OrderStatus.COMPLETED),
        ([OrderStatus.ARRIVED], OrderStatus.COMPLETED),
        ([OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS], OrderStatus.CANCELLED),
        ([OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED], OrderStatus.ARRIVED),
    ],
)
def test_illegal_transitions_are_refused_with_a_message(order, user, path, illegal):
    for step in path:
        services.order_transition(order=order, to=step, user=user)

    with pytest.raises(ValidationError) as exc:
        services.order_transition(order=order, to=illegal, user=user, reason="x")

    assert "cannot be marked" in exc.value.messages[0]
    order.refresh_from_db()
    assert order.status == (path[-1] if path else OrderStatus.SCHEDULED)


def test_cancel_needs_a_reason(order, user):
    with pytest.raises(ValidationError) as exc:
        services.order_cancel(order=order, reason="  ", user=user)
    assert "reason" in exc.value.message_dict
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_cancel_from_arrived(order, user):
    services.order_arrive(order=order, user=user)
    services.order_cancel(order=order, reason="Contrast allergy found", user=user)
    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "Contrast allergy found")


def test_cancelled_order_cannot_be_rescheduled(order, user, tomorrow_at):
    services.order_cancel(order=order, reason="No show", user=user)
    with pytest.raises(ValidationError, match="cannot be rescheduled"):
        services.order_reschedule(order=order, start=tomorrow_at(12), user=user)


def test_update_details_validates(order, user):
    with pytest.raises(ValidationError) as exc:
        services.order_update_details(order=order, user=user, referring_physician="Dr^Who")
    assert "referring_physician" in exc.value.message_dict
    services.order_update_details(order=order, user=user, priority="STAT", notes="Wheelchair")
    order.refresh_from_db()
    assert (order.priority, order.notes) == ("STAT", "Wheelchair")
