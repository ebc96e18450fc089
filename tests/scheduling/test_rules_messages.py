"""Each rule's exact words and code, as every door (form, admin, API, HL7) passes them on.

The API and HL7 hand a rule's code and message to another system: a changed code or a garbled message
is a broken interface, so they are pinned here rule by rule (found by `make mutate`, docs/MUTATION.md).
"""

from datetime import datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from scheduling import rules, services
from scheduling.models import OrderStatus
from tests.factories import OrderFactory, PatientFactory, RoomFactory

pytestmark = pytest.mark.django_db


def triples(problems):
    return [(p.field, p.code, p.message) for p in problems]


@pytest.mark.parametrize("status", list(OrderStatus))
def test_the_status_checks_say_why(status):
    order = OrderFactory(status=status, cancel_reason="x" if status == OrderStatus.CANCELLED else "")
    label = order.get_status_display().lower()

    editable = (
        [] if status in rules.EDITABLE else [(None, "not_editable", f"A {label} order cannot be changed.")]
    )
    assert triples(rules.check_editable(order=order)) == editable

    discontinuable = (
        []
        if status == OrderStatus.IN_PROGRESS
        else [(None, "illegal_transition", f"An order that is {label} cannot be discontinued.")]
    )
    assert triples(rules.check_discontinue(order=order)) == discontinuable

    movable = (
        []
        if status in (OrderStatus.SCHEDULED, OrderStatus.ARRIVED)
        else [(None, "not_reschedulable", f"A {label} order cannot be rescheduled.")]
    )
    if status == OrderStatus.REQUESTED:
        # Nothing to move yet: the clerk is pointed to booking it.
        movable = [
            (
                None,
                "not_reschedulable",
                "This order is requested and not booked yet: book it from the To schedule list.",
            )
        ]
    assert triples(rules.check_reschedulable(order)) == movable

    for to in OrderStatus:
        allowed = to in rules.TRANSITIONS[status]
        problems = triples(rules.check_transition(order=order, to=to, reason="Patient called"))
        expected = (
            []
            if allowed
            else [
                (None, "illegal_transition", f"An order that is {label} cannot be marked {to.label.lower()}.")
            ]
        )
        if (status, to) == (OrderStatus.SCHEDULED, OrderStatus.NO_SHOW):
            # Tomorrow's exam, 09:00-09:30: its time has not passed yet.
            expected = [
                (
                    None,
                    "not_yet_due",
                    "The exam is booked until 09:30: it can be marked a no-show once that time has passed.",
                )
            ]
        assert problems == expected, (status, to)


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_cancellation_without_a_reason_names_the_reason_field(reason):
    order = OrderFactory()
    assert triples(rules.check_transition(order=order, to=OrderStatus.CANCELLED, reason=reason)) == [
        ("reason", "reason_required", "Give a reason for the cancellation.")
    ]


def test_a_cancellation_asked_without_any_reason_needs_one():
    order = OrderFactory()
    assert [p.code for p in rules.check_transition(order=order, to=OrderStatus.CANCELLED)] == [
        "reason_required"
    ]


def test_a_naive_start_is_a_programming_error(patient, procedure, room):
    with pytest.raises(ValueError) as refused:
        rules.check_booking(
            patient=patient,
            procedure=procedure,
            room=room,
            start=datetime(2030, 1, 1, 9),
            duration_minutes=30,
        )
    assert str(refused.value) == "scheduled start must be timezone-aware"


def test_the_opening_hours_messages(patient, procedure, tomorrow_at):
    room = RoomFactory(name="CT 2", hours=[(d, time(8), time(17)) for d in range(6)])
    day = tomorrow_at(9)
    sunday = day + timedelta(days=(6 - day.weekday()) % 7)
    assert triples(
        rules.check_booking(
            patient=patient, procedure=procedure, room=room, start=sunday, duration_minutes=30
        )
    ) == [("start", "closed", "CT 2 is closed on Sunday.")]
    late = (
        day.replace(hour=16, minute=45)
        if day.weekday() != 6
        else (day + timedelta(days=1)).replace(hour=16, minute=45)
    )
    assert triples(
        rules.check_booking(patient=patient, procedure=procedure, room=room, start=late, duration_minutes=30)
    ) == [("start", "outside_hours", "CT 2 is open 08:00-17:00 on that day; the exam would run 16:45-17:15.")]


