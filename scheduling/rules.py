"""The booking rules as checks: each looks, writes nothing, and returns what is wrong.

A clerk's form, the admin, an API client and an HL7 message are all held to these same rules: the forms
call the checks in `clean()` to put each problem next to its field; the write services in services.py
call them again with the room locked, so a slot taken in between is still refused. Nothing here writes,
so a check can run while a form is being validated, or for an order that will never be saved.

A problem names the field the clerk can fix ("room", "procedure", "start", "reason"; None for the whole
request). A confirmable problem (the patient already has an exam then) is a warning: it stands unless the
caller confirms with the named flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from . import validators
from .models import ACTIVE_STATUSES, Order, OrderStatus, Patient, Procedure, Room

# Which status an order may move to from each status. Anything else is refused with a message.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    # A requested order leaves REQUESTED by being booked (services.order_schedule), or is cancelled.
    OrderStatus.REQUESTED: (OrderStatus.CANCELLED,),
    # A no-show only once the exam's time has passed (no_show_due): see check_transition.
    OrderStatus.SCHEDULED: (OrderStatus.ARRIVED, OrderStatus.CANCELLED, OrderStatus.NO_SHOW),
    OrderStatus.ARRIVED: (OrderStatus.IN_PROGRESS, OrderStatus.CANCELLED),
    OrderStatus.IN_PROGRESS: (OrderStatus.COMPLETED,),
    OrderStatus.COMPLETED: (),
    OrderStatus.CANCELLED: (),
    # Final like a cancellation: the patient is called back and booked again as a new order.
    OrderStatus.NO_SHOW: (),
}

# Not in TRANSITIONS on purpose: the order pages derive their buttons from TRANSITIONS, and going back
# from IN_PROGRESS to ARRIVED is the modality's call (MPPS DISCONTINUED), made through order_discontinue.
DISCONTINUABLE = (OrderStatus.IN_PROGRESS,)
RESCHEDULABLE = (OrderStatus.SCHEDULED, OrderStatus.ARRIVED)
# Booked with services.order_schedule: a requested order gets its room and time.
SCHEDULABLE = (OrderStatus.REQUESTED,)
# The details of an order can be changed while it waits to be booked and while it is on a worklist.
EDITABLE = (OrderStatus.REQUESTED, *ACTIVE_STATUSES)

# The longest cancellation or discontinuation reason kept (the column's length).
REASON_MAX = 200

CONFIRM_PATIENT_OVERLAP = "confirm_patient_overlap"


@dataclass(frozen=True)
class Problem:
    """One thing that stops a booking or a change, said for the person who can fix it."""

    field: str | None  # the form field to fix ("room", "start", ...); None: the request as a whole
    message: str
    code: str
    confirm: str = ""  # for a warning: the flag that overrides it ("confirm_patient_overlap")
    # The order that stands in the way (the one holding the slot), for a caller that names it (the API).
    order: Order | None = field(default=None, compare=False)


class PatientOverlapWarning(ValidationError):
    """The patient already has an exam at an overlapping time: allowed only when the clerk confirms."""


def problems_error(problems: Iterable[Problem]) -> ValidationError:
    """The problems as the ValidationError the services raise: keyed by field, or a warning.

    Refusals come first: a warning (a PatientOverlapWarning) is raised only when nothing else is wrong,
    since confirming it would not help otherwise.
    """
    problems = list(problems)
    refusals = [p for p in problems if not p.confirm]
    if not refusals:
        warning = problems[0]
        return PatientOverlapWarning(warning.message, code=warning.code)
    if all(p.field is None for p in refusals):
        return ValidationError([ValidationError(p.message, code=p.code) for p in refusals])
    errors: dict[str, list[ValidationError]] = {}
    for problem in refusals:
        errors.setdefault(problem.field or NON_FIELD_ERRORS, []).append(
            ValidationError(problem.message, code=problem.code)
        )
    error = ValidationError(errors)
    error.order = next((p.order for p in refusals if p.order is not None), None)
    return error


def raise_problems(problems: Iterable[Problem]) -> None:
    """Raise problems_error(problems) when there is any problem."""
    problems = list(problems)
    if problems:
        raise problems_error(problems)


# --- the booking rules, one each ------------------------------------------------------------------


def patient_not_merged(patient: Patient) -> Problem | None:
    """A record merged into another holds no orders: its exams are booked for the record it became."""
    if patient.merged_into_id is None:
        return None
    return Problem(
        "patient",
        _("%(patient)s was merged into the record with MRN %(mrn)s: book for that record.")
        % {"patient": patient.display_name, "mrn": patient.merged_into.mrn},
        "patient_merged",
    )


def duration_valid(duration_minutes: int) -> Problem | None:
    try:
        validators.validate_duration(duration_minutes)
    except ValidationError as exc:
        return Problem("duration_minutes", exc.messages[0], "duration")
    return None


def room_in_service(room: Room) -> Problem | None:
    if room.active:
        return None
    return Problem("room", _("Room %(room)s is not in service.") % {"room": room.name}, "room_inactive")


def procedure_offered(procedure: Procedure) -> Problem | None:
    if procedure.active:
        return None
    return Problem(
        "procedure",
        _("%(proc)s is no longer offered.") % {"proc": procedure.code_meaning},
        "procedure_inactive",
    )


def room_fits_procedure(room: Room, procedure: Procedure) -> Problem | None:
    if room.modality == procedure.modality:
        return None
    return Problem(
        "room",
        _("%(room)s is a %(rmod)s room; %(proc)s needs a %(pmod)s room.")
        % {
            "room": room.name,
            "rmod": room.modality,
            "proc": procedure.code_meaning,
            "pmod": procedure.modality,
        },
        "wrong_modality",
    )


def not_in_past(start: datetime) -> Problem | None:
    if start >= timezone.now():
        return None
    return Problem("start", _("This time has already passed; choose a later one."), "past")


def within_horizon(start: datetime) -> Problem | None:
    """No booking further ahead than RIS_BOOKING_HORIZON_DAYS: a year typed as 2062 for 2026 is a slip,
    and a start near the calendar's end (year 9999) has no end time at all."""
    days = settings.RIS_BOOKING_HORIZON_DAYS
    if start - timezone.now() <= timedelta(days=days):
        return None
    return Problem(
        "start",
        _("Exams can be booked at most %(days)s days ahead; check the year.") % {"days": days},
        "too_far_ahead",
    )


