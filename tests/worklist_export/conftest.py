import pytest
from django.utils import timezone

from scheduling import services
from scheduling.models import Order


@pytest.fixture
def worklist_dir(settings, tmp_path):
    """A fresh, flat (Orthanc layout) worklist folder for the test."""
    folder = tmp_path / "worklists"
    folder.mkdir()
    settings.WORKLIST_DIR = str(folder)
    settings.WORKLIST_LAYOUT = "orthanc"
    return folder


@pytest.fixture
def wlmscpfs_dir(worklist_dir, settings):
    settings.WORKLIST_LAYOUT = "wlmscpfs"
    settings.WORKLIST_CALLED_AE = "WORKLIST"
    return worklist_dir


@pytest.fixture
def book(user, room, procedure, patient, tomorrow_at, django_capture_on_commit_callbacks):
    """book(**overrides) -> Order booked through scheduling.services, its worklist task run after commit."""

    def make(**overrides) -> Order:
        args = {
            "patient": patient,
            "procedure": procedure,
            "room": room,
            "start": tomorrow_at(9, 0),
            "user": user,
        }
        args.update(overrides)
        with django_capture_on_commit_callbacks(execute=True):
            return services.order_book(**args)

    return make


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks):
    """with after_commit(): ... runs the on-commit callbacks (the worklist tasks) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def now():
    return timezone.now()
