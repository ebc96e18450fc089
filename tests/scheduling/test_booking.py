"""The booking rules of scheduling.services: overlap, opening hours, modality, past, patient overlap."""

from datetime import time, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from scheduling import services
from scheduling.models import Order, OrderStatus
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory

pytestmark = pytest.mark.django_db


def book(patient, procedure, room, start, user, **kw):
    return services.order_book(patient=patient, procedure=procedure, room=room, start=start, user=user, **kw)


def test_booking_creates_order_with_identifiers(patient, procedure, room, user, tomorrow_at):
    order = book(patient, procedure, room, tomorrow_at(9), user)

    assert order.status == OrderStatus.SCHEDULED
    assert order.scheduled_end == tomorrow_at(9, 30)
    assert len(order.accession_number) <= 16
    assert order.requested_procedure_id == order.accession_number
    assert order.sps_id == f"{order.accession_number}S1" and len(order.sps_id) <= 16
    assert order.study_instance_uid.startswith("2.25.") and len(order.study_instance_uid) <= 64
    assert order.booked_by == user


def test_accession_numbers_are_unique_and_sequential(patient, procedure, room, user, tomorrow_at):
    orders = [book(patient, procedure, room, tomorrow_at(8 + i), user) for i in range(3)]
    numbers = [o.accession_number for o in orders]

    assert len(set(numbers)) == 3
    assert [int(n[-5:]) for n in numbers] == [1, 2, 3]


def test_study_uid_uses_configured_org_root(settings, patient, procedure, room, user, tomorrow_at):
    settings.RIS_UID_ROOT = "1.2.826.0.1.3680043.10.999"
    order = book(patient, procedure, room, tomorrow_at(9), user)

    assert order.study_instance_uid.startswith("1.2.826.0.1.3680043.10.999.")
    assert len(order.study_instance_uid) <= 64


def test_room_is_never_double_booked(patient, procedure, room, user, tomorrow_at):
    book(patient, procedure, room, tomorrow_at(9), user)
    other = PatientFactory()

    with pytest.raises(ValidationError) as exc:
        book(other, procedure, room, tomorrow_at(9, 15), user)

    assert "already booked 09:00-09:30" in exc.value.message_dict["start"][0]
    assert Order.objects.count() == 1


def test_back_to_back_bookings_are_allowed(patient, procedure, room, user, tomorrow_at):
    book(patient, procedure, room, tomorrow_at(9), user)
    book(PatientFactory(), procedure, room, tomorrow_at(9, 30), user)

    assert Order.objects.count() == 2


def test_cancelled_order_frees_its_slot(patient, procedure, room, user, tomorrow_at):
    first = book(patient, procedure, room, tomorrow_at(9), user)
    services.order_cancel(order=first, reason="Patient called", user=user)

    book(PatientFactory(), procedure, room, tomorrow_at(9), user)

    assert Order.objects.exclude(status=OrderStatus.CANCELLED).count() == 1


def test_booking_outside_opening_hours_is_refused(patient, procedure, user, tomorrow_at):
    room = RoomFactory(hours=[(d, time(8), time(12)) for d in range(7)])

    with pytest.raises(ValidationError) as exc:
        book(patient, procedure, room, tomorrow_at(11, 45), user)

    assert "open 08:00-12:00" in exc.value.message_dict["start"][0]


def test_booking_on_a_closed_day_is_refused(patient, procedure, user, tomorrow_at):
    weekday = tomorrow_at(9).weekday()
    room = RoomFactory(hours=[(d, time(8), time(17)) for d in range(7) if d != weekday])

    with pytest.raises(ValidationError) as exc:
        book(patient, procedure, room, tomorrow_at(9), user)

    assert "is closed on" in exc.value.message_dict["start"][0]


def test_booking_in_the_past_is_refused(patient, procedure, room, user):
    past = timezone.now() - timedelta(minutes=5)

    with pytest.raises(ValidationError) as exc:
        book(patient, procedure, room, past, user)

    assert "already passed" in exc.value.message_dict["start"][0]


def test_room_and_procedure_modality_must_match(patient, room, user, tomorrow_at):
    mr = ProcedureFactory(modality="MR", code_meaning="MR Brain")

    with pytest.raises(ValidationError) as exc:
        book(patient, mr, room, tomorrow_at(9), user)

    assert "needs a MR room" in exc.value.message_dict["room"][0]


def test_inactive_room_and_procedure_are_refused(patient, procedure, room, user, tomorrow_at):
    room.active = False
    room.save()
    with pytest.raises(ValidationError) as exc:
        book(patient, procedure, room, tomorrow_at(9), user)
    assert "not in service" in exc.value.message_dict["room"][0]


def test_patient_overlap_warns_until_confirmed(patient, procedure, user, tomorrow_at):
    room_a, room_b = RoomFactory(), RoomFactory()
    book(patient, procedure, room_a, tomorrow_at(9), user)

    with pytest.raises(services.PatientOverlapWarning):
        book(patient, procedure, room_b, tomorrow_at(9, 15), user)
    assert Order.objects.count() == 1

    book(patient, procedure, room_b, tomorrow_at(9, 15), user, confirm_patient_overlap=True)
    assert Order.objects.count() == 2


def test_timezone_is_the_clinics(settings, patient, procedure, user):
    """08:00 in Bangkok is 01:00 UTC: opening hours are checked in the clinic's local time."""
    settings.TIME_ZONE = "Asia/Bangkok"
    room = RoomFactory(hours=[(d, time(8), time(12)) for d in range(7)])
    with time_machine.travel("2026-11-25 00:00:00+00:00", tick=False):
        start = timezone.make_aware(timezone.datetime(2026, 11, 26, 8, 0))
        order = book(patient, procedure, room, start, user)
    assert order.scheduled_start.utcoffset() is not None
    assert timezone.localtime(order.scheduled_start).hour == 8


def test_accession_counter_restarts_each_day(patient, procedure, room, user, tomorrow_at):
    with time_machine.travel("2026-11-25 02:00:00+00:00", tick=False):
        start = timezone.make_aware(timezone.datetime(2026, 11, 26, 9, 0))
        first = book(patient, procedure, room, start, user)
    with time_machine.travel("2026-11-26 02:00:00+00:00", tick=False):
        start = timezone.make_aware(timezone.datetime(2026, 11, 27, 9, 0))
        second = book(patient, procedure, room, start, user)
    assert first.accession_number == "26112500001"
    assert second.accession_number == "26112600001"
