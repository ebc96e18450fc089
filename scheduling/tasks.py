"""Celery tasks of scheduling. Thin: load, call the service."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from . import services


# Beat runs it at NO_SHOW_END_OF_DAY_TIME when NO_SHOW_AT_END_OF_DAY is on (ris/settings.py). A database
# restarting is transient: retry with backoff. Idempotent, so a retry or a second beat marks nothing twice.
@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=10,
    acks_late=True,
    ignore_result=True,
)
def mark_no_shows() -> int:
    """Mark today's scheduled exams whose time has passed as no-shows; the number marked."""
    # The setting is read again here: a schedule kept elsewhere (django-celery-beat's table) may still
    # hold the entry after the site turned the setting off.
    if not settings.NO_SHOW_AT_END_OF_DAY:
        return 0
    marked = services.orders_mark_no_shows(day=timezone.localdate(), user=services.no_show_user())
    return len(marked)
