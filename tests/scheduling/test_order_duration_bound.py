"""No order lasts longer than ORDER_LONGEST: the overlap queries look back only that far (issue 12).

An order written past the services (a script, a bulk load) that lasted longer would hide from the
room-taken and free-slot checks; the database refuses it instead.
"""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from scheduling.models import ORDER_LONGEST, Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_the_longest_exam_is_the_validators_bound():
    assert ORDER_LONGEST == timedelta(minutes=720)


def test_the_database_refuses_an_order_longer_than_the_longest_exam(order):
    with pytest.raises(IntegrityError, match="order_duration_bounded"), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(duration_minutes=721)


def test_an_order_of_exactly_the_longest_exam_is_stored(patient, procedure, room, user, tomorrow_at):
    order = OrderFactory(
        patient=patient,
        procedure=procedure,
        room=room,
        booked_by=user,
        scheduled_start=tomorrow_at(7),
        duration_minutes=720,
    )
    order.refresh_from_db()
    assert order.scheduled_end - order.scheduled_start == ORDER_LONGEST
