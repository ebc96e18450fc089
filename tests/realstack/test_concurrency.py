"""Many clerks at once on PostgreSQL: one slot, one order; many bookings, no shared identifier; a move and a
cancellation racing on one order end in one state, and the worklist folder shows that state.

Each test prints its figures (run with -s to see them).
"""

from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from pydicom import dcmread

from ris.celery import app
from scheduling import services
from scheduling.models import Order, OrderStatus
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory
from tests.realstack.threads import run_concurrently

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

ALL_DAY = [(d, time(0), time(23, 59)) for d in range(7)]


@pytest.fixture
def no_leftover_tasks():
    """Bookings made without a worker queue sync tasks for rows the flush removes: drop them."""
    yield
    app.control.purge()


def test_fifty_clerks_booking_one_slot_make_exactly_one_order(tomorrow_at, no_leftover_tasks):
    n = 50
    room, procedure, user = RoomFactory(), ProcedureFactory(), UserFactory()
    patients = [PatientFactory() for _ in range(n)]

    results = run_concurrently(
        n,
        lambda i: services.order_book(
            patient=patients[i], procedure=procedure, room=room, start=tomorrow_at(10), user=user
        ),
    )

    booked = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    print(f"\n[one slot] attempts={n} successes={len(booked)} refused={len(refused)}")
    assert len(booked) == 1 and len(refused) == n - 1, [r for r in results if not isinstance(r, Order)][:3]
    assert all("start" in r.message_dict for r in refused)
    assert Order.objects.filter(room=room).count() == 1


def test_five_hundred_parallel_bookings_get_distinct_identifiers(no_leftover_tasks):
    # 50 clerks at once, each with a connection of its own (PostgreSQL allows 100 by default).
    threads, per_thread = 50, 10
    procedure, user = ProcedureFactory(default_duration=15), UserFactory()
    rooms = [RoomFactory(hours=ALL_DAY) for _ in range(threads)]
    patients = [PatientFactory() for _ in range(threads)]
    day = timezone.localdate() + timedelta(days=1)
    first = timezone.make_aware(datetime.combine(day, time(6)))

    def book_in_own_room(i: int) -> list[Order]:
        # One room and one patient per thread, back-to-back 15-minute exams: every booking is legal,
        # so any failure is a concurrency bug (a shared counter, a deadlock).
        return [
            services.order_book(
                patient=patients[i],
                procedure=procedure,
                room=rooms[i],
                start=first + timedelta(minutes=15 * k),
                user=user,
            )
            for k in range(per_thread)
        ]

    results = run_concurrently(threads, book_in_own_room, timeout=60)

    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    orders = [order for batch in results for order in batch]
    accessions = {o.accession_number for o in orders}
    uids = {o.study_instance_uid for o in orders}
    stored = Order.objects.values_list("accession_number", "study_instance_uid")
    print(
        f"\n[parallel bookings] threads={threads} attempts={threads * per_thread} successes={len(orders)} "
        f"duplicate accessions={len(orders) - len(accessions)} duplicate UIDs={len(orders) - len(uids)}"
    )
    assert len(orders) == threads * per_thread
    assert len(accessions) == len(uids) == len(orders)
    assert {a for a, _ in stored} == accessions and {u for _, u in stored} == uids


def wl_start(order: Order) -> str | None:
    """The HHMM the order's worklist file announces, or None when there is no file."""
    path = Path(settings.WORKLIST_DIR) / f"{order.accession_number}.wl"
    if not path.exists():
        return None
    sps = dcmread(path).ScheduledProcedureStepSequence[0]
    return sps.ScheduledProcedureStepStartTime[:4]


def local_hhmm(moment: datetime) -> str:
    return f"{timezone.localtime(moment):%H%M}"


def booked_at_nine(n: int, tomorrow_at, user) -> list[Order]:
    """n orders at 09:00 tomorrow, each in a room of its own."""
    procedure = ProcedureFactory()
    return [
        services.order_book(
            patient=PatientFactory(), procedure=procedure, room=RoomFactory(), start=tomorrow_at(9), user=user
        )
        for _ in range(n)
    ]


def test_a_move_racing_a_cancellation_ends_in_one_state_and_the_file_follows(
    celery_worker, tomorrow_at, eventually
):
    rounds, user = 10, UserFactory()
    orders = booked_at_nine(rounds, tomorrow_at, user)
    outcomes = {"move then cancel": 0, "cancel, move refused": 0}

    for order in orders:
        results = run_concurrently(
            2,
            lambda i, order=order: (
                services.order_reschedule(order=order, start=tomorrow_at(14), user=user)
                if i == 0
                else services.order_cancel(order=order, reason="Patient called", user=user)
            ),
        )
        moved, cancelled = results
        assert isinstance(cancelled, Order), cancelled  # a scheduled order can always be cancelled
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
        if isinstance(moved, Order):
            outcomes["move then cancel"] += 1
            assert order.scheduled_start == tomorrow_at(14)
        else:
            outcomes["cancel, move refused"] += 1
            assert isinstance(moved, ValidationError) and "cancelled order" in moved.messages[0]
            assert order.scheduled_start == tomorrow_at(9)
        # One history row per change that went through: booked, (moved,) cancelled.
        assert order.history.count() == (3 if isinstance(moved, Order) else 2)

    print(f"\n[move vs cancel] rounds={rounds} outcomes={outcomes}")
    eventually(
        lambda: all(wl_start(o) is None for o in orders), "every cancelled order's file is gone", timeout=20
    )


def test_two_moves_racing_leave_the_file_at_the_time_that_won(celery_worker, tomorrow_at, eventually):
    rounds, user = 10, UserFactory()
    orders = booked_at_nine(rounds, tomorrow_at, user)
    targets = [tomorrow_at(11), tomorrow_at(15)]

    for order in orders:
        results = run_concurrently(
            2, lambda i, order=order: services.order_reschedule(order=order, start=targets[i], user=user)
        )
        assert all(isinstance(r, Order) for r in results), results

    final = {o.pk: o for o in Order.objects.filter(pk__in=[o.pk for o in orders])}
    assert {o.scheduled_start for o in final.values()} <= set(targets)
    eventually(
        lambda: all(wl_start(o) == local_hhmm(o.scheduled_start) for o in final.values()),
        "every file shows the time the order ended at",
        timeout=20,
    )
    won = sum(o.scheduled_start == targets[1] for o in final.values())
    print(f"\n[move vs move] rounds={rounds} later-time won={won} earlier-time won={rounds - won}")