def within_opening_hours(room: Room, start: datetime, end: datetime) -> Problem | None:
    """The whole exam within the room's opening hours of its day (an exam never runs past midnight)."""
    local_start, local_end = timezone.localtime(start), timezone.localtime(end)
    hours = room.hours_for(local_start.weekday())
    if hours is None:
        return Problem(
            "start",
            _("%(room)s is closed on %(day)s.") % {"room": room.name, "day": date_format(local_start, "l")},
            "closed",
        )
    opens, closes = hours.span_on(local_start.date())
    if opens <= start and end <= closes:
        return None
    return Problem(
        "start",
        _("%(room)s is open %(opens)s-%(closes)s on that day; the exam would run %(start)s-%(end)s.")
        % {
            "room": room.name,
            "opens": f"{hours.opens:%H:%M}",
            "closes": f"{hours.closes:%H:%M}",
            "start": f"{local_start:%H:%M}",
            "end": f"{local_end:%H:%M}",
        },
        "outside_hours",
    )


def _others(start: datetime, end: datetime, exclude: Order | None):
    overlapping = Order.objects.overlapping(start, end)
    return overlapping if exclude is None else overlapping.exclude(pk=exclude.pk)


def room_free(room: Room, start: datetime, end: datetime, exclude: Order | None) -> Problem | None:
    if room.pk is None:
        return None  # a room not saved yet holds no exams
    clash = (
        _others(start, end, exclude)
        .filter(room=room)
        .only("accession_number", "scheduled_start", "scheduled_end")
        .first()
    )
    if clash is None:
        return None
    return Problem(
        "start",
        _("%(room)s is already booked %(start)s-%(end)s (accession %(acc)s). Choose a free slot.")
        % {
            "room": room.name,
            "start": f"{timezone.localtime(clash.scheduled_start):%H:%M}",
            "end": f"{timezone.localtime(clash.scheduled_end):%H:%M}",
            "acc": clash.accession_number,
        },
        "room_taken",
        order=clash,
    )


