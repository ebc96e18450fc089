"""Clerks registering at the same moment on PostgreSQL: one MRN, one patient, and the loser is told at the
field; one person (name and birth date), one record unless a clerk confirms a second."""

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from scheduling import services
from scheduling.models import Patient
from scheduling.roles import FRONT_DESK
from tests.factories import UserFactory
from tests.realstack.threads import run_concurrently

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


def registration(i: int, **fields) -> dict:
    return {
        "mrn": f"HN{i}",
        "family_name": "Jaidee",
        "given_name": f"Somchai{i}",
        "birth_date": "1980-05-17",
        **fields,
    }


def test_two_registrations_of_one_mrn_that_both_pass_the_check_save_one_and_refuse_one_at_mrn(monkeypatch):
    # Both look for the MRN before either inserts: the unique constraint decides, and the loser's
    # IntegrityError becomes the message the check would have given.
    both_looked = threading.Barrier(2)
    mrn_taken, looked = services.mrn_taken, threading.local()

    def look_together(**kwargs):
        result = mrn_taken(**kwargs)
        if not getattr(looked, "once", False):
            looked.once = True
            both_looked.wait(10)
        return result

    monkeypatch.setattr(services, "mrn_taken", look_together)
    results = run_concurrently(2, lambda i: services.patient_register(**registration(i, mrn="HN7")))

    saved = [r for r in results if isinstance(r, Patient)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(saved) == 1 and len(refused) == 1, results
    assert refused[0].message_dict == {
        "mrn": [f"MRN HN7 of RIS is already registered to {saved[0].display_name}."]
    }
    assert Patient.objects.filter(mrn="HN7").count() == 1


def test_two_clerks_posting_one_mrn_at_once_get_a_page_each_and_no_server_error(settings, tmp_path):
    settings.STATIC_ROOT = str(tmp_path)  # WhiteNoise warns of a missing folder; no static file is served
    clerk = UserFactory(roles=[FRONT_DESK])

    def post(i: int):
        client = Client(raise_request_exception=False)
        client.force_login(clerk)
        data = {**registration(i, mrn="HN8"), "issuer": "RIS"}
        return client.post(reverse("scheduling:patient_create"), data)

    responses = run_concurrently(2, post)

    assert sorted(r.status_code for r in responses) == [200, 302], responses
    refused = next(r for r in responses if r.status_code == 200)
    assert "MRN HN8 of RIS is already registered to" in refused.content.decode()
    assert Patient.objects.filter(mrn="HN8").count() == 1


def test_four_registrations_of_one_person_at_once_save_one_and_warn_three(monkeypatch):
    n = 4
    check_duplicate_patient = services.check_duplicate_patient

    def slow_check(patient):
        # Widen the window between the check and the insert: without serialisation every registration
        # would look, find nobody, and be saved.
        warning = check_duplicate_patient(patient)
        time.sleep(0.2)
        return warning

    monkeypatch.setattr(services, "check_duplicate_patient", slow_check)
    same_person = {"given_name": "Somchai", "family_name": "Jaidee", "birth_date": "1980-05-17"}
    results = run_concurrently(n, lambda i: services.patient_register(**registration(i, **same_person)))

    saved = [r for r in results if isinstance(r, Patient)]
    warned = [r for r in results if isinstance(r, services.DuplicatePatientWarning)]
    assert len(saved) == 1 and len(warned) == n - 1, results
    assert all(saved[0].mrn in w.messages[0] for w in warned)
    assert Patient.objects.count() == 1


def test_the_lock_is_per_person_and_ignores_case(monkeypatch):
    check_duplicate_patient = services.check_duplicate_patient

    def slow_check(patient):
        warning = check_duplicate_patient(patient)
        time.sleep(0.2)
        return warning

    monkeypatch.setattr(services, "check_duplicate_patient", slow_check)
    people = [
        {"family_name": "Jaidee", "given_name": "Somchai"},
        {"family_name": "JAIDEE", "given_name": "somchai"},
        {"family_name": "Srisuk", "given_name": "Malee"},
    ]
    results = run_concurrently(3, lambda i: services.patient_register(**registration(i, **people[i])))

    assert isinstance(results[2], Patient), results
    assert sorted(type(r).__name__ for r in results[:2]) == ["DuplicatePatientWarning", "Patient"], results
