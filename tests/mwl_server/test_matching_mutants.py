"""C-FIND matching: the cases mutation testing (`make mutate`, docs/MUTATION.md) found no test for.

Each test is a query a modality could send and what it must get back: the items that match, the ones
that do not, or the failure status with an error comment naming the key. No database.
"""

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from mwl_server.matching import (
    MAX_KEY_LENGTH,
    MAX_OTHER_KEY_LENGTH,
    MAX_QUERY_ELEMENTS,
    QueryError,
    QueryTooLarge,
    answer_for,
    dataset_matches,
    match_date,
    match_datetime,
    match_text,
    match_time,
    single_value,
    validate_query,
)


def item(**overrides) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Jaidee^Somchai"
    ds.PatientID = "HN000001"
    ds.StudyInstanceUID = "2.25.1234"
    sps = Dataset()
    sps.ScheduledStationAETitle = "CT01"
    sps.ScheduledProcedureStepStartDate = "20261125"
    sps.ScheduledProcedureStepStartTime = "093000"
    sps.Modality = "CT"
    ds.ScheduledProcedureStepSequence = [sps]
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def query(**keys) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def sps_query(**sps_keys) -> Dataset:
    return query(ScheduledProcedureStepSequence=[sps_item(**sps_keys)])


def sps_item(**keys) -> Dataset:
    sps = Dataset()
    for keyword, value in keys.items():
        setattr(sps, keyword, value)
    return sps


def element(keyword_or_tag, vr: str, value) -> DataElement:
    ds = Dataset()
    ds.add_new(keyword_or_tag, vr, value)
    return next(iter(ds))


