"""Workflows that change patients and orders. Views, the admin, tasks and commands call these; none
re-implements a rule.

The rules themselves are checks in rules.py, which write nothing: the forms call them to show problems
at their fields, and each service here calls them again inside its transaction, with the rows locked,
before it writes. Every service raises django.core.exceptions.ValidationError with a message keyed by the form field the
clerk can fix ("start", "room", "procedure", ...), so a view can put it next to that field. Writes happen
inside one transaction: a refused booking leaves nothing behind. Each change ends by writing its order
events (scheduling.events) in that transaction; the worklist export, the API's feed and the HL7 link
follow those, so none of them is imported here.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import NoReturn

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from pydicom.uid import generate_uid

from . import events, rules
from .models import (
    ACTIVE_STATUSES,
    AccessionCounter,
    Language,
    Order,
    OrderEventKind,
    OrderStatus,
    Patient,
    Priority,
    Procedure,
    Room,
)

# The rules' names the callers of the services know them by (the views, the admin, the MPPS handler).
PatientOverlapWarning = rules.PatientOverlapWarning
TRANSITIONS = rules.TRANSITIONS
RESCHEDULABLE = rules.RESCHEDULABLE
SCHEDULABLE = rules.SCHEDULABLE
EDITABLE = rules.EDITABLE
DISCONTINUABLE = rules.DISCONTINUABLE


class DuplicatePatientWarning(ValidationError):
    """A patient with the same name and birth date exists: registered only when the clerk confirms."""


class EditConflict(ValidationError):
    """Someone saved the record after the clerk opened the edit form: saving would undo their change.

    Keyed by each field in conflict (the saved value and the clerk's, in the message), with a summary on
    top. `version` is the record's version now: a form that carries it saves the clerk's values when
    they submit again, having seen the other change.
    """

    def __init__(self, errors: dict[str, ValidationError], *, version: int) -> None:
        super().__init__(errors)
        self.version = version


# --- identifiers ------------------------------------------------------------------------------------


def accession_next(*, day: date) -> str:
    """The next accession number for `day`: <prefix><YYMMDD><5 digits>, at most 14 characters.

    One statement creates the day's counter row or increments it and reads the new value (an upsert,
    PostgreSQL and SQLite >= 3.35 alike), inside the caller's transaction: the row stays locked until
    it commits, so two concurrent bookings can never read the same value. It was six queries
    (get_or_create with its savepoint, update, get) on every booking.
    """
    table = connection.ops.quote_name(AccessionCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (day, last_value) VALUES (%s, 1)"
            f" ON CONFLICT (day) DO UPDATE SET last_value = {table}.last_value + 1"
            " RETURNING last_value",
            [day],
        )
        (value,) = cursor.fetchone()
    accession = f"{settings.RIS_ACCESSION_PREFIX}{day:%y%m%d}{value:05d}"
    if len(accession) > 14:
        raise ValidationError(_("The accession number counter is exhausted for today."))
    return accession


def study_uid_new() -> str:
    """A new StudyInstanceUID under the organisation root (RIS_UID_ROOT), or 2.25.<uuid> without one."""
    root = settings.RIS_UID_ROOT.strip().rstrip(".")
    return generate_uid(prefix=f"{root}." if root else None)


def _lock_rooms(*rooms: Room) -> None:
    # Lock in primary-key order so two reschedules between the same rooms cannot deadlock.
    # On PostgreSQL this serialises bookings per room; SQLite serialises all writers anyway
    # (transaction_mode IMMEDIATE in settings). A requested order has no room (None) to lock yet.
    pks = sorted({room.pk for room in rooms if room is not None})
    list(Room.objects.select_for_update().filter(pk__in=pks).order_by("pk").values_list("pk", flat=True))


def _room_taken_error(room: Room, start: datetime, end: datetime) -> ValidationError:
    """After a race the lock could not prevent (the exclusion constraint caught it): the refusal at
    "start", with `order` the order that won (read after the rollback), as rules.room_free gives it."""
    error = ValidationError(
        {
            "start": ValidationError(
                _("%(room)s was just booked at this time by someone else. Choose another slot.")
                % {"room": room.name},
                code="room_taken",
            )
        }
    )
    try:
        error.order = Order.objects.overlapping(start, end).filter(room=room).first()
    except DatabaseError:  # inside a caller's transaction that the failed insert broke
        error.order = None
    return error


class StaleVersion(ValidationError):
    """The order or patient was changed after the caller read it (at `expected`); it is at `version` now.

    For a caller that said which version it acted on (an API client's If-Match): moving or cancelling
    an order someone else just moved would act on a state the caller never saw.
    """

    def __init__(self, *, expected: int, version: int) -> None:
        super().__init__(
            _(
                "This record was changed since you read it (version %(expected)s, now %(version)s). "
                "Read it again and repeat the change if it still applies."
            )
            % {"expected": expected, "version": version},
            code="stale_version",
        )
        self.expected = expected
        self.version = version


def _refuse_stale(record: Order | Patient, if_version: int | None) -> None:
    # Called with the row locked: nobody can change it between this check and the save.
    if if_version is not None and record.version != if_version:
        raise StaleVersion(expected=if_version, version=record.version)


def _active_orders_changed(
    orders: QuerySet[Order], kind: OrderEventKind, *, user: AbstractBaseUser | None = None
) -> None:
    """An event for each active order of a patient, room or procedure just saved: their worklist items
    carry its values (the worklist export rewrites those on a worklist now; the others get the new
    values when they enter it)."""
    active = orders.filter(status__in=ACTIVE_STATUSES).only("pk", "status", "version")
    events.orders_changed(active, kind, user=user)


# --- rooms and the catalog ----------------------------------------------------------------------


def room_save(*, room: Room) -> Room:
    """Save a new or changed room; the worklist items of its active orders are re-exported.

    An item names its room's AE title, station name and location, is written in the room's character
    set and filed under its called AE title: without this, a change reached the scanners only at the
    next reconcile.
    """
    with transaction.atomic():
        room.full_clean()
        room.save()
        _active_orders_changed(room.orders.all(), OrderEventKind.ROOM_CHANGED)
    return room


def procedure_save(*, procedure: Procedure) -> Procedure:
    """Save a new or changed procedure; the worklist items of its active orders are re-exported (they
    carry its code and meaning)."""
    with transaction.atomic():
        procedure.full_clean()
        procedure.save()
        _active_orders_changed(procedure.orders.all(), OrderEventKind.PROCEDURE_CHANGED)
    return procedure


# --- orders -----------------------------------------------------------------------------------


def _order_new(
    *,
    patient: Patient,
    procedure: Procedure,
    user: AbstractBaseUser,
    duration_minutes: int | None,
    priority: str,
    referring_physician: str,
    requesting_physician: str,
    reason: str,
    notes: str,
    placer_order_number: str,
    placer_authority: str,
) -> Order:
    """A new order of `procedure` for `patient`, unsaved, with its details stripped as the forms strip
    them: no room, time or numbers yet (_order_put places it, _order_save_new numbers and saves it)."""
    number = placer_order_number.strip()
    return Order(
        patient=patient,
        procedure=procedure,
        duration_minutes=duration_minutes or procedure.default_duration,
        priority=priority,
        referring_physician=referring_physician.strip(),
        requesting_physician=requesting_physician.strip(),
        reason=reason.strip(),
        notes=notes.strip(),
        placer_order_number=number,
        placer_authority=placer_authority if number else "",
        booked_by=user,
    )


def _order_put(order: Order, *, room: Room, start: datetime) -> None:
    """Give `order` its room and time, the end from its duration: what booking an order sets."""
    order.room = room
    order.scheduled_start = start
    order.scheduled_end = start + timedelta(minutes=order.duration_minutes)


def _order_save_new(
    order: Order, *, user: AbstractBaseUser, kind: OrderEventKind, check_placer: bool = True
) -> Order:
    """Number a new order (accession, procedure and step IDs, study UID), save it and write its first
    event, in the caller's transaction. Refuses a placer number its authority already gave an order;
    `check_placer` False: the caller checked it in this transaction (order_place), and a number taken
    since is refused by the unique constraint (_refuse_taken_placer_number), so it is not read again."""
    if (
        check_placer
        and order.placer_order_number
        and (error := placer_number_taken(number=order.placer_order_number, authority=order.placer_authority))
    ):
        raise error
    accession = accession_next(day=timezone.localdate())
    order.accession_number = accession
    order.requested_procedure_id = accession
    order.sps_id = f"{accession}S1"
    order.study_instance_uid = study_uid_new()
    # The fields' own validators (names, texts, duration). Not the foreign keys, loaded a moment ago,
    # nor the uniqueness of a fresh accession number and UID or the check constraints on the end and
    # the status, which the database enforces anyway: twelve queries per booking.
    order.full_clean(
        exclude=["patient", "procedure", "room", "booked_by"],
        validate_unique=False,
        validate_constraints=False,
    )
    order._history_user = user
    order.save()
    events.order_changed(order, kind, user=user)
    return order


@contextmanager
def _booking_in(room: Room, start: datetime, duration_minutes: int) -> Iterator[None]:
    """A transaction holding `room` locked, in which an order is booked there from `start`.

    The booking rules checked inside see every booking of the room committed before, and no other
    booking of the room commits until this one has: of two clerks taking one slot, one books and the
    other is refused. A race the lock cannot prevent (a write that did not come through here) is caught
    by the PostgreSQL exclusion constraint and refused as the check would have refused it.
    """
    try:
        with transaction.atomic():
            _lock_rooms(room)
            yield
    except IntegrityError as exc:
        if "order_room_no_overlap" in str(exc):
            raise _room_taken_error(room, start, start + timedelta(minutes=duration_minutes)) from exc
        raise


def _refuse_taken_placer_number(order: Order, exc: IntegrityError) -> NoReturn:
    # Two orders under one placer number in the same instant (in different rooms, or waiting without
    # one, so no lock is shared): said as the check would have said it, rather than a server error.
    if "order_placer_number_unique" in str(exc) and (
        error := placer_number_taken(number=order.placer_order_number, authority=order.placer_authority)
    ):
        raise error from exc
    raise exc


def order_book(
    *,
    patient: Patient,
    procedure: Procedure,
    room: Room,
    start: datetime,
    user: AbstractBaseUser,
    duration_minutes: int | None = None,
    priority: str = Priority.ROUTINE,
    referring_physician: str = "",
    requesting_physician: str = "",
    reason: str = "",
    notes: str = "",
    confirm_patient_overlap: bool = False,
    placer_order_number: str = "",
    placer_authority: str = "",
    requested_start: datetime | None = None,
) -> Order:
    """Book `procedure` for `patient` in `room` at `start` and queue its worklist item.

    `placer_order_number`: the ordering system's number for this order, unique per `placer_authority`
    (an API client, an HL7 sender): a second booking under the same number is refused at that field,
    naming the order that has it, so a client's retry cannot book twice. `requested_start`: the time
    the ordering system asked for (order_place), kept on the order as it is on a requested one.

    Held to rules.check_booking with the room locked: refuses (ValidationError) a time in the past,
    outside the room's opening hours, a room of another modality, or a room already booked then; warns
    (PatientOverlapWarning) when the patient has another exam at an overlapping time, unless
    confirm_patient_overlap.
    """
    order = _order_new(
        patient=patient,
        procedure=procedure,
        user=user,
        duration_minutes=duration_minutes,
        priority=priority,
        referring_physician=referring_physician,
        requesting_physician=requesting_physician,
        reason=reason,
        notes=notes,
        placer_order_number=placer_order_number,
        placer_authority=placer_authority,
    )
    return _order_book_new(
        order,
        room=room,
        start=start,
        user=user,
        confirm_patient_overlap=confirm_patient_overlap,
        requested_start=requested_start,
    )


def _order_book_new(
    order: Order,
    *,
    room: Room,
    start: datetime,
    user: AbstractBaseUser,
    confirm_patient_overlap: bool = False,
    requested_start: datetime | None = None,
    check_placer: bool = True,
) -> Order:
    """order_book's booking of the unsaved `order` (from _order_new), in a transaction of its own (a
    savepoint inside the caller's): refused, it leaves nothing behind, nor the room's lock."""
    try:
        with _booking_in(room, start, order.duration_minutes):
            rules.raise_problems(
                rules.check_booking(
                    patient=order.patient,
                    procedure=order.procedure,
                    room=room,
                    start=start,
                    duration_minutes=order.duration_minutes,
                    confirm_patient_overlap=confirm_patient_overlap,
                )
            )
            _order_put(order, room=room, start=start)
            order.requested_start = requested_start
            _order_save_new(order, user=user, kind=OrderEventKind.BOOKED, check_placer=check_placer)
    except IntegrityError as exc:
        _refuse_taken_placer_number(order, exc)
    return order


def order_request(
    *,
    patient: Patient,
    procedure: Procedure,
    user: AbstractBaseUser,
    requested_start: datetime | None = None,
    duration_minutes: int | None = None,
    priority: str = Priority.ROUTINE,
    referring_physician: str = "",
    requesting_physician: str = "",
    reason: str = "",
    notes: str = "",
    placer_order_number: str = "",
    placer_authority: str = "",
) -> Order:
    """Take an order that waits to be booked: REQUESTED, with no room or time, on the front desk's To
    schedule list until a clerk books it (order_schedule). `requested_start`: when the ordering system
    asked for it, shown on the list and offered first.

    It is numbered now (accession number, procedure and step IDs, study UID): the HIS hears the
    accession back at once, as the filler order number of its HL7 acknowledgement, and keeps it when
    the order is booked. Refuses (ValidationError) a procedure no longer offered, a patient record
    merged into another, a duration out of bounds, and a placer number its authority already used.
    """
    order = _order_new(
        patient=patient,
        procedure=procedure,
        user=user,
        duration_minutes=duration_minutes,
        priority=priority,
        referring_physician=referring_physician,
        requesting_physician=requesting_physician,
        reason=reason,
        notes=notes,
        placer_order_number=placer_order_number,
        placer_authority=placer_authority,
    )
    return _order_request_new(order, user=user, requested_start=requested_start)


def _order_request_new(
    order: Order, *, user: AbstractBaseUser, requested_start: datetime | None, check_placer: bool = True
) -> Order:
    """order_request's saving of the unsaved `order` (from _order_new) as REQUESTED."""
    rules.raise_problems(
        rules.check_request(
            patient=order.patient,
            procedure=order.procedure,
            duration_minutes=order.duration_minutes,
            requested_start=requested_start,
        )
    )
    order.status = OrderStatus.REQUESTED
    order.requested_start = requested_start
    try:
        with transaction.atomic():
            _order_save_new(order, user=user, kind=OrderEventKind.REQUESTED, check_placer=check_placer)
    except IntegrityError as exc:
        _refuse_taken_placer_number(order, exc)
    return order


def rooms_for(procedure: Procedure) -> QuerySet[Room]:
    """The rooms in service that do `procedure`'s modality, by name: where order_place looks for one
    free, first to last."""
    return (
        Room.objects.filter(active=True, modality=procedure.modality)
        .order_by("name", "pk")
        .prefetch_related("opening_hours")
    )


def _first_free(
    rooms: Sequence[Room], book: Callable[[Room], Order], *, start: datetime, duration_minutes: int
) -> tuple[Order | None, list[str]]:
    """`book` in the first of `rooms` (in their order) that takes it: that order, or None and what each
    room's refusal said, in the rooms' order (each said once).

    `book` is order_book's or order_schedule's booking, each in a savepoint of its own: a refused try
    leaves nothing behind, nor its room's lock. The rooms an order holds at that time
    (rules.rooms_taken, one query) are tried after the others: what a try would find, found for all of
    them at once, so a taken room costs no try of its own while another is free; each try is still held
    to the booking rules, which decide. When none books, the rooms not tried yet are tried in turn and
    the refusals are said in the rooms' order, as if each had been tried in turn.

    A patient-overlap warning counts as a refusal: nobody at the ordering system can confirm it, so
    the order waits for a clerk who can.
    """
    said_by: dict[int, str] = {}

    def attempt(index: int, room: Room) -> Order | None:
        try:
            return book(room)
        except PatientOverlapWarning:
            said_by[index] = _(
                "The patient already has an exam at that time: a clerk must confirm a second one."
            )
        except ValidationError as error:
            said_by[index] = " ".join(error.messages)
        return None

    taken = _rooms_taken(rooms, start, duration_minutes)
    for index, room in enumerate(rooms):
        if room.pk not in taken and (order := attempt(index, room)) is not None:
            return order, []
    said: list[str] = []
    for index, room in enumerate(rooms):
        if index not in said_by and (order := attempt(index, room)) is not None:
            return order, []
        if said_by[index] not in said:
            said.append(said_by[index])
    return None, said


def _rooms_taken(rooms: Sequence[Room], start: datetime, duration_minutes: int) -> set[int]:
    # Without a time the booking rules accept (naive, out of range), every room is tried in turn and
    # refused by the rules themselves.
    if len(rooms) < 2 or timezone.is_naive(start):
        return set()
    try:
        end = start + timedelta(minutes=duration_minutes)
    except (OverflowError, TypeError):
        return set()
    return rules.rooms_taken(rooms, start, end)


def _not_placed(*, start: datetime | None, rooms: Sequence[Room], said: Sequence[str]) -> str:
    """Why an order was not booked at `start`, for the ordering system's log (order.placement_note)."""
    if start is None:
        return _("No start time was requested: the order waits on the To schedule list.")
    if not rooms:
        return _("No room in service does this procedure: the order waits on the To schedule list.")
    return _("Not booked at %(start)s: %(reasons)s The order waits on the To schedule list.") % {
        "start": f"{timezone.localtime(start):%Y-%m-%d %H:%M}",
        "reasons": " ".join(said),
    }


def order_place(
    *,
    patient: Patient,
    procedure: Procedure,
    user: AbstractBaseUser,
    start: datetime | None,
    rooms: Sequence[Room] | None = None,
    duration_minutes: int | None = None,
    priority: str = Priority.ROUTINE,
    referring_physician: str = "",
    requesting_physician: str = "",
    reason: str = "",
    notes: str = "",
    placer_order_number: str = "",
    placer_authority: str = "",
) -> Order:
    """An order from the ordering system (the HIS over HL7): booked at `start` when a room is free then,
    else waiting to be booked (order_request, with requested_start = start).

    The rooms are tried in turn, `rooms` or rooms_for(procedure), each held to the booking rules as
    order_book holds a clerk's booking; the first that takes it books it. One transaction. Sets
    `order.placement_note`: why it was not booked ("" when it was), for the acknowledgement and the log.
    """
    details = {
        "duration_minutes": duration_minutes,
        "priority": priority,
        "referring_physician": referring_physician,
        "requesting_physician": requesting_physician,
        "reason": reason,
        "notes": notes,
        "placer_order_number": placer_order_number,
        "placer_authority": placer_authority,
    }
    with transaction.atomic():
        candidates = list(rooms_for(procedure) if rooms is None else rooms)
        order, said = None, []
        # A number already used is refused as such, not tried in every room and then refused anyway;
        # checked once here, not again by each try (a number taken since is refused by the database).
        number = placer_order_number.strip()
        if number and (error := placer_number_taken(number=number, authority=placer_authority)):
            raise error

        def new() -> Order:
            return _order_new(patient=patient, procedure=procedure, user=user, **details)

        if start is not None:
            order, said = _first_free(
                candidates,
                lambda room: _order_book_new(
                    new(), room=room, start=start, user=user, requested_start=start, check_placer=False
                ),
                start=start,
                duration_minutes=duration_minutes or procedure.default_duration,
            )
        if order is not None:
            order.placement_note = ""
            return order
        order = _order_request_new(new(), user=user, requested_start=start, check_placer=False)
    order.placement_note = _not_placed(start=start, rooms=candidates, said=said)
    return order


def order_schedule(
    *,
    order: Order,
    room: Room,
    start: datetime,
    user: AbstractBaseUser,
    duration_minutes: int | None = None,
    confirm_patient_overlap: bool = False,
    if_version: int | None = None,
) -> Order:
    """Book the requested `order` in `room` at `start` (the front desk's To schedule list, the API):
    SCHEDULED, on the worklist, the ordering system told (event BOOKED).

    Held to the rules of a booking with the room locked, as order_book. Its accession number, study UID
    and placer number stay: the ordering system knows the order by them. Refuses (ValidationError) an
    order that is not requested (a booked one is moved with order_reschedule). `duration_minutes`: the
    order's own when not given. `if_version`: refuse (StaleVersion) unless the order is still at this
    version (an API If-Match).
    """
    duration = duration_minutes or order.duration_minutes
    with _booking_in(room, start, duration):
        order = _locked(order)
        _refuse_stale(order, if_version)
        rules.raise_problems(
            rules.check_schedule(
                order=order,
                room=room,
                start=start,
                duration_minutes=duration,
                confirm_patient_overlap=confirm_patient_overlap,
            )
        )
        order._history_user = user
        order.duration_minutes = duration
        _order_put(order, room=room, start=start)
        order.status = OrderStatus.SCHEDULED
        order.version += 1
        order.save(
            update_fields=[
                "room",
                "scheduled_start",
                "scheduled_end",
                "duration_minutes",
                "status",
                "version",
                "updated_at",
            ]
        )
        events.order_changed(order, OrderEventKind.BOOKED, user=user)
    return order


def order_try_schedule(
    *,
    order: Order,
    user: AbstractBaseUser,
    start: datetime | None,
    rooms: Sequence[Room] | None = None,
) -> Order:
    """A new time for a requested order from the ordering system (HL7 ORC-1 XO): booked at `start` in
    the first free room (as order_place tries them), else still requested with requested_start = start
    (event DETAILS_CHANGED). One transaction. Sets `order.placement_note` as order_place does.

    Refuses (ValidationError) an order that is not requested: a booked one is moved with order_reschedule.
    """
    rules.raise_problems(rules.check_schedulable(order))
    with transaction.atomic():
        candidates = list(rooms_for(order.procedure) if rooms is None else rooms)
        booked, said = None, []
        if start is not None:
            booked, said = _first_free(
                candidates,
                lambda room: order_schedule(order=order, room=room, start=start, user=user),
                start=start,
                duration_minutes=order.duration_minutes,
            )
        if booked is not None:
            booked.placement_note = ""
            return booked
        order = _locked(order)
        rules.raise_problems(rules.check_schedulable(order))
        order._history_user = user
        order.requested_start = start
        order.version += 1
        order.save(update_fields=["requested_start", "version", "updated_at"])
        events.order_changed(order, OrderEventKind.DETAILS_CHANGED, user=user)
    order.placement_note = _not_placed(start=start, rooms=candidates, said=said)
    return order


def placer_number_taken(*, number: str, authority: str) -> ValidationError | None:
    """The refusal, at "placer_order_number", of a number `authority` already gave an order; None if free.

    The error's `order` attribute is that order, for a caller that answers with it (the API's 409).
    """
    # Asked of every order from an ordering system, and nearly always free: the key alone (the pair is
    # unique, so no ORDER BY), the order itself read only when there is one.
    found = Order.objects.filter(placer_authority=authority, placer_order_number=number).order_by()
    taken_pk = next(iter(found.values_list("pk", flat=True)[:1]), None)
    if taken_pk is None:
        return None
    taken = Order.objects.get(pk=taken_pk)
    error = ValidationError(
        {
            "placer_order_number": ValidationError(
                _("Placer order number %(number)s is already booked as accession %(acc)s."),
                code="placer_number_taken",
                params={"number": number, "acc": taken.accession_number},
            )
        }
    )
    error.order = taken
    return error


def _locked(order: Order) -> Order:
    # of=("self",): lock the order row only. A plain FOR UPDATE over the join also locks the room row,
    # order first, room second, while a reschedule locks room then order: on PostgreSQL a cancel racing
    # a reschedule of the same order deadlocked (tests/realstack/test_concurrency.py).
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("patient", "procedure", "room")
        .get(pk=order.pk)
    )


