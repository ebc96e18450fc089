"""Reads: free slots, the day's schedule, searches. No writes here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import OpeningHours, Order, Patient, Room


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
    span = room.open_span(day)
    if span is None:
        return []
    opens, closes = span
    length = timedelta(minutes=duration_minutes)
    step = timedelta(minutes=settings.RIS_SLOT_MINUTES)
    busy = Order.objects.overlapping(opens, closes).filter(room=room)
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


class BoardOrder(NamedTuple):
    """What a day-board block shows of an order: plain values, not model rows (see schedule_for_day)."""

    pk: int
    accession_number: str
    status: str
    scheduled_start: datetime
    scheduled_end: datetime
    discontinue_reason: str
    patient_name: str
    procedure_name: str


def schedule_for_day(*, day: date) -> list[tuple[Room, list[BoardOrder]]]:
    """Active rooms, each with its orders on `day` (cancelled ones included, shown struck through).

    Reads plain values: a busy day has thousands of orders, and building patient, procedure and order
    model instances for each was a third of the day board's time.
    """
    start, end = day_bounds(day)
    rows = (
        Order.objects.filter(scheduled_start__gte=start, scheduled_start__lt=end)
        .order_by("scheduled_start")
        .values_list(
            "room_id",
            "pk",
            "accession_number",
            "status",
            "scheduled_start",
            "scheduled_end",
            "discontinue_reason",
            "patient__name_prefix",
            "patient__given_name",
            "patient__middle_name",
            "patient__family_name",
            "patient__name_suffix",
            "procedure__code_meaning",
        )
    )
    by_room: dict[int, list[BoardOrder]] = {}
    for room_id, *order, prefix, given, middle, family, suffix, procedure in rows:
        name = Patient.compose_display_name(prefix, given, middle, family, suffix)
        by_room.setdefault(room_id, []).append(BoardOrder(*order, name, procedure))
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


@dataclass
class BoardBlock:
    """One exam on the day board, placed by minutes from the top of the grid."""

    order: BoardOrder
    top: int
    height: int


@dataclass
class BoardColumn:
    room: Room
    hours: OpeningHours | None
    blocks: list[BoardBlock]
    open_top: int = 0  # the opening hours, in minutes from the top of the grid (0, 0 when closed)
    open_height: int = 0


@dataclass
class DayBoard:
    day: date
    start: datetime | None  # top of the grid; None when no room is open and nothing is booked
    end: datetime | None
    rows: list[datetime]  # one per RIS_SLOT_MINUTES, labelled on the left
    columns: list[BoardColumn]

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60) if self.start and self.end else 0


def _open_span(day: date, hours: OpeningHours | None, minutes) -> dict[str, int]:
    if hours is None:
        return {}
    opens, closes = (minutes(moment) for moment in hours.span_on(day))
    return {"open_top": opens, "open_height": closes - opens}


def day_board(*, day: date) -> DayBoard:
    """The day board: one column per room, a grid from the earliest opening to the latest closing.

    Three queries whatever the number of orders (orders with their patient, procedure and room; rooms;
    opening hours). The grid also stretches to cover an exam booked outside today's opening hours.
    """
    midnight = day_bounds(day)[1]
    columns, bounds = [], []
    for room, orders in schedule_for_day(day=day):
        hours = room.hours_for(day.weekday())
        if hours is not None:
            bounds += hours.span_on(day)
        if orders:
            # Orders come sorted by start; the latest end may belong to any of them.
            bounds += [orders[0].scheduled_start, min(max(o.scheduled_end for o in orders), midnight)]
        columns.append((room, hours, orders))
    if not bounds:
        return DayBoard(
            day=day,
            start=None,
            end=None,
            rows=[],
            columns=[BoardColumn(room=room, hours=hours, blocks=[]) for room, hours, _ in columns],
        )
    step = timedelta(minutes=settings.RIS_SLOT_MINUTES)
    # Rows start on a whole hour so the labels read naturally even when a room opens at 08:15.
    start = timezone.localtime(min(bounds)).replace(minute=0, second=0, microsecond=0)
    end = max(bounds)
    rows, row = [], start
    while row < end:
        rows.append(row)
        row += step
    end = row

    def minutes(moment: datetime) -> int:
        return int((moment - start).total_seconds() // 60)

    board_columns = [
        BoardColumn(
            room=room,
            hours=hours,
            blocks=[
                BoardBlock(
                    order=order,
                    top=minutes(order.scheduled_start),
                    height=minutes(min(order.scheduled_end, end)) - minutes(order.scheduled_start),
                )
                for order in orders
            ],
            **_open_span(day, hours, minutes),
        )
        for room, hours, orders in columns
    ]
    return DayBoard(day=day, start=start, end=end, rows=rows, columns=board_columns)


# --- audit trail --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryChange:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class HistoryRow:
    when: datetime
    who: str
    action: str  # "created", "changed" or "deleted"
    changes: list[HistoryChange]


# Bookkeeping the services keep in step with the fields shown; listing them would only repeat.
HISTORY_HIDDEN_FIELDS = ("updated_at", "version", "scheduled_end", "requested_procedure_id", "sps_id")


def _history_value(model, field_name: str, value) -> str:
    if value is None or value == "":
        return "—"
    field = model._meta.get_field(field_name)
    if field.is_relation:
        related = field.related_model.objects.filter(pk=value).first()
        return str(related) if related is not None else str(value)
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, datetime):
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"
    return str(value)


def record_history(*, instance) -> list[HistoryRow]:
    """Who changed a patient or an order, when, and each field's value before -> after; oldest first.

    The first row is the creation (no before values); a save that changed nothing shown is left out.
    """
    model = type(instance)
    records = list(instance.history.select_related("history_user").order_by("history_date", "history_id"))
    rows = []
    previous = None
    for record in records:
        if previous is None:
            changes = []
        else:
            delta = record.diff_against(previous, excluded_fields=HISTORY_HIDDEN_FIELDS)
            changes = [
                HistoryChange(
                    field=str(model._meta.get_field(change.field).verbose_name),
                    old=_history_value(model, change.field, change.old),
                    new=_history_value(model, change.field, change.new),
                )
                for change in delta.changes
            ]
        action = {"+": "created", "~": "changed", "-": "deleted"}[record.history_type]
        if previous is None or changes or action != "changed":
            user = record.history_user
            rows.append(
                HistoryRow(
                    when=record.history_date,
                    who=user.get_username() if user is not None else "",
                    action=action,
                    changes=changes,
                )
            )
        previous = record
    return rows
