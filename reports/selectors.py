"""The numbers behind the department's reports, each counted in the database.

Every query reads the orders of a range of clinic days (the exam's day, in the clinic's time zone) with
an optional room and modality, and returns only its few sums: a year at a hospital's size is some
400,000 orders, and none of them comes into Python.

Local time in SQL: SQLite has no time zones, so the queries work on "local epoch seconds", the UTC
epoch plus the clinic's UTC offset at that instant. The offsets of the range come from zoneinfo and go
into the query as a CASE over the transitions (none in Asia/Bangkok), so a day, a weekday and an hour
of the clock are integer arithmetic that SQLite and PostgreSQL do alike:

    day = local // 86400      weekday = (day + 3) % 7 (Monday 0: 1970-01-01 was a Thursday)
    hour = local % 86400 // 3600

Percentiles are PostgreSQL's percentile_cont (linear between the two nearest ranks), computed with
window functions both databases have over each group's histogram (value, count); see `_percentiles`.

A year at a hospital's size (bench/reports_bench.py measures it) is five scans of the range's orders,
each aggregating them by hash into a few thousand rows at most: the index order_report_idx holds the
columns the reports read, so a scan does not visit the table, and nothing sorts one row per order.
The page runs the five side by side (`page`); what is left is PostgreSQL's cost per order read,
some 0.3 microseconds a scan and as much again a hash aggregate on this project's bench machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone

from scheduling.models import ORDER_LONGEST, OpeningHours, OrderStatus, Priority, Room

# What a day's exam came to. "open" is an exam still scheduled, arrived or in progress.
OUTCOMES = ("completed", "cancelled", "no_show", "open")
_OUTCOME_OF = {
    OrderStatus.COMPLETED: "completed",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.NO_SHOW: "no_show",
    OrderStatus.SCHEDULED: "open",
    OrderStatus.ARRIVED: "open",
    OrderStatus.IN_PROGRESS: "open",
}
# The orders that held their room's time: every booked one but the cancelled (a no-show kept its slot).
HELD = (
    OrderStatus.SCHEDULED,
    OrderStatus.ARRIVED,
    OrderStatus.IN_PROGRESS,
    OrderStatus.COMPLETED,
    OrderStatus.NO_SHOW,
)
# How long the patient waited for the exam: every booked order but the cancelled.
WAITED = HELD
# The To-schedule list's ages, in whole days waited: [low, high) with None for "and more".
AGE_BANDS = ((0, 1), (1, 3), (3, 8), (8, 15), (15, 31), (31, None))
HOURS = range(24)
WEEKDAYS = range(7)
WEEK = 7 * 86400
PERCENTILES = (0.5, 0.9)


@dataclass(frozen=True)
class Filters:
    date_from: date
    date_to: date  # inclusive
    room: Room | None = None
    modality: str = ""

    @property
    def days(self) -> list[date]:
        return [self.date_from + timedelta(days=n) for n in range((self.date_to - self.date_from).days + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        """The aware start of the first day and end of the last, in the clinic's time zone."""
        tz = timezone.get_current_timezone()
        return (
            timezone.make_aware(datetime.combine(self.date_from, time.min), tz),
            timezone.make_aware(datetime.combine(self.date_to + timedelta(days=1), time.min), tz),
        )


# --- SQL building blocks --------------------------------------------------------------------------


def _epoch(column: str) -> str:
    """Whole UTC epoch seconds of a datetime column, on either database."""
    if connection.vendor == "postgresql":
        # date_part is a float8, EXTRACT a numeric: the same whole seconds, several times faster per row.
        return f"FLOOR(date_part('epoch', {column}))::bigint"
    # Django keeps SQLite datetimes as UTC text ('YYYY-MM-DD HH:MM:SS[.ffffff]'), which strftime reads.
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _offsets(start: datetime, end: datetime) -> list[tuple[int | None, int]]:
    """The clinic's UTC offsets (seconds) from `start` to `end`: [(until epoch, offset)], the last open.

    A step of a day, and of an hour inside a day whose offset changed: a few hundred look-ups a year.
    """
    tz = timezone.get_current_timezone()

    def offset_at(at: datetime) -> int:
        return int(at.astimezone(tz).utcoffset().total_seconds())

    changes: list[tuple[int | None, int]] = []
    at = start - timedelta(days=1)
    offset = offset_at(at)
    while at < end + timedelta(days=1):
        day_later = at + timedelta(days=1)
        if offset_at(day_later) != offset:
            hour = at
            while hour < day_later:
                hour += timedelta(hours=1)
                if offset_at(hour) != offset:
                    changes.append((int(hour.timestamp()), offset))
                    offset = offset_at(hour)
        at = day_later
    changes.append((None, offset))
    return changes


