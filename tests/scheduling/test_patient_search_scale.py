"""Patient search as the clerk sees it, the same on SQLite as on PostgreSQL's indexes.

tests/realstack/test_scale_patients.py runs the comparison with a brute-force filter on PostgreSQL
too, and checks there that the indexes answer.
"""

import itertools

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from scheduling import admin as scheduling_admin
from scheduling import selectors, views
from scheduling.models import Patient
from tests.factories import PatientFactory, ThaiPatientFactory

pytestmark = pytest.mark.django_db

THAI_NAMES = [
    # family, given, romanised family, romanised given
    ("ใจดี", "สมชาย", "Jaidee", "Somchai"),
    ("ศักดิ์ชัย", "น้ำฝน", "Sakchai", "Namfon"),
    ("ดีใจ", "ทิพย์วรรณ", "Deejai", "Thipwan"),
    ("นำโชค", "สมศักดิ์", "Namchok", "Somsak"),
    ("สม", "ชาย", "Som", "Chai"),
]
LATIN_NAMES = [("Smith", "Anna"), ("Müller", "Jürgen"), ("O'Brien", "Zoë"), ("Muller", "Sean")]


def ascii_fold(text: str) -> str:
    """SQLite's LIKE ignores the case of A-Z only."""
    return "".join(ch.lower() if ch.isascii() else ch for ch in text)


def expected_matches(patients: list[Patient], query: str, fold=ascii_fold) -> set[int]:
    """The specification, by brute force: every term matches the MRN's start or a name part."""

    def term_matches(patient: Patient, term: str) -> bool:
        if fold(patient.mrn).startswith(fold(term)):
            return True
        parts = [getattr(patient, name) for name in selectors.PATIENT_NAME_FIELDS]
        if len(term) >= selectors.PATIENT_FRAGMENT_MIN:
            return any(fold(term) in fold(part) for part in parts)
        words = [word for part in parts for word in part.split(" ")]
        return any(fold(word).startswith(fold(term)) for word in words)

    return {p.pk for p in patients if all(term_matches(p, term) for term in query.split())}


@pytest.fixture
def people() -> dict[str, Patient]:
    found = {}
    for n, (family, given, r_family, r_given) in enumerate(THAI_NAMES):
        found[family] = ThaiPatientFactory(
            mrn=f"HN12{n}",
            family_name=family,
            given_name=given,
            romanized_family_name=r_family,
            romanized_given_name=r_given,
        )
    for n, (family, given) in enumerate(LATIN_NAMES):
        found[family] = PatientFactory(mrn=f"XY{n}99", family_name=family, given_name=given)
    return found


def found(query: str) -> list[str]:
    return [p.family_name for p in selectors.patient_search(query=query)]


def test_a_thai_fragment_with_a_tone_mark_or_thanthakhat_is_found_inside_a_name(people):
    assert found("ศักดิ์") == ["นำโชค", "ศักดิ์ชัย"]  # in the given name สมศักดิ์, the family name ศักดิ์ชัย
    assert found("ดิ์ช") == ["ศักดิ์ชัย"]  # across the Thanthakhat, where pg_trgm would cut the word
    assert found("้ำฝ") == ["ศักดิ์ชัย"]
    assert found("ย์ว") == ["ดีใจ"]


def test_the_marks_count_a_name_without_them_does_not_match(people):
    assert found("น้ำ") == ["ศักดิ์ชัย"]  # น้ำฝน, not นำโชค
    assert found("นำโ") == ["นำโชค"]


def test_latin_letters_ignore_case_but_not_accents(people):
    assert found("SMI") == found("smi") == ["Smith"]
    assert found("mül") == ["Müller"]
    assert found("mul") == ["Muller"]
    assert found("o'b") == ["O'Brien"]


def test_the_mrn_is_found_by_its_start_in_any_case(people):
    assert found("HN121") == ["ศักดิ์ชัย"]
    assert sorted(found("hn12")) == sorted(name for name, *_ in THAI_NAMES)
    assert found("N121") == []  # the middle of an MRN is not a search for it


def test_every_term_must_match(people):
    assert found("som jai") == ["ใจดี"]
    assert found("สม ชาย") == ["สม", "ใจดี"]
    assert found("smith jai") == []


