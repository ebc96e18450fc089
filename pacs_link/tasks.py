"""Celery tasks of the PACS link. Thin: take the lock, call the follower."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from django.core.cache import cache
from django.db import connection

from .follow import CURSOR_NAME, follow_once

logger = logging.getLogger(__name__)

# pg_try_advisory_lock's key for "a follower is reading the feed": any constant no other lock in the
# project uses (scheduling.events uses "RISEVT").
_FOLLOW_LOCK = 0x5249_5350_4143  # "RISPAC"
# The cache lock's lifetime on other databases: longer than a round can take (Celery's hard time limit
# ends a stuck task well before), so a worker killed while holding it blocks the follower this long at
# most.
_CACHE_LOCK_SECONDS = 600


# One round at a time within this process too: PostgreSQL's session locks are re-entrant for the
# connection that holds them, and the cache lock is per process with the local-memory cache.
_local = threading.Lock()


@contextmanager
def follower_lock() -> Iterator[bool]:
    """Whether this process may follow the feed now: True for one caller at a time.

    Across processes, on PostgreSQL: a session advisory lock, let go when the round ends or its
    connection drops (a killed worker never leaves it held). Elsewhere: cache.add, atomic in Redis (a
    single-machine SQLite site runs one follower anyway). Without the lock two beats would read the same
    changes; the cursor check in follow._apply already keeps them from applying one twice, the lock
    saves the duplicated work.
    """
    if not _local.acquire(blocking=False):
        yield False
        return
    try:
        with _shared_lock() as held:
            yield held
    finally:
        _local.release()


@contextmanager
def _shared_lock() -> Iterator[bool]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [_FOLLOW_LOCK])
            held = cur.fetchone()[0]
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [_FOLLOW_LOCK])
        return
    key = f"pacs_link:follow:{CURSOR_NAME}"
    held = cache.add(key, 1, timeout=_CACHE_LOCK_SECONDS)
    try:
        yield held
    finally:
        if held:
            cache.delete(key)


# Not retried: beat queues the next round in PACS_POLL_SECONDS anyway, and the cursor keeps what is still
# to be applied. A PACS that does not answer fails the task (PacsUnavailable, written to the cursor's
# error for the admin) rather than being retried on top of the next beat.
@shared_task(name="pacs_link.tasks.follow", ignore_result=True)
def follow() -> int:
    """One round of the follower: every StableStudy change since the cursor; the number applied."""
    with follower_lock() as held:
        if not held:
            logger.info("PACS follower already running elsewhere; this round skipped")
            return 0
        return follow_once()
