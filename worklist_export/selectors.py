"""Reads for the order page (the export state of an order and its file on disk) and for the Worklist
problems page (every order whose export failed or is overdue)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from scheduling.models import ACTIVE_STATUSES, Order

from .models import WorklistEntry
from .services import worklist_window
from .writer import worklist_root


@dataclass(frozen=True)
class ExportState:
    entry: WorklistEntry | None
    pending: bool
    file_path: Path | None  # absolute, only when the file exists


def order_export_state(*, order: Order) -> ExportState:
    entry = WorklistEntry.objects.filter(order=order).first()
    pending = entry is None or entry.is_pending_for(order)
    file_path = None
    if entry is not None and entry.path:
        candidate = worklist_root() / entry.path
        if candidate.is_file():
            file_path = candidate
    return ExportState(entry=entry, pending=pending, file_path=file_path)


def worklist_problem_orders() -> QuerySet[Order]:
    """Orders a modality may be missing: the export failed (entry.last_error), or a change has waited
    longer than WORKLIST_PENDING_GRACE_SECONDS to reach the folder (a lost task, a broker down).

    A change is normally exported within a second; the grace period keeps orders that are just being
    exported off the list. An active order in the window with no entry at all was never exported.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.WORKLIST_PENDING_GRACE_SECONDS)
    start, end = worklist_window()
    failed = Q(worklist_entry__last_error__gt="")
    overdue = Q(updated_at__lt=cutoff) & (
        Q(worklist_entry__synced_at__isnull=True, worklist_entry__isnull=False)
        | Q(worklist_entry__synced_at__lt=F("updated_at"))
        | Q(
            worklist_entry__isnull=True,
            status__in=ACTIVE_STATUSES,
            scheduled_start__gte=start,
            scheduled_start__lt=end,
        )
    )
    return (
        Order.objects.filter(failed | overdue)
        .select_related("patient", "procedure", "room", "worklist_entry")
        .order_by("scheduled_start", "pk")
    )