def _local(column: str, offsets: Sequence[tuple[int | None, int]]) -> str:
    """The SQL of `column` as local epoch seconds (see the module docstring)."""
    epoch = _epoch(column)
    if len(offsets) == 1:
        return f"({epoch} + {offsets[0][1]})"
    cases = " ".join(f"WHEN {epoch} < {until} THEN {offset}" for until, offset in offsets[:-1])
    return f"({epoch} + CASE {cases} ELSE {offsets[-1][1]} END)"


def _mod(a: str, b: int) -> str:
    """`a` modulo `b` for a non-negative `a`, without the % sign the query's placeholders reserve."""
    return f"(({a}) - ({a}) / {b} * {b})"


def _seconds_between(since: str, until: str) -> str:
    """The whole seconds from one datetime column to another, the fraction cut off, on either database."""
    if connection.vendor == "postgresql":
        return f"TRUNC(date_part('epoch', {until} - {since}))::bigint"

    # SQLite's text keeps the microseconds after the 20th character ('YYYY-MM-DD HH:MM:SS.ffffff'), or
    # none; integer division cuts toward zero as TRUNC does.
    def micros(column: str) -> str:
        return f"({_epoch(column)} * 1000000 + CAST(substr({column}, 21, 6) AS INTEGER))"

    return f"(({micros(until)} - {micros(since)}) / 1000000)"


def _greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if connection.vendor == "postgresql" else f"MAX({a}, {b})"


