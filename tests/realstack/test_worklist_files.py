"""Booking and cancelling through the services, with a real Celery worker writing the .wl files."""

from pathlib import Path

import pytest
from django.conf import settings

from scheduling import services
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def booked(celery_worker, tomorrow_at):
    return services.order_book(
        patient=PatientFactory(),
        procedure=ProcedureFactory(),
        room=RoomFactory(),
        start=tomorrow_at(9),
        user=UserFactory(),
    )


def wl_file(order) -> Path:
    return Path(settings.WORKLIST_DIR) / f"{order.accession_number}.wl"


def test_booked_order_appears_in_the_worklist_folder(booked, eventually):
    eventually(wl_file(booked).exists, f"the worker wrote {wl_file(booked).name}")


def test_cancelled_order_disappears_from_the_worklist_folder(booked, eventually):
    eventually(wl_file(booked).exists, f"the worker wrote {wl_file(booked).name}")

    services.order_cancel(order=booked, reason="Patient called to cancel", user=booked.booked_by)

    eventually(lambda: not wl_file(booked).exists(), f"the worker removed {wl_file(booked).name}")


def test_beat_reconcile_restores_a_deleted_file(booked, celery_beat, eventually):
    path = wl_file(booked)
    eventually(path.exists, f"the worker wrote {path.name}")

    path.unlink()

    eventually(path.exists, f"the scheduled reconcile rewrote {path.name}")
