"""On PostgreSQL the stored end is held to ORDER_LONGEST too (scheduling migration 0009)."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from scheduling.models import Order
from tests.factories import OrderFactory

pytestmark = [pytest.mark.realstack, pytest.mark.django_db]


def test_postgresql_refuses_an_end_further_than_the_longest_exam(tomorrow_at):
    order = OrderFactory(scheduled_start=tomorrow_at(7), duration_minutes=60)
    with pytest.raises(IntegrityError, match="order_end_within_longest"), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(scheduled_end=order.scheduled_start + timedelta(minutes=721))
