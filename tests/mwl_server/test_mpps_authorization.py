"""Issue 13.2: MPPS may act only on the calling station's own exams, on the worklist now.

Over the network, against serve_dicom's server in this process (it must share the test database to
check the orders and the refusals it records), then what the front desk sees on the order page.
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from mwl_server.models import MppsOperation, MppsRefusal, MppsStatus, PerformedProcedureStep
from scheduling.models import OrderStatus
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory
from tests.mwl_server.dicom import mpps_dataset, mpps_set_dataset, n_create, n_set, new_uid, running_server

pytestmark = pytest.mark.django_db(transaction=True)

NOT_AUTHORIZED, PROCESSING_FAILURE, INVALID_ATTRIBUTE_VALUE = 0x0124, 0x0110, 0x0106


@pytest.fixture
def port(settings):
    settings.DICOM_SERVER_KNOWN_CALLERS = ["TESTSCU"]
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False
    settings.DICOM_SERVER_ROOM_CALLERS = "CT01=CT01WS"
    with running_server() as port:
        yield port


@pytest.fixture
def mr_order(book, tomorrow_at):
    room = RoomFactory(name="MR 1", ae_title="MR01", modality="MR")
    procedure = ProcedureFactory(code_value="MRBRAIN", code_meaning="MR Brain", modality="MR")
    return book(room=room, procedure=procedure, start=tomorrow_at(10))


@pytest.fixture
def ct_order(book):
    return book()  # CT 1, station CT01


def refusal(order) -> MppsRefusal:
    [refused] = MppsRefusal.objects.filter(order=order)
    return refused


def test_a_station_cannot_start_another_rooms_exam(port, ct_order, mr_order):
    status = n_create(port, new_uid(), mpps_dataset(mr_order), calling="CT01")

    assert status == NOT_AUTHORIZED
    mr_order.refresh_from_db()
    assert mr_order.status == OrderStatus.SCHEDULED
    assert not PerformedProcedureStep.objects.exists()
    refused = refusal(mr_order)
    assert (refused.operation, refused.calling_ae, refused.address, refused.status) == (
        MppsOperation.N_CREATE,
        "CT01",
        "127.0.0.1",
        NOT_AUTHORIZED,
    )
    assert refused.reason == f"CT01 is not the station of order {mr_order.accession_number}"


def test_a_known_caller_that_is_no_station_cannot_start_an_exam(port, ct_order):
    assert n_create(port, new_uid(), mpps_dataset(ct_order), calling="TESTSCU") == NOT_AUTHORIZED
    ct_order.refresh_from_db()
    assert ct_order.status == OrderStatus.SCHEDULED


def test_an_ae_listed_for_the_room_may_start_and_complete_its_exams(port, ct_order):
    uid = new_uid()
    assert n_create(port, uid, mpps_dataset(ct_order), calling="CT01WS") == 0x0000
    assert n_set(port, uid, mpps_set_dataset("COMPLETED"), calling="CT01WS") == 0x0000
    ct_order.refresh_from_db()
    assert ct_order.status == OrderStatus.COMPLETED
    assert not MppsRefusal.objects.exists()


def test_another_patients_id_is_refused(port, ct_order):
    attributes = mpps_dataset(ct_order)
    attributes.PatientID = PatientFactory().mrn

    assert n_create(port, new_uid(), attributes, calling="CT01") == INVALID_ATTRIBUTE_VALUE
    ct_order.refresh_from_db()
    assert ct_order.status == OrderStatus.SCHEDULED
    assert refusal(ct_order).reason == f"PatientID is not the patient of order {ct_order.accession_number}"


def test_without_a_patient_id_the_references_decide(port, ct_order):
    attributes = mpps_dataset(ct_order)
    attributes.PatientID = ""
    assert n_create(port, new_uid(), attributes, calling="CT01") == 0x0000


def test_an_exam_months_ahead_cannot_be_started(port, room, procedure, patient):
    later = OrderFactory(
        room=room,
        procedure=procedure,
        patient=patient,
        scheduled_start=timezone.now().replace(microsecond=0) + timedelta(days=120),
    )

    assert n_create(port, new_uid(), mpps_dataset(later), calling="CT01") == PROCESSING_FAILURE
    later.refresh_from_db()
    assert later.status == OrderStatus.SCHEDULED
    assert refusal(later).reason == f"order {later.accession_number} is not on the worklist now"


def test_only_the_station_that_started_the_exam_may_complete_it(port, ct_order):
    RoomFactory(name="DX 1", ae_title="DX01", modality="DX")
    uid = new_uid()
    assert n_create(port, uid, mpps_dataset(ct_order), calling="CT01") == 0x0000

    assert n_set(port, uid, mpps_set_dataset("COMPLETED"), calling="DX01") == NOT_AUTHORIZED
    assert n_set(port, uid, mpps_set_dataset("DISCONTINUED", "x"), calling="CT01WS") == NOT_AUTHORIZED

    ct_order.refresh_from_db()
    assert ct_order.status == OrderStatus.IN_PROGRESS
    assert PerformedProcedureStep.objects.get(sop_instance_uid=uid).status == MppsStatus.IN_PROGRESS
    refused = MppsRefusal.objects.filter(order=ct_order).order_by("pk")
    assert [(r.operation, r.calling_ae, r.status) for r in refused] == [
        (MppsOperation.N_SET, "DX01", NOT_AUTHORIZED),
        (MppsOperation.N_SET, "CT01WS", NOT_AUTHORIZED),
    ]
    # The station itself still can.
    assert n_set(port, uid, mpps_set_dataset("COMPLETED"), calling="CT01") == 0x0000


def test_the_order_page_shows_the_refused_requests(port, ct_order, mr_order, client, user):
    n_create(port, new_uid(), mpps_dataset(mr_order), calling="CT01")
    client.force_login(user)

    page = client.get(reverse("scheduling:order_detail", args=[mr_order.pk])).content.decode()
    assert 'id="mpps-refusals"' in page
    section = " ".join(page[page.index('id="mpps-refusals"') :].split())
    assert 'CT01 <small class="text-body-secondary">(127.0.0.1)</small>' in section
    assert "<td>N-CREATE</td> <td><code>0x0124</code></td>" in section
    assert f"CT01 is not the station of order {mr_order.accession_number}" in section

    other = client.get(reverse("scheduling:order_detail", args=[ct_order.pk])).content.decode()
    assert 'id="mpps-refusals"' not in other


def test_support_staff_find_the_refusals_in_the_admin(port, ct_order, mr_order, admin_client):
    n_create(port, new_uid(), mpps_dataset(mr_order), calling="CT01")
    page = admin_client.get(reverse("admin:mwl_server_mppsrefusal_changelist"))
    assert page.status_code == 200
    assert "0x0124" in page.content.decode()
    assert admin_client.get(reverse("admin:mwl_server_mppsrefusal_add")).status_code == 403
