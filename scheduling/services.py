"""Workflows that change patients and orders. Views, the admin, tasks and commands call these; none
re-implements a rule.

Every service raises django.core.exceptions.ValidationError with a message keyed by the form field the
clerk can fix ("start", "room", "procedure", ...), so a view can put it next to that field. Writes happen
inside one transaction: a refused booking leaves nothing behind. The worklist file is written after commit.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from pydicom.uid import generate_uid

from .models import (
    AccessionCounter,
    Order,
    OrderStatus,
    Patient,
    Priority,
    Procedure,
    Room,
)


class PatientOverlapWarning(ValidationError):
    """The patient already has an exam at an overlapping time: allowed only when the clerk confirms."""


class DuplicatePatientWarning(ValidationError):
    """A patient with the same name and birth date exists: registered only when the clerk confirms."""


# Which status an order may move to from each status. Anything else is refused with a message.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    OrderStatus.SCHEDULED: (OrderStatus.ARRIVED, OrderStatus.CANCELLED),
    OrderStatus.ARRIVED: (OrderStatus.IN_PROGRESS, OrderStatus.CANCELLED),
    OrderStatus.IN_PROGRESS: (OrderStatus.COMPLETED,),
    OrderStatus.COMPLETED: (),
    OrderStatus.CANCELLED: (),
}

# Not in TRANSITIONS on purpose: the order pages derive their buttons from TRANSITIONS, and going back
# from IN_PROGRESS to ARRIVED is the modality's call (MPPS DISCONTINUED), made through order_discontinue.
DISCONTINUABLE = (OrderStatus.IN_PROGRESS,)
RESCHEDULABLE = (OrderStatus.SCHEDULED, OrderStatus.ARRIVED)
EDITABLE = (OrderStatus.SCHEDULED, OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS)


# --- identifiers ------------------------------------------------------------------------------------


def accession_next(*, day: date) -> str:
    """The next accession number for `day`: <prefix><YYMMDD><5 digits>, at most 14 characters.

    The counter row is created if missing and incremented with a conditional UPDATE inside the caller's
    transaction, so two concurrent bookings can never read the same value.
    """
    AccessionCounter.objects.get_or_create(day=day)
    AccessionCounter.objects.filter(day=day).update(last_value=F("last_value") + 1)
    value = AccessionCounter.objects.get(day=day).last_value
    accession = f"{settings.RIS_ACCESSION_PREFIX}{day:%y%m%d}{value:05d}"
    if len(accession) > 14:
        raise ValidationError(_("The accession number counter is exhausted for today."))
    return accession


def study_uid_new() -> str:
    """A new StudyInstanceUID under the organisation root (RIS_UID_ROOT), or 2.25.<uuid> without one."""
    root = settings.RIS_UID_ROOT.strip().rstrip(".")
    return generate_uid(prefix=f"{root}." if root else None)


# --- booking rules ------------------------------------------------------------------------------


def _check_booking(
    *,
    patient: Patient,
    procedure: Procedure,
    room: Room,
    start: datetime,
    duration_minutes: int,
    exclude: Order | None,
    confirm_patient_overlap: bool,
) -> datetime:
    """Apply every booking rule; return the end time. Call with the room row locked."""
    if timezone.is_naive(start):
        raise ValueError("scheduled start must be timezone-aware")
    end = start + timedelta(minutes=duration_minutes)

    if not room.active:
        raise ValidationError({"room": _("Room %(room)s is not in service.") % {"room": room.name}})
    if not procedure.active:
        raise ValidationError(
            {"procedure": _("%(proc)s is no longer offered.") % {"proc": procedure.code_meaning}}
        )
    if room.modality != procedure.modality:
        raise ValidationError(
            {
                "room": _("%(room)s is a %(rmod)s room; %(proc)s needs a %(pmod)s room.")
                % {
                    "room": room.name,
                    "rmod": room.modality,
                    "proc": procedure.code_meaning,
                    "pmod": procedure.modality,
                }
            }
        )
    if start < timezone.now():
        raise ValidationError({"start": _("This time has already passed; choose a later one.")})

    local_start, local_end = timezone.localtime(start), timezone.localtime(end)
    hours = room.opening_hours.filter(weekday=local_start.weekday()).first()
    if hours is None:
        raise ValidationError(
            {
                "start": _("%(room)s is closed on %(day)s.")
                % {"room": room.name, "day": date_format(local_start, "l")}
            }
        )
    if (
        local_end.date() != local_start.date()
        or local_start.time() < hours.opens
        or local_end.time() > hours.closes
    ):
        raise ValidationError(
            {
                "start": _(
                    "%(room)s is open %(opens)s-%(closes)s on that day; the exam would run %(start)s-%(end)s."
                )
                % {
                    "room": room.name,
                    "opens": f"{hours.opens:%H:%M}",
                    "closes": f"{hours.closes:%H:%M}",
                    "start": f"{local_start:%H:%M}",
                    "end": f"{local_end:%H:%M}",
                }
            }
        )

    overlapping = Order.objects.filter(scheduled_start__lt=end, scheduled_end__gt=start).exclude(
        status=OrderStatus.CANCELLED
    )
    if exclude is not None:
        overlapping = overlapping.exclude(pk=exclude.pk)
    clash = overlapping.filter(room=room).select_related("patient").first()
    if clash is not None:
        clash_start = timezone.localtime(clash.scheduled_start)
        clash_end = timezone.localtime(clash.scheduled_end)
        raise ValidationError(
            {
                "start": _(
                    "%(room)s is already booked %(start)s-%(end)s (accession %(acc)s). Choose a free slot."
                )
                % {
                    "room": room.name,
                    "start": f"{clash_start:%H:%M}",
                    "end": f"{clash_end:%H:%M}",
                    "acc": clash.accession_number,
                }
            }
        )
    if not confirm_patient_overlap:
        own = overlapping.filter(patient=patient).select_related("room", "procedure").first()
        if own is not None:
            raise PatientOverlapWarning(
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
                code="patient_overlap",
            )
    return end


def _lock_rooms(*rooms: Room) -> None:
    # Lock in primary-key order so two reschedules between the same rooms cannot deadlock.
    # On PostgreSQL this serialises bookings per room; SQLite serialises all writers anyway
    # (transaction_mode IMMEDIATE in settings).
    pks = sorted({room.pk for room in rooms})
    list(Room.objects.select_for_update().filter(pk__in=pks).order_by("pk"))


def _room_taken_error(room: Room) -> ValidationError:
    return ValidationError(
        {
            "start": _("%(room)s was just booked at this time by someone else. Choose another slot.")
            % {"room": room.name}
        }
    )


def _worklist_changed(order: Order) -> None:
    """Ask the worklist export to bring this order's .wl file in line, once the change is committed."""
    from worklist_export.tasks import sync_order_enqueue

    order_id = order.pk
    # sync_order_enqueue never raises for a broker that is down: the change is committed by then, and
    # the periodic reconcile exports what was not queued.
    transaction.on_commit(lambda: sync_order_enqueue(order_id))


