"""The patient's national ID and passport in the worklist item: OtherPatientIDsSequence (0010,1002), one
item per identifier, with its issuer (PS3.3 C.7.1.1 and the Issuer of Patient ID macro). And the name
prefix in the name's prefix component."""

import subprocess

import pytest
from pydicom import dcmread
from pydicom.valuerep import PersonName

from scheduling import services
from scheduling.models import CharacterSet
from tests.factories import PatientFactory, RoomFactory, ThaiPatientFactory
from tests.mwl_server.dicom import require
from worklist_export.dataset import order_dataset, order_source

pytestmark = pytest.mark.django_db

NATIONAL_ID = "1101700203450"


def other_ids(ds) -> list[tuple[str, str, str, str]]:
    return [
        (
            item.PatientID,
            item.get("IssuerOfPatientID", ""),
            item.TypeOfPatientID,
            item.IssuerOfPatientIDQualifiersSequence[0].IdentifierTypeCode,
        )
        for item in ds.get("OtherPatientIDsSequence", [])
    ]


@pytest.fixture
def patient(db):
    return ThaiPatientFactory(mrn="HN555001", name_prefix="นาย", national_id=NATIONAL_ID)


def test_the_national_id_is_an_other_patient_id_issued_by_thailand(order):
    ds = order_dataset(order)

    assert other_ids(ds) == [(NATIONAL_ID, "THA", "TEXT", "NI")]
    # The MRN stays the patient ID the modality matches on.
    assert (ds.PatientID, ds.IssuerOfPatientID) == ("HN555001", "RIS")


def test_a_passport_is_another_item_issued_by_its_country(order):
    services.patient_update(patient=order.patient, passport_country="MMR", passport_number="MA123456")
    order.refresh_from_db()

    assert other_ids(order_dataset(order)) == [
        (NATIONAL_ID, "THA", "TEXT", "NI"),
        ("MA123456", "MMR", "TEXT", "PPN"),
    ]


def test_a_patient_without_other_ids_gets_no_empty_sequence(order):
    order.patient = PatientFactory()

    ds = order_dataset(order)

    # A zero-item sequence is what wlmscpfs and modalities choke on (MWL-NOTES section 1).
    assert "OtherPatientIDsSequence" not in ds
    assert order_source(order)["other_ids"] == []


def test_a_latin1_room_gets_the_ids_too(order):
    order.room = RoomFactory(ae_title="DX01", worklist_charset=CharacterSet.LATIN1)

    assert other_ids(order_dataset(order)) == [(NATIONAL_ID, "THA", "TEXT", "NI")]


def test_a_changed_national_id_changes_the_fingerprint(order):
    before = order_source(order)
    order.patient.national_id = "3500100123457"

    assert order_source(order) != before


def test_the_written_file_holds_the_ids_and_the_prefix(book, worklist_dir):
    order = book()

    ds = dcmread(worklist_dir / f"{order.accession_number}.wl")

    assert other_ids(ds) == [(NATIONAL_ID, "THA", "TEXT", "NI")]
    # PN components family^given^middle^prefix^suffix: the prefix is the 4th.
    name = PersonName(ds.PatientName)
    assert (name.family_name, name.given_name, name.name_prefix) == ("ใจดี", "สมชาย", "นาย")
    assert str(ds.PatientName) == "ใจดี^สมชาย^^นาย"


def test_dcmtk_reads_the_sequence_as_dicom_defines_it(book, worklist_dir):
    dcmdump = require("dcmdump")  # fails, never skips, without dcmtk
    order = book()

    dump = subprocess.run(
        [dcmdump, "+U8", str(worklist_dir / f"{order.accession_number}.wl")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    assert "(0010,1002) SQ" in dump and "OtherPatientIDsSequence" in dump
    assert f"(0010,0020) LO [{NATIONAL_ID}]" in dump
    assert "(0010,0021) LO [THA]" in dump
    assert "(0010,0022) CS [TEXT]" in dump
    assert "(0040,0035) CS [NI]" in dump
    assert "E:" not in dump and "W:" not in dump
