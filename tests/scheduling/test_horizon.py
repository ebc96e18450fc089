"""No booking further ahead than RIS_BOOKING_HORIZON_DAYS, by any door."""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from scheduling import rules, services

pytestmark = pytest.mark.django_db


def test_it_refuses_a_start_beyond_the_horizon(patient, procedure, room, user, settings):
    settings.RIS_BOOKING_HORIZON_DAYS = 30
    start = timezone.now() + timedelta(days=31)
    with pytest.raises(ValidationError) as refused:
        services.order_book(patient=patient, procedure=procedure, room=room, start=start, user=user)
    assert refused.value.message_dict["start"] == [
        "Exams can be booked at most 30 days ahead; check the year."
    ]


def test_the_end_of_the_calendar_is_refused_not_a_server_error(patient, procedure, room):
    start = timezone.make_aware(datetime(9999, 12, 31, 23, 0))
    problems = rules.check_booking(
        patient=patient, procedure=procedure, room=room, start=start, duration_minutes=720
    )
    assert [p.code for p in problems] == ["too_far_ahead"]


def test_a_start_within_the_horizon_passes_that_rule(settings):
    settings.RIS_BOOKING_HORIZON_DAYS = 30
    assert rules.within_horizon(timezone.now() + timedelta(days=29)) is None
