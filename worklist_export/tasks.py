"""Celery tasks of the worklist export. Thin: take an id, call the service."""

from celery import shared_task

from .reconcile import worklists_reconcile
from .services import order_sync_worklist


# A full disk or an unmounted share is transient: retry with backoff (1 s, 2 s, ... up to 5 min).
# Data errors are not retried; the service records them on the entry for the clerk.
@shared_task(
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
    acks_late=True,
)
def sync_order_worklist(order_id: int) -> str:
    return order_sync_worklist(order_id=order_id)


@shared_task(acks_late=True)
def reconcile_worklists() -> dict[str, int]:
    """The beat task: make the worklist folder(s) equal to the active orders."""
    return worklists_reconcile().counts()
