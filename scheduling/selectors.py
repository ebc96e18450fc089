"""Reads: free slots, the day's schedule, searches. No writes here."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import Order, OrderStatus, Patient, Room


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The aware start and end of `day` in the clinic's time zone."""
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(day, time.min), tz)
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min), tz)


def room_free_slots(
    *, room: Room, day: date, duration_minutes: int, exclude: Order | None = None
) -> list[datetime]:
    """Start times on `day` at which an exam of `duration_minutes` fits in `room`.

    Slots step by RIS_SLOT_MINUTES from the room's opening time, end by closing time, skip times already
    past and any overlap with a non-cancelled order (other than `exclude`, the order being rescheduled).
    """
    hours = room.opening_hours.filter(weekday=day.weekday()).first()
    if hours is None:
        return []
    tz = timezone.get_current_timezone()
    opens = timezone.make_aware(datetime.combine(day, hours.opens), tz)
    closes = timezone.make_aware(datetime.combine(day, hours.closes), tz)
    length = timedelta(minutes=duration_minutes)
    step = timedelta(minutes=settings.RIS_SLOT_MINUTES)
    busy = Order.objects.filter(room=room, scheduled_start__lt=closes, scheduled_end__gt=opens).exclude(
        status=OrderStatus.CANCELLED
    )
    if exclude is not None:
        busy = busy.exclude(pk=exclude.pk)
    taken = sorted(busy.values_list("scheduled_start", "scheduled_end"))
    now = timezone.now()
    slots, slot = [], opens
    while slot + length <= closes:
        end = slot + length
        if slot >= now and not any(s < end and e > slot for s, e in taken):
            slots.append(slot)
        slot += step
    return slots


def schedule_for_day(*, day: date) -> list[tuple[Room, list[Order]]]:
    """Active rooms, each with its orders on `day` (cancelled ones included, shown struck through)."""
    start, end = day_bounds(day)
    orders = (
        Order.objects.filter(scheduled_start__gte=start, scheduled_start__lt=end)
        .select_related("patient", "procedure", "room")
        .order_by("scheduled_start")
    )
    by_room: dict[int, list[Order]] = {}
    for order in orders:
        by_room.setdefault(order.room_id, []).append(order)
    rooms = Room.objects.filter(Q(active=True) | Q(pk__in=by_room.keys())).prefetch_related("opening_hours")
    return [(room, by_room.get(room.pk, [])) for room in rooms]


def patient_search(*, query: str = "", birth_date: date | None = None) -> QuerySet[Patient]:
    """Patients whose MRN, name (any script, native or romanised) or birth date match."""
    qs = Patient.objects.all()
    for term in query.split():
        qs = qs.filter(
            Q(mrn__iexact=term)
            | Q(mrn__istartswith=term)
            | Q(family_name__icontains=term)
            | Q(given_name__icontains=term)
            | Q(middle_name__icontains=term)
            | Q(romanized_family_name__icontains=term)
            | Q(romanized_given_name__icontains=term)
        )
    if birth_date is not None:
        qs = qs.filter(birth_date=birth_date)
    return qs.order_by("family_name", "given_name")


def order_list(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str = "",
    modality: str = "",
    room: Room | None = None,
) -> QuerySet[Order]:
    qs = Order.objects.select_related("patient", "procedure", "room")
    if date_from is not None:
        qs = qs.filter(scheduled_start__gte=day_bounds(date_from)[0])
    if date_to is not None:
        qs = qs.filter(scheduled_start__lt=day_bounds(date_to)[1])
    if status:
        qs = qs.filter(status=status)
    if modality:
        qs = qs.filter(procedure__modality=modality)
    if room is not None:
        qs = qs.filter(room=room)
    return qs.order_by("scheduled_start", "pk")
