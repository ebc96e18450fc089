"""The worklist C-FIND at hospital size: keys narrowed in SQL (never losing an item the matcher would
answer), answers streamed and bounded, answered with the export's bytes, the item cache kept honest."""

import re
from datetime import timedelta

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from mwl_server import matching, services
from mwl_server.services import OUT_OF_RESOURCES, DicomFailure, worklist_answers, worklist_find
from scheduling.models import CharacterSet
from tests.factories import PatientFactory, RoomFactory, ThaiPatientFactory
from tests.mwl_server.dicom import worklist_query
from worklist_export.dataset import item_dataset, order_body, order_dataset
from worklist_export.services import worklist_orders

pytestmark = pytest.mark.django_db

KELVIN = "\u212a"  # KELVIN SIGN: Python's case-insensitive matching takes it for a K


@pytest.fixture
def ward(book, room, tomorrow_at):
    """Orders for Latin, lower-case and Thai patients on a UTF-8 room and on a Latin-1 room."""
    latin1 = RoomFactory(ae_title="CT09", name="CT 9", worklist_charset=CharacterSet.LATIN1)
    patients = [
        PatientFactory(family_name="Smith", given_name="John"),
        PatientFactory(family_name="smith", given_name="anna"),
        PatientFactory(family_name="Smithers", given_name="Bob"),
        PatientFactory(family_name="Kowalski", given_name="Jan"),
        PatientFactory(family_name="Müller", given_name="Jürgen"),
        ThaiPatientFactory(),
        ThaiPatientFactory(family_name="สมใจ", given_name="มานี", romanized_family_name="Somjai"),
    ]
    orders = []
    for hour, patient in enumerate(patients, start=8):
        for place in (room, latin1):
            if place is latin1 and patient.family_name == "Müller":
                continue  # fits Latin-1 as it is
            start = tomorrow_at(hour) + timedelta(days=0 if place is room else 1)
            orders.append(book(patient=patient, room=place, start=start))
    return orders


def matched_by_the_matcher(query: Dataset) -> set[str]:
    """Accession numbers the Python matcher accepts, over every item of the worklist (no SQL filter)."""
    return {
        order.accession_number
        for order in worklist_orders()
        if matching.dataset_matches(query, order_dataset(order))
    }


NAME_KEYS = [
    "Smith*",
    "smith*",
    "SMITH^JOHN",
    "Smith",
    "Smith^",
    "Smith^J*",
    "Sm?th*",
    "Smit??ohn",  # a ? may stand for the ^ between family and given name
    "*mith*",
    "?mith*",
    f"{KELVIN}owalski*",
    "MÜLLER*",
    "müller^jürgen",
    "Jaidee*",  # the romanised name, on the Latin-1 room
    "jaidee^somchai",
    "ใจ*",
    "ใจดี^สมชาย",
    "ใจดี^สม*",
    "สม*",
    "Somjai^*",
    "Nobody*",
]


@pytest.mark.parametrize("key", NAME_KEYS)
def test_the_sql_name_filter_keeps_every_item_the_matcher_answers(ward, key):
    query = worklist_query(PatientName=key)
    expected = matched_by_the_matcher(query)
    selected = {order.accession_number for order in services._prefiltered(query)}
    assert expected <= selected
    assert sorted(a.AccessionNumber for a in worklist_find(query)) == sorted(expected)


def test_the_sql_name_filter_leaves_other_patients_out(ward):
    selected = services._prefiltered(worklist_query(PatientName="Smith*"))
    assert {o.patient.family_name for o in selected} == {"Smith", "smith", "Smithers"}
    assert not services._prefiltered(worklist_query(PatientName="Nobody*")).exists()


def test_thai_and_romanised_names_are_answered_per_room(ward):
    thai = {str(a.PatientName) for a in worklist_find(worklist_query(PatientName="ใจ*"))}
    romanised = {str(a.PatientName) for a in worklist_find(worklist_query(PatientName="Jaidee*"))}
    assert thai == {"ใจดี^สมชาย"}
    assert romanised == {"Jaidee^Somchai"}


