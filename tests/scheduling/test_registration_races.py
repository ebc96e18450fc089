"""A registration that loses a race for its MRN is told so at the field, never with a server error.

The races themselves run on PostgreSQL in tests/realstack/test_registration_races.py; here the losing
side is staged: the other clerk's registration lands after this one's check.
"""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduling import services
from scheduling.models import Patient
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

TAKEN = "MRN HN1 of RIS is already registered to Anna Smith."


def register(**fields) -> Patient:
    return services.patient_register(
        **{
            "mrn": "HN1",
            "family_name": "Jaidee",
            "given_name": "Somchai",
            "birth_date": "1980-05-17",
            **fields,
        }
    )


def test_the_service_refuses_a_taken_mrn_at_the_field_in_the_forms_words():
    PatientFactory(mrn="HN1", issuer="RIS", family_name="Smith", given_name="Anna")

    with pytest.raises(ValidationError) as refused:
        register()

    assert refused.value.message_dict == {"mrn": [TAKEN]}


def test_an_mrn_taken_after_the_check_is_refused_at_the_field_not_with_an_integrity_error(monkeypatch):
    PatientFactory(mrn="HN1", issuer="RIS", family_name="Smith", given_name="Anna")
    mrn_taken = services.mrn_taken
    calls = []

    def not_yet_committed(**kwargs):
        # The first look misses the other registration, as it does while that one is not yet committed;
        # the database's unique constraint then refuses the insert.
        calls.append(kwargs)
        return None if len(calls) == 1 else mrn_taken(**kwargs)

    monkeypatch.setattr(services, "mrn_taken", not_yet_committed)
    with pytest.raises(ValidationError) as refused:
        register()

    assert refused.value.message_dict == {"mrn": [TAKEN]}
    assert len(calls) == 2
    assert Patient.objects.count() == 1


def test_an_mrn_taken_while_the_clerk_was_typing_is_shown_at_the_field(clerk, monkeypatch):
    patient_register = services.patient_register

    def another_clerk_first(**kwargs):
        PatientFactory(mrn="HN1", issuer="RIS", family_name="Smith", given_name="Anna")
        return patient_register(**kwargs)

    monkeypatch.setattr(services, "patient_register", another_clerk_first)
    response = clerk.post(
        reverse("scheduling:patient_create"),
        {"mrn": "HN1", "issuer": "RIS", "family_name": "Jaidee", "birth_date": "1980-05-17"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["mrn"] == [TAKEN]
    assert Patient.objects.count() == 1


def test_an_update_to_a_taken_mrn_is_refused_at_the_field(patient):
    PatientFactory(mrn="HN1", issuer="RIS", family_name="Smith", given_name="Anna")

    with pytest.raises(ValidationError) as refused:
        services.patient_update(patient=patient, mrn="HN1")

    assert refused.value.message_dict == {"mrn": [TAKEN]}


def test_the_duplicate_check_runs_in_the_transaction_that_saves():
    # On SQLite that transaction holds the write lock from its start (transaction_mode IMMEDIATE), so
    # a registration of the same person at the same moment waits, then sees this one.
    with CaptureQueriesContext(connection) as captured:
        register()

    sql = [query["sql"] for query in captured.captured_queries]
    begin = next(i for i, q in enumerate(sql) if q.startswith("SAVEPOINT"))
    duplicates = next(i for i, q in enumerate(sql) if "LIKE" in q and "WHERE" in q)  # family_name__iexact
    insert = next(i for i, q in enumerate(sql) if q.startswith('INSERT INTO "scheduling_patient"'))
    assert begin < duplicates < insert
