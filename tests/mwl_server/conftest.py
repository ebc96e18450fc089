import pytest

from scheduling import services
from scheduling.models import Order


@pytest.fixture
def worklist_dir(settings, tmp_path):
    folder = tmp_path / "worklists"
    folder.mkdir()
    settings.WORKLIST_DIR = str(folder)
    settings.WORKLIST_LAYOUT = "orthanc"
    return folder


@pytest.fixture
def book(user, room, procedure, patient, tomorrow_at, worklist_dir, django_capture_on_commit_callbacks):
    """book(**overrides) -> Order booked through scheduling.services, exported after commit."""

    def make(**overrides) -> Order:
        args = {
            "patient": patient,
            "procedure": procedure,
            "room": room,
            "start": tomorrow_at(9),
            "user": user,
        }
        args.update(overrides)
        with django_capture_on_commit_callbacks(execute=True):
            return services.order_book(**args)

    return make


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)
