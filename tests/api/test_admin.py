"""API clients in the admin: the token shown once, changes, a new token, never deleted; the Admin role."""

import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse

from api.models import ApiClient
from api.services import api_client_create
from scheduling.roles import ADMIN, roles_ensure
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:api_apiclient_add")
LIST = reverse("admin:api_apiclient_changelist")


def shown_token(response) -> str | None:
    for message in get_messages(response.wsgi_request):
        found = re.search(r"<code>([^<]+)</code>", str(message))
        if found:
            return found.group(1)
    return None


def test_adding_a_client_shows_its_working_token_once(admin_client):
    response = admin_client.post(
        ADD,
        {
            "name": "Clinic portal",
            "scopes": ["read", "book"],
            "allowed_addresses": "",
            "rate_limit": "",
            "enabled": "on",
        },
        follow=True,
    )
    token = shown_token(response)
    client = ApiClient.objects.get(name="Clinic portal")
    assert token and client.token_matches(token)
    assert client.scopes == ["read", "book"]
    assert client.user.username == "api-clinic-portal" and not client.user.has_usable_password()
    assert token not in admin_client.get(LIST).content.decode()
    assert (
        token
        not in admin_client.get(reverse("admin:api_apiclient_change", args=[client.pk])).content.decode()
    )


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"scopes": []}, "This field is required."),
        ({"allowed_addresses": "10.1.2.300"}, "is not an address or network"),
        ({"rate_limit": "fast"}, "Write a rate like 600/min"),
    ],
)
def test_bad_input_is_refused_at_the_field_and_nothing_is_saved(admin_client, fields, error):
    data = {"name": "Portal", "scopes": ["read"], "allowed_addresses": "", "rate_limit": "", **fields}
    response = admin_client.post(ADD, data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ApiClient.objects.exists()


def test_disabling_a_client_disables_its_account(admin_client):
    client, _token = api_client_create(name="HIS gateway", scopes=["read"])
    response = admin_client.post(
        reverse("admin:api_apiclient_change", args=[client.pk]),
        {"name": "HIS gateway", "scopes": ["read"], "allowed_addresses": "", "rate_limit": ""},
    )
    assert response.status_code == 302
    client.refresh_from_db()
    assert not client.enabled and not client.user.is_active


def test_the_new_token_action_ends_the_old_token(admin_client):
    client, old = api_client_create(name="HIS gateway", scopes=["read"])
    response = admin_client.post(LIST, {"action": "new_token", "_selected_action": [client.pk]}, follow=True)
    new = shown_token(response)
    client.refresh_from_db()
    assert new and client.token_matches(new) and not client.token_matches(old)


def test_a_client_cannot_be_deleted(admin_client):
    client, _token = api_client_create(name="HIS gateway", scopes=["read"])
    response = admin_client.post(reverse("admin:api_apiclient_delete", args=[client.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert ApiClient.objects.filter(pk=client.pk).exists()


def test_the_admin_role_manages_clients(client):
    roles_ensure()
    it = UserFactory(username="it", is_staff=True)
    it.groups.add(Group.objects.get(name=ADMIN))
    client.force_login(it)
    assert client.get(LIST).status_code == 200
    assert client.get(ADD).status_code == 200
