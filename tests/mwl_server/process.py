"""`manage.py serve_dicom` as a separate process on a free loopback port, reading the test database.

For the attacks on the process as a whole (a query that holds the interpreter, idle sockets that fill the
association pool), the server must not share the test's interpreter. The test books with the factories in
a `transaction=True` test, so the rows are committed where the subprocess reads them: the SQLite test
database file, or the PostgreSQL test database when DATABASE_URL points there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.mwl_server.dicom import echo, free_port


def database_url() -> str:
    """The URL of the database this test process uses (the test database while tests run)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            pytest.fail("serve_dicom in a subprocess needs the test database in a file, not in memory")
        return f"sqlite:///{Path(name).resolve()}"
    if connection.vendor == "postgresql":
        auth = quote(db["USER"] or "", safe="")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "127.0.0.1"
        return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"
    pytest.fail(f"no subprocess database URL for {connection.vendor}")


@contextmanager
def serve_dicom(tmp_path: Path, *, up: Callable[[int], bool] | None = None, **env: str) -> Iterator[int]:
    """Start `manage.py serve_dicom` on 127.0.0.1 (extra settings as environment variables); the port.

    TESTSCU (the test clients' calling AE) is a known caller. It is up once `up(port)` is true (by default:
    a plain C-ECHO succeeds). The log is shown when it fails to start.
    """
    port = free_port()
    log = tmp_path / f"serve_dicom-{port}.log"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ris.settings_test",
        "DATABASE_URL": database_url(),
        "DICOM_SERVER_KNOWN_CALLERS": "TESTSCU",
        "DICOM_SERVER_ALLOW_ANY_CALLER": "false",
        "WORKLIST_DIR": str(settings.WORKLIST_DIR),
        "WORKLIST_LAYOUT": str(settings.WORKLIST_LAYOUT),
        **env,
    }
    command = [sys.executable, "manage.py", "serve_dicom", "--bind", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_up(process, port, log, up or (lambda port: echo(port, timeout=5) == "ok"))
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(process: subprocess.Popen, port: int, log: Path, up: Callable[[int], bool]) -> None:
    deadline = time.monotonic() + 60  # Django's start-up on a busy two-core machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve_dicom exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except OSError:
            time.sleep(0.2)
            continue
        if up(port):
            return
        time.sleep(0.2)
    pytest.fail(f"serve_dicom did not answer C-ECHO on port {port}:\n{log.read_text(errors='replace')}")
