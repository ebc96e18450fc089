"""The booking rules as checks (scheduling.rules): each refusal at its field, and nothing written.

The front desk's forms, the admin and (later) the API and HL7 call these checks before the services
write; a check that wrote, queued a task or took a number would book half an exam for a refused form.
"""

from datetime import time, timedelta

import pytest
import time_machine
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduling import rules, selectors, services
from scheduling.admin import OrderAdmin
from scheduling.forms import BookingForm, CancelForm, RescheduleForm
from scheduling.models import AccessionCounter, Order, OrderStatus
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory

pytestmark = pytest.mark.django_db


def check(patient, procedure, room, start, **kw):
    return rules.check_booking(
        patient=patient,
        procedure=procedure,
        room=room,
        start=start,
        duration_minutes=kw.pop("duration_minutes", procedure.default_duration),
        **kw,
    )


def codes(problems):
    return [(p.field, p.code) for p in problems]


def writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if not q["sql"].lstrip().upper().startswith(("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK"))
    ]


def booking_data(patient, procedure, room, start) -> dict:
    """What the booking page posts for `start`."""
    local = timezone.localtime(start)
    return {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "date": local.date().isoformat(),
        "slot": f"{local:%H:%M}",
        "priority": "ROUTINE",
    }


@pytest.fixture
def booked(patient, procedure, room, user, tomorrow_at):
    """A 30-minute exam tomorrow 09:00-09:30 in the room."""
    return services.order_book(
        patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
    )


def test_a_free_slot_has_no_problem(patient, procedure, room, tomorrow_at):
    assert check(patient, procedure, room, tomorrow_at(9)) == []


def test_back_to_back_exams_are_no_overlap(booked, procedure, room, user, tomorrow_at):
    other = PatientFactory()
    # 30 minutes ending exactly when the booked one starts, and one starting exactly when it ends.
    assert check(other, procedure, room, tomorrow_at(8, 30)) == []
    assert check(other, procedure, room, tomorrow_at(9, 30)) == []
    before = services.order_book(
        patient=other, procedure=procedure, room=room, start=tomorrow_at(8, 30), user=user
    )
    after = services.order_book(
        patient=other, procedure=procedure, room=room, start=tomorrow_at(9, 30), user=user
    )
    assert (before.scheduled_end, after.scheduled_start) == (booked.scheduled_start, booked.scheduled_end)
    # The patient's own next exam right after: no overlap warning either.
    assert check(booked.patient, procedure, RoomFactory(), tomorrow_at(9, 30)) == []


def test_the_free_slots_offer_the_times_right_before_and_after_an_exam(booked, room, tomorrow_at):
    slots = selectors.room_free_slots(room=room, day=tomorrow_at(9).date(), duration_minutes=30)
    assert tomorrow_at(8, 30) in slots and tomorrow_at(9, 30) in slots
    assert tomorrow_at(8, 45) not in slots and tomorrow_at(9) not in slots and tomorrow_at(9, 15) not in slots


def test_one_minute_of_overlap_is_refused_at_either_end(booked, procedure, room, tomorrow_at):
    other = PatientFactory()
    assert codes(check(other, procedure, room, tomorrow_at(8, 31))) == [("start", "room_taken")]
    assert codes(check(other, procedure, room, tomorrow_at(9, 29), duration_minutes=1)) == [
        ("start", "room_taken")
    ]


def test_a_cancelled_exam_frees_its_time(booked, procedure, room, user, tomorrow_at):
    services.order_cancel(order=booked, reason="Patient called", user=user)
    assert check(PatientFactory(), procedure, room, tomorrow_at(9)) == []


