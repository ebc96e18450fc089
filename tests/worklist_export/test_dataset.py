from datetime import datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from scheduling.models import CharacterSet, OrderStatus
from tests.factories import OrderFactory, PatientFactory, RoomFactory, ThaiPatientFactory
from tests.worklist_export.oracle import dataset_bytes
from worklist_export.dataset import ExportError, order_dataset, order_source, source_fingerprint

TYPE_1 = [
    "RequestedProcedureID",
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
]
SPS_TYPE_1 = [
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "Modality",
    "ScheduledProcedureStepID",
]


def encoded_roundtrip(ds: Dataset) -> Dataset:
    """What a server reads back: the dataset written in the file's transfer syntax and decoded."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    raw = DicomBytesIO(dataset_bytes(ds))
    back = read_dataset(raw, is_implicit_VR=False, is_little_endian=True)
    back.decode()
    return back


@pytest.fixture
def order(db, room, procedure):
    patient = PatientFactory(
        mrn="HN000042",
        family_name="Jaidee",
        given_name="Somchai",
        middle_name="K",
        birth_date=datetime(1980, 5, 17).date(),
        sex="M",
        weight_kg=Decimal("72.5"),
        allergies="Iodine contrast",
        medical_alerts="Pacemaker",
        pregnancy_status="1",
    )
    start = timezone.make_aware(datetime(2030, 11, 25, 9, 30))
    return OrderFactory(
        accession_number="2511250001",
        patient=patient,
        room=room,
        procedure=procedure,
        scheduled_start=start,
        referring_physician="Dr Malee Srisuk",
        requesting_physician="Wichai",
        priority="STAT",
    )


def test_it_writes_every_known_return_key(order):
    ds = order_dataset(order)
    sps = ds.ScheduledProcedureStepSequence
    assert len(sps) == 1
    sps = sps[0]
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert sps.ScheduledStationAETitle == "CT01"
    assert sps.Modality == "CT"
    assert sps.ScheduledPerformingPhysicianName == ""
    assert sps.ScheduledProcedureStepDescription == "CT Head without contrast"
    [code] = sps.ScheduledProtocolCodeSequence
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "CTHEAD",
        "RIS",
        "CT Head without contrast",
    )
    assert sps.ScheduledProcedureStepID == "2511250001S1"
    assert sps.ScheduledStationName == order.room.station_name
    assert sps.ScheduledProcedureStepLocation == "Building A"
    assert sps.ScheduledProcedureStepStatus == "SCHEDULED"
    assert ds.RequestedProcedureID == "2511250001"
    assert ds.RequestedProcedureDescription == "CT Head without contrast"
    assert ds.RequestedProcedureCodeSequence[0].CodeValue == "CTHEAD"
    assert ds.StudyInstanceUID == order.study_instance_uid
    assert len(ds.ReferencedStudySequence) == 0 and len(ds.ReferencedPatientSequence) == 0
    assert ds.RequestedProcedurePriority == "STAT"
    assert ds.AccessionNumber == "2511250001"
    assert ds.ReferringPhysicianName == "Dr Malee Srisuk"
    assert ds.RequestingPhysician == "Wichai"
    assert ds.AdmissionID == "" and ds.CurrentPatientLocation == ""
    assert ds.PatientName == "Jaidee^Somchai^K"
    assert ds.PatientID == "HN000042"
    assert ds.IssuerOfPatientID == "RIS"
    assert ds.PatientBirthDate == "19800517"
    assert ds.PatientSex == "M"
    assert ds.PatientWeight == Decimal("72.5")
    assert ds.MedicalAlerts == "Pacemaker"
    assert ds.Allergies == "Iodine contrast"
    assert ds.PregnancyStatus == 1
    assert ds["PregnancyStatus"].VR == "US"
    assert ds.SpecialNeeds == "" and ds.PatientState == ""


def test_start_date_and_time_are_separate_local_values(order, settings):
    sps = order_dataset(order).ScheduledProcedureStepSequence[0]
    # 09:30 in Bangkok, stored in UTC as 02:30.
    assert sps.ScheduledProcedureStepStartDate == "20301125"
    assert sps.ScheduledProcedureStepStartTime == "093000"
    assert "ScheduledProcedureStepStartDateTime" not in sps


def test_no_type_1_attribute_is_ever_empty(order):
    ds = order_dataset(order)
    for keyword in TYPE_1:
        assert ds[keyword].value, keyword
    for keyword in SPS_TYPE_1:
        assert ds.ScheduledProcedureStepSequence[0][keyword].value, keyword


def test_empty_optional_values_are_present_but_empty(order):
    patient = order.patient
    patient.sex = ""
    patient.weight_kg = None
    patient.pregnancy_status = ""
    patient.allergies = ""
    order.referring_physician = ""
    ds = order_dataset(order)
    assert ds["PatientSex"].value == ""
    assert ds["PatientWeight"].is_empty
    assert ds["PregnancyStatus"].is_empty
    assert ds["Allergies"].value == ""
    assert ds["ReferringPhysicianName"].is_empty


def test_an_incomplete_code_is_left_out_not_written_empty(order):
    order.procedure.code_value = ""
    ds = order_dataset(order)
    sps = ds.ScheduledProcedureStepSequence[0]
    assert "ScheduledProtocolCodeSequence" not in sps
    assert "RequestedProcedureCodeSequence" not in ds
    assert sps.ScheduledProcedureStepDescription == "CT Head without contrast"


def test_sps_status_follows_the_order(order):
    order.status = OrderStatus.ARRIVED
    assert order_dataset(order).ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "ARRIVED"
    order.status = OrderStatus.IN_PROGRESS
    assert order_dataset(order).ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "STARTED"


def test_a_cancelled_order_is_not_exported(order):
    order.status = OrderStatus.CANCELLED
    with pytest.raises(ExportError):
        order_dataset(order)


def test_trailing_empty_name_components_are_left_out(order):
    order.patient.given_name = ""
    order.patient.middle_name = ""
    assert order_dataset(order).PatientName == "Jaidee"
    order.patient.name_suffix = "Jr"
    assert order_dataset(order).PatientName == "Jaidee^^^^Jr"


@pytest.mark.parametrize(
    ("family", "given"),
    [("ใจดี", "สมชาย"), ("山田", "太郎"), ("Müller-Lüdenscheidt", "José")],
)
def test_utf8_rooms_get_the_name_as_registered(order, family, given):
    order.patient.family_name = family
    order.patient.given_name = given
    order.patient.middle_name = ""
    back = encoded_roundtrip(order_dataset(order))
    assert back.SpecificCharacterSet == "ISO_IR 192"
    assert back.PatientName == f"{family}^{given}"
    assert isinstance(back.PatientName, PersonName)


def test_latin1_room_gets_the_romanised_name(db, procedure):
    room = RoomFactory(worklist_charset=CharacterSet.LATIN1)
    order = OrderFactory(patient=ThaiPatientFactory(), room=room, procedure=procedure)
    back = encoded_roundtrip(order_dataset(order))
    assert back.SpecificCharacterSet == "ISO_IR 100"
    assert back.PatientName == "Jaidee^Somchai"


def test_latin1_room_takes_an_accented_latin_name_as_registered(db, procedure):
    room = RoomFactory(worklist_charset=CharacterSet.LATIN1)
    patient = PatientFactory(family_name="Müller", given_name="José")
    back = encoded_roundtrip(order_dataset(OrderFactory(patient=patient, room=room, procedure=procedure)))
    assert back.PatientName == "Müller^José"


def test_latin1_room_refuses_a_thai_name_without_romanised_name(db, procedure):
    room = RoomFactory(name="X-ray 2", worklist_charset=CharacterSet.LATIN1)
    patient = ThaiPatientFactory(romanized_family_name="", romanized_given_name="")
    with pytest.raises(ExportError) as exc:
        order_dataset(OrderFactory(patient=patient, room=room, procedure=procedure))
    assert "no romanised name" in str(exc.value)
    assert "X-ray 2" in str(exc.value)
    assert exc.value.field == "Romanised patient name"


def test_thai_room_writes_tis620_not_iso2022(db, procedure):
    room = RoomFactory(worklist_charset=CharacterSet.THAI)
    order = OrderFactory(patient=ThaiPatientFactory(), room=room, procedure=procedure)
    ds = order_dataset(order)
    assert ds.SpecificCharacterSet == "ISO_IR 166"
    raw = dataset_bytes(ds)
    assert "ใจดี^สมชาย".encode("tis_620") in raw
    assert b"\x1b" not in raw  # no ISO 2022 escape sequences
    assert encoded_roundtrip(ds).PatientName == "ใจดี^สมชาย"


def test_thai_room_refuses_a_japanese_value_naming_the_field(db, procedure):
    room = RoomFactory(worklist_charset=CharacterSet.THAI)
    patient = PatientFactory(allergies="造影剤")
    with pytest.raises(ExportError) as exc:
        order_dataset(OrderFactory(patient=patient, room=room, procedure=procedure))
    assert str(exc.value).startswith("Allergies contains characters")


def test_a_name_over_64_characters_is_refused_with_a_message(order):
    order.patient.family_name = "A" * 40
    order.patient.given_name = "B" * 30
    with pytest.raises(ExportError, match="Patient name is longer than 64 characters for DICOM"):
        order_dataset(order)


def test_an_over_long_accession_is_refused(order):
    order.accession_number = "1" * 17
    with pytest.raises(ExportError, match="Accession number is longer than 16 characters"):
        order_dataset(order)


def test_an_invalid_ae_title_is_refused(order):
    order.room.ae_title = "ct01"
    with pytest.raises(ExportError, match="Room AE title is not valid for DICOM"):
        order_dataset(order)


def test_a_missing_type_1_value_is_refused(order):
    order.study_instance_uid = ""
    with pytest.raises(ExportError, match="Study instance UID is empty"):
        order_dataset(order)


def test_an_invalid_uid_is_refused(order):
    order.study_instance_uid = "1.02.3"
    with pytest.raises(ExportError, match="Study instance UID is not valid"):
        order_dataset(order)


def test_the_fingerprint_changes_with_anything_written(order):
    before = source_fingerprint(order_source(order))
    assert source_fingerprint(order_source(order)) == before
    order.room.location = "Building B"
    assert source_fingerprint(order_source(order)) != before
