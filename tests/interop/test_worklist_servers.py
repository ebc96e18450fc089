"""A modality's view: orders booked in the RIS, queried from the real worklist servers."""

from datetime import timedelta

import pytest
from pydicom.dataset import Dataset

from scheduling import services
from scheduling.models import CharacterSet
from tests.factories import PatientFactory, RoomFactory, ThaiPatientFactory
from tests.mwl_server import dicom
from tests.mwl_server.dicom import find_answers, worklist_query

pytestmark = pytest.mark.interop


def broad_query(tomorrow) -> Dataset:
    day_after = tomorrow + timedelta(days=1)
    return worklist_query(
        {
            "ScheduledProcedureStepStartDate": f"{tomorrow:%Y%m%d}-{day_after:%Y%m%d}",
            "Modality": "CT",
            "ScheduledStationAETitle": "CT01",
        }
    )


def accessions(answers) -> list[str]:
    return sorted(a.AccessionNumber for a in answers)


def test_broad_query_finds_the_booked_exam(server, book, tomorrow):
    order = book()
    [answer] = server.find(broad_query(tomorrow))
    assert answer.AccessionNumber == order.accession_number
    assert answer.StudyInstanceUID == order.study_instance_uid
    assert answer.PatientID == order.patient.mrn
    sps = answer.ScheduledProcedureStepSequence[0]
    assert sps.ScheduledStationAETitle == "CT01"
    assert sps.Modality == "CT"
    assert sps.ScheduledProcedureStepStartDate == f"{tomorrow:%Y%m%d}"
    assert sps.ScheduledProcedureStepStartTime.startswith("0900")
    assert sps.ScheduledProcedureStepID == order.sps_id
    assert sps.ScheduledProcedureStepDescription == "CT Head without contrast"


def test_broad_query_leaves_out_other_days_and_stations(server, book, tomorrow):
    book()
    assert (
        server.find(worklist_query({"ScheduledProcedureStepStartDate": "20000101", "Modality": "CT"})) == []
    )
    assert server.find(worklist_query({"ScheduledStationAETitle": "MR01"})) == []


def test_patient_query_by_name_wildcard_and_id(server, book, tomorrow_at):
    order = book()
    other = book(
        patient=PatientFactory(family_name="Srisuk", given_name="Malee", mrn="HN777777"),
        start=tomorrow_at(11),
    )
    assert accessions(server.find(worklist_query(PatientName="Jaid*"))) == [order.accession_number]
    assert accessions(server.find(worklist_query(PatientID="HN777777"))) == [other.accession_number]


def test_a_thai_name_arrives_intact(server, book):
    order = book(patient=ThaiPatientFactory(mrn="HN555555"))
    [answer] = server.find(worklist_query(PatientName="ใจ*"))
    assert answer.AccessionNumber == order.accession_number
    assert answer.PatientName == "ใจดี^สมชาย"
    [by_id] = server.find(worklist_query(PatientID="HN555555"))
    assert by_id.PatientName == "ใจดี^สมชาย"


def test_a_rescheduled_order_shows_the_new_time(server, book, user, tomorrow_at, after_commit, tomorrow):
    order = book()
    with after_commit():
        services.order_reschedule(order=order, start=tomorrow_at(15, 15), user=user)
    [answer] = server.find(broad_query(tomorrow))
    assert answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime.startswith("1515")
    assert answer.StudyInstanceUID == order.study_instance_uid


def test_a_cancelled_order_is_gone(server, book, user, after_commit, tomorrow, tomorrow_at):
    order = book()
    kept = book(patient=PatientFactory(), start=tomorrow_at(11))
    with after_commit():
        services.order_cancel(order=order, reason="Patient declined", user=user)
    assert accessions(server.find(broad_query(tomorrow))) == [kept.accession_number]


def test_findscu_sees_the_same_worklist(server, book, tomorrow, tmp_path):
    order = book(patient=ThaiPatientFactory(mrn="HN444444"))
    keys = [
        "SpecificCharacterSet=ISO_IR 192",
        "PatientName=ใจ*",
        "PatientID",
        "AccessionNumber",
        "StudyInstanceUID",
        "ScheduledProcedureStepSequence[0].Modality=CT",
        f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={tomorrow:%Y%m%d}",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
    ]
    [answer] = dicom.findscu(server.port, server.called_ae, keys, tmp_path / "rsp")
    assert answer.AccessionNumber == order.accession_number
    assert answer.PatientName == "ใจดี^สมชาย"
    assert answer.PatientID == "HN444444"
    assert answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime.startswith("0900")


def test_a_thai_station_gets_tis620(server, book, procedure):
    room = RoomFactory(name="CT Thai", ae_title="CTTH", worklist_charset=CharacterSet.THAI)
    order = book(patient=ThaiPatientFactory(mrn="HN333333"), room=room)
    query = worklist_query(PatientID="HN333333")
    del query.SpecificCharacterSet  # an ASCII-only query, as an older modality sends it
    [answer] = server.find(query)
    assert answer.AccessionNumber == order.accession_number
    assert answer.PatientName == "ใจดี^สมชาย"


