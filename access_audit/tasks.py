"""Celery task of the access log: the daily purge (beat: CELERY_BEAT_SCHEDULE in ris/settings.py)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services import access_log_purge


# Idempotent: a second run the same day finds nothing older than the retention to delete.
@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
    acks_late=True,
)
def purge_access_log() -> int:
    return access_log_purge()
