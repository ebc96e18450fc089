"""Celery tasks of the API."""

from celery import shared_task

from .idempotency import idempotency_purge


@shared_task(acks_late=True, ignore_result=True)
def purge_idempotency_keys() -> int:
    """The beat task: forget Idempotency-Keys older than API_IDEMPOTENCY_HOURS."""
    return idempotency_purge()