def test_each_rule_names_its_field(patient, procedure, tomorrow_at):
    closed_sunday = RoomFactory(hours=[(d, time(8), time(17)) for d in range(6)])
    mr = RoomFactory(modality="MR", ae_title="MR01")
    day = tomorrow_at(9)
    if day.weekday() == 6:  # the room's open days are Monday to Saturday: from Monday when tomorrow is Sunday
        day += timedelta(days=1)
    sunday = day + timedelta(days=(6 - day.weekday()) % 7)

    assert codes(check(patient, procedure, mr, day)) == [("room", "wrong_modality")]
    assert codes(check(patient, procedure, closed_sunday, sunday)) == [("start", "closed")]
    assert codes(check(patient, procedure, closed_sunday, day.replace(hour=16, minute=45))) == [
        ("start", "outside_hours")
    ]
    assert codes(check(patient, procedure, closed_sunday, day.replace(hour=7, minute=45))) == [
        ("start", "outside_hours")
    ]
    # Ending exactly at closing time is inside the hours.
    assert check(patient, procedure, closed_sunday, day.replace(hour=16, minute=30)) == []
    closed_sunday.active = False
    procedure.active = False
    assert codes(check(patient, procedure, closed_sunday, day)) == [
        ("room", "room_inactive"),
        ("procedure", "procedure_inactive"),
    ]


def test_a_time_that_passed_is_refused_once(patient, procedure, room):
    today = timezone.localdate()
    noon = timezone.make_aware(timezone.datetime.combine(today, time(12)))
    with time_machine.travel(noon, tick=False):
        problems = check(patient, procedure, room, noon - timedelta(minutes=15))
        assert check(patient, procedure, room, noon) == []
    assert codes(problems) == [("start", "past")]
    assert problems[0].message == "This time has already passed; choose a later one."


def test_the_patient_overlap_is_a_warning_until_confirmed(booked, procedure, tomorrow_at):
    elsewhere = RoomFactory()
    problems = check(booked.patient, procedure, elsewhere, tomorrow_at(9, 15))
    assert codes(problems) == [(None, "patient_overlap")]
    assert problems[0].confirm == "confirm_patient_overlap"
    assert isinstance(rules.problems_error(problems), services.PatientOverlapWarning)
    assert check(booked.patient, procedure, elsewhere, tomorrow_at(9, 15), confirm_patient_overlap=True) == []


def test_a_refusal_hides_the_warning(booked, procedure, tomorrow_at):
    # Confirming the overlap would not help when the room is of the wrong modality anyway.
    mr = RoomFactory(modality="MR", ae_title="MR02")
    assert codes(check(booked.patient, procedure, mr, tomorrow_at(9, 15))) == [("room", "wrong_modality")]


def test_the_checks_write_nothing(booked, patient, procedure, room, user, tomorrow_at):
    counter = AccessionCounter.objects.get().last_value
    elsewhere = RoomFactory()
    with CaptureQueriesContext(connection) as queries:
        check(patient, procedure, room, tomorrow_at(9))  # room taken
        check(PatientFactory.build(pk=None), procedure, room, tomorrow_at(11))  # free
        check(booked.patient, procedure, elsewhere, tomorrow_at(9))  # the patient's overlap warning
        rules.check_reschedule(order=booked, start=tomorrow_at(10))
        rules.check_transition(order=booked, to=OrderStatus.CANCELLED, reason="")
        rules.check_transition(order=booked, to=OrderStatus.COMPLETED)
        rules.check_editable(order=booked)
        rules.check_discontinue(order=booked)
    assert writes(queries.captured_queries) == []
    assert Order.objects.count() == 1
    assert AccessionCounter.objects.get().last_value == counter
    booked.refresh_from_db()
    assert (booked.scheduled_start, booked.status) == (tomorrow_at(9), OrderStatus.SCHEDULED)


def test_a_form_refused_by_the_rules_writes_nothing(booked, procedure, room, tomorrow_at):
    data = booking_data(PatientFactory(), procedure, room, tomorrow_at(9, 15))
    with CaptureQueriesContext(connection) as queries:
        form = BookingForm(data)
        assert not form.is_valid()
    assert form.errors["slot"] == [
        f"{room.name} is already booked 09:00-09:30 (accession {booked.accession_number}). Choose a free slot."
    ]
    assert writes(queries.captured_queries) == []
    assert Order.objects.count() == 1


