"""The follower against a real Orthanc: images sent by storescu, studies recorded and matched, orders
completed per room, and the feed survives restarts of either side without losing or repeating a study.

Transactional tests: the follower commits per change, and the worklist export removes a file after the
commit, as it does in production.
"""

from __future__ import annotations

import pytest

from pacs_link import follow
from pacs_link.follow import follow_once
from pacs_link.models import FeedCursor, MatchedBy, Study, StudyState
from pacs_link.orthanc import PacsUnavailable
from scheduling import services as scheduling
from scheduling.models import Completion, OrderEvent, OrderEventKind, OrderStatus
from tests.pacs.conftest import follow_until, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def study_room(room):
    room.completion = Completion.STUDY
    room.save(update_fields=["completion"])
    return room


def _stable(**lookup):
    """A predicate for follow_until: the study matching `lookup` was recorded as stable."""
    return lambda: Study.objects.filter(stable_at__isnull=False, **lookup).exists()


def _completions(order) -> int:
    return OrderEvent.objects.filter(order=order, kind=OrderEventKind.COMPLETED).count()


def test_a_booked_order_is_completed_when_its_study_is_stable_and_its_worklist_file_goes(
    orthanc, dicom_image, book, study_room, worklist_dir
):
    order = book()
    wl = worklist_dir / f"{order.accession_number}.wl"
    assert wl.exists()
    # A modality that writes its own StudyInstanceUID: the accession number matches.
    own_uid = "1.2.826.0.1.3680043.8.498.77"
    orthanc.store(
        dicom_image("CT", accession=order.accession_number, study_uid=own_uid, number=1),
        dicom_image("CT", accession=order.accession_number, study_uid=own_uid, number=2),
    )
    assert follow_until(_stable(accession_number=order.accession_number)) == 1

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert not wl.exists()
    study = Study.objects.get()
    assert (study.state, study.matched_by, study.order) == (StudyState.MATCHED, MatchedBy.ACCESSION, order)
    # dicom_image gives each file its own series: two series of one image each.
    assert (study.series_count, study.instance_count, study.modalities) == (2, 2, "CT")
    assert sorted(s.instance_count for s in study.series.all()) == [1, 1]
    assert study.first_received <= study.last_received <= study.stable_at
    # Every step through the services, by the PACS's system user.
    kinds = list(OrderEvent.objects.filter(order=order).values_list("kind", "actor__username"))
    assert kinds[-3:] == [
        (OrderEventKind.ARRIVED, "pacs"),
        (OrderEventKind.STARTED, "pacs"),
        (OrderEventKind.COMPLETED, "pacs"),
    ]
    # Nobody saw the patient arrive or the exam start: no times for the reports' turnaround to count.
    assert (order.arrived_at, order.started_at) == (None, None) and order.completed_at is not None


def test_a_study_with_an_unknown_accession_waits_on_the_unmatched_list(
    orthanc, dicom_image, book, study_room
):
    order = book()
    orthanc.store(dicom_image("MR", accession="X999"))
    follow_until(_stable(accession_number="X999"))

    study = Study.objects.get(accession_number="X999")
    assert study.state == StudyState.UNMATCHED and study.order is None
    assert "X999" in study.unmatched_reason
    assert list(Study.objects.filter(state=StudyState.UNMATCHED)) == [study]
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_a_study_without_accession_is_matched_by_its_study_uid(orthanc, dicom_image, book, study_room):
    order = book()
    orthanc.store(dicom_image("CT", accession="", study_uid=order.study_instance_uid))
    follow_until(_stable(study_instance_uid=order.study_instance_uid))

    study = Study.objects.get()
    assert (study.state, study.matched_by, study.order) == (StudyState.MATCHED, MatchedBy.STUDY_UID, order)
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED


def test_a_study_of_a_cancelled_order_is_unmatched_with_the_reason(
    orthanc, dicom_image, book, study_room, user
):
    order = scheduling.order_cancel(order=book(), reason="Patient declined", user=user)
    orthanc.store(dicom_image("CT", accession=order.accession_number))
    follow_until(_stable(accession_number=order.accession_number))

    study = Study.objects.get()
    assert study.state == StudyState.UNMATCHED and study.order is None
    assert "cancelled" in study.unmatched_reason and "Patient declined" in study.unmatched_reason


def test_a_study_of_a_requested_order_is_recorded_without_completing_it(
    orthanc, dicom_image, procedure, patient, user, study_room
):
    order = scheduling.order_request(patient=patient, procedure=procedure, user=user)
    orthanc.store(dicom_image("CT", accession=order.accession_number))
    follow_until(_stable(accession_number=order.accession_number))

    study = Study.objects.get()
    assert (study.state, study.order) == (StudyState.MATCHED, order)
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED


