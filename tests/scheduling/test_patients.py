from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError

from scheduling import selectors, services
from tests.factories import PatientFactory, ThaiPatientFactory

pytestmark = pytest.mark.django_db


def register(**kw):
    fields = {"mrn": "HN1", "family_name": "ใจดี", "given_name": "สมชาย", "birth_date": date(1970, 1, 2)}
    fields.update(kw)
    return services.patient_register(**fields)


def test_it_registers_a_thai_name():
    patient = register()
    patient.refresh_from_db()
    assert patient.display_name == "สมชาย ใจดี"


def test_it_warns_about_a_duplicate_until_confirmed():
    register()
    with pytest.raises(services.DuplicatePatientWarning, match="HN1"):
        register(mrn="HN2")
    register(mrn="HN2", confirm_duplicate=True)


def test_mrn_is_unique_per_issuer():
    register()
    with pytest.raises(ValidationError) as exc:
        register(given_name="Other", issuer="RIS")
    assert exc.value.message_dict == {"mrn": ["MRN HN1 of RIS is already registered to สมชาย ใจดี."]}
    register(given_name="Other", issuer="OTHERHOSP")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("family_name", "Smith^John", "not allowed in a name"),
        ("given_name", "A=B", "not allowed in a name"),
        ("family_name", "Tab\there", "control characters"),
        ("romanized_family_name", "ใจดี", "Latin letters only"),
        ("birth_date", date.today() + timedelta(days=2), "future"),
        ("family_name", "x" * 65, "at most 64"),
    ],
)
def test_bad_patient_input_is_refused_with_a_message(field, value, message):
    with pytest.raises(ValidationError) as exc:
        register(**{field: value})
    assert message in " ".join(exc.value.message_dict[field])


def test_search_finds_thai_latin_mrn_and_birth_date():
    thai = ThaiPatientFactory(mrn="HN777")
    PatientFactory(family_name="Smith", given_name="Anna", birth_date=date(1990, 3, 4))

    assert list(selectors.patient_search(query="ใจ")) == [thai]
    assert list(selectors.patient_search(query="jaidee")) == [thai]
    assert list(selectors.patient_search(query="HN777")) == [thai]
    assert [p.family_name for p in selectors.patient_search(birth_date=date(1990, 3, 4))] == ["Smith"]
