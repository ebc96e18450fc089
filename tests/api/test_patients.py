"""The patients resource: search as the patient list searches, register and change as the patient form
does (the same duplicate warning, MRN check and messages), If-Match, scopes, the access log."""

from datetime import date, timedelta

import pytest
from django.utils import timezone, translation
from pydicom import dcmread

from access_audit.models import AccessAction, AccessEvent
from scheduling import services
from scheduling.forms import PatientForm
from scheduling.models import Patient
from tests.factories import PatientFactory, ThaiPatientFactory

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients"
PROBLEM = "application/problem+json"


def detail(patient: Patient) -> str:
    return f"/api/v1/patients/{patient.pk}"


def registration(**overrides) -> dict:
    body = {
        "mrn": "HN900001",
        "family_name": "ใจดี",
        "given_name": "สมชาย",
        "romanized_family_name": "Jaidee",
        "romanized_given_name": "Somchai",
        "birth_date": "1970-01-02",
        "sex": "M",
        "weight_kg": 72.5,
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}  # None: left out


def problem_type(response) -> str:
    assert response["Content-Type"] == PROBLEM
    return response.json()["type"].rsplit("/", 1)[-1]


def form_errors(**overrides) -> dict:
    """What the front desk's patient form says about the same values."""
    return PatientForm(data=registration(**overrides)).errors


# --- search -----------------------------------------------------------------------------------


def test_it_finds_a_patient_by_the_start_of_the_mrn(reader):
    wanted = PatientFactory(mrn="HN777123")
    PatientFactory(mrn="HN888123")

    response = reader.get(PATIENTS, {"q": "hn777"})

    assert response.status_code == 200
    assert [p["mrn"] for p in response.json()["results"]] == [wanted.mrn]
    assert response.json()["more"] is False


def test_it_finds_latin_and_thai_names_native_or_romanised(reader):
    thai = ThaiPatientFactory(mrn="HN1")
    smith = PatientFactory(mrn="HN2", family_name="Smith", given_name="Anna")

    def found(q: str) -> list[str]:
        return [p["mrn"] for p in reader.get(PATIENTS, {"q": q}).json()["results"]]

    assert found("ใจดี") == [thai.mrn]
    assert found("สมชาย ใจ") == [thai.mrn]
    assert found("jaidee") == [thai.mrn]  # the romanised name of the Thai patient
    assert found("smi") == [smith.mrn]
    assert found("anna smith") == [smith.mrn]


def test_it_finds_by_birth_date_alone_or_with_a_name(reader):
    born = PatientFactory(family_name="Smith", birth_date=date(1990, 3, 4))
    PatientFactory(family_name="Smith", birth_date=date(1991, 3, 4))
    PatientFactory(family_name="Jones", birth_date=date(1990, 3, 4))

    alone = reader.get(PATIENTS, {"birth_date": "1990-03-04"}).json()["results"]
    both = reader.get(PATIENTS, {"birth_date": "1990-03-04", "q": "smith"}).json()["results"]

    assert {p["family_name"] for p in alone} == {"Smith", "Jones"}
    assert [p["id"] for p in both] == [born.pk]


def test_a_search_answers_the_whole_record_with_its_links(reader):
    patient = ThaiPatientFactory(mrn="HN42", weight_kg="61.5")

    [found] = reader.get(PATIENTS, {"q": "HN42"}).json()["results"]

    assert found["id"] == patient.pk
    assert found["display_name"] == "สมชาย ใจดี"
    assert found["weight_kg"] == 61.5
    assert found["version"] == 1
    assert found["links"] == {"self": detail(patient), "orders": f"/api/v1/orders?patient={patient.pk}"}


def test_results_are_capped_at_the_limit_and_say_there_are_more(reader):
    PatientFactory.create_batch(5, family_name="Many")

    capped = reader.get(PATIENTS, {"q": "many", "limit": 3}).json()
    whole = reader.get(PATIENTS, {"q": "many"}).json()

    assert len(capped["results"]) == 3 and capped["more"] is True
    assert len(whole["results"]) == 5 and whole["more"] is False


@pytest.mark.parametrize(
    "params",
    [{}, {"q": "   "}, {"q": "x", "limit": 101}, {"q": "x", "limit": 0}, {"birth_date": "1990-13-01"}],
)
def test_a_search_without_a_term_or_with_a_bad_one_is_a_400(reader, params):
    response = reader.get(PATIENTS, params)

    assert response.status_code == 400
    assert problem_type(response) == "invalid-request"


def test_a_search_with_nothing_to_search_for_says_what_to_give(reader):
    response = reader.get(PATIENTS)

    assert response.json()["errors"] == {
        "non_field_errors": ["Give an MRN or a name (q), a birth date, or both."]
    }


# --- register ---------------------------------------------------------------------------------


