"""Issue 13.1 at the unit level: wildcard matching takes linear time for any pattern and still means
what PS3.4 C.2.2.2.4 says; a query's size and time are bounded, and a modality is told why it is refused.
"""

from __future__ import annotations

import random
import time

import pytest
from pydicom.dataset import Dataset

from mwl_server.matching import (
    MAX_QUERY_ELEMENTS,
    QueryTooLarge,
    match_text,
    validate_query,
    wildcard_match,
)
from mwl_server.services import OUT_OF_RESOURCES, DicomFailure, worklist_find
from tests.mwl_server.dicom import find, running_server, worklist_query


def reference_match(pattern: str, value: str) -> bool:
    """Dynamic programming over (pattern, value) prefixes: slow and obviously right."""
    reachable = [True] + [False] * len(value)
    for ch in pattern:
        if ch == "*":
            for i in range(1, len(value) + 1):
                reachable[i] = reachable[i] or reachable[i - 1]
        else:
            reachable = [False] + [reachable[i] and (ch == "?" or ch == value[i]) for i in range(len(value))]
    return reachable[-1]


def test_wildcards_match_as_the_reference_does_on_random_patterns():
    rng = random.Random(13)
    for _ in range(3000):
        value = "".join(rng.choice("ab^") for _ in range(rng.randint(0, 9)))
        pattern = "".join(rng.choice("ab^*?") for _ in range(rng.randint(0, 8)))
        assert wildcard_match(pattern, value) is reference_match(pattern, value), (pattern, value)


@pytest.mark.parametrize(
    "pattern, value, expected",
    [
        ("Jai*", "Jaidee^Somchai", True),
        ("*dee^*", "Jaidee^Somchai", True),
        ("*chai", "Jaidee^Somchai", True),
        ("J*e*e^S*i", "Jaidee^Somchai", True),
        ("Jaidee^Somcha?", "Jaidee^Somchai", True),
        ("Jaidee^Somch?", "Jaidee^Somchai", False),
        ("*a*a*a*a*", "aaa", False),
        ("a*a", "a", False),  # the first and the last piece cannot share a letter
        ("**", "", True),
        ("?", "", False),
        ("*.*", "a.b", True),  # regular expression characters are literal
        ("a.b", "axb", False),
        ("(*)", "(x)", True),
    ],
)
def test_wildcard_examples(pattern, value, expected):
    assert wildcard_match(pattern, value) is expected


def test_case_is_ignored_one_character_for_one():
    assert wildcard_match("jaidee^*", "JAIDEE^SOMCHAI", ignore_case=True)
    assert not wildcard_match("jaidee^*", "JAIDEE^SOMCHAI")
    assert wildcard_match("stra?e", "STRAẞE", ignore_case=True)
    assert not wildcard_match("stra?e", "strasse", ignore_case=True)  # ß is one character, ss two


@pytest.mark.parametrize(
    "pattern, value",
    [
        ("*" * 190 + "Z", "Jaidee^Somchai=ใจดี^สมชาย"),
        ("*a" * 95 + "*Z", "a" * 64),
        ("*?" * 95 + "Z", "a" * 64),
        ("*aaaaaaaaaaaaaaaaaaab" * 9, "a" * 64),
        ("?" * 63 + "*Z", "a" * 64),
    ],
    ids=["stars", "star-letter", "star-question", "long pieces", "questions"],
)
def test_the_worst_patterns_take_well_under_a_millisecond(pattern, value):
    began = time.perf_counter()
    for _ in range(100):
        assert not match_text(pattern, value, vr="PN")
    assert (time.perf_counter() - began) / 100 < 0.001


# --- bounds on the query ---------------------------------------------------------------------------


def test_a_modalitys_full_query_is_within_the_bounds():
    validate_query(worklist_query({"Modality": "CT"}, PatientName="Jaidee^*"))


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"PatientName": "J" * 195}, "PatientName: longer than 194 characters"),
        ({"PatientID": "1" * 65}, "PatientID: longer than 64 characters"),
        ({"AccessionNumber": "*" * 17}, "AccessionNumber: longer than 16 characters"),
        ({"StudyInstanceUID": ["2.25." + "1" * 60] * 20}, "StudyInstanceUID: longer than 1024"),
    ],
)
def test_an_over_long_key_is_refused(keys, message):
    with pytest.raises(QueryTooLarge, match=message):
        validate_query(worklist_query(**keys))


def test_too_many_keys_are_refused():
    ds = Dataset()
    for n in range(MAX_QUERY_ELEMENTS + 1):
        ds.add_new(0x00091000 + n, "LO", "")  # private tags: never matching keys, still counted
    with pytest.raises(QueryTooLarge, match=f"more than {MAX_QUERY_ELEMENTS} attributes"):
        validate_query(ds)


def test_too_deep_sequences_are_refused():
    inner = Dataset()
    for _ in range(4):
        outer = Dataset()
        outer.ReferencedStudySequence = [inner]
        inner = outer
    with pytest.raises(QueryTooLarge, match="nested more than 3 deep"):
        validate_query(inner)


@pytest.mark.django_db
def test_a_query_that_takes_too_long_is_given_up(book, settings):
    book()
    settings.DICOM_SERVER_FIND_TIME_LIMIT = -1
    with pytest.raises(DicomFailure) as refused:
        worklist_find(worklist_query())
    assert refused.value.status == OUT_OF_RESOURCES


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "keys, comment",
    [
        ({"PatientName": "*" * 300}, "query too large: PatientName: longer than 194 characters"),
        ({"PatientComments": "x" * 70_000}, "query too large"),
    ],
    ids=["long name", "huge identifier"],
)
def test_the_modality_is_told_its_query_is_too_large(book, settings, keys, comment):
    settings.DICOM_SERVER_KNOWN_CALLERS = ["TESTSCU"]
    book()
    with running_server() as port:
        answers, final = find(port, worklist_query(**keys))
    assert answers == []
    assert (final.Status, final.ErrorComment) == (OUT_OF_RESOURCES, comment)
