"""HL7 senders and receivers: saving them with what they need (an account, a cursor), finding a sender."""

from __future__ import annotations

from typing import TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils.text import slugify

from scheduling.models import OrderEvent

from .models import Receiver, Sender

T = TypeVar("T")


def one(queryset: QuerySet[T]) -> T | None:
    """The row of a lookup by a unique key, or None: without the ORDER BY that first() adds, which
    costs more to build than the query takes to run on the listener's hot path."""
    return next(iter(queryset.order_by()[:1]), None)


def _username(application: str) -> str:
    base = f"hl7-{slugify(application)[:100] or 'sender'}"
    User = get_user_model()
    username, n = base, 1
    while User.objects.filter(username=username).exists():
        n += 1
        username = f"{base}-{n}"
    return username


def sender_save(*, sender: Sender) -> Sender:
    """Save a new or changed sender. A new one gets its account "hl7-<application>" (no password: it
    cannot log in), which its patients and orders are registered and booked by, so the history names
    the HIS like a clerk. The account follows the sender's enabled flag."""
    sender.application = sender.application.strip()
    sender.full_clean(exclude=["user"])
    with transaction.atomic():
        if sender.user_id is None:
            user = get_user_model()(
                username=_username(sender.application), first_name=sender.application[:150]
            )
            user.set_unusable_password()
            user.save()
            sender.user = user
        elif sender.user.is_active != sender.enabled:
            sender.user.is_active = sender.enabled
            sender.user.save(update_fields=["is_active"])
        sender.save()
    return sender


def sender_for(application: str) -> Sender | None:
    """The sender whose messages carry `application` in MSH-3, enabled or not; None when unknown.

    A name listed in HL7_KNOWN_SENDERS gets its sender record now, with the site's default character
    set, so the admin sees it and can change it.
    """
    application = application.strip()
    if not application:
        return None
    sender = one(Sender.objects.select_related("user").filter(application=application))
    if sender is not None or application not in [name.strip() for name in settings.HL7_KNOWN_SENDERS]:
        return sender
    try:
        with transaction.atomic():
            return sender_save(
                sender=Sender(
                    application=application,
                    description="HL7_KNOWN_SENDERS",
                    default_charset=settings.HL7_DEFAULT_CHARSET,
                )
            )
    except IntegrityError:
        # Two first messages at once (two connections): the second finds the record the first made.
        sender = one(Sender.objects.select_related("user").filter(application=application))
        if sender is None:
            raise
    return sender


def receiver_save(*, receiver: Receiver) -> Receiver:
    """Save a new or changed receiver. A new one starts at the order-event stream's end: it is told of
    what changes from now on, not of the department's whole past."""
    receiver.full_clean()
    with transaction.atomic():
        if receiver.pk is None:
            receiver.last_event_id = OrderEvent.objects.aggregate(last=Max("id"))["last"] or 0
            receiver.save()
        else:
            # The configuration only: the cursor and the delivery state belong to the outbox, which
            # moves them while an admin has the form open; saving them back would undo its work.
            state = {"last_event_id", "failures", "next_attempt_at", "last_error"}
            receiver.save(
                update_fields=[
                    f.name
                    for f in Receiver._meta.concrete_fields
                    if not f.primary_key and f.name not in state
                ]
            )
    return receiver