def test_an_mpps_room_records_the_study_and_leaves_the_order_open(
    orthanc, dicom_image, book, room, worklist_dir
):
    assert room.completion == Completion.MPPS
    order = book()
    orthanc.store(dicom_image("CT", accession=order.accession_number))
    follow_until(_stable(accession_number=order.accession_number))

    assert Study.objects.get().order == order
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED
    assert (worklist_dir / f"{order.accession_number}.wl").exists()


def test_a_manual_room_records_the_study_and_leaves_the_order_open(orthanc, dicom_image, book, room):
    room.completion = Completion.MANUAL
    room.save(update_fields=["completion"])
    order = book()
    orthanc.store(dicom_image("CT", accession=order.accession_number))
    follow_until(_stable(accession_number=order.accession_number))

    assert Study.objects.get().order == order
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_a_study_stable_twice_is_one_study_with_updated_counts(
    orthanc, dicom_image, book, study_room, tomorrow_at
):
    order = book()
    study_uid, series_uid = order.study_instance_uid, "1.2.826.0.1.3680043.8.498.1"
    orthanc.store(
        dicom_image("CT", accession=order.accession_number, study_uid=study_uid, series_uid=series_uid)
    )
    follow_until(_stable(accession_number=order.accession_number))
    first = Study.objects.get()
    assert (first.series_count, first.instance_count) == (1, 1)

    # More images later: one more in the same series, and a new series.
    orthanc.store(
        dicom_image(
            "CT", accession=order.accession_number, study_uid=study_uid, series_uid=series_uid, number=2
        ),
        dicom_image("MR", accession=order.accession_number, study_uid=study_uid),
    )
    follow_until(lambda: Study.objects.get().instance_count == 3)

    study = Study.objects.get()
    assert study.pk == first.pk
    assert (study.series_count, study.instance_count, study.modalities) == (2, 3, "CT, MR")
    assert sorted(s.instance_count for s in study.series.all()) == [1, 2]
    assert study.first_received == first.first_received
    assert study.stable_at >= first.stable_at
    assert _completions(order) == 1


def test_orthanc_restarted_between_two_studies_misses_neither_and_counts_neither_twice(
    orthanc, dicom_image, book, study_room, tomorrow_at
):
    first, second = book(), book(start=tomorrow_at(10))
    orthanc.store(dicom_image("CT", accession=first.accession_number))
    follow_until(_stable(accession_number=first.accession_number))
    orthanc.restart()
    orthanc.store(dicom_image("CT", accession=second.accession_number))
    follow_until(_stable(accession_number=second.accession_number))
    follow_once()

    assert Study.objects.count() == 2
    for order in (first, second):
        order.refresh_from_db()
        assert order.status == OrderStatus.COMPLETED
        assert _completions(order) == 1


def test_a_study_whose_orthanc_restarted_before_it_was_stable_is_not_missed(
    orthanc, dicom_image, book, study_room
):
    # Orthanc keeps the countdown to StableStudy in memory: restarted within StableAge it never sends
    # one (Orthanc 1.10.1). The follower saw the NewStudy and asks again until the study is stable.
    order = book()
    # Long enough for the follower to see the arrival and Orthanc to stop before the countdown ends.
    orthanc.stable_age = 10
    orthanc.restart()
    orthanc.store(dicom_image("CT", accession=order.accession_number))
    follow_once()
    arriving = Study.objects.get()
    assert arriving.stable_at is None and arriving.order == order
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED  # not before the study is stable

    orthanc.restart()
    follow_until(_stable(accession_number=order.accession_number))
    changes = orthanc.client().changes(0, limit=1000).changes
    assert "StableStudy" not in {c.kind for c in changes}, "Orthanc did send StableStudy: test proves nothing"
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert Study.objects.get().instance_count == 1


