"""Make the worklist folder(s) equal to the orders that belong on the worklists.

Tasks keep files in sync change by change; reconciliation (the beat task and `manage.py export_worklists`)
repairs whatever they missed: a lost task, a file deleted by hand, a room renamed, the window moving on.
It must be cheap when nothing changed, so an order whose source values, path and file size match its
entry is skipped without building a dataset, and an unchanged file is never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from scheduling.models import Order

from .dataset import ExportError, order_source, source_dataset, source_fingerprint
from .models import WorklistEntry
from .services import entry_record_absent, entry_record_written, worklist_orders
from .writer import (
    content_sha256,
    export_lock,
    file_content_sha256,
    order_file_path,
    worklist_file_remove,
    worklist_file_write,
    worklist_files_on_disk,
    worklist_root,
)

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
    root = worklist_root()
    with export_lock():
        disk = worklist_files_on_disk()
        entries = {entry.order_id: entry for entry in WorklistEntry.objects.all()}
        wanted: set[str] = set()
        seen: set[int] = set()  # orders dealt with above: their entries are current

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
                and entry.file_size == stat.st_size
                and not entry.last_error
            ):
                report.unchanged += 1
                continue

            dataset = source_dataset(source)
            sha = content_sha256(dataset)
            if stat is not None and file_content_sha256(root / path) == sha:
                report.unchanged += 1
                if not check:
                    entry_record_written(
                        order=order, path=path, sha=sha, source_sha=fingerprint, size=stat.st_size
                    )
                continue
            report.add(MISSING if stat is None else CHANGED, path, _describe(order))
            if not check:
                result = worklist_file_write(relative_path=path, dataset=dataset)
                entry_record_written(
                    order=order,
                    path=path,
                    sha=result.content_sha256,
                    source_sha=fingerprint,
                    size=result.size,
                )

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
