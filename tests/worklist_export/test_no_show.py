"""A no-show leaves the worklist: its .wl file goes when it is marked, like a cancelled order's."""

from datetime import timedelta

import time_machine
from django.utils import timezone

from scheduling import services
from worklist_export.models import WorklistEntry


def wl_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.wl"))


def test_a_no_show_disappears_from_the_worklist(worklist_dir, book, user, after_commit):
    order = book()
    kept = book(start=order.scheduled_end + timedelta(hours=2))
    assert wl_files(worklist_dir) == sorted([f"{order.accession_number}.wl", f"{kept.accession_number}.wl"])

    with time_machine.travel(order.scheduled_end + timedelta(minutes=5), tick=False), after_commit():
        services.order_no_show(order=order, user=user)

    assert wl_files(worklist_dir) == [f"{kept.accession_number}.wl"]
    entry = WorklistEntry.objects.get(order=order)
    assert entry.path == "" and entry.removed_at is not None


def test_the_end_of_day_run_takes_the_files_away_too(worklist_dir, book, user, after_commit):
    order = book()

    with time_machine.travel(order.scheduled_end + timedelta(hours=1), tick=False), after_commit():
        [marked] = services.orders_mark_no_shows(
            day=timezone.localdate(order.scheduled_start), user=services.no_show_user()
        )

    assert marked.pk == order.pk
    assert wl_files(worklist_dir) == []
