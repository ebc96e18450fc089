"""Celery tasks of the HL7 link. Thin: the outbox does the work (hl7_link/outbox.py)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .outbox import outbox_run_all


# Queued after each commit that wrote outbound events, and by beat every 30 s ("hl7-outbox"). Safe to run
# twice at once or again after a crash: the fill moves the cursor with the rows it queues, delivery is one
# at a time per receiver and sends a message until it is answered. A database restarting is retried here
# with backoff; a receiver that does not answer is not an error of the task: its failures and next
# attempt are recorded on it (Interface page) and a later run tries again. No result is stored.
@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
    acks_late=True,
    ignore_result=True,
)
def outbox_run() -> None:
    outbox_run_all()
