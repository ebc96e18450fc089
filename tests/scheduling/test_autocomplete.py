"""The patient suggestions behind the search boxes."""

import pytest
from django.urls import reverse

from tests.factories import PatientFactory, ThaiPatientFactory

pytestmark = pytest.mark.django_db


def test_it_suggests_patients_by_thai_or_romanised_name(clerk):
    thai = ThaiPatientFactory(mrn="HN777001")
    PatientFactory(family_name="Smith", given_name="Anna")

    for query in ("ใจ", "jaid", "HN777"):
        results = clerk.get(reverse("scheduling:patient_autocomplete"), {"q": query}).json()["results"]
        assert [r["id"] for r in results] == [thai.pk], query
        assert results[0]["url"] == thai.get_absolute_url()
        assert "สมชาย ใจดี" in results[0]["label"] and "HN777001" in results[0]["label"]


def test_it_returns_at_most_ten(clerk):
    for _ in range(12):
        PatientFactory(family_name="Jaidee")

    results = clerk.get(reverse("scheduling:patient_autocomplete"), {"q": "jaidee"}).json()["results"]

    assert len(results) == 10


def test_an_empty_query_suggests_nothing(clerk):
    PatientFactory()

    assert clerk.get(reverse("scheduling:patient_autocomplete"), {"q": " "}).json() == {"results": []}


def test_it_needs_a_login(client):
    assert client.get(reverse("scheduling:patient_autocomplete"), {"q": "a"}).status_code == 302


def test_the_search_boxes_use_it(clerk):
    url = reverse("scheduling:patient_autocomplete")

    assert f'data-autocomplete-url="{url}"'.encode() in clerk.get(reverse("scheduling:patient_list")).content
    assert f'data-autocomplete-url="{url}"'.encode() in clerk.get(reverse("scheduling:order_create")).content