def test_a_follower_killed_midway_resumes_without_losing_or_repeating_a_study(
    orthanc, dicom_image, book, study_room, tomorrow_at, monkeypatch
):
    first, second = book(), book(start=tomorrow_at(10))
    orthanc.store(dicom_image("CT", accession=first.accession_number))
    orthanc.store(dicom_image("CT", accession=second.accession_number))
    client = orthanc.client()
    # Both stable in the PACS before the follower runs, so one round has both to apply.
    wait_until(lambda: sum(c.kind == "StableStudy" for c in client.changes(0, 1000).changes) == 2)

    real = follow._stable

    def killed_at_the_second(read, **kwargs):
        if read.accession_number == second.accession_number:
            # After the second study's rows are written, before its transaction commits.
            real(read, **kwargs)
            raise SystemExit("killed")
        return real(read, **kwargs)

    monkeypatch.setattr(follow, "_stable", killed_at_the_second)
    with pytest.raises(SystemExit):
        follow_once()

    stable_seqs = [c.seq for c in client.changes(0, 1000).changes if c.kind == "StableStudy"]
    cursor = FeedCursor.objects.get(name="orthanc")
    assert stable_seqs[0] <= cursor.last_seq < stable_seqs[1]
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == OrderStatus.COMPLETED
    assert second.status == OrderStatus.SCHEDULED
    assert not Study.objects.filter(
        accession_number=second.accession_number, stable_at__isnull=False
    ).exists()

    monkeypatch.setattr(follow, "_stable", real)
    follow_once()
    second.refresh_from_db()
    assert second.status == OrderStatus.COMPLETED
    assert Study.objects.filter(stable_at__isnull=False).count() == 2
    assert (_completions(first), _completions(second)) == (1, 1)
    assert follow_once() == 0


def test_orthanc_down_is_recorded_and_moves_nothing(orthanc, dicom_image, book, study_room):
    order = book()
    orthanc.store(dicom_image("CT", accession=order.accession_number))
    follow_until(_stable(accession_number=order.accession_number))
    # The feed's last change for it (StablePatient) read too, so nothing is left to move the cursor.
    client = orthanc.client()
    wait_until(lambda: "StablePatient" in {c.kind for c in client.changes(0, 1000).changes})
    follow_once()
    before = FeedCursor.objects.get(name="orthanc")
    orthanc.stop()

    with pytest.raises(PacsUnavailable):
        follow_once()
    cursor = FeedCursor.objects.get(name="orthanc")
    assert cursor.last_seq == before.last_seq
    assert cursor.error and "did not answer" in cursor.error
    assert cursor.error_at is not None
    failing_since = cursor.error_at
    with pytest.raises(PacsUnavailable):
        follow_once()
    assert FeedCursor.objects.get(name="orthanc").error_at == failing_since

    orthanc.start()
    assert follow_once() == 0
    cursor = FeedCursor.objects.get(name="orthanc")
    assert (cursor.error, cursor.error_at, cursor.last_seq) == ("", None, before.last_seq)
    assert Study.objects.count() == 1


def test_wrong_credentials_are_recorded_as_unavailable(orthanc, settings):
    settings.ORTHANC_PASSWORD = "wrong"
    with pytest.raises(PacsUnavailable, match="refused our credentials"):
        follow_once()
    assert "ORTHANC_PASSWORD" in FeedCursor.objects.get(name="orthanc").error


def test_a_pacs_whose_database_was_replaced_is_read_again_from_the_start(
    orthanc, dicom_image, book, study_room, tomorrow_at
):
    first, second = book(), book(start=tomorrow_at(10))
    # Two series make a longer feed than the new database's will be.
    study_uid = first.study_instance_uid
    orthanc.store(
        dicom_image("CT", accession=first.accession_number, study_uid=study_uid),
        dicom_image("MR", accession=first.accession_number, study_uid=study_uid),
    )
    follow_until(_stable(accession_number=first.accession_number))
    ours = FeedCursor.objects.get(name="orthanc").last_seq

    orthanc.stop()
    for folder in ("storage", "index"):
        for path in sorted((orthanc.workdir / folder).rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
    orthanc.start()
    orthanc.store(dicom_image("CT", accession=second.accession_number))
    follow_until(_stable(accession_number=second.accession_number))

    cursor = FeedCursor.objects.get(name="orthanc")
    assert "replaced" in cursor.error and cursor.error_at is None
    assert cursor.last_seq < ours
    second.refresh_from_db()
    assert second.status == OrderStatus.COMPLETED
    assert Study.objects.count() == 2
    assert _completions(first) == 1


def test_the_command_and_the_task_apply_what_the_pacs_has(
    orthanc, dicom_image, book, study_room, tomorrow_at
):
    from io import StringIO

    from django.core.management import call_command

    from pacs_link.tasks import follow as follow_task

    client = orthanc.client()
    first, second = book(), book(start=tomorrow_at(10))

    def stable_in_pacs(count):
        return lambda: sum(c.kind == "StableStudy" for c in client.changes(0, 1000).changes) == count

    orthanc.store(dicom_image("CT", accession=first.accession_number))
    wait_until(stable_in_pacs(1))
    out = StringIO()
    call_command("follow_pacs", stdout=out)
    assert out.getvalue().strip() == "1 studies applied."

    orthanc.store(dicom_image("CT", accession=second.accession_number))
    wait_until(stable_in_pacs(2))
    assert follow_task.delay().get() == 1
    for order in (first, second):
        order.refresh_from_db()
        assert order.status == OrderStatus.COMPLETED