def test_it_registers_a_patient_as_the_client(api):
    response = api.post(PATIENTS, registration(), format="json")

    assert response.status_code == 201
    patient = Patient.objects.get(mrn="HN900001")
    assert response["Location"] == detail(patient)
    assert response["ETag"] == '"1"'
    body = response.json()
    assert body["id"] == patient.pk
    assert body["issuer"] == "RIS"  # the site's issuer, as the form fills it in
    assert body["birth_date"] == "1970-01-02"
    assert body["weight_kg"] == 72.5
    assert patient.display_name == "สมชาย ใจดี"
    assert patient.history.get().history_user == api.record.user


def test_a_duplicate_name_and_birth_date_needs_confirming(api):
    first = api.post(PATIENTS, registration(), format="json")
    assert first.status_code == 201

    warned = api.post(PATIENTS, registration(mrn="HN900002"), format="json")

    assert warned.status_code == 409
    assert problem_type(warned) == "confirmation-required"
    assert warned.json()["confirm"] == "confirm_duplicate"
    assert "HN900001" in warned.json()["detail"]
    assert "already registered" in warned.json()["detail"]
    assert Patient.objects.count() == 1

    confirmed = api.post(PATIENTS, registration(mrn="HN900002", confirm_duplicate=True), format="json")

    assert confirmed.status_code == 201
    assert Patient.objects.count() == 2


def test_a_taken_mrn_is_refused_at_the_mrn(api):
    PatientFactory(mrn="HN900001", family_name="Other", given_name="Person")

    response = api.post(PATIENTS, registration(), format="json")

    assert response.status_code == 422
    assert problem_type(response) == "refused"
    assert response.json()["errors"] == {
        "mrn": ["MRN HN900001 of RIS is already registered to Person Other."]
    }
    assert response.json()["codes"] == {"mrn": ["mrn_taken"]}


@pytest.mark.parametrize(
    "overrides, field",
    [
        # Each part fits its 64 characters; together they do not fit a DICOM PN component group.
        ({"family_name": "ก" * 40, "given_name": "ข" * 30}, "family_name"),
        ({"birth_date": (timezone.localdate() + timedelta(days=3)).isoformat()}, "birth_date"),
        ({"given_name": "x" * 65}, "given_name"),
        ({"romanized_family_name": "ใจดี"}, "romanized_family_name"),
        ({"family_name": "Smith^John"}, "family_name"),
        ({"weight_kg": 0}, "weight_kg"),
        ({"weight_kg": 72.55}, "weight_kg"),
    ],
)
def test_a_value_the_form_refuses_is_refused_at_its_field_in_the_forms_words(api, overrides, field):
    response = api.post(PATIENTS, registration(**overrides), format="json")

    assert response.status_code == 422
    assert problem_type(response) == "refused"
    assert response.json()["errors"][field] == form_errors(**overrides)[field]
    assert not Patient.objects.exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"birth_date": "1970-02-30"}, "birth_date"),
        ({"birth_date": None}, "birth_date"),
        ({"sex": "X"}, "sex"),
        ({"pregnancy_status": "9"}, "pregnancy_status"),
        ({"weight_kg": "heavy"}, "weight_kg"),
        ({"family_name": "  "}, "family_name"),
        ({"mrn": None}, "mrn"),
    ],
)
def test_a_value_that_cannot_be_read_is_a_400_at_its_field_in_the_forms_words(api, overrides, field):
    response = api.post(PATIENTS, registration(**overrides), format="json")

    assert response.status_code == 400
    assert problem_type(response) == "invalid-request"
    assert response.json()["errors"] == {field: form_errors(**overrides)[field]}


def test_the_messages_are_in_thai_for_a_thai_caller(api):
    future = (timezone.localdate() + timedelta(days=3)).isoformat()

    response = api.post(PATIENTS, registration(birth_date=future), format="json", HTTP_ACCEPT_LANGUAGE="th")

    assert response.status_code == 422
    assert response.json()["errors"]["birth_date"] == ["วันเกิดต้องไม่อยู่ในอนาคต"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"sex": "X"}, "sex"),
        ({"birth_date": "1970-02-30"}, "birth_date"),
        ({"family_name": "Smith^John"}, "family_name"),
        ({"mrn": ""}, "mrn"),
    ],
)
def test_a_thai_caller_is_told_what_the_thai_form_says(api, overrides, field):
    response = api.post(PATIENTS, registration(**overrides), format="json", HTTP_ACCEPT_LANGUAGE="th")

    with translation.override("th"):
        expected = form_errors(**overrides)[field]
    assert response.json()["errors"][field] == expected
    assert any("\u0e00" <= ch <= "\u0e7f" for ch in expected[0])  # Thai, not the English fallback