def order_reschedule(
    *,
    order: Order,
    start: datetime,
    user: AbstractBaseUser,
    room: Room | None = None,
    duration_minutes: int | None = None,
    confirm_patient_overlap: bool = False,
    if_version: int | None = None,
) -> Order:
    """Move an order to a new time (and optionally room). The StudyInstanceUID and accession stay.

    A requested order is refused: it has no time to move yet, and is booked with order_schedule.
    `if_version`: refuse (StaleVersion) unless the order is still at this version (an API If-Match).
    """
    new_room = room or order.room
    try:
        with transaction.atomic():
            _lock_rooms(order.room, new_room)
            order = _locked(order)
            _refuse_stale(order, if_version)
            duration = duration_minutes or order.duration_minutes
            rules.raise_problems(
                rules.check_reschedule(
                    order=order,
                    start=start,
                    room=new_room,
                    duration_minutes=duration,
                    confirm_patient_overlap=confirm_patient_overlap,
                )
            )
            order._history_user = user
            order.room = new_room
            order.scheduled_start = start
            order.duration_minutes = duration
            order.scheduled_end = start + timedelta(minutes=duration)
            order.version += 1
            order.save(
                update_fields=[
                    "room",
                    "scheduled_start",
                    "duration_minutes",
                    "scheduled_end",
                    "version",
                    "updated_at",
                ]
            )
            events.order_changed(order, OrderEventKind.RESCHEDULED, user=user)
    except IntegrityError as exc:
        if "order_room_no_overlap" in str(exc):
            raise _room_taken_error(new_room, start, start + timedelta(minutes=duration)) from exc
        raise
    return order


