"""Reads of the DICOM server's records, for the pages that show them."""

from __future__ import annotations

from scheduling.models import Order

from .models import MppsRefusal


def mpps_refusals_for_order(*, order: Order, limit: int = 20) -> list[MppsRefusal]:
    """The latest MPPS requests refused for `order`, newest first (a list: the template only reads it)."""
    return list(MppsRefusal.objects.filter(order=order)[:limit])
