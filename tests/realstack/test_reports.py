"""The reports on PostgreSQL: the hand-computed week again, and the page's scans side by side.

The reports' SQL differs between the databases where they differ (epochs, whole seconds, GREATEST),
so tests/reports/test_numbers.py runs here too, collected a second time from this module.
"""

import threading

import pytest
from django.db import connection, transaction

from reports import selectors
from tests.reports.test_numbers import *  # noqa: F403 - the same tests and fixture, on PostgreSQL
from tests.reports.test_numbers import WEEK

pytestmark = [pytest.mark.realstack, pytest.mark.django_db]


def _connections_open() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_page_runs_its_scans_side_by_side_on_connections_of_their_own(week, monkeypatch):  # noqa: F405
    backends: list[tuple[int, int]] = []  # (thread, PostgreSQL backend) of each scan

    def seen(name):
        real = getattr(selectors, name)

        def call(*args, **kwargs):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.append((threading.get_ident(), cursor.fetchone()[0]))
            return real(*args, **kwargs)

        monkeypatch.setattr(selectors, name, call)

    for name in ("volumes", "waiting", "_leg", "room_use"):
        seen(name)
    before = _connections_open()

    found = selectors.page(WEEK)

    # Five scans: the exams per day and utilisation, the waiting times, the turnaround's two legs, the
    # rooms' booked minutes.
    assert len({thread for thread, _pid in backends}) == len({pid for _thread, pid in backends}) == 5
    assert threading.get_ident() in {thread for thread, _pid in backends}
    assert _connections_open() == before  # the threads closed theirs
    # The same numbers as one after the other in a transaction, on the request's connection.
    with transaction.atomic():
        backends.clear()
        alone = selectors.page(WEEK)
        assert {thread for thread, _pid in backends} == {threading.get_ident()}
    assert found == alone
    assert found.daily.total == 8
    assert [room.name for room, _legs in found.turnaround.per_room] == ["CT 1", "MR 1"]
    assert [(use.room.name, use.booked) for use in found.rooms] == [("CT 1", 185), ("MR 1", 90)]