def test_one_refusal_per_field_and_the_others_still_checked(patient, procedure, tomorrow_at):
    # An inactive room of the wrong modality: one message for the room, and the time is still checked.
    room = RoomFactory(name="MR 9", modality="MR", ae_title="MR09", active=False)
    late = tomorrow_at(16, 45)
    assert [
        (f, c)
        for f, c, _ in triples(
            rules.check_booking(
                patient=patient, procedure=procedure, room=room, start=late, duration_minutes=30
            )
        )
    ] == [("room", "room_inactive"), ("start", "outside_hours")]


def test_the_room_taken_message_names_the_exam(patient, procedure, room, user, tomorrow_at):
    booked = services.order_book(
        patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
    )
    problems = rules.check_booking(
        patient=PatientFactory(),
        procedure=procedure,
        room=room,
        start=tomorrow_at(9, 15),
        duration_minutes=30,
    )
    assert triples(problems) == [
        (
            "start",
            "room_taken",
            f"CT 1 is already booked 09:00-09:30 (accession {booked.accession_number}). Choose a free slot.",
        )
    ]


def test_the_patient_overlap_warning_and_its_error(patient, procedure, room, user, tomorrow_at):
    services.order_book(patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user)
    other = RoomFactory(name="CT 7")
    moved = services.order_book(
        patient=PatientFactory(), procedure=procedure, room=other, start=tomorrow_at(11), user=user
    )
    moved.patient = patient
    moved.save()
    problems = rules.check_reschedule(order=moved, start=tomorrow_at(9, 15))
    message = (
        f"{patient.display_name} already has {procedure.code_meaning} in CT 1 at 09:00. "
        "Tick 'book anyway' to confirm a second exam at an overlapping time."
    )
    assert triples(problems) == [(None, "patient_overlap", message)]
    error = rules.problems_error(problems)
    assert isinstance(error, services.PatientOverlapWarning)
    assert (error.message, error.code) == (message, "patient_overlap")
    assert rules.check_reschedule(order=moved, start=tomorrow_at(9, 15), confirm_patient_overlap=True) == []


def test_refusals_keep_their_codes_in_the_error():
    keyed = rules.problems_error(
        [
            rules.Problem("room", "Room A is not in service.", "room_inactive"),
            rules.Problem(None, "Whole", "w"),
        ]
    )
    assert [(e.message, e.code) for e in keyed.error_dict["room"]] == [
        ("Room A is not in service.", "room_inactive")
    ]
    assert [(e.message, e.code) for e in keyed.error_dict["__all__"]] == [("Whole", "w")]
    unkeyed = rules.problems_error(
        [rules.Problem(None, "A completed order cannot be changed.", "not_editable")]
    )
    assert not hasattr(unkeyed, "error_dict")
    assert [(e.message, e.code) for e in unkeyed.error_list] == [
        ("A completed order cannot be changed.", "not_editable")
    ]
    with pytest.raises(ValidationError):
        rules.raise_problems(iter([rules.Problem(None, "x", "y")]))
    rules.raise_problems([])  # nothing wrong, nothing raised


def test_a_past_start_a_minute_ago(patient, procedure, room):
    past = timezone.now() - timedelta(minutes=1)
    assert ("start", "past", "This time has already passed; choose a later one.") in triples(
        rules.check_booking(patient=patient, procedure=procedure, room=room, start=past, duration_minutes=30)
    )


def test_a_room_out_of_service_and_a_procedure_no_longer_offered(procedure, tomorrow_at):
    room = RoomFactory(name="CT 3", active=False)
    procedure.active = False
    problems = rules.check_booking(
        patient=PatientFactory(), procedure=procedure, room=room, start=tomorrow_at(9), duration_minutes=30
    )
    assert triples(problems) == [
        ("room", "room_inactive", "Room CT 3 is not in service."),
        ("procedure", "procedure_inactive", f"{procedure.code_meaning} is no longer offered."),
    ]
