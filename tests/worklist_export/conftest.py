import pytest
from django.utils import timezone


@pytest.fixture
def wlmscpfs_dir(worklist_dir, settings):
    settings.WORKLIST_LAYOUT = "wlmscpfs"
    settings.WORKLIST_CALLED_AE = "WORKLIST"
    return worklist_dir


@pytest.fixture
def now():
    return timezone.now()
