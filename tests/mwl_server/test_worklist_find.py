"""Worklist C-FIND answered from the database: the same items as the .wl files, only the keys asked for."""

from datetime import timedelta

import pytest
from django.utils import timezone
from pydicom import dcmread
from pydicom.dataset import Dataset

from mwl_server.services import IDENTIFIER_DOES_NOT_MATCH, DicomFailure, worklist_find
from scheduling import services
from scheduling.models import CharacterSet
from tests.factories import PatientFactory, RoomFactory, ThaiPatientFactory
from tests.mwl_server.dicom import worklist_query
from worklist_export.dataset import order_dataset

pytestmark = pytest.mark.django_db


def day(offset: int = 1) -> str:
    return f"{timezone.localdate() + timedelta(days=offset):%Y%m%d}"


def accessions(answers) -> list[str]:
    return sorted(a.AccessionNumber for a in answers)


def test_broad_query_finds_the_booked_exam(book):
    order = book()
    [answer] = worklist_find(
        worklist_query(
            {"ScheduledStationAETitle": "CT01", "Modality": "CT", "ScheduledProcedureStepStartDate": day()}
        )
    )
    assert answer.AccessionNumber == order.accession_number
    assert answer.PatientName == order_dataset(order).PatientName
    assert answer.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT01"


def test_the_answer_to_an_all_keys_query_equals_the_worklist_file(book, worklist_dir):
    order = book()
    stored = dcmread(worklist_dir / f"{order.accession_number}.wl")
    query = Dataset()
    for elem in stored:
        if elem.keyword == "SpecificCharacterSet":
            query.SpecificCharacterSet = "ISO_IR 192"
        elif elem.VR == "SQ":
            query.add_new(
                elem.tag, "SQ", [Dataset()] if elem.keyword == "ScheduledProcedureStepSequence" else []
            )
        else:
            query.add_new(elem.tag, elem.VR, None)
    [answer] = worklist_find(query)
    assert answer == Dataset(stored)


def test_other_days_stations_and_modalities_are_left_out(book, tomorrow_at):
    book()
    assert worklist_find(worklist_query({"ScheduledProcedureStepStartDate": day(2)})) == []
    assert worklist_find(worklist_query({"ScheduledStationAETitle": "MR01"})) == []
    assert worklist_find(worklist_query({"Modality": "MR"})) == []


def test_date_and_time_ranges(book, tomorrow_at):
    early = book()
    late = book(patient=PatientFactory(), start=tomorrow_at(14))
    assert accessions(
        worklist_find(worklist_query({"ScheduledProcedureStepStartDate": f"{day(0)}-{day(1)}"}))
    ) == sorted([early.accession_number, late.accession_number])
    assert worklist_find(worklist_query({"ScheduledProcedureStepStartDate": f"-{day(0)}"})) == []
    assert accessions(
        worklist_find(worklist_query({"ScheduledProcedureStepStartDate": f"{day(1)}-"}))
    ) == sorted([early.accession_number, late.accession_number])
    assert accessions(worklist_find(worklist_query({"ScheduledProcedureStepStartTime": "0800-1200"}))) == [
        early.accession_number
    ]
    assert accessions(worklist_find(worklist_query({"ScheduledProcedureStepStartTime": "1200-"}))) == [
        late.accession_number
    ]


def test_patient_queries_by_name_wildcard_and_id(book, tomorrow_at):
    order = book()
    other = book(patient=PatientFactory(family_name="Srisuk", mrn="HN777777"), start=tomorrow_at(11))
    query = worklist_query()
    query.PatientName = "Jaid*"
    assert accessions(worklist_find(query)) == [order.accession_number]
    query = worklist_query()
    query.PatientID = "HN777777"
    assert accessions(worklist_find(query)) == [other.accession_number]


def test_cancelled_and_completed_orders_are_not_on_the_worklist(book, user, tomorrow_at):
    cancelled = book()
    done = book(patient=PatientFactory(), start=tomorrow_at(11))
    kept = book(patient=PatientFactory(), start=tomorrow_at(13))
    services.order_cancel(order=cancelled, reason="Patient declined", user=user)
    for step in (services.order_arrive, services.order_start, services.order_complete):
        step(order=done, user=user)
    assert accessions(worklist_find(worklist_query())) == [kept.accession_number]


def test_a_latin1_station_gets_its_charset_and_the_romanised_name(book, procedure):
    room = RoomFactory(ae_title="CT09", worklist_charset=CharacterSet.LATIN1)
    order = book(room=room, patient=ThaiPatientFactory())
    query = worklist_query({"ScheduledStationAETitle": "CT09"})
    query.PatientName = "Jaidee*"
    [answer] = worklist_find(query)
    assert answer.SpecificCharacterSet == "ISO_IR 100"
    assert answer.PatientName == "Jaidee^Somchai"
    assert answer.AccessionNumber == order.accession_number


def test_a_thai_query_in_tis620_finds_a_utf8_item(book):
    order = book(patient=ThaiPatientFactory())
    query = worklist_query()
    query.SpecificCharacterSet = "ISO_IR 166"
    query.PatientName = "ใจดี*"
    [answer] = worklist_find(query)
    assert answer.AccessionNumber == order.accession_number
    assert answer.SpecificCharacterSet == "ISO_IR 192"
    assert answer.PatientName == "ใจดี^สมชาย"


@pytest.mark.parametrize(
    "keys",
    [{"ScheduledProcedureStepStartDate": "2026-11-25"}, {"ScheduledProcedureStepStartTime": "9am"}],
)
def test_a_malformed_key_is_refused(book, keys):
    book()
    with pytest.raises(DicomFailure) as exc:
        worklist_find(worklist_query(keys))
    assert exc.value.status == IDENTIFIER_DOES_NOT_MATCH
