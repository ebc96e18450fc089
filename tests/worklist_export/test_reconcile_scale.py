"""Reconciliation depends on the active worklist, not on the history: a hospital has an entry for each
of two million past orders, and an unchanged reconcile must not read them."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from scheduling.models import Order, OrderStatus
from tests.factories import OrderFactory
from worklist_export.models import WorklistEntry
from worklist_export.reconcile import _entries_that_matter, worklists_reconcile
from worklist_export.selectors import order_export_state


def past_orders(n, *, room, procedure, start=0):
    """Completed orders of last year, each with the entry left from when its file was removed."""
    exported = timezone.now() - timedelta(days=400)
    orders = [
        OrderFactory(
            accession_number=f"PAST{start + i}",
            room=room,
            procedure=procedure,
            status=OrderStatus.COMPLETED,
            scheduled_start=exported + timedelta(hours=1),
        )
        for i in range(n)
    ]
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(updated_at=exported + timedelta(hours=2))
    WorklistEntry.objects.bulk_create(
        WorklistEntry(
            order=o,
            exported_at=exported,
            removed_at=exported + timedelta(hours=2),
            synced_at=exported + timedelta(hours=2),
        )
        for o in orders
    )
    return orders


def active_orders(n, *, room, procedure):
    return [OrderFactory(accession_number=f"NOW{i}", room=room, procedure=procedure) for i in range(n)]


def test_it_loads_only_the_entries_of_the_worklist_and_those_naming_a_file(worklist_dir, room, procedure):
    active = active_orders(3, room=room, procedure=procedure)
    past = past_orders(20, room=room, procedure=procedure)
    worklists_reconcile()
    # Left the worklist while its task was lost: its entry still names the file.
    left = active[0]
    Order.objects.filter(pk=left.pk).update(status=OrderStatus.COMPLETED)

    loaded = _entries_that_matter()

    assert set(loaded) == {o.pk for o in active}
    assert not set(loaded) & {o.pk for o in past}


def test_the_file_of_an_order_that_left_the_worklist_is_still_removed(worklist_dir, room, procedure):
    active = active_orders(2, room=room, procedure=procedure)
    past_orders(5, room=room, procedure=procedure)
    worklists_reconcile()
    left = active[0]
    Order.objects.filter(pk=left.pk).update(status=OrderStatus.COMPLETED)  # no task ran

    report = worklists_reconcile()

    assert [(line.kind, line.path) for line in report.lines] == [("stale", "NOW0.wl")]
    assert not (worklist_dir / "NOW0.wl").exists()
    entry = WorklistEntry.objects.get(order=left)
    assert entry.path == "" and entry.removed_at is not None
    assert worklists_reconcile().lines == []


def test_an_orphan_file_is_still_removed(worklist_dir, room, procedure):
    active_orders(1, room=room, procedure=procedure)
    past_orders(5, room=room, procedure=procedure)
    worklists_reconcile()
    (worklist_dir / "NOBODY.wl").write_bytes(b"x")
    # A file named after a past order whose entry names no file: stale, not an orphan.
    (worklist_dir / "PAST0.wl").write_bytes(b"x")

    report = worklists_reconcile()

    assert sorted((line.kind, line.path) for line in report.lines) == [
        ("orphan", "NOBODY.wl"),
        ("stale", "PAST0.wl"),
    ]
    assert not (worklist_dir / "NOBODY.wl").exists() and not (worklist_dir / "PAST0.wl").exists()


def test_past_orders_keep_their_export_history_for_the_order_page(worklist_dir, room, procedure):
    active_orders(1, room=room, procedure=procedure)
    (old,) = past_orders(1, room=room, procedure=procedure)
    before = WorklistEntry.objects.get(order=old)

    worklists_reconcile()
    worklists_reconcile()

    state = order_export_state(order=Order.objects.get(pk=old.pk))
    assert state.entry is not None and not state.pending
    assert (state.entry.exported_at, state.entry.removed_at) == (before.exported_at, before.removed_at)


def test_an_unchanged_reconcile_runs_as_many_queries_with_a_longer_history(worklist_dir, room, procedure):
    active_orders(3, room=room, procedure=procedure)
    past_orders(5, room=room, procedure=procedure)
    worklists_reconcile()
    with CaptureQueriesContext(connection) as few:
        assert worklists_reconcile().counts()["unchanged"] == 3
    past_orders(200, room=room, procedure=procedure, start=5)
    with CaptureQueriesContext(connection) as many:
        assert worklists_reconcile().counts()["unchanged"] == 3

    assert len(many) == len(few)