def rooms_taken(rooms: Iterable[Room], start: datetime, end: datetime) -> set[int]:
    """The primary keys of those of `rooms` that room_free would refuse from `start` to `end` (an order
    holds part of it), in one query: the order in which services.order_place tries rooms, the free ones
    first. Not a rule of its own: each try is still held to check_booking, which decides."""
    pks = [room.pk for room in rooms if room.pk is not None]
    if not pks:
        return set()
    return set(
        Order.objects.overlapping(start, end)
        .filter(room_id__in=pks)
        .order_by()
        .values_list("room_id", flat=True)
        .distinct()
    )


def patient_free(patient: Patient, start: datetime, end: datetime, exclude: Order | None) -> Problem | None:
    """A warning, not a refusal: two exams of one patient may overlap (a CT then an ultrasound)."""
    if patient.pk is None:
        return None  # a patient being registered with this order has no other exam
    own = (
        _others(start, end, exclude)
        .filter(patient=patient)
        .select_related("room", "procedure")
        # What the warning says, not the three rows whole: this runs for nearly every booking.
        .only("scheduled_start", "room__name", "procedure__code_meaning")
        .first()
    )
    if own is None:
        return None
    return Problem(
        None,
        _(
            "%(patient)s already has %(proc)s in %(room)s at %(time)s. "
            "Tick 'book anyway' to confirm a second exam at an overlapping time."
        )
        % {
            "patient": patient.display_name,
            "proc": own.procedure.code_meaning,
            "room": own.room.name,
            "time": f"{timezone.localtime(own.scheduled_start):%H:%M}",
        },
        "patient_overlap",
        confirm=CONFIRM_PATIENT_OVERLAP,
    )


# --- the checks the forms and services call ---------------------------------------------------------


def check_booking(
    *,
    patient: Patient,
    procedure: Procedure,
    room: Room,
    start: datetime,
    duration_minutes: int,
    exclude: Order | None = None,
    confirm_patient_overlap: bool = False,
) -> list[Problem]:
    """Every booking rule for `procedure` for `patient` in `room` from `start`; writes nothing.

    The first refusal per field (a time both past and outside the opening hours is reported as past),
    then the patient-overlap warning unless confirmed. `exclude` is the order being moved, whose own
    time does not count against it. Empty when the booking may go ahead.
    """
    if timezone.is_naive(start):
        raise ValueError("scheduled start must be timezone-aware")
    refusals = [
        patient_not_merged(patient),
        room_in_service(room),
        procedure_offered(procedure),
        room_fits_procedure(room, procedure),
        not_in_past(start) or within_horizon(start),
        duration_valid(duration_minutes),
    ]
    # Without a sane start and length there is no end to check the hours and the room against.
    if any(p is not None and p.code in ("too_far_ahead", "duration") for p in refusals):
        return _first_per_field(p for p in refusals if p is not None)
    end = start + timedelta(minutes=duration_minutes)
    if not any(p is not None and p.field == "start" for p in refusals):
        refusals.append(within_opening_hours(room, start, end))
    if not any(p is not None and p.field == "start" for p in refusals):
        refusals.append(room_free(room, start, end, exclude))
    problems = _first_per_field(p for p in refusals if p is not None)
    if not problems and not confirm_patient_overlap:
        warning = patient_free(patient, start, end, exclude)
        if warning is not None:
            problems.append(warning)
    return problems


def _first_per_field(problems: Iterable[Problem]) -> list[Problem]:
    seen, first = set(), []
    for problem in problems:
        if problem.field not in seen:
            seen.add(problem.field)
            first.append(problem)
    return first


def check_request(
    *, patient: Patient, procedure: Procedure, duration_minutes: int, requested_start: datetime | None
) -> list[Problem]:
    """Whether an order of `procedure` for `patient` may wait to be booked (services.order_request): the
    rules of a booking that do not depend on a room or a time; writes nothing."""
    if requested_start is not None and timezone.is_naive(requested_start):
        raise ValueError("requested start must be timezone-aware")
    refusals = [patient_not_merged(patient), procedure_offered(procedure), duration_valid(duration_minutes)]
    return [p for p in refusals if p is not None]


def check_schedulable(order: Order) -> list[Problem]:
    if order.status in SCHEDULABLE:
        return []
    return [
        Problem(
            None,
            _("Order %(accession)s is %(status)s, not waiting to be booked: reschedule it instead.")
            % {"accession": order.accession_number, "status": order.get_status_display().lower()},
            "not_requested",
        )
    ]


