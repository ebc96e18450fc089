"""Room.completion on the MPPS side: a manual room records the modality's COMPLETED but keeps the order
open for a person (mwl_server.services), while an MPPS room completes as before."""

import pytest

from mwl_server.models import MppsStatus
from mwl_server.services import mpps_create, mpps_update
from scheduling.models import Completion, OrderStatus
from tests.mwl_server.dicom import mpps_dataset, mpps_set_dataset, new_uid

pytestmark = pytest.mark.django_db


def _perform(order, after_commit):
    uid = new_uid()
    with after_commit():
        mpps_create(sop_instance_uid=uid, attributes=mpps_dataset(order), calling_ae=order.room.ae_title)
    with after_commit():
        return mpps_update(
            sop_instance_uid=uid, attributes=mpps_set_dataset("COMPLETED"), calling_ae=order.room.ae_title
        )


def test_mpps_completed_in_a_manual_room_records_the_step_but_leaves_the_order_in_progress(
    book, room, after_commit, worklist_dir
):
    room.completion = Completion.MANUAL
    room.save(update_fields=["completion"])
    order = book()
    step = _perform(order, after_commit)
    order.refresh_from_db()
    assert step.status == MppsStatus.COMPLETED and step.ended_at is not None
    assert order.status == OrderStatus.IN_PROGRESS
    # Still on the worklist (started), for the technologist to finish by hand.
    assert (worklist_dir / f"{order.accession_number}.wl").exists()


@pytest.mark.parametrize("completion", [Completion.MPPS, Completion.STUDY])
def test_mpps_completed_completes_in_mpps_and_study_rooms(book, room, after_commit, worklist_dir, completion):
    room.completion = completion
    room.save(update_fields=["completion"])
    order = book()
    _perform(order, after_commit)
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert not (worklist_dir / f"{order.accession_number}.wl").exists()
