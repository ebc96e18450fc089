"""Reads for the order page: the export state of an order and its file on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scheduling.models import Order

from .models import WorklistEntry
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
