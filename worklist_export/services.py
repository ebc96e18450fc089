"""Bring one order's worklist file in line with the order (called by the task after every change)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from scheduling.models import ACTIVE_STATUSES, Order
from scheduling.selectors import day_bounds

from .dataset import ExportError, order_source, source_fingerprint
from .encoding import source_bytes
from .models import WorklistEntry
from .problems import ExportProblem, os_error_problem
from .writer import (
    export_lock,
    order_file_path,
    worklist_file_remove,
    worklist_file_stamp,
    worklist_file_write,
)

logger = logging.getLogger(__name__)


def worklist_window() -> tuple[datetime, datetime]:
    """[start, end) of the scheduled starts that belong on the worklists, in whole local days."""
    today = timezone.localdate()
    start = day_bounds(today - timedelta(days=settings.WORKLIST_WINDOW_DAYS_BACK))[0]
    end = day_bounds(today + timedelta(days=settings.WORKLIST_WINDOW_DAYS_AHEAD))[1]
    return start, end


def order_belongs_on_worklist(order: Order, window: tuple[datetime, datetime] | None = None) -> bool:
    # The status first: a requested order, not active, has no start to compare.
    start, end = window or worklist_window()
    return order.status in ACTIVE_STATUSES and start <= order.scheduled_start < end


NOT_ON_THE_WORKLIST = (
    "notes",
    "reason",
    "cancel_reason",
    "discontinue_reason",
    "booked_at",
    "scheduled_end",
    "duration_minutes",
    "patient__phone",
    "patient__address",
    "patient__created_at",
    "patient__updated_at",
)


def worklist_order_q() -> Q:
    """The orders that belong on the worklists now, as a filter on Order: the active worklist, some
    thousands of rows however long the history (the (status, scheduled_start) index finds them)."""
    start, end = worklist_window()
    return Q(status__in=ACTIVE_STATUSES, scheduled_start__gte=start, scheduled_start__lt=end)


def worklist_orders() -> QuerySet[Order]:
    """The orders that should have a file now, with everything the dataset needs.

    Rooms and procedures are few and shared by thousands of orders: prefetched (once per chunk when
    iterated), not joined, so each is built once rather than once per order.
    """
    return (
        Order.objects.filter(worklist_order_q())
        .select_related("patient")
        .prefetch_related("procedure", "room")
        # Nothing of these reaches the worklist item; reading them was a fifth of an unchanged reconcile.
        .defer(*NOT_ON_THE_WORKLIST)
    )


def entry_record_written(
    *, order: Order, path: str, sha: str, source_sha: str, size: int, stamp: str
) -> None:
    # One upsert (entries_record_written) rather than update_or_create's select for update, savepoint
    # and update: a third of the queries of every order's export.
    entries_record_written(records=[(order.pk, path, sha, source_sha, size, stamp)])


ENTRY_WRITTEN_FIELDS = (
    "path",
    "content_sha256",
    "source_sha256",
    "file_size",
    "file_stamp",
    "exported_at",
    "removed_at",
    "synced_at",
    "last_error",
    "last_error_code",
    "last_error_params",
    "last_attempt_at",
)


def entries_record_written(*, records: list[tuple[int, str, str, str, int, str]]) -> None:
    """entry_record_written for many orders in one statement: (order_id, path, sha, source_sha, size,
    stamp).

    An upsert on the order, so reconciliation writes one statement per batch instead of a
    select and an insert or update per file.
    """
    if not records:
        return
    now = timezone.now()
    WorklistEntry.objects.bulk_create(
        [
            WorklistEntry(
                order_id=order_id,
                path=path,
                content_sha256=sha,
                source_sha256=source_sha,
                file_size=size,
                file_stamp=stamp,
                exported_at=now,
                removed_at=None,
                synced_at=now,
                last_error="",
                last_error_code="",
                last_error_params={},
                last_attempt_at=now,
            )
            for order_id, path, sha, source_sha, size, stamp in records
        ],
        update_conflicts=True,
        unique_fields=["order"],
        update_fields=list(ENTRY_WRITTEN_FIELDS),
    )


def _error_fields(problem: ExportProblem | None) -> dict[str, Any]:
    """The entry's error columns for `problem` (None: no error): the English text, code and parameters."""
    if problem is None:
        return {"last_error": "", "last_error_code": "", "last_error_params": {}}
    return {"last_error": problem.text, "last_error_code": problem.code, "last_error_params": problem.params}


