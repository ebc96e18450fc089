"""Reads of the access log, for the people allowed to see it."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from scheduling.models import Patient
from scheduling.roles import ADMIN, user_has_role

from .models import AccessEvent

# How many reads the patient page lists; the admin's list has the rest.
PATIENT_PAGE_READS = 20


@dataclass
class PatientAccessLog:
    events: list[AccessEvent]
    total: int


def access_log_visible_to(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Admin (and superusers) see who read a patient's data; the front desk and technologists do not:
    the log says who looked at whom, which is itself information about staff and patients."""
    return user_has_role(user, ADMIN)


def patient_access_log(
    *, patient: Patient, user: AbstractBaseUser | AnonymousUser, limit: int = PATIENT_PAGE_READS
) -> PatientAccessLog | None:
    """The last `limit` reads of `patient`, newest first, and how many there are in all; None for a user
    who may not see them (so the page has nothing to show them, not merely a hidden block)."""
    if not access_log_visible_to(user):
        return None
    reads = AccessEvent.objects.filter(patient=patient)
    events = list(reads.select_related("user", "order").order_by("-at", "-pk")[:limit])
    return PatientAccessLog(events=events, total=len(events) if len(events) < limit else reads.count())
