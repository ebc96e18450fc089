"""Celery tasks of the worklist export. Thin: take an id, call the service."""

import logging
from collections.abc import Sequence

from celery import shared_task
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from scheduling.models import OrderEvent, OrderEventKind

from .reconcile import worklists_reconcile
from .services import order_sync_worklist, worklist_orders

logger = logging.getLogger(__name__)


# A full disk, an unmounted share or a database restarting is transient: retry with backoff (1 s, 2 s,
# ... up to 5 min). Data errors are not retried; the service records them on the entry for the clerk.
# No result is stored: nothing reads it (the worker logs what was done), and asking the result backend
# to follow the task would make every booking wait for Redis a second time (see sync_order_enqueue).
@shared_task(
    autoretry_for=(OSError, OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
    acks_late=True,
    ignore_result=True,
)
def sync_order_worklist(order_id: int) -> str:
    return order_sync_worklist(order_id=order_id)


def sync_order_enqueue(order_id: int) -> bool:
    """Queue sync_order_worklist for `order_id`; False, with a warning, when the broker cannot take it.

    Called after commit, so the change is saved either way: an order whose task never left stays
    "export pending" (order page, Worklist problems page) until the periodic reconcile writes its file.
    Raising here would show the clerk a server error for a booking that was in fact made.
    """
    try:
        sync_order_worklist.delay(order_id)
    except BrokerError as exc:
        logger.warning(
            "worklist sync of order %s not queued (broker unavailable: %s); reconcile will export it",
            order_id,
            exc,
        )
        return False
    return True


# The events whose order's item carries the changed values only while the order is on a worklist: a room
# or procedure edit reaches every active order, most of them weeks away, which get no file yet (they are
# exported with the new values when they enter the window). Every other change is the order's own.
_CATALOG_EVENTS = {OrderEventKind.ROOM_CHANGED, OrderEventKind.PROCEDURE_CHANGED}


def worklist_events_consumer(events: Sequence[OrderEvent]) -> None:
    """The export's part of the order-event stream (scheduling.events): after a commit, queue the file
    of each order that changed, once per order."""
    own = {event.order_id for event in events if event.kind not in _CATALOG_EVENTS}
    catalog = {event.order_id for event in events if event.kind in _CATALOG_EVENTS} - own
    if catalog:
        own |= set(worklist_orders().filter(pk__in=catalog).values_list("pk", flat=True))
    for order_id in sorted(own):
        sync_order_enqueue(order_id)


@shared_task(acks_late=True)
def reconcile_worklists() -> dict[str, int]:
    """The beat task: make the worklist folder(s) equal to the active orders."""
    return worklists_reconcile().counts()
