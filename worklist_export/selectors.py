"""Reads for the order page (the export state of an order and its file on disk) and for the Worklist
problems page (every order whose export failed or is overdue)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from scheduling.models import Order, OrderStatus

from .models import WorklistEntry
from .services import worklist_order_q
from .writer import worklist_root


@dataclass(frozen=True)
class ExportState:
    entry: WorklistEntry | None
    pending: bool
    file_path: Path | None  # absolute, only when the file exists


def order_export_state(*, order: Order) -> ExportState:
    entry = WorklistEntry.objects.filter(order=order).first()
    # A requested order waits for a clerk to book it, not for the export: there is nothing to write
    # until it has a room and a time, and "export pending" would send the clerk looking for a fault.
    pending = order.status != OrderStatus.REQUESTED and (entry is None or entry.is_pending_for(order))
    file_path = None
    if entry is not None and entry.path:
        candidate = worklist_root() / entry.path
        if candidate.is_file():
            file_path = candidate
    return ExportState(entry=entry, pending=pending, file_path=file_path)


def worklist_problem_orders() -> QuerySet[Order]:
    """Orders a modality may be missing: the export failed (entry.last_error), or a change has waited
    longer than WORKLIST_PENDING_GRACE_SECONDS to reach the folder (a lost task, a broker down): an
    order on the worklist whose item is not written or outdated, or a file that should be gone.

    A change is normally exported within a second; the grace period keeps orders that are just being
    exported off the list. An active order in the window with no entry at all was never exported.

    Each part is bounded by the active worklist or by the few entries naming a file or an error (their
    partial indexes), never by the history: one condition ORed across the order/entry join read all
    two million past orders (3.9 s). The union of their ids is joined back to the orders.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.WORKLIST_PENDING_GRACE_SECONDS)
    failed = WorklistEntry.objects.exclude(last_error="").values("order_id")
    not_on_worklist_yet = Order.objects.filter(
        worklist_order_q(),
        Q(worklist_entry__isnull=True)
        | Q(worklist_entry__synced_at__isnull=True)
        | Q(worklist_entry__synced_at__lt=F("updated_at")),
        updated_at__lt=cutoff,
    ).values("pk")
    # A file whose order changed since (cancelled, moved out of the window or to another room) and
    # that is still there: the modality shows an exam that is not, or no longer, as listed.
    file_outdated = (
        WorklistEntry.objects.exclude(path="")
        .filter(Q(synced_at__isnull=True) | Q(synced_at__lt=F("order__updated_at")))
        .filter(order__updated_at__lt=cutoff)
        .values("order_id")
    )
    problems = failed.order_by().union(not_on_worklist_yet.order_by(), file_outdated.order_by())
    return (
        Order.objects.filter(pk__in=problems)
        .select_related("patient", "procedure", "room", "worklist_entry")
        .order_by("scheduled_start", "pk")
    )
