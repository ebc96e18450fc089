"""Make the worklist folder(s) equal to the orders that belong on the worklists.

Tasks keep files in sync change by change; reconciliation (the beat task and `manage.py export_worklists`)
repairs whatever they missed: a lost task, a file deleted by hand, a room renamed, the window moving on.
It must be cheap when nothing changed, so an order whose source values, path and file stamp (inode,
size, mtime, ctime: one stat, no read) match its entry is skipped without building a dataset, and an
unchanged file is never rewritten. A file written to since this system wrote it has another stamp: it is
read, compared with the order's dataset and rewritten if it differs.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from scheduling.models import Order

from .dataset import ExportError, order_source, source_fingerprint
from .encoding import part10_bytes, source_bytes
from .models import WorklistEntry
from .services import entries_record_written, entry_record_absent, worklist_order_q, worklist_orders
from .writer import (
    LAYOUT_WLMSCPFS,
    LOCKFILE,
    content_sha256,
    export_lock,
    file_content_sha256,
    file_stamp,
    folder_lock,
    order_file_path,
    safe_ae_folder,
    worklist_file_remove,
    worklist_files_on_disk,
    worklist_files_write,
    worklist_layout,
    worklist_root,
    worklist_tmp_leftovers,
)

# Files written (and entries recorded) per batch: one folder lock, one filesystem flush, one folder
# fsync and one upsert per batch instead of per file.
BATCH_SIZE = 500

# What reconciliation found for one file or order.
MISSING = "missing"  # an active order without its file: written
CHANGED = "changed"  # a file whose content differs from the order: rewritten
STALE = "stale"  # a file of an order that is no longer active or left the window: removed
ORPHAN = "orphan"  # a .wl file that belongs to no order: removed
FAILED = "failed"  # an active order that cannot be exported: the clerk must fix its data
LOCKFILE_MISSING = "lockfile"  # a wlmscpfs AE folder without its lockfile: created
KINDS = (MISSING, CHANGED, STALE, ORPHAN, FAILED, LOCKFILE_MISSING)


@dataclass
class ReconcileLine:
    kind: str
    path: str
    about: str | Order  # what the line is about: an order is described only when the line is shown

    @property
    def detail(self) -> str:
        # Describing every order of a 10,000-item export took a tenth of its time, for lines that
        # are only printed at verbosity 2.
        return _describe(self.about) if isinstance(self.about, Order) else self.about


@dataclass
class ReconcileReport:
    check: bool
    unchanged: int = 0
    lines: list[ReconcileLine] = field(default_factory=list)

    def add(self, kind: str, path: str, about: str | Order) -> None:
        self.lines.append(ReconcileLine(kind, path, about))

    def counts(self) -> dict[str, int]:
        counts = {kind: 0 for kind in KINDS}
        for line in self.lines:
            counts[line.kind] += 1
        counts["unchanged"] = self.unchanged
        return counts

    @property
    def has_differences(self) -> bool:
        return bool(self.lines)


def worklists_reconcile(*, check: bool = False) -> ReconcileReport:
    """Write missing and changed files, remove stale and orphan ones; with check=True only report.

    Files that are not .wl files, the wlmscpfs lockfile and folders the servers do not read are left alone.
    """
    report = ReconcileReport(check=check)
    with export_lock():
        if not check:
            # A writer killed between writing its temporary file and the rename left it behind;
            # no server reads it, but it would pile up. Its order's file is rewritten below.
            for leftover in worklist_tmp_leftovers():
                leftover.unlink(missing_ok=True)
        disk = worklist_files_on_disk()
        locked = _folders_with_lockfile()
        entries = _entries_that_matter()
        wanted: set[str] = set()
        seen: set[int] = set()  # orders dealt with above: their entries are current
        batch = _Batch()
        try:
            for order in worklist_orders().iterator(chunk_size=2000):
                entry = entries.get(order.pk)
                seen.add(order.pk)
                try:
                    source = order_source(order)
                    path = order_file_path(order)
                except ExportError as exc:
                    report.add(FAILED, order.accession_number, f"{_describe(order)}: {exc}")
                    # Rewritten when the error changed, and for an entry from before the codes.
                    if not check and (
                        entry is None
                        or entry.path
                        or (entry.last_error, entry.last_error_code) != (exc.message, exc.code)
                    ):
                        entry_record_absent(order_id=order.pk, problem=exc.problem)
                    continue
                wanted.add(path)
                fingerprint = source_fingerprint(source)
                stat = disk.get(path)
                if (
                    entry is not None
                    and stat is not None
                    and entry.path == path
                    and entry.source_sha256 == fingerprint
                    and entry.file_stamp == file_stamp(stat)
                    and not entry.last_error
                    # A change whose task was lost (broker down) leaves the entry pending: record it
                    # as synced, so the order pages stop saying "export pending".
                    and entry.synced_at is not None
                    and entry.synced_at >= order.updated_at
                ):
                    report.unchanged += 1
                    continue

                _compare_and_write(order, path, source, fingerprint, stat, batch, report, check)
            batch.flush()
        finally:
            # Never leave the export lock with the writer thread still writing.
            batch.close()

        leftovers = sorted(set(disk) - wanted)
        by_path = {entry.path: entry for entry in entries.values() if entry.path}
        by_name = _orders_by_file_stem(leftovers)
        for path in leftovers:
            entry = by_path.get(path)
            order = by_name.get(PurePosixPath(path).stem)
            if entry is not None or order is not None:
                report.add(STALE, path, order or f"order {entry.order_id}")
            else:
                report.add(ORPHAN, path, "no order")
            if not check:
                worklist_file_remove(relative_path=path)
                if entry is not None and entry.order_id not in seen:
                    entry_record_absent(order_id=entry.order_id)

        if not check:
            # Entries still naming a file that is gone and not wanted: say so, quietly.
            gone = [
                e.order_id
                for e in entries.values()
                if e.path and e.order_id not in seen and e.path not in disk
            ]
            for order_id in gone:
                entry_record_absent(order_id=order_id)

        _lockfiles_repair(wanted=wanted, locked=locked, report=report, check=check)
    return report


def _entries_that_matter() -> dict[int, Any]:
    return {row.order_id: row for row in _entry_rows().iterator(chunk_size=5000)}


def _entry_rows() -> QuerySet:
    """The entries reconciliation compares: those of the orders on the worklist now, and those naming
    a file (an order that left the worklist while its task was lost: the file is removed below).

    Not the rest, one per past order (two million after five years at 600 exams a day), all naming
    no file: loading them took most of an unchanged reconcile's time and 1.6 GB. They stay, as the
    order page's "exported at" and "removed from the worklist at"; the partial index on path finds
    the few that name a file.
    """
    # What the comparison below reads of each entry, and no more; rows, not models: building 18,000
    # model instances took longer than the query.
    fields = ("order_id", "path", "source_sha256", "file_stamp", "last_error", "last_error_code", "synced_at")
    on_worklist = WorklistEntry.objects.filter(
        order__in=Order.objects.filter(worklist_order_q()).values("pk")
    )
    with_file = WorklistEntry.objects.exclude(path="")
    return on_worklist.values_list(*fields, named=True).union(with_file.values_list(*fields, named=True))


def _folders_with_lockfile() -> set[str]:
    root = worklist_root()
    if worklist_layout() != LAYOUT_WLMSCPFS or not root.is_dir():
        return set()
    return {entry.name for entry in os.scandir(root) if os.path.isfile(os.path.join(entry.path, LOCKFILE))}


def _lockfiles_repair(*, wanted: set[str], locked: set[str], report: ReconcileReport, check: bool) -> None:
    """Give every AE folder reconciliation manages the `lockfile` wlmscpfs needs.

    Without it wlmscpfs fails every C-FIND to that called AE (A700) while the .wl files look fine.
    Managed: the folders of the files written above and the default called AE's, so that an empty
    worklist answers "no items" instead of failing. `locked` is what had a lockfile before this run
    (writing a file creates it, so the report says the same with and without --check).
    """
    if worklist_layout() != LAYOUT_WLMSCPFS:
        return
    folders = {PurePosixPath(path).parent.name for path in wanted}
    try:
        folders.add(safe_ae_folder(settings.WORKLIST_CALLED_AE))
    except ExportError:  # an unusable setting: the orders' own paths already fail with it
        pass
    for name in sorted(folders - locked):
        report.add(LOCKFILE_MISSING, f"{name}/{LOCKFILE}", "wlmscpfs fails every query to this AE without it")
        if not check:
            with folder_lock(worklist_root() / name):  # creates the folder and its lockfile
                pass


def _compare_and_write(
    order: Order,
    path: str,
    source: dict,
    fingerprint: str,
    stat: os.stat_result | None,
    batch: _Batch,
    report: ReconcileReport,
    check: bool,
) -> None:
    """Encode the order's item; write it unless the file on disk already holds exactly that."""
    body = source_bytes(source)
    sha = content_sha256(body)
    if stat is not None and file_content_sha256(worklist_root() / path) == sha:
        report.unchanged += 1
        if not check:
            batch.record(order.pk, path, sha, fingerprint, stat.st_size, file_stamp(stat))
        return
    report.add(MISSING if stat is None else CHANGED, path, order)
    if not check:
        batch.write(order.pk, path, part10_bytes(body), sha, fingerprint)


