"""Requested orders (from the hospital system, no room or time yet) and the DICOM server: never an
answer to a C-FIND however it asks, not on the "Query as a modality" page, and no station may start
one with MPPS (its accession number is known: the hospital system has it from our acknowledgement)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from mwl_server.models import MppsRefusal
from mwl_server.services import NOT_AUTHORIZED, DicomFailure, mpps_create, worklist_find
from scheduling.models import Order, OrderStatus
from tests.factories import OrderFactory
from tests.mwl_server.dicom import (
    find_answers,
    mpps_dataset,
    new_uid,
    running_server,
    worklist_query,
)

pytestmark = pytest.mark.django_db


def day(offset: int = 1) -> str:
    return f"{timezone.localdate() + timedelta(days=offset):%Y%m%d}"


@pytest.fixture
def waiting(patient, procedure, user, tomorrow_at) -> Order:
    """The same patient's requested order, asking for the booked exam's day, written straight to the
    database (the server's own code paths are under test)."""
    return OrderFactory(
        accession_number="REQ0001",
        patient=patient,
        procedure=procedure,
        status=OrderStatus.REQUESTED,
        room=None,
        scheduled_start=None,
        scheduled_end=None,
        requested_start=tomorrow_at(9),
        booked_by=user,
    )


@pytest.mark.parametrize(
    "sps_keys, keys",
    [
        ({}, {}),  # every item
        ({}, {"AccessionNumber": "REQ0001"}),
        ({"Modality": "CT", "ScheduledProcedureStepStartDate": day()}, {}),
        ({"ScheduledProcedureStepStartDate": f"{day(-1)}-{day(2)}"}, {}),
        ({}, {"PatientName": "*"}),
    ],
)
def test_no_query_finds_a_requested_order(book, waiting, patient, sps_keys, keys):
    booked = book()

    answers = worklist_find(worklist_query(sps_keys, **keys))

    assert waiting.accession_number not in [a.AccessionNumber for a in answers]
    if "AccessionNumber" not in keys:
        assert [a.AccessionNumber for a in answers] == [booked.accession_number]


def test_the_patients_query_finds_only_the_booked_exam(book, waiting, patient):
    booked = book()

    answers = worklist_find(worklist_query(PatientID=patient.mrn))

    assert [a.AccessionNumber for a in answers] == [booked.accession_number]


@pytest.mark.django_db(transaction=True)
def test_a_modality_asking_over_the_network_gets_the_booked_exam_alone(settings, book, waiting):
    settings.DICOM_SERVER_KNOWN_CALLERS = ["TESTSCU"]
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False
    booked = book()

    with running_server() as port:
        answers = find_answers(port, worklist_query())

    assert [a.AccessionNumber for a in answers] == [booked.accession_number]


def test_no_station_may_start_a_requested_order(waiting, settings):
    settings.DICOM_SERVER_ROOM_CALLERS = "CT01=CT01WS"
    attributes = mpps_dataset(waiting)

    with pytest.raises(DicomFailure) as refused:
        mpps_create(sop_instance_uid=new_uid(), attributes=attributes, calling_ae="CT01")

    assert refused.value.status == NOT_AUTHORIZED
    waiting.refresh_from_db()
    assert waiting.status == OrderStatus.REQUESTED
    # On the order page's list of refused MPPS requests, for the front desk to see.
    [kept] = MppsRefusal.objects.filter(order=waiting)
    assert (kept.calling_ae, kept.status) == ("CT01", NOT_AUTHORIZED)


@pytest.mark.django_db(transaction=True)
def test_the_query_page_shows_the_booked_exam_and_misses_nothing(
    settings, clerk, room, book, waiting, tomorrow_at
):
    settings.DICOM_SERVER_KNOWN_CALLERS = []
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False
    booked = book()

    with running_server() as port:
        settings.MWL_QUERY_TARGETS = {
            "builtin": {"label": "Built-in", "host": "127.0.0.1", "port": port, "called_ae": "RISMWL"}
        }
        response = clerk.get(
            reverse("mwl_server:query"),
            {"room": room.pk, "day": f"{tomorrow_at(9):%Y-%m-%d}", "target": "builtin"},
        )

    assert response.status_code == 200
    result = response.context["result"]
    assert result.error == ""
    assert [row.accession for row in result.rows] == [booked.accession_number]
    assert result.missing == []
    assert waiting.accession_number not in response.content.decode()