_TRANSITION_EVENTS = {
    OrderStatus.ARRIVED: OrderEventKind.ARRIVED,
    OrderStatus.IN_PROGRESS: OrderEventKind.STARTED,
    OrderStatus.COMPLETED: OrderEventKind.COMPLETED,
    OrderStatus.CANCELLED: OrderEventKind.CANCELLED,
    OrderStatus.NO_SHOW: OrderEventKind.NO_SHOW,
}


# The column each step of the exam stamps, for the reports' turnaround (arrived -> started -> completed).
_TRANSITION_TIMES = {
    OrderStatus.ARRIVED: "arrived_at",
    OrderStatus.IN_PROGRESS: "started_at",
    OrderStatus.COMPLETED: "completed_at",
}


def order_transition(
    *,
    order: Order,
    to: str,
    user: AbstractBaseUser,
    reason: str = "",
    if_version: int | None = None,
    stamp: bool = True,
) -> Order:
    """Move an order along SCHEDULED -> ARRIVED -> IN_PROGRESS -> COMPLETED, or cancel it.

    `if_version`: refuse (StaleVersion) unless the order is still at this version (an API If-Match).
    `stamp=False`: a step nobody saw happen (the PACS link walking an order to completion when its
    images arrive) leaves the step's time empty, so the reports' turnaround does not count a 0-minute
    arrival or exam that never took place like that.
    """
    with transaction.atomic():
        order = _locked(order)
        _refuse_stale(order, if_version)
        rules.raise_problems(rules.check_transition(order=order, to=to, reason=reason))
        fields = ["status", "version", "updated_at"]
        order.version += 1
        if to == OrderStatus.CANCELLED:
            order.cancel_reason = reason.strip()[: rules.REASON_MAX]
            fields.append("cancel_reason")
        if to in _TRANSITION_TIMES and stamp:
            setattr(order, _TRANSITION_TIMES[to], timezone.now())
            fields.append(_TRANSITION_TIMES[to])
        order._history_user = user
        order.status = to
        order.save(update_fields=fields)
        events.order_changed(order, _TRANSITION_EVENTS[to], user=user)
    return order


