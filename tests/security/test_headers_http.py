"""The response headers as gunicorn sends them with production settings (the `server` fixture)."""

from __future__ import annotations

import re

from tests.security.conftest import PASSWORD

HTTPS = {"X-Forwarded-Proto": "https"}  # as the TLS proxy says


def test_pages_carry_the_content_security_policy_and_permissions_policy(server):
    response, _ = server.browser().request("GET", "/accounts/login/", headers=HTTPS)

    csp = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert csp["script-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert (
        "'unsafe-inline'" not in csp["style-src"]
        and "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    )
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "geolocation=()" in response.headers["Permissions-Policy"]


def test_hsts_asks_for_no_preload_with_the_default_max_age_of_an_hour(server):
    response, _ = server.browser().request("GET", "/accounts/login/", headers=HTTPS)

    assert response.headers["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


def test_static_files_stay_cacheable_for_a_logged_in_user(server):
    reader = server.browser("127.0.4.1")
    _, page = reader.request("GET", "/accounts/login/")
    [script] = re.findall(rb'src="(/static/ris/idle\.[0-9a-f]+\.js)"', page)
    assert reader.log_in("reader", PASSWORD) == 302

    static, _ = reader.request("GET", script.decode())
    schedule, _ = reader.request("GET", "/")

    assert static.status == 200 and "no-store" not in static.headers.get("Cache-Control", "")
    assert schedule.status == 200 and "no-store" in schedule.headers["Cache-Control"]
