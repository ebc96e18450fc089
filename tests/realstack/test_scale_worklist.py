"""Reconciliation and the Worklist problems page on PostgreSQL read the active worklist and the few
entries naming a file or an error, however many past orders have an entry (migration
worklist_export 0003).

40,000 orders over 500 days (test_scale_orders.history), each past one with the entry left from when
its file was removed, the active ones with their file: reading the history would show in the plans'
row counts.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduling.models import Order
from tests.realstack.plans import nodes, plan
from tests.realstack.test_scale_orders import fill_history
from worklist_export.models import WorklistEntry
from worklist_export.reconcile import _entry_rows
from worklist_export.selectors import worklist_problem_orders
from worklist_export.services import worklist_order_q

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

ENTRIES = """
INSERT INTO worklist_export_worklistentry (order_id, path, content_sha256, source_sha256, file_size,
  file_stamp, exported_at, removed_at, synced_at, last_error, last_attempt_at)
SELECT o.id, CASE WHEN w.id IS NULL THEN '' ELSE o.accession_number || '.wl' END, '', '', NULL, '',
  o.updated_at, CASE WHEN w.id IS NULL THEN o.updated_at END, o.updated_at + interval '1 second', '',
  o.updated_at
FROM scheduling_order o LEFT JOIN (%(active)s) AS w(id) ON w.id = o.id
"""


@pytest.fixture
def history() -> dict:
    """Per test, as the tests write (test_scale_orders shares one history among its read-only tests)."""
    return fill_history()


@pytest.fixture
def entries(history):
    active = Order.objects.filter(worklist_order_q()).order_by().values("pk")
    sql, params = active.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(ENTRIES % {"active": sql}, params)
        cursor.execute("VACUUM ANALYZE worklist_export_worklistentry")
    return active.count()


def rows_read(node: dict, relation: str) -> int:
    """Rows the plan's scans of `relation` returned, all loops together."""
    return sum(
        n["Actual Rows"] * n["Actual Loops"]
        for n in nodes(node)
        if n.get("Relation Name") == relation and "Scan" in n["Node Type"]
    )


def seq_scans(node: dict) -> set[str]:
    return {n["Relation Name"] for n in nodes(node) if n["Node Type"] == "Seq Scan"}


def test_reconcile_reads_the_entries_of_the_worklist_not_of_the_history(entries):
    root = plan(_entry_rows())

    assert Order.objects.count() == 40_000 and 0 < entries < 1_000
    assert not seq_scans(root) & {"worklist_export_worklistentry", "scheduling_order"}
    # The worklist's entries, once for being on it and once for naming a file.
    assert rows_read(root, "worklist_export_worklistentry") <= 2 * entries


def test_the_problems_page_reads_the_worklist_and_the_entries_with_a_file_or_an_error(entries):
    ten_minutes_ago, an_hour_ago = timezone.now() - timedelta(minutes=10), timezone.now() - timedelta(hours=1)
    late = list(Order.objects.filter(worklist_order_q()).order_by("pk").values_list("pk", flat=True)[:3])
    # Past orders edited since their file was removed: nothing for a modality to miss.
    edited = list(Order.objects.exclude(worklist_order_q()).order_by("pk").values_list("pk", flat=True)[:2])
    Order.objects.filter(pk__in=late + edited).update(updated_at=ten_minutes_ago)
    WorklistEntry.objects.filter(order__in=late + edited).update(synced_at=an_hour_ago)

    root = plan(worklist_problem_orders())

    assert root["Actual Rows"] == 3
    assert not seq_scans(root) & {"worklist_export_worklistentry", "scheduling_order"}
    assert rows_read(root, "worklist_export_worklistentry") <= 3 * entries + 10
    assert rows_read(root, "scheduling_order") <= 3 * entries + 10
