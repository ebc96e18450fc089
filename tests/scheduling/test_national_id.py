"""The Thai national ID on the patient record: checked (13 digits, check digit), unique among the
records in use, on the patient form and page."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling import services
from scheduling.forms import PatientForm
from scheduling.models import Patient
from scheduling.validators import thai_national_id_check_digit, validate_thai_national_id
from tests.factories import PatientFactory

VALID = "3500100123457"
OTHER_VALID = "1101700203450"

twelve_digits = st.text(alphabet="0123456789", min_size=12, max_size=12)


def with_check_digit(first12: str) -> str:
    return first12 + str(thai_national_id_check_digit(first12))


def refused(value: str) -> bool:
    try:
        validate_thai_national_id(value)
    except ValidationError:
        return True
    return False


# --- the check digit, over all IDs ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(first12=twelve_digits)
def test_every_valid_id_is_accepted(first12):
    validate_thai_national_id(with_check_digit(first12))


@settings(max_examples=300, deadline=None)
@given(first12=twelve_digits, position=st.integers(0, 12), digit=st.sampled_from("0123456789"))
def test_a_single_digit_changed_is_refused_where_the_check_digit_can_see_it(first12, position, digit):
    valid = with_check_digit(first12)
    if digit == valid[position]:
        digit = str((int(digit) + 1) % 10)
    changed = valid[:position] + digit + valid[position + 1 :]

    # The Thai scheme (weights 13..2, mod 11, then mod 10) has two blind spots: the 3rd digit weighs 11,
    # which is 0 mod 11, so no change to it shows; and sums of residue 0 and 10 both give check digit 1.
    # Everywhere else a changed digit changes the residue, and with it the check digit.
    blind = position == 2 or valid[12] == "1"
    if not blind:
        assert refused(changed), (valid, changed)
    if position == 12:
        assert refused(changed), (valid, changed)


def test_the_schemes_blind_spots_are_real():
    # Pinned so nobody "fixes" the property above into a false one: these pass the check digit.
    valid = with_check_digit("350010012345")
    assert not refused(valid[:2] + str((int(valid[2]) + 1) % 10) + valid[3:])


@pytest.mark.parametrize("value", ["", "350010012345", "35001001234578", "3500-10012345", "350010012345x"])
def test_anything_but_thirteen_digits_is_refused(value):
    assert refused(value)


# --- uniqueness in the services ---------------------------------------------------------------------


@pytest.mark.django_db
def test_registering_a_taken_national_id_is_refused_at_the_field():
    holder = PatientFactory(national_id=VALID)

    with pytest.raises(ValidationError) as taken:
        services.patient_register(
            mrn="HN-2", family_name="Jaidee", birth_date=holder.birth_date, national_id=VALID
        )

    (error,) = taken.value.error_dict["national_id"]
    assert error.code == "national_id_taken"
    assert holder.mrn in error.message % error.params
    assert Patient.objects.count() == 1


@pytest.mark.django_db
def test_updating_to_a_taken_national_id_is_refused_and_keeping_ones_own_is_not(user):
    PatientFactory(national_id=VALID)
    patient = PatientFactory(national_id=OTHER_VALID)

    with pytest.raises(ValidationError) as taken:
        services.patient_update(patient=patient, user=user, national_id=VALID)
    services.patient_update(patient=patient, user=user, national_id=OTHER_VALID, phone="081")

    assert list(taken.value.error_dict) == ["national_id"]
    patient.refresh_from_db()
    assert (patient.national_id, patient.phone) == (OTHER_VALID, "081")


@pytest.mark.django_db
def test_patients_without_a_national_id_never_clash():
    services.patient_register(mrn="HN-1", family_name="A", birth_date=PatientFactory.birth_date)
    services.patient_register(mrn="HN-2", family_name="B", birth_date=PatientFactory.birth_date)

    assert Patient.objects.filter(national_id="").count() == 2


@pytest.mark.django_db
def test_a_wrong_check_digit_is_refused_by_the_service():
    with pytest.raises(ValidationError) as wrong:
        services.patient_register(
            mrn="HN-3", family_name="A", birth_date=PatientFactory.birth_date, national_id="3500100123458"
        )

    assert [e.code for e in wrong.value.error_dict["national_id"]] == ["national_id_checksum"]


# --- the form and the pages ---------------------------------------------------------------------------


def patient_data(**changes):
    data = {
        "mrn": "HN900001",
        "issuer": "RIS",
        "family_name": "Jaidee",
        "given_name": "Somchai",
        "birth_date": "1980-05-17",
    }
    return {**data, **changes}


@pytest.mark.django_db
def test_the_form_refuses_a_taken_id_at_its_field_naming_the_holder():
    holder = PatientFactory(national_id=VALID)

    form = PatientForm(patient_data(national_id=VALID))

    assert not form.is_valid()
    assert list(form.errors) == ["national_id"]
    assert holder.mrn in form.errors["national_id"][0]


@pytest.mark.django_db
def test_a_clerk_registers_a_national_id_and_sees_it_on_the_patient_page(clerk):
    response = clerk.post(reverse("scheduling:patient_create"), patient_data(national_id=VALID))

    assert response.status_code == 302
    patient = Patient.objects.get(mrn="HN900001")
    assert patient.national_id == VALID
    page = clerk.get(patient.get_absolute_url()).content.decode()
    assert f'id="national-id">{VALID}<' in page


@pytest.mark.django_db
def test_a_wrong_id_is_shown_next_to_the_field(clerk):
    response = clerk.post(reverse("scheduling:patient_create"), patient_data(national_id="3500100123458"))

    assert response.status_code == 200
    assert "check digit is wrong" in response.context["form"].errors["national_id"][0]
    assert not Patient.objects.exists()
