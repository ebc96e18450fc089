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


# --- the check digit, over all IDs ------------------------------------------------------------------
#
# The rule, as the Department of Provincial Administration publishes it, written here apart from the
# validator: r = (d1*13 + d2*12 + d3*11 + ... + d12*2) mod 11, and the check digit is (11 - r) mod 10.
#
# What is mathematically true of one changed digit, and what the property below asserts exactly:
# - The check digit itself changed: always refused (the first 12 digits fix it).
# - The 3rd digit changed: never refused. Its weight 11 is 0 mod 11, so r does not move.
# - Any other of the first 12 changed by delta (1 <= |delta| <= 9): its weight w is not 0 mod 11 and
#   neither is delta, and 11 is prime, so r moves to r' = r + w*delta mod 11, r' != r. The map from r to
#   the check digit is one-to-one except that r = 0 and r = 10 both give 1. So the change is refused
#   unless {r, r'} == {0, 10}: only an ID whose check digit is 1 has such undetectable neighbours.
WEIGHTS = range(13, 1, -1)


def residue(first12: str) -> int:
    return sum(int(d) * w for d, w in zip(first12, WEIGHTS, strict=True)) % 11


def reference_check_digit(first12: str) -> int:
    return (11 - residue(first12)) % 10


def with_check_digit(first12: str) -> str:
    return first12 + str(reference_check_digit(first12))


def single_digit_changes(valid: str):
    """Every ID that differs from `valid` in exactly one digit: 13 positions x 9 other digits."""
    for position in range(13):
        for digit in "0123456789":
            if digit != valid[position]:
                yield position, valid[:position] + digit + valid[position + 1 :]


def detectable(valid: str, position: int, changed: str) -> bool:
    if position == 12:
        return True
    if position == 2:
        return False
    return {residue(valid[:12]), residue(changed[:12])} != {0, 10}


def refused(value: str) -> bool:
    try:
        validate_thai_national_id(value)
    except ValidationError:
        return True
    return False


@settings(max_examples=300, deadline=None)
@given(first12=twelve_digits)
def test_every_valid_id_is_accepted(first12):
    assert thai_national_id_check_digit(first12) == reference_check_digit(first12)
    validate_thai_national_id(with_check_digit(first12))


@settings(max_examples=300, deadline=None)
@given(first12=twelve_digits)
def test_every_single_digit_error_is_refused_exactly_where_the_scheme_can_see_it(first12):
    valid = with_check_digit(first12)

    for position, changed in single_digit_changes(valid):
        assert refused(changed) == detectable(valid, position, changed), (valid, changed)


@settings(max_examples=300, deadline=None)
@given(first12=twelve_digits)
def test_an_id_whose_check_digit_is_not_1_has_only_the_third_digit_as_blind_spot(first12):
    valid = with_check_digit(first12)
    if valid[12] == "1":
        return

    for position, changed in single_digit_changes(valid):
        assert refused(changed) == (position != 2), (valid, changed)


def test_the_schemes_blind_spots_are_real():
    # Pinned so nobody "fixes" the properties above into false ones: each pair passes the check digit.
    third = with_check_digit("350010012345")
    assert not refused(third[:2] + str((int(third[2]) + 1) % 10) + third[3:])
    # r = 0 and r = 10 both give check digit 1: the 2nd digit one less moves r from 0 to 10.
    assert not refused("1101700203051") and not refused("1001700203051")


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
    # Shown as on the card: X-XXXX-XXXXX-XX-X.
    assert 'id="national-id">3-5001-00123-45-7<' in page


@pytest.mark.django_db
def test_a_wrong_id_is_shown_next_to_the_field(clerk):
    response = clerk.post(reverse("scheduling:patient_create"), patient_data(national_id="3500100123458"))

    assert response.status_code == 200
    assert "check digit is wrong" in response.context["form"].errors["national_id"][0]
    assert not Patient.objects.exists()
