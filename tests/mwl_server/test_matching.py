"""C-FIND matching (PS3.4 C.2.2.2) on datasets built in the test, no database."""

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from mwl_server.matching import (
    QueryError,
    answer_for,
    dataset_matches,
    match_date,
    match_text,
    match_time,
    validate_query,
)


def item(**overrides) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Jaidee^Somchai"
    ds.PatientID = "HN000001"
    ds.AccessionNumber = "26112500001"
    ds.StudyInstanceUID = "2.25.1234"
    ds.PregnancyStatus = 4
    sps = Dataset()
    sps.ScheduledStationAETitle = "CT01"
    sps.ScheduledProcedureStepStartDate = "20261125"
    sps.ScheduledProcedureStepStartTime = "093000"
    sps.Modality = "CT"
    sps.ScheduledProcedureStepDescription = "CT Head"
    sps.ScheduledProcedureStepID = "26112500001S1"
    ds.ScheduledProcedureStepSequence = [sps]
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def query(sps_keys: dict | None = None, **keys) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    if sps_keys is not None:
        sps = Dataset()
        for keyword, value in sps_keys.items():
            setattr(sps, keyword, value)
        ds.ScheduledProcedureStepSequence = [sps]
    return ds


def over_the_wire(ds: Dataset) -> Dataset:
    """Encode as a peer would (implicit VR, the dataset's character set) and decode as the server does."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)
    fp.seek(0)
    return read_dataset(fp, is_implicit_VR=True, is_little_endian=True)


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("Jaidee^Somchai", "Jaidee^Somchai", True),
        ("jaidee^somchai", "Jaidee^Somchai", True),  # PN ignores case
        ("Jaid*", "Jaidee^Somchai", True),
        ("*Som*", "Jaidee^Somchai", True),
        ("Jaide?^Somchai", "Jaidee^Somchai", True),
        ("Jaide?", "Jaidee^Somchai", False),
        ("Srisuk*", "Jaidee^Somchai", False),
        ("Jaidee", "Jaidee^Somchai", False),
        ("Jaidee^Somchai", "Jaidee^Somchai^^", True),
        ("ใจ*", "ใจดี^สมชาย", True),
        ("Yamada*", "Yamada^Tarou=山田^太郎", True),
        ("山田*", "Yamada^Tarou=山田^太郎", True),
    ],
)
def test_person_name_matching(key, value, expected):
    assert match_text(key, value, vr="PN") is expected


def test_other_strings_match_case_sensitively_with_wildcards():
    assert match_text("CT*", "CT01", vr="AE")
    assert not match_text("ct01", "CT01", vr="AE")
    assert match_text("C?", "CT", vr="CS")
    assert not match_text("C", "CT", vr="CS")
    assert match_text("a.b", "a.b", vr="LO") and not match_text("a.b", "axb", vr="LO")


@pytest.mark.parametrize(
    "key, expected",
    [
        ("20261125", True),
        ("20261124", False),
        ("20261125-", True),
        ("20261126-", False),
        ("-20261125", True),
        ("-20261124", False),
        ("20261124-20261126", True),
        ("20261125-20261125", True),
        ("20261126-20261130", False),
    ],
)
def test_date_matching_single_and_ranges(key, expected):
    assert match_date(key, "20261125") is expected


@pytest.mark.parametrize(
    "key, expected",
    [
        ("093000", True),
        ("0930", True),
        ("0900-1200", True),
        ("0930-", True),
        ("-0930", True),
        ("-0929", False),
        ("1000-1200", False),
        ("0900-0929", False),
        ("093000.000000-093000", True),
    ],
)
def test_time_matching_single_and_ranges(key, expected):
    assert match_time(key, "093000") is expected


def test_time_range_upper_bound_is_exact():
    assert match_time("0900-1200", "120000")
    assert not match_time("0900-1200", "120030")


@pytest.mark.parametrize(
    "keys",
    [
        {"ScheduledProcedureStepStartDate": "2026-11-25"},
        {"ScheduledProcedureStepStartDate": "20261131"},
        {"ScheduledProcedureStepStartDate": "20261126-20261125"},
        {"ScheduledProcedureStepStartDate": "20261125-20261126-20261127"},
        {"ScheduledProcedureStepStartTime": "2500"},
        {"ScheduledProcedureStepStartTime": "09:00-12:00"},
    ],
)
def test_malformed_date_and_time_keys_are_refused(keys):
    with pytest.raises(QueryError):
        validate_query(query(keys))


def test_an_unknown_character_set_is_refused():
    ds = query(PatientName="")
    ds.SpecificCharacterSet = "ISO_IR 999"
    with pytest.raises(QueryError, match="ISO_IR 999"):
        validate_query(ds)


def test_universal_matching_on_empty_keys():
    assert dataset_matches(query({"Modality": "", "ScheduledStationAETitle": ""}, PatientName=""), item())
    assert dataset_matches(query(PatientName="*"), item())


def test_sequence_matching_on_the_sps_item():
    assert dataset_matches(query({"Modality": "CT", "ScheduledStationAETitle": "CT01"}), item())
    assert not dataset_matches(query({"Modality": "MR"}), item())
    assert not dataset_matches(query({"ScheduledStationAETitle": "CT02"}), item())
    assert dataset_matches(query({"ScheduledStationAETitle": "CT*"}), item())
    assert dataset_matches(
        query(
            {"ScheduledProcedureStepStartDate": "20261125-", "ScheduledProcedureStepStartTime": "0900-1000"}
        ),
        item(),
    )
    assert not dataset_matches(query({"ScheduledProcedureStepStartTime": "1000-"}), item())


def test_every_key_must_match():
    assert dataset_matches(query({"Modality": "CT"}, PatientID="HN000001"), item())
    assert not dataset_matches(query({"Modality": "CT"}, PatientID="HN000002"), item())
    assert not dataset_matches(query(PatientID="HN*2"), item())  # LO takes wildcards...
    assert dataset_matches(query(PatientID="HN*01"), item())  # ...matched on the whole value


def test_uid_list_matching():
    assert dataset_matches(query(StudyInstanceUID=["2.25.1", "2.25.1234"]), item())
    assert not dataset_matches(query(StudyInstanceUID="2.25.1"), item())


def test_a_key_the_item_lacks_matches_only_when_universal():
    assert dataset_matches(query(IssuerOfPatientID=""), item())
    assert not dataset_matches(query(IssuerOfPatientID="RIS"), item())


def test_answers_carry_only_the_requested_keys():
    answer = answer_for(
        query({"Modality": "", "ScheduledProcedureStepStartDate": ""}, PatientName=""), item()
    )
    assert set(answer.dir()) == {"SpecificCharacterSet", "PatientName", "ScheduledProcedureStepSequence"}
    assert answer.PatientName == "Jaidee^Somchai"
    [sps] = answer.ScheduledProcedureStepSequence
    assert set(sps.dir()) == {"Modality", "ScheduledProcedureStepStartDate"}


def test_an_empty_sps_item_returns_every_sps_key():
    answer = answer_for(query({}, PatientID=""), item())
    [sps] = answer.ScheduledProcedureStepSequence
    assert sps.ScheduledProcedureStepID == "26112500001S1"
    assert sps.ScheduledProcedureStepDescription == "CT Head"


def test_a_requested_key_the_item_lacks_comes_back_empty():
    answer = answer_for(query(AdmittingDiagnosesDescription=""), item())
    assert "AdmittingDiagnosesDescription" in answer and answer.AdmittingDiagnosesDescription in ("", None)


@pytest.mark.parametrize("charset", ["ISO_IR 192", "ISO_IR 166"])
def test_a_thai_query_matches_in_any_thai_capable_charset(charset):
    sent = query(PatientName="ใจ*")
    sent.SpecificCharacterSet = charset
    received = over_the_wire(sent)
    assert received.PatientName == "ใจ*"
    assert dataset_matches(received, item(PatientName="ใจดี^สมชาย"))
    assert not dataset_matches(received, item())


def test_a_latin1_query_is_decoded_as_latin1():
    sent = query(PatientName="Müller*")
    sent.SpecificCharacterSet = "ISO_IR 100"
    received = over_the_wire(sent)
    assert dataset_matches(received, item(PatientName="Müller^Jürgen"))
    assert not dataset_matches(received, item(PatientName="Muller^Jurgen"))
