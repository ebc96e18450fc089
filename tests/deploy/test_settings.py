"""Production settings: `check --deploy` is clean, and a missing secret stops the app with a clear message.

Run in a subprocess: settings are read once per process, and the test process uses ris.settings_test.
The last tests read ris/settings.py itself, for the layout its docstring promises.
"""

import ast
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # Start from a clean slate: no DJANGO_* or other settings leaking in from the developer's shell.
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**keep, "DJANGO_SETTINGS_MODULE": "ris.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "extra, silenced",
    [
        # The one silenced: security.W021, HSTS without preload, which takes a max-age of a year (the
        # default is an hour; tests/security/test_headers.py).
        ({}, 1),
        # With a year of HSTS the checklist needs nothing silenced.
        ({"DJANGO_SECURE_HSTS_SECONDS": "31536000"}, 0),
    ],
    ids=["default", "a-year-of-hsts"],
)
def test_it_passes_the_deployment_checklist(extra, silenced):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64)[:50],
        DJANGO_ALLOWED_HOSTS="ris.example.org",
        **extra,
    )

    assert result.returncode == 0, result.stderr
    assert f"System check identified no issues ({silenced} silenced)." in result.stdout


def test_it_refuses_to_start_without_a_secret_key():
    result = manage("check", DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="ris.example.org")

    assert result.returncode != 0
    assert "Set the DJANGO_SECRET_KEY environment variable" in result.stderr
    assert "Production (DJANGO_DEBUG off) needs DJANGO_SECRET_KEY" in result.stderr


def test_it_refuses_a_short_secret_key():
    result = manage("check", DJANGO_DEBUG="0", DJANGO_SECRET_KEY="short", DJANGO_ALLOWED_HOSTS="x.org")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be at least 32 characters long" in result.stderr


@pytest.mark.parametrize("hosts", ["", ",", " , ,"])
def test_it_refuses_to_start_with_empty_allowed_hosts(hosts):
    result = manage(
        "check",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64)[:50],
        DJANGO_ALLOWED_HOSTS=hosts,
    )

    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS is empty" in result.stderr


@pytest.mark.parametrize(
    "credentials, refused",
    [
        ({}, True),
        ({"ORTHANC_USERNAME": "ris"}, True),
        ({"ORTHANC_USERNAME": "ris", "ORTHANC_PASSWORD": "s"}, False),
    ],
    ids=["none", "no-password", "both"],
)
def test_production_refuses_to_follow_the_pacs_without_credentials(credentials, refused):
    result = manage(
        "check",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64)[:50],
        DJANGO_ALLOWED_HOSTS="ris.example.org",
        ORTHANC_URL="http://orthanc:8042",
        **credentials,
    )

    assert (result.returncode != 0) is refused, result.stderr
    assert ("ORTHANC_URL is set but ORTHANC_USERNAME or ORTHANC_PASSWORD is not" in result.stderr) is refused


def test_it_drops_empty_items_from_allowed_hosts():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.ALLOWED_HOSTS)",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64)[:50],
        DJANGO_ALLOWED_HOSTS="ris.example.org, ,",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['ris.example.org']"


def test_the_embedded_default_still_starts_in_debug():
    result = manage("check", DJANGO_DEBUG="1")

    assert result.returncode == 0, result.stderr


def test_collectstatic_builds_the_production_manifest(tmp_path):
    result = manage(
        "collectstatic",
        "--noinput",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="collectstatic-only-not-a-runtime-secret-0123456789",
        DJANGO_ALLOWED_HOSTS="build",
        DJANGO_STATIC_ROOT=str(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())
    hashed = manifest["paths"]["vendor/bootstrap/bootstrap.min.css"]
    assert (tmp_path / f"{hashed}.gz").exists()


def proxy_settings(**env: str) -> tuple[int, str]:
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.RIS_PROXY_COUNT, s.AXES_CLIENT_IP_CALLABLE)",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64)[:50],
        DJANGO_ALLOWED_HOSTS="ris.example.org",
        **env,
    )
    assert result.returncode == 0, result.stderr
    count, callable_path = result.stdout.strip().splitlines()[-1].split()
    return int(count), callable_path


@pytest.mark.parametrize(
    "env, count",
    [
        # Unless set, X-Forwarded-For is never read, not even in production: a client reaching gunicorn
        # directly would make it up, a new address per guessed password.
        ({"DJANGO_DEBUG": "0"}, 0),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECURE_PROXY_SSL_HEADER": "0"}, 0),
        ({"DJANGO_DEBUG": "1"}, 0),
        # Set with the proxy (docker-compose.yml sets 1).
        ({"DJANGO_DEBUG": "0", "RIS_PROXY_COUNT": "1"}, 1),
        ({"DJANGO_DEBUG": "0", "RIS_PROXY_COUNT": "2"}, 2),
    ],
)
def test_the_login_throttle_reads_the_proxy_header_only_when_told_to(env, count):
    assert proxy_settings(**env) == (count, "ris.proxy.client_ip")


SETTINGS_SOURCE = (BASE_DIR / "ris" / "settings.py").read_text()
# The banner that ends the "Development and production" section of ris/settings.py.
COMMON_SECTION = "# The same in development and production\n"


def loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def stores(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def test_everything_debug_changes_is_in_the_development_and_production_section():
    assert SETTINGS_SOURCE.count(COMMON_SECTION) == 1
    common_from = SETTINGS_SOURCE[: SETTINGS_SOURCE.index(COMMON_SECTION)].count("\n") + 1
    statements = ast.parse(SETTINGS_SOURCE).body
    # DEBUG, and whatever the section derives from it (BEHIND_PROXY, SECRET_KEY, ...).
    follows_debug = {"DEBUG"}
    for statement in statements:
        if statement.lineno < common_from and loads(statement) & follows_debug:
            follows_debug |= stores(statement)

    late = [
        f"line {statement.lineno}: {sorted(loads(statement) & follows_debug)}"
        for statement in statements
        if statement.lineno > common_from and loads(statement) & follows_debug
    ]
    assert {"BEHIND_PROXY", "SECURE_HSTS_PRELOAD", "STORAGES"} <= follows_debug
    assert not late, "a setting that depends on DEBUG belongs in the Development and production section"


def test_installed_apps_is_assigned_once_and_never_extended():
    # A later INSTALLED_APPS += [...], .append(...) or [*INSTALLED_APPS, ...] would name it again.
    tree = ast.parse(SETTINGS_SOURCE)
    mentions = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "INSTALLED_APPS"]

    assert len(mentions) == 1
    assert isinstance(mentions[0].ctx, ast.Store)
