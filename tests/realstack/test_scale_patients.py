"""Patient search on PostgreSQL answers from its indexes (migration 0007), with the same results as
the specification in tests/scheduling/test_patient_search_scale.py.

20,000 patients, half Thai, are inserted with SQL and analysed, so the planner sees a table where a
sequential scan is the expensive choice and picks the index only if the query's expression is the
indexed one.
"""

from collections.abc import Iterator

import pytest
from django.db import connection

from scheduling import selectors
from scheduling.models import Patient
from tests.realstack.conftest import rows_for_the_module
from tests.realstack.plans import nodes, plan
from tests.scheduling.test_patient_search_scale import expected_matches

# The patients are made once for the module and the tests only read them (`patients`): rolled-back
# writes would stay in the table and its indexes as dead entries that the next test's index scans count.
pytestmark = [pytest.mark.realstack, pytest.mark.django_db]

PATIENTS = 20_000
FILL = """
INSERT INTO scheduling_patient (mrn, issuer, family_name, given_name, middle_name, name_prefix,
  name_suffix, romanized_family_name, romanized_given_name, romanized_middle_name, birth_date, sex,
  phone, address, allergies, medical_alerts, pregnancy_status, national_id, created_at, updated_at, version)
SELECT 'HN' || lpad(i::text, 7, '0'), 'RIS',
  CASE WHEN i % 2 = 0 THEN tf[1 + i % 13] || tl[1 + i / 13 % 11] ELSE lf[1 + i % 17] END,
  CASE WHEN i % 2 = 0 THEN tg[1 + i / 7 % 19] ELSE lg[1 + i / 7 % 23] END,
  '', '', '',
  CASE WHEN i % 2 = 0 THEN rf[1 + i % 13] || rl[1 + i / 13 % 11] ELSE '' END,
  CASE WHEN i % 2 = 0 THEN rg[1 + i / 7 % 19] ELSE '' END,
  '', date '1940-01-01' + i % 25000, 'F', '', '', '', '', '', '', now(), now(), 1
FROM generate_series(1, {patients}) AS i, (SELECT
  array['ใจ','ศรี','วงศ์','แสง','บุญ','รัตน','สุข','ทอง','ศักดิ์','พงษ์','ทิพย์','น้ำ','เพชร'] AS tf,
  array['ดี','สวัสดิ์','มา','วงศ์','กุล','ชัย','รักษ์','ธรรม','พันธ์','ภักดี','บุตร'] AS tl,
  array['Jai','Sri','Wong','Saeng','Boon','Rattana','Suk','Thong','Sak','Phong','Thip','Nam','Phet'] AS rf,
  array['dee','sawat','ma','wong','kul','chai','rak','tham','phan','phakdee','but'] AS rl,
  array['สมชาย','สมหญิง','ประเสริฐ','มาลี','อนันต์','วิไลวรรณ','สมศักดิ์','น้ำฝน','ทิพย์วรรณ','ณัฐพล',
        'ธนพร','ปิยะ','อรุณี','พรทิพย์','วีระ','สุนีย์','ชัยวัฒน์','นงลักษณ์','จิราพร'] AS tg,
  array['Somchai','Somying','Prasert','Malee','Anan','Wilaiwan','Somsak','Namfon','Thipwan',
        'Natthaphon','Thanaporn','Piya','Arunee','Pornthip','Weera','Sunee','Chaiwat','Nongluck',
        'Jiraporn'] AS rg,
  array['Smith','Johnson','Müller','Brown','Jones','García','Miller','Davis','Lefèvre','Wilson',
        'Anderson','Thomas','Taylor','Moore','Jackson','Martin','Nguyen'] AS lf,
  array['John','Anna','Emily','Michael','Sarah','David','Maria','James','Linda','Robert','Zoë',
        'William','Jennifer','Richard','Susan','Joseph','Jessica','Chloé','Karen','Jürgen','Nancy',
        'Daniel','Lisa'] AS lg) AS names
"""
# Fragments matching a few percent of the patients or less, the searches an index exists for.
THAI_WITH_MARK = "ย์ภ"  # ทิพย์ภักดี: across the Thanthakhat, where pg_trgm alone would cut the word
THAI = "จดี"  # ใจดี
LATIN = "MÜL"
MRN = "HN00123"


def fill_patients() -> list[Patient]:
    with connection.cursor() as cursor:
        cursor.execute(FILL.format(patients=PATIENTS))  # no parameters: the % are modulo
        cursor.execute("ANALYZE scheduling_patient")
    return list(Patient.objects.all())


@pytest.fixture(scope="module")
def patients(django_db_setup, django_db_blocker) -> Iterator[list[Patient]]:
    """Made once for the module (tests.realstack.conftest.rows_for_the_module)."""
    yield from rows_for_the_module(django_db_blocker, fill_patients)


def search_plan(query: str) -> dict:
    """EXPLAIN ANALYZE of the search's own SQL, as the list and the suggestions run it."""
    return plan(selectors.patient_search(query=query).order_by().values("pk"))


def index_scans(node: dict) -> dict[str, int]:
    """{index name: rows it returned} for the bitmap and plain index scans of a plan."""
    return {n["Index Name"]: n["Actual Rows"] for n in nodes(node) if "Index Name" in n}


@pytest.mark.parametrize("query", [THAI_WITH_MARK, THAI, LATIN])
def test_a_name_fragment_is_found_from_the_trigram_index(patients, query):
    scans = index_scans(search_plan(query))

    assert "patient_name_trigram" in scans, scans
    matches = expected_matches(patients, query, fold=str.upper)
    assert 0 < len(matches) < PATIENTS / 20
    # The marks are searched as letters: the index narrows to the matches, not to every name word
    # that starts with the letter after the mark (every ภักดี, ภ... for ย์ภ without the translation).
    assert scans["patient_name_trigram"] <= 2 * len(matches) + 50


def test_an_mrn_or_its_start_is_found_from_the_mrn_index(patients):
    for query in (MRN, "hn0012345"):
        scans = index_scans(search_plan(query))
        assert "patient_mrn_prefix" in scans, (query, scans)
        assert scans["patient_mrn_prefix"] == len(expected_matches(patients, query, fold=str.upper))


@pytest.mark.parametrize(
    "query", [THAI_WITH_MARK, THAI, LATIN, MRN, "hn0012345", "น้ำ", "ใจ", "sm", "ll", "จ", "ย์ภ จดี"]
)
def test_the_results_are_those_of_a_brute_force_filter(patients, query):
    found = set(selectors.patient_search(query=query).values_list("pk", flat=True))

    assert found == expected_matches(patients, query, fold=str.upper)


def test_the_first_suggestions_of_a_common_fragment_are_matches_in_name_order(patients):
    first = selectors.patient_search_first(query="สม", limit=10)

    names = [(p.family_name, p.given_name) for p in first.patients]
    assert len(names) == 10 and names == sorted(names) and first.more
    assert all(p.pk in expected_matches(patients, "สม", fold=str.upper) for p in first.patients)
