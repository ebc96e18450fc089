"""Reads: free slots, the day's schedule, searches. No writes here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, F, Func, IntegerField, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Coalesce, Replace, TruncDate
from django.utils import timezone
from django.utils.functional import cached_property

from ris.dates import date_format

from .models import OpeningHours, Order, OrderStatus, Patient, Priority, Procedure, Room
from .validators import PASSPORT_NUMBER_RE


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


# --- patient search -------------------------------------------------------------------------------
# Built so that PostgreSQL answers every kind of term from an index (scheduling/migrations/0007):
# - an MRN prefix from a btree over UPPER(mrn) with text_pattern_ops (LIKE 'x%' under any collation);
# - a name fragment from one pg_trgm GIN index over patient_search_text(), all name parts in one string;
# - a national ID, whole or its first NATIONAL_ID_PREFIX_MIN digits or more, from a btree over
#   national_id with varchar_pattern_ops, and an exact passport number from a btree (migration 0016).
# The SQL of patient_search_text() must stay exactly the indexed expression, or the planner ignores the
# index: tests/realstack/test_scale_patients.py fails when it does. SQLite runs the same SQL, unindexed.

# Thai tone marks, the Mai Taikhu and the Thanthakhat are not letters for pg_trgm (in C.UTF-8 as in
# glibc's other locales), so it cuts "ศักดิ์ชัย" into two words at the ์ and a fragment with a mark
# gives it few or no trigrams: "ย์ว" narrowed 1M patients to 125,715 candidates for 14,762 matches.
# Searching a copy in which each mark is a Thai digit (a letter for pg_trgm) keeps the words whole.
# Digits are not in names; a name holding one could match the mark it stands for, nothing worse.
THAI_MARKS = "\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c"  # ็ ่ ้ ๊ ๋ ์
THAI_MARKS_AS = "\u0e50\u0e51\u0e52\u0e53\u0e54\u0e55"  # ๐ ๑ ๒ ๓ ๔ ๕
_MARKS_AS_DIGITS = str.maketrans(THAI_MARKS, THAI_MARKS_AS)
PATIENT_NAME_FIELDS = (
    "family_name",
    "given_name",
    "middle_name",
    "romanized_family_name",
    "romanized_given_name",
    "romanized_middle_name",
)
# Shorter fragments than this match the start of a name word only ("ใจ" finds ใจดี, not ดีใจ): a
# trigram index cannot find one- or two-letter pieces inside words, and a scan of a million names
# for a rare pair takes seconds.
PATIENT_FRAGMENT_MIN = 3


def patient_search_text() -> Replace:
    """' family given middle romanised-family romanised-given romanised-middle', marks as digits.

    Every part starts after a space, so a short term matches the start of a word as '% xy%'; a term
    never holds a space (the query is split at whitespace), so it cannot match across two parts.
    """
    parts: list[Any] = []
    for field in PATIENT_NAME_FIELDS:
        parts += [Value(" "), F(field)]
    text: Any = Func(*parts, arg_joiner=" || ", template="(%(expressions)s)", output_field=TextField())
    for mark, digit in zip(THAI_MARKS, THAI_MARKS_AS, strict=True):
        text = Replace(text, Value(mark), Value(digit), output_field=TextField())
    return text


# Fewer digits than this are not looked up as the start of a national ID: "1" or "350" would match a
# large share of all patients (the first digit is one of few categories, the next four the province
# and district of registration), a list nobody reads.
NATIONAL_ID_PREFIX_MIN = 6
NATIONAL_ID_LENGTH = 13
# A national ID as a clerk types it: digits, grouped as on the card with dashes or spaces or not.
_NATIONAL_ID_TYPED = re.compile(r"[0-9][0-9 -]*")
_ASCII_DIGITS = re.compile(r"[0-9]+")


def patient_search_terms(query: str) -> list[str]:
    """The terms of a search: its whitespace-separated words, except that a query of only digits,
    dashes and spaces is one term, a national ID typed in the card's groups ("1 1017 00203 45 0")."""
    query = query.strip()
    if _NATIONAL_ID_TYPED.fullmatch(query):
        return ["".join(query.split())]
    return query.split()


def _patient_term(term: str) -> Q:
    fragment = term if len(term) >= PATIENT_FRAGMENT_MIN else f" {term}"
    match = Q(mrn__istartswith=term) | Q(search_text__icontains=fragment.translate(_MARKS_AS_DIGITS))
    digits = term.replace("-", "")
    if _ASCII_DIGITS.fullmatch(digits) and len(digits) >= NATIONAL_ID_PREFIX_MIN:
        # All 13 digits: equality; fewer: the start of the number. Both from the same index.
        whole = len(digits) == NATIONAL_ID_LENGTH
        match |= Q(national_id=digits) if whole else Q(national_id__startswith=digits)
    passport = term.upper()
    if PASSPORT_NUMBER_RE.fullmatch(passport):
        # Exactly: a passport number's start says little, and foreigners' numbers are short.
        match |= Q(passport_number=passport)
    return match


