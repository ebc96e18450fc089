"""A production-like gunicorn for the attacks that happen over HTTP (tests/security/test_login_http.py).

gunicorn runs the real settings module (ris.settings) with DJANGO_DEBUG off, a secret key and the host
name, against a SQLite file migrated for the run, with the static files collected as the image does.
The HTTPS redirect is off, as for a probe that talks plain HTTP to the app. A missing gunicorn fails.
"""

from __future__ import annotations

import fcntl
import http.client
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from tests.mwl_server.dicom import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
PASSWORD = "Right-Pass-2026"


def production_env(tmp: Path, **extra: str) -> dict[str, str]:
    # Nothing from the developer's shell or .env: only what a deployment would set.
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "ris.settings",
        "RIS_IGNORE_DOTENV": "1",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"sqlite:///{tmp / 'ris.sqlite3'}",
        "DJANGO_STATIC_ROOT": str(tmp / "static"),
        "WORKLIST_DIR": str(tmp / "worklists"),
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}"


@dataclass
class Browser:
    """One client with its cookie jar, connecting from `source` (any 127.0.0.0/8 address is ours)."""

    port: int
    source: str = "127.0.0.1"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60, source_address=(self.source, 0))
        sent = {"Host": "127.0.0.1", **(headers or {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        for raw in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(raw).items():
                self.cookies[name] = morsel.value
        return response, data

    def post_form(self, path: str, form: dict, headers: dict | None = None):
        """GET the form for its CSRF cookie, then POST it, as a browser does."""
        if "csrftoken" not in self.cookies:
            self.request("GET", path, headers=headers)
        return self.request("POST", path, {"csrfmiddlewaretoken": self.cookies["csrftoken"], **form}, headers)

    def log_in(self, username: str, password: str, forwarded_for: str | None = None) -> int:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        response, _ = self.post_form(
            "/accounts/login/", {"username": username, "password": password}, headers
        )
        return response.status


@dataclass
class Server:
    port: int
    log: Path

    def browser(self, source: str = "127.0.0.1") -> Browser:
        return Browser(self.port, source)


@contextmanager
def gunicorn_serving(env: dict[str, str], tmp: Path) -> Iterator[tuple[int, Path]]:
    """gunicorn (one sync worker) on the project with `env`, while the context lasts: its port and
    log. The test fails, never skips, when gunicorn is missing or does not answer /healthz in 30 s."""
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if not gunicorn:
        pytest.fail("gunicorn is not installed in the virtualenv (pip install -r requirements.txt).")
    port = free_port()
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [gunicorn, "ris.wsgi:application", "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "60"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response, _ = Browser(port).request("GET", "/healthz")
                if response.status in (200, 503):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield port, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _built_site(root: Path) -> Path:
    """`root`/production-site: a SQLite file migrated and the static files collected with the production
    settings, built once per run for every gunicorn of the run; `root` is pytest's base temp folder, or
    under pytest-xdist the one above the workers' (built by the first worker to need it, under a lock).

    migrate and collectstatic take some 14 s of CPU; each server starts from its own copy of both, so
    it still runs on a database migrated from empty and on the collected files, as a deployment does.
    """
    site = root / "production-site"
    with (root / "production-site.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (site / "ris.sqlite3").is_file():
            shutil.rmtree(site, ignore_errors=True)
            building = root / "production-site.building"
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir()
            env = production_env(building)
            (building / "worklists").mkdir()
            manage(env, "migrate", "--noinput")
            manage(env, "collectstatic", "--noinput", "--verbosity", "0")
            building.rename(site)
    return site


def install_site(tmp: Path) -> None:
    """Put a migrated SQLite file and the collected static files where production_env(tmp) says.

    `tmp` is a folder of pytest's tmp_path_factory: its parent is the base temp folder, a worker's own
    (popen-gwN) under pytest-xdist, whose parent the run's workers share.
    """
    root = tmp.parent.parent if os.environ.get("PYTEST_XDIST_WORKER") else tmp.parent
    site = _built_site(root)
    shutil.copyfile(site / "ris.sqlite3", tmp / "ris.sqlite3")
    shutil.copytree(site / "static", tmp / "static")
    (tmp / "worklists").mkdir()


def start_gunicorn(tmp: Path, users: list[str], **extra_env: str) -> Iterator[Server]:
    """A freshly migrated SQLite file (install_site), `users` created (password PASSWORD), served by
    gunicorn."""
    env = production_env(tmp, **extra_env)
    install_site(tmp)
    create = "; ".join(f"User.objects.create_user({name!r}, password={PASSWORD!r})" for name in users)
    manage(env, "shell", "-c", f"from django.contrib.auth.models import User; {create}")
    with gunicorn_serving(env, tmp) as (port, log):
        yield Server(port, log)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    """One production-like gunicorn for tests/security, its limits lowered to keep the tests short."""
    yield from start_gunicorn(
        tmp_path_factory.mktemp("gunicorn"),
        users=["nok", "clerk", "tech", "frontdesk", "reader"],
        RIS_USERNAME_FAILURE_LIMIT="7",
        RIS_ADDRESS_FAILURE_LIMIT="9",
        RIS_PASSWORD_RESET_LIMIT="3",
    )
