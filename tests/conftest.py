import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone, translation

from scheduling import services
from scheduling.models import Order
from scheduling.roles import FRONT_DESK, TECHNOLOGIST
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory, UserFactory
from tests.property.examples import EXAMPLES


def pytest_configure(config):
    # pyproject.toml keeps the test database between runs (--reuse-db) for people running pytest by
    # hand; CI builds it fresh, so a migration that no longer applies to an empty database fails there.
    if os.environ.get("CI") == "true":
        config.option.create_db = True


# Under pytest-xdist (`make test` runs -n 2 --dist loadgroup) each of these modules runs whole in one
# worker, and modules named with the same group share that worker: their tests share one gunicorn and
# what earlier tests left on it (rate budgets, lockouts, the statuses schemathesis saw), and none uses
# the test database. Every other test is handed out on its own, in collection order (see the Makefile).
# By file here rather than with xdist's xdist_group mark, which does not group under pytest 9.2: xdist
# renames the tests' node ids to carry the group, and pytest no longer lets it (pytest-xdist #1386).
ONE_WORKER = {
    "tests/api/test_schemathesis.py": "api-schemathesis",
    "tests/api/test_http.py": "api-http",
    "tests/security/test_headers_http.py": "security-gunicorn",
    "tests/security/test_login_http.py": "security-gunicorn",
}


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    missing = [path for path in ONE_WORKER if not (config.rootpath / path).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py ONE_WORKER names modules that are gone: {missing}")

    class ByFileGroup(LoadScopeScheduling):
        """LoadScopeScheduling whose scope is the ONE_WORKER group of a test's file, else the test."""

        def _split_scope(self, nodeid: str) -> str:
            return ONE_WORKER.get(nodeid.split("::", 1)[0], nodeid)

    return ByFileGroup(config, log)


def pytest_sessionfinish(session):
    # A pytest-xdist worker hands its count of property inputs to the main process (pytest_testnodedown).
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["property_examples"] = dict(EXAMPLES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    EXAMPLES.update(getattr(node, "workeroutput", {}).get("property_examples", {}))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The inputs tried per property test (tests/property), also written to test-artifacts/."""
    if not EXAMPLES or hasattr(config, "workeroutput"):
        return
    total = sum(EXAMPLES.values())
    terminalreporter.section("property tests: inputs tried")
    for name, count in sorted(EXAMPLES.items()):
        terminalreporter.write_line(f"{count:6d}  {name}")
    terminalreporter.write_line(f"{total:6d}  in total, over {len(EXAMPLES)} properties")
    out = Path(config.rootpath, "test-artifacts", "property-summary.txt")
    if out.parent.is_dir():
        lines = [f"{count}\t{name}" for name, count in sorted(EXAMPLES.items())]
        out.write_text("\n".join([*lines, f"{total}\ttotal ({len(EXAMPLES)} properties)", ""]))


@pytest.fixture
def user(db):
    """A clerk who does both the front desk and the scanner, so workflow tests need one login."""
    return UserFactory(username="frontdesk", roles=[FRONT_DESK, TECHNOLOGIST])


@pytest.fixture
def clerk(client, user):
    """The test client, logged in as the front-desk `user`."""
    client.force_login(user)
    return client


@pytest.fixture
def room(db):
    return RoomFactory(name="CT 1", ae_title="CT01")


@pytest.fixture
def procedure(db):
    return ProcedureFactory(code_value="CTHEAD", code_meaning="CT Head without contrast")


@pytest.fixture
def patient(db):
    return PatientFactory()


@pytest.fixture
def tomorrow_at():
    """tomorrow_at(9, 30) -> an aware datetime tomorrow at 09:30 in the clinic's time zone."""

    def make(hour: int, minute: int = 0) -> datetime:
        day = timezone.localdate() + timedelta(days=1)
        return timezone.make_aware(datetime(day.year, day.month, day.day, hour, minute))

    return make


@pytest.fixture(scope="session", autouse=True)
def compiled_messages():
    """Compile the .po files when their .mo is missing or older, so Thai pages render in Thai even
    when pytest runs without `make messages` first (the .mo files are build output, not in git)."""
    from pathlib import Path

    from django.conf import settings
    from django.core.management import call_command

    for po in Path(settings.BASE_DIR, "locale").glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            call_command("compilemessages", "--ignore=.venv", verbosity=0)
            break


@pytest.fixture
def order(patient, procedure, room, user, tomorrow_at):
    """A scheduled order for tomorrow 09:00 with a fixed accession number."""
    return OrderFactory(
        accession_number="26010100001",
        patient=patient,
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )


@pytest.fixture
def worklist_dir(settings, tmp_path):
    """A fresh, flat (Orthanc layout) worklist folder for the test."""
    folder = tmp_path / "worklists"
    folder.mkdir()
    settings.WORKLIST_DIR = str(folder)
    settings.WORKLIST_LAYOUT = "orthanc"
    return folder


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks):
    """with after_commit(): ... runs the on-commit callbacks (the worklist tasks) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def book(user, room, procedure, patient, tomorrow_at, after_commit):
    """book(**overrides) -> Order booked through scheduling.services, its worklist task run after commit.

    The file goes wherever the settings say when booking: the test's worklist_dir, an interop server's
    folder, or a broken folder; book itself does not choose one, or it would undo theirs.
    """

    def make(**overrides) -> Order:
        args = {
            "patient": patient,
            "procedure": procedure,
            "room": room,
            "start": tomorrow_at(9),
            "user": user,
        }
        args.update(overrides)
        with after_commit():
            return services.order_book(**args)

    return make


@pytest.fixture(autouse=True)
def _back_to_the_default_language():
    """A request in Thai leaves Thai active in the test's thread: every test starts in the default."""
    yield
    translation.deactivate()