def patients_matching(*, query: str, queryset: QuerySet[Patient] | None = None) -> QuerySet[Patient]:
    """Patients of `queryset` (all by default) matching every whitespace-separated term of `query`.

    A term matches an MRN that starts with it, or a name part (native or romanised) that holds it;
    one or two letters match the start of a name part's word. Case is ignored (on SQLite for A-Z only).
    Six digits or more (dashes and spaces between them ignored) also match the start of a national ID,
    13 the whole of one; a term that could be a passport number matches one exactly.
    """
    qs = Patient.objects.all() if queryset is None else queryset
    terms = patient_search_terms(query)
    if not terms:
        return qs
    qs = qs.alias(search_text=patient_search_text())
    for term in terms:
        qs = qs.filter(_patient_term(term))
    return qs


def patient_search(*, query: str = "", birth_date: date | None = None) -> QuerySet[Patient]:
    """Patients whose MRN, name (any script, native or romanised) or birth date match, by name."""
    qs = patients_matching(query=query)
    if birth_date is not None:
        qs = qs.filter(birth_date=birth_date)
    return qs.order_by("family_name", "given_name", "pk")


class PatientsFound(NamedTuple):
    patients: QuerySet[Patient]  # at most `limit`, by name
    more: bool  # more patients match than `patients` holds


def patient_search_first(*, query: str = "", birth_date: date | None = None, limit: int) -> PatientsFound:
    """At most `limit` of the patients patient_search() finds, by name, and whether there are more.

    "son" matches tens of thousands of a hospital's patients: sorting them all by name to show ten
    took 100-180 ms at a million patients, and PostgreSQL's other plan, walking the name index until
    ten match, took seconds when the matches sort late (Thai names sort after every Latin one). So
    the first limit + 1 matches the index finds are taken in the table's order, and those are sorted:
    exact whenever at most `limit` match; with more, `limit` of them, by name, and more=True.
    Without a search the name index gives the first `limit` patients by name, exactly.
    """
    found = patient_search(query=query, birth_date=birth_date)
    if query.split() or birth_date is not None:
        found = found.order_by()
    ids = list(found.values_list("pk", flat=True)[: limit + 1])
    patients = Patient.objects.filter(pk__in=ids[:limit]).order_by(*patient_name_order_unindexed(), "pk")
    return PatientsFound(patients, len(ids) > limit)


def patient_name_order_unindexed() -> list[Coalesce]:
    """Family then given name, as ORDER BY terms that no index can serve, for a few found patients.

    The names go through COALESCE (they are never NULL): ordered by the bare columns, PostgreSQL
    walked the whole name index looking for 1,000 found ids (1.3 s for one page at a million
    patients, 1.5 s in the admin) rather than fetching them and sorting 1,000 rows.
    """
    return [Coalesce(name, Value("")) for name in ("family_name", "given_name")]


# The order list opens on this window (today and the next ORDER_LIST_DEFAULT_DAYS days) when the clerk
# gives no date: two million orders of history are not a list anyone reads from the top.
ORDER_LIST_DEFAULT_DAYS = 30
# The order list counts at most this many orders (OrderListPaginator): page 2,000 and beyond of a wide
# window are not reached by paging, and counting five years of orders would cost every page seconds.
ORDER_LIST_COUNT_CAP = 50_000


def order_list_window(*, date_from: date | None, date_to: date | None) -> tuple[date | None, date | None]:
    """The date range the order list shows: the clerk's, or the default window when they gave no date."""
    if date_from is None and date_to is None:
        today = timezone.localdate()
        return today, today + timedelta(days=ORDER_LIST_DEFAULT_DAYS)
    return date_from, date_to


def order_list(
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str = "",
    modality: str = "",
    room: Room | None = None,
    descending: bool = False,
) -> QuerySet[Order]:
    """Orders matching the filters, by start time (then pk, so pages never share or skip a row).

    Every filter is a range or equality served by an index ending in (scheduled_start, id) (see
    Order.Meta.indexes); the modality goes through the procedure. Not windowed: order_list_window is
    the page's default, the admin and other callers pass what they want.
    """
    qs = Order.objects.all()
    if date_from is not None:
        qs = qs.filter(scheduled_start__gte=day_bounds(date_from)[0])
    if date_to is not None:
        qs = qs.filter(scheduled_start__lt=day_bounds(date_to)[1])
    if status:
        qs = qs.filter(status=status)
    if modality:
        # The procedures' ids, not a join: the (scheduled_start, id) index carries procedure_id, so
        # PostgreSQL filters index entries without reading the orders it skips.
        procedures = list(Procedure.objects.filter(modality=modality).values_list("pk", flat=True))
        qs = qs.filter(procedure_id__in=procedures)
    if room is not None:
        qs = qs.filter(room=room)
    if descending:
        return qs.order_by("-scheduled_start", "-pk")
    return qs.order_by("scheduled_start", "pk")