def _worklist_items_changed(orders: QuerySet[Order]) -> None:
    """_worklist_changed for each of `orders` that is on a worklist now.

    After an edit of a room or procedure, whose values are in every item of their orders. Orders
    beyond the worklist window have no file yet; they get one with the new values when they enter it.
    """
    from worklist_export.services import worklist_orders
    from worklist_export.tasks import sync_order_enqueue

    for order_id in worklist_orders().filter(pk__in=orders.values("pk")).values_list("pk", flat=True):
        transaction.on_commit(partial(sync_order_enqueue, order_id))


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
        _worklist_items_changed(room.orders.all())
    return room


def procedure_save(*, procedure: Procedure) -> Procedure:
    """Save a new or changed procedure; the worklist items of its active orders are re-exported (they
    carry its code and meaning)."""
    with transaction.atomic():
        procedure.full_clean()
        procedure.save()
        _worklist_items_changed(procedure.orders.all())
    return procedure


# --- orders -----------------------------------------------------------------------------------


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
) -> Order:
    """Book `procedure` for `patient` in `room` at `start` and queue its worklist item.

    Refuses (ValidationError) a time in the past, outside the room's opening hours, a room of another
    modality, or a room already booked then; warns (PatientOverlapWarning) when the patient has another
    exam at an overlapping time, unless confirm_patient_overlap.
    """
    duration_minutes = duration_minutes or procedure.default_duration
    try:
        with transaction.atomic():
            _lock_rooms(room)
            end = _check_booking(
                patient=patient,
                procedure=procedure,
                room=room,
                start=start,
                duration_minutes=duration_minutes,
                exclude=None,
                confirm_patient_overlap=confirm_patient_overlap,
            )
            accession = accession_next(day=timezone.localdate())
            order = Order(
                accession_number=accession,
                requested_procedure_id=accession,
                sps_id=f"{accession}S1",
                study_instance_uid=study_uid_new(),
                patient=patient,
                procedure=procedure,
                room=room,
                scheduled_start=start,
                duration_minutes=duration_minutes,
                scheduled_end=end,
                priority=priority,
                referring_physician=referring_physician,
                requesting_physician=requesting_physician,
                reason=reason,
                notes=notes,
                booked_by=user,
            )
            order.full_clean()
            order._history_user = user
            order.save()
            _worklist_changed(order)
    except IntegrityError as exc:
        # The PostgreSQL exclusion constraint caught a race the lock could not (e.g. a direct SQL write).
        if "order_room_no_overlap" in str(exc):
            raise _room_taken_error(room) from exc
        raise
    return order


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
) -> Order:
    """Move an order to a new time (and optionally room). The StudyInstanceUID and accession stay."""
    new_room = room or order.room
    try:
        with transaction.atomic():
            _lock_rooms(order.room, new_room)
            order = _locked(order)
            if order.status not in RESCHEDULABLE:
                raise ValidationError(
                    _("A %(status)s order cannot be rescheduled.")
                    % {"status": order.get_status_display().lower()}
                )
            duration = duration_minutes or order.duration_minutes
            end = _check_booking(
                patient=order.patient,
                procedure=order.procedure,
                room=new_room,
                start=start,
                duration_minutes=duration,
                exclude=order,
                confirm_patient_overlap=confirm_patient_overlap,
            )
            order._history_user = user
            order.room = new_room
            order.scheduled_start = start
            order.duration_minutes = duration
            order.scheduled_end = end
            order.save(
                update_fields=["room", "scheduled_start", "duration_minutes", "scheduled_end", "updated_at"]
            )
            _worklist_changed(order)
    except IntegrityError as exc:
        if "order_room_no_overlap" in str(exc):
            raise _room_taken_error(new_room) from exc
        raise
    return order


