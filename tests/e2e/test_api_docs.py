"""An admin sets up an API client in the browser and tries the API from its docs page.

The admin creates the client (its token is shown once, on the page after saving), opens API in the
navigation bar, authorises Swagger UI with the token and runs a request: all under the site's
Content-Security-Policy, from our own static files.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from api.models import ApiClient
from scheduling.roles import ADMIN
from tests.e2e.test_csp_and_idle import PASSWORD, console, log_in, policy_complaints  # noqa: F401
from tests.factories import ProcedureFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_admin_issues_a_token_and_tries_the_api_from_its_docs(page, console):  # noqa: F811
    from django.contrib.auth.models import Group

    from scheduling.roles import roles_ensure

    roles_ensure()
    admin = UserFactory(username="it-admin", is_staff=True)
    admin.set_password(PASSWORD)
    admin.save()
    admin.groups.add(Group.objects.get(name=ADMIN))
    ProcedureFactory(code_value="CTHEAD", code_meaning="CT head without contrast")
    log_in(page, "it-admin")

    page.goto("/admin/api/apiclient/add/")
    page.get_by_label("Name").fill("Clinic portal")
    page.get_by_label("Read patients, the catalog, orders and events").check()
    page.get_by_role("button", name="Save", exact=True).click()
    shown = page.locator(".messagelist").inner_text()
    token = re.search(r"token of Clinic portal is (\S+)\.\s+Copy it now", shown).group(1)
    client = ApiClient.objects.get(name="Clinic portal")
    assert client.token_matches(token)

    page.goto("/admin/api/apiclient/")
    expect(page.get_by_role("link", name="Clinic portal")).to_be_visible()
    assert token not in page.content()  # never shown again

    page.goto("/")
    page.get_by_role("link", name="API", exact=True).click()
    expect(page.get_by_text("RIS order API")).to_be_visible(timeout=15_000)
    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    dialog = page.locator(".dialog-ux")
    dialog.locator("input").first.fill(token)
    dialog.locator("button.modal-btn.authorize").click()
    dialog.locator("button.modal-btn.btn-done").click()

    operation = page.locator(".opblock-get", has_text="/api/v1/procedures").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    with page.expect_response(re.compile(r"/api/v1/procedures$")) as answer:
        operation.get_by_role("button", name="Execute").click()
    assert answer.value.status == 200
    expect(operation.locator(".responses-wrapper")).to_contain_text("CT head without contrast")
    assert policy_complaints(console) == []