def over_the_wire(ds: Dataset) -> Dataset:
    """Encode as the server sends an answer (implicit VR little endian) and decode as the modality does."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, True
    write_dataset(fp, ds)
    fp.seek(0)
    return read_dataset(fp, is_implicit_VR=True, is_little_endian=True)


# --- universal matching --------------------------------------------------------------------------


def test_a_lone_star_matches_an_item_that_lacks_the_attribute():
    assert dataset_matches(query(IssuerOfPatientID="*"), item())


def test_a_key_of_only_empty_values_is_universal():
    # "\" is two empty values: nothing to match on, like an empty key.
    assert dataset_matches(query(StudyInstanceUID="\\"), item())


def test_a_uid_list_none_of_which_is_the_items_does_not_match():
    assert not dataset_matches(query(StudyInstanceUID=["2.25.1", "2.25.2"]), item())


def test_an_empty_sps_item_matches_an_item_without_a_sequence():
    lacking = item()
    del lacking.ScheduledProcedureStepSequence
    assert dataset_matches(query(ScheduledProcedureStepSequence=[Dataset()]), lacking)
    assert dataset_matches(sps_query(Modality=""), lacking)
    assert not dataset_matches(sps_query(Modality="CT"), lacking)


def test_an_empty_value_in_the_item_does_not_match_a_value():
    assert not dataset_matches(query(PatientID="HN000001"), item(PatientID=""))


# --- the values that narrow the database query (mwl_server.services) ----------------------------


@pytest.mark.parametrize(
    "key, expected",
    [
        (element("ScheduledStationAETitle", "AE", "CT01"), "CT01"),
        (element("ScheduledStationAETitle", "AE", " CT01 "), "CT01"),
        (element("Modality", "CS", "CT-MR"), "CT-MR"),  # a dash is a range only on dates and times
        (element("ScheduledProcedureStepStartDate", "DA", "20261125"), "20261125"),
        (element("ScheduledProcedureStepStartTime", "TM", "0930"), "0930"),
        (element("ScheduledProcedureStepStartDateTime", "DT", "20261125093000"), "20261125093000"),
    ],
)
def test_a_plain_value_narrows_the_database_query(key, expected):
    assert single_value(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        None,
        element("ScheduledStationAETitle", "AE", ""),
        element("ScheduledStationAETitle", "AE", "*"),
        element("ScheduledStationAETitle", "AE", "CT*"),
        element("ScheduledStationAETitle", "AE", "CT0?"),
        element("ScheduledStationAETitle", "AE", ["CT01", "CT02"]),
        element("ScheduledProcedureStepStartDate", "DA", "20261125-20261126"),
        element("ScheduledProcedureStepStartTime", "TM", "0900-"),
        element("ScheduledProcedureStepStartDateTime", "DT", "-20261125120000"),
        element("ScheduledProcedureStepSequence", "SQ", [Dataset()]),
        element("ScheduledProcedureStepSequence", "SQ", [sps_item(Modality="CT")]),
    ],
    ids=[
        "absent",
        "empty",
        "star",
        "wildcard",
        "question-mark",
        "list",
        "DA range",
        "TM range",
        "DT range",
        "empty sequence",
        "sequence",
    ],
)
def test_a_wildcard_range_list_or_sequence_does_not_narrow_the_database_query(key):
    assert single_value(key) is None


# --- text ----------------------------------------------------------------------------------------


def test_wildcards_on_a_station_ae_title_are_case_sensitive():
    assert not dataset_matches(sps_query(ScheduledStationAETitle="ct*"), item())
    assert not match_text("ct0?", "CT01", vr="AE")


def test_a_star_in_a_uid_is_taken_literally():
    assert not match_text("2.25.*", "2.25.1234", vr="UI")
    assert not dataset_matches(query(StudyInstanceUID="2.25.*"), item())


def test_trailing_empty_name_components_in_the_key_do_not_matter():
    assert match_text("Jaidee^Somchai^^", "Jaidee^Somchai", vr="PN")
    assert match_text("FOX^ALEX^^", "FOX^ALEX", vr="PN")


def test_a_key_missing_the_last_letter_of_the_name_does_not_match():
    assert not match_text("FOX^ALE", "FOX^ALEX", vr="PN")


def test_a_given_name_wildcard_matches_a_name_stored_with_trailing_empty_components():
    assert match_text("Jaidee^Somchai^*", "Jaidee^Somchai^^", vr="PN")
    assert match_text("Jaidee^*", "Jaidee^", vr="PN")


# --- dates and times -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("2330", "233000", True),  # the last evening slots are valid times
        ("0959", "095900", True),
        ("235960", "235960", True),  # a leap second
        ("09-10", "093000", True),  # an hour-only range runs from 09:00:00 up to 10:00:00
        ("09", "090000", True),
        ("093000", "093000.000", True),  # a key without fraction against a stored fraction
        ("093000-", "093000.5", True),
        ("-093000.5", "093000.25", True),  # fractions compare as fractions of a second
        ("093000.5-", "093000.25", False),
        ("093000.25-093000.5", "093000.3", True),
    ],
)
def test_time_values_and_bounds(key, value, expected):
    assert match_time(key, value) is expected


@pytest.mark.parametrize("key", ["2400", "0960", "093061", "0900-0960"])
def test_out_of_range_hours_minutes_and_seconds_are_refused(key):
    with pytest.raises(QueryError, match="ScheduledProcedureStepStartTime: .* is not a valid time"):
        validate_query(sps_query(ScheduledProcedureStepStartTime=key))


def test_an_item_with_a_malformed_stored_date_or_time_never_matches():
    stored = item()
    stored.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate = "2026-11-25"
    stored.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime = "9:30"
    assert not dataset_matches(sps_query(ScheduledProcedureStepStartDate="20261125-"), stored)
    assert not dataset_matches(sps_query(ScheduledProcedureStepStartTime="-2359"), stored)


@pytest.mark.parametrize(
    "keyword, stored",
    [
        ("ScheduledProcedureStepStartDate", "20261125-"),
        ("ScheduledProcedureStepStartTime", "0930-"),
        ("ScheduledProcedureStepStartDateTime", "20261125093000-"),
    ],
)
def test_a_range_stored_as_the_value_matches_no_key_not_even_the_same_range(keyword, stored):
    # A stored value is one date or time, never a range: the item's value is malformed.
    stored_item = item()
    setattr(stored_item.ScheduledProcedureStepSequence[0], keyword, stored)
    assert not dataset_matches(sps_query(**{keyword: stored}), stored_item)


def test_a_date_key_matches_any_value_of_a_multi_valued_date():
    calibrated = item(DateOfLastCalibration=["20250101", "20261125"], TimeOfLastCalibration=["0800", "1700"])
    assert dataset_matches(query(DateOfLastCalibration="20261125"), calibrated)
    assert dataset_matches(query(TimeOfLastCalibration="1600-1800"), calibrated)
    assert not dataset_matches(query(DateOfLastCalibration="20261124"), calibrated)


def test_a_date_key_with_two_values_is_refused():
    with pytest.raises(
        QueryError, match="ScheduledProcedureStepStartDate: a DA key takes one value or one range"
    ):
        validate_query(sps_query(ScheduledProcedureStepStartDate=["20261125", "20261126"]))


# --- date-times (DT) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("20261125093000", "20261125093000", True),
        ("20261125093000", "20261125093001", False),
        ("2026112509", "2026112509", True),  # truncated values compare padded with zeros
        ("2026-2027", "20261125093000", True),
        ("2027-", "20261125093000", False),
        ("20261125-20261126", "20261125093000", True),
        ("20261125-20261126", "20261126000000", True),
        ("20261125-20261126", "20261126000001", False),
        ("20261125093000-", "20261125092959", False),
        ("-20261125093000", "20261125093000.000001", False),
        ("-20261125093000.5", "20261125093000.25", True),
        ("20261125093000.5-", "20261125093000.25", False),
        ("20261125093000.5", "20261125093000.50", True),  # trailing zeros of a fraction do not count
        ("20261125093000+0700", "20261125093000", True),  # the offset is not compared
        ("20261125093000", "20261125093000-0500", True),
        ("20261125093000", "2026-11-25T09:30", False),  # a malformed stored value never matches
    ],
)
def test_date_time_values_and_ranges(key, value, expected):
    assert match_datetime(key, value) is expected


def test_a_date_time_key_selects_items():
    scheduled = item(ScheduledProcedureStepStartDateTime="20261125093000")
    assert dataset_matches(query(ScheduledProcedureStepStartDateTime="20261125-20261126"), scheduled)
    assert dataset_matches(query(ScheduledProcedureStepStartDateTime="20261125093000"), scheduled)
    assert not dataset_matches(query(ScheduledProcedureStepStartDateTime="20261126-"), scheduled)
    assert not dataset_matches(query(ScheduledProcedureStepStartDateTime="20261125093000"), item())


@pytest.mark.parametrize(
    "key, message",
    [
        ("2026-11-25", "is not a range"),
        ("20261125T0930", "is not a date-time"),
        ("20261126-20261125", "ends before it starts"),
    ],
)
def test_a_malformed_date_time_key_is_refused(key, message):
    with pytest.raises(QueryError, match=f"ScheduledProcedureStepStartDateTime: .*{message}"):
        validate_query(query(ScheduledProcedureStepStartDateTime=key))


# --- what the modality reads in the failure's error comment --------------------------------------


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"ScheduledProcedureStepStartDate": "2026-11-25"}, "'2026-11-25' is not a range"),
        ({"ScheduledProcedureStepStartDate": "2026112"}, "'2026112' is not a date"),
        ({"ScheduledProcedureStepStartDate": "20261131"}, "'20261131' is not a valid date"),
        ({"ScheduledProcedureStepStartDate": "20261131-"}, "'20261131' is not a valid date"),
        ({"ScheduledProcedureStepStartDate": "-20261131"}, "'20261131' is not a valid date"),
        ({"ScheduledProcedureStepStartDate": "20261126-20261125"}, "ends before it starts"),
        ({"ScheduledProcedureStepStartTime": "9am"}, "'9am' is not a time"),
        ({"ScheduledProcedureStepStartTime": "2500"}, "'2500' is not a valid time"),
        ({"ScheduledProcedureStepStartTime": " - "}, "is a range without bounds"),
    ],
)
def test_the_error_comment_names_the_key_and_the_value(keys, message):
    [keyword] = keys
    with pytest.raises(QueryError, match=f"^{keyword}: .*{message}"):
        validate_query(sps_query(**keys))


def test_matching_without_validating_first_still_names_the_key():
    with pytest.raises(QueryError, match="^ScheduledProcedureStepStartDate: '2026-11-25-' is not a range"):
        dataset_matches(sps_query(ScheduledProcedureStepStartDate="2026-11-25-"), item())
    with pytest.raises(QueryError, match="^ScheduledProcedureStepStartDate: '20261131'"):
        dataset_matches(sps_query(ScheduledProcedureStepStartDate="20261131-"), item())
    with pytest.raises(QueryError, match="^ScheduledProcedureStepStartDate: '20261131'"):
        dataset_matches(sps_query(ScheduledProcedureStepStartDate="-20261131"), item())
    with pytest.raises(QueryError, match="^ScheduledProcedureStepStartDate: the range '20261126-20261125'"):
        dataset_matches(sps_query(ScheduledProcedureStepStartDate="20261126-20261125"), item())
    with pytest.raises(QueryError, match="^ScheduledProcedureStepStartTime: '25'"):
        dataset_matches(sps_query(ScheduledProcedureStepStartTime="25-"), item())
    with pytest.raises(QueryError, match="^ScheduledProcedureStepStartDateTime: '2026-11-25-'"):
        dataset_matches(
            query(ScheduledProcedureStepStartDateTime="2026-11-25-"),
            item(ScheduledProcedureStepStartDateTime="20261125093000"),
        )


def test_date_and_time_errors_say_date_or_time_when_no_key_is_named():
    with pytest.raises(QueryError, match="^date: '2026-11-25-'"):
        match_date("2026-11-25-", "20261125")
    with pytest.raises(QueryError, match="^time: '25'"):
        match_time("25-", "093000")
    with pytest.raises(QueryError, match="^date-time: '2026-11-25-'"):
        match_datetime("2026-11-25-", "20261125093000")


def test_a_key_without_a_keyword_is_named_by_its_tag():
    ds = query()
    ds.add_new(0x00409998, "DA", "2026-11-25")
    with pytest.raises(QueryError, match=r"^\(0040,9998\): '2026-11-25'"):
        validate_query(ds)


def test_a_sequence_key_with_two_items_is_refused():
    ds = query(ScheduledProcedureStepSequence=[Dataset(), Dataset()])
    with pytest.raises(
        QueryError, match="^ScheduledProcedureStepSequence: a sequence key holds at most one item"
    ):
        validate_query(ds)


# --- the bounds on a query's size (issue 13): a modality's real query stays within them ------------


def test_a_query_of_exactly_the_most_attributes_is_accepted():
    ds = Dataset()
    for n in range(MAX_QUERY_ELEMENTS):
        ds.add_new(0x00091000 + n, "LO", "")  # private tags: never matching keys, still counted
    validate_query(ds)


def test_a_query_for_the_protocol_code_of_the_sps_is_accepted():
    # Three levels: the query, its SPS item, and the SPS item's Scheduled Protocol Code Sequence item.
    code = Dataset()
    code.CodeValue = ""
    code.CodeMeaning = ""
    validate_query(sps_query(Modality="CT", ScheduledProtocolCodeSequence=[code]))


@pytest.mark.parametrize(
    "keys",
    [
        {"PatientName": "J" * MAX_KEY_LENGTH["PN"]},
        {"PatientID": "1" * MAX_KEY_LENGTH["LO"]},
        {"AccessionNumber": "2" * MAX_KEY_LENGTH["SH"]},
        {"PatientComments": "x" * MAX_OTHER_KEY_LENGTH},
    ],
    ids=["PN", "LO", "SH", "LT"],
)
def test_a_key_of_exactly_the_longest_length_is_accepted(keys):
    validate_query(query(**keys))


def test_an_over_long_key_after_a_sequence_is_refused():
    # (0040,1001) comes after the SPS sequence (0040,0100): the check goes on past a sequence.
    too_long = "3" * (MAX_KEY_LENGTH["SH"] + 1)
    with pytest.raises(QueryTooLarge, match="^RequestedProcedureID: longer than"):
        validate_query(query(ScheduledProcedureStepSequence=[Dataset()], RequestedProcedureID=too_long))


# --- character sets ------------------------------------------------------------------------------


def test_a_query_in_the_default_character_set_is_accepted():
    ds = query(PatientName="Jaidee*")
    del ds.SpecificCharacterSet
    validate_query(ds)
    ds.SpecificCharacterSet = ""
    validate_query(ds)


def test_a_japanese_query_with_code_extensions_is_accepted():
    ds = query(PatientName="Yamada*")
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    validate_query(ds)
    ds.SpecificCharacterSet = ["ISO 2022 IR 6", "ISO 2022 IR 87"]
    validate_query(ds)
    ds.SpecificCharacterSet = ["ISO 2022 IR 6", "ISO 2022 IR 999"]
    with pytest.raises(QueryError, match="ISO 2022 IR 999"):
        validate_query(ds)


# --- answers -------------------------------------------------------------------------------------


def test_a_requested_sequence_the_item_lacks_comes_back_empty():
    answer = over_the_wire(answer_for(query(ReferencedStudySequence=[], PatientID=""), item()))
    assert answer["ReferencedStudySequence"].VR == "SQ" and len(answer.ReferencedStudySequence) == 0
    assert answer.PatientID == "HN000001"


def test_a_requested_key_unknown_to_the_dictionary_comes_back_empty_with_its_vr():
    ds = query()
    ds.add_new(0x00409998, "LO", None)
    answer = answer_for(ds, item())
    assert answer[0x00409998].VR == "LO"
    assert not over_the_wire(answer)[0x00409998].value


def test_editing_an_answer_leaves_the_worklist_item_unchanged():
    stored = item(OtherPatientIDs=["HN1", "HN2"])
    answer = answer_for(query(ScheduledProcedureStepSequence=[Dataset()], OtherPatientIDs=""), stored)

    answer.ScheduledProcedureStepSequence[0].Modality = "MR"
    answer.OtherPatientIDs[0] = "HN9"

    assert stored.ScheduledProcedureStepSequence[0].Modality == "CT"
    assert list(stored.OtherPatientIDs) == ["HN1", "HN2"]
