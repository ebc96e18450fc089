"""What one booking costs in SQL queries, pinned so a new lookup cannot creep into every booking.

A booking POST was 40 queries. What it needs: the session, the user and their roles (3); the form's
patient, procedure, room and the room's opening hours (4); the form's room-taken and patient-busy
checks (2); then in the service, the room lock (1), the same two checks again under the lock (2), the
accession counter (1), the order and its history row (2), its order event (1; PostgreSQL adds
the advisory lock that keeps event ids in commit order). The test database adds a savepoint and its
release around the service's transaction (2), which are BEGIN and COMMIT in production.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduling.models import Order, OrderStatus
from tests.factories import OrderFactory
from tests.scheduling.test_views import booking

pytestmark = pytest.mark.django_db

BOOKING_QUERIES = 18


def _listed(context: CaptureQueriesContext) -> str:
    return "\n".join(f"{i}. {q['sql'][:160]}" for i, q in enumerate(context.captured_queries, 1))


def test_it_books_in_a_fixed_number_of_queries(clerk, patient, procedure, room):
    with CaptureQueriesContext(connection) as queries:
        response = clerk.post(reverse("scheduling:order_create"), booking(patient, procedure, room))

    assert response.status_code == 302
    assert Order.objects.get().accession_number  # booked
    assert len(queries) == BOOKING_QUERIES, (
        f"A booking POST now takes {len(queries)} queries, not {BOOKING_QUERIES}: remove the new one, or "
        f"update BOOKING_QUERIES and the list in this module's docstring if it is needed.\n{_listed(queries)}"
    )


def test_a_booking_with_history_costs_the_same(clerk, patient, procedure, room, user, tomorrow_at):
    # Years of orders in the room and of the patient do not add queries (nor rows scanned: see
    # tests/realstack/test_scale_orders.py).
    for days in range(1, 40):
        OrderFactory(
            patient=patient, room=room, scheduled_start=tomorrow_at(9) - timedelta(days=days), booked_by=user
        )

    with CaptureQueriesContext(connection) as queries:
        response = clerk.post(reverse("scheduling:order_create"), booking(patient, procedure, room))

    assert response.status_code == 302
    assert len(queries) == BOOKING_QUERIES, _listed(queries)


def test_a_refused_booking_shows_the_free_slots_without_reading_the_hours_again(
    clerk, patient, procedure, room, user, tomorrow_at
):
    OrderFactory(room=room, scheduled_start=tomorrow_at(9), booked_by=user)

    with CaptureQueriesContext(connection) as queries:
        response = clerk.post(reverse("scheduling:order_create"), booking(patient, procedure, room))

    assert response.status_code == 200
    assert "already booked 09:00-09:30" in response.context["form"].errors["slot"][0]
    offered = [value for value, _ in response.context["form"].fields["slot"].choices if value]
    assert "09:00" not in offered and "09:30" in offered
    hours = [q for q in queries.captured_queries if 'FROM "scheduling_openinghours"' in q["sql"]]
    assert len(hours) == 1, _listed(queries)


def test_an_exam_of_the_longest_duration_still_overlaps(room, user, tomorrow_at):
    # The overlap query looks back ORDER_LONGEST (720 minutes) from the start, no further.
    long_exam = OrderFactory(room=room, scheduled_start=tomorrow_at(8), duration_minutes=720, booked_by=user)
    ends_at_start = OrderFactory(
        room=room, scheduled_start=tomorrow_at(7), duration_minutes=60, booked_by=user
    )
    OrderFactory(
        room=room,
        scheduled_start=tomorrow_at(9),
        duration_minutes=30,
        booked_by=user,
        status=OrderStatus.CANCELLED,
        cancel_reason="Ill",
    )

    found = set(Order.objects.overlapping(tomorrow_at(19, 59), tomorrow_at(20, 30)))
    assert found == {long_exam}
    assert set(Order.objects.overlapping(tomorrow_at(20), tomorrow_at(20, 30))) == set()
    assert set(Order.objects.overlapping(tomorrow_at(7, 59), tomorrow_at(8))) == {ends_at_start}