def order_transition(*, order: Order, to: str, user: AbstractBaseUser, reason: str = "") -> Order:
    """Move an order along SCHEDULED -> ARRIVED -> IN_PROGRESS -> COMPLETED, or cancel it."""
    with transaction.atomic():
        order = _locked(order)
        if to not in TRANSITIONS[order.status]:
            raise ValidationError(
                _("An order that is %(current)s cannot be marked %(to)s.")
                % {
                    "current": order.get_status_display().lower(),
                    "to": OrderStatus(to).label.lower(),
                },
                code="illegal_transition",
            )
        fields = ["status", "updated_at"]
        if to == OrderStatus.CANCELLED:
            reason = reason.strip()
            if not reason:
                raise ValidationError({"reason": _("Give a reason for the cancellation.")})
            order.cancel_reason = reason[:200]
            fields.append("cancel_reason")
        order._history_user = user
        order.status = to
        order.save(update_fields=fields)
        _worklist_changed(order)
    return order


def order_arrive(*, order: Order, user: AbstractBaseUser) -> Order:
    return order_transition(order=order, to=OrderStatus.ARRIVED, user=user)


def order_start(*, order: Order, user: AbstractBaseUser) -> Order:
    return order_transition(order=order, to=OrderStatus.IN_PROGRESS, user=user)


