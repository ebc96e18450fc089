"""API clients: token auth, the address allow-list, disabling, the problem documents of a refusal."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from api.models import ApiClient, token_digest
from api.services import api_client_new_token

pytestmark = pytest.mark.django_db

SCHEMA = "/api/schema/"
PROCEDURES = "/api/v1/procedures"


def test_the_token_is_stored_only_as_its_digest(api):
    record = ApiClient.objects.get(pk=api.record.pk)
    assert api.token.startswith(record.token_prefix + ".")
    assert record.token_sha256 == token_digest(api.token)
    assert api.token not in str(ApiClient.objects.filter(pk=record.pk).values().get())


def test_no_token_is_a_401_problem(db):
    response = APIClient().get(PROCEDURES)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == reverse("api:problem_type", args=["not-authenticated"])
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer abc.def", "Bearer "])
def test_a_wrong_token_is_refused(db, api, header):
    caller = APIClient()
    caller.credentials(HTTP_AUTHORIZATION=header)
    assert caller.get(PROCEDURES).status_code == 401


def test_a_token_with_the_right_prefix_and_a_wrong_secret_is_refused(api):
    caller = APIClient()
    caller.credentials(HTTP_AUTHORIZATION=f"Bearer {api.record.token_prefix}.{'x' * 43}")
    assert caller.get(PROCEDURES).status_code == 401


def test_a_new_token_ends_the_old_one(api):
    old = api.token
    new = api_client_new_token(client=api.record)
    assert api.get(PROCEDURES).status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new}")
    assert api.get(PROCEDURES).status_code == 200
    assert old != new


def test_a_disabled_client_is_refused(api):
    ApiClient.objects.filter(pk=api.record.pk).update(enabled=False)
    response = api.get(PROCEDURES)
    assert response.status_code == 403
    assert "disabled" in response.json()["detail"]


def test_the_address_allow_list_is_enforced(make_caller):
    inside = make_caller(allowed_addresses="127.0.0.0/8\n10.1.0.0/16")
    outside = make_caller(allowed_addresses="10.1.0.0/16")
    assert inside.get(PROCEDURES).status_code == 200
    response = outside.get(PROCEDURES)
    assert response.status_code == 403
    assert "127.0.0.1" in response.json()["detail"]


def test_a_missing_scope_is_a_403_naming_it(reader):
    response = reader.post("/api/v1/orders", {}, format="json")
    assert response.status_code == 403
    assert "book" in response.json()["detail"]


def test_the_schema_and_its_docs_are_served_without_a_cdn(client):
    schema = client.get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()


def test_an_unknown_problem_type_is_a_404(client):
    assert client.get("/api/problems/slot-taken").status_code == 200
    assert client.get("/api/problems/nonsense").status_code == 404


def test_an_api_address_that_names_nothing_is_a_404_problem(api):
    response = api.get("/api/v1/patients/null,null")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_outside_the_api_a_404_is_still_the_page(clerk):
    response = clerk.get("/no-such-page/")
    assert response.status_code == 404
    assert "html" in response["Content-Type"]
