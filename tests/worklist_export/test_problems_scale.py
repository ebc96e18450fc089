"""The Worklist problems page at hospital scale: bounded by the active worklist and the few entries with
a file or an error, not by two million past orders; the same rows as before."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from scheduling.models import Order, OrderStatus
from tests.factories import OrderFactory
from tests.worklist_export.test_reconcile_scale import active_orders, past_orders
from worklist_export.models import WorklistEntry
from worklist_export.reconcile import worklists_reconcile
from worklist_export.selectors import worklist_problem_orders

PROBLEMS = reverse("worklist_export:problems")


def age(order, minutes=10):
    """As if the order had changed `minutes` ago and its task was lost."""
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))


def test_it_lists_each_kind_of_problem_and_no_past_order(worklist_dir, room, procedure):
    past = past_orders(10, room=room, procedure=procedure)
    synced, never, changed, left = active_orders(4, room=room, procedure=procedure)
    worklists_reconcile()
    WorklistEntry.objects.filter(order=never).delete()  # never exported
    age(never)
    WorklistEntry.objects.filter(order=changed).update(synced_at=timezone.now() - timedelta(minutes=30))
    age(changed)
    # Completed behind the services' back: its file is still in the folder.
    Order.objects.filter(pk=left.pk).update(status=OrderStatus.COMPLETED)
    WorklistEntry.objects.filter(order=left).update(synced_at=timezone.now() - timedelta(minutes=30))
    age(left)
    # A past order whose last export failed: the error is shown however old the order.
    WorklistEntry.objects.filter(order=past[3]).update(last_error="Room AE title is empty")

    listed = {o.pk for o in worklist_problem_orders()}

    assert listed == {never.pk, changed.pk, left.pk, past[3].pk}
    assert synced.pk not in listed


def test_a_change_within_the_grace_period_is_not_listed(worklist_dir, room, procedure):
    (order,) = active_orders(1, room=room, procedure=procedure)
    worklists_reconcile()
    WorklistEntry.objects.filter(order=order).update(synced_at=timezone.now() - timedelta(minutes=30))
    age(order, minutes=1)  # the grace period is two minutes

    assert not worklist_problem_orders().exists()


def test_a_past_order_whose_file_is_gone_is_not_listed_even_if_changed_since(worklist_dir, room, procedure):
    (old,) = past_orders(1, room=room, procedure=procedure)
    age(old)  # edited after its file was removed: nothing for a modality to miss

    assert not worklist_problem_orders().exists()


def test_the_rows_are_in_start_order(worklist_dir, room, procedure):
    later = OrderFactory(room=room, procedure=procedure, scheduled_start=timezone.now() + timedelta(days=3))
    sooner = OrderFactory(room=room, procedure=procedure, scheduled_start=timezone.now() + timedelta(days=2))
    age(later)
    age(sooner)

    assert list(worklist_problem_orders()) == [sooner, later]


def test_the_page_runs_as_many_queries_with_a_longer_history(worklist_dir, room, procedure, clerk):
    active = active_orders(3, room=room, procedure=procedure)
    past = past_orders(5, room=room, procedure=procedure)
    WorklistEntry.objects.filter(order=past[0]).update(last_error="Room AE title is empty")
    for order in active:
        age(order)
    with CaptureQueriesContext(connection) as few:
        assert clerk.get(PROBLEMS).status_code == 200
    more = past_orders(100, room=room, procedure=procedure, start=5)
    WorklistEntry.objects.filter(order__in=more[:10]).update(last_error="Room AE title is empty")
    with CaptureQueriesContext(connection) as many:
        html = clerk.get(PROBLEMS).content.decode()

    assert len(many) == len(few)
    assert all(o.get_absolute_url() in html for o in active + more[:10])
