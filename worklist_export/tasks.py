"""Celery tasks of the worklist export. Thin: take an id, call the service."""

from celery import shared_task


@shared_task
def sync_order_worklist(order_id: int) -> None:
    # Filled in by the worklist export work (issue 3).
    return None
