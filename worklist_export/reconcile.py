"""Make the worklist folder(s) equal to the orders that belong on the worklists.

Tasks keep files in sync change by change; reconciliation (the beat task and `manage.py export_worklists`)
repairs whatever they missed: a lost task, a file deleted by hand, a room renamed, the window moving on.
It must be cheap when nothing changed, so an order whose source values, path and file stamp (inode,
size, mtime, ctime: one stat, no read) match its entry is skipped without building a dataset, and an
unchanged file is never rewritten. A file written to since this system wrote it has another stamp: it is
read, compared with the order's dataset and rewritten if it differs.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from scheduling.models import Order

from .dataset import ExportError, order_source, source_dataset, source_fingerprint
from .models import WorklistEntry
from .services import entries_record_written, entry_record_absent, worklist_orders
from .writer import (
    dataset_bytes,
    export_lock,
    file_content_sha256,
    file_stamp,
    order_file_path,
    part10_bytes,
    worklist_file_remove,
    worklist_files_on_disk,
    worklist_files_write,
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
KINDS = (MISSING, CHANGED, STALE, ORPHAN, FAILED)


@dataclass
class ReconcileLine:
    kind: str
    path: str
    detail: str


@dataclass
class ReconcileReport:
    check: bool
    unchanged: int = 0
    lines: list[ReconcileLine] = field(default_factory=list)

    def add(self, kind: str, path: str, detail: str) -> None:
        self.lines.append(ReconcileLine(kind, path, detail))

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
        entries = {entry.order_id: entry for entry in WorklistEntry.objects.all()}
        wanted: set[str] = set()
        seen: set[int] = set()  # orders dealt with above: their entries are current
        batch = _Batch()
        encoder = _Encoder()
        # Orders whose file may differ: their datasets are built a batch at a time (in parallel).
        candidates: list[tuple[Order, str, dict, str, os.stat_result | None]] = []
        inflight: list[tuple[list, Callable[[], list[tuple[str, bytes]]]]] = []

        try:
            for order in worklist_orders().iterator(chunk_size=2000):
                entry = entries.get(order.pk)
                seen.add(order.pk)
                try:
                    source = order_source(order)
                    path = order_file_path(order)
                except (ExportError, ValueError) as exc:
                    report.add(FAILED, order.accession_number, f"{_describe(order)}: {exc}")
                    if not check and (entry is None or entry.path or entry.last_error != str(exc)):
                        entry_record_absent(order_id=order.pk, error=str(exc))
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

                candidates.append((order, path, source, fingerprint, stat))
                if len(candidates) >= BATCH_SIZE:
                    # Encode this batch in the pool while the previous one is compared and written.
                    inflight.append(encoder.submit(candidates))
                    candidates = []
                    if len(inflight) > 1:
                        _compare_and_write(*inflight.pop(0), batch, report, check)
            inflight.append(encoder.submit(candidates))
            for done in inflight:
                _compare_and_write(*done, batch, report, check)
        finally:
            encoder.close()
        batch.flush()

        leftovers = sorted(set(disk) - wanted)
        by_path = {entry.path: entry for entry in entries.values() if entry.path}
        by_name = _orders_by_file_stem(leftovers)
        for path in leftovers:
            entry = by_path.get(path)
            order = by_name.get(PurePosixPath(path).stem)
            if entry is not None or order is not None:
                report.add(STALE, path, _describe(order) if order else f"order {entry.order_id}")
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
    return report


def _compare_and_write(candidates, encoded, batch: _Batch, report: ReconcileReport, check: bool) -> None:
    root = worklist_root()
    for (order, path, _source, fingerprint, stat), (sha, data) in zip(candidates, encoded(), strict=True):
        if stat is not None and file_content_sha256(root / path) == sha:
            report.unchanged += 1
            if not check:
                batch.record(order.pk, path, sha, fingerprint, stat.st_size, file_stamp(stat))
            continue
        report.add(MISSING if stat is None else CHANGED, path, _describe(order))
        if not check:
            batch.write(order.pk, path, data, sha, fingerprint)


def _encode(source: dict) -> tuple[str, bytes]:
    """The content hash and the Part 10 file of a source from order_source()."""
    body = dataset_bytes(source_dataset(source))
    return hashlib.sha256(body).hexdigest(), part10_bytes(body)


class _Encoder:
    """Builds and encodes datasets: in this process for a few, in a pool of forked processes for many.

    Building and encoding a dataset with pydicom is most of the CPU time of a full export; the pool
    spreads it over the CPUs while this process reads the database and writes the files. The workers
    only turn dicts into bytes: they never touch the database or the folder.
    """

    PARALLEL_FROM = 200

    def __init__(self) -> None:
        self.pool = None

    def submit(self, candidates: list) -> tuple[list, Callable[[], list[tuple[str, bytes]]]]:
        """(candidates, a function returning their encoded files), encoding started."""
        sources = [source for _order, _path, source, _fp, _stat in candidates]
        if len(sources) >= self.PARALLEL_FROM and (os.cpu_count() or 1) > 1 and self.pool is None:
            try:
                self.pool = multiprocessing.get_context("fork").Pool(min(os.cpu_count() or 2, 4))
            except (ValueError, OSError):  # no fork on this platform, or no processes left
                self.pool = None
        if self.pool is None or len(sources) < self.PARALLEL_FROM:
            return candidates, lambda: [_encode(source) for source in sources]
        return candidates, self.pool.map_async(_encode, sources, chunksize=25).get

    def close(self) -> None:
        if self.pool is not None:
            # Called when every result was collected, or on an error: nothing worth finishing is left.
            self.pool.terminate()
            self.pool.join()
            self.pool = None


class _Batch:
    """Files to write and entries to record, flushed every BATCH_SIZE files."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.pending: list[tuple[int, str, str, str]] = []  # written files: order, path, sha, source sha
        self.records: list[tuple[int, str, str, str, int, str]] = []

    def record(self, order_id: int, path: str, sha: str, source_sha: str, size: int, stamp: str) -> None:
        self.records.append((order_id, path, sha, source_sha, size, stamp))
        if len(self.records) >= BATCH_SIZE:
            self.flush()

    def write(self, order_id: int, path: str, data: bytes, sha: str, source_sha: str) -> None:
        self.files[path] = data
        self.pending.append((order_id, path, sha, source_sha))
        if len(self.files) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if self.files:
            sizes = worklist_files_write(self.files)
            root = worklist_root()
            self.records += [
                (o, path, sha, src, sizes[path], file_stamp(os.stat(root / path)))
                for o, path, sha, src in self.pending
            ]
            self.files, self.pending = {}, []
        # Entries only after their files are in place: an entry never names a file that is not there.
        entries_record_written(records=self.records)
        self.records = []


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