def test_a_thai_caller_gets_the_duplicate_warning_in_thai(api):
    api.post(PATIENTS, registration(), format="json")

    response = api.post(PATIENTS, registration(mrn="HN900002"), format="json", HTTP_ACCEPT_LANGUAGE="th")

    assert response.status_code == 409
    assert response.json()["detail"].startswith("มีผู้ป่วยชื่อและวันเกิดนี้ลงทะเบียนไว้แล้ว: HN900001")


def test_a_retry_with_the_idempotency_key_registers_once(api):
    first = api.post(PATIENTS, registration(), format="json", HTTP_IDEMPOTENCY_KEY="reg-1")
    again = api.post(PATIENTS, registration(), format="json", HTTP_IDEMPOTENCY_KEY="reg-1")

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"]
    assert Patient.objects.count() == 1


def test_a_reader_cannot_register(reader):
    response = reader.post(PATIENTS, registration(), format="json")

    assert response.status_code == 403
    assert "book" in response.json()["detail"]
    assert not Patient.objects.exists()


# --- read ------------------------------------------------------------------------------------


def test_reading_a_patient_gives_its_etag_and_is_recorded_in_the_access_log(reader, patient):
    response = reader.get(detail(patient))

    assert response.status_code == 200
    assert response["ETag"] == f'"{patient.version}"'
    assert response.json()["mrn"] == patient.mrn
    event = AccessEvent.objects.get()
    assert event.action == AccessAction.PATIENT_VIEWED
    assert event.patient_id == patient.pk
    assert event.user == reader.record.user


def test_an_unknown_patient_is_a_404_and_nothing_is_recorded(reader):
    response = reader.get("/api/v1/patients/999999")

    assert response.status_code == 404
    assert problem_type(response) == "not-found"
    assert not AccessEvent.objects.exists()


# --- change ----------------------------------------------------------------------------------


def test_a_change_with_the_current_etag_is_saved(api, patient):
    etag = api.get(detail(patient))["ETag"]

    response = api.patch(detail(patient), {"phone": "081 234 5678"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200
    patient.refresh_from_db()
    assert patient.phone == "081 234 5678"
    assert patient.family_name == "Jaidee"  # not sent: kept
    assert response["ETag"] == f'"{patient.version}"' == '"2"'
    assert response.json()["version"] == 2
    assert patient.history.latest().history_user == api.record.user


def test_a_change_with_a_stale_etag_is_a_412_and_changes_nothing(api, patient, user):
    etag = api.get(detail(patient))["ETag"]
    services.patient_update(patient=patient, user=user, phone="02 111 2222")  # a clerk, meanwhile

    response = api.patch(detail(patient), {"phone": "081 234 5678"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert problem_type(response) == "stale-version"
    assert response["ETag"] == '"2"'
    patient.refresh_from_db()
    assert patient.phone == "02 111 2222"


def test_a_change_without_if_match_is_saved_unconditionally(api, patient):
    response = api.patch(detail(patient), {"given_name": "Somsak"}, format="json")

    assert response.status_code == 200
    assert response.json()["display_name"] == "Somsak Jaidee"


def test_a_malformed_if_match_is_a_400(api, patient):
    response = api.patch(detail(patient), {"phone": "1"}, format="json", HTTP_IF_MATCH="yesterday")

    assert response.status_code == 400
    assert "If-Match" in response.json()["errors"]


def test_a_change_to_a_taken_mrn_is_refused_at_the_mrn(api, patient):
    PatientFactory(mrn="HN555")

    response = api.patch(detail(patient), {"mrn": "HN555"}, format="json")

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["mrn"]


def test_a_change_the_form_refuses_is_refused_in_its_words(api, patient):
    future = (timezone.localdate() + timedelta(days=1)).isoformat()

    response = api.patch(detail(patient), {"birth_date": future}, format="json")

    assert response.status_code == 422
    assert response.json()["errors"]["birth_date"] == form_errors(birth_date=future)["birth_date"]
    patient.refresh_from_db()
    assert patient.version == 1


def test_an_empty_change_is_a_400(api, patient):
    response = api.patch(detail(patient), {}, format="json")

    assert response.status_code == 400
    patient.refresh_from_db()
    assert patient.version == 1


def test_a_reader_cannot_change_a_patient(reader, patient):
    response = reader.patch(detail(patient), {"phone": "1"}, format="json")

    assert response.status_code == 403
    patient.refresh_from_db()
    assert patient.phone == ""


def test_a_rename_writes_the_worklist_item_again(api, worklist_dir, book, patient, after_commit):
    order = book()
    path = worklist_dir / f"{order.accession_number}.wl"
    assert dcmread(path).PatientName == "Jaidee^" + patient.given_name

    with after_commit():
        response = api.patch(detail(patient), {"given_name": "Somsak"}, format="json")

    assert response.status_code == 200
    assert dcmread(path).PatientName == "Jaidee^Somsak"