@pytest.mark.parametrize(
    "keys",
    [
        {"PatientID": "HN*"},  # wildcards are not pushed down: still matched
        {"AccessionNumber": ""},
        {"RequestedProcedureID": "*"},
    ],
)
def test_keys_that_do_not_narrow_select_every_order(ward, keys):
    query = worklist_query(**keys)
    assert services._prefiltered(query).count() == len(ward)


def test_exact_ids_are_pushed_into_sql(ward):
    order = ward[3]
    for keys in (
        {"PatientID": order.patient.mrn},
        {"AccessionNumber": order.accession_number},
        {"RequestedProcedureID": order.requested_procedure_id},
        {"StudyInstanceUID": order.study_instance_uid},
    ):
        selected = services._prefiltered(worklist_query(**keys))
        assert order in selected
        assert selected.count() <= 2  # the MRN: the same patient in the other room
    selected = services._prefiltered(worklist_query({"ScheduledProcedureStepID": order.sps_id}))
    assert list(selected) == [order]


def test_case_variants_cover_pythons_case_insensitive_matching():
    # Every code point in one string, searched by `re` itself: a one-character pattern matches one
    # character at a time, so finditer tries it at each code point, in C rather than 1.1 million
    # fullmatch calls per character: the same set, in milliseconds rather than seconds per character.
    every = "".join(map(chr, range(0x110000)))
    for ch in "aksiAKSIzéÉüßæÆøµΣσςเก" + KELVIN + "\u0130\u0131\u017f":
        wanted = {m.group() for m in re.finditer(re.escape(ch), every, re.I)}
        assert ch in wanted and all(len(found) == 1 for found in wanted), ch
        assert wanted <= matching.case_variants(ch), ch


def test_no_character_above_the_scanned_range_has_a_case():
    import _sre

    high = range(matching._TOLOWER_LIMIT, 0x110000)
    assert all(_sre.unicode_tolower(cp) == cp and not _sre.unicode_iscased(cp) for cp in high)


def test_the_family_start_of_a_name_key():
    assert matching.pn_family_start("Smith*") == ("Smith", False)
    assert matching.pn_family_start(" Smith^J* ") == ("Smith", True)
    assert matching.pn_family_start("Smith^") == ("Smith", True)
    assert matching.pn_family_start("Sm?th") == ("Sm", False)
    assert matching.pn_family_start("*mith") is None
    assert matching.pn_family_start("?mith") is None


# --- streaming and bounds --------------------------------------------------------------------------


def test_the_first_answer_comes_before_the_other_items_are_built(book, tomorrow_at, monkeypatch):
    for hour in (8, 9, 10, 11):
        book(start=tomorrow_at(hour))
    built = []
    real_item = services._item
    monkeypatch.setattr(services, "_item", lambda order: built.append(order.pk) or real_item(order))
    answers = worklist_answers(worklist_query())
    first = next(answers)
    assert len(built) == 1
    assert len([first, *answers]) == 4
    assert len(built) == 4


def test_a_malformed_query_is_refused_before_any_answer(book):
    book()
    with pytest.raises(DicomFailure):
        worklist_answers(worklist_query({"ScheduledProcedureStepStartDate": "2026-11"}))


def test_more_answers_than_the_bound_end_in_out_of_resources(book, tomorrow_at, settings):
    for hour in (8, 9, 10):
        book(start=tomorrow_at(hour))
    settings.DICOM_SERVER_MAX_ANSWERS = 2
    answers = worklist_answers(worklist_query())
    received = [next(answers), next(answers)]
    with pytest.raises(DicomFailure) as stopped:
        next(answers)
    assert stopped.value.status == OUT_OF_RESOURCES
    assert "more than 2 items" in stopped.value.message
    assert len(received) == 2


