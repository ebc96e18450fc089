"""The order-event stream: one row per change of an order, in the transaction of the change.

The scheduling services call `order_changed` (or `orders_changed`) as the last write of every change;
nothing else notices changes. Whoever must react to them follows this stream:

- after commit, each consumer registered with `subscribe` is called with the events that transaction
  committed (the worklist export queues the orders' files this way: worklist_export/apps.py);
- a reader that must miss nothing (the API's event feed, the HL7 outbox) reads the rows by id: ids are
  allocated in commit order, so "the events after N" never gains an older one later.

Why the ids are in commit order: on PostgreSQL, two transactions take ids from the sequence when they
insert, but may commit the other way round, and a reader between the two commits would see id 7 before
id 6 exists, move its cursor past 6 and never see it. A transaction-level advisory lock taken just
before the insert makes the allocation and the commit one critical section per transaction. It is held
from the event's insert to the commit, the last moment of the change, so it costs little. SQLite runs one
writer at a time anyway (transaction_mode IMMEDIATE in settings).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import QuerySet

from .models import Order, OrderEvent, OrderEventKind

logger = logging.getLogger(__name__)

Consumer = Callable[[Sequence[OrderEvent]], None]

# pg_advisory_xact_lock's key for the event insert: any constant that no other lock in the project uses
# (services._lock_name_and_birth_date hashes names into the full 64-bit range; a collision with it would
# only make two transactions wait for each other, never break either).
_EVENT_LOCK = 0x5249_5345_5654  # "RISEVT"

_consumers: dict[str, Consumer] = {}


def subscribe(name: str, consumer: Consumer) -> None:
    """Call `consumer` after each commit that wrote events, with those events (in id order).

    Keyed by name, so an app's ready() registering twice (tests reload apps) keeps one. A consumer that
    raises is logged and the others still run: the change is committed by then, and each consumer has
    its own way of catching up (the worklist reconcile; the feed's cursor).
    """
    _consumers[name] = consumer


def _deliver(events: list[OrderEvent]) -> None:
    for name, consumer in list(_consumers.items()):
        try:
            consumer(events)
        except Exception:
            logger.exception("order-event consumer %s failed on events %s", name, [e.id for e in events])


def _serialise_ids() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVENT_LOCK])


def orders_changed(
    orders: Iterable[Order], kind: OrderEventKind | str, *, user: AbstractBaseUser | None = None
) -> list[OrderEvent]:
    """Record that each of `orders` changed (`kind`), in the caller's transaction; notify after commit.

    Must be called inside transaction.atomic(), after the orders were saved: the event carries each
    order's status and version as saved.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("order events are written in the transaction of the change")
    actor_id = user.pk if user is not None and user.is_authenticated else None
    events = [
        OrderEvent(
            order_id=order.pk, kind=kind, status=order.status, version=order.version, actor_id=actor_id
        )
        for order in orders
    ]
    if not events:
        return []
    _serialise_ids()
    events = OrderEvent.objects.bulk_create(events)
    transaction.on_commit(lambda: _deliver(events))
    return events


def order_changed(
    order: Order, kind: OrderEventKind | str, *, user: AbstractBaseUser | None = None
) -> OrderEvent:
    """orders_changed for one order."""
    return orders_changed([order], kind, user=user)[0]


def events_after(after: int, *, order_id: int | None = None) -> QuerySet[OrderEvent]:
    """The events with an id above `after` (of one order if `order_id`), oldest first: what a follower
    that has seen `after` has not (the API's feed; the HL7 outbox). Slice it for a page."""
    events = OrderEvent.objects.filter(id__gt=after)
    if order_id is not None:
        events = events.filter(order_id=order_id)  # the (order, id) index
    return events.order_by("id")