def entry_record_absent(*, order_id: int, problem: ExportProblem | None = None) -> None:
    """Record that order `order_id` has no file: it is off the worklist, or `problem` keeps it off."""
    now = timezone.now()
    defaults = {
        "path": "",
        "content_sha256": "",
        "source_sha256": "",
        "file_size": None,
        "file_stamp": "",
        **_error_fields(problem),
        "last_attempt_at": now,
    }
    if problem is None:
        defaults["synced_at"] = now
    entry, created = WorklistEntry.objects.get_or_create(order_id=order_id, defaults=defaults)
    if not created:
        had_file = bool(entry.path)
        for name, value in defaults.items():
            setattr(entry, name, value)
        if had_file:
            entry.removed_at = now
        entry.save()


def entry_record_io_error(*, order_id: int, problem: ExportProblem) -> None:
    """The folder could not be written (full, read-only, unmounted): say so on the entry.

    Only the error and the attempt are recorded: whatever file was there is still there, and the
    entry stays pending until a retry or the reconcile succeeds (which clears the error).
    """
    now = timezone.now()
    if not Order.objects.filter(pk=order_id).exists():
        return
    fields = {**_error_fields(problem), "last_attempt_at": now}
    entry, created = WorklistEntry.objects.get_or_create(order_id=order_id, defaults=fields)
    if not created:
        for name, value in fields.items():
            setattr(entry, name, value)
        entry.save(update_fields=list(fields))


def order_sync_worklist(*, order_id: int) -> str:
    """Write, rewrite or remove the .wl file of order `order_id` so the folder matches the order.

    An active order within the worklist window gets a file (an old one at another path, e.g. after a
    move to a room with another called AE, is removed); any other order has none. Data a modality
    cannot take (ExportError, and only that: any other exception is a bug and propagates) is recorded
    on the entry for the clerk, and the file is removed rather than left showing outdated details. OSError is recorded on the entry too (the order page and the
    Worklist problems page show it) and propagates so the task retries. Idempotent.
    Returns what it did: "written", "unchanged", "removed", "absent" or "failed".
    """
    try:
        return _order_sync_worklist(order_id)
    except OSError as exc:
        entry_record_io_error(order_id=order_id, problem=os_error_problem(exc))
        logger.warning("worklist export of order %s failed, will retry: %s", order_id, exc)
        raise


def _order_sync_worklist(order_id: int) -> str:
    # Holding the export lock while loading means a task that read older data can never
    # overwrite the file of one that read newer data. The lock is a file lock: no DB transaction
    # is open while files are written.
    with export_lock():
        order = Order.objects.select_related("patient", "procedure", "room").filter(pk=order_id).first()
        if order is None:
            # Deleted: its entry went with it; reconciliation removes the orphan file.
            return "absent"
        entry = WorklistEntry.objects.filter(order=order).first()
        old_path = entry.path if entry else ""

        if not order_belongs_on_worklist(order):
            removed = False
            for path in {old_path, _safe_path(order)} - {""}:
                removed |= worklist_file_remove(relative_path=path)
            if entry is not None or removed:
                entry_record_absent(order_id=order.pk)
            return "removed" if removed else "absent"

        try:
            source = order_source(order)
            path = order_file_path(order)
        except ExportError as exc:
            for stale in {old_path, _safe_path(order)} - {""}:
                worklist_file_remove(relative_path=stale)
            entry_record_absent(order_id=order.pk, problem=exc.problem)
            logger.warning("worklist export of order %s (%s) failed: %s", order.pk, order, exc)
            return "failed"

        fingerprint = source_fingerprint(source)
        # The recorded hash stands for the file only while the file is the one recorded: one changed
        # behind our back (a different stamp) is read and compared.
        known = entry is not None and entry.path == path and entry.file_stamp != ""
        if known and entry.file_stamp != worklist_file_stamp(relative_path=path):
            known = False
        result = worklist_file_write(
            relative_path=path,
            body=source_bytes(source),
            known_sha256=entry.content_sha256 if known else "",
        )
        if old_path and old_path != path:
            worklist_file_remove(relative_path=old_path)
        entry_record_written(
            order=order,
            path=path,
            sha=result.content_sha256,
            source_sha=fingerprint,
            size=result.size,
            stamp=worklist_file_stamp(relative_path=path),
        )
        return "written" if result.written else "unchanged"


def _safe_path(order: Order) -> str:
    # A requested order (no room yet) has no place in a folder per called AE title, and never had a file.
    if order.room is None:
        return ""
    try:
        return order_file_path(order)
    except ExportError:
        return ""
