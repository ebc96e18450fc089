"""The other identifiers of a patient at the front desk: the national ID and a foreigner's passport are
found by the search and the suggestions, shown on the page, and refused at their fields when wrong or
taken. And the name prefixes the form offers."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from scheduling import selectors, services
from scheduling.forms import PatientForm
from scheduling.models import NAME_PREFIXES, Patient
from tests.factories import PatientFactory, ThaiPatientFactory

pytestmark = pytest.mark.django_db

NATIONAL_ID = "1101700203450"
CARD = "1-1017-00203-45-0"


def patient_data(**changes):
    data = {
        "mrn": "HN900001",
        "issuer": "RIS",
        "family_name": "Smith",
        "given_name": "John",
        "birth_date": "1980-05-17",
    }
    return {**data, **changes}


def found(query: str) -> list[int]:
    return list(selectors.patient_search(query=query).values_list("pk", flat=True))


# --- search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", [NATIONAL_ID, CARD, "1 1017 00203 45 0", " 1101700203450 ", "1-1017-00203", "110170"]
)
def test_a_national_id_is_found_typed_as_on_the_card_or_not_whole_or_its_first_six_digits(query):
    holder = ThaiPatientFactory(national_id=NATIONAL_ID)
    PatientFactory(national_id="3500100123457")

    assert found(query) == [holder.pk]


def test_fewer_than_six_digits_do_not_search_the_national_id():
    ThaiPatientFactory(mrn="HN1", national_id=NATIONAL_ID)

    assert found("11017") == []


def test_digits_still_find_an_mrn_that_starts_with_them():
    by_mrn = PatientFactory(mrn="1101700")

    assert found("1101700") == [by_mrn.pk]


def test_a_passport_number_is_found_exactly_in_any_case():
    holder = PatientFactory(passport_country="GBR", passport_number="533380006")
    PatientFactory(passport_country="MMR", passport_number="MA123456")

    assert found("533380006") == [holder.pk]
    assert found("ma123456") != [holder.pk] and len(found("ma123456")) == 1
    assert found("53338") == []


def test_the_patient_list_and_the_suggestions_find_the_national_id(clerk):
    holder = ThaiPatientFactory(mrn="HN777001", national_id=NATIONAL_ID)

    page = clerk.get(reverse("scheduling:patient_list"), {"q": CARD}).content.decode()
    results = clerk.get(reverse("scheduling:patient_autocomplete"), {"q": CARD}).json()["results"]

    assert "HN777001" in page
    assert [r["id"] for r in results] == [holder.pk]
    assert CARD in results[0]["label"]


def test_the_suggestions_find_a_passport(clerk):
    holder = PatientFactory(passport_country="JPN", passport_number="TK1234567")

    results = clerk.get(reverse("scheduling:patient_autocomplete"), {"q": "tk1234567"}).json()["results"]

    assert [r["id"] for r in results] == [holder.pk]
    assert "TK1234567" in results[0]["label"]


# --- the patient page ---------------------------------------------------------------------------


def test_the_page_shows_the_national_id_as_on_the_card_and_the_passport(clerk):
    patient = PatientFactory(national_id=NATIONAL_ID, passport_country="GBR", passport_number="533380006")

    page = clerk.get(patient.get_absolute_url()).content.decode()

    assert f'id="national-id">{CARD}<' in page
    assert "533380006" in page and "(GBR)" in page


# --- the form: errors at their fields -----------------------------------------------------------


def test_a_clerk_registers_a_foreigner_with_a_passport_typed_in_lower_case(clerk):
    response = clerk.post(
        reverse("scheduling:patient_create"),
        patient_data(passport_number="aa 123 4567", passport_country="gbr", preferred_language="en"),
    )

    assert response.status_code == 302
    patient = Patient.objects.get(mrn="HN900001")
    assert (patient.passport_country, patient.passport_number) == ("GBR", "AA1234567")
    assert patient.preferred_language == "en"


def test_a_form_without_the_language_registers_a_thai_speaker(clerk):
    assert clerk.post(reverse("scheduling:patient_create"), patient_data()).status_code == 302

    assert Patient.objects.get(mrn="HN900001").preferred_language == "th"


@pytest.mark.parametrize(
    ("changes", "field", "code_words"),
    [
        ({"passport_number": "AA1234567"}, "passport_country", "country that issued"),
        ({"passport_country": "GBR"}, "passport_number", "passport number"),
        ({"passport_number": "AA-1234567", "passport_country": "GBR"}, "passport_number", "A-Z"),
        ({"passport_number": "AA1234567", "passport_country": "XYZ"}, "passport_country", "three-letter"),
        ({"national_id": "1101700203451"}, "national_id", "check digit is wrong"),
    ],
)
def test_a_wrong_identifier_is_refused_next_to_its_field(clerk, changes, field, code_words):
    response = clerk.post(reverse("scheduling:patient_create"), patient_data(**changes))

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert code_words in errors[field][0]
    # Crispy puts the message under its input, not only in a list on top.
    assert f'id="error_1_id_{field}"' in response.content.decode()
    assert not Patient.objects.exists()


def test_a_taken_passport_is_refused_at_its_field_naming_the_holder():
    holder = PatientFactory(passport_country="GBR", passport_number="AA1234567")

    form = PatientForm(patient_data(mrn="HN2", passport_country="GBR", passport_number="AA1234567"))

    assert not form.is_valid()
    assert list(form.errors) == ["passport_number"]
    assert holder.mrn in form.errors["passport_number"][0]


def test_the_same_passport_number_of_another_country_is_another_passport():
    PatientFactory(passport_country="GBR", passport_number="AA1234567")

    form = PatientForm(patient_data(mrn="HN2", passport_country="USA", passport_number="AA1234567"))

    assert form.is_valid(), form.errors


def test_the_services_refuse_a_taken_passport_and_a_merged_record_holds_none(user):
    old = PatientFactory(passport_country="GBR", passport_number="AA1234567")
    with pytest.raises(ValidationError) as taken:
        services.patient_register(
            mrn="HN-2",
            family_name="Smith",
            birth_date=old.birth_date,
            passport_country="GBR",
            passport_number="AA1234567",
            confirm_duplicate=True,
        )
    assert [e.code for e in taken.value.error_dict["passport_number"]] == ["passport_taken"]

    target = PatientFactory()
    services.patient_merge(source=old, target=target, user=user)
    services.patient_update(patient=target, user=user, passport_country="GBR", passport_number="AA1234567")

    target.refresh_from_db()
    assert target.passport_number == "AA1234567"


# --- name prefixes --------------------------------------------------------------------------------


def test_the_form_offers_the_thai_and_english_prefixes_as_suggestions(clerk):
    page = clerk.get(reverse("scheduling:patient_create")).content.decode()

    assert 'list="id_name_prefix-suggestions"' in page
    datalist = page.split('<datalist id="id_name_prefix-suggestions">', 1)[1].split("</datalist>", 1)[0]
    assert [option.split('"')[1] for option in datalist.split("<option")[1:]] == list(NAME_PREFIXES)
    assert "<script>" not in page  # the suggestions need no script (CSP)


def test_a_prefix_not_on_the_list_is_kept_as_typed(clerk):
    response = clerk.post(reverse("scheduling:patient_create"), patient_data(name_prefix="Dr"))

    assert response.status_code == 302
    assert Patient.objects.get(mrn="HN900001").name_prefix == "Dr"