def order_arrive(
    *, order: Order, user: AbstractBaseUser, if_version: int | None = None, stamp: bool = True
) -> Order:
    return order_transition(
        order=order, to=OrderStatus.ARRIVED, user=user, if_version=if_version, stamp=stamp
    )


def order_start(
    *, order: Order, user: AbstractBaseUser, if_version: int | None = None, stamp: bool = True
) -> Order:
    return order_transition(
        order=order, to=OrderStatus.IN_PROGRESS, user=user, if_version=if_version, stamp=stamp
    )


def order_complete(*, order: Order, user: AbstractBaseUser, if_version: int | None = None) -> Order:
    return order_transition(order=order, to=OrderStatus.COMPLETED, user=user, if_version=if_version)


def order_cancel(
    *, order: Order, reason: str, user: AbstractBaseUser, if_version: int | None = None
) -> Order:
    return order_transition(
        order=order, to=OrderStatus.CANCELLED, user=user, reason=reason, if_version=if_version
    )


def order_no_show(*, order: Order, user: AbstractBaseUser, if_version: int | None = None) -> Order:
    """The patient did not come to a scheduled exam whose time has passed (rules.no_show_due).

    Final, like a cancellation: the order leaves the worklist (its NO_SHOW event), keeps its past slot,
    and waits on the "To call back" list until order_called_back.
    """
    return order_transition(order=order, to=OrderStatus.NO_SHOW, user=user, if_version=if_version)