def test_a_valid_form_books_nothing_until_the_service_is_called(patient, procedure, room, tomorrow_at):
    form = BookingForm(booking_data(patient, procedure, room, tomorrow_at(9)))
    with CaptureQueriesContext(connection) as queries:
        assert form.is_valid(), form.errors
    assert writes(queries.captured_queries) == []
    assert not Order.objects.exists()


def test_the_reschedule_form_asks_to_confirm_a_patient_overlap(booked, procedure, user, tomorrow_at):
    other_room = RoomFactory()
    second = services.order_book(
        patient=booked.patient, procedure=procedure, room=other_room, start=tomorrow_at(11), user=user
    )
    form = RescheduleForm(
        {"room": other_room.pk, "date": tomorrow_at(9).date().isoformat(), "slot": "09:15"}, order=second
    )
    assert not form.is_valid()
    assert "already has" in form.non_field_errors()[0]
    assert form.fields["confirm_patient_overlap"].widget.input_type == "checkbox"


def test_the_cancel_form_refuses_a_finished_order(user):
    done = OrderFactory(status=OrderStatus.COMPLETED)
    form = CancelForm({"reason": "Patient left"}, order=done)
    assert not form.is_valid()
    assert form.non_field_errors() == ["An order that is completed cannot be marked cancelled."]


def admin_order_form(user, data):
    """The form the admin's add page uses (its fields, its split date and time widget)."""
    request = RequestFactory().get("/")
    request.user = user
    form_class = OrderAdmin(Order, admin.site).get_form(request, None, change=False)
    return form_class(data)


def admin_data(patient, procedure, room, start):
    return {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "scheduled_start_0": start.date().isoformat(),
        "scheduled_start_1": f"{timezone.localtime(start):%H:%M}",
        "priority": "ROUTINE",
    }


def test_the_admin_form_checks_without_booking(admin_user, patient, procedure, room, tomorrow_at):
    start = tomorrow_at(10)
    form = admin_order_form(admin_user, admin_data(patient, procedure, room, start))
    with CaptureQueriesContext(connection) as queries:
        assert form.is_valid(), form.errors
    assert writes(queries.captured_queries) == []
    assert not Order.objects.exists()
    order = form.order_write(user=admin_user)
    assert Order.objects.get().pk == order.pk
    assert order.scheduled_start == start and order.duration_minutes == procedure.default_duration


def test_the_admin_form_shows_the_rule_at_the_field(admin_user, booked, procedure, room, tomorrow_at):
    form = admin_order_form(admin_user, admin_data(PatientFactory(), procedure, room, tomorrow_at(9, 15)))
    assert not form.is_valid()
    assert "already booked 09:00-09:30" in form.errors["scheduled_start"][0]
    assert Order.objects.count() == 1


def test_every_door_gets_the_same_message_for_the_same_rule(booked, procedure, room, user, tomorrow_at):
    """The service (API, HL7, admin save) and the form (clerk) say the same words for a taken slot."""
    other = PatientFactory()
    problems = check(other, procedure, room, tomorrow_at(9, 15))
    with pytest.raises(services.ValidationError) as refused:
        services.order_book(
            patient=other, procedure=procedure, room=room, start=tomorrow_at(9, 15), user=user
        )
    assert refused.value.message_dict == {"start": [problems[0].message]}
    unused = ProcedureFactory()
    assert not unused.orders.exists()


def test_a_slot_starting_right_now_is_offered_and_bookable(patient, procedure, room):
    # The free slots and the booking check draw the line at the same instant: now is not the past.
    today = timezone.localdate()
    noon = timezone.make_aware(timezone.datetime.combine(today, time(12)))
    with time_machine.travel(noon, tick=False):
        slots = selectors.room_free_slots(room=room, day=today, duration_minutes=30)
        assert slots[0] == noon
        assert check(patient, procedure, room, noon) == []
