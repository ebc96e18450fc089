import pytest


@pytest.fixture(autouse=True)
def _worklist_dir(worklist_dir):
    # A folder per test: the server's answers are compared with the files the export wrote for this
    # test's bookings, never with another test's.
    return worklist_dir