def order_complete(*, order: Order, user: AbstractBaseUser) -> Order:
    return order_transition(order=order, to=OrderStatus.COMPLETED, user=user)


def order_cancel(*, order: Order, reason: str, user: AbstractBaseUser) -> Order:
    return order_transition(order=order, to=OrderStatus.CANCELLED, user=user, reason=reason)


def order_discontinue(*, order: Order, reason: str, user: AbstractBaseUser) -> Order:
    """The modality stopped an exam in progress (MPPS DISCONTINUED): back to ARRIVED, with the reason.

    The order returns to the front desk and to the worklist, so it can be restarted, rescheduled or
    cancelled; the reason stays on the order.
    """
    with transaction.atomic():
        order = _locked(order)
        if order.status not in DISCONTINUABLE:
            raise ValidationError(
                _("An order that is %(current)s cannot be discontinued.")
                % {"current": order.get_status_display().lower()},
                code="illegal_transition",
            )
        order._history_user = user
        order.status = OrderStatus.ARRIVED
        order.discontinue_reason = (reason.strip() or _("Discontinued at modality"))[:200]
        order.save(update_fields=["status", "discontinue_reason", "updated_at"])
        _worklist_changed(order)
    return order


ORDER_DETAIL_FIELDS = (
    "priority",
    "referring_physician",
    "requesting_physician",
    "reason",
    "notes",
)


def order_update_details(*, order: Order, user: AbstractBaseUser, **changes: str) -> Order:
    """Change an order's clinical details (priority, physicians, reason, notes); re-exports it."""
    unknown = set(changes) - set(ORDER_DETAIL_FIELDS)
    if unknown:
        raise ValueError(f"not order details: {sorted(unknown)}")
    with transaction.atomic():
        order = _locked(order)
        if order.status not in EDITABLE:
            raise ValidationError(
                _("A %(status)s order cannot be changed.") % {"status": order.get_status_display().lower()}
            )
        for name, value in changes.items():
            setattr(order, name, value)
        order._history_user = user
        order.full_clean()
        order.save(update_fields=[*changes, "updated_at"])
        _worklist_changed(order)
    return order


# --- patients ---------------------------------------------------------------------------------


def patient_duplicates(*, family_name: str, given_name: str, birth_date: date, exclude_pk=None):
    """Patients with the same name (case-insensitive) and birth date: likely the same person."""
    qs = Patient.objects.filter(
        family_name__iexact=family_name.strip(),
        given_name__iexact=given_name.strip(),
        birth_date=birth_date,
    )
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs


def patient_register(
    *, confirm_duplicate: bool = False, user: AbstractBaseUser | None = None, **fields
) -> Patient:
    """Register a patient. Warns (DuplicatePatientWarning) on the same name and birth date.

    `user` is recorded in the patient's history (within a request the logged-in user is, anyway).
    """
    patient = Patient(**fields)
    patient.full_clean()
    if not confirm_duplicate:
        dupes = list(
            patient_duplicates(
                family_name=patient.family_name,
                given_name=patient.given_name,
                birth_date=patient.birth_date,
            )[:5]
        )
        if dupes:
            raise DuplicatePatientWarning(
                _(
                    "A patient with this name and birth date is already registered: %(mrns)s. "
                    "Open that record, or tick 'register anyway' if this is a different person."
                )
                % {"mrns": ", ".join(p.mrn for p in dupes)},
                code="duplicate_patient",
            )
    if user is not None:
        patient._history_user = user
    with transaction.atomic():
        patient.save()
    return patient


def patient_update(*, patient: Patient, user: AbstractBaseUser | None = None, **fields) -> Patient:
    """Change a patient's details; their active orders are re-exported (the name is in every item)."""
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        if user is not None:
            patient._history_user = user
        for name, value in fields.items():
            setattr(patient, name, value)
        patient.full_clean()
        patient.save()
        for order in patient.orders.filter(Q(status__in=EDITABLE)):
            _worklist_changed(order)
    return patient
