"""An Admin-role user (staff, not superuser) manages other users' roles, but cannot widen their own nor
take over another account: each attempt is the POST the admin's own forms would send."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scheduling.roles import ADMIN, FRONT_DESK, TECHNOLOGIST
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Taken-Over-2026"


@pytest.fixture
def admin_user():
    return UserFactory(username="itadmin", roles=[ADMIN])


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def change_form(user, **changes) -> dict:
    """The user's admin change form as the browser posts it, with `changes`."""
    joined = timezone.localtime(user.date_joined)
    data = {
        "username": user.username,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": list(user.groups.values_list("pk", flat=True)),
        "date_joined_0": joined.date().isoformat(),
        "date_joined_1": joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def roles(*names: str) -> list[int]:
    return list(Group.objects.filter(name__in=names).values_list("pk", flat=True))


def test_an_admin_cannot_give_themselves_more_roles(admin_client, admin_user):
    url = reverse("admin:auth_user_change", args=[admin_user.pk])

    admin_client.post(url, change_form(admin_user, groups=roles(ADMIN, FRONT_DESK, TECHNOLOGIST)))

    admin_user.refresh_from_db()
    assert set(admin_user.groups.values_list("name", flat=True)) == {ADMIN}


def test_an_admin_cannot_change_their_own_staff_or_active_flags(admin_client, admin_user):
    url = reverse("admin:auth_user_change", args=[admin_user.pk])

    page = admin_client.get(url).content.decode()
    admin_client.post(url, change_form(admin_user, is_staff="", is_active="", groups=[]))

    admin_user.refresh_from_db()
    assert admin_user.is_staff and admin_user.is_active
    assert admin_user.groups.filter(name=ADMIN).exists()
    assert 'name="groups"' not in page and 'name="is_staff"' not in page


def test_an_admin_still_manages_the_roles_of_others(admin_client):
    clerk = UserFactory(username="frontdesk", roles=[FRONT_DESK])
    url = reverse("admin:auth_user_change", args=[clerk.pk])

    response = admin_client.post(url, change_form(clerk, groups=roles(FRONT_DESK, TECHNOLOGIST)))

    assert response.status_code == 302
    assert set(clerk.groups.values_list("name", flat=True)) == {FRONT_DESK, TECHNOLOGIST}


@pytest.mark.parametrize("other_roles", [[FRONT_DESK], [ADMIN]], ids=["a clerk", "another admin"])
def test_an_admin_cannot_set_another_users_password_and_log_in_as_them(admin_client, other_roles):
    other = UserFactory(username="frontdesk", roles=other_roles)
    url = reverse("admin:auth_user_password_change", args=[other.pk])

    form = admin_client.get(url)
    response = admin_client.post(
        url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "set_usable_password": "true"}
    )
    change_page = admin_client.get(reverse("admin:auth_user_change", args=[other.pk])).content.decode()

    assert form.status_code == 403 and response.status_code == 403
    assert not Client().login(username="frontdesk", password=NEW_PASSWORD)
    assert url not in change_page and "../password/" not in change_page


def test_an_admin_cannot_redirect_another_users_password_reset_mail(admin_client):
    clerk = UserFactory(username="frontdesk", roles=[FRONT_DESK], email="nok@clinic.example")
    url = reverse("admin:auth_user_change", args=[clerk.pk])

    admin_client.post(url, change_form(clerk, email="itadmin@evil.example"))

    clerk.refresh_from_db()
    assert clerk.email == "nok@clinic.example"


def test_an_admin_changes_their_own_password_only_by_giving_the_current_one(admin_client, admin_user):
    url = reverse("admin:auth_user_password_change", args=[admin_user.pk])

    response = admin_client.post(
        url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "set_usable_password": "true"}
    )

    assert response.status_code == 302 and response.url == reverse("admin:password_change")
    admin_user.refresh_from_db()
    assert admin_user.check_password("pw-for-tests-1")


def test_a_superuser_still_sets_any_password(client):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    clerk = UserFactory(username="frontdesk", roles=[FRONT_DESK])
    client.force_login(root)

    response = client.post(
        reverse("admin:auth_user_password_change", args=[clerk.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "set_usable_password": "true"},
    )

    assert response.status_code == 302
    clerk.refresh_from_db()
    assert clerk.check_password(NEW_PASSWORD)
