from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory(username="frontdesk")


@pytest.fixture
def room(db):
    return RoomFactory(name="CT 1", ae_title="CT01")


@pytest.fixture
def procedure(db):
    return ProcedureFactory(code_value="CTHEAD", code_meaning="CT Head without contrast")


@pytest.fixture
def patient(db):
    return PatientFactory()


@pytest.fixture
def tomorrow_at():
    """tomorrow_at(9, 30) -> an aware datetime tomorrow at 09:30 in the clinic's time zone."""

    def make(hour: int, minute: int = 0) -> datetime:
        day = timezone.localdate() + timedelta(days=1)
        return timezone.make_aware(datetime(day.year, day.month, day.day, hour, minute))

    return make