def test_romanised_names_are_searched(people):
    assert found("somch") == ["ใจดี"]
    assert found("thipw") == ["ดีใจ"]


def test_one_or_two_letters_match_the_start_of_a_name_word(people):
    assert found("ใจ") == ["ใจดี"]  # not ดีใจ, where ใจ ends the name
    assert found("ดี") == ["ดีใจ"]
    assert found("sm") == ["Smith"]


def test_a_term_does_not_match_across_two_name_parts(people):
    assert found("สมชาย") == ["ใจดี"]  # not the family name สม with the given name ชาย


def test_like_wildcards_in_a_term_are_plain_characters(people):
    PatientFactory(family_name="A_B%C")

    assert found("a_b") == ["A_B%C"]
    assert found("_b%") == ["A_B%C"]
    assert found("%") == []


def test_the_search_agrees_with_a_brute_force_filter(people):
    patients = list(Patient.objects.all())
    fragments = "ศัก ดิ์ ักดิ์ช น้ ำฝน ใจ ดี ชาย ิพย์ som SAK ll mü hn1 XY o'".split()
    pairs = (f"{a} {b}" for a, b in itertools.combinations(fragments, 2))
    for query in itertools.chain(fragments, pairs):
        got = set(selectors.patient_search(query=query).values_list("pk", flat=True))
        assert got == expected_matches(patients, query), query


def test_the_first_patients_are_exact_while_few_match(people):
    first = selectors.patient_search_first(query="hn12", limit=10)

    assert [p.family_name for p in first.patients] == sorted(name for name, *_ in THAI_NAMES)
    assert first.more is False


def test_with_more_matches_than_the_limit_it_says_so(people):
    first = selectors.patient_search_first(query="hn12", limit=3)

    assert len(first.patients) == 3 and first.more is True
    names = [(p.family_name, p.given_name) for p in first.patients]
    assert names == sorted(names)


def test_without_a_search_the_first_patients_by_name_are_exact(people):
    first = selectors.patient_search_first(limit=2)

    assert [p.family_name for p in first.patients] == ["Muller", "Müller"]
    assert first.more is True


def test_the_patient_list_shows_the_count(clerk, people):
    page = clerk.get(reverse("scheduling:patient_list"), {"q": "hn12"}).content.decode()

    assert "5 patients" in page
    assert "More than" not in page


def test_the_patient_list_says_when_more_match_than_it_shows(clerk, people, monkeypatch):
    monkeypatch.setattr(views, "PATIENT_LIST_LIMIT", 3)

    response = clerk.get(reverse("scheduling:patient_list"), {"q": "hn12"})

    assert "More than 3 patients match" in response.content.decode()
    assert len(response.context["page"].object_list) == 3


def test_the_suggestions_say_when_more_patients_match(clerk, people, monkeypatch):
    url = reverse("scheduling:patient_autocomplete")
    monkeypatch.setattr(views, "AUTOCOMPLETE_LIMIT", 2)

    assert clerk.get(url, {"q": "hn12"}).json()["more"] is True
    assert clerk.get(url, {"q": "hn121"}).json()["more"] is False


def test_the_admin_searches_the_mrn_start_and_names(client, people):
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw-for-tests-1")
    client.force_login(admin)
    url = reverse("admin:scheduling_patient_changelist")

    for query, family in (("HN121", "ศักดิ์ชัย"), ("ดิ์ช", "ศักดิ์ชัย"), ("mül", "Müller")):
        result = client.get(url, {"q": query}).context["cl"].result_list
        assert [p.family_name for p in result] == [family], query


def test_the_admin_says_when_more_patients_match_than_it_lists(client, people, monkeypatch):
    monkeypatch.setattr(scheduling_admin, "PATIENT_SEARCH_LIMIT", 2)
    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw-for-tests-1")
    client.force_login(admin)

    response = client.get(reverse("admin:scheduling_patient_changelist"), {"q": "hn12"})

    names = [(p.family_name, p.given_name) for p in response.context["cl"].result_list]
    assert len(names) == 2 and names == sorted(names)
    assert "More than 2 patients match" in response.content.decode()
