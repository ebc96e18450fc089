"""The patients resource and the hospital's identifiers: the Thai national ID (read, registered,
changed, refused in the model's words at "national_id") and a record merged into another."""

import pytest
from django.core.exceptions import ValidationError

from scheduling.forms import PatientForm
from scheduling.models import Patient
from scheduling.validators import thai_national_id_check_digit, validate_thai_national_id
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients"


def national_id(first12: str) -> str:
    return f"{first12}{thai_national_id_check_digit(first12)}"


VALID = national_id("110170020345")
OTHER = national_id("350010012345")


def wrong_check_digit(value: str) -> str:
    return value[:12] + str((int(value[12]) + 1) % 10)


def detail(patient: Patient) -> str:
    return f"/api/v1/patients/{patient.pk}"


def registration(**overrides) -> dict:
    return {
        "mrn": "HN910001",
        "family_name": "Jaidee",
        "given_name": "Somchai",
        "birth_date": "1970-01-02",
        **overrides,
    }


def validator_message(value: str) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        validate_thai_national_id(value)
    return refused.value.messages


def test_a_patient_is_registered_with_a_national_id_and_reads_with_it(api):
    response = api.post(PATIENTS, registration(national_id=VALID), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["national_id"] == VALID
    patient = Patient.objects.get(mrn="HN910001")
    assert patient.national_id == VALID
    assert api.get(detail(patient)).json()["national_id"] == VALID


def test_a_patient_without_one_reads_with_an_empty_national_id_and_no_merge(api, patient):
    body = api.get(detail(patient)).json()

    assert (body["national_id"], body["merged_into"]) == ("", None)


# A wrong check digit; dashes (13 characters with them); too short.
@pytest.mark.parametrize("value", [wrong_check_digit(VALID), "1-101700203-4", "12345"])
def test_a_national_id_the_model_refuses_is_a_422_at_national_id_in_its_words(api, value):
    response = api.post(PATIENTS, registration(national_id=value), format="json")

    assert response.status_code == 422
    assert response.json()["errors"] == {"national_id": validator_message(value)}
    # As the patient form says it to a clerk.
    form = PatientForm(data={**registration(national_id=value), "issuer": "RIS"})
    assert form.errors["national_id"] == validator_message(value)
    assert not Patient.objects.filter(mrn="HN910001").exists()


def test_a_national_id_another_patient_has_is_refused_at_national_id(api):
    PatientFactory(national_id=VALID)

    response = api.post(PATIENTS, registration(national_id=VALID), format="json")

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["national_id"]
    assert response.json()["codes"] == {"national_id": ["national_id_taken"]}


def test_a_national_id_is_changed_and_refused_when_wrong(api, patient):
    changed = api.patch(detail(patient), {"national_id": OTHER}, format="json")
    refused = api.patch(detail(patient), {"national_id": wrong_check_digit(OTHER)}, format="json")

    assert changed.status_code == 200, changed.json()
    assert changed.json()["national_id"] == OTHER
    assert refused.status_code == 422
    assert list(refused.json()["errors"]) == ["national_id"]
    patient.refresh_from_db()
    assert patient.national_id == OTHER


def test_a_merged_record_names_the_record_it_was_merged_into(api, patient):
    old = PatientFactory()
    Patient.objects.filter(pk=old.pk).update(merged_into=patient)

    assert api.get(detail(old)).json()["merged_into"] == patient.pk
    assert api.get(detail(patient)).json()["merged_into"] is None


def test_merged_into_cannot_be_written(api, patient):
    other = PatientFactory()

    response = api.patch(detail(patient), {"merged_into": other.pk, "phone": "1"}, format="json")

    # Not a field of a change: ignored like any other read-only value, and the record stays its own.
    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.merged_into is None
