"""Each page that shows a patient's data records one read: who, what, which patient and order."""

import logging
from unittest import mock

import pytest
from django.db import OperationalError
from django.urls import reverse

from access_audit.models import AccessAction, AccessEvent

pytestmark = pytest.mark.django_db


def test_the_patient_page_records_one_read_by_the_clerk(clerk, user, patient, reads):
    response = clerk.get(reverse("scheduling:patient_detail", args=[patient.pk]))

    assert response.status_code == 200
    assert reads() == [(AccessAction.PATIENT_VIEWED, user.username, patient.pk, None, None)]


def test_the_order_page_records_the_order_and_its_patient(clerk, user, order, reads):
    response = clerk.get(reverse("scheduling:order_detail", args=[order.pk]))

    assert response.status_code == 200
    assert reads() == [(AccessAction.ORDER_VIEWED, user.username, order.patient_id, order.pk, None)]


def test_printing_the_slip_is_recorded(clerk, user, order, reads):
    response = clerk.get(reverse("scheduling:order_slip", args=[order.pk]))

    assert response.status_code == 200
    assert reads() == [(AccessAction.SLIP_PRINTED, user.username, order.patient_id, order.pk, None)]


def test_downloading_the_wl_file_is_recorded(worklist_dir, book, clerk, user, reads):
    order = book()

    response = clerk.get(reverse("worklist_export:order_file", args=[order.pk]))

    assert response.status_code == 200
    assert reads() == [
        (AccessAction.WORKLIST_FILE_DOWNLOADED, user.username, order.patient_id, order.pk, None)
    ]


def test_viewing_the_wl_dump_is_recorded(worklist_dir, book, clerk, user, reads):
    order = book()

    response = clerk.get(reverse("worklist_export:order_dump", args=[order.pk]))

    assert response.status_code == 200
    assert reads() == [(AccessAction.WORKLIST_DUMP_VIEWED, user.username, order.patient_id, order.pk, None)]


def test_a_wl_file_that_is_not_there_records_nothing(worklist_dir, order, clerk, reads):
    # Nothing was shown: the order was never exported.
    assert clerk.get(reverse("worklist_export:order_file", args=[order.pk])).status_code == 404
    assert clerk.get(reverse("worklist_export:order_dump", args=[order.pk])).status_code == 404

    assert reads() == []


def test_an_unknown_patient_records_nothing(clerk, reads):
    assert clerk.get(reverse("scheduling:patient_detail", args=[999999])).status_code == 404
    assert reads() == []


def test_the_address_recorded_is_the_clients(clerk, patient, settings):
    settings.RIS_PROXY_COUNT = 1

    clerk.get(
        reverse("scheduling:patient_detail", args=[patient.pk]),
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.7",
    )

    assert AccessEvent.objects.get().address == "192.0.2.7"


@pytest.mark.parametrize(
    "url",
    [
        lambda o: reverse("scheduling:patient_detail", args=[o.patient_id]),
        lambda o: reverse("scheduling:order_detail", args=[o.pk]),
        lambda o: reverse("scheduling:order_slip", args=[o.pk]),
        lambda o: reverse("worklist_export:order_file", args=[o.pk]),
        lambda o: reverse("worklist_export:order_dump", args=[o.pk]),
    ],
)
def test_an_anonymous_visitor_is_sent_to_the_login_and_nothing_is_recorded(client, worklist_dir, book, url):
    order = book()

    response = client.get(url(order))

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not AccessEvent.objects.exists()


def test_a_read_that_cannot_be_recorded_is_served_and_logged_in_full(clerk, user, patient, caplog):
    failing = mock.patch.object(
        AccessEvent.objects, "bulk_create", side_effect=OperationalError("database is locked")
    )
    with failing, caplog.at_level(logging.ERROR, logger="access_audit.services"):
        response = clerk.get(reverse("scheduling:patient_detail", args=[patient.pk]))

    assert response.status_code == 200
    assert patient.mrn in response.content.decode()
    [record] = [r for r in caplog.records if r.name == "access_audit.services"]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert "database is locked" in message
    assert f"action={AccessAction.PATIENT_VIEWED}" in message
    assert f"user={user.pk}" in message and f"patient={patient.pk}" in message
    assert not AccessEvent.objects.exists()


def test_a_failed_record_does_not_break_the_callers_transaction(rf, user, patient):
    # On PostgreSQL a failed INSERT aborts the transaction it is in; the savepoint keeps the caller's.
    from django.db import transaction

    from access_audit.services import access_record

    request = rf.get("/")
    request.user = user
    with transaction.atomic():
        with mock.patch.object(AccessEvent.objects, "bulk_create", side_effect=OperationalError("full")):
            access_record(request=request, action=AccessAction.PATIENT_VIEWED, patient=patient)
        access_record(request=request, action=AccessAction.PATIENT_VIEWED, patient=patient)

    assert AccessEvent.objects.count() == 1
