"""The pages obey their own Content-Security-Policy (no inline script, no onclick=), and HSTS asks for
the browsers' preload list only with a max-age of a year. The browser's view of the policy is in
tests/e2e/test_csp.py."""

from __future__ import annotations

import re
import secrets
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from scheduling.roles import FRONT_DESK, TECHNOLOGIST
from tests.deploy.test_settings import manage
from tests.factories import OrderFactory, UserFactory

TEMPLATES = Path(settings.BASE_DIR) / "templates"


class InlineScripts(HTMLParser):
    """Collects what script-src 'self' would refuse: <script> without src, on*= handlers, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append(f"<script> at line {self.getpos()[0]}")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...> at line {self.getpos()[0]}")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...> at line {self.getpos()[0]}")


def inline_scripts(html: str) -> list[str]:
    parser = InlineScripts()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_no_template_has_inline_script(template):
    source = template.read_text()

    assert not inline_scripts(source)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source)


@pytest.mark.django_db
def test_the_rendered_pages_have_no_inline_script_and_carry_the_policy(
    client, patient, procedure, room, tomorrow_at
):
    order = OrderFactory(patient=patient, procedure=procedure, room=room, scheduled_start=tomorrow_at(9))
    user = UserFactory(username="root", is_superuser=True, is_staff=True, roles=[FRONT_DESK, TECHNOLOGIST])
    day = tomorrow_at(9).date().isoformat()
    pages = [
        reverse("scheduling:schedule") + f"?date={day}",
        reverse("scheduling:patient_list") + "?q=Jaidee",
        reverse("scheduling:patient_detail", args=[patient.pk]),
        reverse("scheduling:order_create") + f"?patient={patient.pk}",
        reverse("scheduling:order_detail", args=[order.pk]),
        reverse("scheduling:order_slip", args=[order.pk]),
        reverse("scheduling:order_reschedule", args=[order.pk]),
        reverse("worklist_export:problems"),
        reverse("mwl_server:query"),
        reverse("admin:index"),
        reverse("admin:scheduling_order_change", args=[order.pk]),
        reverse("admin:auth_user_change", args=[user.pk]),
    ]
    anonymous = [reverse("login"), reverse("password_reset")]

    for url in anonymous:
        response = client.get(url)
        assert response.status_code == 200, url
        assert not inline_scripts(response.content.decode()), url
        assert "script-src 'self'" in response["Content-Security-Policy"], url
    client.force_login(user)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert not inline_scripts(response.content.decode()), url
        assert "script-src 'self'" in response["Content-Security-Policy"], url
        assert "camera=()" in response["Permissions-Policy"], url


def production(**env: str):
    return manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_PRELOAD)",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="ris.example.org",
        **env,
    )


@pytest.mark.parametrize(
    "env, printed",
    [
        ({}, "3600 False"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "31536000"}, "31536000 True"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "63072000", "DJANGO_SECURE_HSTS_PRELOAD": "0"}, "63072000 False"),
        (
            {"DJANGO_SECURE_HSTS_SECONDS": "31536000", "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "0"},
            "31536000 False",
        ),
    ],
)
def test_hsts_preload_is_on_only_with_a_max_age_of_a_year(env, printed):
    result = production(**env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == printed


def test_it_refuses_to_start_asked_for_preload_with_less_than_a_year():
    result = production(DJANGO_SECURE_HSTS_PRELOAD="1", DJANGO_SECURE_HSTS_SECONDS="86400")

    assert result.returncode != 0
    assert "DJANGO_SECURE_HSTS_PRELOAD needs DJANGO_SECURE_HSTS_SECONDS of at least 31536000" in result.stderr
