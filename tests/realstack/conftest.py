"""The real-stack tier: PostgreSQL, Redis, a Celery worker (and beat) as subprocesses.

Run it on its own, with its own settings: pytest -m realstack --ds=ris.settings_realstack tests/realstack
The worker connects to the pytest-django test database, so tests use django_db(transaction=True): the
worker only sees committed rows. Its log is attached to the report of a failed test.

Without PostgreSQL or Redis, or collected with other settings, the tier is skipped on a laptop; under
CI=true it runs and fails instead.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parents[2]
T = TypeVar("T")
CELERY = str(Path(sys.executable).with_name("celery"))
STARTUP_TIMEOUT = 30

# Log files of the subprocesses running now, shown under a failed test.
_logs: dict[str, Path] = {}
# Why a test of the tier must fail at setup (collected under CI=true with the wrong settings).
_MUST_FAIL = pytest.StashKey[str]()


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), 1):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(item.path).parents]
    if not ours:
        return
    ci = os.environ.get("CI") == "true"
    if os.environ.get("DJANGO_SETTINGS_MODULE") != "ris.settings_realstack":
        reason = "the real-stack tier runs with --ds=ris.settings_realstack (see `make test`)"
        if ci:
            # Marked here, failed at setup: a run that deselects the tier (-m "not realstack") still passes.
            for item in ours:
                item.stash[_MUST_FAIL] = f"{reason}; under CI=true it fails rather than skips"
            return
    elif ci:
        return  # CI must exercise the real stack: a missing service is a failure, never a skip.
    elif not _answers(_pg_url(), 5432):
        reason = "PostgreSQL does not answer"
    elif not _answers(settings.CELERY_BROKER_URL, 6379):
        reason = "Redis does not answer"
    else:
        return
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if _MUST_FAIL in item.stash:
        pytest.fail(item.stash[_MUST_FAIL], pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def real_services() -> None:
    """Fail at once, with a clear message, rather than after every connection retry has timed out.

    Reached only when the tier runs: on a laptop without the services it was skipped at collection.
    """
    missing = [
        f"{name} at {urlsplit(where).hostname}:{urlsplit(where).port or port}"
        for name, where, port in [
            ("PostgreSQL", _pg_url(), 5432),
            ("Redis", settings.CELERY_BROKER_URL, 6379),
        ]
        if not _answers(where, port)
    ]
    if missing:
        pytest.fail(f"the real-stack tier needs {' and '.join(missing)}, which do not answer", pytrace=False)


def _pg_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for name, path in _logs.items():
            if path.exists():
                report.sections.append((f"{name} log", path.read_text(errors="replace")[-20000:]))
    return report


def _subprocess_env(**extra: str) -> dict[str, str]:
    db = settings.DATABASES["default"]  # NAME is the test database once django_db_setup has run
    auth = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ris.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WORKLIST_DIR": settings.WORKLIST_DIR,
        "WORKLIST_LAYOUT": "orthanc",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _start(name: str, args: list[str], log: Path, ready: str, **env: str) -> subprocess.Popen:
    handle = log.open("w")
    proc = subprocess.Popen(
        [CELERY, "-A", "ris", *args],
        cwd=BASE_DIR,
        env=_subprocess_env(**env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    _logs[name] = log
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"celery {name} did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        # The whole process group: a worker may have forked pool children.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[subprocess.Popen]:
    """One worker for the session; terminated at the end even when a test fails."""
    from ris.celery import app

    # Tasks left in the queue by an interrupted earlier run would point at rows that no longer exist.
    app.control.purge()
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    proc = _start("worker", ["worker", "--pool=solo", "-l", "info", "-n", "realstack@%h"], log, " ready.")
    try:
        yield proc
    finally:
        _stop(proc)
        _logs.pop("worker", None)


@pytest.fixture
def celery_beat(celery_worker, tmp_path) -> Iterator[subprocess.Popen]:
    """Beat with the reconcile every 2 s; its schedule file lives in the test's tmp folder."""
    log = tmp_path / "beat.log"
    args = ["beat", "-l", "info", "-s", str(tmp_path / "celerybeat-schedule")]
    proc = _start("beat", args, log, "beat: Starting", WORKLIST_RECONCILE_SECONDS="2")
    try:
        yield proc
    finally:
        _stop(proc)
        _logs.pop("beat", None)


@pytest.fixture(autouse=True)
def empty_worklist_dir() -> Iterator[Path]:
    """Each test starts with an empty worklist folder: accession numbers restart after each flush."""
    folder = Path(settings.WORKLIST_DIR)

    def empty() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # missing_ok: a writer still finishing (gunicorn's in-process export, a worker being stopped)
        # renames its temporary file away between the listing and the unlink.
        for child in folder.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)

    empty()
    yield folder
    empty()


def rows_for_the_module(django_db_blocker, fill: Callable[[], T]) -> Iterator[T]:
    """For a module fixture (`yield from` it): what `fill()` makes, committed once for the module's tests.

    For the scale tests whose large tables take seconds to insert and analyse and whose tests only read
    them: each such test is a plain django_db test, rolled back with nothing of its own to roll back, so
    none leaves dead rows behind for the next one's plans. `fill()` runs outside any test's transaction
    (VACUUM cannot run in one). At the end of the module the database is flushed, as pytest-django does
    after a transactional test (TransactionTestCase._fixture_teardown).
    """
    from django.core.management import call_command

    def flush() -> None:
        with django_db_blocker.unblock():
            call_command("flush", verbosity=0, interactive=False, reset_sequences=False)

    try:
        with django_db_blocker.unblock():
            made = fill()
        yield made
    finally:
        flush()


@pytest.fixture
def eventually() -> Callable[[Callable[[], bool], str], None]:
    """eventually(condition, what): poll up to 10 s for condition() to hold, else fail naming `what`."""

    def wait(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"after {timeout:.0f} s: {what}")
            time.sleep(0.1)

    return wait