def order_called_back(*, order: Order, user: AbstractBaseUser) -> Order:
    """Someone called the patient of a no-show (and rebooked the exam, or not): off the "To call back" list.

    Not an order event: nothing the worklist, the API or the HIS follows changes. Calling back twice keeps
    the first call's time and caller.
    """
    with transaction.atomic():
        order = _locked(order)
        if order.status != OrderStatus.NO_SHOW:
            raise ValidationError(
                _("Only a no-show is called back; this order is %(status)s.")
                % {"status": order.get_status_display().lower()},
                code="not_no_show",
            )
        if order.called_back_at is None:
            order._history_user = user
            order.called_back_at = timezone.now()
            order.called_back_by = user
            order.save(update_fields=["called_back_at", "called_back_by", "updated_at"])
    return order


NO_SHOW_USERNAME = "no-show"


def no_show_user() -> AbstractBaseUser:
    """The system user the end-of-day run marks no-shows as (like mwl_server's "modality")."""
    user, created = get_user_model().objects.get_or_create(username=NO_SHOW_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def orders_mark_no_shows(*, day: date, user: AbstractBaseUser) -> list[Order]:
    """Mark a no-show every order still scheduled on `day` (clinic time) whose time has passed.

    The end-of-day run (tasks.mark_no_shows, `manage.py mark_no_shows`). Idempotent: a second run finds
    nothing left scheduled. Each order goes through order_no_show in its own transaction, so an order a
    technologist arrives meanwhile is locked, seen ARRIVED and left alone.
    """
    day_start = timezone.make_aware(datetime.combine(day, time.min))
    due = (
        Order.objects.filter(
            status=OrderStatus.SCHEDULED,
            scheduled_start__gte=day_start,
            scheduled_start__lt=day_start + timedelta(days=1),
            scheduled_end__lte=timezone.now(),  # rules.no_show_due, said to the database
        )
        .order_by("scheduled_start", "id")  # the (status, scheduled_start, id) index
        .only("id")
    )
    marked = []
    for order in due:
        try:
            marked.append(order_no_show(order=order, user=user))
        except ValidationError as exc:
            # Only the order's own rules refuse here (arrived or cancelled since the query): skip it.
            if not {"illegal_transition", "not_yet_due"} & _codes(exc):
                raise
    return marked


def _codes(exc: ValidationError) -> set[str]:
    return {error.code for error in exc.error_list if error.code}


def order_discontinue(*, order: Order, reason: str, user: AbstractBaseUser) -> Order:
    """The modality stopped an exam in progress (MPPS DISCONTINUED): back to ARRIVED, with the reason.

    The order returns to the front desk and to the worklist, so it can be restarted, rescheduled or
    cancelled; the reason stays on the order.
    """
    with transaction.atomic():
        order = _locked(order)
        rules.raise_problems(rules.check_discontinue(order=order))
        order._history_user = user
        order.status = OrderStatus.ARRIVED
        order.discontinue_reason = (reason.strip() or _("Discontinued at modality"))[: rules.REASON_MAX]
        order.version += 1
        order.save(update_fields=["status", "discontinue_reason", "version", "updated_at"])
        events.order_changed(order, OrderEventKind.DISCONTINUED, user=user)
    return order


class _Keep(enum.Enum):
    """The default of an update service's arguments: leave this field as it is."""

    KEEP = "keep"

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep.KEEP

ORDER_DETAIL_FIELDS = (
    "priority",
    "referring_physician",
    "requesting_physician",
    "reason",
    "notes",
)


def _given(**values: object) -> dict[str, object]:
    """The arguments a caller passed (not KEEP), text stripped as the forms strip it.

    HL7 and API input reaches the services without a form: stripping here means "Jaidee " from one
    door is "Jaidee" from every door, in the database and on the scanner.
    """
    return {
        name: value.strip() if isinstance(value, str) else value
        for name, value in values.items()
        if value is not KEEP
    }


def _shown(record: Patient | Order, name: str, value: object) -> str:
    """A field's value as the edit form's clerk knows it: a choice's label, "—" for nothing."""
    if value in (None, ""):
        return "—"
    choices = dict(record._meta.get_field(name).flatchoices)
    return str(choices.get(value, value))


def edit_conflict(
    *, record: Patient | Order, expected_version: int, values: Mapping[str, object]
) -> EditConflict | None:
    """The conflict of saving `values` over `record` as saved now, by a clerk who opened it at
    `expected_version`; None when nobody else's change would be undone. Writes nothing.

    A field conflicts when someone changed it since that version and the clerk's value differs from
    the saved one. Which fields changed is read from the record's history (the copy saved at
    `expected_version`); without that copy every value that differs from the saved one counts.
    """
    if record.version == expected_version:
        return None
    seen = record.history.filter(version=expected_version).first()
    conflicts = {
        name: ValidationError(
            _("Changed by someone else while you were editing: now “%(saved)s”, yours “%(yours)s”."),
            code="edit_conflict",
            params={
                "saved": _shown(record, name, getattr(record, name)),
                "yours": _shown(record, name, value),
            },
        )
        for name, value in values.items()
        if value != getattr(record, name) and (seen is None or getattr(seen, name) != getattr(record, name))
    }
    if not conflicts:
        return None
    summary = ValidationError(
        _(
            "Someone else saved this record while you were editing it. Check the fields marked below: "
            "save again to keep your values."
        ),
        code="edit_conflict",
    )
    return EditConflict({NON_FIELD_ERRORS: summary, **conflicts}, version=record.version)


def _refuse_edit_conflict(
    record: Patient | Order, expected_version: int | None, values: Mapping[str, object]
) -> None:
    # Called with the row locked: no other edit can slip in between this check and the save.
    if expected_version is not None:
        conflict = edit_conflict(record=record, expected_version=expected_version, values=values)
        if conflict is not None:
            raise conflict


def order_update_details(
    *,
    order: Order,
    user: AbstractBaseUser,
    expected_version: int | None = None,
    priority: str | _Keep = KEEP,
    referring_physician: str | _Keep = KEEP,
    requesting_physician: str | _Keep = KEEP,
    reason: str | _Keep = KEEP,
    notes: str | _Keep = KEEP,
    if_version: int | None = None,
) -> Order:
    """Change an order's clinical details; the fields not passed stay as they are. Re-exports it.

    `expected_version`: the order's version when the clerk opened the form; a change someone saved
    since is not overwritten (EditConflict). None (HL7, a script) checks nothing. `if_version`: refuse
    any change (StaleVersion) unless the order is still at this version (an API If-Match).
    """
    changes = _given(
        priority=priority,
        referring_physician=referring_physician,
        requesting_physician=requesting_physician,
        reason=reason,
        notes=notes,
    )
    with transaction.atomic():
        order = _locked(order)
        _refuse_stale(order, if_version)
        rules.raise_problems(rules.check_editable(order=order))
        _refuse_edit_conflict(order, expected_version, changes)
        for name, value in changes.items():
            setattr(order, name, value)
        order.version += 1
        order._history_user = user
        order.full_clean()
        order.save(update_fields=[*changes, "version", "updated_at"])
        events.order_changed(order, OrderEventKind.DETAILS_CHANGED, user=user)
    return order


# --- patients ---------------------------------------------------------------------------------

# What a patient record holds, as the forms, the admin and the services name it.
PATIENT_FIELDS = (
    "mrn",
    "issuer",
    "national_id",
    "passport_number",
    "passport_country",
    "name_prefix",
    "given_name",
    "middle_name",
    "family_name",
    "name_suffix",
    "romanized_given_name",
    "romanized_middle_name",
    "romanized_family_name",
    "birth_date",
    "sex",
    "phone",
    "address",
    "weight_kg",
    "allergies",
    "medical_alerts",
    "pregnancy_status",
    "preferred_language",
)


def patient_duplicates(
    *, family_name: str, given_name: str, birth_date: date, exclude_pk: int | None = None
) -> QuerySet[Patient]:
    """Patients with the same name (case-insensitive) and birth date: likely the same person."""
    qs = Patient.objects.filter(
        family_name__iexact=family_name.strip(),
        given_name__iexact=given_name.strip(),
        birth_date=birth_date,
    )
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs


def mrn_taken(*, mrn: str, issuer: str, exclude_pk: int | None = None) -> ValidationError | None:
    """The refusal, at "mrn", of an MRN the issuer already gave to another patient; None when free."""
    others = Patient.objects.filter(mrn=mrn, issuer=issuer)
    taken = (others if exclude_pk is None else others.exclude(pk=exclude_pk)).first()
    if taken is None:
        return None
    return ValidationError(
        {
            "mrn": ValidationError(
                _("MRN %(mrn)s of %(issuer)s is already registered to %(name)s."),
                code="mrn_taken",
                params={"mrn": mrn, "issuer": issuer, "name": taken.display_name},
            )
        }
    )


def national_id_taken(*, national_id: str, exclude_pk: int | None = None) -> ValidationError | None:
    """The refusal, at "national_id", of a national ID another record in use holds; None when it is
    free or empty. A record merged into another keeps its ID without holding it."""
    if not national_id:
        return None
    others = Patient.objects.filter(national_id=national_id, merged_into__isnull=True)
    taken = (others if exclude_pk is None else others.exclude(pk=exclude_pk)).first()
    if taken is None:
        return None
    return ValidationError(
        {
            "national_id": ValidationError(
                _("National ID %(national_id)s is already registered to %(name)s (MRN %(mrn)s)."),
                code="national_id_taken",
                params={"national_id": national_id, "name": taken.display_name, "mrn": taken.mrn},
            )
        }
    )


def passport_taken(
    *, passport_number: str, passport_country: str, exclude_pk: int | None = None
) -> ValidationError | None:
    """The refusal, at "passport_number", of a passport another record in use holds; None when it is
    free or empty. As the national ID, a record merged into another keeps its passport without holding it."""
    if not passport_number:
        return None
    others = Patient.objects.filter(
        passport_number=passport_number, passport_country=passport_country, merged_into__isnull=True
    )
    taken = (others if exclude_pk is None else others.exclude(pk=exclude_pk)).first()
    if taken is None:
        return None
    return ValidationError(
        {
            "passport_number": ValidationError(
                _("Passport %(country)s %(number)s is already registered to %(name)s (MRN %(mrn)s)."),
                code="passport_taken",
                params={
                    "country": passport_country,
                    "number": passport_number,
                    "name": taken.display_name,
                    "mrn": taken.mrn,
                },
            )
        }
    )


def _identifiers_taken(patient: Patient) -> ValidationError | None:
    """The refusal of `patient`'s MRN, national ID or passport, which another record holds; None when
    all are free."""
    if error := mrn_taken(mrn=patient.mrn, issuer=patient.issuer, exclude_pk=patient.pk):
        return error
    if patient.merged_into_id is None:
        if error := national_id_taken(national_id=patient.national_id, exclude_pk=patient.pk):
            return error
        return passport_taken(
            passport_number=patient.passport_number,
            passport_country=patient.passport_country,
            exclude_pk=patient.pk,
        )
    return None


def _refuse_taken_identifier(patient: Patient, exc: IntegrityError) -> NoReturn:
    # A unique constraint caught a registration that passed the check in the same instant (two
    # clerks, or a clerk and HL7). Say it as the check would have, rather than a server error.
    error = _identifiers_taken(patient)
    if error is None:
        raise exc
    raise error from exc


def _lock_name_and_birth_date(patient: Patient) -> None:
    """Serialise registrations of one name and birth date, so their duplicate checks see each other.

    Without it, four clerks registering the same person at once each found no duplicate and all four
    were saved. On PostgreSQL a transaction-level advisory lock keyed on what the check compares;
    SQLite serialises all writers anyway (transaction_mode IMMEDIATE in settings).
    """
    if connection.vendor != "postgresql":
        return
    key = "\x1f".join(
        [patient.family_name.lower(), patient.given_name.lower(), patient.birth_date.isoformat()]
    )
    lock_id = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def check_duplicate_patient(patient: Patient) -> DuplicatePatientWarning | None:
    """The warning a registration of `patient` gets when someone with its name and birth date exists."""
    dupes = list(
        patient_duplicates(
            family_name=patient.family_name,
            given_name=patient.given_name,
            birth_date=patient.birth_date,
            exclude_pk=patient.pk,
        )[:5]
    )
    if not dupes:
        return None
    return DuplicatePatientWarning(
        _(
            "A patient with this name and birth date is already registered: %(mrns)s. "
            "Open that record, or tick 'register anyway' if this is a different person."
        )
        % {"mrns": ", ".join(p.mrn for p in dupes)},
        code="duplicate_patient",
    )


def patient_register(
    *,
    mrn: str,
    family_name: str,
    birth_date: date,
    issuer: str | None = None,
    national_id: str = "",
    passport_number: str = "",
    passport_country: str = "",
    given_name: str = "",
    middle_name: str = "",
    name_prefix: str = "",
    name_suffix: str = "",
    romanized_family_name: str = "",
    romanized_given_name: str = "",
    romanized_middle_name: str = "",
    sex: str = "",
    phone: str = "",
    address: str = "",
    weight_kg: Decimal | None = None,
    allergies: str = "",
    medical_alerts: str = "",
    pregnancy_status: str = "",
    preferred_language: str = Language.THAI,
    confirm_duplicate: bool = False,
    user: AbstractBaseUser | None = None,
) -> Patient:
    """Register a patient. Warns (DuplicatePatientWarning) on the same name and birth date.

    `issuer` defaults to the site's (RIS_ISSUER_OF_PATIENT_ID). Refuses an MRN the issuer gave another
    patient and a national ID another record holds, at their fields. Text is stripped as the forms strip
    it. `user` is recorded in the patient's history (within a request the logged-in user is, anyway).
    """
    fields = _given(**{name: value for name, value in locals().items() if name in PATIENT_FIELDS})
    if issuer is None:
        del fields["issuer"]  # the model's default: the site's issuer
    patient = Patient(**fields)
    # The MRN's uniqueness is checked below, with its own message, rather than the model's generic one.
    patient.full_clean(validate_constraints=False)
    if user is not None:
        patient._history_user = user
    try:
        with transaction.atomic():
            # The checks run in the transaction that saves, after the lock: a registration racing
            # this one either is committed and seen here, or waits and then sees this one.
            _lock_name_and_birth_date(patient)
            if error := _identifiers_taken(patient):
                raise error
            if not confirm_duplicate and (warning := check_duplicate_patient(patient)):
                raise warning
            patient.save()
    except IntegrityError as exc:
        _refuse_taken_identifier(patient, exc)
    return patient


def patient_update(
    *,
    patient: Patient,
    user: AbstractBaseUser | None = None,
    mrn: str | _Keep = KEEP,
    issuer: str | _Keep = KEEP,
    national_id: str | _Keep = KEEP,
    passport_number: str | _Keep = KEEP,
    passport_country: str | _Keep = KEEP,
    family_name: str | _Keep = KEEP,
    given_name: str | _Keep = KEEP,
    middle_name: str | _Keep = KEEP,
    name_prefix: str | _Keep = KEEP,
    name_suffix: str | _Keep = KEEP,
    romanized_family_name: str | _Keep = KEEP,
    romanized_given_name: str | _Keep = KEEP,
    romanized_middle_name: str | _Keep = KEEP,
    birth_date: date | _Keep = KEEP,
    sex: str | _Keep = KEEP,
    phone: str | _Keep = KEEP,
    address: str | _Keep = KEEP,
    weight_kg: Decimal | None | _Keep = KEEP,
    allergies: str | _Keep = KEEP,
    medical_alerts: str | _Keep = KEEP,
    pregnancy_status: str | _Keep = KEEP,
    preferred_language: str | _Keep = KEEP,
    expected_version: int | None = None,
    if_version: int | None = None,
) -> Patient:
    """Change a patient's details (the fields passed; the others stay). Their active orders are
    re-exported: the name and the clinical details are in every worklist item.

    `expected_version`: the patient's version when the clerk opened the form; a change someone saved
    since is not overwritten (EditConflict). None (HL7, a script) checks nothing. `if_version`: refuse
    any change (StaleVersion) unless the patient is still at this version (an API If-Match).
    """
    changes = _given(**{name: value for name, value in locals().items() if name in PATIENT_FIELDS})
    try:
        with transaction.atomic():
            patient = Patient.objects.select_for_update().get(pk=patient.pk)
            _refuse_stale(patient, if_version)
            _refuse_edit_conflict(patient, expected_version, changes)
            if user is not None:
                patient._history_user = user
            for name, value in changes.items():
                setattr(patient, name, value)
            patient.version += 1
            patient.full_clean(validate_constraints=False)
            if error := _identifiers_taken(patient):
                raise error
            patient.save()
            _active_orders_changed(patient.orders.all(), OrderEventKind.PATIENT_CHANGED, user=user)
    except IntegrityError as exc:
        _refuse_taken_identifier(patient, exc)
    return patient


def patient_merge(*, source: Patient, target: Patient, user: AbstractBaseUser | None) -> Patient:
    """Merge the record `source` into `target` (the hospital's merge of a duplicate, HL7 ADT^A40);
    returns `target`.

    Every order of `source` moves to `target`, each with a new version and a line in its history; the
    ones on a worklist get a PATIENT_CHANGED event, so their items are written again with the name
    and details of `target`. `source` stays, marked merged into `target` (in its history too): what
    it was known by is kept, and it takes no new orders. Refuses (ValidationError) a merge into
    itself, into a merged record, or of a record merged already.
    """
    with transaction.atomic():
        # Both rows locked, in primary-key order so two merges of the same pair cannot deadlock.
        locked = Patient.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).order_by("pk")
        by_pk = {patient.pk: patient for patient in locked}
        source, target = by_pk[source.pk], by_pk[target.pk]
        rules.raise_problems(rules.check_merge(source=source, target=target))
        moved = list(Order.objects.select_for_update().filter(patient=source).order_by("pk"))
        for order in moved:
            order.patient = target
            order.version += 1
            order._history_user = user
            order.save(update_fields=["patient", "version", "updated_at"])
        source.merged_into = target
        source.version += 1
        if user is not None:
            source._history_user = user
        source.save(update_fields=["merged_into", "version", "updated_at"])
        _active_orders_changed(
            Order.objects.filter(pk__in=[order.pk for order in moved]),
            OrderEventKind.PATIENT_CHANGED,
            user=user,
        )
    return target
