"""Patient search by national ID and passport on PostgreSQL answers from the indexes of migration 0016.

The 20,000 patients of test_scale_patients, half of them with a national ID and one in a hundred with a
passport, so a sequential scan is the expensive choice and the planner picks an index only if the
search's SQL is one the index serves.
"""

import pytest
from django.db import connection

from scheduling import selectors
from tests.realstack.plans import nodes, plan
from tests.realstack.test_scale_patients import FILL, PATIENTS

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

# 13 digits from the row number: the index does not care whether the check digit is right.
IDS = """
UPDATE scheduling_patient SET
  national_id = CASE WHEN id % 2 = 0 THEN '1' || lpad((id * 7919 % 1000000000000)::text, 12, '0') ELSE '' END,
  passport_country = CASE WHEN id % 100 = 0 THEN 'GBR' ELSE '' END,
  passport_number = CASE WHEN id % 100 = 0 THEN 'P' || lpad(id::text, 8, '0') ELSE '' END
"""


@pytest.fixture
def patients() -> list[tuple[int, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(FILL.format(patients=PATIENTS))
        cursor.execute(IDS)
        cursor.execute("ANALYZE scheduling_patient")
        cursor.execute("SELECT id, national_id, passport_number FROM scheduling_patient ORDER BY id")
        return cursor.fetchall()


def index_scans(query: str) -> dict[str, int]:
    found = plan(selectors.patient_search(query=query).order_by().values("pk"))
    return {n["Index Name"]: n["Actual Rows"] for n in nodes(found) if "Index Name" in n}


def test_a_whole_national_id_typed_as_on_the_card_is_found_from_its_index(patients):
    pk, national_id, _ = next(row for row in patients if row[1])
    card = f"{national_id[0]}-{national_id[1:5]}-{national_id[5:10]}-{national_id[10:12]}-{national_id[12]}"

    scans = index_scans(card)

    assert scans.get("patient_national_id_prefix") == 1, scans
    assert list(selectors.patient_search(query=card).values_list("pk", flat=True)) == [pk]


def test_the_start_of_a_national_id_is_found_from_the_same_index(patients):
    national_id = next(row[1] for row in patients if row[1])
    prefix = national_id[:8]
    expected = {pk for pk, nid, _ in patients if nid.startswith(prefix)}

    scans = index_scans(prefix)

    assert "patient_national_id_prefix" in scans, scans
    assert scans["patient_national_id_prefix"] == len(expected)
    assert set(selectors.patient_search(query=prefix).values_list("pk", flat=True)) >= expected


def test_a_passport_number_is_found_from_its_index(patients):
    pk, _, passport = next(row for row in patients if row[2])

    scans = index_scans(passport.lower())

    assert scans.get("patient_passport_number") == 1, scans
    assert list(selectors.patient_search(query=passport).values_list("pk", flat=True)) == [pk]
