from datetime import timedelta
from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError
from django.urls import reverse
from pydicom import dcmread

from scheduling import services
from scheduling.models import CharacterSet, Order
from tests.factories import PatientFactory, RoomFactory, ThaiPatientFactory
from worklist_export import services as export_services
from worklist_export.models import WorklistEntry
from worklist_export.tasks import reconcile_worklists, sync_order_worklist


def wl_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.wl"))


def test_booking_writes_the_file_after_commit(worklist_dir, book):
    order = book()
    assert wl_files(worklist_dir) == [f"{order.accession_number}.wl"]
    ds = dcmread(worklist_dir / f"{order.accession_number}.wl")
    assert ds.StudyInstanceUID == order.study_instance_uid
    entry = order.worklist_entry
    assert entry.path == f"{order.accession_number}.wl"
    assert entry.exported_at and not entry.last_error
    assert not entry.is_pending_for(order)


def test_nothing_is_written_before_commit(worklist_dir, user, room, procedure, patient, tomorrow_at):
    # Without running the on-commit callbacks (the transaction of the test never commits).
    services.order_book(patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user)
    assert wl_files(worklist_dir) == []


def test_reschedule_rewrites_the_file(worklist_dir, book, user, tomorrow_at, after_commit):
    order = book()
    with after_commit():
        services.order_reschedule(order=order, start=tomorrow_at(14, 30), user=user)
    [name] = wl_files(worklist_dir)
    sps = dcmread(worklist_dir / name).ScheduledProcedureStepSequence[0]
    assert sps.ScheduledProcedureStepStartTime == "143000"
    assert dcmread(worklist_dir / name).StudyInstanceUID == order.study_instance_uid


@pytest.mark.parametrize("how", ["cancel", "complete"])
def test_cancelled_or_completed_order_disappears_from_worklist(worklist_dir, book, user, after_commit, how):
    order = book()
    with after_commit():
        if how == "cancel":
            services.order_cancel(order=order, reason="Patient unwell", user=user)
        else:
            services.order_arrive(order=order, user=user)
            services.order_start(order=order, user=user)
            services.order_complete(order=order, user=user)
    assert wl_files(worklist_dir) == []
    entry = WorklistEntry.objects.get(order=order)
    assert entry.path == "" and entry.removed_at is not None


def test_arrived_and_started_orders_stay_with_their_status(worklist_dir, book, user, after_commit):
    order = book()
    with after_commit():
        services.order_arrive(order=order, user=user)
    path = worklist_dir / f"{order.accession_number}.wl"
    assert dcmread(path).ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "ARRIVED"
    with after_commit():
        services.order_start(order=order, user=user)
    assert dcmread(path).ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "STARTED"


def test_moving_to_a_room_with_another_called_ae_leaves_no_file_behind(
    wlmscpfs_dir, book, user, procedure, tomorrow_at, after_commit
):
    order = book()
    assert wl_files(wlmscpfs_dir) == [f"WORKLIST/{order.accession_number}.wl"]
    other = RoomFactory(name="CT 2", ae_title="CT02", called_ae_title="CT2_WL")
    with after_commit():
        services.order_reschedule(order=order, start=tomorrow_at(10), room=other, user=user)
    assert wl_files(wlmscpfs_dir) == [f"CT2_WL/{order.accession_number}.wl"]
    assert (wlmscpfs_dir / "CT2_WL" / "lockfile").exists()
    ds = dcmread(wlmscpfs_dir / "CT2_WL" / f"{order.accession_number}.wl")
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT02"


def test_running_the_task_twice_gives_the_same_single_file(worklist_dir, book):
    order = book()
    path = worklist_dir / f"{order.accession_number}.wl"
    mtime = path.stat().st_mtime_ns
    content = path.read_bytes()
    assert sync_order_worklist.apply(args=[order.pk]).get() == "unchanged"
    assert sync_order_worklist.apply(args=[order.pk]).get() == "unchanged"
    assert wl_files(worklist_dir) == [f"{order.accession_number}.wl"]
    assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime


def test_a_patient_rename_rewrites_the_file(worklist_dir, book, patient, after_commit):
    order = book()
    with after_commit():
        services.patient_update(patient=patient, given_name="Somsak")
    assert dcmread(worklist_dir / f"{order.accession_number}.wl").PatientName == "Jaidee^Somsak"