class OrderListPaginator(Paginator):
    """Pages of an order queryset that cost the same at page 1 and page 1,000.

    - The count stops at ORDER_LIST_COUNT_CAP (a COUNT over a LIMITed subquery): "page 1 of 2,000"
      for a window holding more.
    - A page's ids are read first, from the ordering index alone (OFFSET over index entries); then
      only those 25 orders are loaded with their patient, procedure and room. Joining before the
      OFFSET would join every skipped row: 25,000 patient lookups on page 1,000.
    """

    @cached_property
    def count(self) -> int:
        # COUNT(*) FROM (SELECT id ... LIMIT cap): Django wraps a sliced queryset's count in a subquery.
        return self.object_list.order_by().values("pk")[:ORDER_LIST_COUNT_CAP].count()

    def page(self, number) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = list(self.object_list.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        by_id = Order.objects.select_related("patient", "procedure", "room").in_bulk(ids)
        return Page([by_id[pk] for pk in ids if pk in by_id], number, self)


# --- the To schedule list ------------------------------------------------------------------------


def orders_to_schedule() -> QuerySet[Order]:
    """The requested orders waiting for a clerk to book them: the most urgent first (STAT, HIGH, ... in
    the order DICOM lists the priorities), then the oldest request first (received, then id).

    Read through the partial index order_requested_idx, which holds the requested orders alone: the
    sort is over those few, however many orders the department has booked.
    """
    urgency = Case(
        *(When(priority=value, then=Value(rank)) for rank, value in enumerate(Priority.values)),
        default=Value(len(Priority.values)),
        output_field=IntegerField(),
    )
    return (
        Order.objects.filter(status=OrderStatus.REQUESTED)
        .select_related("patient", "procedure", "booked_by")
        .order_by(urgency, "booked_at", "pk")
    )


def orders_to_schedule_count() -> int:
    """How many requested orders wait: one COUNT over the partial index (the navigation's badge)."""
    return Order.objects.filter(status=OrderStatus.REQUESTED).count()


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
    # As the rest of the page writes dates: B.E. under Thai (ris/dates.py).
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    if isinstance(value, date):
        return date_format(value, "SHORT_DATE_FORMAT")
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


# --- no-shows -----------------------------------------------------------------------------------


class CallBackPage(NamedTuple):
    orders: list[Order]
    # Where the next page starts (call_back_cursor of the last order), or None on the last page.
    next_cursor: str | None


def call_back_cursor(order: Order) -> str:
    return f"{order.scheduled_start.isoformat()}_{order.pk}"


def _call_back_position(cursor: str) -> tuple[datetime, int] | None:
    start, _, pk = cursor.rpartition("_")
    try:
        position = datetime.fromisoformat(start), int(pk)
    except ValueError:
        return None
    return position if timezone.is_aware(position[0]) else None


def orders_to_call_back(*, after: str = "", limit: int) -> CallBackPage:
    """The no-shows nobody has called back yet, the latest missed exam first: the "To call back" list.

    Read on the partial index order_call_back_idx in its order, `limit` at a time from the cursor
    `after` (a page's next_cursor; an unreadable one starts from the top): no COUNT and no OFFSET, so a
    page costs the same however long the list has grown.
    """
    orders = Order.objects.filter(status=OrderStatus.NO_SHOW, called_back_at__isnull=True)
    position = _call_back_position(after) if after else None
    if position is not None:
        start, pk = position
        orders = orders.filter(Q(scheduled_start__lt=start) | Q(scheduled_start=start, pk__lt=pk))
    found = list(
        orders.select_related("patient", "procedure", "room").order_by("-scheduled_start", "-pk")[: limit + 1]
    )
    more = len(found) > limit
    found = found[:limit]
    return CallBackPage(found, call_back_cursor(found[-1]) if more else None)


@dataclass
class NoShowCounts:
    """No-shows per room and day: `rooms` the columns, `rows` (day, a count per room, the day's total)."""

    rooms: list[Room]
    rows: list[tuple[date, list[int], int]]
    totals: list[int]
    total: int


def no_show_counts(*, date_from: date, date_to: date) -> NoShowCounts:
    """How many exams were no-shows in each room on each clinic day from `date_from` to `date_to`.

    Counted in the database (GROUP BY room and day over the (status, scheduled_start, id) index), so
    only the few sums are read, called back or not. The day is the exam's in the clinic's time zone.
    Only days and rooms with a no-show appear.
    """
    start, _ = day_bounds(date_from)
    _, end = day_bounds(date_to)
    counted = (
        Order.objects.filter(status=OrderStatus.NO_SHOW, scheduled_start__gte=start, scheduled_start__lt=end)
        .annotate(day=TruncDate("scheduled_start", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values("day", "room_id")
        .annotate(n=Count("id"))
    )
    by_day: dict[date, dict[int, int]] = {}
    for row in counted:
        by_day.setdefault(row["day"], {})[row["room_id"]] = row["n"]
    room_ids = {room_id for counts in by_day.values() for room_id in counts}
    rooms = list(Room.objects.filter(pk__in=room_ids).order_by("name", "pk"))
    rows = []
    for day in sorted(by_day):
        counts = [by_day[day].get(room.pk, 0) for room in rooms]
        rows.append((day, counts, sum(counts)))
    totals = [sum(row[1][i] for row in rows) for i in range(len(rooms))]
    return NoShowCounts(rooms=rooms, rows=rows, totals=totals, total=sum(totals))