def check_schedule(
    *,
    order: Order,
    room: Room,
    start: datetime,
    duration_minutes: int | None = None,
    confirm_patient_overlap: bool = False,
) -> list[Problem]:
    """Whether the requested `order` may be booked in `room` at `start`: the rules of a booking; writes
    nothing."""
    return check_schedulable(order) or check_booking(
        patient=order.patient,
        procedure=order.procedure,
        room=room,
        start=start,
        duration_minutes=duration_minutes or order.duration_minutes,
        confirm_patient_overlap=confirm_patient_overlap,
    )


def check_reschedulable(order: Order) -> list[Problem]:
    if order.status in RESCHEDULABLE:
        return []
    if order.status in SCHEDULABLE:
        return [
            Problem(
                None,
                _("This order is requested and not booked yet: book it from the To schedule list."),
                "not_reschedulable",
            )
        ]
    return [
        Problem(
            None,
            _("A %(status)s order cannot be rescheduled.") % {"status": order.get_status_display().lower()},
            "not_reschedulable",
        )
    ]


def check_reschedule(
    *,
    order: Order,
    start: datetime,
    room: Room | None = None,
    duration_minutes: int | None = None,
    confirm_patient_overlap: bool = False,
) -> list[Problem]:
    """Whether `order` may move to `start` (in `room`, for `duration_minutes`); writes nothing."""
    return check_reschedulable(order) or check_booking(
        patient=order.patient,
        procedure=order.procedure,
        room=room or order.room,
        start=start,
        duration_minutes=duration_minutes or order.duration_minutes,
        exclude=order,
        confirm_patient_overlap=confirm_patient_overlap,
    )


def check_transition(*, order: Order, to: str, reason: str = "") -> list[Problem]:
    """Whether `order` may move to status `to` (a cancellation needs a reason); writes nothing."""
    if to not in TRANSITIONS[order.status]:
        return [
            Problem(
                None,
                _("An order that is %(current)s cannot be marked %(to)s.")
                % {"current": order.get_status_display().lower(), "to": OrderStatus(to).label.lower()},
                "illegal_transition",
            )
        ]
    if to == OrderStatus.CANCELLED and not reason.strip():
        return [Problem("reason", _("Give a reason for the cancellation."), "reason_required")]
    if to == OrderStatus.NO_SHOW and not no_show_due(order):
        return [
            Problem(
                None,
                _("The exam is booked until %(end)s: it can be marked a no-show once that time has passed.")
                % {"end": f"{timezone.localtime(order.scheduled_end):%H:%M}"},
                "not_yet_due",
            )
        ]
    return []


def no_show_due(order: Order, now: datetime | None = None) -> bool:
    """Whether the exam's time has passed, so that a scheduled order may be marked a no-show.

    Its end, not its start: a patient who comes late but within the slot can still be seen (a no-show
    is final), and the end-of-day run (services.orders_mark_no_shows) uses the same bound.
    """
    return order.scheduled_end is not None and order.scheduled_end <= (now or timezone.now())


def check_discontinue(*, order: Order) -> list[Problem]:
    if order.status in DISCONTINUABLE:
        return []
    return [
        Problem(
            None,
            _("An order that is %(current)s cannot be discontinued.")
            % {"current": order.get_status_display().lower()},
            "illegal_transition",
        )
    ]


def check_editable(*, order: Order) -> list[Problem]:
    if order.status in EDITABLE:
        return []
    return [
        Problem(
            None,
            _("A %(status)s order cannot be changed.") % {"status": order.get_status_display().lower()},
            "not_editable",
        )
    ]


def check_merge(*, source: Patient, target: Patient) -> list[Problem]:
    """Whether the record `source` may be merged into `target` (services.patient_merge); writes nothing.

    A merge is final: a record merged already, or into one that is itself merged, would leave orders
    on a record nobody looks up any more.
    """
    if source.pk == target.pk:
        return [Problem(None, _("A patient record cannot be merged into itself."), "merge_into_self")]
    if source.merged_into_id is not None:
        return [
            Problem(
                None,
                _("The record with MRN %(mrn)s was already merged into another record.")
                % {"mrn": source.mrn},
                "already_merged",
            )
        ]
    if target.merged_into_id is not None:
        return [
            Problem(
                None,
                _("The record with MRN %(mrn)s was itself merged into another record: merge into that one.")
                % {"mrn": target.mrn},
                "merge_into_merged",
            )
        ]
    return []