def test_a_data_error_is_recorded_for_the_clerk_and_not_retried(worklist_dir, book, procedure, user):
    latin_room = RoomFactory(name="CT old", ae_title="CTOLD", worklist_charset=CharacterSet.LATIN1)
    thai = ThaiPatientFactory(romanized_family_name="", romanized_given_name="")
    with mock.patch.object(sync_order_worklist, "retry", wraps=sync_order_worklist.retry) as retry:
        order = book(patient=thai, room=latin_room)
    assert not retry.called
    assert wl_files(worklist_dir) == []
    entry = order.worklist_entry
    assert "no romanised name" in entry.last_error
    assert entry.is_pending_for(order)


def test_a_fixed_error_clears_the_message(worklist_dir, book, after_commit):
    latin_room = RoomFactory(name="CT old", ae_title="CTOLD", worklist_charset=CharacterSet.LATIN1)
    thai = ThaiPatientFactory(romanized_family_name="", romanized_given_name="")
    order = book(patient=thai, room=latin_room)
    with after_commit():
        services.patient_update(patient=thai, romanized_family_name="Jaidee", romanized_given_name="Somchai")
    order.worklist_entry.refresh_from_db()
    assert order.worklist_entry.last_error == ""
    assert dcmread(worklist_dir / f"{order.accession_number}.wl").PatientName == "Jaidee^Somchai"


