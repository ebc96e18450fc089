"""The numbers behind each report equal the ones worked out by hand on a fixed week.

The week: Monday 2 to Sunday 8 November 2026, in the clinic's time zone (Asia/Bangkok, UTC+7, so a
day's first seven hours are the day before in UTC). Two rooms:

    CT 1  open Monday to Friday 08:00-16:30, closed at the weekend
    MR 1  open Tuesday 20:00-23:59 only

    #  room  exam (local)                status       booked (local)   arrived  started  completed
    1  CT 1  Mon 2   09:00-09:30         completed    Mon 26 Oct 10:00  08:50   09:05    09:30
    2  CT 1  Mon 2   09:45-10:15         completed    Sun 1 Nov 14:00   09:40   09:50    10:20
    3  CT 1  Mon 2   10:30-10:45         cancelled    Fri 30 Oct
    4  CT 1  Tue 3   08:00-09:00         no-show      Tue 20 Oct
    5  CT 1  Thu 5   16:15-16:45         scheduled    Thu 5 Nov 00:30
    6  CT 1  Sun 8   06:30-06:45         completed    Sat 7 Nov 10:00   06:20   06:30    06:50
    7  CT 1  Sun 1   23:50-Mon 00:20     completed    (the day before the range: only its 20 minutes
                                                       after midnight count, in the utilisation)
    8  MR 1  Tue 3   23:30-Wed 00:30     completed    Sat 3 Oct         23:20   23:35    Wed 00:25
    9  MR 1  Tue 3   21:00-21:30         completed    Tue 3 Nov 09:00   20:55   21:10    21:40
   10  CT 1  Mon 9   08:00-08:30         scheduled    (after the range: nowhere)

Exam 6 is on Sunday in Bangkok and on Saturday in UTC; exam 5 was booked the day of the exam in
Bangkok and the day before in UTC: a report that counted in UTC would put both on the wrong day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from reports import selectors
from reports.selectors import Filters
from scheduling.models import OrderStatus, Priority
from tests.factories import OrderFactory, ProcedureFactory, RoomFactory

pytestmark = pytest.mark.django_db

MONDAY = date(2026, 11, 2)
SUNDAY = date(2026, 11, 8)
WEEK = Filters(date_from=MONDAY, date_to=SUNDAY)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def nov(day: int) -> date:
    return date(2026, 11, day)


@pytest.fixture
def week():
    ct = RoomFactory(name="CT 1", modality="CT", hours=[(d, time(8), time(16, 30)) for d in range(5)])
    mr = RoomFactory(name="MR 1", modality="MR", hours=[(1, time(20), time(23, 59))])
    ct_exam = ProcedureFactory(modality="CT")
    mr_exam = ProcedureFactory(code_value="MR0001", modality="MR")

    def order(room, procedure, start, minutes, status, booked, times=None, **extra):
        arrived, started, completed = times or (None, None, None)
        return OrderFactory(
            room=room,
            procedure=procedure,
            scheduled_start=start,
            duration_minutes=minutes,
            status=status,
            booked_at=booked,
            arrived_at=arrived,
            started_at=started,
            completed_at=completed,
            cancel_reason="Patient asked" if status == OrderStatus.CANCELLED else "",
            **extra,
        )

    done = OrderStatus.COMPLETED
    order(ct, ct_exam, at(nov(2), 9), 30, done, at(date(2026, 10, 26), 10),
          (at(nov(2), 8, 50), at(nov(2), 9, 5), at(nov(2), 9, 30)))  # fmt: skip
    order(ct, ct_exam, at(nov(2), 9, 45), 30, done, at(nov(1), 14),
          (at(nov(2), 9, 40), at(nov(2), 9, 50), at(nov(2), 10, 20)))  # fmt: skip
    order(ct, ct_exam, at(nov(2), 10, 30), 15, OrderStatus.CANCELLED, at(date(2026, 10, 30), 9))
    order(ct, ct_exam, at(nov(3), 8), 60, OrderStatus.NO_SHOW, at(date(2026, 10, 20), 9))
    order(ct, ct_exam, at(nov(5), 16, 15), 30, OrderStatus.SCHEDULED, at(nov(5), 0, 30))
    order(ct, ct_exam, at(nov(8), 6, 30), 15, done, at(nov(7), 10),
          (at(nov(8), 6, 20), at(nov(8), 6, 30), at(nov(8), 6, 50)))  # fmt: skip
    order(ct, ct_exam, at(nov(1), 23, 50), 30, done, at(date(2026, 10, 25), 9),
          (at(nov(1), 23, 45), at(nov(1), 23, 50), at(nov(2), 0, 20)))  # fmt: skip
    order(mr, mr_exam, at(nov(3), 23, 30), 60, done, at(date(2026, 10, 3), 9),
          (at(nov(3), 23, 20), at(nov(3), 23, 35), at(nov(4), 0, 25)))  # fmt: skip
    order(mr, mr_exam, at(nov(3), 21), 30, done, at(nov(3), 9),
          (at(nov(3), 20, 55), at(nov(3), 21, 10), at(nov(3), 21, 40)))  # fmt: skip
    order(ct, ct_exam, at(nov(9), 8), 30, OrderStatus.SCHEDULED, at(nov(1), 9))
    return {"ct": ct, "mr": mr}


def test_exams_per_day_by_outcome(week):
    data = selectors.daily_outcomes(WEEK)

    assert data.days == [nov(d) for d in range(2, 9)]
    assert data.counts == {
        #            Mon Tue Wed Thu Fri Sat Sun
        "completed": [2, 2, 0, 0, 0, 0, 1],
        "cancelled": [1, 0, 0, 0, 0, 0, 0],
        "no_show": [0, 1, 0, 0, 0, 0, 0],
        "open": [0, 0, 0, 1, 0, 0, 0],
    }
    assert data.total == 8


def test_exams_per_day_for_one_room_and_one_modality(week):
    assert selectors.daily_outcomes(Filters(MONDAY, SUNDAY, room=week["mr"])).counts["completed"] == [
        0, 2, 0, 0, 0, 0, 0,
    ]  # fmt: skip
    by_modality = selectors.daily_outcomes(Filters(MONDAY, SUNDAY, modality="CT"))
    assert by_modality.totals == {"completed": 3, "cancelled": 1, "no_show": 1, "open": 1}


def test_one_day_counts_only_that_clinic_day(week):
    # Sunday 8 November in Bangkok: exam 6 (06:30, Saturday 23:30 in UTC) and nothing else.
    data = selectors.daily_outcomes(Filters(SUNDAY, SUNDAY))

    assert data.counts == {"completed": [1], "cancelled": [0], "no_show": [0], "open": [0]}


def test_room_utilisation_by_weekday_and_hour(week):
    data = selectors.utilisation(WEEK)

    booked = {(w, h): m for w in range(7) for h in range(24) if (m := data.booked[w][h])}
    assert booked == {
        (0, 0): 20,  # exam 7 after midnight: the range starts at Monday 00:00
        (0, 9): 45,  # exam 1 (30) and exam 2's first quarter (15)
        (0, 10): 15,  # exam 2's second quarter; exam 3 is cancelled
        (1, 8): 60,  # the no-show held its hour
        (1, 21): 30,  # exam 9
        (1, 23): 30,  # exam 8 until midnight...
        (2, 0): 30,  # ...and on Wednesday, when MR 1 has no opening hours
        (3, 16): 30,  # exam 5, past closing time
        (6, 6): 15,  # exam 6 on Sunday, CT 1 closed
    }
    assert data.total_booked == 275
    # CT 1: 8.5 hours on each of five weekdays; MR 1: 20:00-23:59 on the one Tuesday.
    assert data.open[0][8:17] == [60] * 8 + [30]
    assert data.open[1][20:24] == [60, 60, 60, 59]
    assert data.open[5] == [0] * 24 and data.open[6] == [0] * 24
    assert data.total_open == 5 * 510 + 239
    assert data.share(0, 9) == 0.75
    assert data.share(0, 10) == 0.25
    assert data.share(1, 8) == 1.0
    assert data.share(1, 23) == 30 / 59
    assert data.share(3, 16) == 1.0
    # No room open: no share (not 0 %, not a division by zero), and the minutes counted apart.
    assert data.share(2, 0) is None and data.share(6, 6) is None and data.share(0, 0) is None
    assert data.outside_hours == 20 + 30 + 15
    assert data.hours == list(range(24))


def test_room_utilisation_of_one_room(week):
    data = selectors.utilisation(Filters(MONDAY, SUNDAY, room=week["mr"]))

    booked = {(w, h): m for w in range(7) for h in range(24) if (m := data.booked[w][h])}
    assert booked == {(1, 21): 30, (1, 23): 30, (2, 0): 30}
    assert data.total_open == 239
    assert data.share(1, 21) == 0.5
    assert data.hours == list(range(24))


def test_two_weeks_count_each_weekday_twice():
    room = RoomFactory(name="CT 2", hours=[(0, time(8), time(10))])
    data = selectors.utilisation(Filters(MONDAY, MONDAY + timedelta(days=13), room=room))

    assert data.open[0][8] == 120 and data.open[0][9] == 120 and data.total_open == 240


def test_waiting_days_per_modality(week):
    data = selectors.waiting(WEEK, now=at(SUNDAY, 12))

    # CT: exams 1, 2, 4, 5, 6 waited 7, 1, 14, 0, 1 days -> sorted 0 1 1 7 14; the cancelled 3 did not.
    #   median: rank 2 -> 1; 90th: rank 3.6 -> 7 + 0.6 * (14 - 7) = 11.2
    # MR: exams 8, 9 waited 31, 0 -> median 15.5; 90th: rank 0.9 -> 0 + 0.9 * 31 = 27.9
    assert data.per_modality["CT"] == {"n": 5, "p50": 1, "p90": pytest.approx(11.2)}
    assert data.per_modality["MR"] == {"n": 2, "p50": pytest.approx(15.5), "p90": pytest.approx(27.9)}


def test_the_age_of_the_to_schedule_list(week):
    now = at(SUNDAY, 12)
    for hours, priority in ((12, Priority.ROUTINE), (60, Priority.ROUTINE), (240, Priority.HIGH),
                            (960, Priority.STAT)):  # fmt: skip
        OrderFactory(
            status=OrderStatus.REQUESTED,
            room=None,
            scheduled_start=None,
            scheduled_end=None,
            priority=priority,
            booked_at=now - timedelta(hours=hours),
        )
    data = selectors.waiting(WEEK, now=now)

    # Whole days waited: 0, 2, 10, 40. Median: rank 1.5 -> 2 + 0.5 * 8 = 6; 90th: rank 2.7 -> 10 + 0.7 * 30.
    assert data.bands == [((0, 1), 1), ((1, 3), 1), ((3, 8), 0), ((8, 15), 1), ((15, 31), 0), ((31, None), 1)]
    assert data.to_schedule == {"n": 4, "p50": 6, "p90": pytest.approx(31), "oldest": 40, "stat": 1}


def test_an_empty_to_schedule_list(week):
    data = selectors.waiting(WEEK, now=at(SUNDAY, 12))

    assert data.to_schedule == {}
    assert [n for _band, n in data.bands] == [0] * 6


def test_turnaround_per_room(week):
    data = selectors.turnaround(WEEK)

    by_room = {room.name: legs for room, legs in data.per_room}
    # CT 1: exams 1, 2, 6 (7 is before the range). Arrival to start 15, 10, 10; start to completion
    # 25, 30, 20. Median of 10 10 15 = 10, 90th: 10 + 0.8 * 5 = 14; of 20 25 30 = 25, 25 + 0.8 * 5 = 29.
    assert by_room["CT 1"] == {
        "wait": {"n": 3, "p50": 10, "p90": pytest.approx(14)},
        "exam": {"n": 3, "p50": 25, "p90": pytest.approx(29)},
    }
    # MR 1: exams 8 (15, 50 across midnight) and 9 (15, 30).
    assert by_room["MR 1"] == {
        "wait": {"n": 2, "p50": 15, "p90": 15},
        "exam": {"n": 2, "p50": 40, "p90": pytest.approx(48)},
    }
    assert [room.name for room, _legs in data.per_room] == ["CT 1", "MR 1"]
    # Floats on either database (PostgreSQL's numeric division would give Decimals the charts refuse).
    assert {
        type(stats[p]) for legs in by_room.values() for stats in legs.values() for p in ("p50", "p90")
    } == {float}


def test_percentiles_of_one_value_and_of_ten():
    room = RoomFactory(name="US 1", modality="US")
    procedure = ProcedureFactory(code_value="US0001", modality="US")
    for n, minutes in enumerate([7] + list(range(1, 11))):
        start = at(MONDAY, 8) + timedelta(hours=n)
        OrderFactory(
            room=room,
            procedure=procedure,
            scheduled_start=start,
            status=OrderStatus.COMPLETED,
            arrived_at=start,
            started_at=start + timedelta(minutes=minutes if n else 0),
            completed_at=start + timedelta(minutes=minutes),
        )
    legs = dict(selectors.turnaround(WEEK).per_room)[room]

    # Arrival to start: 0 (the first), then 1..10 -> eleven values 0..10: median 5, 90th rank 9 -> 9.
    assert legs["wait"] == {"n": 11, "p50": 5, "p90": 9}
    # Start to completion: 7, then 0 x 10 -> median 0, 90th: rank 9 -> 0 (ten zeros, then 7).
    assert legs["exam"] == {"n": 11, "p50": 0, "p90": 0}


def test_turnaround_counts_whole_seconds_of_stamps_taken_to_the_microsecond():
    room = RoomFactory(name="US 2", modality="US")
    procedure = ProcedureFactory(code_value="US0002", modality="US")
    start = at(MONDAY, 9)
    # Arrival to start 599.2 s (cut to 599), start to completion 600.000001 s (600): the fraction of a
    # second is cut off on both databases, however the two stamps' own fractions fall.
    OrderFactory(
        room=room,
        procedure=procedure,
        scheduled_start=start,
        status=OrderStatus.COMPLETED,
        arrived_at=start + timedelta(microseconds=900_000),
        started_at=start + timedelta(minutes=10, microseconds=100_000),
        completed_at=start + timedelta(minutes=20, microseconds=100_001),
    )
    legs = dict(selectors.turnaround(WEEK).per_room)[room]

    assert legs["wait"] == {"n": 1, "p50": pytest.approx(599 / 60), "p90": pytest.approx(599 / 60)}
    assert legs["exam"] == {"n": 1, "p50": 10, "p90": 10}


def test_the_page_has_each_reports_numbers(week):
    found = selectors.page(WEEK)

    assert found.daily == selectors.daily_outcomes(WEEK)
    assert found.utilisation == selectors.utilisation(WEEK)
    assert found.waiting.per_modality == selectors.waiting(WEEK).per_modality
    assert found.turnaround == selectors.turnaround(WEEK)


def test_utilisation_per_room(week):
    rooms = selectors.room_use(WEEK)

    # CT 1: exams 1, 2, 5 (30 each), the no-show 4 (60), exam 6 (15) and exam 7's 20 minutes after
    # midnight = 185; the cancelled 3 and exam 10 (after the range) do not count. Open Monday to Friday
    # 08:00-16:30: 5 x 510 = 2,550 minutes. MR 1: exams 8 (60, across midnight inside the range) and
    # 9 (30) = 90 of Tuesday's 239. Together the heatmap's 275 booked minutes.
    assert [(r.room.name, r.booked, r.open) for r in rooms] == [("CT 1", 185, 2550), ("MR 1", 90, 239)]
    assert rooms[0].share == pytest.approx(185 / 2550)
    assert sum(r.booked for r in rooms) == selectors.utilisation(WEEK).total_booked
    assert [(r.room.name, r.booked) for r in selectors.room_use(Filters(MONDAY, SUNDAY, modality="MR"))] == [
        ("MR 1", 90)
    ]


def test_a_room_with_exams_and_no_opening_hours_has_no_share(week):
    # Sunday: CT 1 is closed, and exam 6 was booked there at 06:30 all the same.
    rooms = selectors.room_use(Filters(SUNDAY, SUNDAY))

    assert [(r.room.name, r.booked, r.open, r.share) for r in rooms] == [("CT 1", 15, 0, None)]