def _least(a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if connection.vendor == "postgresql" else f"MIN({a}, {b})"


def _local_midnight(day: date) -> int:
    """Local epoch seconds of `day`'s midnight: the naive wall clock as if it were UTC."""
    return int(datetime.combine(day, time.min).replace(tzinfo=ZoneInfo("UTC")).timestamp())


def _where(filters: Filters, statuses: Sequence[str], *, look_back: timedelta = timedelta(0)):
    """The orders of the range (by scheduled start, from `look_back` before it) with room and modality."""
    start, end = filters.bounds()
    sql = [
        "o.scheduled_start >= %s",
        "o.scheduled_start < %s",
        f"o.status IN ({', '.join(['%s'] * len(statuses))})",
    ]
    # Raw SQL gets no field conversion: adapt_datetimefield_value gives SQLite the UTC text it stores.
    adapt = connection.ops.adapt_datetimefield_value
    params: list[object] = [adapt(start - look_back), adapt(end), *statuses]
    if filters.room is not None:
        sql.append("o.room_id = %s")
        params.append(filters.room.pk)
    if filters.modality:
        # A semi-join on the 20-odd procedures, not a join per order: the scan stays on the orders.
        sql.append("o.procedure_id IN (SELECT p.id FROM scheduling_procedure p WHERE p.modality = %s)")
        params.append(filters.modality)
    return " AND ".join(sql), params


FROM = "scheduling_order o"


# PostgreSQL's memory for each hash table of a report's query. The planner cannot know how few groups
# the day, hour and seconds of a year's orders come to (it guesses one per few orders), and below this
# it would sort the 400,000 rows on disk rather than hash them into the few thousand groups they are.
REPORT_WORK_MEM = "64MB"


def _rows(sql: str, params: Sequence[object]) -> list[tuple]:
    if connection.vendor != "postgresql":
        # No transaction around a read on SQLite: it would begin IMMEDIATE (settings), a write lock that
        # the front desk's bookings would queue behind for as long as the report reads.
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'")
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- Exams per day by outcome ----------------------------------------------------------------------


@dataclass
class DailyOutcomes:
    days: list[date]
    counts: dict[str, list[int]]  # outcome -> one count per day

    @property
    def totals(self) -> dict[str, int]:
        return {outcome: sum(values) for outcome, values in self.counts.items()}

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def rows(self) -> list[tuple[date, list[int], int]]:
        return [
            (day, [self.counts[o][i] for o in OUTCOMES], sum(self.counts[o][i] for o in OUTCOMES))
            for i, day in enumerate(self.days)
        ]


def daily_outcomes(filters: Filters) -> DailyOutcomes:
    """How many exams each clinic day had, by what they came to (completed, cancelled, no-show, open)."""
    return volumes(filters)[0]


# --- Room utilisation: weekday x hour ---------------------------------------------------------------


@dataclass
class Utilisation:
    booked: list[list[int]]  # [weekday][hour] booked minutes
    open: list[list[int]]  # [weekday][hour] opening minutes of the rooms over the range

    def share(self, weekday: int, hour: int) -> float | None:
        """Booked minutes as a share of opening minutes; None where no room was open then."""
        opened = self.open[weekday][hour]
        return self.booked[weekday][hour] / opened if opened else None

    @property
    def hours(self) -> list[int]:
        """The hours of the clock any room opens or any exam was booked in: the heatmap's columns."""
        used = [h for h in HOURS if any(self.open[w][h] or self.booked[w][h] for w in WEEKDAYS)]
        return list(range(min(used), max(used) + 1)) if used else []

    @property
    def total_booked(self) -> int:
        return sum(map(sum, self.booked))

    @property
    def total_open(self) -> int:
        return sum(map(sum, self.open))

    @property
    def outside_hours(self) -> int:
        """Booked minutes in a weekday and hour when none of the rooms was open."""
        return sum(self.booked[w][h] for w in WEEKDAYS for h in HOURS if not self.open[w][h])


def utilisation(filters: Filters) -> Utilisation:
    """Booked minutes and opening minutes per weekday and hour of the clock over the range."""
    return volumes(filters)[1]


def volumes(filters: Filters) -> tuple[DailyOutcomes, Utilisation]:
    """The exams per day by outcome, and the booked minutes per weekday and hour, from one scan.

    Both read the same columns of the range's orders: the scan counts them per start, end and status
    (exams start on the rooms' slot grid, so a year's 400,000 are some 45,000 such rows, and the local
    day, weekday and hour are worked out per row counted, not per order). From those counts:

    - the day of each exam's start gives the exams per day, by outcome;
    - the booked minutes go to the hours they fall in (09:45-10:15 gives 15 to 9 and 15 to 10; one
      across midnight gives the next weekday its part), clipped to the range: exams held their room's
      time unless cancelled (a no-show kept its slot), and the scan reaches back by the longest exam
      for the ones that began before the range. They are counted per start within the week and length
      first (a weekday and an hour depend on the local seconds modulo a week only, 1970-01-01 being a
      Thursday at 0): a few hundred rows, cut into hours and weighted by their count.

    Opening minutes: each day of the range counts its rooms' opening hours of that weekday.
    """
    start, end = filters.bounds()
    offsets = _offsets(start - ORDER_LONGEST, end)
    where, params = _where(filters, list(_OUTCOME_OF), look_back=ORDER_LONGEST)
    lo, hi = _local_midnight(filters.date_from), _local_midnight(filters.date_to + timedelta(days=1))
    s = _greatest(_local("ts", offsets), str(lo))
    e = _least(_local("te", offsets), str(hi))
    held = ", ".join(f"'{status}'" for status in HELD)  # the enum's own values, no input
    # An exam spans at most 13 hours of the clock (ORDER_LONGEST is 12 hours): offsets 0..12.
    spans = ORDER_LONGEST // timedelta(hours=1)
    sql = f"""
        WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < {spans}),
        slots AS (
            SELECT o.scheduled_start AS ts, o.scheduled_end AS te, o.status AS status, COUNT(*) AS c
            FROM {FROM} WHERE {where} GROUP BY 1, 2, 3
        ),
        clipped AS (SELECT {s} AS s, {e} AS e, c FROM slots WHERE status IN ({held})),
        w AS (SELECT {_mod("s", WEEK)} AS s, e - s AS len, SUM(c) AS c FROM clipped WHERE e > s GROUP BY 1, 2),
        x AS (SELECT s, s + len AS e, c FROM w),
        pieces AS (
            SELECT s AS b, (e - s) * c AS seconds FROM x WHERE s / 3600 = (e - 1) / 3600
            UNION ALL
            SELECT (s / 3600 + k.n) * 3600, ({_least("e", "(s / 3600 + k.n + 1) * 3600")}
                   - {_greatest("s", "(s / 3600 + k.n) * 3600")}) * c
            FROM x JOIN k ON k.n <= (e - 1) / 3600 - s / 3600
            WHERE s / 3600 < (e - 1) / 3600
        )
        SELECT 0, {_local("ts", offsets)} / 86400, status, SUM(c) FROM slots WHERE ts >= %s GROUP BY 2, 3
        UNION ALL
        SELECT 1, {_mod("b / 86400 + 3", 7)} * 24 + {_mod("b", 86400)} / 3600, NULL, SUM(seconds)
        FROM pieces GROUP BY 2
    """
    days = filters.days
    first = _local_midnight(filters.date_from) // 86400
    counts = {outcome: [0] * len(days) for outcome in OUTCOMES}
    booked = [[0] * 24 for _ in WEEKDAYS]
    for part, key, status, n in _rows(sql, [*params, connection.ops.adapt_datetimefield_value(start)]):
        if part == 0:
            counts[_OUTCOME_OF[status]][key - first] += n
        else:
            weekday, hour = divmod(key, 24)
            booked[weekday][hour] += round(n / 60)
    return (
        DailyOutcomes(days=days, counts=counts),
        Utilisation(booked=booked, open=_opening_minutes(filters)),
    )


def _rooms(filters: Filters):
    """The rooms the range's filters cover: the chosen one, or those of the chosen modality (the booking
    offers a procedure the rooms of its modality), or all."""
    rooms = Room.objects.all()
    if filters.room is not None:
        rooms = rooms.filter(pk=filters.room.pk)
    if filters.modality:
        rooms = rooms.filter(modality=filters.modality)
    return rooms


def _opening_hours(filters: Filters) -> Iterator[tuple[int, int, int, int]]:
    """(room id, weekday, hour, minutes) of each room's opening hours, each day of the range counted."""
    weekdays = [0] * 7
    for day in filters.days:
        weekdays[day.weekday()] += 1
    for hours in OpeningHours.objects.filter(room__in=_rooms(filters)).only(
        "room_id", "weekday", "opens", "closes"
    ):
        opens = hours.opens.hour * 60 + hours.opens.minute
        closes = hours.closes.hour * 60 + hours.closes.minute
        for hour in HOURS:
            inside = min(closes, (hour + 1) * 60) - max(opens, hour * 60)
            if inside > 0 and weekdays[hours.weekday]:
                yield hours.room_id, hours.weekday, hour, inside * weekdays[hours.weekday]


def _opening_minutes(filters: Filters) -> list[list[int]]:
    """Opening minutes per weekday and hour: each room's hours times the range's days of that weekday."""
    minutes = [[0] * 24 for _ in WEEKDAYS]
    for _room, weekday, hour, inside in _opening_hours(filters):
        minutes[weekday][hour] += inside
    return minutes


@dataclass(frozen=True)
class RoomUse:
    room: Room
    booked: int  # minutes
    open: int  # minutes

    @property
    def share(self) -> float | None:
        """Booked minutes as a share of opening minutes; None for a room with no opening hours then."""
        return self.booked / self.open if self.open else None

    @property
    def percent(self) -> float | None:
        return None if self.share is None else self.share * 100

    @property
    def booked_hours(self) -> float:
        return self.booked / 60

    @property
    def open_hours(self) -> float:
        return self.open / 60


def room_use(filters: Filters) -> list[RoomUse]:
    """Each room's booked minutes over the range beside its opening minutes: how full it was.

    The booked minutes are the heatmap's, per room: every exam but the cancelled, clipped to the range
    (one that began the evening before counts from midnight), rounded to whole minutes per room. The
    rooms are those the filters cover that opened or had an exam in the range, by name.
    """
    start, end = filters.bounds()
    adapt = connection.ops.adapt_datetimefield_value
    where, params = _where(filters, HELD, look_back=ORDER_LONGEST)
    # Clipped on the stored instants, per order a comparison and a subtraction; seconds per room.
    if connection.vendor == "postgresql":
        clipped = "date_part('epoch', SUM(LEAST(o.scheduled_end, %s) - GREATEST(o.scheduled_start, %s)))"
    else:
        clipped = f"SUM({_epoch('MIN(o.scheduled_end, %s)')} - {_epoch('MAX(o.scheduled_start, %s)')})"
    booked = {
        room_id: round(seconds / 60)
        for room_id, seconds in _rows(
            f"SELECT o.room_id, {clipped} FROM {FROM} WHERE {where} AND o.scheduled_end > %s GROUP BY 1",
            [adapt(end), adapt(start), *params, adapt(start)],
        )
    }
    opened: dict[int, int] = {}
    for room_id, _weekday, _hour, inside in _opening_hours(filters):
        opened[room_id] = opened.get(room_id, 0) + inside
    rooms = _rooms(filters).filter(pk__in=set(booked) | set(opened)).order_by("name", "pk")
    return [RoomUse(room=room, booked=booked.get(room.pk, 0), open=opened.get(room.pk, 0)) for room in rooms]


# --- Percentiles -----------------------------------------------------------------------------------


def _percentiles(counted_sql: str, params: Sequence[object]) -> dict[object, dict[str, float | int]]:
    """Per group: count, median and 90th percentile of the values `counted_sql` counts as (g, v, c) rows.

    percentile_cont: p at rank p * (n - 1) from 0, linear between the two ranks around it. The values
    come counted per group and value (days and seconds repeat: a year's 400,000 exams are some hundreds
    of such rows); a running sum of the counts over each group's values gives the ranks each value
    covers, [below, below + c), and only the values that cover a wanted rank leave the database.
    """
    wanted = []
    for p in PERCENTILES:
        tenths = round(p * 10)
        for rank in (f"(h.n - 1) * {tenths} / 10", f"(h.n - 1) * {tenths} / 10 + 1"):
            wanted.append(f"(h.below <= {rank} AND {rank} < h.below + h.c)")
    # Counted first, then sorted for the running sums: PostgreSQL would otherwise sort the orders
    # themselves by group and value (it expects nearly one value per order) rather than their counts.
    materialized = "MATERIALIZED" if connection.vendor == "postgresql" else ""
    sql = f"""
        WITH counted AS {materialized} ({counted_sql})
        SELECT h.g, h.n, h.below, h.c, h.v FROM (
            SELECT g, v, c,
                   CAST(SUM(c) OVER (PARTITION BY g ORDER BY v ROWS UNBOUNDED PRECEDING) - c AS BIGINT) AS below,
                   CAST(SUM(c) OVER (PARTITION BY g) AS BIGINT) AS n
            FROM counted
        ) h
        WHERE {" OR ".join(wanted)}
    """
    covering: dict[object, list[tuple[int, int, float]]] = {}
    counts: dict[object, int] = {}
    for group, n, below, c, v in _rows(sql, params):
        covering.setdefault(group, []).append((int(below), int(c), v))
        counts[group] = int(n)

    def at_rank(group: object, i: int) -> float:
        return next(v for below, c, v in covering[group] if below <= i < below + c)

    found: dict[object, dict[str, float | int]] = {}
    for group, n in counts.items():
        found[group] = {"n": n}
        for p in PERCENTILES:
            # In tenths, as the query picked the ranks: exact, where p * (n - 1) in floats may not be.
            low, tenths_past = divmod((n - 1) * round(p * 10), 10)
            below = at_rank(group, low)
            above = at_rank(group, low + 1) if low + 1 < n else below
            found[group][f"p{round(p * 100)}"] = below + (above - below) * tenths_past / 10
    return found


# --- Waiting time ------------------------------------------------------------------------------------


@dataclass
class Waiting:
    # modality -> {"n", "p50", "p90"} in days, from booking (or the HIS's request) to the exam's day
    per_modality: dict[str, dict[str, float | int]]
    # The To-schedule list now: orders waiting per age band, and the median, 90th percentile, oldest
    bands: list[tuple[tuple[int, int | None], int]] = field(default_factory=list)
    to_schedule: dict[str, float | int] = field(default_factory=dict)


def waiting(filters: Filters, *, now: datetime | None = None) -> Waiting:
    """Days from booking to the exam per modality, and how long the To-schedule list's orders have waited.

    Days are calendar days in the clinic (booked on Monday for Thursday: 3). The booking time is when
    the order came in: a requested order keeps the time the HIS sent it, so its wait counts from then.
    The To-schedule list is the list now, whatever the range, with the modality filter only.
    """
    start, end = filters.bounds()
    now = now or timezone.now()
    # Bookings up to two years before the exam are read in their own offset (a DST zone's; one a day
    # outside by an hour, at most, for older ones).
    offsets = _offsets(start - timedelta(days=731), max(end, now))
    where, params = _where(filters, WAITED)
    days = f"({_local('o.scheduled_start', offsets)} / 86400 - {_local('o.booked_at', offsets)} / 86400)"
    # Counted per procedure in the scan, then per modality: the join is on the counts, not on the orders.
    per_modality = _percentiles(
        f"""SELECT p.modality AS g, q.v, SUM(q.c) AS c
            FROM (SELECT o.procedure_id AS procedure_id, {days} AS v, COUNT(*) AS c FROM {FROM} WHERE {where}
                  GROUP BY 1, 2) q
            JOIN scheduling_procedure p ON p.id = q.procedure_id
            GROUP BY 1, 2""",
        params,
    )
    bands, summary = _to_schedule(filters, now)
    return Waiting(per_modality=dict(sorted(per_modality.items())), bands=bands, to_schedule=summary)


def _to_schedule(filters: Filters, now: datetime) -> tuple[list[tuple[tuple[int, int | None], int]], dict]:
    """The To-schedule list now: orders waiting per age band, and the median, 90th percentile, oldest."""

    age = f"(({int(now.timestamp())} - {_epoch('o.booked_at')}) / 86400)"
    listed = "o.status = %s"
    listed_params: list[object] = [OrderStatus.REQUESTED]
    if filters.modality:
        listed += " AND o.procedure_id IN (SELECT p.id FROM scheduling_procedure p WHERE p.modality = %s)"
        listed_params.append(filters.modality)
    band = " ".join(f"WHEN {age} < {high} THEN {low}" for low, high in AGE_BANDS if high is not None)
    counted = dict(
        _rows(
            f"SELECT CASE {band} ELSE {AGE_BANDS[-1][0]} END, COUNT(*) FROM {FROM} WHERE {listed} GROUP BY 1",
            listed_params,
        )
    )
    bands = [((low, high), counted.get(low, 0)) for low, high in AGE_BANDS]
    summary = _percentiles(
        f"SELECT 0 AS g, {age} AS v, COUNT(*) AS c FROM {FROM} WHERE {listed} GROUP BY 2", listed_params
    ).get(0, {})
    if summary:
        summary["oldest"] = _rows(f"SELECT MAX({age}) FROM {FROM} WHERE {listed}", listed_params)[0][0]
        summary["stat"] = _rows(
            f"SELECT COUNT(*) FROM {FROM} WHERE {listed} AND o.priority = %s", [*listed_params, Priority.STAT]
        )[0][0]
    return bands, summary


def to_schedule(filters: Filters, *, now: datetime | None = None) -> Waiting:
    """The To-schedule list's part of `waiting` alone (its CSV), without the range's waiting times."""
    bands, summary = _to_schedule(filters, now or timezone.now())
    return Waiting(per_modality={}, bands=bands, to_schedule=summary)


# --- Turnaround ----------------------------------------------------------------------------------


@dataclass
class Turnaround:
    # room id -> {"wait": {...}, "exam": {...}} in minutes: arrived -> started, started -> completed
    per_room: list[tuple[Room, dict[str, dict[str, float | int]]]]


# The legs of an exam's turnaround: from which stamp to which.
LEGS = {
    "wait": ("o.arrived_at", "o.started_at"),
    "exam": ("o.started_at", "o.completed_at"),
}


def turnaround(filters: Filters) -> Turnaround:
    """Minutes from arrival to the exam's start and from start to completion, per room (median, p90).

    Each leg counts the orders that have both its times (services.order_transition stamps them); the
    start is the latest one after a discontinuation. A leg lasts its whole seconds, the fraction cut
    off: the same on both databases, and a histogram of a few thousand values per room however
    finely the stamps were taken.
    """
    legs = _side_by_side([partial(_leg, filters, leg) for leg in LEGS])
    return _turnaround(dict(zip(LEGS, legs, strict=True)))


def _leg(filters: Filters, leg: str) -> dict[int, dict[str, float | int]]:
    """One leg of the turnaround per room id: its count, and its median and p90 in minutes."""
    since, until = LEGS[leg]
    where, params = _where(filters, (OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED))
    sql = f"""
        SELECT o.room_id AS g, {_seconds_between(since, until)} AS v, COUNT(*) AS c
        FROM {FROM} WHERE {where} AND {since} IS NOT NULL AND {until} IS NOT NULL
        GROUP BY 1, 2
    """
    # Seconds to minutes: a percentile between two ranks scales with its values.
    return {
        room_id: {k: v if k == "n" else v / 60 for k, v in stats.items()}
        for room_id, stats in _percentiles(sql, params).items()
    }


def _turnaround(legs: dict[str, dict[int, dict[str, float | int]]]) -> Turnaround:
    found: dict[int, dict[str, dict[str, float | int]]] = {}
    for leg, per_room in legs.items():
        for room_id, stats in per_room.items():
            found.setdefault(room_id, {})[leg] = stats
    rooms = Room.objects.in_bulk(list(found))
    per_room = sorted(
        (
            (rooms[pk], {leg: legs_found[leg] for leg in LEGS if leg in legs_found})
            for pk, legs_found in found.items()
        ),
        key=lambda item: (item[0].name, item[0].pk),
    )
    return Turnaround(per_room=per_room)


# --- The page -----------------------------------------------------------------------------------


@dataclass
class Page:
    daily: DailyOutcomes
    utilisation: Utilisation
    rooms: list[RoomUse]
    waiting: Waiting
    turnaround: Turnaround


def page(filters: Filters) -> Page:
    """Everything the Reports page shows: its five scans of the range's orders at once.

    Each scan is a few hundred milliseconds of one database process at a hospital's size, and does not
    wait for the others: on PostgreSQL, outside a transaction, they run side by side on connections of
    their own (threads), so the page takes about its longest scan on a server with the cores for them.
    Inside a transaction (a test's), or on SQLite, one after the other on the request's connection.
    """
    calls = [
        partial(volumes, filters),
        partial(waiting, filters),
        *(partial(_leg, filters, leg) for leg in LEGS),
        partial(room_use, filters),
    ]
    (daily, use), wait, *legs, rooms = _side_by_side(calls)
    return Page(
        daily=daily,
        utilisation=use,
        rooms=rooms,
        waiting=wait,
        turnaround=_turnaround(dict(zip(LEGS, legs, strict=True))),
    )


def _side_by_side(calls: Sequence[Callable[[], object]]) -> list[object]:
    """The results of `calls`, the first on this thread and the rest on threads of their own."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or len(calls) < 2:
        return [call() for call in calls]
    tz = timezone.get_current_timezone()

    def on_own_connection(call: Callable[[], object]) -> object:
        try:
            with timezone.override(tz):
                return call()
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(calls) - 1, thread_name_prefix="reports") as pool:
        others = [pool.submit(on_own_connection, call) for call in calls[1:]]
        first = calls[0]()
        return [first, *(future.result() for future in others)]
