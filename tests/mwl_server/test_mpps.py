"""MPPS (N-CREATE / N-SET) moving orders through the services, with datasets built in the test."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse

from mwl_server import services as mpps
from mwl_server.models import MppsStatus, PerformedProcedureStep
from mwl_server.services import DicomFailure, mpps_create, mpps_update
from scheduling import services
from scheduling.models import OrderStatus
from tests.mwl_server.dicom import mpps_dataset, mpps_set_dataset, new_uid

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(book):
    return book()


def started(order, after_commit) -> str:
    uid = new_uid()
    with after_commit():
        mpps_create(sop_instance_uid=uid, attributes=mpps_dataset(order), calling_ae="CT01")
    return uid


def test_n_create_puts_a_scheduled_order_in_progress(order, after_commit):
    uid = started(order, after_commit)
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS
    step = PerformedProcedureStep.objects.get(sop_instance_uid=uid)
    assert (step.order, step.status, step.calling_ae) == (order, MppsStatus.IN_PROGRESS, "CT01")
    assert step.attributes["PerformedProcedureStepID"] == "PPS1"
    assert step.attributes["references"][0]["AccessionNumber"] == order.accession_number


def test_the_changes_are_made_by_the_modality_user_who_cannot_log_in(order, after_commit):
    started(order, after_commit)
    user = get_user_model().objects.get(username="modality")
    assert not user.has_usable_password()


def test_n_create_on_an_arrived_order_starts_it(order, user, after_commit):
    services.order_arrive(order=order, user=user)
    started(order, after_commit)
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS


@pytest.mark.parametrize(
    "keyword", ["AccessionNumber", "StudyInstanceUID", "RequestedProcedureID", "ScheduledProcedureStepID"]
)
def test_n_create_finds_the_order_by_any_one_reference(order, keyword):
    refs = {
        k: ""
        for k in ("AccessionNumber", "StudyInstanceUID", "RequestedProcedureID", "ScheduledProcedureStepID")
    }
    refs.pop(keyword)
    step = mpps_create(calling_ae="CT01", sop_instance_uid=new_uid(), attributes=mpps_dataset(order, **refs))
    assert step.order == order


def test_n_create_keeps_the_worklist_item_with_status_started(order, after_commit, worklist_dir):
    started(order, after_commit)
    from pydicom import dcmread

    item = dcmread(worklist_dir / f"{order.accession_number}.wl")
    assert item.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "STARTED"


@pytest.mark.parametrize(
    "make, status",
    [
        (lambda o: mpps_dataset(None), mpps.PROCESSING_FAILURE),
        (lambda o: mpps_dataset(None, AccessionNumber="NOPE"), mpps.PROCESSING_FAILURE),
        (lambda o: mpps_dataset(o, status="COMPLETED"), mpps.INVALID_ATTRIBUTE_VALUE),
        (lambda o: _without_refs(mpps_dataset(o)), mpps.MISSING_ATTRIBUTE),
    ],
)
def test_bad_n_create_requests_get_failure_statuses(order, make, status):
    with pytest.raises(DicomFailure) as exc:
        mpps_create(calling_ae="CT01", sop_instance_uid=new_uid(), attributes=make(order))
    assert exc.value.status == status
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED
    assert not PerformedProcedureStep.objects.exists()


def _without_refs(ds):
    del ds.ScheduledStepAttributesSequence
    return ds


def test_a_duplicate_n_create_is_refused(order, after_commit):
    uid = started(order, after_commit)
    with pytest.raises(DicomFailure) as exc:
        mpps_create(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_dataset(order))
    assert exc.value.status == mpps.DUPLICATE_SOP_INSTANCE


def test_n_create_for_a_cancelled_order_is_refused(order, user):
    services.order_cancel(order=order, reason="Patient declined", user=user)
    with pytest.raises(DicomFailure) as exc:
        mpps_create(calling_ae="CT01", sop_instance_uid=new_uid(), attributes=mpps_dataset(order))
    assert exc.value.status == mpps.PROCESSING_FAILURE


def test_n_set_completed_completes_the_order_and_removes_its_worklist_item(order, after_commit, worklist_dir):
    uid = started(order, after_commit)
    assert (worklist_dir / f"{order.accession_number}.wl").exists()
    with after_commit():
        step = mpps_update(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_set_dataset("COMPLETED"))
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert step.status == MppsStatus.COMPLETED and step.ended_at is not None
    assert step.attributes["PerformedProcedureStepEndTime"] == "094500"
    assert not (worklist_dir / f"{order.accession_number}.wl").exists()


def test_n_set_discontinued_returns_the_order_to_the_front_desk_with_the_reason(order, after_commit):
    uid = started(order, after_commit)
    with after_commit():
        step = mpps_update(
            sop_instance_uid=uid,
            attributes=mpps_set_dataset("DISCONTINUED", "Patient refused"),
            calling_ae="CT01",
        )
    order.refresh_from_db()
    assert order.status == OrderStatus.ARRIVED
    assert order.discontinue_reason == "Patient refused"
    assert step.discontinue_reason == "Patient refused"
    # The audit trail says who: the modality, as for every other MPPS change.
    assert order.history.latest().history_user.username == "modality"


def test_the_order_page_shows_why_the_modality_gave_the_exam_back(order, after_commit, client, user):
    client.force_login(user)
    url = reverse("scheduling:order_detail", args=[order.pk])
    assert 'id="discontinue-reason"' not in client.get(url).content.decode()

    uid = started(order, after_commit)
    reason = "Patient <claustrophobic>"
    mpps_update(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_set_dataset("DISCONTINUED", reason))

    page = " ".join(client.get(url).content.decode().split())
    assert (
        '<div class="alert alert-warning" role="status" id="discontinue-reason"> '
        "Returned by the modality: Patient &lt;claustrophobic&gt; </div>"
    ) in page


def test_n_set_discontinued_without_a_reason_code(order, after_commit):
    uid = started(order, after_commit)
    mpps_update(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_set_dataset("DISCONTINUED"))
    order.refresh_from_db()
    assert order.discontinue_reason == "Discontinued at modality"


def test_a_discontinued_order_can_be_started_again(order, after_commit):
    uid = started(order, after_commit)
    mpps_update(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_set_dataset("DISCONTINUED"))
    started(order, after_commit)
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS


def test_n_set_in_progress_only_records_the_attributes(order, after_commit):
    uid = started(order, after_commit)
    step = mpps_update(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_set_dataset("IN PROGRESS"))
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS
    assert step.status == MppsStatus.IN_PROGRESS


def test_n_set_for_an_unknown_instance_is_refused():
    with pytest.raises(DicomFailure) as exc:
        mpps_update(calling_ae="CT01", sop_instance_uid=new_uid(), attributes=mpps_set_dataset("COMPLETED"))
    assert exc.value.status == mpps.NO_SUCH_SOP_INSTANCE


def test_n_set_after_completion_is_refused(order, after_commit):
    uid = started(order, after_commit)
    mpps_update(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_set_dataset("COMPLETED"))
    with pytest.raises(DicomFailure) as exc:
        mpps_update(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_set_dataset("DISCONTINUED"))
    assert exc.value.status == mpps.PROCESSING_FAILURE


def test_n_set_with_an_unknown_status_is_refused(order, after_commit):
    uid = started(order, after_commit)
    with pytest.raises(DicomFailure) as exc:
        mpps_update(calling_ae="CT01", sop_instance_uid=uid, attributes=mpps_set_dataset("FINISHED"))
    assert exc.value.status == mpps.INVALID_ATTRIBUTE_VALUE


def test_order_discontinue_refuses_an_order_not_in_progress(order, user):
    with pytest.raises(ValidationError, match="cannot be discontinued"):
        services.order_discontinue(order=order, reason="x", user=user)
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED
