"""Idempotency-Key beyond the booking tests: a key still running, an over-long key, the purge."""

from datetime import timedelta

import pytest
from django.utils import timezone

from api.idempotency import idempotency_purge
from api.models import IdempotentRequest
from api.tasks import purge_idempotency_keys

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients"


def body():
    return {"mrn": "HN-IDEM-1", "family_name": "Jaidee", "given_name": "Somchai", "birth_date": "1980-05-17"}


def test_it_answers_409_while_the_first_request_with_the_key_runs(api):
    IdempotentRequest.objects.create(
        client=api.record, user=api.record.user, key="k-1", method="POST", path=PATIENTS, body_sha256="x"
    )
    # The same key with another body is still "another request" (422) ...
    assert api.post(PATIENTS, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1").status_code == 422
    # ... and with the stored digest it is the running one.
    record = IdempotentRequest.objects.get(key="k-1")
    from api.idempotency import _body_digest

    class Same:
        data = body()

    record.body_sha256 = _body_digest(Same())
    record.save()
    response = api.post(PATIENTS, body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert response.json()["type"].endswith("/idempotency-key-in-use")


def test_a_key_is_the_callers_own(make_caller):
    first, second = make_caller(name="A"), make_caller(name="B")
    one = first.post(PATIENTS, body(), format="json", HTTP_IDEMPOTENCY_KEY="same")
    other = {**body(), "mrn": "HN-IDEM-2", "family_name": "Rakdee"}
    two = second.post(PATIENTS, other, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert (one.status_code, two.status_code) == (201, 201)


def test_an_over_long_key_is_refused_at_the_header(api):
    response = api.post(PATIENTS, body(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert not IdempotentRequest.objects.exists()


def test_a_refusal_is_kept_and_replayed(api):
    bad = {**body(), "birth_date": "not a date"}
    first = api.post(PATIENTS, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-bad")
    again = api.post(PATIENTS, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-bad")
    assert first.status_code == again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == "application/problem+json"
    assert again.content == first.content  # the same bytes, not a re-rendering


def test_old_keys_are_purged(api, settings):
    settings.API_IDEMPOTENCY_HOURS = 48
    old = IdempotentRequest.objects.create(
        user=api.record.user, key="old", method="POST", path=PATIENTS, body_sha256="x", status=201
    )
    IdempotentRequest.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=49))
    IdempotentRequest.objects.create(
        user=api.record.user, key="new", method="POST", path=PATIENTS, body_sha256="x", status=201
    )
    assert purge_idempotency_keys() == 1
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_purge() == 0


def test_an_empty_key_is_refused_not_ignored(api):
    response = api.post(PATIENTS, body(), format="json", HTTP_IDEMPOTENCY_KEY="  ")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert not IdempotentRequest.objects.exists()