def test_time_spent_between_answers_does_not_count(book, tomorrow_at, settings, monkeypatch):
    for hour in (8, 9):
        book(start=tomorrow_at(hour))
    settings.DICOM_SERVER_FIND_TIME_LIMIT = 5
    clock = [1000.0]
    monkeypatch.setattr(services.time, "thread_time", lambda: clock[0])
    answers = worklist_answers(worklist_query())
    next(answers)
    clock[0] += 60  # the modality took a minute to read the first answer
    assert len(list(answers)) == 1


# --- the answers' bytes -------------------------------------------------------------------------------


def _reference_answer(query: Dataset, order) -> Dataset:
    """The answer as the server built it before: every element decoded, then deep-copied."""
    item = item_dataset(order_body(order))
    for _ in item.iterall():
        pass
    return matching.answer_for(query, item)


@pytest.mark.parametrize("implicit", [True, False])
def test_answers_carry_the_exports_bytes(ward, implicit):
    queries = [
        worklist_query(),
        worklist_query(PatientName="Jaidee*"),
        worklist_query({"Modality": "CT"}, PatientName="ใจ*"),
    ]
    everything = Dataset()
    everything.SpecificCharacterSet = "ISO_IR 192"
    everything.ScheduledProcedureStepSequence = [Dataset()]
    everything.PatientName = everything.PatientWeight = everything.IssuerOfPatientID = None
    everything.AccessionNumber = None
    everything.RequestedProcedureCodeSequence = []
    queries.append(everything)
    compared = 0
    for query in queries:
        by_accession = {o.accession_number: o for o in ward}
        for answer in worklist_answers(query, implicit_vr=implicit, little_endian=True):
            reference = _reference_answer(query, by_accession[str(answer.AccessionNumber)])
            assert encode(answer, implicit, True) == encode(reference, implicit, True)
            compared += 1
    assert compared > len(ward)


def test_big_endian_answers_are_converted_by_pydicom(ward):
    query = worklist_query()
    [answer, *_] = worklist_answers(query, implicit_vr=False, little_endian=False)
    reference = _reference_answer(query, ward[0])
    assert encode(answer, False, False) == encode(reference, False, False)


def test_a_changed_order_is_answered_as_it_is_now(book):
    order = book()
    query = worklist_query(PatientName="")
    [before] = worklist_find(query)
    order.patient.family_name = "Renamed"
    order.patient.save()
    [after] = worklist_find(query)
    assert str(before.PatientName).startswith("Jaidee")
    assert str(after.PatientName).startswith("Renamed")


# --- DT with a UTC offset ---------------------------------------------------------------------------


def test_a_date_time_with_a_negative_utc_offset_is_one_value_not_a_range():
    assert matching.split_range("20261125093000-0500", "DT", "DT") == ("20261125093000-0500",) * 2
    assert matching.split_range("20261125093000-0500-20261126", "DT", "DT") == (
        "20261125093000-0500",
        "20261126",
    )
    assert matching.split_range("-20261125093000-0500", "DT", "DT") == ("", "20261125093000-0500")
    assert matching.split_range("2026-2027", "DT", "DT") == ("2026", "2027")  # -2027 is no UTC offset
    key = Dataset()
    key.ScheduledProcedureStepStartDateTime = "20261125093000-0500"
    matching.validate_query(key)
    assert matching.match_datetime("20261125093000-0500", "20261125093000")
    assert not matching.match_datetime("20261125093000-0500", "20261125093001")


def test_an_ambiguous_or_broken_date_time_range_is_refused():
    with pytest.raises(matching.QueryError, match="is not a range"):
        matching.split_range("2026-2027-2028", "DT", "DT")
    with pytest.raises(matching.QueryError, match="is not a range"):
        matching.split_range("20261125-x", "DT", "DT")


def test_tomorrow_is_not_today(tomorrow_at):
    # The ward's orders are tomorrow's: the date key of a day with none selects nothing in SQL.
    day = tomorrow_at(9).date() + timedelta(days=3)
    query = worklist_query({"ScheduledProcedureStepStartDate": f"{day:%Y%m%d}"})
    assert worklist_find(query) == []
