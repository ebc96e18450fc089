from datetime import time

import pytest

from scheduling import selectors, services
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db


def test_free_slots_skip_booked_time(patient, procedure, user, tomorrow_at):
    room = RoomFactory(hours=[(d, time(8), time(10)) for d in range(7)])
    services.order_book(patient=patient, procedure=procedure, room=room, start=tomorrow_at(8, 30), user=user)

    slots = selectors.room_free_slots(room=room, day=tomorrow_at(8).date(), duration_minutes=30)

    assert [f"{s:%H:%M}" for s in slots] == ["08:00", "09:00", "09:15", "09:30"]


def test_free_slots_exclude_the_order_being_rescheduled(patient, procedure, user, tomorrow_at):
    room = RoomFactory(hours=[(d, time(8), time(9)) for d in range(7)])
    order = services.order_book(
        patient=patient, procedure=procedure, room=room, start=tomorrow_at(8), user=user
    )

    slots = selectors.room_free_slots(
        room=room, day=tomorrow_at(8).date(), duration_minutes=30, exclude=order
    )

    assert [f"{s:%H:%M}" for s in slots] == ["08:00", "08:15", "08:30"]


def test_schedule_groups_orders_by_room(patient, procedure, room, user, tomorrow_at):
    order = services.order_book(
        patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
    )
    schedule = dict(selectors.schedule_for_day(day=tomorrow_at(9).date()))
    assert [o.pk for o in schedule[room]] == [order.pk]


@pytest.mark.parametrize(
    "modality, meaning, shown",
    [
        ("CT", "CT Head without contrast", "CT Head without contrast (P1)"),
        ("US", "Abdomen", "US Abdomen (P1)"),
        ("MR", "MRI knee", "MR MRI knee (P1)"),
    ],
)
def test_a_procedure_reads_with_its_modality_once(modality, meaning, shown):
    from scheduling.models import Procedure

    assert str(Procedure(modality=modality, code_meaning=meaning, code_value="P1")) == shown
