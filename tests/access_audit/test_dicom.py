"""Reads over DICOM: a station's C-FIND to the built-in server, and the "Query as a modality" page.

The server runs in a thread of this process (tests/mwl_server/dicom.py), so it writes to the test database.
"""

from unittest import mock

import pytest
from django.urls import reverse

from access_audit.models import AccessAction, AccessEvent
from tests.factories import PatientFactory
from tests.mwl_server.dicom import SERVER_AE, find, find_answers, running_server, worklist_query

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _worklist_dir(worklist_dir):
    return worklist_dir


@pytest.fixture
def port(settings):
    settings.DICOM_SERVER_KNOWN_CALLERS = ["TESTSCU"]
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False
    with running_server() as port:
        settings.MWL_QUERY_TARGETS = {
            "builtin": {"label": "Built-in", "host": "127.0.0.1", "port": port, "called_ae": SERVER_AE}
        }
        yield port


@pytest.fixture
def two_exams(book, tomorrow_at):
    return [book(), book(patient=PatientFactory(family_name="Srisuk"), start=tomorrow_at(11))]


def station_query(day):
    return worklist_query(
        {
            "ScheduledStationAETitle": "CT01",
            "Modality": "CT",
            "ScheduledProcedureStepStartDate": f"{day:%Y%m%d}",
        }
    )


def test_a_station_query_records_each_patient_answered_in_one_insert(port, two_exams, tomorrow_at, reads):
    spy = mock.patch.object(AccessEvent.objects, "bulk_create", wraps=AccessEvent.objects.bulk_create)
    with spy as bulk_create:
        answers = find_answers(port, station_query(tomorrow_at(9).date()))

    assert len(answers) == 2
    assert reads() == [
        (AccessAction.STATION_FIND, "TESTSCU", order.patient_id, order.pk, 2) for order in two_exams
    ]
    # One write for the whole query, not one per item.
    assert bulk_create.call_count == 1
    event = AccessEvent.objects.first()
    assert event.user is None and event.address == "127.0.0.1"
    # The matching keys in tag order; the empty return keys left out.
    assert event.query_summary == (
        f"Modality=CT ScheduledStationAETitle=CT01 ScheduledProcedureStepStartDate={tomorrow_at(9):%Y%m%d}"
    )


def test_a_station_query_that_matches_nothing_is_on_record_too(port, two_exams, tomorrow_at, reads):
    answers = find_answers(port, station_query(tomorrow_at(9).date().replace(year=2031)))

    assert answers == []
    assert reads() == [(AccessAction.STATION_FIND, "TESTSCU", None, None, 0)]


def test_answers_without_an_accession_number_are_traced_by_study_uid(port, two_exams, tomorrow_at, reads):
    query = station_query(tomorrow_at(9).date())
    del query.AccessionNumber

    answers = find_answers(port, query)

    assert len(answers) == 2 and "AccessionNumber" not in answers[0]
    assert [(patient, order) for _, _, patient, order, _ in reads()] == [
        (order.patient_id, order.pk) for order in two_exams
    ]


def test_a_refused_query_records_nothing(port, two_exams, reads):
    # A reversed date range is refused (A900): no patient data left the server.
    _, final = find(port, worklist_query({"ScheduledProcedureStepStartDate": "20261231-20260101"}))

    assert final.Status != 0x0000
    assert reads() == []


def test_the_query_as_a_modality_page_records_the_user_and_what_was_shown(
    port, client, user, room, two_exams, tomorrow_at, reads
):
    client.force_login(user)
    day = tomorrow_at(9).date()

    response = client.get(
        reverse("mwl_server:query"), {"room": room.pk, "day": f"{day:%Y-%m-%d}", "target": "builtin"}
    )

    assert response.status_code == 200 and 'id="query-results"' in response.content.decode()
    page_reads = [r for r in reads() if r[0] == AccessAction.MODALITY_QUERY]
    assert page_reads == [
        (AccessAction.MODALITY_QUERY, user.username, order.patient_id, order.pk, 2) for order in two_exams
    ]
    event = AccessEvent.objects.filter(action=AccessAction.MODALITY_QUERY).first()
    assert event.calling_ae == "CT01"
    assert event.query_summary.startswith(f"builtin {SERVER_AE}: Modality=CT ScheduledStationAETitle=CT01")
    # The built-in server saw the page's query as the room's station, and recorded it as such.
    station_reads = [r for r in reads() if r[0] == AccessAction.STATION_FIND]
    assert [(who, order) for _, who, _, order, _ in station_reads] == [("CT01", o.pk) for o in two_exams]


def test_the_query_page_without_a_query_records_nothing(client, user, reads):
    client.force_login(user)

    assert client.get(reverse("mwl_server:query")).status_code == 200
    assert reads() == []
