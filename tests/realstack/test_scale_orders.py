"""The order list, the admin's order list and the booking checks on PostgreSQL read a bounded part of
their indexes, however long the history (migration 0008, OrderQuerySet.overlapping).

40,000 orders over 500 days in four rooms are inserted with SQL and analysed, so that reading history
would show in the plans' row counts: each test asserts on rows actually read, which a missing bound or
a sort over the table would multiply.
"""

from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduling import selectors
from scheduling.admin import EstimatedCountPaginator
from scheduling.models import Order
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory
from tests.realstack.conftest import rows_for_the_module
from tests.realstack.plans import nodes, plan

# The history is made once for the module and the tests only read it (`history`, and see
# test_scale_patients.py).
pytestmark = [pytest.mark.realstack, pytest.mark.django_db]

ORDERS = 40_000
ROOMS = 4
# Order i: room i % 4, every 30 minutes from 07:00 for 20 slots a day, back 500 days from tomorrow;
# 15 minutes long, so neighbours never overlap (the exclusion constraint holds). Past ones completed.
FILL = """
INSERT INTO scheduling_order (accession_number, requested_procedure_id, sps_id, study_instance_uid,
  scheduled_start, duration_minutes, scheduled_end, priority, referring_physician, requesting_physician,
  reason, notes, status, cancel_reason, booked_at, updated_at, booked_by_id, patient_id, procedure_id,
  room_id, discontinue_reason, version, placer_order_number, placer_authority)
SELECT 'T' || i, 'T' || i, 'T' || i || 'S1', '2.25.' || i, s, 15, s + interval '15 minutes', 'ROUTINE',
  '', '', '', '', CASE WHEN s < now() THEN 'COMPLETED' ELSE 'SCHEDULED' END, '', now(), now(), %(user)s,
  (%(patients)s)[1 + i %% array_length(%(patients)s, 1)], (%(procedures)s)[1 + i %% {rooms}],
  (%(rooms)s)[1 + i %% {rooms}], '', 1, '', ''
FROM generate_series(0, {orders} - 1) AS i,
  LATERAL (SELECT %(last_day)s::timestamptz - ((i / {rooms}) / 20) * interval '1 day'
                  + ((i / {rooms}) %% 20) * interval '30 minutes' AS s) AS start
"""


def fill_history() -> dict:
    user = UserFactory()
    rooms = [
        RoomFactory(name=f"R{i}", ae_title=f"R{i}", modality="CT" if i < 3 else "US") for i in range(ROOMS)
    ]
    procedures = [ProcedureFactory(code_value=f"P{i}", modality=rooms[i].modality) for i in range(ROOMS)]
    patients = [PatientFactory(mrn=f"HN{i:05d}").pk for i in range(400)]
    tomorrow = timezone.localdate() + timedelta(days=1)
    last_day = timezone.make_aware(datetime.combine(tomorrow, time(7)))
    with connection.cursor() as cursor:
        cursor.execute(
            FILL.format(orders=ORDERS, rooms=ROOMS),
            {
                "user": user.pk,
                "patients": patients,
                "procedures": [p.pk for p in procedures],
                "rooms": [r.pk for r in rooms],
                "last_day": last_day,
            },
        )
        cursor.execute("VACUUM ANALYZE scheduling_order")  # the visibility map, for index-only scans
    return {"rooms": rooms, "tomorrow": tomorrow, "user": user}


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """Made once for the module (tests.realstack.conftest.rows_for_the_module)."""
    yield from rows_for_the_module(django_db_blocker, fill_history)


def rows_read(node: dict) -> int:
    """Rows the plan's scans of scheduling_order produced, before any filter after them."""
    return sum(
        n["Actual Rows"] + n.get("Rows Removed by Filter", 0)
        for n in nodes(node)
        if n.get("Relation Name") == "scheduling_order" or n.get("Index Name", "").startswith("order_")
    )


def test_the_overlap_check_reads_half_a_day_of_the_room_not_its_history(history):
    room = history["rooms"][0]
    start = timezone.make_aware(datetime.combine(history["tomorrow"], time(7)))

    found = plan(Order.objects.overlapping(start, start + timedelta(minutes=30)).filter(room=room))

    assert {n.get("Index Name") for n in nodes(found)} & {"order_room_start_idx"}
    # One room has 10,000 orders before that time; the 720-minute bound leaves a day's worth at most.
    assert rows_read(found) <= 25


def test_the_free_slots_of_a_day_read_that_day(history):
    room = history["rooms"][0]
    with CaptureQueriesContext(connection) as queries:
        selectors.room_free_slots(room=room, day=history["tomorrow"], duration_minutes=15)
    overlap_sql = next(q["sql"] for q in queries.captured_queries if "scheduling_order" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {overlap_sql}")
        found = cursor.fetchone()[0][0]["Plan"]
    assert rows_read(found) <= 40


@pytest.mark.parametrize(
    "filters", [{}, {"status": "COMPLETED"}, {"modality": "US"}, {"room": 0}, {"descending": True}], ids=str
)
def test_a_far_page_of_the_order_list_is_read_from_an_index_without_sorting(history, filters):
    if "room" in filters:
        filters = {"room": history["rooms"][0]}
    orders = selectors.order_list(date_from=history["tomorrow"] - timedelta(days=600), **filters)
    offset = 5_000  # page 201

    found = plan(orders.values("pk")[offset : offset + 25])

    kinds = {n["Node Type"] for n in nodes(found)}
    assert "Sort" not in kinds and "Seq Scan" not in kinds, kinds
    assert "Index Only Scan" in kinds, kinds
    # The skipped rows are index entries (plus the other modality's, filtered from the same entries).
    assert rows_read(found) <= (offset + 25) * (ROOMS if "modality" in filters else 1)


def test_the_admin_estimates_a_large_count_without_counting(history):
    orders = Order.objects.all()
    with CaptureQueriesContext(connection) as queries:
        estimate = EstimatedCountPaginator(orders, 100).count
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)
    assert 0.8 * ORDERS <= estimate <= 1.2 * ORDERS
    small = Order.objects.filter(room=history["rooms"][0], scheduled_start__gte=timezone.now())
    assert EstimatedCountPaginator(small, 100).count == small.count()  # exact when small


def test_the_admin_name_search_reads_the_patients_orders_only(history, admin_client):
    from django.contrib import admin

    from scheduling.admin import OrderAdmin

    found, _ = OrderAdmin(Order, admin.site).get_search_results(None, Order.objects.all(), "HN00017")

    assert found.count() == ORDERS // 400
    assert "Seq Scan" not in {
        n["Node Type"]
        for n in nodes(plan(found.values("pk")))
        if n.get("Relation Name") == "scheduling_order"
    }