class _Batch:
    """Files to write and entries to record, flushed every BATCH_SIZE files.

    A batch's files are written by a writer thread while this one reads and encodes the next batch:
    creating a file is kernel time (0.1 to 0.5 ms each on a virtual disk, as much as building the
    item), and the kernel calls release the GIL. One batch at a time is in flight; its entries are
    recorded here, where the database connection lives, once all its files are in place.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.pending: list[tuple[int, str, str, str]] = []  # files to write: order, path, sha, source sha
        self.records: list[tuple[int, str, str, str, int, str]] = []
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worklist-writer")
        self.inflight: tuple[Future, list[tuple[int, str, str, str]]] | None = None

    def record(self, order_id: int, path: str, sha: str, source_sha: str, size: int, stamp: str) -> None:
        self.records.append((order_id, path, sha, source_sha, size, stamp))
        if len(self.records) >= BATCH_SIZE:
            self._record_entries()

    def write(self, order_id: int, path: str, data: bytes, sha: str, source_sha: str) -> None:
        self.files[path] = data
        self.pending.append((order_id, path, sha, source_sha))
        if len(self.files) >= BATCH_SIZE:
            self._send()

    def flush(self) -> None:
        self._send()
        self._collect()
        self._record_entries()

    def close(self) -> None:
        # After an error: let the batch in flight finish (its files are complete either way), then stop.
        self.writer.shutdown(wait=True)

    def _send(self) -> None:
        self._collect()
        if self.files:
            self.inflight = (self.writer.submit(_write_files, self.files), self.pending)
            self.files, self.pending = {}, []

    def _collect(self) -> None:
        """Wait for the batch in flight; raises its OSError, as writing in this thread would."""
        if self.inflight is None:
            return
        future, pending = self.inflight
        self.inflight = None
        written = future.result()
        self.records += [(o, path, sha, src, *written[path]) for o, path, sha, src in pending]

    def _record_entries(self) -> None:
        # Entries only after their files are in place: an entry never names a file that is not there.
        entries_record_written(records=self.records)
        self.records = []


def _write_files(files: dict[str, bytes]) -> dict[str, tuple[int, str]]:
    """The writer thread's work: write the files, then their sizes and stamps as they now are on disk."""
    sizes = worklist_files_write(files)
    root = worklist_root()
    return {path: (size, file_stamp(os.stat(root / path))) for path, size in sizes.items()}


def _orders_by_file_stem(paths: list[str]) -> dict[str, Order]:
    stems = {PurePosixPath(path).stem for path in paths}
    if not stems:
        return {}
    return {
        order.accession_number: order
        for order in Order.objects.filter(accession_number__in=stems).select_related("patient", "procedure")
    }


def _describe(order: Order) -> str:
    return (
        f"{order.accession_number} {order.procedure.code_meaning}, {order.patient.display_name}, "
        f"{order.get_status_display().lower()}"
    )