def test_wlmscpfs_serves_a_called_ae_folder_the_export_created(
    wlmscpfs, book, user, tomorrow_at, after_commit
):
    server = wlmscpfs
    order = book()
    other = RoomFactory(name="CT 2", ae_title="CT02", called_ae_title="CT2_WL")
    with after_commit():
        services.order_reschedule(order=order, start=tomorrow_at(10), room=other, user=user)
    assert (server.folder / "CT2_WL" / "lockfile").is_file()
    [answer] = find_answers(server.port, worklist_query(PatientID=order.patient.mrn), called="CT2_WL")
    assert answer.AccessionNumber == order.accession_number
    assert answer.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT02"
    assert server.find(worklist_query(PatientID=order.patient.mrn)) == []


def findscu(server, folder, *keys: str) -> list[Dataset]:
    """findscu -W with `keys` (-k each), as a DCMTK-based modality asks; the answers it wrote."""
    out = folder / f"rsp{len(list(folder.glob('rsp*')))}"
    patient_keys = ("SpecificCharacterSet=ISO_IR 192", "PatientName", "PatientID", "AccessionNumber")
    return dicom.findscu(server.port, server.called_ae, [*patient_keys, *keys], out)


def broad_keys(first, last, *, modality="CT", station="CT01") -> list[str]:
    """A modality's broad query: a date range, its modality and its own station AE title."""
    return [
        f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={first:%Y%m%d}-{last:%Y%m%d}",
        f"ScheduledProcedureStepSequence[0].Modality={modality}",
        f"ScheduledProcedureStepSequence[0].ScheduledStationAETitle={station}",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
    ]


def test_findscu_broad_date_range_query(server, book, tomorrow_at, tomorrow, tmp_path):
    day_after = tomorrow + timedelta(days=1)
    first = book()
    second = book(patient=PatientFactory(), start=tomorrow_at(10) + timedelta(days=1))
    book(patient=PatientFactory(), start=tomorrow_at(11) + timedelta(days=2))  # after the range
    other_room = RoomFactory(name="CT 2", ae_title="CT02")
    book(patient=PatientFactory(), room=other_room, start=tomorrow_at(9))  # another station

    answers = findscu(server, tmp_path, *broad_keys(tomorrow, day_after))

    assert accessions(answers) == sorted([first.accession_number, second.accession_number])
    by_accession = {a.AccessionNumber: a.ScheduledProcedureStepSequence[0] for a in answers}
    assert by_accession[second.accession_number].ScheduledProcedureStepStartDate == f"{day_after:%Y%m%d}"
    assert by_accession[second.accession_number].ScheduledStationAETitle == "CT01"
    assert findscu(server, tmp_path, *broad_keys(tomorrow, day_after, modality="MR")) == []


def test_findscu_patient_id_query(server, book, tomorrow_at, tmp_path):
    book()
    other = book(
        patient=PatientFactory(family_name="Srisuk", given_name="Malee", mrn="HN777777"),
        start=tomorrow_at(11),
    )

    [answer] = findscu(server, tmp_path, "PatientID=HN777777")

    assert answer.AccessionNumber == other.accession_number
    assert answer.PatientName == "Srisuk^Malee"


def test_findscu_sees_a_rescheduled_order_at_its_new_time(
    server, book, user, tomorrow_at, after_commit, tomorrow, tmp_path
):
    order = book()
    with after_commit():
        services.order_reschedule(order=order, start=tomorrow_at(15, 15) + timedelta(days=1), user=user)

    [answer] = findscu(server, tmp_path, *broad_keys(tomorrow, tomorrow + timedelta(days=1)))

    sps = answer.ScheduledProcedureStepSequence[0]
    assert answer.AccessionNumber == order.accession_number
    assert sps.ScheduledProcedureStepStartDate == f"{tomorrow + timedelta(days=1):%Y%m%d}"
    assert sps.ScheduledProcedureStepStartTime.startswith("1515")


def test_findscu_no_longer_sees_a_cancelled_order(
    server, book, user, after_commit, tomorrow, tomorrow_at, tmp_path
):
    order = book()
    kept = book(patient=PatientFactory(), start=tomorrow_at(11))
    assert len(findscu(server, tmp_path, *broad_keys(tomorrow, tomorrow))) == 2

    with after_commit():
        services.order_cancel(order=order, reason="Patient declined", user=user)

    assert accessions(findscu(server, tmp_path, *broad_keys(tomorrow, tomorrow))) == [kept.accession_number]
    assert findscu(server, tmp_path, f"PatientID={order.patient.mrn}") == []


def test_a_deleted_lockfile_breaks_wlmscpfs_until_reconcile_recreates_it(wlmscpfs, book, tmp_path):
    from django.core.management import call_command

    order = book()
    lockfile = wlmscpfs.folder / wlmscpfs.called_ae / "lockfile"
    lockfile.unlink()
    try:
        with pytest.raises(AssertionError, match="C-FIND ended with status 0x"):
            wlmscpfs.find(worklist_query(PatientID=order.patient.mrn))
        with pytest.raises(SystemExit):
            call_command("export_worklists", "--check")
        call_command("export_worklists")
        [answer] = wlmscpfs.find(worklist_query(PatientID=order.patient.mrn))
        assert answer.AccessionNumber == order.accession_number
    finally:
        lockfile.touch()  # the session's server serves the next tests