def test_an_oserror_makes_the_task_retry(worklist_dir, book, monkeypatch):
    order = book()
    calls = []

    def failing(**kwargs):
        calls.append(kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("worklist_export.services.worklist_file_write", failing)
    (worklist_dir / f"{order.accession_number}.wl").unlink()
    result = sync_order_worklist.apply(args=[order.pk])
    # Eagerly, Celery runs the retries at once: the first try plus max_retries.
    assert len(calls) == 1 + sync_order_worklist.max_retries
    assert isinstance(result.result, OSError)
    # A database restarting is transient too (tests/realstack/test_faults.py restarts one).
    assert set(sync_order_worklist.autoretry_for) == {OSError, OperationalError, InterfaceError}
    assert sync_order_worklist.retry_backoff and sync_order_worklist.retry_backoff_max == 300


def test_an_order_outside_the_window_gets_no_file(worklist_dir, book, settings, tomorrow_at):
    settings.WORKLIST_WINDOW_DAYS_AHEAD = 0
    order = book()
    assert wl_files(worklist_dir) == []
    assert export_services.order_sync_worklist(order_id=order.pk) == "absent"


def test_the_beat_task_reconciles(worklist_dir, db):
    (worklist_dir / "ghost.wl").write_bytes(b"x")
    counts = reconcile_worklists.apply().get()
    assert counts["orphan"] == 1
    assert wl_files(worklist_dir) == []


def test_other_patients_are_unaffected(worklist_dir, book, tomorrow_at):
    first = book()
    second = book(patient=PatientFactory(), start=tomorrow_at(11))
    assert wl_files(worklist_dir) == sorted([f"{first.accession_number}.wl", f"{second.accession_number}.wl"])


def test_a_broker_down_at_booking_keeps_the_booking_and_logs_a_warning(
    worklist_dir, user, room, procedure, patient, tomorrow_at, client, monkeypatch, caplog, after_commit
):
    from kombu.exceptions import OperationalError as BrokerError

    def refused(*args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(sync_order_worklist, "delay", refused)
    client.force_login(user)
    data = {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "date": tomorrow_at(9).date().isoformat(),
        "slot": "09:00",
        "priority": "ROUTINE",
    }

    with caplog.at_level("WARNING", logger="worklist_export.tasks"), after_commit():
        response = client.post(reverse("scheduling:order_create"), data)

    assert response.status_code == 302
    order = Order.objects.get(patient=patient)
    assert "broker unavailable" in caplog.text and f"order {order.pk}" in caplog.text
    assert "export pending" in client.get(order.get_absolute_url()).content.decode()
    assert wl_files(worklist_dir) == []


def room_admin_data(room, **changes):
    """The Room admin change form as posted, with the opening hours inline left as it is."""
    hours = list(room.opening_hours.order_by("pk"))
    data = {
        "name": room.name,
        "modality": room.modality,
        "ae_title": room.ae_title,
        "station_name": room.station_name,
        "location": room.location,
        "worklist_charset": room.worklist_charset,
        "called_ae_title": room.called_ae_title,
        "completion": room.completion,
        "active": "on",
        "opening_hours-TOTAL_FORMS": str(len(hours)),
        "opening_hours-INITIAL_FORMS": str(len(hours)),
        "opening_hours-MIN_NUM_FORMS": "0",
        "opening_hours-MAX_NUM_FORMS": "1000",
    }
    for i, h in enumerate(hours):
        data.update(
            {
                f"opening_hours-{i}-id": h.pk,
                f"opening_hours-{i}-room": room.pk,
                f"opening_hours-{i}-weekday": h.weekday,
                f"opening_hours-{i}-opens": h.opens.strftime("%H:%M"),
                f"opening_hours-{i}-closes": h.closes.strftime("%H:%M"),
            }
        )
    return {**data, **changes}


def test_a_room_edit_in_the_admin_rewrites_its_orders_items(
    worklist_dir, book, room, admin_client, after_commit
):
    order = book()
    cancelled = book(start=order.scheduled_start + timedelta(hours=1))
    with after_commit():
        services.order_cancel(order=cancelled, reason="Patient unwell", user=order.booked_by)
    url = reverse("admin:scheduling_room_change", args=[room.pk])

    with after_commit():
        response = admin_client.post(
            url, room_admin_data(room, ae_title="CT_NEW", station_name="CTSCAN2", location="Wing B")
        )

    assert response.status_code == 302
    assert wl_files(worklist_dir) == [f"{order.accession_number}.wl"]
    sps = dcmread(worklist_dir / f"{order.accession_number}.wl").ScheduledProcedureStepSequence[0]
    assert (sps.ScheduledStationAETitle, sps.ScheduledStationName, sps.ScheduledProcedureStepLocation) == (
        "CT_NEW",
        "CTSCAN2",
        "Wing B",
    )
    assert not WorklistEntry.objects.get(order=order).last_error


def test_a_new_called_ae_moves_the_rooms_files(wlmscpfs_dir, book, room, admin_client, after_commit):
    order = book()
    assert wl_files(wlmscpfs_dir) == [f"WORKLIST/{order.accession_number}.wl"]
    url = reverse("admin:scheduling_room_change", args=[room.pk])

    with after_commit():
        admin_client.post(url, room_admin_data(room, called_ae_title="CT1_MWL"))

    assert wl_files(wlmscpfs_dir) == [f"CT1_MWL/{order.accession_number}.wl"]


def test_a_room_charset_change_is_exported_or_refused_per_order(worklist_dir, book, room, after_commit):
    order = book(patient=ThaiPatientFactory(romanized_family_name="", romanized_given_name=""))
    room.worklist_charset = CharacterSet.LATIN1
    with after_commit():
        services.room_save(room=room)
    # A Thai name cannot be written in Latin-1: the old item is removed, the clerk told why.
    assert wl_files(worklist_dir) == []
    assert "romanised" in WorklistEntry.objects.get(order=order).last_error


def test_a_procedure_edit_in_the_admin_rewrites_its_orders_items(
    worklist_dir, book, procedure, admin_client, after_commit
):
    order = book()
    url = reverse("admin:scheduling_procedure_change", args=[procedure.pk])
    data = {
        "code_value": "CTHEAD2",
        "coding_scheme": procedure.coding_scheme,
        "code_meaning": "CT Head, new protocol",
        "modality": procedure.modality,
        "default_duration": procedure.default_duration,
        "body_part": procedure.body_part,
        "instructions_th": procedure.instructions_th,
        "instructions_en": procedure.instructions_en,
        "active": "on",
    }

    with after_commit():
        response = admin_client.post(url, data)

    assert response.status_code == 302
    ds = dcmread(worklist_dir / f"{order.accession_number}.wl")
    code = ds.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence[0]
    assert (code.CodeValue, code.CodeMeaning) == ("CTHEAD2", "CT Head, new protocol")
    assert ds.RequestedProcedureDescription == "CT Head, new protocol"


def test_a_room_edit_queues_only_orders_on_the_worklist(
    db, book, room, user, tomorrow_at, settings, after_commit
):
    on_worklist = book()
    later = book(start=tomorrow_at(9) + timedelta(days=40))  # beyond the window: exported when it enters
    with after_commit():
        services.order_cancel(order=book(start=tomorrow_at(11)), reason="Duplicate", user=user)

    with mock.patch("worklist_export.tasks.sync_order_enqueue") as enqueue, after_commit():
        services.room_save(room=room)

    assert [c.args[0] for c in enqueue.call_args_list] == [on_worklist.pk]
    assert later.pk != on_worklist.pk
